#!/usr/bin/env python3
"""Peer side of the workload suite W1-W9 (`benches/WORKLOADS.md`): every workload in PyTorch (eager)
or JAX (jit, plus the variants the table lists), printing one JSON line per (workload, variant) on
stdout and nothing else (progress and diagnostics go to stderr).

    python workloads.py --framework pytorch|jax [--quick] [WORKLOAD...]
    python workloads.py --selftest            # one-off correctness checks, torch vs jax vs numpy

`benches/run` runs this with the thread environment already set; when run by hand the script sets
the same defaults (2 threads) before importing the framework.

Timing (the same for every workload): 5 warm-up iterations (2 with --quick), then a batch size is
chosen so that one sample takes >= 10 ms, then >= 20 samples (5 with --quick); a sample is the mean
time per iteration over its batch. Reported: median, p10 and p90 over samples (linear interpolation
between order statistics). Python's garbage collector is off while timing. JAX results are waited
for (`block_until_ready`) inside the timed region; for jit-compiled functions the first call
(tracing + XLA compilation) is timed separately and reported as `compile_s`.

The code is split by framework: `wl_common.py` (timer, output, shared model definitions),
`wl_torch.py`, `wl_jax.py`; this file holds the self-test and the command line.
"""

import argparse
import math
import os
import sys
import time
import traceback

from wl_common import (ARM, GMM_SIZE, THREADS, Timer, _thread_env, arm_loss_jax, arm_loss_torch, arm_step,
                       arm_terminal, gmm_inputs, log, make_gmm_objective, read_gmm_file, select)
from wl_jax import jax_setup, jax_train_defs, jax_workloads
from wl_torch import torch_setup, torch_train_setup, torch_train_step, torch_workloads


def selftest():
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    torch.set_num_threads(THREADS)
    jax.config.update("jax_platforms", "cpu")
    ok = True

    def report(name, a, b, tol):
        nonlocal ok
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        rel = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
        good = rel <= tol
        ok &= good
        log(f"{'ok  ' if good else 'FAIL'} {name}: max rel diff {rel:.3g} (tol {tol:g})")
        return rel

    # W5: torch vs jax in f64 at tau = 0, and a numpy float64 forward; gradient vs central differences.
    def arm_np(tau):
        q1 = q2 = qd1 = qd2 = 0.0
        for t in range(ARM["steps"]):
            q1, q2, qd1, qd2 = arm_step(q1, q2, qd1, qd2, tau[t, 0], tau[t, 1], math.cos, math.sin)
        return arm_terminal(q1, q2, math.cos, math.sin) + 1e-3 * float(np.sum(tau * tau))

    arm_torch, arm_jax = arm_loss_torch, arm_loss_jax

    with jax.enable_x64(True):
        for label, tau_np in (("tau=0", np.zeros((500, 2))), ("tau=0.1N", 0.1 * np.random.default_rng(3).standard_normal((500, 2)))):
            tt = torch.tensor(tau_np, requires_grad=True)
            lt = arm_torch(tt)
            (gt,) = torch.autograd.grad(lt, tt)
            lj, gj = jax.jit(jax.value_and_grad(arm_jax))(jnp.asarray(tau_np))
            ln = arm_np(tau_np)
            log(f"W5 {label}: loss torch {lt.item()!r} jax {float(lj)!r} numpy {ln!r}; "
                f"grad_norm torch {float(np.linalg.norm(gt.numpy()))!r} jax {float(np.linalg.norm(np.asarray(gj)))!r}")
            report(f"W5 {label} loss torch vs jax", lt.item(), float(lj), 1e-10)
            report(f"W5 {label} loss torch vs numpy", lt.item(), ln, 1e-10)
            report(f"W5 {label} grad torch vs jax", gt.numpy(), np.asarray(gj), 1e-9)
            eps = 1e-6
            fd = []
            comps = [(0, 0), (0, 1), (250, 0), (499, 1)]
            for (i, j) in comps:
                tp = tau_np.copy(); tp[i, j] += eps
                tm = tau_np.copy(); tm[i, j] -= eps
                fd.append((arm_np(tp) - arm_np(tm)) / (2 * eps))
            report(f"W5 {label} grad vs central differences (4 entries)", [gt.numpy()[i, j] for i, j in comps], fd, 1e-5)

        # W7: GMM objective on ADBench's test input (golden 8.07380408004975791) and on a spec-sized
        # random input shared by both; gradients torch vs jax, and vs central differences.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        alphas, means, icf, x, gamma, m = read_gmm_file(os.path.join(root, "data/adbench/gmm/test.txt"))
        d, K, n = x.shape[1], alphas.shape[0], x.shape[0]
        ft = make_gmm_objective("torch", d, K, n, gamma, m)
        fj = make_gmm_objective("jax", d, K, n, gamma, m)
        vt = float(ft(*(torch.tensor(a) for a in (alphas, means, icf, x))))
        vj = float(jax.jit(fj)(*(jnp.asarray(a) for a in (alphas, means, icf, x))))
        log(f"W7 ADBench test.txt objective: torch {vt!r} jax {vj!r} golden 8.07380408004975791")
        report("W7 test.txt torch vs golden", vt, 8.07380408004975791, 1e-12)
        report("W7 test.txt jax vs golden", vj, 8.07380408004975791, 1e-12)

        d, K, n = GMM_SIZE["d"], GMM_SIZE["K"], GMM_SIZE["n"]
        alphas, means, icf, x = gmm_inputs(np.random.default_rng(11), d, K, n)
        ft = make_gmm_objective("torch", d, K, n)
        fj = make_gmm_objective("jax", d, K, n)
        pt = [torch.tensor(a, requires_grad=True) for a in (alphas, means, icf)]
        vt = ft(*pt, torch.tensor(x))
        gt = torch.autograd.grad(vt, pt)
        vj, gj = jax.jit(jax.value_and_grad(fj, argnums=(0, 1, 2)))(*(jnp.asarray(a) for a in (alphas, means, icf, x)))
        log(f"W7 d=10 K=25 n=10000 objective: torch {vt.item()!r} jax {float(vj)!r}")
        report("W7 objective torch vs jax", vt.item(), float(vj), 1e-12)
        for name, a, b in zip(("alphas", "means", "icf"), gt, gj):
            report(f"W7 grad {name} torch vs jax", a.numpy(), np.asarray(b), 1e-10)
        fnp = jax.jit(fj)
        fd, an = [], []
        for which, idx in ((0, (3,)), (1, (7, 2)), (2, (4, 0)), (2, (20, 30))):
            base = [alphas, means, icf]
            h = 1e-5
            p_ = [b.copy() for b in base]; p_[which][idx] += h
            m_ = [b.copy() for b in base]; m_[which][idx] -= h
            fd.append((float(fnp(*p_, x)) - float(fnp(*m_, x))) / (2 * h))
            an.append(float(gt[which].numpy()[idx]))
        report("W7 grad vs central differences (4 entries)", an, fd, 1e-5)

        # W6: f64 versions of both; gradient and HVP vs central differences.
        rng = np.random.default_rng(6)
        A = rng.standard_normal((2000, 1000)) / math.sqrt(1000.0)
        x0 = rng.standard_normal(1000)
        v = rng.standard_normal(1000)

        def f_np(x):
            z = A @ x
            return float(np.sum(np.logaddexp(z, 0.0)) + 0.5 * x @ x)

        def grad_np(x):
            return A.T @ (1.0 / (1.0 + np.exp(-(A @ x)))) + x

        At = torch.tensor(A)
        xt = torch.tensor(x0, requires_grad=True)

        def ft6(x):
            return torch.nn.functional.softplus(At @ x).sum() + 0.5 * (x * x).sum()

        val = ft6(xt)
        (g6,) = torch.autograd.grad(val, xt)
        from torch.func import grad as tgrad, jvp as tjvp

        h6t = tjvp(tgrad(ft6), (torch.tensor(x0),), (torch.tensor(v),))[1]

        def fj6(x):
            return jnp.sum(jax.nn.softplus(jnp.asarray(A) @ x)) + 0.5 * jnp.sum(x * x)

        vj6, gj6 = jax.jit(jax.value_and_grad(fj6))(jnp.asarray(x0))
        hj6 = jax.jit(lambda x, v: jax.jvp(jax.grad(fj6), (x,), (v,))[1])(jnp.asarray(x0), jnp.asarray(v))
        report("W6 value torch vs numpy", val.item(), f_np(x0), 1e-12)
        report("W6 value jax vs numpy", float(vj6), f_np(x0), 1e-12)
        rng2 = np.random.default_rng(1)
        comps = rng2.choice(1000, 5, replace=False)
        fd = []
        for i in comps:
            e = np.zeros(1000); e[i] = 1e-6
            fd.append((f_np(x0 + e) - f_np(x0 - e)) / 2e-6)
        report("W6 grad torch vs central differences (5 entries)", g6.numpy()[comps], fd, 1e-6)
        report("W6 grad jax vs torch", np.asarray(gj6), g6.numpy(), 1e-12)
        hv_fd = (grad_np(x0 + 1e-6 * v) - grad_np(x0 - 1e-6 * v)) / 2e-6
        report("W6 hvp torch vs central differences of the gradient", h6t.numpy(), hv_fd, 1e-6)
        report("W6 hvp jax vs torch", np.asarray(hj6), h6t.numpy(), 1e-12)

    # W2-W4: the jax.numpy models and optimizers against PyTorch's modules and optimizers, from the
    # same parameters and data (converted to the JAX layouts), 3 steps each.
    T = jax_train_defs()

    def lin(m):
        return {"w": jnp.asarray(m.weight.detach().numpy().T), "b": jnp.asarray(m.bias.detach().numpy())}

    for which in ("W2", "W3", "W4"):
        model, opt, x, loss_fn, y = torch_train_setup(which)
        if which == "W2":
            params = [lin(model[0]), lin(model[2]), lin(model[4])]
            jx, jy = jnp.asarray(x.numpy()), jnp.asarray(y.numpy())
            jstep, state = T["adam_step"](T["mlp_loss"]), T["adam_init"](params)
        elif which == "W3":
            conv = lambda m: {"w": jnp.asarray(m.weight.detach().numpy().transpose(2, 3, 1, 0)),
                              "b": jnp.asarray(m.bias.detach().numpy())}
            w1 = model[7].weight.detach().numpy()  # [128, 64*7*7] over (c, h, w) -> rows over (h, w, c)
            l1 = {"w": jnp.asarray(w1.reshape(128, 64, 7, 7).transpose(0, 2, 3, 1).reshape(128, 3136).T),
                  "b": jnp.asarray(model[7].bias.detach().numpy())}
            params = {"c1": conv(model[0]), "c2": conv(model[3]), "l1": l1, "l2": lin(model[9])}
            jx, jy = jnp.asarray(x.numpy().transpose(0, 2, 3, 1)), jnp.asarray(y.numpy())
            jstep, state = T["sgd_momentum_step"](T["cnn_loss"]), T["sgd_init"](params)
        else:
            l = model.lstm
            params = {"w_ih": jnp.asarray(l.weight_ih_l0.detach().numpy()), "w_hh": jnp.asarray(l.weight_hh_l0.detach().numpy()),
                      "b_ih": jnp.asarray(l.bias_ih_l0.detach().numpy()), "b_hh": jnp.asarray(l.bias_hh_l0.detach().numpy()),
                      "head": lin(model.head)}
            jx, jy = jnp.asarray(x.numpy()), jnp.asarray(y.numpy())
            jstep, state = T["adam_step"](T["lstm_loss"]), T["adam_init"](params)
        tstep = torch_train_step(model, opt, x, loss_fn)
        jstep = jax.jit(jstep)
        lt, lj = [], []
        for _ in range(4):
            lt.append(tstep().item())
            state, loss = jstep(state, jx, jy)
            lj.append(float(loss))
        log(f"{which} losses over 4 steps: torch {lt} jax {lj}")
        report(f"{which} step losses jax vs torch (f32, 4 steps)", lj, lt, 1e-4)

    log("selftest: " + ("all ok" if ok else "FAILURES"))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--framework", choices=["pytorch", "jax"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--selftest", action="store_true")
    ap.add_argument("workloads", nargs="*")
    args = ap.parse_args()
    _thread_env()
    if args.selftest:
        sys.exit(selftest())
    if not args.framework:
        ap.error("--framework is required")
    names = select(args.workloads)
    timer = Timer(args.quick)
    if args.framework == "pytorch":
        torch_setup()
        table = torch_workloads(timer, names)
    else:
        jax_setup()
        table = jax_workloads(timer, names)
    failed = []
    for name in names:
        if name not in table:
            # e.g. W9 for PyTorch: no ODE solver in the pinned packages; the report shows "—"
            log(f"== {args.framework} {name}: not implemented for {args.framework}, skipped")
            continue
        log(f"== {args.framework} {name}")
        t0 = time.perf_counter()
        try:
            table[name]()
        except Exception:  # noqa: BLE001 - one broken workload must not hide the others
            traceback.print_exc()
            log(f"!!! {args.framework} {name} FAILED")
            failed.append(name)
        log(f"   ({time.perf_counter() - t0:.1f} s)")
    if failed:
        log(f"!!! {args.framework}: failed workloads: {' '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
