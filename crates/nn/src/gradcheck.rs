//! Gradient checks for a whole model's parameters, so users can property-test their own
//! layers the way wengert tests its own (see also `wengert_core::gradcheck` for inputs).

use std::fmt;

use wengert_core::{GradcheckOptions, Tape, Tensor, Var};

use crate::module::Module;

/// The worst parameter element whose gradient disagrees with finite differences, or a
/// parameter that got no gradient at all.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGradError {
    /// the parameter's name (`"0.weight"`)
    pub param: String,
    /// the element's multi-index (empty when no gradient arrived)
    pub index: Vec<usize>,
    /// from backward (NaN when no gradient arrived)
    pub analytic: f64,
    /// from central differences
    pub numeric: f64,
}

impl fmt::Display for ParamGradError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.analytic.is_nan() && self.index.is_empty() {
            return write!(f, "gradcheck: parameter `{}` received no gradient", self.param);
        }
        write!(f, "gradcheck: d loss / d {}{:?}: analytic {:.9e} vs numeric {:.9e}", self.param, self.index, self.analytic, self.numeric)
    }
}

impl std::error::Error for ParamGradError {}

/// Checks d L / dθ for every trainable parameter θ of `model` at input `x`, where
/// L = Σ forward(x) ⊙ r for a fixed pseudo-random r (so every output element matters), against
/// central differences with PyTorch's default tolerances. `Ok` or the worst element.
///
/// ```
/// use wengert_nn::prelude::*;
/// let mut layer = Linear::<f64>::new(3, 2);
/// wengert_nn::gradcheck::check_params_at(&mut layer, &Tensor::ones([4, 3])).unwrap();
/// ```
pub fn check_params_at<M: Module<f64>>(model: &mut M, x: &Tensor<f64>) -> Result<(), ParamGradError> {
    check_params(model, |m, tape| m.forward(tape.constant(x.clone())))
}

/// Checks the parameter gradients of any function `f(model, tape)` of the model (an RNN's
/// outputs and final state, a loss...), weighted by a fixed pseudo-random r as in
/// [`check_params_at`].
///
/// ```
/// use wengert_nn::prelude::*;
/// use wengert_nn::gradcheck::check_params;
/// let mut layer = Linear::<f64>::new(3, 2);
/// let x = Tensor::new(vec![0.5, -1.0, 2.0, 1.5, 0.0, -0.5], [2, 3]);
/// check_params(&mut layer, |m, tape| m.forward(tape.constant(x.clone())).tanh().square()).unwrap();
/// // a function that reads the weight as a constant cuts it from the graph: no gradient arrives
/// let err = check_params(&mut layer, |m, tape| tape.constant(m.weight.value().clone()).tanh()).unwrap_err();
/// assert_eq!((err.param.as_str(), err.index.len()), ("weight", 0));
/// assert!(err.analytic.is_nan());
/// assert_eq!(err.to_string(), "gradcheck: parameter `weight` received no gradient");
/// ```
pub fn check_params<M, F>(model: &mut M, f: F) -> Result<(), ParamGradError>
where
    M: Module<f64>,
    F: for<'t> Fn(&M, &'t Tape<f64>) -> Var<'t, f64>,
{
    check_params_with(model, f, GradcheckOptions::default())
}

/// [`check_params`] with explicit step and tolerances.
///
/// ```
/// use wengert_nn::prelude::*;
/// use wengert_nn::gradcheck::check_params_with;
/// use wengert_core::GradcheckOptions;
/// let mut emb = Embedding::<f64>::new(5, 3);
/// let ids = Tensor::new(vec![0usize, 3, 3], [3]);
/// let opts = GradcheckOptions { eps: 1e-5, atol: 1e-7, rtol: 1e-5 };
/// check_params_with(&mut emb, |m, tape| m.lookup(tape, &ids).exp(), opts).unwrap();
/// ```
pub fn check_params_with<M, F>(model: &mut M, f: F, opts: GradcheckOptions) -> Result<(), ParamGradError>
where
    M: Module<f64>,
    F: for<'t> Fn(&M, &'t Tape<f64>) -> Var<'t, f64>,
{
    let weights = |shape: &wengert_core::Shape| {
        Tensor::from_fn(shape.clone(), |i| ((i.iter().fold(7usize, |a, &k| a * 31 + k) * 37 % 11) as f64) / 5.0 - 1.0)
    };
    let loss = |m: &M| {
        let tape = Tape::new();
        let y = f(m, &tape);
        (y * tape.constant(weights(&y.shape()))).sum().item()
    };
    let grads: Vec<(String, Option<Tensor<f64>>)> = {
        let tape = Tape::new();
        let y = f(model, &tape);
        let g = (y * tape.constant(weights(&y.shape()))).sum().backward();
        let mut v = Vec::new();
        model.visit_params("", &mut |name, p| {
            if p.is_trainable() {
                v.push((name, g.param(p).cloned()));
            }
        });
        v
    };
    let mut worst: Option<(f64, ParamGradError)> = None;
    for (name, g) in grads {
        let Some(g) = g else {
            return Err(ParamGradError { param: name, index: vec![], analytic: f64::NAN, numeric: 0.0 });
        };
        for j in 0..g.numel() {
            let bump = |m: &mut M, d: f64| {
                for (n, p) in m.named_params_mut() {
                    if n == name {
                        p.value_mut().data_mut()[j] += d;
                    }
                }
            };
            bump(model, opts.eps);
            let plus = loss(model);
            bump(model, -2.0 * opts.eps);
            let minus = loss(model);
            bump(model, opts.eps);
            let numeric = (plus - minus) / (2.0 * opts.eps);
            let analytic = g.as_slice()[j];
            let excess = (analytic - numeric).abs() - (opts.atol + opts.rtol * numeric.abs());
            if excess > 0.0 && worst.as_ref().is_none_or(|(w, _)| excess > *w) {
                worst = Some((excess, ParamGradError { param: name.clone(), index: g.shape().unravel(j), analytic, numeric }));
            }
        }
    }
    match worst {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}
