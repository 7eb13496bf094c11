//! Loops over `Params` values: [`fori_loop`] and [`scan`]. This version runs them eagerly as
//! plain Rust loops over ordinary ops, so every transform differentiates and batches them like
//! any other code (and `jit` unrolls them into the staged program); staging a loop body once
//! is later work.

use crate::params::Params;
use crate::tensor::Tensor;

/// `f(hi - 1, … f(lo + 1, f(lo, init)))`: the body applied for `i` in `lo..hi` to a carried
/// value (JAX's `fori_loop`). An empty range returns `init`.
///
/// ```
/// use adjoint_core::{control::fori_loop, grad, Tensor};
/// // x ↦ x·2⁵, and its derivative 32.
/// let f = |x: &Tensor| fori_loop(0, 5, |_, y: &Tensor| y * 2.0, x.clone());
/// assert_eq!(f(&Tensor::scalar(1.5f64)).item(), 48.0);
/// assert_eq!(grad(f)(&Tensor::scalar(1.5f64)).item(), 32.0);
/// ```
pub fn fori_loop<C: Params>(lo: usize, hi: usize, f: impl Fn(usize, &C) -> C, init: C) -> C {
    let mut carry = init;
    for i in lo..hi {
        carry = f(i, &carry);
    }
    carry
}

/// Scan `f` over axis 0 of every leaf of `xs`, threading a carry: returns the last carry and
/// every step's `y`, each leaf stacked on a new axis 0 (JAX's `lax.scan`). All leaves of `xs`
/// must have the same length along axis 0. With zero steps, `f` is called once on zeros of one
/// step's shapes, only to learn the shapes of `y` (its leaves come back with length 0).
///
/// ```
/// use adjoint_core::{control::scan, Tensor};
/// // Running sums: carry the total, emit it at each step.
/// let xs = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]);
/// let (total, ys) = scan(|c: &Tensor, x: &Tensor| { let s = c + x; (s.clone(), s) }, &Tensor::scalar(0.0f64), &xs);
/// assert_eq!((total.item(), ys.to_vec::<f64>()), (6.0, vec![1.0, 3.0, 6.0]));
/// ```
#[track_caller]
pub fn scan<C: Params + Clone, X: Params, Y: Params>(
    f: impl Fn(&C, &X) -> (C, Y),
    init: &C,
    xs: &X,
) -> (C, Y) {
    let n = steps(xs);
    let mut carry = init.clone();
    let mut ys: Vec<Y> = Vec::with_capacity(n);
    for i in 0..n {
        let x = xs.map_tensors(&mut |t| t.narrow(0, i, 1).squeeze(0));
        let (c, y) = f(&carry, &x);
        carry = c;
        ys.push(y);
    }
    let Some(first) = ys.first() else {
        let x = xs.map_tensors(&mut |t| Tensor::full_of(&t.shape()[1..], 0.0, t.dtype()));
        let y = f(&carry, &x).1;
        let empty = y.map_tensors(&mut |t| {
            let mut s = vec![0];
            s.extend_from_slice(t.shape());
            Tensor::full_of(&s, 0.0, t.dtype())
        });
        return (carry, empty);
    };
    let leaves: Vec<Vec<Tensor>> = ys.iter().map(|y| y.leaves()).collect();
    let mut k = 0;
    let stacked = first.map_tensors(&mut |_| {
        let parts: Vec<&Tensor> = leaves.iter().map(|l| &l[k]).collect();
        k += 1;
        Tensor::stack(&parts, 0)
    });
    (carry, stacked)
}

/// The common length along axis 0 of the leaves of `xs`.
#[track_caller]
fn steps<X: Params>(xs: &X) -> usize {
    let mut n: Option<usize> = None;
    xs.for_each_tensor(&mut |t| {
        let len = match t.shape().first() {
            Some(&d) => d,
            None => crate::primitive::misuse(
                "scan",
                "a leaf of xs is a scalar; every leaf needs an axis 0 to scan over".into(),
            ),
        };
        match n {
            Some(m) if m != len => crate::primitive::misuse(
                "scan",
                format!("the leaves of xs have different lengths along axis 0 ({m} and {len})"),
            ),
            _ => n = Some(len),
        }
    });
    n.unwrap_or_else(|| crate::primitive::misuse("scan", "xs has no tensor leaves to scan over".into()))
}
