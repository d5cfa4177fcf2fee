//! Convolution layers: Conv1d, Conv2d, ConvTranspose2d (PyTorch's shapes, names and init).

use rand::Rng;
use wengert_core::{Conv2dOptions, ConvTranspose2dOptions, Float, Param, Var};

use crate::init::{fans, with_rng, Init};
use crate::module::{visit_weight_bias, Module};

/// A size per spatial axis (height, width), as PyTorch's `int or (int, int)` arguments: a
/// `usize` is the same on both axes, a tuple gives each.
///
/// ```
/// use wengert_nn::prelude::*;
/// assert_eq!(Size2::from(3), Size2(3, 3));
/// assert_eq!(Size2::from((3, 5)), Size2(3, 5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size2(pub usize, pub usize);

impl From<usize> for Size2 {
    fn from(n: usize) -> Self {
        Size2(n, n)
    }
}

impl From<(usize, usize)> for Size2 {
    fn from((h, w): (usize, usize)) -> Self {
        Size2(h, w)
    }
}

impl From<Size2> for (usize, usize) {
    fn from(s: Size2) -> Self {
        (s.0, s.1)
    }
}

impl Size2 {
    /// The one size of a 1-D layer; panics naming the layer when the two differ.
    #[track_caller]
    fn one(self, layer: &str, what: &str) -> usize {
        if self.0 != self.1 {
            panic!("wengert: {layer}: {what} {self:?} must be one size for a 1-D layer");
        }
        self.0
    }
}

/// Options of [`Conv2d`] and [`Conv1d`] beyond the channel counts and kernel size; defaults
/// are PyTorch's. Sizes are per axis ([`Size2`]); the `with_*` methods take a `usize` or a
/// `(h, w)` tuple as PyTorch does:
///
/// ```
/// use wengert_nn::prelude::*;
/// let cfg = ConvConfig::default().with_stride((1, 2)).with_padding(1);
/// assert_eq!((cfg.stride, cfg.padding), (Size2(1, 2), Size2(1, 1)));
/// let conv = Conv2d::<f32>::with_config(3, 4, (3, 5), cfg);       // nn.Conv2d(3, 4, (3, 5), stride=(1, 2), padding=1)
/// assert_eq!(conv.weight.value().dims(), &[4, 3, 3, 5]);
/// let tape = Tape::new();
/// assert_eq!(conv.forward(tape.constant(Tensor::zeros([1, 3, 8, 9]))).shape().dims(), &[1, 4, 8, 4]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvConfig {
    /// stride (default 1)
    pub stride: Size2,
    /// zero padding on each side (default 0)
    pub padding: Size2,
    /// kernel tap spacing (default 1)
    pub dilation: Size2,
    /// channel groups (default 1)
    pub groups: usize,
    /// add a bias (default `true`)
    pub bias: bool,
    /// weight initialiser (default [`Init::PYTORCH_DEFAULT`], U(-1/√fan_in, 1/√fan_in));
    /// the bias is U(-1/√fan_in, 1/√fan_in) as in PyTorch
    pub weight_init: Init,
}

impl Default for ConvConfig {
    fn default() -> Self {
        ConvConfig { stride: Size2(1, 1), padding: Size2(0, 0), dilation: Size2(1, 1), groups: 1, bias: true, weight_init: Init::PYTORCH_DEFAULT }
    }
}

impl ConvConfig {
    /// With this stride.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = ConvConfig::default().with_stride(2);
    /// assert_eq!(cfg.stride, Size2(2, 2));
    /// let conv = Conv2d::<f32>::with_config(1, 1, 3, cfg);
    /// let tape = Tape::new();
    /// assert_eq!(conv.forward(tape.constant(Tensor::zeros([1, 1, 7, 7]))).shape().dims(), &[1, 1, 3, 3]);
    /// ```
    pub fn with_stride(self, stride: impl Into<Size2>) -> Self {
        ConvConfig { stride: stride.into(), ..self }
    }
    /// With this zero padding on each side.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = ConvConfig::default().with_padding((1, 0)); // pad H only
    /// assert_eq!(cfg.padding, Size2(1, 0));
    /// let conv = Conv2d::<f32>::with_config(1, 1, 3, cfg);
    /// let tape = Tape::new();
    /// assert_eq!(conv.forward(tape.constant(Tensor::zeros([1, 1, 5, 5]))).shape().dims(), &[1, 1, 5, 3]);
    /// ```
    pub fn with_padding(self, padding: impl Into<Size2>) -> Self {
        ConvConfig { padding: padding.into(), ..self }
    }
    /// With this dilation.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = ConvConfig::default().with_dilation(2); // a 3 x 3 kernel spans 5 x 5
    /// assert_eq!(cfg.dilation, Size2(2, 2));
    /// let conv = Conv2d::<f32>::with_config(1, 1, 3, cfg);
    /// let tape = Tape::new();
    /// assert_eq!(conv.forward(tape.constant(Tensor::zeros([1, 1, 7, 7]))).shape().dims(), &[1, 1, 3, 3]);
    /// ```
    pub fn with_dilation(self, dilation: impl Into<Size2>) -> Self {
        ConvConfig { dilation: dilation.into(), ..self }
    }
}

fn make_params<T: Float>(shape: &[usize], bias_len: usize, cfg: &ConvConfig, rng: &mut impl Rng) -> (Param<T>, Option<Param<T>>) {
    let weight = Param::new(cfg.weight_init.tensor(shape, rng));
    let (fan_in, _) = fans(weight.value().shape());
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let bias = cfg.bias.then(|| Param::new(Init::Uniform(-bound, bound).tensor([bias_len], rng)));
    (weight, bias)
}

#[track_caller]
fn check_groups(layer: &str, cin: usize, cout: usize, groups: usize) {
    if groups == 0 || !cin.is_multiple_of(groups) || !cout.is_multiple_of(groups) {
        panic!("wengert: {layer}: {cin} input and {cout} output channels must both divide into {groups} groups");
    }
}


/// 2-D convolution: `[N, C_in, H, W]` -> `[N, C_out, OH, OW]`, weight
/// `[C_out, C_in/groups, kh, kw]`; the kernel is `k` (square) or `(kh, kw)`.
///
/// ```
/// use wengert_nn::prelude::*;
/// let conv = Conv2d::<f32>::new(1, 8, 3);
/// let tape = Tape::new();
/// let y = conv.forward(tape.constant(Tensor::zeros([2, 1, 8, 8])));
/// assert_eq!(y.shape().dims(), &[2, 8, 6, 6]);
/// ```
pub struct Conv2d<T: Float = f32> {
    /// `[C_out, C_in/groups, kh, kw]`
    pub weight: Param<T>,
    /// `[C_out]`
    pub bias: Option<Param<T>>,
    opts: Conv2dOptions,
}

impl<T: Float> Conv2d<T> {
    /// A `k x k` (or `kh x kw`) convolution with default options, initialised from the
    /// per-thread generator.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let conv = Conv2d::<f32>::new(3, 16, (3, 5));
    /// assert_eq!(conv.weight.value().dims(), &[16, 3, 3, 5]);
    /// assert_eq!(conv.num_params(), 16 * 3 * 3 * 5 + 16); // weight and bias
    /// let tape = Tape::new();
    /// assert_eq!(conv.forward(tape.constant(Tensor::zeros([2, 3, 8, 8]))).shape().dims(), &[2, 16, 6, 4]);
    /// ```
    pub fn new(in_channels: usize, out_channels: usize, kernel: impl Into<Size2>) -> Self {
        Self::with_config(in_channels, out_channels, kernel, ConvConfig::default())
    }

    /// With explicit options.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = ConvConfig { groups: 2, bias: false, ..Default::default() };
    /// let conv = Conv2d::<f32>::with_config(4, 6, 3, cfg);
    /// assert_eq!(conv.weight.value().dims(), &[6, 2, 3, 3]); // C_in/groups = 2
    /// assert!(conv.bias.is_none());
    /// let tape = Tape::new();
    /// assert_eq!(conv.forward(tape.constant(Tensor::zeros([1, 4, 5, 5]))).shape().dims(), &[1, 6, 3, 3]);
    /// ```
    #[track_caller]
    pub fn with_config(in_channels: usize, out_channels: usize, kernel: impl Into<Size2>, cfg: ConvConfig) -> Self {
        check_groups("Conv2d", in_channels, out_channels, cfg.groups);
        let Size2(kh, kw) = kernel.into();
        let (weight, bias) = with_rng(|rng| make_params(&[out_channels, in_channels / cfg.groups, kh, kw], out_channels, &cfg, rng));
        let opts = Conv2dOptions { stride: cfg.stride.into(), padding: cfg.padding.into(), dilation: cfg.dilation.into(), groups: cfg.groups };
        Conv2d { weight, bias, opts }
    }
}

impl<T: Float> Module<T> for Conv2d<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let tape = x.tape();
        x.conv2d(tape.param(&self.weight), self.bias.as_ref().map(|b| tape.param(b)), self.opts)
    }
    visit_weight_bias!();
}

/// 1-D convolution: `[N, C_in, L]` -> `[N, C_out, OL]`, weight `[C_out, C_in/groups, k]`.
pub struct Conv1d<T: Float = f32> {
    /// `[C_out, C_in/groups, k]`
    pub weight: Param<T>,
    /// `[C_out]`
    pub bias: Option<Param<T>>,
    /// (stride, padding, dilation, groups)
    opts: (usize, usize, usize, usize),
}

impl<T: Float> Conv1d<T> {
    /// A size-`kernel` convolution with default options.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let conv = Conv1d::<f32>::new(2, 4, 3);
    /// assert_eq!(conv.weight.value().dims(), &[4, 2, 3]);
    /// let tape = Tape::new();
    /// assert_eq!(conv.forward(tape.constant(Tensor::zeros([5, 2, 10]))).shape().dims(), &[5, 4, 8]);
    /// ```
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self::with_config(in_channels, out_channels, kernel, ConvConfig::default())
    }

    /// With explicit options (each size one number: a `(h, w)` pair of two sizes panics).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let conv = Conv1d::<f32>::with_config(2, 4, 3, ConvConfig::default().with_stride(2).with_padding(1));
    /// let tape = Tape::new();
    /// // (10 + 2·1 - 3) / 2 + 1 = 5
    /// assert_eq!(conv.forward(tape.constant(Tensor::zeros([1, 2, 10]))).shape().dims(), &[1, 4, 5]);
    /// ```
    #[track_caller]
    pub fn with_config(in_channels: usize, out_channels: usize, kernel: usize, cfg: ConvConfig) -> Self {
        check_groups("Conv1d", in_channels, out_channels, cfg.groups);
        let opts = (cfg.stride.one("Conv1d", "stride"), cfg.padding.one("Conv1d", "padding"), cfg.dilation.one("Conv1d", "dilation"), cfg.groups);
        let (weight, bias) = with_rng(|rng| make_params(&[out_channels, in_channels / cfg.groups, kernel], out_channels, &cfg, rng));
        Conv1d { weight, bias, opts }
    }
}

impl<T: Float> Module<T> for Conv1d<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let tape = x.tape();
        let (stride, padding, dilation, groups) = self.opts;
        x.conv1d(tape.param(&self.weight), self.bias.as_ref().map(|b| tape.param(b)), stride, padding, dilation, groups)
    }
    visit_weight_bias!();
}

/// Options of [`ConvTranspose2d`]; defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvTransposeConfig {
    /// stride (default 1)
    pub stride: Size2,
    /// padding removed from each side of the output (default 0)
    pub padding: Size2,
    /// extra size on the far side of the output, smaller than the stride (default 0)
    pub output_padding: Size2,
    /// kernel tap spacing (default 1)
    pub dilation: Size2,
    /// channel groups (default 1)
    pub groups: usize,
    /// add a bias (default `true`)
    pub bias: bool,
}

impl Default for ConvTransposeConfig {
    fn default() -> Self {
        ConvTransposeConfig { stride: Size2(1, 1), padding: Size2(0, 0), output_padding: Size2(0, 0), dilation: Size2(1, 1), groups: 1, bias: true }
    }
}

impl ConvTransposeConfig {
    /// With this stride.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = ConvTransposeConfig::default().with_stride(2);
    /// assert_eq!(cfg.stride, Size2(2, 2));
    /// let up = ConvTranspose2d::<f32>::with_config(1, 1, 2, cfg); // doubles H and W
    /// let tape = Tape::new();
    /// assert_eq!(up.forward(tape.constant(Tensor::zeros([1, 1, 4, 4]))).shape().dims(), &[1, 1, 8, 8]);
    /// ```
    pub fn with_stride(self, stride: impl Into<Size2>) -> Self {
        ConvTransposeConfig { stride: stride.into(), ..self }
    }
    /// With this padding.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = ConvTransposeConfig::default().with_padding(1);
    /// assert_eq!(cfg.padding, Size2(1, 1));
    /// let up = ConvTranspose2d::<f32>::with_config(1, 1, 3, cfg); // 4 - 1 - 2 + 2 + 1 = 4
    /// let tape = Tape::new();
    /// assert_eq!(up.forward(tape.constant(Tensor::zeros([1, 1, 4, 4]))).shape().dims(), &[1, 1, 4, 4]);
    /// ```
    pub fn with_padding(self, padding: impl Into<Size2>) -> Self {
        ConvTransposeConfig { padding: padding.into(), ..self }
    }
    /// With this output padding.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = ConvTransposeConfig::default().with_stride(2).with_padding(1).with_output_padding(1);
    /// assert_eq!(cfg.output_padding, Size2(1, 1));
    /// let up = ConvTranspose2d::<f32>::with_config(1, 1, 3, cfg); // (4 - 1)·2 - 2 + 2 + 1 + 1 = 8
    /// let tape = Tape::new();
    /// assert_eq!(up.forward(tape.constant(Tensor::zeros([1, 1, 4, 4]))).shape().dims(), &[1, 1, 8, 8]);
    /// ```
    pub fn with_output_padding(self, output_padding: impl Into<Size2>) -> Self {
        ConvTransposeConfig { output_padding: output_padding.into(), ..self }
    }
    /// With this dilation.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = ConvTransposeConfig::default().with_dilation(2);
    /// assert_eq!(cfg.dilation, Size2(2, 2));
    /// let up = ConvTranspose2d::<f32>::with_config(1, 1, 3, cfg); // 4 - 1 + 2·2 + 1 = 8
    /// let tape = Tape::new();
    /// assert_eq!(up.forward(tape.constant(Tensor::zeros([1, 1, 4, 4]))).shape().dims(), &[1, 1, 8, 8]);
    /// ```
    pub fn with_dilation(self, dilation: impl Into<Size2>) -> Self {
        ConvTransposeConfig { dilation: dilation.into(), ..self }
    }
}

/// Transposed 2-D convolution (learned upsampling): `[N, C_in, H, W]` -> `[N, C_out, OH, OW]`
/// with OH = (H-1)·stride - 2·padding + dilation·(kh-1) + output_padding + 1 (OW alike);
/// weight `[C_in, C_out/groups, kh, kw]` as PyTorch's.
pub struct ConvTranspose2d<T: Float = f32> {
    /// `[C_in, C_out/groups, kh, kw]`
    pub weight: Param<T>,
    /// `[C_out]`
    pub bias: Option<Param<T>>,
    opts: ConvTranspose2dOptions,
}

impl<T: Float> ConvTranspose2d<T> {
    /// A `k x k` (or `kh x kw`) transposed convolution with default options.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let up = ConvTranspose2d::<f32>::new(4, 2, 3);
    /// assert_eq!(up.weight.value().dims(), &[4, 2, 3, 3]); // [C_in, C_out, kh, kw]
    /// let tape = Tape::new();
    /// assert_eq!(up.forward(tape.constant(Tensor::zeros([1, 4, 5, 5]))).shape().dims(), &[1, 2, 7, 7]);
    /// ```
    pub fn new(in_channels: usize, out_channels: usize, kernel: impl Into<Size2>) -> Self {
        Self::with_config(in_channels, out_channels, kernel, ConvTransposeConfig::default())
    }

    /// With explicit options. Initialisation as PyTorch: U(-1/√fan, 1/√fan) with
    /// fan = (C_out/groups)·k² (PyTorch computes the fan from the weight's second dim).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = ConvTransposeConfig { groups: 2, bias: false, ..Default::default() };
    /// let up = ConvTranspose2d::<f64>::with_config(4, 6, 3, cfg);
    /// assert_eq!(up.weight.value().dims(), &[4, 3, 3, 3]); // C_out/groups = 3
    /// assert!(up.bias.is_none());
    /// // fan = (C_out/groups)·k² = 27
    /// assert!(up.weight.value().as_slice().iter().all(|w| w.abs() <= 1.0 / 27f64.sqrt()));
    /// ```
    #[track_caller]
    pub fn with_config(in_channels: usize, out_channels: usize, kernel: impl Into<Size2>, cfg: ConvTransposeConfig) -> Self {
        check_groups("ConvTranspose2d", in_channels, out_channels, cfg.groups);
        let conv_cfg = ConvConfig { bias: cfg.bias, ..Default::default() };
        let Size2(kh, kw) = kernel.into();
        let (weight, bias) = with_rng(|rng| make_params(&[in_channels, out_channels / cfg.groups, kh, kw], out_channels, &conv_cfg, rng));
        let opts = ConvTranspose2dOptions {
            stride: cfg.stride.into(),
            padding: cfg.padding.into(),
            output_padding: cfg.output_padding.into(),
            dilation: cfg.dilation.into(),
            groups: cfg.groups,
        };
        ConvTranspose2d { weight, bias, opts }
    }
}

impl<T: Float> Module<T> for ConvTranspose2d<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let tape = x.tape();
        x.conv_transpose2d(tape.param(&self.weight), self.bias.as_ref().map(|b| tape.param(b)), self.opts)
    }
    visit_weight_bias!();
}
