//! `det`: the determinant by expansion along the first row of each minor (cmpad's
//! `det_by_minor`), and its gradient.
//!
//! Scalar tier: the recursion is written once over [`Real`] and differentiated by the `Var`
//! tape. The work is `O(ℓ!)` scalar multiply-adds — exactly what a tape node at a few
//! nanoseconds is for; tensor ops would pay their per-op overhead on 1×1 work.

use adjoint_scalar::{Real, Tape, Var};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::limits::{check_len, product, Limits};
use crate::{parse, timed, Evaluated};

#[derive(Deserialize)]
struct Input {
    #[serde(rename = "A")]
    a: Vec<f64>,
    ell: usize,
}

/// Determinant of the minor of `a` (`n × n`, row-major) given by the linked lists `r`, `c`
/// of remaining rows and columns (`r[n]`, `c[n]` are the heads), of size `m`.
fn det_of_minor<T: Real>(a: &[T], n: usize, m: usize, r: &mut [usize], c: &mut [usize]) -> T {
    let r0 = r[n];
    let mut cj = c[n];
    if m == 1 {
        return a[r0 * n + cj];
    }
    let mut det = T::zero();
    let mut positive = true;
    r[n] = r[r0];
    let mut cj1 = n;
    for _ in 0..m {
        let m0j = a[r0 * n + cj];
        c[cj1] = c[cj];
        let det_s = det_of_minor(a, n, m - 1, r, c);
        c[cj1] = cj;
        let term = m0j * det_s;
        det = if positive { det + term } else { det - term };
        cj1 = cj;
        cj = c[cj];
        positive = !positive;
    }
    r[n] = r0;
    det
}

/// `det(A)` for `A` (`ℓ × ℓ`, row-major), generic over the scalar type.
pub fn det<T: Real>(a: &[T], ell: usize) -> T {
    let mut r: Vec<usize> = (1..=ell).chain([0]).collect();
    let mut c = r.clone();
    det_of_minor(a, ell, ell, &mut r, &mut c)
}

/// Evaluate `primal` or `gradient`.
pub fn evaluate(function: &str, input: &Value, limits: &Limits) -> Option<Result<Evaluated, String>> {
    let inp: Input = match parse("det", input) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    let ell = inp.ell;
    if ell == 0 {
        return Some(Err("det: ell must be positive".into()));
    }
    let ell64 = ell as u64;
    // Expansion by minors: about e·ℓ! calls, 6·ℓ! tape nodes for the gradient. ℓ! saturates by
    // ℓ = 21, so the product stops there (ℓ itself can be anything until checked against A).
    let factorial = (2..=ell64.min(21)).fold(1u64, |f, i| f.saturating_mul(i));
    let checked = check_len("det: A", &format!("ell² = {ell}²"), product(&[ell64, ell64]), inp.a.len())
        .and_then(|_| {
            limits.check_steps(
                &format!("det: expansion by minors of a {ell} × {ell} matrix"),
                product(&[factorial, 3]),
            )
        })
        .and_then(|_| match function {
            "gradient" => limits
                .check_tape(&format!("det: the gradient's tape for ell = {ell}"), product(&[factorial, 6])),
            _ => Ok(()),
        });
    if let Err(e) = checked {
        return Some(Err(e));
    }
    let a = inp.a;
    Some(Ok(match function {
        "primal" => timed(input, || det(&a, ell), |v| json!(v)),
        "gradient" => timed(
            input,
            || {
                let tape = Tape::new();
                let av: Vec<Var> = tape.vars(&a);
                let y = det(&av, ell);
                let mut g = vec![0.0; a.len()];
                tape.gradient_into(y, &av, &mut g);
                g
            },
            |g| json!(g),
        ),
        _ => return None,
    }))
}
