"""Fit the polynomial of `exp_poly_f32` (crates/adjoint-tensor/src/ops/fastmath.rs).

e^r on |r| <= ln2/2 as 1 + r + c2 r^2 + ... + c6 r^6, minimising the largest relative error
(Lawson's iteratively reweighted least squares on a dense grid, in f64), then the coefficients
rounded to f32 and the error re-measured with them.

    python3 benches/python/fit_exp_poly.py

Prints the f32 coefficients (c2..c6) and both errors; last run: 3.06e-9 fitted, 3.84e-9 with
f32 coefficients (0.499999940, 0.166665211, 0.0416683890, 0.00836870819, 0.00138145930).
"""

import numpy as np


def main() -> None:
    a = np.log(2.0) / 2.0
    r = np.linspace(-a, a, 20001)
    f = np.exp(r)
    basis = np.stack([r**k for k in range(2, 7)], axis=1)
    rhs = f - 1.0 - r
    w = np.ones_like(r)
    for _ in range(200):
        sw = np.sqrt(w) / f
        c, *_ = np.linalg.lstsq(basis * sw[:, None], rhs * sw, rcond=None)
        err = np.abs((basis @ c - rhs) / f)
        w = w * err
        w /= w.sum()
    c32 = c.astype(np.float32)
    err32 = np.abs((basis @ c32.astype(np.float64) - rhs) / f).max()
    print("c2..c6 (f32):", ", ".join(f"{x:.9g}" for x in c32))
    print(f"max relative error: {err.max():.3g} fitted, {err32:.3g} with f32 coefficients")


if __name__ == "__main__":
    main()
