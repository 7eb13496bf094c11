//! The fused n-ary operations of `Real` (`sum_slice`, `dot`, `dot_lit`, `sum_sq`,
//! `log_sum_exp`, `sum_sq_matvec_lit` — as a dense block node and as an n-ary node) against the same function written with binary operations: values and
//! gradients (reverse), forward tangents (`Dual`, `DualVec`), Hessians (`Dual<Var>`), and
//! central finite differences; plus their edge cases and what they record on the tape.

use adjoint_scalar::prelude::*;
use adjoint_scalar::{jacobian_forward, preaccumulate};
use proptest::prelude::*;

#[derive(Clone, Copy, Debug)]
enum Op {
    Sum,
    Dot,
    DotLit,
    SumSq,
    Lse,
    /// `sum_sq_matvec_lit` on the triangular prefix of `x` (rows of 1, 2, 3, … entries),
    /// packed: a dense block node on the `Var` tape.
    MatvecTri,
    /// The same on a reversed copy (ids not consecutive): the n-ary fallback.
    MatvecTriRev,
    /// Dense rows of two entries (`step = 0`), packed.
    MatvecDense,
}

const ALL: [Op; 8] =
    [Op::Sum, Op::Dot, Op::DotLit, Op::SumSq, Op::Lse, Op::MatvecTri, Op::MatvecTriRev, Op::MatvecDense];

/// The entries and (first, step) of the matrix the `Matvec` ops take from `x`.
fn matrix<T: Real>(op: Op, x: &[T]) -> (Vec<T>, usize, usize) {
    match op {
        Op::MatvecDense => (x[..x.len() / 2 * 2].to_vec(), 2, 0),
        _ => {
            let mut rows = 0;
            while (rows + 1) * (rows + 2) / 2 <= x.len() {
                rows += 1;
            }
            let mut m = x[..rows * (rows + 1) / 2].to_vec();
            if matches!(op, Op::MatvecTriRev) {
                m.reverse();
            }
            (m, 1, 1)
        }
    }
}

fn weights(n: usize) -> Vec<f64> {
    (0..n).map(|i| 0.5 - 0.3 * i as f64).collect()
}

/// The fused operation on `x` (for `Dot`, the two halves of `x`).
fn fused<T: Real>(op: Op, x: &[T]) -> T {
    match op {
        Op::Sum => T::sum_slice(x),
        Op::Dot => T::dot(&x[..x.len() / 2], &x[x.len() / 2..]),
        Op::DotLit => T::dot_lit(x, &weights(x.len())),
        Op::SumSq => T::sum_sq(x),
        Op::Lse => T::log_sum_exp(x),
        Op::MatvecTri | Op::MatvecTriRev | Op::MatvecDense => {
            let (m, first, step) = matrix(op, x);
            let m = if matches!(op, Op::MatvecTriRev) { m } else { T::pack(&m) };
            T::sum_sq_matvec_lit(&m, &weights(x.len()), first, step)
        }
    }
}

/// The same with one binary operation at a time.
fn unfused<T: Real>(op: Op, x: &[T]) -> T {
    let mut acc = T::zero();
    match op {
        Op::Sum => x.iter().for_each(|&v| acc += v),
        Op::Dot => {
            let (a, b) = x.split_at(x.len() / 2);
            a.iter().zip(b).for_each(|(&u, &v)| acc += u * v)
        }
        Op::DotLit => x.iter().zip(weights(x.len())).for_each(|(&u, w)| acc += u * T::lit(w)),
        Op::SumSq => x.iter().for_each(|&v| acc += v * v),
        Op::Lse => {
            let m = x.iter().fold(x[0], |m, &v| if v > m { v } else { m });
            let m = T::lit(m.value());
            x.iter().for_each(|&v| acc += (v - m).exp());
            acc = acc.ln() + m;
        }
        Op::MatvecTri | Op::MatvecTriRev | Op::MatvecDense => {
            let (m, first, step) = matrix(op, x);
            let w = weights(x.len());
            let mut o = 0;
            for r in 0.. {
                let len = first + step * r;
                if o + len > m.len() || len == 0 {
                    break;
                }
                let mut l = T::zero();
                m[o..o + len].iter().zip(&w).for_each(|(&u, &c)| l += u * T::lit(c));
                acc += l * l;
                o += len;
            }
        }
    }
    acc
}

/// A nonlinear use of the operation, so that second derivatives are not trivial.
fn outer<T: Real>(y: T, x: &[T]) -> T {
    y.sin() + y * x[0]
}

struct F(Op, bool);
impl ScalarFn for F {
    fn eval<T: Real>(&self, x: &[T]) -> T {
        let y = if self.1 { fused(self.0, x) } else { unfused(self.0, x) };
        outer(y, x)
    }
}
impl VectorFn for F {
    fn eval<T: Real>(&self, x: &[T]) -> Vec<T> {
        vec![ScalarFn::eval(self, x)]
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

#[allow(clippy::needless_range_loop)]
fn check(op: Op, x: &[f64]) {
    let (f, u) = (F(op, true), F(op, false));
    // Values, f64: the fused ops sum in the same order as the folds.
    assert!(close(fused(op, x), unfused(op, x), 1e-14), "{op:?} value");
    // Reverse mode.
    let (vf, gf) = value_and_gradient(|v: &[Var]| ScalarFn::eval(&f, v), x);
    let (vu, gu) = value_and_gradient(|v: &[Var]| ScalarFn::eval(&u, v), x);
    assert!(close(vf, vu, 1e-14), "{op:?}: {vf} vs {vu}");
    // Forward mode, N tangents (DualVec: the default chain_n) and one (Dual: its own).
    let jf = jacobian_forward(&f, x);
    for i in 0..x.len() {
        assert!(close(gf[i], gu[i], 1e-12), "{op:?} grad {i}: {} vs {}", gf[i], gu[i]);
        assert!(close(gf[i], jf.data[i], 1e-12), "{op:?} forward {i}: {} vs {}", gf[i], jf.data[i]);
        let d = derivative(
            |t: Dual<f64>| {
                let xs: Vec<Dual<f64>> =
                    x.iter().enumerate().map(|(j, &v)| if j == i { t } else { Dual::constant(v) }).collect();
                ScalarFn::eval(&f, &xs)
            },
            x[i],
        );
        assert!(close(gf[i], d, 1e-12), "{op:?} dual {i}: {} vs {d}", gf[i]);
        // Central differences.
        let h = 1e-6;
        let (mut a, mut b) = (x.to_vec(), x.to_vec());
        a[i] += h;
        b[i] -= h;
        let fd = (ScalarFn::eval(&f, &a) - ScalarFn::eval(&f, &b)) / (2.0 * h);
        assert!(close(gf[i], fd, 1e-6), "{op:?} fd {i}: {} vs {fd}", gf[i]);
    }
    // Second order: Dual<Var> runs the rules with Var partials.
    let (hf, hu) = (hessian(&f, x), hessian(&u, x));
    for (p, q) in hf.data.iter().zip(&hu.data) {
        assert!(close(*p, *q, 1e-11), "{op:?} hessian {p} vs {q}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn fused_ops_match_their_unfused_composition(
        x in prop::collection::vec(-3.0f64..3.0, 1..10),
        extra in -3.0f64..3.0,
    ) {
        for op in ALL {
            let mut x = x.clone();
            if matches!(op, Op::Dot | Op::MatvecDense) {
                x.extend(x.clone().iter().map(|v| v * 0.7 + extra));
            }
            check(op, &x);
        }
    }
}

#[test]
fn one_n_ary_node_per_call() {
    let t = Tape::new();
    let x = t.vars(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    let slots = |f: &dyn Fn() -> Var| {
        let before = t.len();
        f();
        t.len() - before
    };
    // m terms: ⌈m/2⌉ payload slots and a header; one or two terms: one ordinary node.
    assert_eq!(slots(&|| Var::sum_slice(&x)), 4 + 1);
    assert_eq!(slots(&|| Var::dot(&x[..3], &x[3..6])), 3 + 1);
    assert_eq!(slots(&|| Var::sum_sq(&x[..2])), 1);
    assert_eq!(slots(&|| Var::log_sum_exp(&x[..1])), 1);
    // Constants record nothing and drop out of a mixed call.
    let c = [Var::constant(1.0), Var::constant(2.0)];
    assert_eq!(slots(&|| Var::dot_lit(&c, &[1.0, 1.0])), 0);
    assert!(Var::sum_slice(&c).is_constant());
    // Three variable terms (x0·2, x2·1, x1·1): two payload slots and a header.
    assert_eq!(slots(&|| Var::dot(&[x[0], c[0], x[1]], &[c[1], x[2], c[0]])), 3);
    let y = Var::dot(&[x[0], c[0], x[1]], &[c[1], x[2], c[0]]);
    let g = t.gradient(y);
    assert_eq!([g.wrt(x[0]), g.wrt(x[1]), g.wrt(x[2])], [2.0, 1.0, 1.0]);
}

#[test]
fn n_ary_nodes_compose_with_binary_nodes_and_nested_scopes() {
    let outer_tape = Tape::new();
    let z = outer_tape.var(0.5);
    {
        let t = Tape::new();
        let x = t.vars(&[1.0, 2.0, 3.0]);
        // A header whose adjoint stays zero (unused), then one that is used twice.
        let _unused = Var::sum_slice(&x);
        let s = Var::dot(&[x[0], x[1], x[2], z], &[x[2], x[1], x[0], z]);
        let y = s * s + Var::sum_sq(&[s, x[0], z]);
        let g = t.gradient(y);
        // s = 2·x0·x2 + x1² + z² = 10.25, y = 2s² + x0² + z², z a constant of this scope.
        let ds = 4.0 * 10.25;
        assert_eq!(s.value(), 10.25);
        assert_eq!(
            [g.wrt(x[0]), g.wrt(x[1]), g.wrt(x[2]), g.wrt(z)],
            [ds * 6.0 + 2.0, ds * 4.0, ds * 2.0, 0.0]
        );
    }
    // The enclosing scope's variable gets its derivative through the outer sweep.
    let y = Var::log_sum_exp(&[z, z, Var::constant(0.5)]);
    assert!((outer_tape.gradient(y).wrt(z) - 2.0 / 3.0).abs() < 1e-15);
    // preaccumulate records its linear combination the same way.
    let p = preaccumulate(&[z, z * 2.0, z * 3.0], |v| v[0] * v[1] * v[2]);
    assert!((outer_tape.gradient(p).wrt(z) - 18.0 * 0.25).abs() < 1e-13);
}

#[test]
fn edge_cases() {
    assert_eq!(f64::sum_slice(&[]), 0.0);
    assert_eq!(f64::dot(&[], &[]), 0.0);
    assert_eq!(f64::log_sum_exp(&[]), f64::NEG_INFINITY);
    assert_eq!(f64::log_sum_exp(&[f64::NEG_INFINITY; 2]), f64::NEG_INFINITY);
    // Shifted: no overflow, and the softmax partials stay finite.
    let (v, g) = value_and_gradient(|x: &[Var]| Var::log_sum_exp(x), &[1000.0, 1000.0 + 2f64.ln()]);
    assert!((v - (1000.0 + 3f64.ln())).abs() < 1e-12, "{v}");
    assert!((g[0] - 1.0 / 3.0).abs() < 1e-12 && (g[1] - 2.0 / 3.0).abs() < 1e-12, "{g:?}");
    let e = Var::log_sum_exp(&[]);
    assert!(e.is_constant() && e.value() == f64::NEG_INFINITY);
}

#[test]
#[should_panic(expected = "Real::dot: slices of lengths 2 and 3 (must be equal)")]
fn dot_of_unequal_lengths_panics() {
    let _ = f64::dot(&[1.0, 2.0], &[1.0, 2.0, 3.0]);
}

#[test]
#[should_panic(expected = "Real::dot_lit: slices of lengths 2 and 1 (must be equal)")]
fn dot_lit_of_unequal_lengths_panics_for_var() {
    let t = Tape::new();
    let x = t.vars(&[1.0, 2.0]);
    let _ = Var::dot_lit(&x, &[1.0]);
}

#[test]
fn sum_sq_matvec_lit_records_one_block_node_when_packed() {
    let t = Tape::new();
    let x = t.vars(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let w = [0.5, -1.0, 2.0];
    let slots = |f: &dyn Fn() -> Var| {
        let before = t.len();
        f();
        t.len() - before
    };
    // Consecutive inputs: one header slot, whatever the size; pack adds nothing.
    assert_eq!(slots(&|| Var::sum_sq_matvec_lit(&x, &w, 1, 1)), 1);
    assert_eq!(slots(&|| Var::pack(&x)[0]), 0);
    // Not consecutive: pack records one identity node per entry, after which one slot again;
    // unpacked, the n-ary fallback (6 terms: 3 payload slots and a header).
    let shuffled = [x[1], x[0], x[2], x[3], x[4], x[5]];
    assert_eq!(slots(&|| Var::pack(&shuffled)[0]), 6);
    assert_eq!(slots(&|| Var::sum_sq_matvec_lit(&shuffled, &w, 1, 1)), 4);
    let p = Var::pack(&shuffled);
    assert_eq!(slots(&|| Var::sum_sq_matvec_lit(&p, &w, 1, 1)), 1);
    // l = [0.5·2, 0.5·1 − 1·3, 0.5·4 − 5 + 2·6] = [1, −2.5, 9]; ∂y/∂mᵣⱼ = 2·lᵣ·wⱼ.
    let y = Var::sum_sq_matvec_lit(&p, &w, 1, 1);
    assert_eq!(y.value(), 1.0 + 6.25 + 81.0);
    let g = t.gradient(y);
    let got: Vec<f64> = x.iter().map(|&v| g.wrt(v)).collect();
    assert_eq!(got, vec![2.0 * -2.5 * 0.5, 2.0 * 1.0 * 0.5, 5.0, 9.0, -18.0, 36.0]);
    // A constant entry keeps the n-ary path (and no derivative flows into it).
    let with_const = [x[0], Var::constant(2.0), x[2]];
    assert_eq!(slots(&|| Var::sum_sq_matvec_lit(&with_const, &w, 1, 1)), 1);
}

#[test]
fn block_nodes_in_nested_scopes_and_preaccumulate() {
    let outer_tape = Tape::new();
    let m = outer_tape.vars(&[1.0, 2.0, 3.0]);
    let w = [1.0, 1.0];
    {
        // The block's variables belong to the enclosing scope: constants here.
        let t = Tape::new();
        let s = t.var(2.0);
        let y = Var::sum_sq_matvec_lit(&m, &w, 1, 1) * s;
        let g = t.gradient(y);
        assert_eq!([g.wrt(s), g.wrt(m[0]), g.wrt(m[2])], [1.0 + 25.0, 0.0, 0.0]);
    }
    // The inner scope's side buffer is gone; the outer block records and sweeps as usual.
    let y = Var::sum_sq_matvec_lit(&m, &w, 1, 1);
    let g = outer_tape.gradient(y);
    assert_eq!([g.wrt(m[0]), g.wrt(m[1]), g.wrt(m[2])], [2.0, 10.0, 10.0]);
    // Inside preaccumulate (a nested scope of its own): one n-ary node outside.
    let p = preaccumulate(&m, |v| Var::sum_sq_matvec_lit(&Var::pack(&v[..2]), &w, 2, 0) + v[2]);
    let g = outer_tape.gradient(p);
    assert_eq!([g.wrt(m[0]), g.wrt(m[1]), g.wrt(m[2])], [6.0, 6.0, 1.0]);
}

#[test]
#[should_panic(
    expected = "Real::sum_sq_matvec_lit: 4 entries do not fill whole rows of first + step·r = 1 + 1·r entries"
)]
fn sum_sq_matvec_lit_of_a_ragged_matrix_panics() {
    let t = Tape::new();
    let x = t.vars(&[1.0, 2.0, 3.0, 4.0]);
    let _ = Var::sum_sq_matvec_lit(&x, &[1.0, 1.0, 1.0], 1, 1);
}

#[test]
#[should_panic(expected = "Real::sum_sq_matvec_lit: the longest row has 3 entries but w has 2")]
fn sum_sq_matvec_lit_with_a_short_w_panics() {
    let _ = f64::sum_sq_matvec_lit(&[1.0, 2.0, 3.0], &[1.0, 1.0], 3, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any trapezoid (an empty first row, dense rows, growing rows): the dense block node, the
    /// n-ary fallback and `f64` agree on the value, and the block node's gradient matches the
    /// fallback's and central finite differences.
    #[test]
    fn sum_sq_matvec_lit_on_any_trapezoid(
        first in 0usize..4,
        step in 0usize..3,
        rows in 1usize..5,
        seed in prop::collection::vec(-2.0f64..2.0, 40),
    ) {
        prop_assume!(first + step * (rows - 1) > 0);
        let len: usize = (0..rows).map(|r| first + step * r).sum();
        let x = &seed[..len];
        let w = &weights(first + step * (rows - 1) + 1);
        let v64 = f64::sum_sq_matvec_lit(x, w, first, step);
        let (vb, gb) = value_and_gradient(|v: &[Var]| Var::sum_sq_matvec_lit(&Var::pack(v), w, first, step), x);
        // The fallback: the same entries as nodes two ids apart (not consecutive).
        let (vf, gf) = value_and_gradient(
            |v: &[Var]| {
                let spaced: Vec<Var> = v
                    .iter()
                    .map(|&x| {
                        let _gap = x + 1.0;
                        x * 1.0
                    })
                    .collect();
                Var::sum_sq_matvec_lit(&spaced, w, first, step)
            },
            x,
        );
        prop_assert_eq!(vb, v64);
        prop_assert_eq!(vf, v64);
        for i in 0..len {
            prop_assert!(close(gb[i], gf[i], 1e-13), "entry {}: {} vs {}", i, gb[i], gf[i]);
            let h = 1e-6;
            let (mut a, mut b) = (x.to_vec(), x.to_vec());
            a[i] += h;
            b[i] -= h;
            let fd = (f64::sum_sq_matvec_lit(&a, w, first, step) - f64::sum_sq_matvec_lit(&b, w, first, step)) / (2.0 * h);
            prop_assert!(close(gb[i], fd, 1e-6), "entry {}: {} vs fd {}", i, gb[i], fd);
        }
    }
}
