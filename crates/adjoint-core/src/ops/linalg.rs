//! Matrix products, convolutions and pooling.

use adjoint_tensor::broadcast_shapes;
pub use adjoint_tensor::ops::conv::{Conv1dOptions, Conv2dOptions};
use adjoint_tensor::ops::pool::pool2d_output_shape;
pub use adjoint_tensor::ops::pool::Pool2dOptions;

use super::fail;
use crate::prims::{conv, matmul::Matmul, max_pool2d::MaxPool2d};
use crate::tensor::Tensor;
use crate::trace::{bind, bind_multi};

impl Tensor {
    /// Matrix product with NumPy semantics: 1-D operands are promoted (and the added axis
    /// removed), batch axes broadcast.
    ///
    /// ```
    /// use adjoint_core::Tensor;
    /// let a = Tensor::ones(&[5, 2, 3]);
    /// let b = Tensor::ones(&[3, 4]);
    /// assert_eq!(a.matmul(&b).shape(), &[5, 2, 4]);
    /// assert_eq!(b.t().matmul(&Tensor::ones(&[3])).shape(), &[4]);
    /// ```
    #[track_caller]
    pub fn matmul(&self, rhs: &Tensor) -> Tensor {
        if self.rank() == 0 || rhs.rank() == 0 {
            fail(
                "matmul",
                format!("needs operands of rank ≥ 1, got {:?} and {:?}", self.shape(), rhs.shape()),
            );
        }
        let a = if self.rank() == 1 { self.unsqueeze(0) } else { self.clone() };
        let b = if rhs.rank() == 1 { rhs.unsqueeze(1) } else { rhs.clone() };
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
        let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
        if k != k2 {
            fail(
                "matmul",
                format!("inner dimensions differ: {:?} @ {:?} ({k} vs {k2})", self.shape(), rhs.shape()),
            );
        }
        let Some(batch) = broadcast_shapes(&a.shape()[..ra - 2], &b.shape()[..rb - 2]) else {
            fail(
                "matmul",
                format!("batch dimensions of {:?} and {:?} do not broadcast", self.shape(), rhs.shape()),
            )
        };
        let mut sa = batch.to_vec();
        sa.extend([m, k]);
        let mut sb = batch.to_vec();
        sb.extend([k, n]);
        let out = bind(&Matmul, &[&a.broadcast_to(&sa), &b.broadcast_to(&sb)]);
        let mut out = out;
        if rhs.rank() == 1 {
            out = out.squeeze(out.rank() - 1);
        }
        if self.rank() == 1 {
            out = out.squeeze(out.rank() - if rhs.rank() == 1 { 1 } else { 2 });
        }
        out
    }

    /// 2-D convolution (cross-correlation, no bias) of `[N, C, H, W]` with `[O, C/groups, KH, KW]`.
    #[track_caller]
    pub fn conv2d(&self, weight: &Tensor, p: &Conv2dOptions) -> Tensor {
        conv::conv2d(self, weight, *p)
    }

    /// 1-D convolution of `[N, C, L]` with `[O, C/groups, K]` (a unit-height `conv2d`).
    #[track_caller]
    pub fn conv1d(&self, weight: &Tensor, p: &Conv1dOptions) -> Tensor {
        if self.rank() != 3 || weight.rank() != 3 {
            fail(
                "conv1d",
                format!(
                    "needs input [N, C, L] and weight [O, C/groups, K], got {:?} and {:?}",
                    self.shape(),
                    weight.shape()
                ),
            );
        }
        let (n, c, l) = (self.shape()[0], self.shape()[1], self.shape()[2]);
        let (o, ci, k) = (weight.shape()[0], weight.shape()[1], weight.shape()[2]);
        let p2 = Conv2dOptions {
            stride: [1, p.stride],
            padding: [0, p.padding],
            dilation: [1, p.dilation],
            groups: p.groups,
        };
        let y = self.reshape(&[n, c, 1, l]).conv2d(&weight.reshape(&[o, ci, 1, k]), &p2);
        let ol = y.shape()[3];
        y.reshape(&[n, o, ol])
    }

    /// 2-D max pooling over `[N, C, H, W]`. The derivative flows to the first maximum of each
    /// window (as PyTorch); see [`max_pool2d_with_indices`](Self::max_pool2d_with_indices).
    #[track_caller]
    pub fn max_pool2d(&self, p: &Pool2dOptions) -> Tensor {
        self.max_pool2d_with_indices(p).0
    }

    /// 2-D max pooling returning the maxima and the `i64` position of each within its `H·W`
    /// plane (one primitive with two outputs).
    ///
    /// ```
    /// use adjoint_core::{Pool2dOptions, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 4.0, 3.0, 2.0], &[1, 1, 2, 2]);
    /// let (v, i) = x.max_pool2d_with_indices(&Pool2dOptions::new([2, 2]));
    /// assert_eq!((v.to_vec::<f32>(), i.to_vec::<i64>()), (vec![4.0], vec![1]));
    /// ```
    #[track_caller]
    pub fn max_pool2d_with_indices(&self, p: &Pool2dOptions) -> (Tensor, Tensor) {
        let mut outs = bind_multi(&MaxPool2d(*p), &[self]);
        let idx = outs.pop().expect("two outputs");
        (outs.pop().expect("two outputs"), idx)
    }

    /// 2-D average pooling over `[N, C, H, W]` (zero padding counted in the average when
    /// `count_include_pad`, as PyTorch's default). A depthwise convolution with a constant kernel.
    #[track_caller]
    pub fn avg_pool2d(&self, p: &Pool2dOptions, count_include_pad: bool) -> Tensor {
        if self.rank() != 4 {
            fail("avg_pool2d", format!("needs [N, C, H, W], got {:?}", self.shape()));
        }
        if let Err(e) = pool2d_output_shape(self.shape(), p) {
            fail("avg_pool2d", e.message);
        }
        let (n, c, h, w) = (self.shape()[0], self.shape()[1], self.shape()[2], self.shape()[3]);
        let [kh, kw] = p.kernel;
        let cp = Conv2dOptions { stride: p.stride, padding: p.padding, dilation: [1, 1], groups: 1 };
        let ones = Tensor::full_of(&[1, 1, kh, kw], 1.0, self.dtype());
        let x = self.reshape(&[n * c, 1, h, w]);
        let s = x.conv2d(&ones, &cp);
        let (oh, ow) = (s.shape()[2], s.shape()[3]);
        let s = if count_include_pad {
            s / (kh * kw) as f64
        } else {
            let cnt = Tensor::full_of(&[1, 1, h, w], 1.0, self.dtype()).conv2d(&ones, &cp);
            s / cnt
        };
        s.reshape(&[n, c, oh, ow])
    }
}
