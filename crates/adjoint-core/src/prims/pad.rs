//! `pad` with a constant: linear in the input; its transpose slices the padding off.
//! Reflect and replicate padding are composites (slices, flips and concatenation).

use adjoint_tensor::ops::pad::PadMode;

use super::prelude::*;

/// The constant-`pad` primitive.
#[derive(Debug, Clone)]
pub struct Pad {
    /// `(before, after)` for every axis.
    pub pads: Vec<(usize, usize)>,
    /// Fill value.
    pub value: f64,
}

impl SimplePrimitive for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        if self.pads.len() != a[0].rank() {
            misuse(
                "pad",
                format!(
                    "needs one (before, after) pair per axis: {} given for shape {:?}",
                    self.pads.len(),
                    a[0].shape.as_slice()
                ),
            );
        }
        let shape = a[0].shape.iter().zip(&self.pads).map(|(&d, &(b, e))| d + b + e).collect();
        Aval { shape, dtype: a[0].dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].pad(&self.pads, PadMode::Constant(self.value))
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t.pad(&self.pads, 0.0))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let (shape, pads) = (adjoint_tensor::Shape::from_slice(p[0].shape()), self.pads.clone());
        Pullback::new((), move |_, c| {
            let mut g = c.clone();
            for (axis, (&(before, _), &d)) in pads.iter().zip(&shape).enumerate() {
                if g.shape()[axis] != d {
                    g = g.narrow(axis, before, d);
                }
            }
            grads![Some(g)]
        })
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        let b = axes[0].expect("the only operand is batched");
        let mut pads = self.pads.clone();
        pads.insert(b, (0, 0));
        (bind(&Pad { pads, value: self.value }, &[a[0]]), Some(b))
    }
}
