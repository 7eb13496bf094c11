//! `select(cond, a, b)` (NumPy's `where`): picks `a` where `cond` holds, else `b`. The
//! derivative is routed the same way, so the unselected branch gets exactly zero — the basis of
//! the "where-safe" pattern for masked computations (make the unselected input safe too, or
//! its NaN derivative times 0 still becomes NaN in the other branch's rule).

use super::prelude::*;

/// The `select` primitive (broadcasting over all three operands).
#[derive(Debug, Clone, Copy)]
pub struct Select;

impl SimplePrimitive for Select {
    fn name(&self) -> &'static str {
        "select"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let (c, x, y) = (&a[0], &a[1], &a[2]);
        if c.dtype != DType::Bool {
            misuse(
                "select",
                format!("condition must be bool, got {} of shape {:?}", c.dtype, c.shape.as_slice()),
            );
        }
        let shape = match adjoint_tensor::broadcast_shapes(&c.shape, &x.shape)
            .and_then(|s| adjoint_tensor::broadcast_shapes(&s, &y.shape))
        {
            Some(s) => s,
            None => misuse(
                "select",
                format!(
                    "cannot broadcast shapes {:?}, {:?} and {:?} together",
                    c.shape.as_slice(),
                    x.shape.as_slice(),
                    y.shape.as_slice()
                ),
            ),
        };
        rules::same_dtype("select", x, y);
        Aval { shape, dtype: x.dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        Array::select(a[0], a[1], a[2])
    }
    fn jvp(&self, p: &[&Tensor], t: &[Option<&Tensor>], out: &Tensor) -> Option<Tensor> {
        if t[1].is_none() && t[2].is_none() {
            return None;
        }
        let z = Tensor::scalar_of(0.0, out.dtype());
        let ta = t[1].unwrap_or(&z);
        let tb = t[2].unwrap_or(&z);
        Some(bcast(&Tensor::select(p[0], ta, tb), out.shape()))
    }
    fn vjp(&self, p: &[&Tensor], out: &Tensor, wants: &[bool]) -> Pullback {
        let (sa, sb) = (
            adjoint_tensor::Shape::from_slice(p[1].shape()),
            adjoint_tensor::Shape::from_slice(p[2].shape()),
        );
        let (wa, wb) = (wants[1], wants[2]);
        let zero = Tensor::scalar_of(0.0, out.dtype());
        Pullback::new(p[0].clone(), move |cond, c| {
            grads![
                None,
                wa.then(|| unbroadcast(Tensor::select(cond, c, &zero), &sa)),
                wb.then(|| unbroadcast(Tensor::select(cond, &zero, c), &sb))
            ]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        elementwise(self, a, axes)
    }
}
