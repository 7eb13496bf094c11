//! `det`: the determinant by expansion along the first row of each minor (cmpad's
//! `det_by_minor`), and its gradient.
//!
//! Scalar tier: the recursion is written once over [`Real`] and differentiated by the `Var`
//! tape. The work is `O(ℓ!)` scalar multiply-adds — exactly what a tape node at a few
//! nanoseconds is for; tensor ops would pay their per-op overhead on 1×1 work.

use adjoint_scalar::{preaccumulate, Real, Tape, Var};
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
///
/// `leaf` may take over a minor (returning its determinant); the primal never does, the
/// gradient preaccumulates the small minors (see [`det_gradient`]).
fn det_of_minor<T: Real, L>(a: &[T], n: usize, m: usize, r: &mut [usize], c: &mut [usize], leaf: &L) -> T
where
    L: Fn(&[T], usize, usize, &[usize], &[usize]) -> Option<T>,
{
    if let Some(v) = leaf(a, n, m, r, c) {
        return v;
    }
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
        let det_s = det_of_minor(a, n, m - 1, r, c, leaf);
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
    det_of_minor(a, ell, ell, &mut r, &mut c, &|_: &[T], _, _, _: &[usize], _: &[usize]| None)
}

/// Minors of this size (or the whole matrix, when smaller) are preaccumulated by the gradient.
pub const PREACCUMULATE: usize = 7;

/// `∇ det(A)` by reverse mode through the same recursion, with every `k × k` minor
/// (`k =` [`PREACCUMULATE`]) recorded as one linear combination of its `k²` entries
/// ([`preaccumulate`]): its local gradient comes from a sweep of a small tape that stays in
/// cache (about 27,000 nodes for `k = 7`), so the outer tape holds `k² − 1` nodes per minor
/// instead of about `2e·k!`. For `ℓ = 11` the outer tape has half a million nodes (12 MB)
/// instead of 240 million (5.8 GB), and the gradient takes about 4 primal evaluations (taping
/// everything: 20; `k` chosen by measuring 4…9 at `ℓ = 10, 11`).
pub fn det_gradient(a: &[f64], ell: usize, k: usize) -> Vec<f64> {
    let tape = Tape::new();
    let av: Vec<Var> = tape.vars(a);
    let leaf = |a: &[Var], n: usize, m: usize, r: &[usize], c: &[usize]| {
        if m != k {
            return None;
        }
        let mut entries = Vec::with_capacity(m * m);
        let mut ri = r[n];
        for _ in 0..m {
            let mut cj = c[n];
            for _ in 0..m {
                entries.push(a[ri * n + cj]);
                cj = c[cj];
            }
            ri = r[ri];
        }
        Some(preaccumulate(&entries, |x| det(x, m)))
    };
    let mut r: Vec<usize> = (1..=ell).chain([0]).collect();
    let mut c = r.clone();
    let y = det_of_minor(&av, ell, ell, &mut r, &mut c, &leaf);
    let mut g = vec![0.0; a.len()];
    tape.gradient_into(y, &av, &mut g);
    g
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
    // Expansion by minors: about e·ℓ! calls. The gradient's tape: ℓ!/k! preaccumulated k × k
    // minors of k² − 1 nodes, 2m nodes per m × m minor above them, and one inner k × k tape
    // (about 6·k! nodes). ℓ! saturates by ℓ = 21, so the product stops there (ℓ itself can be
    // anything until checked against A).
    let factorial = |l: u64| (2..=l.min(21)).fold(1u64, |f, i| f.saturating_mul(i));
    let k = PREACCUMULATE.min(ell) as u64;
    let (minors, inner) = (factorial(ell64) / factorial(k), 6 * factorial(k));
    let tape_nodes = product(&[minors, k * k + 2 * k + 2]).saturating_add(inner);
    let factorial = factorial(ell64);
    let checked = check_len("det: A", &format!("ell² = {ell}²"), product(&[ell64, ell64]), inp.a.len())
        .and_then(|_| {
            limits.check_steps(
                &format!("det: expansion by minors of a {ell} × {ell} matrix"),
                product(&[factorial, 3]),
            )
        })
        .and_then(|_| match function {
            "gradient" => limits.check_tape(&format!("det: the gradient's tape for ell = {ell}"), tape_nodes),
            _ => Ok(()),
        });
    if let Err(e) = checked {
        return Some(Err(e));
    }
    let a = inp.a;
    Some(Ok(match function {
        "primal" => timed(input, || det(&a, ell), |v| json!(v)),
        "gradient" => timed(input, || det_gradient(&a, ell, PREACCUMULATE.min(ell)), |g| json!(g)),
        _ => return None,
    }))
}
