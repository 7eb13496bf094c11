#!/usr/bin/env python3
"""Peer half of the side-by-side benchmark suite: the workloads of
`crates/adjoint/examples/bench_suite.rs` in NumPy, PyTorch and JAX, printing the same JSON
lines (one object per line on stdout). `benches/run.sh` runs one process per library and thread
count, with the thread environment (OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS,
XLA_FLAGS, OMP_PROC_BIND, OMP_PLACES, taskset) set before the library is imported.

    python peers.py --lib numpy|torch|jax --threads N [--quick] [--suite tensor|transforms|vmap|all|train]

`--suite train` (PyTorch only, not part of `all`: it runs one workload per process, chosen with
`--only mlp|cnn|lstm`, so that peak-RSS figures do not mix) times full training steps; see
`torch_train` and `crates/adjoint-nn/examples/train_bench.rs`.

Timing is the same as the Rust side: two warm-up calls, then `samples` samples of `inner`
calls each (a sample lasts at least 10 ms, 2 ms in quick mode); the reported `sec` is the
median over samples of the time per call. Garbage collection is off while timing (as timeit).
Results of asynchronous libraries (JAX) are waited for inside the timed call.
"""

import argparse
import gc
import json
import os
import platform
import sys
import time

CHAIN = 1000


class Cfg:
    def __init__(self, args):
        self.quick = args.quick
        self.threads = args.threads
        self.suite = args.suite
        self.only = args.only
        self.lib = args.lib
        self.samples = 3 if args.quick else 7
        self.min_sample = 0.002 if args.quick else 0.010

    def want(self, name):
        return self.only is None or self.only in name


def measure(cfg, f):
    """Median seconds per call of f, and the number of timed calls."""
    t0 = time.perf_counter()
    f()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    f()
    one = max(min(time.perf_counter() - t0, first), 1e-9)
    inner = int(min(max(-(-cfg.min_sample // one), 1), 1_000_000))
    per = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(cfg.samples):
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            per.append((time.perf_counter() - t0) / inner)
    finally:
        if gc_was:
            gc.enable()
    per.sort()
    return per[len(per) // 2], inner * cfg.samples


def emit(cfg, suite, name, size, sec, reps, metric=None, work=None, lib=None, **extra):
    d = {
        "lib": lib or cfg.lib,
        "suite": suite,
        "name": name,
        "size": size,
        "threads": cfg.threads,
        "sec": sec,
        "reps": reps,
        "metric": metric,
        "value": (work / sec / 1e9) if metric else None,
    }
    d.update(extra)
    print(json.dumps(d), flush=True)


def sizes_elementwise(cfg):
    return [(1 << 20, "1M"), (1 << 22, "4M")] if cfg.quick else [(1 << 20, "1M"), (1 << 24, "16M")]


def sizes_matmul(cfg):
    return [256, 1024] if cfg.quick else [256, 1024, 2048]


# ----------------------------------------------------------------------------------------------
# NumPy
# ----------------------------------------------------------------------------------------------
def numpy_meta(cfg):
    import numpy as np

    info = {"lib": "numpy", "meta": True, "threads": cfg.threads, "version": np.__version__}
    try:
        import threadpoolctl

        info["threadpools"] = [
            {k: p.get(k) for k in ("internal_api", "version", "num_threads", "architecture", "threading_layer")}
            for p in threadpoolctl.threadpool_info()
        ]
    except Exception as e:  # noqa: BLE001
        info["threadpools"] = f"threadpoolctl unavailable: {e}"
    try:
        cfgd = np.show_config(mode="dicts")
        info["blas"] = cfgd.get("Build Dependencies", {}).get("blas", {})
    except Exception:  # noqa: BLE001
        pass
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE")
    info["OPENBLAS_L2_SIZE"] = os.environ.get("OPENBLAS_L2_SIZE")
    print(json.dumps(info), flush=True)


def numpy_tensor(cfg):
    import numpy as np

    rng = np.random.default_rng(0)
    if cfg.want("matmul"):
        for n in sizes_matmul(cfg):
            a = rng.standard_normal((n, n), dtype=np.float32)
            b = rng.standard_normal((n, n), dtype=np.float32)
            s, r = measure(cfg, lambda: a @ b)
            emit(cfg, "tensor", "matmul_f32", str(n), s, r, "GFLOP/s", 2.0 * n**3)
    for n, label in sizes_elementwise(cfg):
        a = rng.uniform(-3, 3, n).astype(np.float32)
        b = rng.uniform(-3, 3, n).astype(np.float32)
        byt = 4.0 * n
        if cfg.want("copy"):
            dst = np.empty_like(a)
            s, r = measure(cfg, lambda: np.copyto(dst, a))
            emit(cfg, "tensor", "copy_prealloc_f32", label, s, r, "GB/s", 2 * byt)
            s, r = measure(cfg, lambda: a.copy())
            emit(cfg, "tensor", "copy_alloc_f32", label, s, r, "GB/s", 2 * byt)
        if cfg.want("add"):
            s, r = measure(cfg, lambda: a + b)
            emit(cfg, "tensor", "add_f32", label, s, r, "GB/s", 3 * byt)
        if cfg.want("exp"):
            s, r = measure(cfg, lambda: np.exp(a))
            emit(cfg, "tensor", "exp_f32", label, s, r, "GB/s", 2 * byt)
    if cfg.want("sum"):
        n = 2048 if cfg.quick else 4096
        x = rng.standard_normal((n, n), dtype=np.float32)
        s, r = measure(cfg, lambda: x.sum(axis=1))
        emit(cfg, "tensor", "sum_last_axis_f32", f"{n}x{n}", s, r, "GB/s", 4.0 * n * n)


def numpy_transforms(cfg):
    import numpy as np

    if cfg.want("chain"):
        x = np.array([0.5], dtype=np.float32)

        def chain():
            y = x
            for _ in range(CHAIN // 2):
                y = y * np.float32(1.0001) + np.float32(0.0001)
            return y

        s, r = measure(cfg, chain)
        emit(cfg, "transforms", "chain_eager_nograd", "1000 ops", s, r, us_per_op=s / CHAIN * 1e6)


# ----------------------------------------------------------------------------------------------
# PyTorch
# ----------------------------------------------------------------------------------------------
def torch_setup(cfg):
    import torch

    torch.set_num_threads(cfg.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    info = {
        "lib": "torch",
        "meta": True,
        "threads": cfg.threads,
        "version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "mkl": torch.backends.mkl.is_available(),
        "parallel_info": torch.__config__.parallel_info().strip().splitlines()[:6],
    }
    print(json.dumps(info), flush=True)
    return torch


def torch_tensor(cfg):
    import torch

    torch.manual_seed(0)
    with torch.inference_mode():
        if cfg.want("matmul"):
            for n in sizes_matmul(cfg):
                a = torch.randn(n, n)
                b = torch.randn(n, n)
                s, r = measure(cfg, lambda: a @ b)
                emit(cfg, "tensor", "matmul_f32", str(n), s, r, "GFLOP/s", 2.0 * n**3)
        for n, label in sizes_elementwise(cfg):
            a = torch.empty(n).uniform_(-3, 3)
            b = torch.empty(n).uniform_(-3, 3)
            byt = 4.0 * n
            if cfg.want("copy"):
                dst = torch.empty_like(a)
                s, r = measure(cfg, lambda: dst.copy_(a))
                emit(cfg, "tensor", "copy_prealloc_f32", label, s, r, "GB/s", 2 * byt)
                s, r = measure(cfg, lambda: a.clone())
                emit(cfg, "tensor", "copy_alloc_f32", label, s, r, "GB/s", 2 * byt)
            if cfg.want("add"):
                s, r = measure(cfg, lambda: a + b)
                emit(cfg, "tensor", "add_f32", label, s, r, "GB/s", 3 * byt)
            if cfg.want("exp"):
                s, r = measure(cfg, lambda: torch.exp(a))
                emit(cfg, "tensor", "exp_f32", label, s, r, "GB/s", 2 * byt)
        if cfg.want("sum"):
            n = 2048 if cfg.quick else 4096
            x = torch.randn(n, n)
            s, r = measure(cfg, lambda: x.sum(dim=1))
            emit(cfg, "tensor", "sum_last_axis_f32", f"{n}x{n}", s, r, "GB/s", 4.0 * n * n)
        if cfg.want("conv"):
            nb = 16 if cfg.quick else 64
            x = torch.randn(nb, 32, 28, 28)
            w = torch.randn(64, 32, 3, 3)
            f = torch.nn.functional.conv2d
            s, r = measure(cfg, lambda: f(x, w, padding=1))
            flops = 2.0 * nb * 64 * 28 * 28 * 32 * 9
            emit(cfg, "tensor", "conv2d_f32", f"{nb}x32x28x28*64x32x3x3", s, r, "GFLOP/s", flops)


def torch_transforms(cfg):
    import torch

    torch.manual_seed(0)
    if cfg.want("chain"):

        def chain(x):
            y = x
            for _ in range(CHAIN // 2):
                y = y * 1.0001 + 0.0001
            return y

        x = torch.tensor([0.5], dtype=torch.float32)
        s, r = measure(cfg, lambda: chain(x))
        emit(cfg, "transforms", "chain_eager_nograd", "1000 ops", s, r, us_per_op=s / CHAIN * 1e6)
        xg = torch.tensor([0.5], dtype=torch.float32, requires_grad=True)
        s, r = measure(cfg, lambda: chain(xg).sum())
        emit(cfg, "transforms", "chain_fwd_taped", "1000 ops", s, r, us_per_op=s / CHAIN * 1e6)
        s, r = measure(cfg, lambda: torch.autograd.grad(chain(xg).sum(), xg))
        emit(cfg, "transforms", "chain_fwd_bwd", "1000 ops", s, r, us_per_op=s / CHAIN * 1e6)
    if cfg.want("grad_matmul"):
        n = 512 if cfg.quick else 1024
        a = torch.randn(n, n, requires_grad=True)
        b = torch.randn(n, n, requires_grad=True)
        s, r = measure(cfg, lambda: torch.autograd.grad((a @ b).sum(), (a, b)))
        emit(cfg, "transforms", "grad_sum_matmul", f"{n}x{n}", s, r, "GFLOP/s", 6.0 * n**3)
    if cfg.want("hvp"):
        m, n = (1000, 500) if cfg.quick else (2000, 1000)
        size = f"A {m}x{n}"
        A = torch.randn(m, n)
        x0 = torch.randn(n)
        v = torch.randn(n)
        softplus = torch.nn.functional.softplus

        def f(x):
            return softplus(A @ x).sum() + 0.5 * (x * x).sum()

        with torch.no_grad():
            s, r = measure(cfg, lambda: f(x0))
        emit(cfg, "transforms", "hvp_f_value", size, s, r)
        x = x0.clone().requires_grad_(True)
        s_grad, r = measure(cfg, lambda: torch.autograd.grad(f(x), x))
        emit(cfg, "transforms", "hvp_f_grad", size, s_grad, r)

        def hvp():
            (g,) = torch.autograd.grad(f(x), x, create_graph=True)
            return torch.autograd.grad(g @ v, x)

        s, r = measure(cfg, hvp)
        emit(cfg, "transforms", "hvp", size, s, r, hvp_over_grad=s / s_grad, method="double backward")


def mlp_init(rng, np):
    """The MLP 784-512-512-10 of the vmap suite (He-scaled normal weights, zero biases), a batch of
    128 inputs and one-hot labels `(7 i) mod 10`."""
    dims = [784, 512, 512, 10]
    params = []
    for i in range(3):
        params.append((rng.standard_normal((dims[i], dims[i + 1])) * np.sqrt(2.0 / dims[i])).astype(np.float32))
        params.append(np.zeros(dims[i + 1], dtype=np.float32))
    x = rng.standard_normal((128, 784)).astype(np.float32)
    y = np.zeros((128, 10), dtype=np.float32)
    y[np.arange(128), (np.arange(128) * 7) % 10] = 1.0
    return params, x, y


MLP_SIZE = "784-512-512-10, batch 128"


def torch_vmap(cfg):
    """Per-example gradients with torch.func.vmap(grad), and Jacobians with torch.func."""
    import numpy as np
    import torch
    from torch.func import grad, jacfwd, jacrev, vjp, vmap

    rng = np.random.default_rng(0)
    if cfg.want("mlp"):
        params, x, y = mlp_init(rng, np)
        params = [torch.from_numpy(p) for p in params]
        x, y = torch.from_numpy(x), torch.from_numpy(y)

        def mlp(p, x):
            h = torch.relu(x @ p[0] + p[1])
            h = torch.relu(h @ p[2] + p[3])
            return h @ p[4] + p[5]

        def loss_one(p, x, y):
            return -(torch.log_softmax(mlp(p, x), 0) * y).sum()

        def loss_batch(p, x, y):
            return -(torch.log_softmax(mlp(p, x), 1) * y).sum() / x.shape[0]

        ps = [p.clone().requires_grad_(True) for p in params]
        s_b, r = measure(cfg, lambda: torch.autograd.grad(loss_batch(ps, x, y), ps))
        emit(cfg, "vmap", "mlp_grad_batched", MLP_SIZE, s_b, r)
        pe = vmap(grad(loss_one), in_dims=(None, 0, 0))
        s, r = measure(cfg, lambda: pe(params, x, y))
        emit(cfg, "vmap", "mlp_per_example_grads", MLP_SIZE, s, r, over_batched_grad=s / s_b,
             method="torch.func.vmap(grad)")
    if cfg.want("jac"):
        n = 100
        w1 = torch.from_numpy(rng.standard_normal((n, n)).astype(np.float32)) * 0.1
        b1 = torch.from_numpy(rng.standard_normal(n).astype(np.float32))
        w2 = torch.from_numpy(rng.standard_normal((n, n)).astype(np.float32)) * 0.1
        x = torch.from_numpy(rng.standard_normal(n).astype(np.float32))

        def f(x):
            return w2 @ torch.tanh(w1 @ x + b1)

        jr = jacrev(f)
        s_b, r = measure(cfg, lambda: jr(x))
        emit(cfg, "vmap", "jacrev_batched", "100->100", s_b, r, method="torch.func.jacrev")

        def loop():
            y, pb = vjp(f, x)
            return torch.stack([pb(e)[0] for e in torch.eye(n)])

        s, r = measure(cfg, loop)
        emit(cfg, "vmap", "jacrev_loop", "100->100", s, r, loop_over_batched=s / s_b, method="torch.func.vjp per row")
        jf = jacfwd(f)
        s, r = measure(cfg, lambda: jf(x))
        emit(cfg, "vmap", "jacfwd_batched", "100->100", s, r, method="torch.func.jacfwd")


# ----------------------------------------------------------------------------------------------
# Training steps (PyTorch eager), the workloads of crates/adjoint-nn/examples/train_bench.rs
# ----------------------------------------------------------------------------------------------
def _status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _mb(kb):
    return None if kb is None else round(kb / 1024.0, 1)


def torch_train(cfg):
    """Same timing and memory procedure as train_bench.rs: three warm-up steps, samples of at
    least 100 ms (30 ms quick), median time per step; peak RSS (VmHWM) minus the RSS before the
    model was built, and the peak during the timed steps minus the RSS when they started."""
    import torch

    def run(name, size, base_kb, step):
        samples, min_sample = (3, 0.030) if cfg.quick else (7, 0.100)
        one, loss = float("inf"), 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            loss = step()
            one = min(one, time.perf_counter() - t0)
        inner = int(min(max(-(-min_sample // max(one, 1e-9)), 1), 100_000))
        steady = _status_kb("VmRSS:")
        reset = _reset_peak()
        gc_was = gc.isenabled()
        gc.disable()
        per = []
        c0, w0 = time.process_time(), time.perf_counter()
        try:
            for _ in range(samples):
                t0 = time.perf_counter()
                for _ in range(inner):
                    loss = step()
                per.append((time.perf_counter() - t0) / inner)
        finally:
            if gc_was:
                gc.enable()
        util = (time.process_time() - c0) / (time.perf_counter() - w0)
        per.sort()
        hwm = _status_kb("VmHWM:")
        emit(cfg, "train", name, size, per[len(per) // 2], inner * samples,
             cpu_util=round(util, 3),
             peak_mb=_mb(hwm - base_kb) if hwm is not None and base_kb is not None else None,
             step_peak_mb=_mb(hwm - steady) if hwm is not None and steady is not None and reset else None,
             rss_mb=_mb(hwm), loss=loss, num_threads=torch.get_num_threads())

    # The models, data and optimizers are W2–W4 of the workload suite, defined once in
    # workloads.py (same directory).
    from workloads import torch_train_setup, torch_train_step

    torch.zeros(1).sum()  # thread pools up before the baseline RSS, as on the Rust side
    for key, workload, name, size in [
        ("mlp", "W2", "mlp_adam", "784-512-512-10, batch 128"),
        ("cnn", "W3", "cnn_sgd_momentum", "[64,1,28,28], 2 conv + 2 linear"),
        ("lstm", "W4", "lstm_adam", "in 8, hidden 128, seq 64, batch 32"),
    ]:
        if cfg.want(key):
            base = _status_kb("VmRSS:")
            step = torch_train_step(*torch_train_setup(workload)[:4])
            run(name, size, base, lambda: step().item())


# ----------------------------------------------------------------------------------------------
# JAX
# ----------------------------------------------------------------------------------------------
def jax_setup(cfg):
    import jax

    jax.config.update("jax_platforms", "cpu")
    info = {
        "lib": "jax",
        "meta": True,
        "threads": cfg.threads,
        "version": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "XLA_FLAGS": os.environ.get("XLA_FLAGS"),
    }
    print(json.dumps(info), flush=True)
    return jax


def jax_tensor(cfg):
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)

    def timed(fn, *args):
        jf = jax.jit(fn)
        return lambda: jf(*args).block_until_ready()

    if cfg.want("matmul"):
        for n in sizes_matmul(cfg):
            a = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
            b = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
            s, r = measure(cfg, timed(jnp.matmul, a, b))
            emit(cfg, "tensor", "matmul_f32", str(n), s, r, "GFLOP/s", 2.0 * n**3)
    for n, label in sizes_elementwise(cfg):
        a = jnp.asarray(rng.uniform(-3, 3, n).astype(np.float32))
        b = jnp.asarray(rng.uniform(-3, 3, n).astype(np.float32))
        byt = 4.0 * n
        if cfg.want("add"):
            s, r = measure(cfg, timed(jnp.add, a, b))
            emit(cfg, "tensor", "add_f32", label, s, r, "GB/s", 3 * byt)
        if cfg.want("exp"):
            s, r = measure(cfg, timed(jnp.exp, a))
            emit(cfg, "tensor", "exp_f32", label, s, r, "GB/s", 2 * byt)
    if cfg.want("sum"):
        n = 2048 if cfg.quick else 4096
        x = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        s, r = measure(cfg, timed(lambda x: x.sum(axis=1), x))
        emit(cfg, "tensor", "sum_last_axis_f32", f"{n}x{n}", s, r, "GB/s", 4.0 * n * n)
    if cfg.want("conv"):
        nb = 16 if cfg.quick else 64
        x = jnp.asarray(rng.standard_normal((nb, 32, 28, 28), dtype=np.float32))
        w = jnp.asarray(rng.standard_normal((64, 32, 3, 3), dtype=np.float32))

        def conv(x, w):
            return jax.lax.conv_general_dilated(
                x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW")
            )

        s, r = measure(cfg, timed(conv, x, w))
        flops = 2.0 * nb * 64 * 28 * 28 * 32 * 9
        emit(cfg, "tensor", "conv2d_f32", f"{nb}x32x28x28*64x32x3x3", s, r, "GFLOP/s", flops)


def jax_transforms(cfg):
    """Each workload twice: eager (op-by-op dispatch; `jax.grad` traces on every call) as lib
    `jax`, and under `jax.jit` (compiled once, XLA fuses the whole function) as lib `jax_jit`."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)

    def both(name, size, fn, *args, work=None, metric=None, **extra):
        jf = jax.jit(fn)
        out = {}
        for lib, g in (("jax", fn), ("jax_jit", jf)):
            s, r = measure(cfg, lambda: jax.block_until_ready(g(*args)))
            ex = dict(extra)
            if name.startswith("chain"):
                ex["us_per_op"] = s / CHAIN * 1e6
            emit(cfg, "transforms", name, size, s, r, metric, work, lib=lib, **ex)
            out[lib] = s
        return out

    if cfg.want("chain"):

        def chain(x):
            y = x
            for _ in range(CHAIN // 2):
                y = y * 1.0001 + 0.0001
            return y

        x = jnp.asarray(np.array([0.5], dtype=np.float32))
        both("chain_eager_nograd", "1000 ops", chain, x)
        both("chain_fwd_bwd", "1000 ops", jax.grad(lambda x: chain(x).sum()), x)
    if cfg.want("grad_matmul"):
        n = 512 if cfg.quick else 1024
        a = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        b = jnp.asarray(rng.standard_normal((n, n), dtype=np.float32))
        g = jax.grad(lambda a, b: (a @ b).sum(), argnums=(0, 1))
        both("grad_sum_matmul", f"{n}x{n}", g, a, b, metric="GFLOP/s", work=6.0 * n**3)
    if cfg.want("hvp"):
        m, n = (1000, 500) if cfg.quick else (2000, 1000)
        size = f"A {m}x{n}"
        A = jnp.asarray(rng.standard_normal((m, n), dtype=np.float32))
        x = jnp.asarray(rng.standard_normal(n, dtype=np.float32))
        v = jnp.asarray(rng.standard_normal(n, dtype=np.float32))

        def f(x):
            return jax.nn.softplus(A @ x).sum() + 0.5 * (x * x).sum()

        both("hvp_f_value", size, f, x)
        sg = both("hvp_f_grad", size, jax.grad(f), x)

        def hvp(x, v):
            return jax.jvp(jax.grad(f), (x,), (v,))[1]

        jf = jax.jit(hvp)
        for lib, g in (("jax", hvp), ("jax_jit", jf)):
            s, r = measure(cfg, lambda: jax.block_until_ready(g(x, v)))
            emit(cfg, "transforms", "hvp", size, s, r, lib=lib, hvp_over_grad=s / sg[lib], method="jvp(grad)")


def jax_vmap(cfg):
    """Per-example gradients with jax.vmap(jax.grad) and Jacobians with jax.jacrev/jacfwd, eager
    (lib `jax`) and under jax.jit (lib `jax_jit`)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(0)

    def both(name, size, fn, *args, **extra):
        out = {}
        for lib, g in (("jax", fn), ("jax_jit", jax.jit(fn))):
            s, r = measure(cfg, lambda: jax.block_until_ready(g(*args)))
            ex = {k: (v(s, lib) if callable(v) else v) for k, v in extra.items()}
            emit(cfg, "vmap", name, size, s, r, lib=lib, **ex)
            out[lib] = s
        return out

    if cfg.want("mlp"):
        params, x, y = mlp_init(rng, np)
        params = [jnp.asarray(p) for p in params]
        x, y = jnp.asarray(x), jnp.asarray(y)

        def mlp(p, x):
            h = jax.nn.relu(x @ p[0] + p[1])
            h = jax.nn.relu(h @ p[2] + p[3])
            return h @ p[4] + p[5]

        def loss_one(p, x, y):
            return -(jax.nn.log_softmax(mlp(p, x), axis=0) * y).sum()

        def loss_batch(p, x, y):
            return -(jax.nn.log_softmax(mlp(p, x), axis=1) * y).sum() / x.shape[0]

        sb = both("mlp_grad_batched", MLP_SIZE, jax.grad(loss_batch), params, x, y)
        pe = jax.vmap(jax.grad(loss_one), in_axes=(None, 0, 0))
        both("mlp_per_example_grads", MLP_SIZE, pe, params, x, y,
             over_batched_grad=lambda s, lib: s / sb[lib], method="jax.vmap(jax.grad)")
    if cfg.want("jac"):
        n = 100
        w1 = jnp.asarray(rng.standard_normal((n, n)).astype(np.float32)) * 0.1
        b1 = jnp.asarray(rng.standard_normal(n).astype(np.float32))
        w2 = jnp.asarray(rng.standard_normal((n, n)).astype(np.float32)) * 0.1
        x = jnp.asarray(rng.standard_normal(n).astype(np.float32))

        def f(x):
            return w2 @ jnp.tanh(w1 @ x + b1)

        sb = both("jacrev_batched", "100->100", jax.jacrev(f), x, method="jax.jacrev")
        eye = jnp.eye(n, dtype=jnp.float32)

        def loop(x):
            y, pb = jax.vjp(f, x)
            return jnp.stack([pb(eye[i])[0] for i in range(n)])

        s, r = measure(cfg, lambda: jax.block_until_ready(loop(x)))
        emit(cfg, "vmap", "jacrev_loop", "100->100", s, r, lib="jax", loop_over_batched=s / sb["jax"],
             method="jax.vjp per row, eager")
        both("jacfwd_batched", "100->100", jax.jacfwd(f), x, method="jax.jacfwd")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True, choices=["numpy", "torch", "jax"])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--suite", default="all", choices=["all", "tensor", "transforms", "vmap", "train"])
    ap.add_argument("--only", default=None)
    cfg = Cfg(ap.parse_args())
    tensor = cfg.suite in ("all", "tensor")
    transforms = cfg.suite in ("all", "transforms")
    vm = cfg.suite in ("all", "vmap")
    if cfg.lib == "numpy":
        numpy_meta(cfg)
        if tensor:
            numpy_tensor(cfg)
        if transforms:
            numpy_transforms(cfg)
    elif cfg.lib == "torch":
        torch_setup(cfg)
        if tensor:
            torch_tensor(cfg)
        if transforms:
            torch_transforms(cfg)
        if vm:
            torch_vmap(cfg)
        if cfg.suite == "train":
            torch_train(cfg)
    else:
        jax_setup(cfg)
        if tensor:
            jax_tensor(cfg)
        if transforms:
            jax_transforms(cfg)
        if vm:
            jax_vmap(cfg)
    print(json.dumps({"lib": cfg.lib, "meta": True, "python": platform.python_version(), "done": True}), file=sys.stderr)


if __name__ == "__main__":
    main()
