//! What the normalisation layers share, and `GroupNorm`.
//!
//! LayerNorm, BatchNorm and GroupNorm all compute y = (x − μ) / √(σ² + ε) · γ + β; they differ
//! only in the axes μ and σ² (the biased variance, as in PyTorch) are taken over and in the
//! shape γ and β broadcast from. [`normalize`] is that computation composed of `Var` ops, for
//! BatchNorm (which keeps the statistics for its running averages); LayerNorm and GroupNorm
//! normalise with the one-op `Var::layer_norm` (GroupNorm's rows are each sample's groups).
//! [`affine`] applies γ and β for BatchNorm and GroupNorm.

use wengert_core::{Float, Param, Tensor, Var};

use crate::module::{visit_affine, Module};

/// A normalised value with the statistics it was normalised by (kept with `keepdim`, so they
/// broadcast against the input; BatchNorm folds them into its running averages).
pub(crate) struct Normalized<'t, T: Float> {
    /// (x − μ) / √(σ² + ε)
    pub(crate) y: Var<'t, T>,
    /// μ over the axes
    pub(crate) mean: Var<'t, T>,
    /// σ² over the axes, biased (divided by the count)
    pub(crate) var: Var<'t, T>,
}

/// (x − μ) / √(σ² + ε) with μ and the biased σ² over `axes` of `x`.
#[track_caller]
pub(crate) fn normalize<'t, T: Float>(x: Var<'t, T>, axes: &[isize], eps: f64) -> Normalized<'t, T> {
    let mean = x.mean_axes(axes, true);
    let centered = x - mean;
    let var = centered.square().mean_axes(axes, true);
    Normalized { y: centered / (var + eps).sqrt(), mean, var }
}

/// y·γ + β, with γ and β viewed in `shape` (to broadcast per channel) when given.
#[track_caller]
pub(crate) fn affine<'t, T: Float>(y: Var<'t, T>, weight: Option<&Param<T>>, bias: Option<&Param<T>>, shape: Option<&[usize]>) -> Var<'t, T> {
    let tape = y.tape();
    let view = |p: &Param<T>| {
        let v = tape.param(p);
        shape.map_or(v, |s| v.reshape(s.to_vec()))
    };
    let y = weight.map_or(y, |w| y * view(w));
    bias.map_or(y, |b| y + view(b))
}

/// Options for [`GroupNorm`], defaults as PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupNormConfig {
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Learn a per-channel scale γ (init 1) and shift β (init 0) (default `true`).
    pub affine: bool,
}

impl Default for GroupNormConfig {
    /// eps 1e-5, affine.
    ///
    /// ```
    /// use wengert_nn::layers::GroupNormConfig;
    /// assert_eq!(GroupNormConfig::default(), GroupNormConfig { eps: 1e-5, affine: true });
    /// ```
    fn default() -> Self {
        GroupNormConfig { eps: 1e-5, affine: true }
    }
}

/// Group normalisation (PyTorch's `nn.GroupNorm`): the C channels of an `[N, C, *]` input are
/// split into G groups of C/G, and each sample's group is normalised over its channels and
/// all positions, y = (x − μ) / √(σ² + ε) · γ + β, with γ and β per channel `[C]`. It does not
/// depend on the batch (unlike BatchNorm), so it trains the same at batch 1. G = 1 is
/// LayerNorm over `[C, *]` with per-channel γ, β; G = C is instance normalisation.
///
/// ```
/// use wengert_nn::prelude::*;
/// let gn = GroupNorm::<f64>::new(2, 4); // 2 groups of 2 channels
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::from_fn([1, 4, 1], |i| [1.0, 3.0, 10.0, 30.0][i[1]]));
/// let y = gn.forward(x).value().to_vec();
/// // each group {1, 3} and {10, 30} to mean 0 and variance 1 (up to ε)
/// assert!((y[0] + 1.0).abs() < 1e-5 && (y[1] - 1.0).abs() < 1e-5);
/// assert!((y[2] + 1.0).abs() < 1e-7 && (y[3] - 1.0).abs() < 1e-7);
/// ```
pub struct GroupNorm<T: Float = f32> {
    /// γ, `[C]`; `None` when `affine` is off
    pub weight: Option<Param<T>>,
    /// β, `[C]`; `None` when `affine` is off
    pub bias: Option<Param<T>>,
    groups: usize,
    channels: usize,
    eps: f64,
}

impl<T: Float> GroupNorm<T> {
    /// `num_groups` groups over `num_channels` channels, default options. Panics if the
    /// channels do not split evenly into the groups.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let gn = GroupNorm::<f32>::new(4, 8);
    /// assert_eq!((gn.num_groups(), gn.num_channels()), (4, 8));
    /// assert_eq!(gn.named_params()[0].1.value().dims(), &[8]);
    /// ```
    #[track_caller]
    pub fn new(num_groups: usize, num_channels: usize) -> Self {
        Self::with_config(num_groups, num_channels, GroupNormConfig::default())
    }

    /// With explicit options.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// use wengert_nn::layers::GroupNormConfig;
    /// let gn = GroupNorm::<f32>::with_config(2, 6, GroupNormConfig { affine: false, ..Default::default() });
    /// assert!(gn.named_params().is_empty());
    /// let bad = std::panic::catch_unwind(|| GroupNorm::<f32>::new(4, 6));
    /// assert!(bad.is_err()); // 6 channels do not split into 4 groups
    /// ```
    #[track_caller]
    pub fn with_config(num_groups: usize, num_channels: usize, cfg: GroupNormConfig) -> Self {
        if num_groups == 0 || !num_channels.is_multiple_of(num_groups) {
            panic!("wengert: GroupNorm({num_groups}, {num_channels}): num_channels must be divisible by num_groups");
        }
        GroupNorm {
            weight: cfg.affine.then(|| Param::new(Tensor::ones([num_channels]))),
            bias: cfg.affine.then(|| Param::new(Tensor::zeros([num_channels]))),
            groups: num_groups,
            channels: num_channels,
            eps: cfg.eps,
        }
    }

    /// Number of groups G.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(GroupNorm::<f32>::new(3, 12).num_groups(), 3);
    /// ```
    pub fn num_groups(&self) -> usize {
        self.groups
    }

    /// Number of channels C.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(GroupNorm::<f32>::new(3, 12).num_channels(), 12);
    /// ```
    pub fn num_channels(&self) -> usize {
        self.channels
    }
}

impl<T: Float> Module<T> for GroupNorm<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let s = x.shape();
        let (g, c) = (self.groups, self.channels);
        if s.ndim() < 2 || s[1] != c {
            panic!("wengert: GroupNorm({g}, {c}): input of shape {s} must be [N, {c}, *]");
        }
        let n = s[0];
        let per_group = s.numel() / (n * g).max(1);
        // each sample's group is a row of the one-op layer norm (an empty input has no rows)
        let y = if s.numel() == 0 {
            x
        } else {
            x.reshape(vec![n, g, per_group]).layer_norm(per_group, None, None, self.eps).reshape(s.dims().to_vec())
        };
        let mut channel = vec![1; s.ndim()];
        channel[1] = c;
        affine(y, self.weight.as_ref(), self.bias.as_ref(), Some(&channel))
    }
    visit_affine!();
}
