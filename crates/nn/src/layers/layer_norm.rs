//! Layer normalisation over the last axis.

use wengert_core::{Float, Param, Tensor, Var};

use crate::module::{visit_affine, Module};

/// Options for [`LayerNorm`], defaults as PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormConfig {
    /// Added to the variance (default 1e-5).
    pub eps: f64,
    /// Learn a scale γ (init 1) and shift β (init 0) (default `true`).
    pub affine: bool,
}

impl Default for LayerNormConfig {
    fn default() -> Self {
        LayerNormConfig { eps: 1e-5, affine: true }
    }
}

/// y = (x - μ) / √(σ² + ε) · γ + β, with μ and σ² (population variance) over the last axis.
pub struct LayerNorm<T: Float = f32> {
    /// γ, `[dim]`
    pub weight: Option<Param<T>>,
    /// β, `[dim]`
    pub bias: Option<Param<T>>,
    eps: f64,
    dim: usize,
}

impl<T: Float> LayerNorm<T> {
    /// Normalises vectors of length `dim`.
    pub fn new(dim: usize) -> Self {
        Self::with_config(dim, LayerNormConfig::default())
    }

    /// With explicit options.
    pub fn with_config(dim: usize, cfg: LayerNormConfig) -> Self {
        LayerNorm {
            weight: cfg.affine.then(|| Param::new(Tensor::ones([dim]))),
            bias: cfg.affine.then(|| Param::new(Tensor::zeros([dim]))),
            eps: cfg.eps,
            dim,
        }
    }
}

impl<T: Float> Module<T> for LayerNorm<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        if x.shape().dims().last() != Some(&self.dim) {
            panic!("wengert: LayerNorm({}): input of shape {} must end in {}", self.dim, x.shape(), self.dim);
        }
        let centered = x - x.mean_axes(&[-1], true);
        let var = centered.square().mean_axes(&[-1], true);
        let y = centered / (var + self.eps).sqrt();
        let tape = x.tape();
        let y = match &self.weight {
            Some(w) => y * tape.param(w),
            None => y,
        };
        match &self.bias {
            Some(b) => y + tape.param(b),
            None => y,
        }
    }
    visit_affine!();
}
