//! `cast` to another dtype. Between float types the derivative is the cast back; from an int
//! or bool there is no tangent (such inputs are constants), to one there is none either.

use super::prelude::*;

/// The `cast` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Cast(pub DType);

impl SimplePrimitive for Cast {
    fn name(&self) -> &'static str {
        "cast"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        Aval { shape: a[0].shape.clone(), dtype: self.0 }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].cast(self.0)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].filter(|t| t.dtype().is_float()).map(|t| t.cast(self.0))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let src = p[0].dtype();
        Pullback::new((), move |_, c| grads![src.is_float().then(|| c.cast(src))])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
