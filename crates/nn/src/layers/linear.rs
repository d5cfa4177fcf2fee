//! Fully connected layer: y = x·Wᵀ + b.

use rand::Rng;
use wengert_core::{Float, Param, Transpose, Var};

use crate::init::{with_rng, Init};
use crate::module::{visit_weight_bias, Module};

/// Options for [`Linear`], defaults as PyTorch's `nn.Linear`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearConfig {
    /// Add a bias (default `true`).
    pub bias: bool,
    /// Weight initialiser (default [`Init::PYTORCH_DEFAULT`]: U(-1/√in, 1/√in)).
    pub weight_init: Init,
    /// Bias initialiser (default `None`: U(-1/√in, 1/√in), as PyTorch).
    pub bias_init: Option<Init>,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig { bias: true, weight_init: Init::PYTORCH_DEFAULT, bias_init: None }
    }
}

/// y = x·Wᵀ + b for x of shape `[.., in]`, giving `[.., out]`. W is stored `[out, in]` like
/// PyTorch's, and read transposed in place by the matmul (no copy).
///
/// ```
/// use wengert_nn::prelude::*;
/// let layer = Linear::<f32>::new(3, 2);
/// let tape = Tape::new();
/// let y = layer.forward(tape.constant(Tensor::ones([4, 3])));
/// assert_eq!(y.shape().dims(), &[4, 2]);
/// ```
pub struct Linear<T: Float = f32> {
    /// `[out, in]`
    pub weight: Param<T>,
    /// `[out]`
    pub bias: Option<Param<T>>,
}

impl<T: Float> Linear<T> {
    /// A layer with PyTorch's default initialisation, drawn from the per-thread generator
    /// ([`crate::init::manual_seed`] makes it repeatable).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let layer = Linear::<f64>::new(4, 3);
    /// assert_eq!(layer.weight.value().dims(), &[3, 4]); // [out, in], as PyTorch
    /// assert_eq!(layer.bias.as_ref().unwrap().value().dims(), &[3]);
    /// // U(−1/√in, 1/√in) = U(−0.5, 0.5) for both
    /// assert!(layer.weight.value().to_vec().iter().chain(&layer.bias.as_ref().unwrap().value().to_vec()).all(|w| w.abs() <= 0.5));
    /// ```
    pub fn new(in_features: usize, out_features: usize) -> Self {
        with_rng(|rng| Self::with_config(in_features, out_features, LinearConfig::default(), rng))
    }

    /// A layer with explicit options and generator.
    ///
    /// ```
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use wengert_nn::{init::Init, prelude::*};
    /// let cfg = LinearConfig { bias: false, weight_init: Init::Ones, bias_init: None };
    /// let layer = Linear::<f64>::with_config(3, 2, cfg, &mut StdRng::seed_from_u64(0));
    /// assert!(layer.bias.is_none());
    /// let tape = Tape::new();
    /// let y = layer.forward(tape.constant(Tensor::new(vec![1.0, 2.0, 3.0], [1, 3])));
    /// assert_eq!(y.value().to_vec(), [6.0, 6.0]); // x·Wᵀ with W all ones
    /// ```
    pub fn with_config(in_features: usize, out_features: usize, cfg: LinearConfig, rng: &mut impl Rng) -> Self {
        let weight = Param::new(cfg.weight_init.tensor([out_features, in_features], rng));
        let bound = 1.0 / (in_features.max(1) as f64).sqrt();
        let bias = cfg.bias.then(|| {
            let init = cfg.bias_init.unwrap_or(Init::Uniform(-bound, bound));
            Param::new(init.tensor([out_features], rng))
        });
        Linear { weight, bias }
    }

    /// Input features.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let layer = Linear::<f32>::new(5, 2);
    /// assert_eq!(layer.in_features(), 5);
    /// assert_eq!(layer.in_features(), layer.weight.value().dims()[1]);
    /// ```
    pub fn in_features(&self) -> usize {
        self.weight.value().dims()[1]
    }

    /// Output features.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let layer = Linear::<f32>::new(5, 2);
    /// assert_eq!(layer.out_features(), 2);
    /// let tape = Tape::new();
    /// assert_eq!(layer.forward(tape.constant(Tensor::zeros([7, 5]))).shape().dims(), &[7, 2]);
    /// ```
    pub fn out_features(&self) -> usize {
        self.weight.value().dims()[0]
    }
}

impl<T: Float> Module<T> for Linear<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        if shape.dims().last() != Some(&self.in_features()) {
            panic!(
                "wengert: Linear({} -> {}): input of shape {shape} must end in {}",
                self.in_features(),
                self.out_features(),
                self.in_features()
            );
        }
        let tape = x.tape();
        let w = tape.param(&self.weight);
        match &self.bias {
            Some(b) => x.matmul_t_bias(w, Transpose::NT, tape.param(b)),
            None => x.matmul_t(w, Transpose::NT),
        }
    }
    visit_weight_bias!();
}
