"""What the peer halves of the workload suite share (`workloads.py` runs them): the thread
environment, workload names, the timer and the JSON output, and the framework-neutral definitions
of W5 (the arm) and W7 (ADBench's GMM), written once for every array library."""

import gc
import json
import math
import os
import sys
import time

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
