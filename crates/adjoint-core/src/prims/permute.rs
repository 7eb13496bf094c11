//! `permute`: reorder axes (a view). Its transpose is the inverse permutation.

use super::prelude::*;

/// The `permute` primitive: output axis `i` is input axis `perm[i]`.
#[derive(Debug, Clone)]
pub struct Permute(pub Vec<usize>);

impl SimplePrimitive for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn is_view(&self) -> bool {
        true // a view with permuted strides
    }
    fn shape(&self, a: &[Aval]) -> Aval {
        let r = a[0].rank();
        let mut seen = vec![false; r];
        let ok = self.0.len() == r && self.0.iter().all(|&p| p < r && !std::mem::replace(&mut seen[p], true));
        if !ok {
            misuse(
                "permute",
                format!("{:?} is not a permutation of the axes of shape {:?}", self.0, a[0].shape.as_slice()),
            );
        }
        Aval { shape: self.0.iter().map(|&p| a[0].shape[p]).collect(), dtype: a[0].dtype }
    }
    fn eval(&self, a: &[&Array]) -> Array {
        a[0].permute(&self.0)
    }
    fn jvp(&self, _p: &[&Tensor], t: &[Option<&Tensor>], _out: &Tensor) -> Option<Tensor> {
        t[0].map(|t| t.permute(&self.0))
    }
    fn vjp(&self, _p: &[&Tensor], _out: &Tensor, _wants: &[bool]) -> Pullback {
        let mut inv = vec![0; self.0.len()];
        for (i, &p) in self.0.iter().enumerate() {
            inv[p] = i;
        }
        Pullback::new((), move |_, c| grads![Some(c.permute(&inv))])
    }
    fn batch(&self, a: &[&Tensor], axes: &[Option<usize>], _size: usize) -> (Tensor, Option<usize>) {
        // The batch axis keeps its position; the example axes are permuted around it.
        let b = axes[0].expect("the only operand is batched");
        let mut perm: Vec<usize> = self.0.iter().map(|&p| value_axis(p, b)).collect();
        perm.insert(b, b);
        (bind(&Permute(perm), &[a[0]]), Some(b))
    }
}
