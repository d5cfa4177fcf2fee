//! Gradient checks against central finite differences, for our tests and for users'.
//!
//! [`gradcheck`] compares the whole analytic Jacobian (one backward per output element) with
//! the numeric one (two forward passes per input element), in f64, with PyTorch's default
//! tolerances; [`gradgradcheck`] does the same for the gradient itself, proving second-order
//! gradients. Both return the worst element on failure, and are easy to call in a proptest.

use std::fmt;

use rand::{Rng, SeedableRng};

use crate::shape::Shape;
use crate::tape::Tape;
use crate::tensor::Tensor;
use crate::var::Var;

/// Step and tolerances. Defaults follow `torch.autograd.gradcheck`: eps 1e-6, atol 1e-5,
/// rtol 1e-3; an element passes when `|analytic - numeric| <= atol + rtol * |numeric|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckOptions {
    /// Finite-difference step (default 1e-6).
    pub eps: f64,
    /// Absolute tolerance (default 1e-5).
    pub atol: f64,
    /// Relative tolerance (default 1e-3).
    pub rtol: f64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions { eps: 1e-6, atol: 1e-5, rtol: 1e-3 }
    }
}

/// Why a gradient check failed.
#[derive(Clone, Debug, PartialEq)]
pub enum GradcheckError {
    /// The worst Jacobian element out of tolerance.
    Mismatch {
        /// which input (position in the slice given)
        input: usize,
        /// element of that input
        index: Vec<usize>,
        /// element of the output
        output_index: Vec<usize>,
        /// d output / d input from backward
        analytic: f64,
        /// the same from central differences
        numeric: f64,
    },
    /// The function or its gradient gave NaN or infinity.
    NonFinite {
        /// what was not finite
        what: String,
    },
    /// The function's output shape changed between evaluations.
    ShapeChanged {
        /// first output shape
        first: Shape,
        /// later output shape
        later: Shape,
    },
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GradcheckError::Mismatch { input, index, output_index, analytic, numeric } => write!(
                f,
                "gradcheck: d output{output_index:?} / d input {input}{index:?}: analytic {analytic:.9e} vs numeric {numeric:.9e} (difference {:.3e})",
                (analytic - numeric).abs()
            ),
            GradcheckError::NonFinite { what } => write!(f, "gradcheck: {what} is not finite"),
            GradcheckError::ShapeChanged { first, later } => {
                write!(f, "gradcheck: output shape changed from {first} to {later} between evaluations")
            }
        }
    }
}

impl std::error::Error for GradcheckError {}

/// Evaluates `f` on a fresh tape and returns its output value.
fn eval<F>(f: &F, inputs: &[Tensor<f64>]) -> Tensor<f64>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.var(x.clone())).collect();
    f(&vars).value()
}

/// [`gradcheck_with`] with default options.
///
/// ```
/// use wengert_core::{gradcheck::gradcheck, Tensor};
/// let x = Tensor::new(vec![0.3, -1.2, 2.0, 0.7], [2, 2]);
/// let w = Tensor::new(vec![1.0, 0.5, -0.5, 2.0], [2, 2]);
/// gradcheck(|v| v[0].matmul(v[1]).tanh(), &[x, w]).unwrap();
/// ```
pub fn gradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    gradcheck_with(f, inputs, GradcheckOptions::default())
}

/// Checks every element of the Jacobian of `f` at `inputs` against central differences.
/// Inputs are f64 (convert f32 data with [`Tensor::to_dtype`]); `f` may return any shape.
///
/// ```
/// use wengert_core::gradcheck::{gradcheck_with, GradcheckError, GradcheckOptions};
/// use wengert_core::Tensor;
/// let x = Tensor::from_slice(&[1.0, 2.0]);
/// let opts = GradcheckOptions { eps: 1e-4, ..Default::default() };
/// gradcheck_with(|v| v[0].exp() * v[0], &[x.clone()], opts).unwrap();
/// // x·x with one factor cut from the graph: backward gives x, the true derivative is 2x
/// let cut = gradcheck_with(|v| v[0] * v[0].tape().constant(v[0].value()), &[x], opts);
/// let Err(GradcheckError::Mismatch { input: 0, index, analytic, numeric, .. }) = cut else { panic!("{cut:?}") };
/// assert_eq!((index, analytic), (vec![1], 2.0)); // the worst element
/// assert!((numeric - 4.0).abs() < 1e-6);
/// ```
pub fn gradcheck_with<F>(f: F, inputs: &[Tensor<f64>], opts: GradcheckOptions) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    // Analytic Jacobian: one backward per output element, on one tape.
    let tape = Tape::new();
    let vars: Vec<_> = inputs.iter().map(|x| tape.var(x.clone())).collect();
    let y = f(&vars);
    let y0 = y.value();
    if !y0.all_finite() {
        return Err(GradcheckError::NonFinite { what: "the output".into() });
    }
    let m = y0.numel();
    let mut analytic: Vec<Vec<Tensor<f64>>> = Vec::with_capacity(m);
    for j in 0..m {
        let mut seed = Tensor::zeros(y0.shape().clone());
        seed.data_mut()[j] = 1.0;
        let grads = tape.grad_with(y, &vars, seed);
        if let Some(i) = grads.iter().position(|g| !g.all_finite()) {
            return Err(GradcheckError::NonFinite { what: format!("the analytic gradient of input {i}") });
        }
        analytic.push(grads);
    }

    // Numeric Jacobian column by column, and the worst element against tolerance.
    let mut worst: Option<(f64, GradcheckError)> = None;
    let mut xs = inputs.to_vec();
    for i in 0..inputs.len() {
        for k in 0..inputs[i].numel() {
            let orig = inputs[i].as_slice()[k];
            xs[i].data_mut()[k] = orig + opts.eps;
            let plus = eval(&f, &xs);
            xs[i].data_mut()[k] = orig - opts.eps;
            let minus = eval(&f, &xs);
            xs[i].data_mut()[k] = orig;
            for out in [&plus, &minus] {
                if out.shape() != y0.shape() {
                    return Err(GradcheckError::ShapeChanged { first: y0.shape().clone(), later: out.shape().clone() });
                }
            }
            let columns = plus.as_slice().iter().zip(minus.as_slice()).zip(&analytic);
            for (j, ((&p, &q), row)) in columns.enumerate() {
                let numeric = (p - q) / (2.0 * opts.eps);
                let a = row[i].as_slice()[k];
                let excess = (a - numeric).abs() - (opts.atol + opts.rtol * numeric.abs());
                if excess > 0.0 && worst.as_ref().is_none_or(|(w, _)| excess > *w) {
                    worst = Some((
                        excess,
                        GradcheckError::Mismatch {
                            input: i,
                            index: inputs[i].shape().unravel(k),
                            output_index: y0.shape().unravel(j),
                            analytic: a,
                            numeric,
                        },
                    ));
                }
            }
        }
    }
    match worst {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// [`gradgradcheck_with`] with default options.
///
/// ```
/// use wengert_core::{gradcheck::gradgradcheck, Tensor};
/// let x = Tensor::from_slice(&[0.3, -1.2, 2.0]);
/// gradgradcheck(|v| (v[0].sin() * v[0]).sum(), &[x]).unwrap();
/// ```
pub fn gradgradcheck<F>(f: F, inputs: &[Tensor<f64>]) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    gradgradcheck_with(f, inputs, GradcheckOptions::default())
}

/// Checks second-order gradients: runs [`gradcheck_with`] on the map
/// `(inputs, v) -> vᵀ·J_f(inputs)` (the gradient of `f` seeded with a random `v` of the output's
/// shape, recorded with [`Tape::grad_graph`]), so both its dependence on the inputs (the
/// Hessian) and on `v` are compared with finite differences.
///
/// ```
/// use wengert_core::gradcheck::{gradgradcheck_with, GradcheckError, GradcheckOptions};
/// use wengert_core::Tensor;
/// let opts = GradcheckOptions { atol: 1e-6, ..Default::default() };
/// gradgradcheck_with(|v| (v[0].tanh() * v[0]).sum(), &[Tensor::from_slice(&[0.5, -1.0])], opts).unwrap();
/// // √x at 0: the gradient 1/(2√x) is infinite, reported rather than compared
/// let at_zero = gradgradcheck_with(|v| v[0].sqrt().sum(), &[Tensor::from_slice(&[0.0, 1.0])], opts);
/// assert!(matches!(at_zero, Err(GradcheckError::NonFinite { .. })));
/// ```
pub fn gradgradcheck_with<F>(f: F, inputs: &[Tensor<f64>], opts: GradcheckOptions) -> Result<(), GradcheckError>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let out_shape = eval(&f, inputs).shape().clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e37_79b9);
    let v = Tensor::from_fn(out_shape, |_| rng.gen_range(-1.0..1.0));
    let n = inputs.len();
    let mut all = inputs.to_vec();
    all.push(v);
    gradcheck_with(
        |xs| {
            let (xs, v) = xs.split_at(n);
            let grads = xs[0].tape().grad_graph(f(xs), xs, Some(v[0]));
            let flat: Vec<_> = grads.iter().map(|g| g.flatten()).collect();
            Var::concat(&flat, 0)
        },
        &all,
        opts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_a_wrong_rule_and_reports_worst_element() {
        use crate::function::{Context, Function, InputGrads};
        /// x² with a deliberately wrong derivative (x instead of 2x).
        struct BadSquare;
        impl Function<f64> for BadSquare {
            fn name(&self) -> &'static str {
                "bad_square"
            }
            fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> {
                x[0].square()
            }
            fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> {
                [Some(g * ctx.input(0))].into_iter().collect()
            }
        }
        let x = Tensor::from_slice(&[1.0, 3.0]);
        let err = gradcheck(|v| Var::apply(BadSquare, &[v[0]]), &[x]).unwrap_err();
        match err {
            GradcheckError::Mismatch { input, index, output_index, analytic, numeric } => {
                assert_eq!((input, index, output_index), (0, vec![1], vec![1]));
                assert_eq!(analytic, 3.0);
                assert!((numeric - 6.0).abs() < 1e-6);
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn hessian_and_gradgrad_of_known_functions() {
        // f(x, y) = x²y + y³: H = [[2y, 2x], [2x, 6y]]
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::scalar(1.5));
        let y = tape.var(Tensor::scalar(-0.5));
        let f = x * x * y + y * y * y;
        let g = tape.grad_graph(f, &[x, y], None);
        let hx = tape.grad(g[0], &[x, y]);
        let hy = tape.grad(g[1], &[x, y]);
        assert_eq!([hx[0].item(), hx[1].item(), hy[0].item(), hy[1].item()], [-1.0, 3.0, 3.0, -3.0]);
        gradgradcheck(|v| (v[0] * v[0] * v[1] + v[1].powf(3.0)).sum(), &[Tensor::from_slice(&[0.4, -1.1]), Tensor::from_slice(&[2.0, 0.3])]).unwrap();
    }
}
