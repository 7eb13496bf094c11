//! [`Params`]: values that flatten into tensors and rebuild from them (JAX's pytrees).
//!
//! Transforms take and return `Params` values, so the gradient of a model is a model-shaped
//! value. Implemented for [`Tensor`], `()`, tuples (up to 8), arrays, `Vec`, `Option`, `Box`
//! and `BTreeMap<String, _>`; `#[derive(Params)]` covers user structs and enums, with
//! `#[params(skip)]` for configuration fields that are not differentiated.
//!
//! ```
//! use adjoint_core::{grad, Params, Tensor};
//!
//! #[derive(Clone, Params)]
//! #[params(crate = adjoint_core)]
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

    /// Visit every leaf with a dotted path name (`encoder.layers.0.weight`), in the same order
    /// as [`for_each_tensor`](Self::for_each_tensor). Struct fields contribute their names,
    /// `Vec`s, arrays and tuples their indices, `BTreeMap`s their keys; `Option` and `Box` add
    /// nothing. The default, for hand-written impls, numbers the leaves.
    fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        let mut i = 0usize;
        self.for_each_tensor(&mut |t| {
            f(&join_name(prefix, &i.to_string()), t);
            i += 1;
        })
    }

    /// Visit every [`Buffer`] (non-differentiated state such as batch-norm running statistics)
    /// with its dotted name. Buffers are not leaves: transforms and optimizers never see them,
    /// but checkpoints save and load them.
    fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer)) {
        let _ = (prefix, f);
    }

    /// The leaves with their dotted names (see [`for_each_named`](Self::for_each_named)).
    ///
    /// ```
    /// use adjoint_core::{Params, Tensor};
    /// #[derive(Clone, Params)]
    /// #[params(crate = adjoint_core)]
    /// struct Layer { weight: Tensor, bias: Option<Tensor> }
    /// let net = vec![Layer { weight: Tensor::scalar(1.0f32), bias: None },
    ///                Layer { weight: Tensor::scalar(2.0f32), bias: Some(Tensor::scalar(0.0f32)) }];
    /// let names: Vec<String> = net.named_leaves().into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["0.weight", "1.weight", "1.bias"]);
    /// ```
    fn named_leaves(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        self.for_each_named("", &mut |n, t| v.push((n.to_string(), t.clone())));
        v
    }

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

/// Mutable state that lives in a model but is not differentiated: batch-norm running
/// statistics, step counters (PyTorch's "buffers").
///
/// A `Buffer` is a shared cell: cloning a model, or rebuilding it with
/// [`Params::map_tensors`] (as optimizers do), keeps pointing at the same state, so running
/// statistics survive parameter updates. Use [`Buffer::deep_clone`] for an independent copy.
///
/// ```
/// use adjoint_core::{params::Buffer, Params, Tensor};
/// #[derive(Clone, Params)]
/// #[params(crate = adjoint_core)]
/// struct Norm { weight: Tensor, running_mean: Buffer }
/// let n = Norm { weight: Tensor::scalar(1.0f32), running_mean: Buffer::new(Tensor::scalar(0.0f32)) };
/// n.running_mean.set(Tensor::scalar(0.5f32));
/// assert_eq!(n.num_leaves(), 1);
/// let mut names = vec![];
/// n.for_each_buffer("bn", &mut |name, b| names.push((name.to_string(), b.get().item())));
/// assert_eq!(names, [("bn.running_mean".to_string(), 0.5)]);
/// ```
#[derive(Clone)]
pub struct Buffer(std::sync::Arc<std::sync::Mutex<Tensor>>);

impl Buffer {
    /// A buffer holding `value` (a concrete tensor; tracers are stripped on [`set`](Self::set)).
    pub fn new(value: Tensor) -> Buffer {
        Buffer(std::sync::Arc::new(std::sync::Mutex::new(value)))
    }
    /// The current value.
    pub fn get(&self) -> Tensor {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Replace the value. Only the concrete value is kept: a buffer never carries derivatives.
    pub fn set(&self, value: Tensor) {
        let v = Tensor::from_array(value.value().clone());
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }
    /// An independent buffer with the same current value.
    pub fn deep_clone(&self) -> Buffer {
        Buffer::new(self.get())
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({:?})", self.get().shape())
    }
}

impl Params for Buffer {
    fn for_each_tensor(&self, _f: &mut dyn FnMut(&Tensor)) {}
    fn for_each_named(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Tensor)) {}
    fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer)) {
        f(prefix, self)
    }
    fn map_tensors(&self, _f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        self.clone()
    }
}

/// `prefix.name`, or `name` alone when `prefix` is empty (used by [`Params::for_each_named`]).
pub fn join_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl Params for Tensor {
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        f(self)
    }
    fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        f(prefix, self)
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        f(self)
    }
}

impl Params for () {
    fn for_each_tensor(&self, _f: &mut dyn FnMut(&Tensor)) {}
    fn for_each_named(&self, _prefix: &str, _f: &mut dyn FnMut(&str, &Tensor)) {}
    fn map_tensors(&self, _f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {}
}

impl<T: Params> Params for Vec<T> {
    fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer)) {
        self.iter().enumerate().for_each(|(i, x)| x.for_each_buffer(&join_name(prefix, &i.to_string()), f))
    }
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        self.iter().for_each(|x| x.for_each_tensor(f))
    }
    fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.iter().enumerate().for_each(|(i, x)| x.for_each_named(&join_name(prefix, &i.to_string()), f))
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        self.iter().map(|x| x.map_tensors(f)).collect()
    }
}

impl<T: Params, const N: usize> Params for [T; N] {
    fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer)) {
        self.iter().enumerate().for_each(|(i, x)| x.for_each_buffer(&join_name(prefix, &i.to_string()), f))
    }
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        self.iter().for_each(|x| x.for_each_tensor(f))
    }
    fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.iter().enumerate().for_each(|(i, x)| x.for_each_named(&join_name(prefix, &i.to_string()), f))
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
    fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer)) {
        if let Some(x) = self {
            x.for_each_buffer(prefix, f)
        }
    }
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        if let Some(x) = self {
            x.for_each_tensor(f)
        }
    }
    fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        if let Some(x) = self {
            x.for_each_named(prefix, f)
        }
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        self.as_ref().map(|x| x.map_tensors(f))
    }
}

impl<T: Params> Params for Box<T> {
    fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer)) {
        (**self).for_each_buffer(prefix, f)
    }
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        (**self).for_each_tensor(f)
    }
    fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        (**self).for_each_named(prefix, f)
    }
    fn map_tensors(&self, f: &mut dyn FnMut(&Tensor) -> Tensor) -> Self {
        Box::new((**self).map_tensors(f))
    }
}

impl<T: Params> Params for BTreeMap<String, T> {
    fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer)) {
        self.iter().for_each(|(k, x)| x.for_each_buffer(&join_name(prefix, k), f))
    }
    fn for_each_tensor(&self, f: &mut dyn FnMut(&Tensor)) {
        self.values().for_each(|x| x.for_each_tensor(f))
    }
    fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
        self.iter().for_each(|(k, x)| x.for_each_named(&join_name(prefix, k), f))
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
            fn for_each_named(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor)) {
                $(self.$i.for_each_named(&join_name(prefix, stringify!($i)), f);)+
            }
            fn for_each_buffer(&self, prefix: &str, f: &mut dyn FnMut(&str, &Buffer)) {
                $(self.$i.for_each_buffer(&join_name(prefix, stringify!($i)), f);)+
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
