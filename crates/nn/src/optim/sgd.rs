//! Stochastic gradient descent with momentum and weight decay (`torch.optim.SGD`).

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use wengert_core::{Float, ParamId, Tensor};

use super::{check_grad_shape, check_lr, check_state_len, flush_subnormal, require, Optimizer, WeightDecay};

/// The momentum of [`Sgd`], with coefficient μ and dampening τ ([`SgdConfig::dampening`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Momentum {
    /// Plain SGD: `p ← p − lr·g`. PyTorch `momentum=0`.
    #[default]
    None,
    /// Heavy-ball momentum: `b ← μ·b + (1 − τ)·g` (`b ← g` on the first step),
    /// `p ← p − lr·b`. PyTorch `momentum=μ`. `Classic(0.0)` is plain SGD.
    Classic(f64),
    /// Nesterov momentum: `b` as for `Classic`, then `p ← p − lr·(g + μ·b)`.
    /// PyTorch `momentum=μ, nesterov=True`; like PyTorch, it needs μ > 0 and τ = 0.
    Nesterov(f64),
}

/// Hyper-parameters of [`Sgd`]; `Default` matches PyTorch's `SGD` defaults except the learning
/// rate (see [`SgdConfig::lr`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate. Default 0.01 (PyTorch `lr`, which had no default before PyTorch 2.2 and
    /// defaults to 1e-3 since; 0.01 is the value most SGD examples use).
    pub lr: f64,
    /// Momentum. Default [`Momentum::None`] (PyTorch `momentum=0, nesterov=False`).
    pub momentum: Momentum,
    /// Weight decay. Default [`WeightDecay::None`]; [`WeightDecay::L2`] is PyTorch's
    /// `weight_decay`, [`WeightDecay::Decoupled`] shrinks `p` by `lr·λ·p` outside the momentum.
    pub weight_decay: WeightDecay,
    /// Dampening τ of the momentum buffer's gradient term. Default 0 (PyTorch `dampening`).
    pub dampening: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 0.01, momentum: Momentum::None, weight_decay: WeightDecay::None, dampening: 0.0 }
    }
}

/// Stochastic gradient descent, `torch.optim.SGD`.
///
/// With gradient `g` (plus `λ·p` under [`WeightDecay::L2`]) and momentum buffer `b`:
///
/// * no momentum: `p ← p − lr·g`
/// * classic: `b ← μ·b + (1 − τ)·g` (first step `b ← g`); `p ← p − lr·b`
/// * Nesterov: `b` as classic; `p ← p − lr·(g + μ·b)`
///
/// Under [`WeightDecay::Decoupled`]`(λ)` each step first does `p ← p − lr·λ·p`.
///
/// ```
/// use wengert_core::{Param, Tape, Tensor};
/// use wengert_nn::optim::{Momentum, Optimizer, Sgd, SgdConfig};
///
/// let mut w = Param::new(Tensor::<f64>::from_slice(&[1.0]));
/// let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: Momentum::Classic(0.9), ..Default::default() });
/// for expected in [0.95, 0.855] {
///     let tape = Tape::new();
///     let grads = (tape.param(&w) * 0.5).sum().backward(); // g = 0.5
///     let id = w.id();
///     opt.update(id, w.value_mut(), grads.param_by_id(id).unwrap());
///     assert!((w.value().item() - expected).abs() < 1e-12); // b = 0.5, then 0.95
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T: Float = f32> {
    cfg: SgdConfig,
    momentum_buffers: HashMap<ParamId, Vec<T>>,
}

impl<T: Float> Sgd<T> {
    /// An SGD optimizer.
    ///
    /// # Panics
    /// On a negative (or NaN) learning rate, momentum or weight decay, and on Nesterov momentum
    /// with μ = 0 or τ ≠ 0 (PyTorch raises `ValueError` for the same).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut model = Linear::<f64>::new(1, 1);
    /// model.weight.set(Tensor::new(vec![1.0], [1, 1])).unwrap();
    /// let mut opt = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() });
    /// let tape = Tape::new();
    /// let grads = model.forward(tape.constant(Tensor::new(vec![2.0], [1, 1]))).sum().backward(); // ∂/∂w = 2
    /// opt.step(&mut model, &grads)?;
    /// assert!((model.weight.value().item() - 0.8).abs() < 1e-12); // w − lr·g = 1 − 0.1·2
    /// let nesterov_without_momentum = SgdConfig { momentum: Momentum::Nesterov(0.0), ..Default::default() };
    /// assert!(std::panic::catch_unwind(|| Sgd::<f64>::new(nesterov_without_momentum)).is_err());
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    #[track_caller]
    pub fn new(cfg: SgdConfig) -> Self {
        check_lr("Sgd", cfg.lr);
        match cfg.momentum {
            Momentum::None => {}
            Momentum::Classic(mu) => {
                require(mu >= 0.0, "Sgd", format_args!("momentum must be >= 0, got {mu}"));
            }
            Momentum::Nesterov(mu) => {
                require(
                    mu > 0.0 && cfg.dampening == 0.0,
                    "Sgd",
                    format_args!(
                        "Nesterov momentum needs momentum > 0 and zero dampening, got momentum {mu}, \
                         dampening {}",
                        cfg.dampening
                    ),
                );
            }
        }
        cfg.weight_decay.validate("Sgd");
        Sgd { cfg, momentum_buffers: HashMap::new() }
    }

    /// The hyper-parameters (with the current learning rate).
    ///
    /// ```
    /// use wengert_nn::optim::{Momentum, Optimizer, Sgd, SgdConfig, WeightDecay};
    /// let mut opt = Sgd::<f32>::new(SgdConfig { lr: 0.1, momentum: Momentum::Classic(0.9), ..Default::default() });
    /// opt.set_lr(0.01); // a schedule changed it
    /// assert_eq!(opt.config().lr, 0.01);
    /// assert_eq!((opt.config().momentum, opt.config().weight_decay, opt.config().dampening), (Momentum::Classic(0.9), WeightDecay::None, 0.0));
    /// ```
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn update(&mut self, id: ParamId, value: &mut Tensor<T>, grad: &Tensor<T>) {
        check_grad_shape("Sgd", value, grad);
        let (l2, shrink) = self.cfg.weight_decay.coefficients::<T>(self.cfg.lr);
        let lr = T::from_f64(self.cfg.lr);
        let (mu, nesterov) = match self.cfg.momentum {
            Momentum::None => (0.0, false),
            Momentum::Classic(mu) => (mu, false),
            Momentum::Nesterov(mu) => (mu, true),
        };
        if mu == 0.0 {
            value.data_mut().iter_mut().zip(grad.as_slice()).for_each(|(p, &g)| {
                let g = g + l2 * *p;
                *p = *p * shrink - lr * g;
            });
            return;
        }
        let (mu, damp) = (T::from_f64(mu), T::from_f64(1.0 - self.cfg.dampening));
        // The step direction from the (decayed) gradient and the updated buffer.
        let direction = |g: T, b: T| if nesterov { g + mu * b } else { b };
        match self.momentum_buffers.entry(id) {
            Entry::Vacant(slot) => {
                // First step: the buffer starts as the gradient itself (no dampening).
                let buf = slot.insert(Vec::with_capacity(value.numel()));
                value.data_mut().iter_mut().zip(grad.as_slice()).for_each(|(p, &g)| {
                    let g = g + l2 * *p;
                    buf.push(g);
                    *p = *p * shrink - lr * direction(g, g);
                });
            }
            Entry::Occupied(slot) => {
                let buf = slot.into_mut();
                check_state_len("Sgd", buf.len(), value);
                value.data_mut().iter_mut().zip(grad.as_slice()).zip(buf.iter_mut()).for_each(|((p, &g), b)| {
                    let g = g + l2 * *p;
                    *b = flush_subnormal(mu * *b + damp * g);
                    *p = *p * shrink - lr * direction(g, *b);
                });
            }
        }
    }

    fn lr(&self) -> f64 {
        self.cfg.lr
    }

    #[track_caller]
    fn set_lr(&mut self, lr: f64) {
        check_lr("Sgd", lr);
        self.cfg.lr = lr;
    }

    fn reset_state(&mut self) {
        self.momentum_buffers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, grads, step_with, Tiny};
    use super::*;

    /// Runs `steps` optimizer steps on `Tiny { w = [1, -2], b = [0] }` with constant
    /// gradients `g_w = [0.5, -1]`, `g_b = [0]`, returning `w` after each step.
    fn run(cfg: SgdConfig, steps: usize) -> Vec<Vec<f64>> {
        let mut m = Tiny::new(&[1.0, -2.0], &[0.0]);
        let mut opt = Sgd::new(cfg);
        (0..steps)
            .map(|_| {
                let g = grads(&m, &[0.5, -1.0], Some(&[0.0]));
                opt.step(&mut m, &g).unwrap();
                m.w.value().to_vec()
            })
            .collect()
    }

    /// Every element of the problem is the first scaled by -2 (w and g both), and the rules
    /// are linear in (p, g) jointly, so checking element 0 by hand and element 1 = -2 × it
    /// covers both.
    fn check(got: &[Vec<f64>], expected_first: &[f64]) {
        assert_eq!(got.len(), expected_first.len());
        for (w, &e) in got.iter().zip(expected_first) {
            assert_close(w, &[e, -2.0 * e]);
        }
    }

    #[test]
    fn defaults_are_pytorchs() {
        let c = SgdConfig::default();
        assert_eq!((c.lr, c.momentum, c.weight_decay, c.dampening), (0.01, Momentum::None, WeightDecay::None, 0.0));
    }

    #[test]
    fn plain() {
        // lr 0.1, p = 1, g = 0.5: p ← p − 0.05 each step.
        check(&run(SgdConfig { lr: 0.1, ..Default::default() }, 3), &[0.95, 0.90, 0.85]);
    }

    #[test]
    fn classic_momentum() {
        // μ = 0.9, lr = 0.1, g = 0.5, p = 1
        // 1: b = 0.5                 p = 1 − 0.05 = 0.95
        // 2: b = 0.45 + 0.5 = 0.95   p = 0.95 − 0.095 = 0.855
        // 3: b = 0.855 + 0.5 = 1.355 p = 0.855 − 0.1355 = 0.7195
        let cfg = SgdConfig { lr: 0.1, momentum: Momentum::Classic(0.9), ..Default::default() };
        check(&run(cfg, 3), &[0.95, 0.855, 0.7195]);
    }

    #[test]
    fn dampening() {
        // μ = 0.9, τ = 0.5, lr = 0.1, g = 0.5, p = 1
        // 1: b = 0.5 (no dampening on the first step)  p = 0.95
        // 2: b = 0.45 + 0.25 = 0.7                     p = 0.95 − 0.07 = 0.88
        // 3: b = 0.63 + 0.25 = 0.88                    p = 0.88 − 0.088 = 0.792
        let cfg = SgdConfig { lr: 0.1, momentum: Momentum::Classic(0.9), dampening: 0.5, ..Default::default() };
        check(&run(cfg, 3), &[0.95, 0.88, 0.792]);
    }

    #[test]
    fn nesterov() {
        // μ = 0.9, lr = 0.1, g = 0.5, p = 1; d = g + μ·b
        // 1: b = 0.5    d = 0.5 + 0.45 = 0.95     p = 1 − 0.095 = 0.905
        // 2: b = 0.95   d = 0.5 + 0.855 = 1.355   p = 0.905 − 0.1355 = 0.7695
        // 3: b = 1.355  d = 0.5 + 1.2195 = 1.7195 p = 0.7695 − 0.17195 = 0.59755
        let cfg = SgdConfig { lr: 0.1, momentum: Momentum::Nesterov(0.9), ..Default::default() };
        check(&run(cfg, 3), &[0.905, 0.7695, 0.59755]);
    }

    #[test]
    fn l2_and_decoupled_agree_without_momentum() {
        // λ = 0.1, lr = 0.1, g = 0.5, p = 1
        // L2:        1: g' = 0.5 + 0.1 = 0.6, p = 1 − 0.06 = 0.94
        //            2: g' = 0.5 + 0.094 = 0.594, p = 0.94 − 0.0594 = 0.8806
        // decoupled: 1: p = 1·0.99 − 0.05 = 0.94;  2: p = 0.94·0.99 − 0.05 = 0.8806
        for wd in [WeightDecay::L2(0.1), WeightDecay::Decoupled(0.1)] {
            check(&run(SgdConfig { lr: 0.1, weight_decay: wd, ..Default::default() }, 2), &[0.94, 0.8806]);
        }
    }

    #[test]
    fn l2_goes_through_momentum_decoupled_does_not() {
        // μ = 0.9, λ = 0.1, lr = 0.1, g = 0.5, p = 1
        // L2:        1: g' = 0.6, b = 0.6, p = 1 − 0.06 = 0.94
        //            2: g' = 0.5 + 0.094 = 0.594, b = 0.54 + 0.594 = 1.134, p = 0.94 − 0.1134 = 0.8266
        // decoupled: 1: b = 0.5, p = 1·0.99 − 0.05 = 0.94
        //            2: b = 0.45 + 0.5 = 0.95, p = 0.94·0.99 − 0.095 = 0.8356
        let l2 = SgdConfig { lr: 0.1, momentum: Momentum::Classic(0.9), weight_decay: WeightDecay::L2(0.1), dampening: 0.0 };
        check(&run(l2, 2), &[0.94, 0.8266]);
        let dec = SgdConfig { weight_decay: WeightDecay::Decoupled(0.1), ..l2 };
        check(&run(dec, 2), &[0.94, 0.8356]);
    }

    #[test]
    fn classic_zero_is_plain() {
        let cfg = SgdConfig { lr: 0.1, momentum: Momentum::Classic(0.0), dampening: 0.5, ..Default::default() };
        check(&run(cfg, 2), &[0.95, 0.90]);
    }

    #[test]
    fn set_lr_applies_from_the_next_step_and_reset_clears_momentum() {
        let mut m = Tiny::new(&[1.0, -2.0], &[0.0]);
        let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: Momentum::Classic(0.9), ..Default::default() });
        step_with(&mut opt, &mut m, &[0.5, -1.0], Some(&[0.0])); // b = 0.5, p = 0.95
        opt.set_lr(0.2);
        assert_eq!(opt.lr(), 0.2);
        step_with(&mut opt, &mut m, &[0.5, -1.0], Some(&[0.0])); // b = 0.95, p = 0.95 − 0.19 = 0.76
        assert_close(&m.w.value().to_vec(), &[0.76, -1.52]);
        opt.reset_state();
        step_with(&mut opt, &mut m, &[0.5, -1.0], Some(&[0.0])); // b = 0.5 again, p = 0.76 − 0.1 = 0.66
        assert_close(&m.w.value().to_vec(), &[0.66, -1.32]);
    }

    #[test]
    #[should_panic(expected = "Nesterov momentum needs momentum > 0 and zero dampening")]
    fn nesterov_with_dampening_panics() {
        let _ = Sgd::<f64>::new(SgdConfig { momentum: Momentum::Nesterov(0.9), dampening: 0.1, ..Default::default() });
    }
}
