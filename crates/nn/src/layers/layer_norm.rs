//! Layer normalisation over the trailing axes.

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

/// y = (x - μ) / √(σ² + ε) · γ + β, with μ and σ² (population variance) over the last axis,
/// or over the last k axes for a `normalized_shape` of k dims (PyTorch's `nn.LayerNorm`).
///
/// ```
/// use wengert_nn::prelude::*;
/// let ln = LayerNorm::<f64>::with_shape(&[2, 2], LayerNormConfig::default());
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 8.0], [2, 2, 2]));
/// let y = ln.forward(x).value(); // each [2, 2] block to mean 0, variance 1
/// let block: f64 = y.as_slice()[..4].iter().sum();
/// assert!(block.abs() < 1e-12 && (y.as_slice()[7] - 3f64.sqrt()).abs() < 1e-5);
/// ```
pub struct LayerNorm<T: Float = f32> {
    /// γ, of the normalized shape
    pub weight: Option<Param<T>>,
    /// β, of the normalized shape
    pub bias: Option<Param<T>>,
    eps: f64,
    shape: Vec<usize>,
}

impl<T: Float> LayerNorm<T> {
    /// Normalises vectors of length `dim`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let ln = LayerNorm::<f64>::new(3);
    /// let tape = Tape::new();
    /// let y = ln.forward(tape.constant(Tensor::from_slice(&[1.0, 2.0, 3.0]))).value().to_vec();
    /// // mean 2, variance 2/3: (x − 2)/√(2/3 + 1e-5)
    /// assert!((y[0] + 1.224735).abs() < 1e-5 && y[1].abs() < 1e-12);
    /// ```
    pub fn new(dim: usize) -> Self {
        Self::with_config(dim, LayerNormConfig::default())
    }

    /// With explicit options.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let ln = LayerNorm::<f32>::with_config(4, LayerNormConfig { eps: 1e-12, affine: false });
    /// assert!(ln.named_params().is_empty()); // no γ, β
    /// ```
    pub fn with_config(dim: usize, cfg: LayerNormConfig) -> Self {
        Self::with_shape(&[dim], cfg)
    }

    /// Normalises over the trailing axes `normalized_shape` (γ and β have that shape).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let ln = LayerNorm::<f32>::with_shape(&[2, 3], LayerNormConfig::default());
    /// assert_eq!(ln.named_params()[0].1.value().dims(), &[2, 3]);
    /// assert!(std::panic::catch_unwind(|| LayerNorm::<f32>::with_shape(&[], LayerNormConfig::default())).is_err());
    /// ```
    #[track_caller]
    pub fn with_shape(normalized_shape: &[usize], cfg: LayerNormConfig) -> Self {
        if normalized_shape.is_empty() {
            panic!("wengert: LayerNorm: normalized_shape must have at least one axis");
        }
        let shape = normalized_shape.to_vec();
        LayerNorm {
            weight: cfg.affine.then(|| Param::new(Tensor::ones(shape.clone()))),
            bias: cfg.affine.then(|| Param::new(Tensor::zeros(shape.clone()))),
            eps: cfg.eps,
            shape,
        }
    }

    /// The trailing shape it normalises over.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(LayerNorm::<f32>::new(5).normalized_shape(), &[5]);
    /// ```
    pub fn normalized_shape(&self) -> &[usize] {
        &self.shape
    }
}

impl<T: Float> Module<T> for LayerNorm<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let (dims, k) = (x.shape().dims().to_vec(), self.shape.len());
        if dims.len() < k || dims[dims.len() - k..] != self.shape[..] {
            let s = &self.shape;
            let want = if k == 1 { format!("{}", s[0]) } else { format!("{s:?}") };
            panic!("wengert: LayerNorm({want}): input of shape {} must end in {want}", x.shape());
        }
        let tape = x.tape();
        let (weight, bias) = (self.weight.as_ref().map(|w| tape.param(w)), self.bias.as_ref().map(|b| tape.param(b)));
        x.layer_norm(self.shape.iter().product(), weight, bias, self.eps)
    }
    visit_affine!();
}
