//! RMSprop (`torch.optim.RMSprop`).

use std::collections::HashMap;

use wengert_core::{Float, ParamId, Tensor};

use super::{check_grad_shape, check_lr, check_state_len, flush_subnormal, require, Optimizer, WeightDecay};

/// Hyper-parameters of [`RmsProp`]; `Default` is PyTorch's `RMSprop` defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate. Default 0.01 (PyTorch `lr`).
    pub lr: f64,
    /// Smoothing constant α of the running averages. Default 0.99 (PyTorch `alpha`).
    pub alpha: f64,
    /// Added to the denominator for numerical stability. Default 1e-8 (PyTorch `eps`).
    pub eps: f64,
    /// Momentum μ of the scaled step; 0 means none. Default 0 (PyTorch `momentum`).
    pub momentum: f64,
    /// Divide by an estimate of the gradient's variance (running mean of g² minus the square
    /// of the running mean of g) instead of its uncentred second moment. Default false
    /// (PyTorch `centered`).
    pub centered: bool,
    /// Weight decay. Default [`WeightDecay::None`]; [`WeightDecay::L2`] is PyTorch's
    /// `weight_decay`.
    pub weight_decay: WeightDecay,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig { lr: 0.01, alpha: 0.99, eps: 1e-8, momentum: 0.0, centered: false, weight_decay: WeightDecay::None }
    }
}

/// One parameter's RMSprop state.
#[derive(Clone, Debug)]
struct Averages<T> {
    /// Running mean of g².
    square: Vec<T>,
    /// Running mean of g (centered only; empty otherwise).
    grad: Vec<T>,
    /// Momentum buffer (momentum > 0 only; empty otherwise).
    momentum: Vec<T>,
}

/// RMSprop (Hinton's lecture 6e; centred form from Graves 2013), `torch.optim.RMSprop`.
///
/// With gradient `g` (plus `λ·p` under [`WeightDecay::L2`]; under
/// [`WeightDecay::Decoupled`]`(λ)` first `p ← p − lr·λ·p`), all averages starting at zero:
///
/// ```text
/// s ← α·s + (1 − α)·g²
/// centered:  ḡ ← α·ḡ + (1 − α)·g;   d = √(s − ḡ²) + ε
/// otherwise:                        d = √s + ε
/// momentum μ > 0:  b ← μ·b + g/d;   p ← p − lr·b
/// otherwise:                        p ← p − lr·g/d
/// ```
///
/// ```
/// use wengert_core::{Param, Tensor};
/// use wengert_nn::optim::{Optimizer, RmsProp, RmsPropConfig};
///
/// let mut w = Param::new(Tensor::<f64>::from_slice(&[1.0]));
/// let mut opt = RmsProp::new(RmsPropConfig { lr: 0.1, alpha: 0.5, ..Default::default() });
/// let id = w.id();
/// opt.update(id, w.value_mut(), &Tensor::from_slice(&[2.0]));
/// // s = 0.5·4 = 2, p = 1 − 0.1·2/√2
/// assert!((w.value().item() - (1.0 - 0.2 / 2f64.sqrt())).abs() < 1e-7);
/// ```
#[derive(Clone, Debug)]
pub struct RmsProp<T: Float = f32> {
    cfg: RmsPropConfig,
    state: HashMap<ParamId, Averages<T>>,
}

impl<T: Float> RmsProp<T> {
    /// An RMSprop optimizer.
    ///
    /// # Panics
    /// On a negative learning rate, alpha, eps, momentum or weight decay (PyTorch raises
    /// `ValueError` for the same).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut model = Linear::<f64>::new(1, 1);
    /// model.weight.set(Tensor::new(vec![1.0], [1, 1])).unwrap();
    /// let mut opt = RmsProp::new(RmsPropConfig::default()); // lr 0.01, α 0.99
    /// let tape = Tape::new();
    /// let grads = model.forward(tape.constant(Tensor::new(vec![2.0], [1, 1]))).sum().backward(); // ∂/∂w = 2
    /// opt.step(&mut model, &grads)?;
    /// // s = 0.01·g² = 0.04, so the step is lr·g/√s = 0.01·2/0.2
    /// assert!((model.weight.value().item() - 0.9).abs() < 1e-6);
    /// assert!(std::panic::catch_unwind(|| RmsProp::<f64>::new(RmsPropConfig { alpha: -0.5, ..Default::default() })).is_err());
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    #[track_caller]
    pub fn new(cfg: RmsPropConfig) -> Self {
        check_lr("RmsProp", cfg.lr);
        require(cfg.alpha >= 0.0, "RmsProp", format_args!("alpha must be >= 0, got {}", cfg.alpha));
        require(cfg.eps >= 0.0, "RmsProp", format_args!("eps must be >= 0, got {}", cfg.eps));
        require(cfg.momentum >= 0.0, "RmsProp", format_args!("momentum must be >= 0, got {}", cfg.momentum));
        cfg.weight_decay.validate("RmsProp");
        RmsProp { cfg, state: HashMap::new() }
    }

    /// The hyper-parameters (with the current learning rate).
    ///
    /// ```
    /// use wengert_nn::optim::{Optimizer, RmsProp, RmsPropConfig};
    /// let mut opt = RmsProp::<f32>::new(RmsPropConfig { centered: true, ..Default::default() });
    /// assert_eq!((opt.config().alpha, opt.config().eps, opt.config().centered), (0.99, 1e-8, true));
    /// opt.set_lr(0.001);
    /// assert_eq!(opt.config().lr, 0.001);
    /// ```
    pub fn config(&self) -> &RmsPropConfig {
        &self.cfg
    }
}

impl<T: Float> Optimizer<T> for RmsProp<T> {
    fn update(&mut self, id: ParamId, value: &mut Tensor<T>, grad: &Tensor<T>) {
        check_grad_shape("RmsProp", value, grad);
        let cfg = self.cfg;
        let with_momentum = cfg.momentum > 0.0;
        let n = value.numel();
        let zeros_if = |on: bool| if on { vec![T::ZERO; n] } else { Vec::new() };
        let st = self.state.entry(id).or_insert_with(|| Averages {
            square: vec![T::ZERO; n],
            grad: zeros_if(cfg.centered),
            momentum: zeros_if(with_momentum),
        });
        check_state_len("RmsProp", st.square.len(), value);

        let (l2, shrink) = cfg.weight_decay.coefficients::<T>(cfg.lr);
        let (lr, eps, mu) = (T::from_f64(cfg.lr), T::from_f64(cfg.eps), T::from_f64(cfg.momentum));
        let (alpha, one_alpha) = (T::from_f64(cfg.alpha), T::from_f64(1.0 - cfg.alpha));

        // Decays p and updates s; returns the gradient the rule uses.
        let square = |p: &mut T, g: T, s: &mut T| {
            let g = g + l2 * *p;
            *p *= shrink;
            *s = flush_subnormal(alpha * *s + one_alpha * g * g);
            g
        };
        let centered = |g: T, s: T, gbar: &mut T| {
            *gbar = flush_subnormal(alpha * *gbar + one_alpha * g);
            (s - *gbar * *gbar).sqrt() + eps
        };
        let with_buf = |p: &mut T, step: T, b: &mut T| {
            *b = flush_subnormal(mu * *b + step);
            *p -= lr * *b;
        };

        let it = value.data_mut().iter_mut().zip(grad.as_slice()).zip(st.square.iter_mut());
        match (cfg.centered, with_momentum) {
            (false, false) => it.for_each(|((p, &g), s)| {
                let g = square(p, g, s);
                *p -= lr * (g / (s.sqrt() + eps));
            }),
            (false, true) => it.zip(st.momentum.iter_mut()).for_each(|(((p, &g), s), b)| {
                let g = square(p, g, s);
                with_buf(p, g / (s.sqrt() + eps), b);
            }),
            (true, false) => it.zip(st.grad.iter_mut()).for_each(|(((p, &g), s), gbar)| {
                let g = square(p, g, s);
                *p -= lr * (g / centered(g, *s, gbar));
            }),
            (true, true) => {
                it.zip(st.grad.iter_mut().zip(st.momentum.iter_mut())).for_each(|(((p, &g), s), (gbar, b))| {
                    let g = square(p, g, s);
                    with_buf(p, g / centered(g, *s, gbar), b);
                })
            }
        }
    }

    fn lr(&self) -> f64 {
        self.cfg.lr
    }

    #[track_caller]
    fn set_lr(&mut self, lr: f64) {
        check_lr("RmsProp", lr);
        self.cfg.lr = lr;
    }

    fn reset_state(&mut self) {
        self.state.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, step_with, Tiny};
    use super::*;

    const EPS: f64 = 1e-8;

    /// Three steps on `w = [1]` with constant gradient 2, lr 0.1, α 0.5; `w` after each step.
    fn run(cfg: RmsPropConfig) -> Vec<f64> {
        let mut m = Tiny::new(&[1.0], &[0.0]);
        let mut opt = RmsProp::new(RmsPropConfig { lr: 0.1, alpha: 0.5, ..cfg });
        (0..3)
            .map(|_| {
                step_with(&mut opt, &mut m, &[2.0], Some(&[0.0]));
                m.w.value().item()
            })
            .collect()
    }

    #[test]
    fn defaults_are_pytorchs() {
        let c = RmsPropConfig::default();
        assert_eq!((c.lr, c.alpha, c.eps, c.momentum, c.centered, c.weight_decay), (0.01, 0.99, 1e-8, 0.0, false, WeightDecay::None));
    }

    #[test]
    fn plain() {
        // g = 2, g² = 4, α = 0.5:  s = 2, 3, 3.5
        // p₁ = 1 − 0.1·2/(√2 + ε),  p₂ = p₁ − 0.2/(√3 + ε),  p₃ = p₂ − 0.2/(√3.5 + ε)
        let p1 = 1.0 - 0.2 / (2f64.sqrt() + EPS);
        let p2 = p1 - 0.2 / (3f64.sqrt() + EPS);
        let p3 = p2 - 0.2 / (3.5f64.sqrt() + EPS);
        assert_close(&run(RmsPropConfig::default()), &[p1, p2, p3]);
    }

    #[test]
    fn centered() {
        // s = 2, 3, 3.5;  ḡ = 1, 1.5, 1.75;  s − ḡ² = 1, 0.75, 0.4375
        // p₁ = 1 − 0.2/(1 + ε),  p₂ = p₁ − 0.2/(√0.75 + ε),  p₃ = p₂ − 0.2/(√0.4375 + ε)
        let p1 = 1.0 - 0.2 / (1.0 + EPS);
        let p2 = p1 - 0.2 / (0.75f64.sqrt() + EPS);
        let p3 = p2 - 0.2 / (0.4375f64.sqrt() + EPS);
        assert_close(&run(RmsPropConfig { centered: true, ..Default::default() }), &[p1, p2, p3]);
    }

    #[test]
    fn momentum() {
        // μ = 0.9; b starts at 0.  b₁ = 2/(√2 + ε), b₂ = 0.9·b₁ + 2/(√3 + ε),
        // b₃ = 0.9·b₂ + 2/(√3.5 + ε);  pₖ = pₖ₋₁ − 0.1·bₖ
        let b1 = 2.0 / (2f64.sqrt() + EPS);
        let b2 = 0.9 * b1 + 2.0 / (3f64.sqrt() + EPS);
        let b3 = 0.9 * b2 + 2.0 / (3.5f64.sqrt() + EPS);
        let (p1, p2, p3) = (1.0 - 0.1 * b1, 1.0 - 0.1 * b1 - 0.1 * b2, 1.0 - 0.1 * (b1 + b2 + b3));
        assert_close(&run(RmsPropConfig { momentum: 0.9, ..Default::default() }), &[p1, p2, p3]);
    }

    #[test]
    fn centered_with_momentum() {
        // μ = 0.9, centred denominators √1, √0.75, √0.4375 (see `centered`).
        let b1 = 2.0 / (1.0 + EPS);
        let b2 = 0.9 * b1 + 2.0 / (0.75f64.sqrt() + EPS);
        let b3 = 0.9 * b2 + 2.0 / (0.4375f64.sqrt() + EPS);
        let (p1, p2, p3) = (1.0 - 0.1 * b1, 1.0 - 0.1 * b1 - 0.1 * b2, 1.0 - 0.1 * (b1 + b2 + b3));
        assert_close(&run(RmsPropConfig { momentum: 0.9, centered: true, ..Default::default() }), &[p1, p2, p3]);
    }

    #[test]
    fn l2_and_decoupled_weight_decay() {
        // λ = 0.5. L2: g' = 2 + 0.5·1 = 2.5, s = 0.5·6.25 = 3.125, p₁ = 1 − 0.1·2.5/(√3.125 + ε)
        // Decoupled: p ← 1·(1 − 0.05) = 0.95, then the plain step 0.2/(√2 + ε).
        let l2 = run(RmsPropConfig { weight_decay: WeightDecay::L2(0.5), ..Default::default() });
        assert_close(&l2[..1], &[1.0 - 0.25 / (3.125f64.sqrt() + EPS)]);
        let dec = run(RmsPropConfig { weight_decay: WeightDecay::Decoupled(0.5), ..Default::default() });
        assert_close(&dec[..1], &[0.95 - 0.2 / (2f64.sqrt() + EPS)]);
    }
}
