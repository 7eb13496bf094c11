//! `check_grads`: verify derivatives against finite differences, to any order, in both modes.
//!
//! For users testing their own components as much as for adjoint's own primitive table.
//!
//! - **Forward mode**: the JVP along a random direction `v` is compared with the central
//!   difference `(f(x + εv) - f(x - εv)) / 2ε`.
//! - **Reverse mode**: the VJP is checked by the transpose identity `⟨vjp(u), v⟩ = ⟨u, J·v⟩`
//!   for random `u` and `v`, with `J·v` taken from the finite differences (so each mode is
//!   checked on its own).
//! - **Higher orders** recurse, as JAX's `check_grads` does: the forward check is repeated on
//!   `(x, v) ↦ jvp(f, x, v)`, the reverse check on `x ↦ vjp(f, x)(f(x))`.
//!
//! Work in `f64`: finite differences in `f32` are too coarse to tell a wrong rule from rounding.

use std::fmt;
use std::rc::Rc;

use adjoint_tensor::random::{normal, Key};

use crate::params::Params;
use crate::tensor::Tensor;
use crate::transforms::{jvp, vjp};

/// Which mode(s) of differentiation to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward mode (JVP) against finite differences.
    Fwd,
    /// Reverse mode (VJP) against the forward mode by the transpose identity.
    Rev,
}

/// Both modes, the usual choice.
pub const BOTH: &[Mode] = &[Mode::Fwd, Mode::Rev];

/// A failed derivative check.
#[derive(Clone, Debug, PartialEq)]
pub struct GradCheckError {
    /// What was compared (`"jvp vs finite differences, order 1"`, …).
    pub what: String,
    /// The derivative computed by adjoint.
    pub computed: Vec<f64>,
    /// The reference value.
    pub expected: Vec<f64>,
    /// Seed of the random directions, to reproduce the failure.
    pub seed: u64,
}

impl fmt::Display for GradCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &[f64]| {
            let s: Vec<String> = v.iter().take(8).map(|x| format!("{x:.6e}")).collect();
            format!("[{}{}]", s.join(", "), if v.len() > 8 { ", …" } else { "" })
        };
        write!(
            f,
            "check_grads failed: {} (seed {}):\n  computed {}\n  expected {}",
            self.what,
            self.seed,
            show(&self.computed),
            show(&self.expected)
        )
    }
}

impl std::error::Error for GradCheckError {}

/// Tolerances and step of a check.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Tolerance {
    /// Defaults by dtype: `f64` step 1e-5 and tolerance 1e-5; `f32` step 1e-2, tolerance 5e-2.
    pub fn for_f64() -> Tolerance {
        Tolerance { eps: 1e-5, atol: 1e-5, rtol: 1e-5 }
    }
    /// Defaults for `f32` inputs.
    pub fn for_f32() -> Tolerance {
        Tolerance { eps: 1e-2, atol: 5e-2, rtol: 5e-2 }
    }
}

type FlatFn = Rc<dyn Fn(&Vec<Tensor>) -> Vec<Tensor>>;

/// Check `f`'s derivatives at `args` up to `order` in the given `modes`; panics with the
/// failing comparison (and the seed) if a derivative is wrong.
///
/// ```
/// use adjoint_core::testing::{check_grads, BOTH};
/// use adjoint_core::Tensor;
/// let x = Tensor::from_vec(vec![0.3f64, -1.2, 2.0], &[3]);
/// check_grads(|x: &Tensor| (x.sin() * x).exp(), &x, 2, BOTH);
/// ```
#[track_caller]
pub fn check_grads<P: Params + 'static, O: Params, F: Fn(&P) -> O + 'static>(
    f: F,
    args: &P,
    order: usize,
    modes: &[Mode],
) {
    if let Err(e) = try_check_grads(f, args, order, modes, 0) {
        panic!("{e}");
    }
}

/// [`check_grads`] returning the failure instead of panicking, with a chosen `seed`.
pub fn try_check_grads<P: Params + 'static, O: Params, F: Fn(&P) -> O + 'static>(
    f: F,
    args: &P,
    order: usize,
    modes: &[Mode],
    seed: u64,
) -> Result<(), GradCheckError> {
    let template = args.map_tensors(&mut |t| t.clone());
    let flat: FlatFn = Rc::new(move |leaves: &Vec<Tensor>| f(&template.with_leaves(leaves)).leaves());
    let leaves = args.leaves();
    let tol = if leaves.iter().any(|t| t.dtype() == adjoint_tensor::DType::F32) {
        Tolerance::for_f32()
    } else {
        Tolerance::for_f64()
    };
    let mut key = Key::new(seed);
    check_rec(&flat, &leaves, order, modes, tol, &mut key, seed, 1)
}

fn random_like(key: &mut Key, ts: &[Tensor]) -> Vec<Tensor> {
    ts.iter()
        .map(|t| {
            let (k, next) = key.split2();
            *key = next;
            Tensor::from_array(normal(&k, t.shape(), t.dtype()))
        })
        .collect()
}

fn flat_values(ts: &[Tensor]) -> Vec<f64> {
    ts.iter().flat_map(|t| t.to_vec::<f64>()).collect()
}

fn inner(a: &[Tensor], b: &[Tensor]) -> f64 {
    flat_values(a).iter().zip(flat_values(b)).map(|(x, y)| x * y).sum()
}

fn close(computed: &[f64], expected: &[f64], tol: Tolerance) -> bool {
    computed.len() == expected.len()
        && computed.iter().zip(expected).all(|(a, b)| {
            (a - b).abs() <= tol.atol + tol.rtol * a.abs().max(b.abs())
                || (a.is_nan() && b.is_nan())
                || a == b
        })
}

#[allow(clippy::too_many_arguments)]
fn check_rec(
    f: &FlatFn,
    x: &Vec<Tensor>,
    order: usize,
    modes: &[Mode],
    tol: Tolerance,
    key: &mut Key,
    seed: u64,
    depth: usize,
) -> Result<(), GradCheckError> {
    if order == 0 {
        return Ok(());
    }
    let v = random_like(key, x);
    // Forward mode against central differences.
    let (y, t) = jvp(|a: &Vec<Tensor>| f(a), x, &v);
    let shifted = |s: f64| -> Vec<Tensor> {
        let xs: Vec<Tensor> = x.iter().zip(&v).map(|(a, d)| a + &(d * s)).collect();
        f(&xs)
    };
    let plus = flat_values(&shifted(tol.eps));
    let minus = flat_values(&shifted(-tol.eps));
    let fd: Vec<f64> = plus.iter().zip(&minus).map(|(p, m)| (p - m) / (2.0 * tol.eps)).collect();
    let tv = flat_values(&t);
    if modes.contains(&Mode::Fwd) && !close(&tv, &fd, tol) {
        return Err(GradCheckError {
            what: format!("jvp vs central finite differences, order {depth}"),
            computed: tv,
            expected: fd,
            seed,
        });
    }
    if modes.contains(&Mode::Rev) {
        let u = random_like(key, &y);
        let (_, pb) = vjp(|a: &Vec<Tensor>| f(a), x);
        let g = pb(&u);
        let lhs = inner(&g, &v);
        // Against the finite differences themselves, so that reverse mode is checked
        // independently of forward mode.
        let rhs: f64 = flat_values(&u).iter().zip(&fd).map(|(a, b)| a * b).sum();
        if !close(&[lhs], &[rhs], tol) {
            return Err(GradCheckError {
                what: format!("vjp transpose identity <vjp(u), v> = <u, J v> (J v by finite differences), order {depth}"),
                computed: vec![lhs],
                expected: vec![rhs],
                seed,
            });
        }
    }
    if order > 1 {
        if modes.contains(&Mode::Fwd) {
            let f2 = f.clone();
            let n = x.len();
            let g: FlatFn = Rc::new(move |xt: &Vec<Tensor>| {
                let (p, t) = (xt[..n].to_vec(), xt[n..].to_vec());
                jvp(|a: &Vec<Tensor>| f2(a), &p, &t).1
            });
            let mut xt = x.clone();
            xt.extend(v.iter().cloned());
            check_rec(&g, &xt, order - 1, modes, tol, key, seed, depth + 1)?;
        }
        if modes.contains(&Mode::Rev) {
            let f2 = f.clone();
            let g: FlatFn = Rc::new(move |a: &Vec<Tensor>| {
                let (y, pb) = vjp(|b: &Vec<Tensor>| f2(b), a);
                pb(&y)
            });
            check_rec(&g, x, order - 1, modes, tol, key, seed, depth + 1)?;
        }
    }
    Ok(())
}
