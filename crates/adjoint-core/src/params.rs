//! [`Params`]: values that flatten into tensors and rebuild from them (JAX's pytrees).
//!
//! Transforms take and return `Params` values, so the gradient of a model is a model-shaped
//! value. Implemented for [`Tensor`], `()`, tuples (up to 8), arrays, `Vec`, `Option`, `Box`
//! and `BTreeMap<String, _>`; `#[derive(Params)]` covers user structs and enums, with
//! `#[params(skip)]` for configuration fields that are not differentiated.
//!
//! ```
//! # extern crate adjoint_core as adjoint;
//! use adjoint_core::{grad, Params, Tensor};
//!
//! #[derive(Clone, Params)]
//! struct Line { w: Tensor, b: Tensor, #[params(skip)] name: String }
//!
//! let m = Line { w: Tensor::scalar(2.0f64), b: Tensor::scalar(1.0f64), name: "l".into() };
//! let g = grad(|m: &Line| (&m.w * 3.0 + &m.b).sum())(&m);
//! assert_eq!((g.w.item(), g.b.item(), g.name.as_str()), (3.0, 1.0, "l"));
//! ```

use std::collections::BTreeMap;

use crate::tensor::Tensor;

/// A value made of tensors that transforms can flatten and rebuild.
pub trait Params: Sized {
    /// Visit every tensor leaf in a fixed order.
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor));

    /// Rebuild the same structure with every leaf replaced by `f(leaf)`, in the same order.
    /// Non-tensor parts (skipped fields) are cloned.
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self;

    /// The leaves, flattened.
    fn leaves(&self) -> Vec<Tensor> {
        let mut v = Vec::new();
        self.for_each_tensor(&mut |t| v.push(t.clone()));
        v
    }

    /// Number of leaves.
    fn num_leaves(&self) -> usize {
        let mut n = 0;
        self.for_each_tensor(&mut |_| n += 1);
        n
    }

    /// Rebuild this structure from `leaves` (as many as [`num_leaves`](Self::num_leaves)).
    #[track_caller]
    fn with_leaves(&self, leaves: &[Tensor]) -> Self {
        let n = self.num_leaves();
        assert_eq!(
            leaves.len(),
            n,
            "adjoint: Params::with_leaves: {} leaves given for a value with {n}",
            leaves.len()
        );
        let mut it = leaves.iter();
        self.map_tensors(&mut |_| it.next().expect("leaf count checked").clone())
    }
}

impl Params for Tensor {
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        f(self)
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        f(self)
    }
}

impl Params for () {
    fn for_each_tensor(&self, _f: &mut dyn FnMut(&Tensor)) {}
    fn map_tensors(&self, _f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {}
}

impl<T: Params> Params for Vec<T> {
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        self.iter().for_each(|x| x.for_each_tensor(f))
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        self.iter().map(|x| x.map_tensors(f)).collect()
    }
}

impl<T: Params, const N: usize> Params for [T; N] {
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        self.iter().for_each(|x| x.for_each_tensor(f))
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        let mut i = 0;
        std::array::from_fn(|_| {
            let r = self[i].map_tensors(f);
            i += 1;
            r
        })
    }
}

impl<T: Params> Params for Option<T> {
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        if let Some(x) = self {
            x.for_each_tensor(f)
        }
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        self.as_ref().map(|x| x.map_tensors(f))
    }
}

impl<T: Params> Params for Box<T> {
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        (**self).for_each_tensor(f)
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        Box::new((**self).map_tensors(f))
    }
}

impl<T: Params> Params for BTreeMap<String, T> {
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        self.values().for_each(|x| x.for_each_tensor(f))
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        self.iter().map(|(k, v)| (k.clone(), v.map_tensors(f))).collect()
    }
}

macro_rules! tuple_params {
    ($($n:ident $i:tt),+) => {
        impl<$($n: Params),+> Params for ($($n,)+) {
            fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
                $(self.$i.for_each_tensor(f);)+
            }
            fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
                ($(self.$i.map_tensors(f),)+)
            }
        }
    };
}
tuple_params!(A 0);
tuple_params!(A 0, B 1);
tuple_params!(A 0, B 1, C 2);
tuple_params!(A 0, B 1, C 2, D 3);
tuple_params!(A 0, B 1, C 2, D 3, E 4);
tuple_params!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_params!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_params!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// Apply `f` to corresponding leaves of two values of the same structure.
///
/// ```
/// use adjoint_core::{params, Tensor};
/// let a = (Tensor::scalar(1.0f32), Tensor::scalar(2.0f32));
/// let s = params::zip_map(&a, &a, |x, y| x + y);
/// assert_eq!(s.1.item(), 4.0);
/// ```
#[track_caller]
pub fn zip_map<P: Params>(a: &P, b: &P, mut f: impl FnMut(&Tensor, &Tensor) -> Tensor) -> P {
    let bl = b.leaves();
    assert_eq!(a.num_leaves(), bl.len(), "adjoint: zip_map: the two values have different structures");
    let mut it = bl.iter();
    a.map_tensors(&mut |x| f(x, it.next().expect("leaf count checked")))
}

/// Zeros of every leaf's shape and dtype.
pub fn zeros_like<P: Params>(p: &P) -> P {
    p.map_tensors(&mut |t| t.zeros_like())
}

/// Sum over leaves of `Σ a·b` (an inner product of two values), as an `f64`.
pub fn dot<P: Params>(a: &P, b: &P) -> f64 {
    let mut acc = 0.0;
    let bl = b.leaves();
    let mut i = 0;
    a.for_each_tensor(&mut |x| {
        let y = &bl[i];
        i += 1;
        let xv = x.to_vec::<f64>();
        let yv = y.to_vec::<f64>();
        acc += xv.iter().zip(&yv).map(|(p, q)| p * q).sum::<f64>();
    });
    acc
}
