//! Gradient clipping (`torch.nn.utils.clip_grad_norm_`, `clip_grad_value_`), applied to
//! [`Gradients`] between backward and [`Optimizer::step`](super::Optimizer::step).
//!
//! Both act on the gradients of `model`'s trainable parameters only; parameters without a
//! gradient are left out (as PyTorch skips `grad is None`). Writing to a gradient never
//! changes a value saved on the tape (tensors copy on write).

use wengert_core::{Float, Gradients, Param};

use crate::module::Module;

/// The model's trainable parameters.
fn trainable<T: Float, M: Module<T> + ?Sized>(model: &M) -> Vec<&Param<T>> {
    let mut out = Vec::new();
    model.visit_params("", &mut |_, p| {
        if p.is_trainable() {
            out.push(p);
        }
    });
    out
}

/// Scales the gradients of `model`'s trainable parameters so that their global L2 norm is at
/// most `max_norm`, and returns the norm before clipping (`torch.nn.utils.clip_grad_norm_`
/// with `norm_type=2`).
///
/// With `‖g‖ = √(Σ over all parameters and elements of g²)` and `c = max_norm / (‖g‖ + 10⁻⁶)`,
/// every gradient becomes `g ← c·g` if `c < 1` and is left alone otherwise. The norm is
/// accumulated in `f64`. A NaN or infinite norm is returned as is and the gradients are not
/// scaled, so the caller can skip the step.
///
/// ```
/// use wengert_core::{Param, Tape, Tensor, Var};
/// use wengert_nn::{optim::clip_grad_norm, Module};
///
/// struct W(Param<f64>);
/// impl Module<f64> for W {
///     fn forward<'t>(&self, x: Var<'t, f64>) -> Var<'t, f64> { x * x.tape().param(&self.0) }
///     fn visit_params<'a>(&'a self, p: &str, f: &mut dyn FnMut(String, &'a Param<f64>)) { f(format!("{p}w"), &self.0) }
///     fn visit_params_mut<'a>(&'a mut self, p: &str, f: &mut dyn FnMut(String, &'a mut Param<f64>)) { f(format!("{p}w"), &mut self.0) }
/// }
///
/// let model = W(Param::new(Tensor::from_slice(&[0.0, 0.0])));
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::from_slice(&[3.0, 4.0]));
/// let mut grads = model.forward(x).sum().backward();        // g = [3, 4], ‖g‖ = 5
/// assert_eq!(clip_grad_norm(&model, &mut grads, 1.0), 5.0);
/// let g = grads.param(&model.0).unwrap().to_vec();          // ≈ [0.6, 0.8]
/// assert!((g[0] - 0.6).abs() < 1e-6 && (g[1] - 0.8).abs() < 1e-6);
/// ```
///
/// # Panics
/// If `max_norm` is negative or NaN (a NaN bound had silently skipped clipping).
#[track_caller]
pub fn clip_grad_norm<T: Float, M: Module<T> + ?Sized>(model: &M, grads: &mut Gradients<T>, max_norm: f64) -> f64 {
    if max_norm.is_nan() || max_norm < 0.0 {
        panic!("wengert: clip_grad_norm: max_norm must be >= 0, got {max_norm}");
    }
    let params = trainable(model);
    let sum_sq: f64 = params
        .iter()
        .filter_map(|p| grads.param(p))
        .flat_map(|g| g.as_slice())
        .map(|&x| {
            let x = x.to_f64();
            x * x
        })
        .sum();
    let norm = sum_sq.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        let c = T::from_f64(coef);
        for p in params {
            if let Some(g) = grads.param_mut(p) {
                g.data_mut().iter_mut().for_each(|x| *x *= c);
            }
        }
    }
    norm
}

/// Clamps every gradient element of `model`'s trainable parameters to `[−clip, clip]`
/// (`torch.nn.utils.clip_grad_value_`): `g ← min(max(g, −clip), clip)`.
///
/// ```
/// use wengert_core::{Param, Tape, Tensor, Var};
/// use wengert_nn::{optim::clip_grad_value, Module};
///
/// struct W(Param<f64>);
/// impl Module<f64> for W {
///     fn forward<'t>(&self, x: Var<'t, f64>) -> Var<'t, f64> { x * x.tape().param(&self.0) }
///     fn visit_params<'a>(&'a self, p: &str, f: &mut dyn FnMut(String, &'a Param<f64>)) { f(format!("{p}w"), &self.0) }
///     fn visit_params_mut<'a>(&'a mut self, p: &str, f: &mut dyn FnMut(String, &'a mut Param<f64>)) { f(format!("{p}w"), &mut self.0) }
/// }
///
/// let model = W(Param::new(Tensor::from_slice(&[0.0, 0.0, 0.0])));
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::from_slice(&[3.0, -0.5, -4.0]));
/// let mut grads = model.forward(x).sum().backward();
/// clip_grad_value(&model, &mut grads, 1.0);
/// assert_eq!(grads.param(&model.0).unwrap().to_vec(), vec![1.0, -0.5, -1.0]);
/// ```
///
/// # Panics
/// If `clip` is negative or NaN.
#[track_caller]
pub fn clip_grad_value<T: Float, M: Module<T> + ?Sized>(model: &M, grads: &mut Gradients<T>, clip: f64) {
    if clip.is_nan() || clip < 0.0 {
        panic!("wengert: clip_grad_value: clip must be >= 0, got {clip}");
    }
    let (hi, lo) = (T::from_f64(clip), T::from_f64(-clip));
    for p in trainable(model) {
        if let Some(g) = grads.param_mut(p) {
            g.data_mut().iter_mut().for_each(|x| *x = x.max(lo).min(hi));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, grads, Tiny};
    use super::*;

    #[test]
    fn norm_is_global_and_scales_only_when_too_large() {
        // g_w = [3, 0], g_b = [4]: ‖g‖ = √(9 + 16) = 5
        let m = Tiny::new(&[1.0, 1.0], &[1.0]);
        let mut g = grads(&m, &[3.0, 0.0], Some(&[4.0]));
        assert_eq!(clip_grad_norm(&m, &mut g, 10.0), 5.0);
        assert_eq!(g.param(&m.w).unwrap().to_vec(), vec![3.0, 0.0]);
        // max_norm 1: c = 1/(5 + 1e-6), so g_w = [3c, 0], g_b = [4c]
        let c = 1.0 / (5.0 + 1e-6);
        assert_eq!(clip_grad_norm(&m, &mut g, 1.0), 5.0);
        assert_close(&g.param(&m.w).unwrap().to_vec(), &[3.0 * c, 0.0]);
        assert_close(&g.param(&m.b).unwrap().to_vec(), &[4.0 * c]);
        // the clipped gradients have norm just under 1
        assert!((clip_grad_norm(&m, &mut g, 10.0) - 5.0 * c).abs() < 1e-12);
    }

    #[test]
    fn frozen_and_gradient_free_params_are_left_out() {
        let mut m = Tiny::new(&[1.0], &[1.0]);
        m.b.set_trainable(false);
        let mut g = grads(&m, &[3.0], Some(&[4.0])); // b frozen: bound as a constant
        assert_eq!(clip_grad_norm(&m, &mut g, 1.0), 3.0);
        m.b.set_trainable(true);
        let mut g = grads(&m, &[3.0], None); // b not in the loss: no gradient
        assert_eq!(clip_grad_norm(&m, &mut g, 100.0), 3.0);
    }

    #[test]
    fn value_clamps_each_element() {
        let m = Tiny::new(&[1.0, 1.0], &[1.0]);
        let mut g = grads(&m, &[3.0, -0.5], Some(&[-4.0]));
        clip_grad_value(&m, &mut g, 1.0);
        assert_eq!(g.param(&m.w).unwrap().to_vec(), vec![1.0, -0.5]);
        assert_eq!(g.param(&m.b).unwrap().to_vec(), vec![-1.0]);
    }

    #[test]
    fn clipped_gradients_feed_the_optimizer() {
        use super::super::{Optimizer, Sgd, SgdConfig};
        let mut m = Tiny::new(&[0.0, 0.0], &[0.0]);
        let mut g = grads(&m, &[30.0, 40.0], Some(&[0.0]));
        clip_grad_norm(&m, &mut g, 5.0);
        Sgd::new(SgdConfig { lr: 1.0, ..Default::default() }).step(&mut m, &g).unwrap();
        let c = 5.0 / (50.0 + 1e-6);
        assert_close(&m.w.value().to_vec(), &[-30.0 * c, -40.0 * c]);
    }
}
