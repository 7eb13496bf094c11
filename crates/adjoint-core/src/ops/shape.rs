//! Shape methods: views (reshape, permute, broadcast, slice, flip), padding, concatenation and
//! indexing. Views cost no copy in eager mode; their derivatives are views or their transposes.

use adjoint_tensor::ops::pad::PadMode;

use super::{check_axis, fail};
use crate::prims::{
    broadcast::BroadcastTo, concat::Concat, flip::Flip, gather::Gather, index_add::IndexAdd,
    index_select::IndexSelect, pad::Pad, permute::Permute, reshape::Reshape, scatter_add::ScatterAdd,
    slice::Slice, split::Split,
};
use crate::tensor::Tensor;
use crate::trace::bind;

impl Tensor {
    /// Same elements in a new shape (a view when the layout allows).
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// assert_eq!(Tensor::arange(6).reshape(&[2, 3]).shape(), &[2, 3]);
    /// ```
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Tensor {
        if shape == self.shape() {
            return self.clone();
        }
        bind(&Reshape(shape.to_vec()), &[self])
    }

    /// Flatten to one dimension.
    #[track_caller]
    pub fn flatten(&self) -> Tensor {
        self.reshape(&[self.numel()])
    }

    /// Reorder axes: output axis `i` is input axis `perm[i]`.
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        if perm.len() == self.rank() && perm.iter().enumerate().all(|(i, &p)| i == p) {
            return self.clone();
        }
        bind(&Permute(perm.to_vec()), &[self])
    }

    /// Swap two axes.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3, 4]).transpose(0, 2).shape(), &[4, 3, 2]);
    /// ```
    #[track_caller]
    pub fn transpose(&self, a: usize, b: usize) -> Tensor {
        check_axis("transpose", a, self.shape());
        check_axis("transpose", b, self.shape());
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Transpose of a matrix (rank 2).
    #[track_caller]
    pub fn t(&self) -> Tensor {
        if self.rank() != 2 {
            fail("t", format!("needs a matrix, got shape {:?}", self.shape()));
        }
        self.transpose(0, 1)
    }

    /// Broadcast to `shape` (NumPy rules; a stride-0 view).
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        if shape == self.shape() {
            return self.clone();
        }
        bind(&BroadcastTo(shape.to_vec()), &[self])
    }

    /// PyTorch's name for [`broadcast_to`](Self::broadcast_to).
    #[track_caller]
    pub fn expand(&self, shape: &[usize]) -> Tensor {
        self.broadcast_to(shape)
    }

    /// Insert a size-1 axis at `axis` (`0..=rank`).
    #[track_caller]
    pub fn unsqueeze(&self, axis: usize) -> Tensor {
        if axis > self.rank() {
            fail("unsqueeze", format!("axis {axis} is out of range for shape {:?}", self.shape()));
        }
        let mut s = self.shape().to_vec();
        s.insert(axis, 1);
        self.reshape(&s)
    }

    /// Remove the size-1 axis `axis`.
    #[track_caller]
    pub fn squeeze(&self, axis: usize) -> Tensor {
        check_axis("squeeze", axis, self.shape());
        if self.shape()[axis] != 1 {
            fail("squeeze", format!("axis {axis} of shape {:?} is not 1", self.shape()));
        }
        let mut s = self.shape().to_vec();
        s.remove(axis);
        self.reshape(&s)
    }

    /// Elements `start, start+step, …` below `end` along `axis`.
    #[track_caller]
    pub fn slice(&self, axis: usize, start: usize, end: usize, step: usize) -> Tensor {
        if start == 0 && step == 1 && self.shape().get(axis) == Some(&end) {
            return self.clone();
        }
        bind(&Slice { axis, start, end, step }, &[self])
    }

    /// Cut along `axis` into consecutive parts of the given sizes (one primitive: views, and
    /// one `concat` for the derivative however many parts there are).
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let parts = Tensor::arange(6).reshape(&[2, 3]).split(1, &[1, 2]);
    /// assert_eq!((parts[0].shape(), parts[1].shape()), (&[2, 1][..], &[2, 2][..]));
    /// ```
    #[track_caller]
    pub fn split(&self, axis: usize, sizes: &[usize]) -> Vec<Tensor> {
        crate::trace::bind_multi(&Split { axis, sizes: sizes.to_vec() }, &[self]).into_vec()
    }

    /// `n` equal parts along `axis` (see [`split`](Self::split)).
    #[track_caller]
    pub fn chunk(&self, n: usize, axis: usize) -> Vec<Tensor> {
        let d = self.shape().get(axis).copied().unwrap_or(0);
        if n == 0 || d % n != 0 {
            fail("chunk", format!("cannot cut axis {axis} of shape {:?} into {n} equal parts", self.shape()));
        }
        self.split(axis, &vec![d / n; n])
    }

    /// `len` elements from `start` along `axis`.
    #[track_caller]
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor {
        self.slice(axis, start, start + len, 1)
    }

    /// Reverse the order along `axis`.
    #[track_caller]
    pub fn flip(&self, axis: usize) -> Tensor {
        bind(&Flip(axis), &[self])
    }

    /// Pad with a constant; `pads` holds `(before, after)` for every axis.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let p = Tensor::ones(&[2]).pad(&[(1, 2)], 0.0);
    /// assert_eq!(p.to_vec::<f32>(), vec![0.0, 1.0, 1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn pad(&self, pads: &[(usize, usize)], value: f64) -> Tensor {
        if pads.len() == self.rank() && pads.iter().all(|&(a, b)| a == 0 && b == 0) {
            return self.clone();
        }
        bind(&Pad { pads: pads.to_vec(), value }, &[self])
    }

    /// Pad with any [`PadMode`]: constant, reflect (edge not repeated) or replicate. Reflect and
    /// replicate are composites of slices, flips and concatenation.
    #[track_caller]
    pub fn pad_mode(&self, pads: &[(usize, usize)], mode: PadMode) -> Tensor {
        if pads.len() != self.rank() {
            fail(
                "pad",
                format!(
                    "needs one (before, after) pair per axis: {} given for shape {:?}",
                    pads.len(),
                    self.shape()
                ),
            );
        }
        let mut x = self.clone();
        match mode {
            PadMode::Constant(v) => return self.pad(pads, v),
            PadMode::Reflect => {
                for (axis, &(b, a)) in pads.iter().enumerate() {
                    let d = x.shape()[axis];
                    if (b > 0 || a > 0) && (b >= d || a >= d) {
                        fail(
                            "pad",
                            format!(
                                "reflect padding ({b}, {a}) must be smaller than axis {axis} of shape {:?}",
                                x.shape()
                            ),
                        );
                    }
                    let mut parts = Vec::new();
                    if b > 0 {
                        parts.push(x.slice(axis, 1, b + 1, 1).flip(axis));
                    }
                    parts.push(x.clone());
                    if a > 0 {
                        parts.push(x.slice(axis, d - 1 - a, d - 1, 1).flip(axis));
                    }
                    let refs: Vec<&Tensor> = parts.iter().collect();
                    x = Tensor::concat(&refs, axis);
                }
            }
            PadMode::Replicate => {
                for (axis, &(b, a)) in pads.iter().enumerate() {
                    let d = x.shape()[axis];
                    if (b > 0 || a > 0) && d == 0 {
                        fail(
                            "pad",
                            format!("cannot replicate-pad empty axis {axis} of shape {:?}", x.shape()),
                        );
                    }
                    let mut parts = Vec::new();
                    let edge = |start: usize, n: usize| {
                        let e = x.narrow(axis, start, 1);
                        let mut s = e.shape().to_vec();
                        s[axis] = n;
                        e.broadcast_to(&s)
                    };
                    if b > 0 {
                        parts.push(edge(0, b));
                    }
                    parts.push(x.clone());
                    if a > 0 {
                        parts.push(edge(d - 1, a));
                    }
                    let refs: Vec<&Tensor> = parts.iter().collect();
                    x = Tensor::concat(&refs, axis);
                }
            }
        }
        x
    }

    /// Join tensors along an existing axis.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let c = Tensor::concat(&[&Tensor::ones(&[2, 1]), &Tensor::zeros(&[2, 3])], 1);
    /// assert_eq!(c.shape(), &[2, 4]);
    /// ```
    #[track_caller]
    pub fn concat(tensors: &[&Tensor], axis: usize) -> Tensor {
        if let [only] = tensors
            && axis < only.rank()
        {
            return (*only).clone();
        }
        bind(&Concat(axis), tensors)
    }

    /// Join tensors of equal shape along a new axis.
    #[track_caller]
    pub fn stack(tensors: &[&Tensor], axis: usize) -> Tensor {
        let Some(first) = tensors.first() else { fail("stack", "needs at least one tensor".into()) };
        if axis > first.rank() {
            fail("stack", format!("axis {axis} is out of range for stacking shape {:?}", first.shape()));
        }
        for t in tensors {
            if t.shape() != first.shape() {
                let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
                fail("stack", format!("shapes {shapes:?} differ"));
            }
        }
        let parts: Vec<Tensor> = tensors.iter().map(|t| t.unsqueeze(axis)).collect();
        let refs: Vec<&Tensor> = parts.iter().collect();
        Tensor::concat(&refs, axis)
    }

    /// `torch.gather`: `out[i][j] = self[index[i][j]][j]` for `axis = 0`.
    #[track_caller]
    pub fn gather(&self, axis: usize, index: &Tensor) -> Tensor {
        bind(&Gather(axis), &[self, index])
    }

    /// Rows (or slices along `axis`) picked by a 1-D `i64` index.
    #[track_caller]
    pub fn index_select(&self, axis: usize, index: &Tensor) -> Tensor {
        bind(&IndexSelect(axis), &[self, index])
    }

    /// `self` with `src` added at `index` along `axis` (`torch.scatter_add`, out of place).
    #[track_caller]
    pub fn scatter_add(&self, axis: usize, index: &Tensor, src: &Tensor) -> Tensor {
        bind(&ScatterAdd(axis), &[self, index, src])
    }

    /// `self` with slices of `src` added at positions `index` (1-D) along `axis`.
    #[track_caller]
    pub fn index_add(&self, axis: usize, index: &Tensor, src: &Tensor) -> Tensor {
        bind(&IndexAdd(axis), &[self, index, src])
    }
}
