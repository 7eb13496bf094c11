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
"""

import argparse
import gc
import json
import math
import os
import sys
import time
import traceback

THREADS = 2


def _thread_env():
    """Defaults for a run by hand; benches/run sets these itself (and pins the peers)."""
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(k, str(THREADS))
    os.environ.setdefault(
        "XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={THREADS}"
    )
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


WORKLOADS = [
    "W1_add",
    "W1_chain_fwd_bwd",
    "W2_mlp_step",
    "W3_cnn_step",
    "W4_lstm_step",
    "W5_arm_bptt",
    "W6_grad",
    "W6_hvp",
    "W7_gmm_obj",
    "W7_gmm_obj_grad",
    "W8_matmul_grad",
    "W9_ode_lv_grad",
]


def select(args):
    """A WORKLOAD argument that is a full name selects that workload; any other selects every name
    starting with it followed by `_` (W7 = W7_gmm_obj + W7_gmm_obj_grad)."""
    if not args:
        return list(WORKLOADS)
    chosen = []
    for a in args:
        # a full workload name selects only that workload (W7_gmm_obj is not W7_gmm_obj_grad)
        hit = [a] if a in WORKLOADS else [w for w in WORKLOADS if w.startswith(a + "_")]
        if not hit:
            raise SystemExit(f"workloads.py: unknown workload {a!r} (known: {' '.join(WORKLOADS)})")
        chosen += [w for w in hit if w not in chosen]
    return [w for w in WORKLOADS if w in chosen]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Timing and output
# ----------------------------------------------------------------------------------------------
MIN_SAMPLE_S = 0.010


class Timer:
    def __init__(self, quick):
        self.warmup = 2 if quick else 5
        self.samples = 5 if quick else 20

    def measure(self, batch, per=1):
        """batch(n) runs n iterations and returns the seconds they took. Returns the statistics of
        the time per iteration (divided by `per`, e.g. the number of ops in one iteration)."""
        gc.collect()
        for _ in range(self.warmup):
            batch(1)
        n = 1
        while True:  # batch size: the smallest that makes a sample >= 10 ms (also more warm-up)
            t = batch(n)
            if t >= MIN_SAMPLE_S or n >= 10_000_000:
                break
            n = min(10_000_000, max(n + 1, math.ceil(n * MIN_SAMPLE_S * 1.2 / max(t, 1e-9))))
        per_iter = []
        gc_was = gc.isenabled()
        gc.disable()
        try:
            for _ in range(self.samples):
                per_iter.append(batch(n) / n / per)
        finally:
            if gc_was:
                gc.enable()
        per_iter.sort()
        return {
            "median_s": quantile(per_iter, 0.5),
            "p10_s": quantile(per_iter, 0.1),
            "p90_s": quantile(per_iter, 0.9),
            "samples": len(per_iter),
            "batch": n,
        }

    def measure_call(self, f, per=1):
        """Statistics of f() (one iteration per call)."""

        def batch(n):
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            return time.perf_counter() - t0

        return self.measure(batch, per)


def quantile(sorted_xs, q):
    pos = q * (len(sorted_xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def first_call(f):
    """Seconds of the first call of f (JAX jit: tracing + compilation + one run)."""
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def emit(workload, framework, variant, st, notes, **extra):
    d = {
        "workload": workload,
        "framework": framework,
        "variant": variant,
        "median_s": st["median_s"],
        "p10_s": st["p10_s"],
        "p90_s": st["p90_s"],
        "notes": notes,
        "samples": st["samples"],
        "batch": st["batch"],
    }
    d.update(extra)
    print(json.dumps(d), flush=True)
    log(f"  {workload:18s} {framework:8s} {variant:22s} median {st['median_s']:.4g} s "
        f"(p10 {st['p10_s']:.4g}, p90 {st['p90_s']:.4g}; {st['samples']} x {st['batch']})")


# ----------------------------------------------------------------------------------------------
# Shared definitions (framework-neutral)
# ----------------------------------------------------------------------------------------------
CHAIN_STEPS = 1000  # W1_chain_fwd_bwd: x = x*1.0001 + 0.0001, 1,000 times = 2,000 elementwise ops
W1_GRAD_OPS = 1000  # W1_add/grad: this many adds under one active gradient, then one backward (as adjoint-bench)

# W5: 2-link planar arm
ARM = dict(m1=1.0, m2=1.0, l1=1.0, l2=1.0, g=9.81, dt=0.01, steps=500)


def _arm_constants():
    m1, m2, l1, l2, g = ARM["m1"], ARM["m2"], ARM["l1"], ARM["l2"], ARM["g"]
    return dict(
        m11_0=(m1 + m2) * l1 * l1 + m2 * l2 * l2,  # M11 = m11_0 + m11_c * c2
        m11_c=2.0 * m2 * l1 * l2,
        m12_0=m2 * l2 * l2,  # M12 = m12_0 + m12_c * c2
        m12_c=m2 * l1 * l2,
        m22=m2 * l2 * l2,
        h_s=m2 * l1 * l2,  # h = h_s * s2
        g1=(m1 + m2) * g * l1,  # G1 = g1 cos q1 + g2 cos(q1+q2)
        g2=m2 * g * l2,  # G2 = g2 cos(q1+q2)
        l1=l1,
        l2=l2,
        dt=ARM["dt"],
    )


K_ARM = _arm_constants()


def arm_step(q1, q2, qd1, qd2, t1, t2, cos, sin):
    """One semi-implicit Euler step of the arm, written once for every array library."""
    k = K_ARM
    c2 = cos(q2)
    s2 = sin(q2)
    m11 = k["m11_0"] + k["m11_c"] * c2
    m12 = k["m12_0"] + k["m12_c"] * c2
    m22 = k["m22"]
    h = k["h_s"] * s2
    cq1 = -h * (2.0 * qd1 * qd2 + qd2 * qd2)
    cq2 = h * qd1 * qd1
    c12 = cos(q1 + q2)
    gr1 = k["g1"] * cos(q1) + k["g2"] * c12
    gr2 = k["g2"] * c12
    r1 = t1 - cq1 - gr1
    r2 = t2 - cq2 - gr2
    det = m11 * m22 - m12 * m12
    qdd1 = (m22 * r1 - m12 * r2) / det
    qdd2 = (m11 * r2 - m12 * r1) / det
    qd1 = qd1 + k["dt"] * qdd1
    qd2 = qd2 + k["dt"] * qdd2
    q1 = q1 + k["dt"] * qd1
    q2 = q2 + k["dt"] * qd2
    return q1, q2, qd1, qd2


def arm_terminal(q1, q2, cos, sin):
    """‖p(q) − (1, 1)‖² for the end effector p."""
    k = K_ARM
    px = k["l1"] * cos(q1) + k["l2"] * cos(q1 + q2)
    py = k["l1"] * sin(q1) + k["l2"] * sin(q1 + q2)
    return (px - 1.0) * (px - 1.0) + (py - 1.0) * (py - 1.0)


def arm_loss_torch(tau):
    """W5 loss for a [500, 2] torch tensor: a Python loop over 0-d tensors (τ unbound into 0-d views)."""
    import torch

    cos, sin = torch.cos, torch.sin
    t1s, t2s = (c.unbind(0) for c in tau.unbind(1))
    z = torch.zeros((), dtype=tau.dtype)
    q1 = q2 = qd1 = qd2 = z
    for t in range(ARM["steps"]):
        q1, q2, qd1, qd2 = arm_step(q1, q2, qd1, qd2, t1s[t], t2s[t], cos, sin)
    return arm_terminal(q1, q2, cos, sin) + 1e-3 * (tau * tau).sum()


def arm_loss_jax(tau):
    """W5 loss for a [500, 2] JAX array: lax.scan over the rows of τ."""
    import jax.numpy as jnp
    from jax import lax

    cos, sin = jnp.cos, jnp.sin

    def body(carry, tt):
        return arm_step(*carry, tt[0], tt[1], cos, sin), None

    z = jnp.zeros((), tau.dtype)
    (q1, q2, _, _), _ = lax.scan(body, (z, z, z, z), tau)
    return arm_terminal(q1, q2, cos, sin) + 1e-3 * jnp.sum(tau * tau)


# W7: ADBench GMM (SPEC.md §1), wishart gamma = 1, m = 0
GMM_PI = 3.14159265359  # ADBench's defs.h constant, not the exact value of pi
GMM_SIZE = dict(d=10, K=25, n=10_000)


def gmm_constants(d, K, n, gamma=1.0, m=0):
    nw = d + m + 1
    lgamma_d = 0.25 * d * (d - 1) * math.log(GMM_PI) + sum(math.lgamma(0.5 * nw + 0.5 * (1 - j)) for j in range(1, d + 1))
    c = nw * d * (math.log(gamma) - 0.5 * math.log(2.0)) - lgamma_d
    const = -n * d * 0.5 * math.log(2.0 * GMM_PI)
    return const, K * c


def gmm_lower_index(d):
    """[d, d] index into [0, l_0, l_1, ...]: entry (row, col), row > col, holds 1 + the column-major
    position of l; everything else 0 (which reads the padding zero)."""
    import numpy as np

    idx = np.zeros((d, d), dtype=np.int64)
    p = 0
    for col in range(d):
        for row in range(col + 1, d):
            idx[row, col] = 1 + p
            p += 1
    return idx


def gmm_inputs(rng, d, K, n):
    """x, means ~ N(0, 1); alphas, icf ~ N(0, 0.1²); float64 numpy arrays."""
    alphas = 0.1 * rng.standard_normal(K)
    means = rng.standard_normal((K, d))
    icf = 0.1 * rng.standard_normal((K, d * (d + 1) // 2))
    x = rng.standard_normal((n, d))
    return alphas, means, icf, x


def read_gmm_file(path):
    import numpy as np

    tok = open(path).read().split()
    d, K, n = int(tok[0]), int(tok[1]), int(tok[2])
    v = [float(t) for t in tok[3:]]
    p = 0
    alphas = np.array(v[p : p + K]); p += K
    means = np.array(v[p : p + K * d]).reshape(K, d); p += K * d
    nic = d * (d + 1) // 2
    icf = np.array(v[p : p + K * nic]).reshape(K, nic); p += K * nic
    x = np.array(v[p : p + n * d]).reshape(n, d); p += n * d
    gamma, m = v[p], int(v[p + 1])
    return alphas, means, icf, x, gamma, m


def make_gmm_objective(lib, d, K, n, gamma=1.0, m=0):
    """The GMM objective for lib in {"torch", "jax"}, as f(alphas, means, icf, x).

    Q_k (x_i − μ_k) is computed as (x Q_kᵀ)_i − Q_k μ_k: one [n, d] x [d, K·d] matrix product for
    all components instead of n·K small products (algebraically identical; same in both peers)."""
    import numpy as np

    const, kc = gmm_constants(d, K, n, gamma, m)
    idx_np = gmm_lower_index(d)
    if lib == "torch":
        import torch

        idx = torch.from_numpy(idx_np)

        def f(alphas, means, icf, x):
            q = icf[:, :d]
            l = icf[:, d:]
            qdiag = torch.exp(q)
            lpad = torch.cat([torch.zeros(K, 1, dtype=icf.dtype), l], dim=1)
            Q = lpad[:, idx] + torch.diag_embed(qdiag)  # [K, d, d]
            qx = (x @ Q.reshape(K * d, d).T).reshape(n, K, d)
            qmu = torch.einsum("kij,kj->ki", Q, means)
            z = qx - qmu
            main = alphas + q.sum(1) - 0.5 * (z * z).sum(2)  # [n, K]
            slse = torch.logsumexp(main, dim=1).sum()
            prior = 0.5 * gamma * gamma * ((qdiag * qdiag).sum() + (l * l).sum()) - m * q.sum() - kc
            return const + slse - n * torch.logsumexp(alphas, dim=0) + prior

        return f
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    idx = np.asarray(idx_np)

    def f(alphas, means, icf, x):
        q = icf[:, :d]
        l = icf[:, d:]
        qdiag = jnp.exp(q)
        lpad = jnp.concatenate([jnp.zeros((K, 1), dtype=icf.dtype), l], axis=1)
        Q = lpad[:, idx] + qdiag[:, :, None] * jnp.eye(d, dtype=icf.dtype)
        qx = (x @ Q.reshape(K * d, d).T).reshape(n, K, d)
        qmu = jnp.einsum("kij,kj->ki", Q, means)
        z = qx - qmu
        main = alphas + q.sum(1) - 0.5 * (z * z).sum(2)
        slse = logsumexp(main, axis=1).sum()
        prior = 0.5 * gamma * gamma * ((qdiag * qdiag).sum() + (l * l).sum()) - m * q.sum() - kc
        return const + slse - n * logsumexp(alphas, axis=0) + prior

    return f


# ----------------------------------------------------------------------------------------------
# PyTorch (eager)
# ----------------------------------------------------------------------------------------------
def torch_setup():
    import torch

    torch.set_num_threads(THREADS)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    log(f"pytorch {torch.__version__}, num_threads {torch.get_num_threads()}")
    return torch


def torch_train_setup(which):
    """W2-W4 for PyTorch: (model, optimizer, x, loss_fn, y) with PyTorch's default initialisation."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def labels(n):
        return (torch.arange(n) * 7) % 10

    if which == "W2":
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
        x, y = torch.randn(128, 784), labels(128)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3), x, lambda o: F.cross_entropy(o, y), y
    if which == "W3":
        torch.manual_seed(1)
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
        )
        x, y = torch.randn(64, 1, 28, 28), labels(64)
        return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), x, lambda o: F.cross_entropy(o, y), y

    class LstmHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(8, 128, batch_first=True)
            self.head = nn.Linear(128, 1)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.head(h[-1])

    torch.manual_seed(2)
    model = LstmHead()
    x, y = torch.randn(32, 64, 8), torch.randn(32, 1)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), x, lambda o: F.mse_loss(o, y), y


def torch_train_step(model, opt, x, loss_fn):
    """One full step: zero grads, forward, backward, update."""

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x))
        loss.backward()
        opt.step()
        return loss

    return step


def torch_workloads(timer, names):
    import numpy as np
    import torch
    import torch.nn.functional as F

    FW = "pytorch"

    def W1_add():
        x = torch.ones(1)

        def batch(n):
            t0 = time.perf_counter()
            for _ in range(n):
                x + 1
            return time.perf_counter() - t0

        emit("W1_add", FW, "eager", timer.measure(batch),
             "y = x + 1 on a [1] f32 tensor without requires_grad; seconds per op")
        xg = torch.ones(1, requires_grad=True)

        def under_grad():
            for _ in range(W1_GRAD_OPS):
                y = xg + 1
            return torch.autograd.grad(y.sum(), xg)

        emit("W1_add", FW, "grad", timer.measure_call(under_grad, per=W1_GRAD_OPS),
             f"{W1_GRAD_OPS} x (y = x + 1) on a [1] f32 tensor with requires_grad=True (each records a graph node), "
             f"then torch.autograd.grad of the last y.sum(); time / {W1_GRAD_OPS}")

    def W1_chain_fwd_bwd():
        x = torch.tensor([0.5], requires_grad=True)

        def it():
            y = x
            for _ in range(CHAIN_STEPS):
                y = y * 1.0001 + 0.0001
            return torch.autograd.grad(y.sum(), x)

        emit("W1_chain_fwd_bwd", FW, "eager", timer.measure_call(it, per=2 * CHAIN_STEPS),
             "autograd: 1,000 x (mul, add) on a [1] f32 tensor, then torch.autograd.grad of y.sum(); time / 2000 ops")

    def W2_mlp_step():
        step = torch_train_step(*torch_train_setup("W2")[:4])
        emit("W2_mlp_step", FW, "eager", timer.measure_call(step),
             "nn.Sequential + F.cross_entropy + torch.optim.Adam (default foreach impl); zero_grad(set_to_none)")

    def W3_cnn_step():
        step = torch_train_step(*torch_train_setup("W3")[:4])
        emit("W3_cnn_step", FW, "eager", timer.measure_call(step),
             "nn.Conv2d/MaxPool2d (NCHW) + torch.optim.SGD(momentum=0.9)")

    def W4_lstm_step():
        step = torch_train_step(*torch_train_setup("W4")[:4])
        emit("W4_lstm_step", FW, "eager", timer.measure_call(step), "nn.LSTM (fused CPU kernel) + nn.Linear + Adam")

    arm_loss = arm_loss_torch

    def arm_check():
        tau0 = torch.zeros(ARM["steps"], 2, dtype=torch.float64, requires_grad=True)
        loss = arm_loss(tau0)
        (g,) = torch.autograd.grad(loss, tau0)
        return {"loss": loss.item(), "grad_norm": float(np.linalg.norm(g.numpy().astype(np.float64)))}

    def W5_arm_bptt():
        check = arm_check()
        log(f"  W5 check (f64, tau=0): {check}")
        torch.manual_seed(5)
        tau = (0.1 * torch.randn(ARM["steps"], 2)).requires_grad_(True)

        def it():
            loss = arm_loss(tau)
            return loss, torch.autograd.grad(loss, tau)

        emit("W5_arm_bptt", FW, "eager", timer.measure_call(it),
             "python loop of 500 steps on 0-d f32 tensors (tau unbound into 0-d views), torch.autograd.grad",
             check=check)

    def w6_setup():
        torch.manual_seed(6)
        A = torch.randn(2000, 1000) / math.sqrt(1000.0)
        x = torch.randn(1000)
        v = torch.randn(1000)

        def f(x):
            return F.softplus(A @ x).sum() + 0.5 * (x * x).sum()

        return f, x, v

    def W6_grad():
        f, x, _ = w6_setup()
        xr = x.clone().requires_grad_(True)

        def it():
            val = f(xr)
            return val, torch.autograd.grad(val, xr)

        emit("W6_grad", FW, "eager", timer.measure_call(it), "F.softplus; value + torch.autograd.grad")

    def W6_hvp():
        from torch.func import grad, jvp

        f, x, v = w6_setup()
        emit("W6_hvp", FW, "eager", timer.measure_call(lambda: jvp(grad(f), (x,), (v,))[1]),
             "forward-over-reverse: torch.func.jvp(torch.func.grad(f))")
        xr = x.clone().requires_grad_(True)

        def dbl():
            (g,) = torch.autograd.grad(f(xr), xr, create_graph=True)
            return torch.autograd.grad(g @ v, xr)

        emit("W6_hvp", FW, "eager_double_backward", timer.measure_call(dbl),
             "reverse-over-reverse: autograd.grad(create_graph=True) then grad of g.v")

    def w7_setup():
        d, K, n = GMM_SIZE["d"], GMM_SIZE["K"], GMM_SIZE["n"]
        torch.manual_seed(7)
        alphas = 0.1 * torch.randn(K, dtype=torch.float64)
        means = torch.randn(K, d, dtype=torch.float64)
        icf = 0.1 * torch.randn(K, d * (d + 1) // 2, dtype=torch.float64)
        x = torch.randn(n, d, dtype=torch.float64)
        return make_gmm_objective("torch", d, K, n), alphas, means, icf, x

    def W7_gmm_obj():
        f, alphas, means, icf, x = w7_setup()
        emit("W7_gmm_obj", FW, "eager", timer.measure_call(lambda: f(alphas, means, icf, x)),
             "f64; d=10 K=25 n=10000; Q(x-mu) as x@Q^T - Q mu (one GEMM), torch.logsumexp; no grad tracking")

    def W7_gmm_obj_grad():
        f, alphas, means, icf, x = w7_setup()
        ps = [p.clone().requires_grad_(True) for p in (alphas, means, icf)]

        def it():
            val = f(*ps, x)
            return val, torch.autograd.grad(val, ps)

        emit("W7_gmm_obj_grad", FW, "eager", timer.measure_call(it),
             "f64; objective + torch.autograd.grad w.r.t. alphas, means, icf")

    def W8_matmul_grad():
        torch.manual_seed(8)
        A = torch.randn(1024, 1024, requires_grad=True)
        B = torch.randn(1024, 1024, requires_grad=True)

        def it():
            loss = (A @ B).sum()
            return loss, torch.autograd.grad(loss, (A, B))

        emit("W8_matmul_grad", FW, "eager", timer.measure_call(it), "(A@B).sum() + torch.autograd.grad for A and B")

    return {k: v for k, v in locals().items() if k in WORKLOADS}


# ----------------------------------------------------------------------------------------------
# JAX (jit)
# ----------------------------------------------------------------------------------------------
def jax_setup():
    import jax

    jax.config.update("jax_platforms", "cpu")
    log(f"jax {jax.__version__}, devices {jax.devices()}, XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}")
    return jax


def jax_train_defs():
    """W2-W4 for JAX in plain jax.numpy: the three losses, Adam and SGD with momentum (PyTorch's
    update rules). Parameters are pytrees; Linear weights are stored [in, out], convolutions HWIO."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    tree_map = jax.tree_util.tree_map

    def cross_entropy(logits, y):
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def mlp_loss(p, x, y):
        h = jax.nn.relu(x @ p[0]["w"] + p[0]["b"])
        h = jax.nn.relu(h @ p[1]["w"] + p[1]["b"])
        return cross_entropy(h @ p[2]["w"] + p[2]["b"], y)

    dn = ("NHWC", "HWIO", "NHWC")

    def conv(x, p):
        return lax.conv_general_dilated(x, p["w"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=dn) + p["b"]

    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    def cnn_loss(p, x, y):
        h = pool(jax.nn.relu(conv(x, p["c1"])))
        h = pool(jax.nn.relu(conv(h, p["c2"])))
        h = h.reshape(h.shape[0], -1)  # flattened (h, w, c)
        h = jax.nn.relu(h @ p["l1"]["w"] + p["l1"]["b"])
        return cross_entropy(h @ p["l2"]["w"] + p["l2"]["b"], y)

    def lstm_loss(p, x, y):
        H = p["w_hh"].shape[1]
        xs = jnp.swapaxes(x, 0, 1)  # [T, B, in]
        xp = xs @ p["w_ih"].T + p["b_ih"] + p["b_hh"]  # input projection of all steps at once

        def cell(carry, xt):
            h, c = carry
            gates = xt + h @ p["w_hh"].T
            i, f, g, o = jnp.split(gates, 4, axis=-1)  # PyTorch's gate order
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None

        z = jnp.zeros((x.shape[0], H), x.dtype)
        (h, _), _ = lax.scan(cell, (z, z), xp)
        out = h @ p["head"]["w"] + p["head"]["b"]
        return jnp.mean((out - y) ** 2)

    def adam_init(params):
        return (params, tree_map(jnp.zeros_like, params), tree_map(jnp.zeros_like, params), jnp.zeros((), jnp.float32))

    def adam_step(loss_fn, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
        def step(state, x, y):
            params, m, v, t = state
            loss, g = jax.value_and_grad(loss_fn)(params, x, y)
            t = t + 1.0
            m = tree_map(lambda m, g: b1 * m + (1.0 - b1) * g, m, g)
            v = tree_map(lambda v, g: b2 * v + (1.0 - b2) * g * g, v, g)
            step_size = lr / (1.0 - b1**t)
            bc2 = jnp.sqrt(1.0 - b2**t)
            params = tree_map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / bc2 + eps), params, m, v)
            return (params, m, v, t), loss

        return step

    def sgd_init(params):
        return (params, tree_map(jnp.zeros_like, params))

    def sgd_momentum_step(loss_fn, lr=0.01, momentum=0.9):
        def step(state, x, y):
            params, buf = state
            loss, g = jax.value_and_grad(loss_fn)(params, x, y)
            buf = tree_map(lambda b, g: momentum * b + g, buf, g)  # = PyTorch's SGD (buf starts at 0)
            params = tree_map(lambda p, b: p - lr * b, params, buf)
            return (params, buf), loss

        return step

    return dict(mlp_loss=mlp_loss, cnn_loss=cnn_loss, lstm_loss=lstm_loss, adam_init=adam_init,
                adam_step=adam_step, sgd_init=sgd_init, sgd_momentum_step=sgd_momentum_step)


def jax_workloads(timer, names):
    import jax
    import jax.numpy as jnp
    import numpy as np

    FW = "jax"

    def jit_emit(workload, variant, fn, args, notes, per=1, check_of=None, **extra):
        """Time a jit-compiled fn(*args) (block_until_ready inside the timed region); `check_of`
        maps its output to the `check` values (computed after the first call, so compile_s is
        the real first-call time)."""
        jf = jax.jit(fn)
        compile_s = first_call(lambda: jax.block_until_ready(jf(*args)))
        if check_of is not None:
            extra["check"] = check_of(jf(*args))
        st = timer.measure_call(lambda: jax.block_until_ready(jf(*args)), per=per)
        emit(workload, FW, variant, st, notes, compile_s=compile_s, **extra)
        return jf

    def W1_add():
        x = jnp.ones(1, dtype=jnp.float32)

        def batch(n):
            t0 = time.perf_counter()
            for _ in range(n):
                (x + 1).block_until_ready()
            return time.perf_counter() - t0

        emit("W1_add", FW, "eager", timer.measure(batch),
             "eager op dispatch (no jit) of y = x + 1 on a [1] f32 array, block_until_ready per op; seconds per op")

        def adds(x):
            for _ in range(W1_GRAD_OPS):
                y = x + 1
            return y.sum()

        g = jax.grad(adds)
        emit("W1_add", FW, "grad", timer.measure_call(lambda: jax.block_until_ready(g(x)), per=W1_GRAD_OPS),
             f"jax.grad (no jit) of a function doing {W1_GRAD_OPS} x (y = x + 1) on a [1] f32 array, then y.sum(); "
             f"time of the whole grad call / {W1_GRAD_OPS}")

    def W1_chain_fwd_bwd():
        def chain(x):
            for _ in range(CHAIN_STEPS):
                x = x * 1.0001 + 0.0001
            return x.sum()

        g = jax.grad(chain)
        x = jnp.asarray([0.5], dtype=jnp.float32)
        emit("W1_chain_fwd_bwd", FW, "eager",
             timer.measure_call(lambda: jax.block_until_ready(g(x)), per=2 * CHAIN_STEPS),
             "jax.grad without jit (traces and dispatches op by op on every call) of 1,000 x (mul, add) on a [1] f32 "
             "array + sum; time / 2000 ops")
        jit_emit("W1_chain_fwd_bwd", "jit", g, (x,),
                 "jax.jit(jax.grad(chain)): XLA fuses/simplifies the whole chain; time / 2000 ops",
                 per=2 * CHAIN_STEPS)

    # -- training steps: models and optimizers in plain jax.numpy (jax_train_defs), one jit per step --
    T = jax_train_defs()

    def uniform(rng, shape, fan_in):
        b = 1.0 / math.sqrt(fan_in)
        return jnp.asarray(rng.uniform(-b, b, shape).astype(np.float32))

    def linear_init(rng, fan_in, fan_out):  # PyTorch's default init; weight stored [in, out]
        return {"w": uniform(rng, (fan_in, fan_out), fan_in), "b": uniform(rng, (fan_out,), fan_in)}

    def time_step(workload, step, state, x, y, notes):
        jstep = jax.jit(step, donate_argnums=(0,))
        box = {"s": state}

        def call():
            box["s"], loss = jstep(box["s"], x, y)
            jax.block_until_ready((box["s"], loss))

        compile_s = first_call(call)
        emit(workload, FW, "jit", timer.measure_call(call), notes, compile_s=compile_s)

    def W2_mlp_step():
        rng = np.random.default_rng(0)
        params = [linear_init(rng, 784, 512), linear_init(rng, 512, 512), linear_init(rng, 512, 10)]
        x = jnp.asarray(rng.standard_normal((128, 784)).astype(np.float32))
        y = jnp.asarray((np.arange(128) * 7) % 10)
        time_step("W2_mlp_step", T["adam_step"](T["mlp_loss"]), T["adam_init"](params), x, y,
                  "whole step (value_and_grad + Adam in jax.numpy) in one jax.jit, state buffers donated")

    def W3_cnn_step():
        rng = np.random.default_rng(1)
        params = {
            "c1": {"w": uniform(rng, (3, 3, 1, 32), 9), "b": uniform(rng, (32,), 9)},
            "c2": {"w": uniform(rng, (3, 3, 32, 64), 9 * 32), "b": uniform(rng, (64,), 9 * 32)},
            "l1": linear_init(rng, 3136, 128),
            "l2": linear_init(rng, 128, 10),
        }
        x = jnp.asarray(rng.standard_normal((64, 28, 28, 1)).astype(np.float32))  # NHWC
        y = jnp.asarray((np.arange(64) * 7) % 10)
        time_step("W3_cnn_step", T["sgd_momentum_step"](T["cnn_loss"]), T["sgd_init"](params), x, y,
                  "lax.conv_general_dilated in NHWC/HWIO (XLA CPU's native layout; input given as [64,28,28,1]), "
                  "lax.reduce_window max pool, SGD momentum in jax.numpy; one jax.jit, state donated")

    def W4_lstm_step():
        rng = np.random.default_rng(2)
        H = 128
        params = {
            "w_ih": uniform(rng, (4 * H, 8), H), "w_hh": uniform(rng, (4 * H, H), H),
            "b_ih": uniform(rng, (4 * H,), H), "b_hh": uniform(rng, (4 * H,), H),
            "head": linear_init(rng, H, 1),
        }
        x = jnp.asarray(rng.standard_normal((32, 64, 8)).astype(np.float32))
        y = jnp.asarray(rng.standard_normal((32, 1)).astype(np.float32))
        time_step("W4_lstm_step", T["adam_step"](T["lstm_loss"]), T["adam_init"](params), x, y,
                  "LSTM via lax.scan (gate order i,f,g,o; input projection hoisted), Adam in jax.numpy; one jax.jit, state donated")

    arm_loss = arm_loss_jax

    def arm_check():
        with jax.enable_x64(True):
            vg = jax.jit(jax.value_and_grad(arm_loss))
            loss, g = vg(jnp.zeros((ARM["steps"], 2), dtype=jnp.float64))
            assert loss.dtype == jnp.float64
            return {"loss": float(loss), "grad_norm": float(np.linalg.norm(np.asarray(g, dtype=np.float64)))}

    def W5_arm_bptt():
        check = arm_check()
        log(f"  W5 check (f64, tau=0): {check}")
        rng = np.random.default_rng(5)
        tau = jnp.asarray((0.1 * rng.standard_normal((ARM["steps"], 2))).astype(np.float32))
        jit_emit("W5_arm_bptt", "jit_scan", jax.value_and_grad(arm_loss), (tau,),
                 "jax.jit(jax.value_and_grad) of a lax.scan over the 500 steps, f32; check in f64 under jax.enable_x64",
                 check=check)

    def w6_setup():
        rng = np.random.default_rng(6)
        A = jnp.asarray((rng.standard_normal((2000, 1000)) / math.sqrt(1000.0)).astype(np.float32))
        x = jnp.asarray(rng.standard_normal(1000).astype(np.float32))
        v = jnp.asarray(rng.standard_normal(1000).astype(np.float32))

        def f(A, x):
            return jnp.sum(jax.nn.softplus(A @ x)) + 0.5 * jnp.sum(x * x)

        return f, A, x, v

    def W6_grad():
        f, A, x, _ = w6_setup()
        jit_emit("W6_grad", "jit", jax.value_and_grad(f, argnums=1), (A, x),
                 "jax.jit(jax.value_and_grad(f)), A passed as an argument")

    def W6_hvp():
        f, A, x, v = w6_setup()

        def hvp(A, x, v):
            return jax.jvp(lambda x: jax.grad(f, argnums=1)(A, x), (x,), (v,))[1]

        jit_emit("W6_hvp", "jit", hvp, (A, x, v), "forward-over-reverse: jax.jit(jax.jvp(jax.grad(f)))")

    def w7_setup():
        d, K, n = GMM_SIZE["d"], GMM_SIZE["K"], GMM_SIZE["n"]
        rng = np.random.default_rng(7)
        args = tuple(jnp.asarray(a, dtype=jnp.float64) for a in gmm_inputs(rng, d, K, n))
        assert args[0].dtype == jnp.float64
        return make_gmm_objective("jax", d, K, n), args

    def W7_gmm_obj():
        with jax.enable_x64(True):
            f, args = w7_setup()
            jit_emit("W7_gmm_obj", "jit", f, args,
                     "f64 (jax.enable_x64); d=10 K=25 n=10000; Q(x-mu) as x@Q^T - Q mu (one GEMM), jax.scipy logsumexp")

    def W7_gmm_obj_grad():
        with jax.enable_x64(True):
            f, args = w7_setup()
            jit_emit("W7_gmm_obj_grad", "jit", jax.value_and_grad(f, argnums=(0, 1, 2)), args,
                     "f64 (jax.enable_x64); jax.jit(jax.value_and_grad) w.r.t. alphas, means, icf")

    def W8_matmul_grad():
        rng = np.random.default_rng(8)
        A = jnp.asarray(rng.standard_normal((1024, 1024)).astype(np.float32))
        B = jnp.asarray(rng.standard_normal((1024, 1024)).astype(np.float32))
        jit_emit("W8_matmul_grad", "jit", jax.value_and_grad(lambda A, B: jnp.sum(A @ B), argnums=(0, 1)), (A, B),
                 "jax.jit(jax.value_and_grad) w.r.t. A and B")

    def W9_ode_lv_grad():
        from jax.experimental.ode import odeint

        with jax.enable_x64(True):
            def lotka_volterra(z, t, p):
                return jnp.stack([(p[0] - p[1] * z[1]) * z[0], (p[3] * z[0] - p[2]) * z[1]])

            ts = jnp.arange(21.0, dtype=jnp.float64)

            def loss(y0, p):
                return jnp.sum(jnp.log(odeint(lotka_volterra, y0, ts, p, rtol=1e-6, atol=1e-6)))

            y0 = jnp.asarray([33.0, 6.2], dtype=jnp.float64)
            p = jnp.asarray([0.55, 0.028, 0.80, 0.024], dtype=jnp.float64)

            def check_of(out):
                l, (gy, gp) = out
                g = np.concatenate([np.asarray(gy), np.asarray(gp)])
                return {"loss": float(l), "grad_norm": float(np.sqrt(np.sum(g * g)))}

            jit_emit("W9_ode_lv_grad", "jit", jax.value_and_grad(loss, argnums=(0, 1)), (y0, p),
                     "f64; jax.experimental.ode.odeint (Dormand-Prince, adjoint by backsolve), rtol = atol = 1e-6",
                     check_of=check_of)

    return {k: v for k, v in locals().items() if k in WORKLOADS}


# ----------------------------------------------------------------------------------------------
# Self-test: the peers against each other, numpy and finite differences (not part of the output)
# ----------------------------------------------------------------------------------------------
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
