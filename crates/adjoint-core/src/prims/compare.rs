//! Comparisons (`==`, `!=`, `<`, `<=`, `>`, `>=`) giving `bool`: no derivative (the output is
//! not a float, so no transform ever asks for one).

use adjoint_tensor::ops::compare::CompareOp;

use super::prelude::*;

/// A comparison primitive.
#[derive(Debug, Clone, Copy)]
pub struct Compare(pub CompareOp);

impl SimplePrimitive for Compare {
    fn name(&self) -> &'static str {
        match self.0 {
            CompareOp::Eq => "equal",
            CompareOp::Ne => "not_equal",
            CompareOp::Lt => "less",
            CompareOp::Le => "less_equal",
            CompareOp::Gt => "greater",
            CompareOp::Ge => "greater_equal",
        }
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let op = SimplePrimitive::name(self);
        let shape = rules::broadcast(op, &a[0], &a[1]);
        rules::same_dtype(op, &a[0], &a[1]);
        Aval { shape, dtype: DType::Bool }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].compare(a[1], self.0)
    }
    fn jvp(&self, _p: &[&Tensor], _t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        None
    }
    fn vjp(&self, _p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        Pullback::new((), |_, _| grads![None, None])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
