//! `slice`: elements `start, start+step, …` below `end` along one axis (a view). Its transpose
//! places the cotangent back at those positions with zeros between (built from `pad`,
//! `concat` and `reshape`, so it is differentiable again).

use super::prelude::*;

/// The `slice` primitive.
#[derive(Debug, Clone, Copy)]
pub struct Slice {
    /// Axis sliced.
    pub axis: usize,
    /// First index taken.
    pub start: usize,
    /// One past the last index considered.
    pub end: usize,
    /// Step (≥ 1).
    pub step: usize,
}

/// Scatter `c` (the slice's cotangent) into zeros of `shape` at the sliced positions.
pub(crate) fn unslice(c: &Tensor, shape: &[usize], s: &Slice) -> Tensor {
    let d = shape[s.axis];
    let len = c.shape()[s.axis];
    let spread = if s.step == 1 || len == 0 {
        c.clone()
    } else {
        // Interleave step-1 zeros after each element: [.., len, 1] ++ zeros [.., len, step-1].
        let x = c.unsqueeze(s.axis + 1);
        let mut pads = vec![(0, 0); x.rank()];
        pads[s.axis + 1] = (0, s.step - 1);
        let x = x.pad(&pads, 0.0);
        let mut flat = c.shape().to_vec();
        flat[s.axis] = len * s.step;
        x.reshape(&flat).narrow(s.axis, 0, (len - 1) * s.step + 1)
    };
    let covered = spread.shape()[s.axis];
    let mut pads = vec![(0, 0); c.rank()];
    pads[s.axis] = (if len == 0 { 0 } else { s.start }, d - covered - if len == 0 { 0 } else { s.start });
    spread.pad(&pads, 0.0)
}

impl SimplePrimitive for Slice {
    fn name(&self) -> &'static str {
        "slice"
    }
    fn is_view(&self) -> bool {
        true // a view with an offset and strides
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        rules::axis("slice", self.axis, &a[0]);
        let d = a[0].shape[self.axis];
        let (start, end, step) = (self.start, self.end, self.step);
        if start > end || end > d || step == 0 {
            misuse(
                "slice",
                format!(
                    "range {start}..{end} step {step} is invalid for axis {} of shape {:?}",
                    self.axis,
                    a[0].shape.as_slice()
                ),
            );
        }
        let mut shape = a[0].shape.clone();
        shape[self.axis] = (end - start).div_ceil(step);
        Aval { shape, dtype: a[0].dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].slice(self.axis, self.start, self.end, self.step)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t.slice(self.axis, self.start, self.end, self.step))
    }
    fn vjp(&self, p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let (shape, s) = (adjoint_tensor::Shape::from_slice(p[0].shape()), *self);
        Pullback::new((), move |_, c| grads![Some(unslice(c, &shape, &s))])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        let b = axes[0].expect("the only operand is batched");
        (bind(&Slice { axis: value_axis(self.axis, b), ..*self }, &[a[0]]), Some(b))
    }
}
