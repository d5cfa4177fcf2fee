//! Adagrad (`torch.optim.Adagrad`).

use std::collections::HashMap;

use wengert_core::{Float, ParamId, Tensor};

use super::{check_grad_shape, check_lr, check_state_len, require, Optimizer, WeightDecay};

/// Hyper-parameters of [`Adagrad`]; `Default` is PyTorch's `Adagrad` defaults (with
/// `lr_decay=0`, which this optimizer does not offer).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate. Default 0.01 (PyTorch `lr`).
    pub lr: f64,
    /// Added to the denominator for numerical stability. Default 1e-10 (PyTorch `eps`).
    pub eps: f64,
    /// Starting value of the sum of squared gradients. Default 0
    /// (PyTorch `initial_accumulator_value`).
    pub initial_accumulator_value: f64,
    /// Weight decay. Default [`WeightDecay::None`]; [`WeightDecay::L2`] is PyTorch's
    /// `weight_decay`.
    pub weight_decay: WeightDecay,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig { lr: 0.01, eps: 1e-10, initial_accumulator_value: 0.0, weight_decay: WeightDecay::None }
    }
}

/// Adagrad (Duchi, Hazan & Singer, 2011), `torch.optim.Adagrad`.
///
/// With gradient `g` (plus `λ·p` under [`WeightDecay::L2`]; under
/// [`WeightDecay::Decoupled`]`(λ)` first `p ← p − lr·λ·p`) and `S` starting at
/// `initial_accumulator_value`:
///
/// ```text
/// S ← S + g²
/// p ← p − lr·g / (√S + ε)
/// ```
///
/// ```
/// use wengert_core::{Param, Tensor};
/// use wengert_nn::optim::{Adagrad, AdagradConfig, Optimizer};
///
/// let mut w = Param::new(Tensor::<f64>::from_slice(&[1.0]));
/// let mut opt = Adagrad::new(AdagradConfig { lr: 0.1, ..Default::default() });
/// let id = w.id();
/// opt.update(id, w.value_mut(), &Tensor::from_slice(&[2.0]));   // S = 4: p = 1 − 0.1·2/2
/// opt.update(id, w.value_mut(), &Tensor::from_slice(&[2.0]));   // S = 8: p −= 0.2/√8
/// assert!((w.value().item() - (0.9 - 0.2 / 8f64.sqrt())).abs() < 1e-9);
/// ```
#[derive(Clone, Debug)]
pub struct Adagrad<T: Float = f32> {
    cfg: AdagradConfig,
    sums: HashMap<ParamId, Vec<T>>,
}

impl<T: Float> Adagrad<T> {
    /// An Adagrad optimizer.
    ///
    /// # Panics
    /// On a negative learning rate, eps, initial accumulator value or weight decay (PyTorch
    /// raises `ValueError` for the same).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut model = Linear::<f64>::new(1, 1);
    /// model.weight.set(Tensor::new(vec![1.0], [1, 1])).unwrap();
    /// let mut opt = Adagrad::new(AdagradConfig { lr: 0.1, ..Default::default() });
    /// let tape = Tape::new();
    /// let grads = model.forward(tape.constant(Tensor::new(vec![2.0], [1, 1]))).sum().backward(); // ∂/∂w = 2
    /// opt.step(&mut model, &grads)?;
    /// assert!((model.weight.value().item() - 0.9).abs() < 1e-9); // S = g²: the first step is lr·g/|g|
    /// assert!(std::panic::catch_unwind(|| Adagrad::<f64>::new(AdagradConfig { eps: -1.0, ..Default::default() })).is_err());
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    #[track_caller]
    pub fn new(cfg: AdagradConfig) -> Self {
        check_lr("Adagrad", cfg.lr);
        require(cfg.eps >= 0.0, "Adagrad", format_args!("eps must be >= 0, got {}", cfg.eps));
        require(
            cfg.initial_accumulator_value >= 0.0,
            "Adagrad",
            format_args!("initial_accumulator_value must be >= 0, got {}", cfg.initial_accumulator_value),
        );
        cfg.weight_decay.validate("Adagrad");
        Adagrad { cfg, sums: HashMap::new() }
    }

    /// The hyper-parameters (with the current learning rate).
    ///
    /// ```
    /// use wengert_nn::optim::{Adagrad, AdagradConfig, Optimizer};
    /// let mut opt = Adagrad::<f32>::new(AdagradConfig::default());
    /// assert_eq!((opt.config().lr, opt.config().eps, opt.config().initial_accumulator_value), (0.01, 1e-10, 0.0)); // PyTorch's
    /// opt.set_lr(0.5);
    /// assert_eq!(opt.config().lr, 0.5);
    /// ```
    pub fn config(&self) -> &AdagradConfig {
        &self.cfg
    }
}

impl<T: Float> Optimizer<T> for Adagrad<T> {
    fn update(&mut self, id: ParamId, value: &mut Tensor<T>, grad: &Tensor<T>) {
        check_grad_shape("Adagrad", value, grad);
        let cfg = self.cfg;
        let n = value.numel();
        let sum = self.sums.entry(id).or_insert_with(|| vec![T::from_f64(cfg.initial_accumulator_value); n]);
        check_state_len("Adagrad", sum.len(), value);
        let (l2, shrink) = cfg.weight_decay.coefficients::<T>(cfg.lr);
        let (lr, eps) = (T::from_f64(cfg.lr), T::from_f64(cfg.eps));
        value.data_mut().iter_mut().zip(grad.as_slice()).zip(sum.iter_mut()).for_each(|((p, &g), s)| {
            let g = g + l2 * *p;
            *p *= shrink;
            *s += g * g;
            *p -= lr * (g / (s.sqrt() + eps));
        });
    }

    fn lr(&self) -> f64 {
        self.cfg.lr
    }

    #[track_caller]
    fn set_lr(&mut self, lr: f64) {
        check_lr("Adagrad", lr);
        self.cfg.lr = lr;
    }

    fn reset_state(&mut self) {
        self.sums.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, step_with, Tiny};
    use super::*;

    const EPS: f64 = 1e-10;

    /// Three steps on `w = [1]` with constant gradient 2 and lr 0.1; `w` after each step.
    fn run(cfg: AdagradConfig) -> Vec<f64> {
        let mut m = Tiny::new(&[1.0], &[0.0]);
        let mut opt = Adagrad::new(AdagradConfig { lr: 0.1, ..cfg });
        (0..3)
            .map(|_| {
                step_with(&mut opt, &mut m, &[2.0], Some(&[0.0]));
                m.w.value().item()
            })
            .collect()
    }

    #[test]
    fn defaults_are_pytorchs() {
        let c = AdagradConfig::default();
        assert_eq!((c.lr, c.eps, c.initial_accumulator_value, c.weight_decay), (0.01, 1e-10, 0.0, WeightDecay::None));
    }

    #[test]
    fn accumulates_squared_gradients() {
        // g = 2: S = 4, 8, 12;  pₖ = pₖ₋₁ − 0.1·2/(√S + ε)
        let p1 = 1.0 - 0.2 / (2.0 + EPS);
        let p2 = p1 - 0.2 / (8f64.sqrt() + EPS);
        let p3 = p2 - 0.2 / (12f64.sqrt() + EPS);
        assert_close(&run(AdagradConfig::default()), &[p1, p2, p3]);
    }

    #[test]
    fn initial_accumulator() {
        // S starts at 1: S = 5, 9, 13
        let p1 = 1.0 - 0.2 / (5f64.sqrt() + EPS);
        let p2 = p1 - 0.2 / (3.0 + EPS);
        let p3 = p2 - 0.2 / (13f64.sqrt() + EPS);
        assert_close(&run(AdagradConfig { initial_accumulator_value: 1.0, ..Default::default() }), &[p1, p2, p3]);
    }

    #[test]
    fn l2_weight_decay() {
        // λ = 0.5: 1: g' = 2 + 0.5 = 2.5, S = 6.25, p₁ = 1 − 0.1·2.5/(2.5 + ε)
        //          2: g' = 2 + 0.5·p₁, S = 6.25 + g'², p₂ = p₁ − 0.1·g'/(√S + ε)
        let p1 = 1.0 - 0.25 / (2.5 + EPS);
        let g2 = 2.0 + 0.5 * p1;
        let p2 = p1 - 0.1 * g2 / ((6.25 + g2 * g2).sqrt() + EPS);
        assert_close(&run(AdagradConfig { weight_decay: WeightDecay::L2(0.5), ..Default::default() })[..2], &[p1, p2]);
    }
}
