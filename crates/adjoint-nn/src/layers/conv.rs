//! Convolutions ([`Conv1d`], [`Conv2d`]) and pooling ([`MaxPool1d`], [`MaxPool2d`],
//! [`AvgPool1d`], [`AvgPool2d`]), channels-first as PyTorch (`[N, C, L]`, `[N, C, H, W]`).
//!
//! The convolution itself is adjoint-core's `conv2d` primitive (zero padding, stride,
//! dilation, groups); 1-D layers run it on a unit-height image. Pooling follows PyTorch with
//! `ceil_mode = false` and no dilation; max pooling sends the derivative to the first maximum
//! of each window.

use adjoint_core::{Conv1dOptions, Conv2dOptions, Params, Pool2dOptions, Tensor};
use adjoint_tensor::random::Key;
use adjoint_tensor::DType;

use super::{setters, Ctx, Module};
use crate::init;

/// Options of a [`Conv2d`].
#[derive(Clone, Debug)]
pub struct Conv2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride (default 1).
    pub stride: [usize; 2],
    /// Zero padding on both sides (default 0).
    pub padding: [usize; 2],
    /// Dilation (default 1).
    pub dilation: [usize; 2],
    /// Groups; both channel counts must divide by it (default 1).
    pub groups: usize,
    /// Whether to add a bias (default true).
    pub bias: bool,
    /// Parameter dtype (default `f32`).
    pub dtype: DType,
}
setters!(Conv2dConfig {
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
    dtype: DType
});

impl Conv2dConfig {
    /// Defaults: stride 1, no padding, dilation 1, one group, bias, `f32`.
    pub fn new(in_channels: usize, out_channels: usize, kernel: [usize; 2]) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel,
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: true,
            dtype: DType::F32,
        }
    }

    /// A layer with PyTorch's default init (weight and bias `U(±1/√fan_in)`,
    /// `fan_in = in_channels/groups · kh · kw`).
    #[track_caller]
    pub fn init(&self, key: &Key) -> Conv2d {
        check_groups("Conv2d", self.in_channels, self.out_channels, self.groups);
        let shape = [self.out_channels, self.in_channels / self.groups, self.kernel[0], self.kernel[1]];
        let (weight, bias) = init::torch_default_weight_bias(key, &shape, self.bias, self.dtype);
        let params = Conv2dOptions {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        };
        Conv2d { weight, bias, params }
    }
}

#[track_caller]
fn check_groups(layer: &str, cin: usize, cout: usize, groups: usize) {
    if groups == 0 || !cin.is_multiple_of(groups) || !cout.is_multiple_of(groups) {
        panic!(
            "adjoint-nn: {layer}: in_channels {cin} and out_channels {cout} must both divide by groups {groups}"
        );
    }
}

/// 2-D convolution (`nn.Conv2d`, zero padding): `weight` `[out, in/groups, kh, kw]`, `bias` `[out]`.
///
/// ```
/// use adjoint_nn::layers::{Conv2d, Module};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let conv = Conv2d::config(3, 8, [3, 3]).padding([1, 1]).stride([2, 2]).init(&Key::new(0));
/// assert_eq!(conv.forward(&Tensor::zeros(&[2, 3, 8, 8])).shape(), &[2, 8, 4, 4]);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Conv2d {
    /// `[out_channels, in_channels / groups, kh, kw]`.
    pub weight: Tensor,
    /// `[out_channels]`, if any.
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation and groups.
    #[params(skip)]
    pub params: Conv2dOptions,
}

impl Conv2d {
    /// An `f32` layer with stride 1, no padding, bias, PyTorch's default init.
    pub fn new(in_channels: usize, out_channels: usize, kernel: [usize; 2], key: &Key) -> Conv2d {
        Conv2dConfig::new(in_channels, out_channels, kernel).init(key)
    }

    /// Options for a layer.
    pub fn config(in_channels: usize, out_channels: usize, kernel: [usize; 2]) -> Conv2dConfig {
        Conv2dConfig::new(in_channels, out_channels, kernel)
    }
}

impl Module for Conv2d {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        let y = x.conv2d(&self.weight, &self.params);
        match &self.bias {
            Some(b) => y + b.reshape(&[1, b.numel(), 1, 1]),
            None => y,
        }
    }
}

/// Options of a [`Conv1d`].
#[derive(Clone, Debug)]
pub struct Conv1dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel length.
    pub kernel: usize,
    /// Stride (default 1).
    pub stride: usize,
    /// Zero padding on both sides (default 0).
    pub padding: usize,
    /// Dilation (default 1).
    pub dilation: usize,
    /// Groups (default 1).
    pub groups: usize,
    /// Whether to add a bias (default true).
    pub bias: bool,
    /// Parameter dtype (default `f32`).
    pub dtype: DType,
}
setters!(Conv1dConfig {
    stride: usize,
    padding: usize,
    dilation: usize,
    groups: usize,
    bias: bool,
    dtype: DType
});

impl Conv1dConfig {
    /// Defaults: stride 1, no padding, dilation 1, one group, bias, `f32`.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Conv1dConfig {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: 0,
            dilation: 1,
            groups: 1,
            bias: true,
            dtype: DType::F32,
        }
    }

    /// A layer with PyTorch's default init.
    #[track_caller]
    pub fn init(&self, key: &Key) -> Conv1d {
        check_groups("Conv1d", self.in_channels, self.out_channels, self.groups);
        let shape = [self.out_channels, self.in_channels / self.groups, self.kernel];
        let (weight, bias) = init::torch_default_weight_bias(key, &shape, self.bias, self.dtype);
        let params = Conv1dOptions {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        };
        Conv1d { weight, bias, params }
    }
}

/// 1-D convolution (`nn.Conv1d`): `weight` `[out, in/groups, k]`, `bias` `[out]`, input `[N, C, L]`.
///
/// ```
/// use adjoint_nn::layers::{Conv1d, Module};
/// use adjoint_core::Tensor;
/// use adjoint_tensor::random::Key;
/// let conv = Conv1d::config(4, 6, 3).dilation(2).init(&Key::new(0));
/// assert_eq!(conv.forward(&Tensor::zeros(&[2, 4, 10])).shape(), &[2, 6, 6]);
/// ```
#[derive(Clone, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct Conv1d {
    /// `[out_channels, in_channels / groups, k]`.
    pub weight: Tensor,
    /// `[out_channels]`, if any.
    pub bias: Option<Tensor>,
    /// Stride, padding, dilation and groups.
    #[params(skip)]
    pub params: Conv1dOptions,
}

impl Conv1d {
    /// An `f32` layer with stride 1, no padding, bias, PyTorch's default init.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize, key: &Key) -> Conv1d {
        Conv1dConfig::new(in_channels, out_channels, kernel).init(key)
    }

    /// Options for a layer.
    pub fn config(in_channels: usize, out_channels: usize, kernel: usize) -> Conv1dConfig {
        Conv1dConfig::new(in_channels, out_channels, kernel)
    }
}

impl Module for Conv1d {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        let y = x.conv1d(&self.weight, &self.params);
        match &self.bias {
            Some(b) => y + b.reshape(&[1, b.numel(), 1]),
            None => y,
        }
    }
}

/// 2-D max pooling (`nn.MaxPool2d`, no dilation, `ceil_mode = false`).
///
/// ```
/// use adjoint_nn::layers::{MaxPool2d, Module};
/// use adjoint_core::Tensor;
/// assert_eq!(MaxPool2d::new([2, 2]).forward(&Tensor::zeros(&[1, 3, 6, 6])).shape(), &[1, 3, 3, 3]);
/// ```
#[derive(Clone, Copy, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct MaxPool2d {
    /// Kernel, stride, padding.
    #[params(skip)]
    pub params: Pool2dOptions,
}

impl MaxPool2d {
    /// Non-overlapping windows (stride = kernel, no padding), PyTorch's default.
    pub fn new(kernel: [usize; 2]) -> Self {
        MaxPool2d { params: Pool2dOptions::new(kernel) }
    }
    /// Windows with an explicit stride and padding.
    pub fn with(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Self {
        MaxPool2d { params: Pool2dOptions { kernel, stride, padding } }
    }
}

impl Module for MaxPool2d {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        x.max_pool2d(&self.params)
    }
}

/// 2-D average pooling (`nn.AvgPool2d`); with `count_include_pad` (PyTorch's default) the
/// zero padding counts in the average.
#[derive(Clone, Copy, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct AvgPool2d {
    /// Kernel, stride, padding.
    #[params(skip)]
    pub params: Pool2dOptions,
    /// Whether padded zeros count in the average.
    #[params(skip)]
    pub count_include_pad: bool,
}

impl AvgPool2d {
    /// Non-overlapping windows (stride = kernel, no padding).
    pub fn new(kernel: [usize; 2]) -> Self {
        AvgPool2d { params: Pool2dOptions::new(kernel), count_include_pad: true }
    }
    /// Windows with an explicit stride and padding.
    pub fn with(
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        count_include_pad: bool,
    ) -> Self {
        AvgPool2d { params: Pool2dOptions { kernel, stride, padding }, count_include_pad }
    }
}

impl Module for AvgPool2d {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        x.avg_pool2d(&self.params, self.count_include_pad)
    }
}

#[track_caller]
fn pool1d(name: &str, x: &Tensor, f: impl FnOnce(&Tensor) -> Tensor) -> Tensor {
    if x.rank() != 3 {
        panic!("adjoint-nn: {name}: needs [N, C, L], got {:?}", x.shape());
    }
    let (n, c, l) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let y = f(&x.reshape(&[n, c, 1, l]));
    let ol = y.shape()[3];
    y.reshape(&[n, c, ol])
}

/// 1-D max pooling over `[N, C, L]` (`nn.MaxPool1d`).
#[derive(Clone, Copy, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct MaxPool1d {
    /// Window length.
    #[params(skip)]
    pub kernel: usize,
    /// Step between windows.
    #[params(skip)]
    pub stride: usize,
    /// Padding on both sides.
    #[params(skip)]
    pub padding: usize,
}

impl MaxPool1d {
    /// Non-overlapping windows.
    pub fn new(kernel: usize) -> Self {
        MaxPool1d { kernel, stride: kernel, padding: 0 }
    }
}

impl Module for MaxPool1d {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        let p =
            Pool2dOptions { kernel: [1, self.kernel], stride: [1, self.stride], padding: [0, self.padding] };
        pool1d("MaxPool1d", x, |x| x.max_pool2d(&p))
    }
}

/// 1-D average pooling over `[N, C, L]` (`nn.AvgPool1d`).
#[derive(Clone, Copy, Debug, Params)]
#[params(crate = adjoint_core)]
pub struct AvgPool1d {
    /// Window length.
    #[params(skip)]
    pub kernel: usize,
    /// Step between windows.
    #[params(skip)]
    pub stride: usize,
    /// Padding on both sides.
    #[params(skip)]
    pub padding: usize,
    /// Whether padded zeros count in the average.
    #[params(skip)]
    pub count_include_pad: bool,
}

impl AvgPool1d {
    /// Non-overlapping windows.
    pub fn new(kernel: usize) -> Self {
        AvgPool1d { kernel, stride: kernel, padding: 0, count_include_pad: true }
    }
}

impl Module for AvgPool1d {
    #[track_caller]
    fn forward_with(&self, x: &Tensor, _ctx: &mut Ctx) -> Tensor {
        let p =
            Pool2dOptions { kernel: [1, self.kernel], stride: [1, self.stride], padding: [0, self.padding] };
        pool1d("AvgPool1d", x, |x| x.avg_pool2d(&p, self.count_include_pad))
    }
}
