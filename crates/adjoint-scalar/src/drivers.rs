//! Drivers: `derivative`, `gradient`, `jacobian`, `hessian` and friends.
//!
//! Rust closures cannot be generic, so there are two ways to hand a function over:
//!
//! - **A closure over one AD type**, where one type suffices: [`derivative`] (over
//!   `Dual<T>`), [`gradient`] and [`value_and_gradient`] (over `Var`). A generic
//!   `fn f<T: Real>` is passed by name and instantiated by inference.
//! - **A value implementing [`ScalarFn`] / [`VectorFn`]**, whose `eval` is generic over
//!   `T: Real`, where the driver picks the type: [`jacobian`] (forward `DualVec` chunks or
//!   reverse `Var` by shape), [`hessian`] and [`hessian_vector_product`] (`Dual<Var>`).
//!
//! ## Block-sparse Jacobians
//!
//! [`jacobian_forward`] pushes the seed matrix through `DualVec<f64, 8>`: each pass gives 8
//! columns. When the sparsity is known, columns that share no row (structurally orthogonal
//! columns) can share a tangent slot: seed slot `k` with the sum of the unit vectors of every
//! column of colour `k`, and read entry `(i, j)` from slot `colour(j)` of output `i`. A
//! block-diagonal or banded Jacobian with blocks of width `w` then needs `w` tangents
//! whatever `n` is — e.g. bundle adjustment's 15 columns per residual block. The same idea
//! works in reverse with row colouring and one sweep per row colour. [`jacobian_coloured`]
//! implements the forward variant for a caller-supplied colouring.

use std::ops::Index;

use crate::dual::{Dual, DualVec};
use crate::real::Real;
use crate::tape::{Tape, Var};

/// A scalar function of a vector, generic over the number type.
///
/// ```
/// use adjoint_scalar::{hessian, Real, ScalarFn};
/// struct Rosenbrock;
/// impl ScalarFn for Rosenbrock {
///     fn eval<T: Real>(&self, x: &[T]) -> T {
///         let one = T::one();
///         (one - x[0]).powi(2) + T::lit(100.0) * (x[1] - x[0] * x[0]).powi(2)
///     }
/// }
/// let h = hessian(&Rosenbrock, &[1.0, 1.0]);
/// assert_eq!((h[(0, 0)], h[(0, 1)], h[(1, 1)]), (802.0, -400.0, 200.0));
/// ```
pub trait ScalarFn {
    /// Evaluate at `x`.
    fn eval<T: Real>(&self, x: &[T]) -> T;
}

/// A vector function of a vector, generic over the number type.
///
/// ```
/// use adjoint_scalar::{jacobian, Real, VectorFn};
/// struct Polar;
/// impl VectorFn for Polar {
///     fn eval<T: Real>(&self, x: &[T]) -> Vec<T> {
///         vec![x[0] * x[1].cos(), x[0] * x[1].sin()]
///     }
/// }
/// let j = jacobian(&Polar, &[2.0, 0.0]);
/// assert_eq!(j.row(0), &[1.0, 0.0]);
/// assert_eq!(j.row(1), &[0.0, 2.0]);
/// ```
pub trait VectorFn {
    /// Evaluate at `x`.
    fn eval<T: Real>(&self, x: &[T]) -> Vec<T>;
}

/// A dense row-major matrix (Jacobians and Hessians).
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Entries, row by row.
    pub data: Vec<f64>,
}

impl Matrix {
    /// A zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix { rows, cols, data: vec![0.0; rows * cols] }
    }
    /// Row `i`.
    #[track_caller]
    pub fn row(&self, i: usize) -> &[f64] {
        assert!(i < self.rows, "Matrix::row: row {i} of a {}x{} matrix", self.rows, self.cols);
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

impl Index<(usize, usize)> for Matrix {
    type Output = f64;
    #[track_caller]
    fn index(&self, (i, j): (usize, usize)) -> &f64 {
        assert!(
            i < self.rows && j < self.cols,
            "Matrix index ({i}, {j}) out of a {}x{} matrix",
            self.rows,
            self.cols
        );
        &self.data[i * self.cols + j]
    }
}

/// `f'(x)` by forward mode. `T` may itself be an AD type, so derivatives nest.
///
/// ```
/// use adjoint_scalar::{derivative, Dual, Real};
/// fn f<T: Real>(x: T) -> T { x.sin() * x }
/// assert_eq!(derivative(f, 1.0), 1.0f64.cos() + 1.0f64.sin());
/// // Second derivative: differentiate the derivative (generic code nests on its own).
/// let f2 = derivative(|x: Dual<f64>| derivative(f, x), 1.0);
/// assert!((f2 - (2.0 * 1.0f64.cos() - 1.0f64.sin())).abs() < 1e-15);
/// ```
pub fn derivative<T: Real, F: FnOnce(Dual<T>) -> Dual<T>>(f: F, x: T) -> T {
    f(Dual::variable(x)).eps
}

/// `(f(x), f'(x))` by forward mode.
///
/// ```
/// use adjoint_scalar::prelude::*;
/// assert_eq!(value_and_derivative(|x| x.exp(), 0.0), (1.0, 1.0));
/// ```
pub fn value_and_derivative<T: Real, F: FnOnce(Dual<T>) -> Dual<T>>(f: F, x: T) -> (T, T) {
    let y = f(Dual::variable(x));
    (y.re, y.eps)
}

/// `∇f(x)` by reverse mode, in a fresh tape scope.
///
/// ```
/// use adjoint_scalar::{gradient, Real, Var};
/// fn f<T: Real>(x: &[T]) -> T { x[0] * x[1] + x[1].exp() }
/// assert_eq!(gradient(|x: &[Var]| f(x), &[2.0, 0.0]), vec![0.0, 3.0]);
/// ```
pub fn gradient<F: FnOnce(&[Var]) -> Var>(f: F, x: &[f64]) -> Vec<f64> {
    value_and_gradient(f, x).1
}

/// `(f(x), ∇f(x))` by reverse mode, in a fresh tape scope.
///
/// ```
/// use adjoint_scalar::prelude::*;
/// let (v, g) = value_and_gradient(|x: &[Var]| x[0].powi(3), &[2.0]);
/// assert_eq!((v, g), (8.0, vec![12.0]));
/// ```
pub fn value_and_gradient<F: FnOnce(&[Var]) -> Var>(f: F, x: &[f64]) -> (f64, Vec<f64>) {
    let mut g = vec![0.0; x.len()];
    let v = value_and_gradient_into(f, x, &mut g);
    (v, g)
}

/// [`value_and_gradient`] writing the gradient into `out` (no allocation once the tape is warm,
/// apart from the input `Var`s).
///
/// Panics if `out.len() != x.len()`.
///
/// ```
/// use adjoint_scalar::{value_and_gradient_into, Var};
/// let mut g = [0.0; 2];
/// let v = value_and_gradient_into(|x: &[Var]| x[0] * x[1], &[3.0, 4.0], &mut g);
/// assert_eq!((v, g), (12.0, [4.0, 3.0]));
/// ```
#[track_caller]
pub fn value_and_gradient_into<F: FnOnce(&[Var]) -> Var>(f: F, x: &[f64], out: &mut [f64]) -> f64 {
    assert_eq!(
        out.len(),
        x.len(),
        "value_and_gradient_into: {} inputs but gradient buffer of {}",
        x.len(),
        out.len()
    );
    let tape = Tape::new();
    let xs = tape.vars(x);
    let y = f(&xs);
    tape.gradient_into(y, &xs, out);
    y.value()
}

/// The Jacobian of `f` at `x` (`m × n`), by reverse mode (one recording, one sweep per
/// output) when `m < n`, else by forward mode in chunks of 8 directions.
pub fn jacobian<F: VectorFn>(f: &F, x: &[f64]) -> Matrix {
    let m = f.eval(x).len();
    if m < x.len() {
        jacobian_reverse(f, x)
    } else {
        jacobian_forward(f, x)
    }
}

/// The Jacobian by reverse mode: one tape, one sweep per output.
///
/// ```
/// use adjoint_scalar::{jacobian_reverse, Real, VectorFn};
/// struct F;
/// impl VectorFn for F {
///     fn eval<T: Real>(&self, x: &[T]) -> Vec<T> { vec![x[0] * x[1] * x[2]] }
/// }
/// assert_eq!(jacobian_reverse(&F, &[1.0, 2.0, 3.0]).data, vec![6.0, 3.0, 2.0]);
/// ```
pub fn jacobian_reverse<F: VectorFn>(f: &F, x: &[f64]) -> Matrix {
    let tape = Tape::new();
    let xs = tape.vars(x);
    let ys = f.eval(&xs);
    let mut j = Matrix::zeros(ys.len(), x.len());
    for (i, &y) in ys.iter().enumerate() {
        tape.gradient_into(y, &xs, &mut j.data[i * x.len()..(i + 1) * x.len()]);
    }
    j
}

/// Width of the forward-mode chunks.
pub const CHUNK: usize = 8;

/// The Jacobian by forward mode, [`CHUNK`] columns per pass.
///
/// ```
/// use adjoint_scalar::{jacobian_forward, Real, VectorFn};
/// struct F;
/// impl VectorFn for F {
///     fn eval<T: Real>(&self, x: &[T]) -> Vec<T> { vec![x[0] * x[1], x[0].sin(), x[1]] }
/// }
/// let j = jacobian_forward(&F, &[0.0, 2.0]);
/// assert_eq!(j.data, vec![2.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
/// ```
pub fn jacobian_forward<F: VectorFn>(f: &F, x: &[f64]) -> Matrix {
    let n = x.len();
    let mut out: Option<Matrix> = None;
    for c0 in (0..n.max(1)).step_by(CHUNK) {
        let xs: Vec<DualVec<f64, CHUNK>> = x
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let mut d = DualVec::constant(v);
                if i >= c0 && i < c0 + CHUNK {
                    d.eps[i - c0] = 1.0;
                }
                d
            })
            .collect();
        let ys = f.eval(&xs);
        let j = out.get_or_insert_with(|| Matrix::zeros(ys.len(), n));
        for (i, y) in ys.iter().enumerate() {
            for k in 0..CHUNK.min(n.saturating_sub(c0)) {
                j.data[i * n + c0 + k] = y.eps[k];
            }
        }
    }
    out.unwrap_or_else(|| Matrix::zeros(0, n))
}

/// A sparse Jacobian by forward mode with a column colouring: `colours[j]` is the colour of
/// column `j`, and columns of one colour must not share a nonzero row. Returns the dense
/// matrix; entries outside `pattern` (row, column pairs known to be nonzero) are zero.
/// Costs `ceil(colours / 8)` passes instead of `ceil(n / 8)`.
///
/// ```
/// use adjoint_scalar::{jacobian_coloured, Real, VectorFn};
/// // Elementwise square: diagonal Jacobian, one colour suffices.
/// struct Sq;
/// impl VectorFn for Sq {
///     fn eval<T: Real>(&self, x: &[T]) -> Vec<T> { x.iter().map(|&v| v * v).collect() }
/// }
/// let pattern: Vec<(usize, usize)> = (0..3).map(|i| (i, i)).collect();
/// let j = jacobian_coloured(&Sq, &[1.0, 2.0, 3.0], &[0, 0, 0], &pattern);
/// assert_eq!(j.data, vec![2.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 6.0]);
/// ```
#[track_caller]
pub fn jacobian_coloured<F: VectorFn>(
    f: &F,
    x: &[f64],
    colours: &[usize],
    pattern: &[(usize, usize)],
) -> Matrix {
    let n = x.len();
    assert_eq!(colours.len(), n, "jacobian_coloured: {} colours for {} columns", colours.len(), n);
    let nc = colours.iter().map(|&c| c + 1).max().unwrap_or(0);
    let mut j: Option<Matrix> = None;
    for c0 in (0..nc.max(1)).step_by(CHUNK) {
        let xs: Vec<DualVec<f64, CHUNK>> = x
            .iter()
            .zip(colours)
            .map(|(&v, &c)| {
                let mut d = DualVec::constant(v);
                if c >= c0 && c < c0 + CHUNK {
                    d.eps[c - c0] = 1.0;
                }
                d
            })
            .collect();
        let ys = f.eval(&xs);
        let jm = j.get_or_insert_with(|| Matrix::zeros(ys.len(), n));
        for &(r, col) in pattern {
            let c = colours[col];
            if c >= c0 && c < c0 + CHUNK {
                jm.data[r * n + col] = ys[r].eps[c - c0];
            }
        }
    }
    j.unwrap_or_else(|| Matrix::zeros(0, n))
}

/// `H·v`, the Hessian of `f` at `x` times `v`, with one `Dual<Var>` pass and one sweep.
///
/// ```
/// use adjoint_scalar::{hessian_vector_product, Real, ScalarFn};
/// struct F;
/// impl ScalarFn for F {
///     fn eval<T: Real>(&self, x: &[T]) -> T { x[0] * x[0] * x[1] }
/// }
/// assert_eq!(hessian_vector_product(&F, &[1.0, 2.0], &[1.0, 0.0]), vec![4.0, 2.0]);
/// ```
#[track_caller]
pub fn hessian_vector_product<F: ScalarFn>(f: &F, x: &[f64], v: &[f64]) -> Vec<f64> {
    assert_eq!(x.len(), v.len(), "hessian_vector_product: x has {} entries, v has {}", x.len(), v.len());
    let mut out = vec![0.0; x.len()];
    hvp_into(f, x, |i| v[i], &mut out);
    out
}

fn hvp_into<F: ScalarFn>(f: &F, x: &[f64], v: impl Fn(usize) -> f64, out: &mut [f64]) {
    let tape = Tape::new();
    let re = tape.vars(x);
    let xs: Vec<Dual<Var>> = re.iter().enumerate().map(|(i, &r)| Dual::new(r, Var::constant(v(i)))).collect();
    let y = f.eval(&xs);
    tape.gradient_into(y.eps, &re, out);
}

/// The Hessian of `f` at `x`: one `Dual<Var>` pass and one reverse sweep per column (the
/// tangent output `∇f·eⱼ` is itself recorded, and its gradient is column `j`).
pub fn hessian<F: ScalarFn>(f: &F, x: &[f64]) -> Matrix {
    let n = x.len();
    let mut h = Matrix::zeros(n, n);
    let mut col = vec![0.0; n];
    for j in 0..n {
        hvp_into(f, x, |i| if i == j { 1.0 } else { 0.0 }, &mut col);
        for (i, c) in col.iter().enumerate() {
            h.data[i * n + j] = *c;
        }
    }
    h
}
