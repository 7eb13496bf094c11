//! Logical `and`, `or`, `not` on `bool` tensors: no derivative.

use super::prelude::*;

/// Which logical operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogicalOp {
    /// Elementwise and.
    And,
    /// Elementwise or.
    Or,
    /// Elementwise not (one operand).
    Not,
}

/// A logical primitive.
#[derive(Debug, Clone, Copy)]
pub struct Logical(pub LogicalOp);

impl SimplePrimitive for Logical {
    fn name(&self) -> &'static str {
        match self.0 {
            LogicalOp::And => "logical_and",
            LogicalOp::Or => "logical_or",
            LogicalOp::Not => "logical_not",
        }
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let op = SimplePrimitive::name(self);
        let expected = if self.0 == LogicalOp::Not { 1 } else { 2 };
        if a.len() != expected || a.iter().any(|x| x.dtype != DType::Bool) {
            let got: Vec<String> = a.iter().map(|x| x.to_string()).collect();
            misuse(op, format!("needs {expected} bool tensor(s), got [{}]", got.join(", ")));
        }
        match a {
            [x] => x.clone(),
            _ => Aval { shape: rules::broadcast(op, &a[0], &a[1]), dtype: DType::Bool },
        }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        match self.0 {
            LogicalOp::And => a[0].logical_and(a[1]),
            LogicalOp::Or => a[0].logical_or(a[1]),
            LogicalOp::Not => a[0].logical_not(),
        }
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
