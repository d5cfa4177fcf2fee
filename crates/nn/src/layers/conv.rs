//! Convolution layers: Conv1d, Conv2d, ConvTranspose2d (PyTorch's shapes, names and init).

use rand::Rng;
use wengert_core::{Conv2dOptions, ConvTranspose2dOptions, Float, Param, Var};

use crate::init::{fans, with_rng, Init};
use crate::module::{visit_weight_bias, Module};

/// Options of [`Conv2d`] and [`Conv1d`] beyond the channel counts and kernel size; defaults
/// are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvConfig {
    /// stride (default 1)
    pub stride: usize,
    /// zero padding on each side (default 0)
    pub padding: usize,
    /// kernel tap spacing (default 1)
    pub dilation: usize,
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
        ConvConfig { stride: 1, padding: 0, dilation: 1, groups: 1, bias: true, weight_init: Init::PYTORCH_DEFAULT }
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


/// 2-D convolution: `[N, C_in, H, W]` -> `[N, C_out, OH, OW]`, weight `[C_out, C_in/groups, k, k]`.
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
    /// A `k x k` convolution with default options, initialised from the per-thread generator.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self::with_config(in_channels, out_channels, kernel, ConvConfig::default())
    }

    /// With explicit options.
    #[track_caller]
    pub fn with_config(in_channels: usize, out_channels: usize, kernel: usize, cfg: ConvConfig) -> Self {
        check_groups("Conv2d", in_channels, out_channels, cfg.groups);
        let (weight, bias) = with_rng(|rng| make_params(&[out_channels, in_channels / cfg.groups, kernel, kernel], out_channels, &cfg, rng));
        let opts = Conv2dOptions {
            stride: (cfg.stride, cfg.stride),
            padding: (cfg.padding, cfg.padding),
            dilation: (cfg.dilation, cfg.dilation),
            groups: cfg.groups,
        };
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
    cfg: ConvConfig,
}

impl<T: Float> Conv1d<T> {
    /// A size-`kernel` convolution with default options.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self::with_config(in_channels, out_channels, kernel, ConvConfig::default())
    }

    /// With explicit options.
    #[track_caller]
    pub fn with_config(in_channels: usize, out_channels: usize, kernel: usize, cfg: ConvConfig) -> Self {
        check_groups("Conv1d", in_channels, out_channels, cfg.groups);
        let (weight, bias) = with_rng(|rng| make_params(&[out_channels, in_channels / cfg.groups, kernel], out_channels, &cfg, rng));
        Conv1d { weight, bias, cfg }
    }
}

impl<T: Float> Module<T> for Conv1d<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let tape = x.tape();
        let c = &self.cfg;
        x.conv1d(tape.param(&self.weight), self.bias.as_ref().map(|b| tape.param(b)), c.stride, c.padding, c.dilation, c.groups)
    }
    visit_weight_bias!();
}

/// Options of [`ConvTranspose2d`]; defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvTransposeConfig {
    /// stride (default 1)
    pub stride: usize,
    /// padding removed from each side of the output (default 0)
    pub padding: usize,
    /// extra size on the far side of the output, smaller than the stride (default 0)
    pub output_padding: usize,
    /// kernel tap spacing (default 1)
    pub dilation: usize,
    /// channel groups (default 1)
    pub groups: usize,
    /// add a bias (default `true`)
    pub bias: bool,
}

impl Default for ConvTransposeConfig {
    fn default() -> Self {
        ConvTransposeConfig { stride: 1, padding: 0, output_padding: 0, dilation: 1, groups: 1, bias: true }
    }
}

/// Transposed 2-D convolution (learned upsampling): `[N, C_in, H, W]` -> `[N, C_out, OH, OW]`
/// with OH = (H-1)·stride - 2·padding + dilation·(k-1) + output_padding + 1; weight
/// `[C_in, C_out/groups, k, k]` as PyTorch's.
pub struct ConvTranspose2d<T: Float = f32> {
    /// `[C_in, C_out/groups, kh, kw]`
    pub weight: Param<T>,
    /// `[C_out]`
    pub bias: Option<Param<T>>,
    opts: ConvTranspose2dOptions,
}

impl<T: Float> ConvTranspose2d<T> {
    /// A `k x k` transposed convolution with default options.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        Self::with_config(in_channels, out_channels, kernel, ConvTransposeConfig::default())
    }

    /// With explicit options. Initialisation as PyTorch: U(-1/√fan, 1/√fan) with
    /// fan = (C_out/groups)·k² (PyTorch computes the fan from the weight's second dim).
    #[track_caller]
    pub fn with_config(in_channels: usize, out_channels: usize, kernel: usize, cfg: ConvTransposeConfig) -> Self {
        check_groups("ConvTranspose2d", in_channels, out_channels, cfg.groups);
        let conv_cfg = ConvConfig { bias: cfg.bias, ..Default::default() };
        let (weight, bias) = with_rng(|rng| make_params(&[in_channels, out_channels / cfg.groups, kernel, kernel], out_channels, &conv_cfg, rng));
        let opts = ConvTranspose2dOptions {
            stride: (cfg.stride, cfg.stride),
            padding: (cfg.padding, cfg.padding),
            output_padding: (cfg.output_padding, cfg.output_padding),
            dilation: (cfg.dilation, cfg.dilation),
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
