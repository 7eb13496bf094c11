"""NumPy's half of crates/adjoint-solvers/examples/linalg_bench.rs: solve and cholesky of a
1000x1000 float64 matrix, same matrix, same timing loop (2 warm-ups, 7 samples of >= 50 ms,
median). NumPy has no gradients: the gradient rows are compared with the cost of the NumPy
operations the gradient needs (solve + transposed solve + outer product; cholesky + the two
triangular solves of the backward rule), written out by hand.

Run: OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 python3 benches/python/linalg_peers.py
"""
import json
import time

import numpy as np
import scipy.linalg as sl


def measure(f, warmups=2, samples=7, min_sample=0.05):
    one = min(_once(f) for _ in range(warmups))
    batch = max(1, int(np.ceil(min_sample / max(one, 1e-9))))
    per = []
    for _ in range(samples):
        t = time.perf_counter()
        for _ in range(batch):
            f()
        per.append((time.perf_counter() - t) / batch)
    per.sort()
    return np.quantile(per, 0.5), np.quantile(per, 0.1), np.quantile(per, 0.9)


def _once(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


n = 1000
k = np.arange(n * n)
m = ((k * 7919 % 1000) / 1000.0 - 0.5).reshape(n, n)
a = m @ m.T + n * np.eye(n)
b = np.ones((n, 1))


def solve_grad():
    x = np.linalg.solve(a, b)
    bbar = np.linalg.solve(a.T, np.ones_like(x))
    return -bbar @ x.T


def chol_grad():
    l = np.linalg.cholesky(a)
    p = np.tril(l.T @ np.ones_like(l))
    p[np.diag_indices(n)] *= 0.5
    z = sl.solve_triangular(l, p, lower=True, trans="T")
    return sl.solve_triangular(l, z.T, lower=True, trans="T").T


for name, f in [
    ("solve", lambda: np.linalg.solve(a, b)),
    ("cholesky", lambda: np.linalg.cholesky(a)),
    ("solve_grad_a", solve_grad),
    ("cholesky_grad", chol_grad),
]:
    med, p10, p90 = measure(f)
    print(json.dumps({"lib": "numpy", "name": name, "n": n, "median_s": med, "p10_s": p10, "p90_s": p90}))
