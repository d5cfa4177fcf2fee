//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`).

use std::collections::HashMap;

use wengert_core::{Float, ParamId, Tensor};

use super::{check_grad_shape, check_lr, check_state_len, flush_subnormal, require, Optimizer, WeightDecay};

/// Hyper-parameters of [`Adam`]; `Default` is PyTorch's `Adam` defaults.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate. Default 1e-3 (PyTorch `lr`).
    pub lr: f64,
    /// Decay rates (β₁, β₂) of the first and second moment estimates, each in [0, 1).
    /// Default (0.9, 0.999) (PyTorch `betas`).
    pub betas: (f64, f64),
    /// Added to the denominator for numerical stability. Default 1e-8 (PyTorch `eps`).
    pub eps: f64,
    /// Weight decay. Default [`WeightDecay::None`]; [`WeightDecay::L2`] is `Adam`'s
    /// `weight_decay`, [`WeightDecay::Decoupled`] makes this AdamW (PyTorch `AdamW`'s
    /// `weight_decay`, whose default there is 0.01; see [`adamw`]).
    pub weight_decay: WeightDecay,
    /// Use the running maximum of the second moment in the denominator (AMSGrad, Reddi et al.
    /// 2018). Default false (PyTorch `amsgrad`).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, betas: (0.9, 0.999), eps: 1e-8, weight_decay: WeightDecay::None, amsgrad: false }
    }
}

/// One parameter's Adam state.
#[derive(Clone, Debug)]
struct Moments<T> {
    /// Updates this parameter has received (its own count: a parameter unfrozen late starts
    /// with full bias correction, as in PyTorch).
    t: u64,
    /// First moment m.
    m: Vec<T>,
    /// Second moment v.
    v: Vec<T>,
    /// Running max of v (AMSGrad only; empty otherwise).
    v_max: Vec<T>,
}

/// Adam (Kingma & Ba, 2015), `torch.optim.Adam`; with [`WeightDecay::Decoupled`] it is AdamW
/// (`torch.optim.AdamW`).
///
/// At a parameter's `t`-th update, with gradient `g` (plus `λ·p` under [`WeightDecay::L2`];
/// under [`WeightDecay::Decoupled`]`(λ)` first `p ← p − lr·λ·p`):
///
/// ```text
/// m ← β₁·m + (1 − β₁)·g          m̂ = m / (1 − β₁ᵗ)
/// v ← β₂·v + (1 − β₂)·g²         v̂ = v / (1 − β₂ᵗ)
/// p ← p − lr·m̂ / (√v̂ + ε)
/// ```
///
/// With `amsgrad`, `v_max ← max(v_max, v)` and `v̂ = v_max / (1 − β₂ᵗ)`. `m` and `v` start at
/// zero; `t` counts each parameter's own updates.
///
/// ```
/// use wengert_core::{Param, Tape, Tensor};
/// use wengert_nn::optim::{Adam, AdamConfig, Optimizer};
///
/// let mut w = Param::new(Tensor::<f64>::from_slice(&[1.0]));
/// let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() });
/// let tape = Tape::new();
/// let grads = (tape.param(&w) * 0.5).sum().backward(); // g = 0.5
/// let id = w.id();
/// opt.update(id, w.value_mut(), grads.param_by_id(id).unwrap());
/// // bias correction: m̂ = 0.05 / 0.1 = 0.5, v̂ = 0.00025 / 0.001 = 0.25, so the step is lr·0.5/0.5
/// assert!((w.value().item() - 0.9).abs() < 1e-7);
/// ```
#[derive(Clone, Debug)]
pub struct Adam<T: Float = f32> {
    cfg: AdamConfig,
    steps: u64,
    state: HashMap<ParamId, Moments<T>>,
}

/// AdamW: [`Adam`] with [`WeightDecay::Decoupled`]`(weight_decay)` and the other
/// hyper-parameters at their defaults, like `torch.optim.AdamW(params, lr, weight_decay=...)`
/// (PyTorch's default weight decay for AdamW is 0.01).
///
/// Each update: `p ← p − lr·λ·p`, then the Adam step.
///
/// ```
/// use wengert_nn::optim::{adamw, Optimizer, WeightDecay};
/// let opt = adamw::<f32>(1e-3, 0.01);
/// assert_eq!(opt.config().weight_decay, WeightDecay::Decoupled(0.01));
/// assert_eq!(opt.lr(), 1e-3);
/// ```
///
/// # Panics
/// As [`Adam::new`].
#[track_caller]
pub fn adamw<T: Float>(lr: f64, weight_decay: f64) -> Adam<T> {
    Adam::new(AdamConfig { lr, weight_decay: WeightDecay::Decoupled(weight_decay), ..Default::default() })
}

impl<T: Float> Adam<T> {
    /// An Adam (or, with decoupled weight decay, AdamW) optimizer.
    ///
    /// # Panics
    /// On a negative learning rate, eps or weight decay, or a β outside [0, 1) (PyTorch raises
    /// `ValueError` for the same).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut model = Linear::<f64>::new(1, 1);
    /// model.weight.set(Tensor::new(vec![1.0], [1, 1])).unwrap();
    /// let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() });
    /// let tape = Tape::new();
    /// let grads = model.forward(tape.constant(Tensor::new(vec![2.0], [1, 1]))).sum().backward(); // ∂/∂w = 2
    /// opt.step(&mut model, &grads)?;
    /// // bias-corrected m̂ = g, v̂ = g², so the first step is lr·g/|g|
    /// assert!((model.weight.value().item() - 0.9).abs() < 1e-7);
    /// assert!(std::panic::catch_unwind(|| Adam::<f64>::new(AdamConfig { betas: (1.0, 0.999), ..Default::default() })).is_err());
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    #[track_caller]
    pub fn new(cfg: AdamConfig) -> Self {
        let (b1, b2) = cfg.betas;
        check_lr("Adam", cfg.lr);
        require(cfg.eps >= 0.0, "Adam", format_args!("eps must be >= 0, got {}", cfg.eps));
        require((0.0..1.0).contains(&b1), "Adam", format_args!("beta1 must be in [0, 1), got {b1}"));
        require((0.0..1.0).contains(&b2), "Adam", format_args!("beta2 must be in [0, 1), got {b2}"));
        cfg.weight_decay.validate("Adam");
        Adam { cfg, steps: 0, state: HashMap::new() }
    }

    /// The hyper-parameters (with the current learning rate).
    ///
    /// ```
    /// use wengert_nn::optim::{Adam, AdamConfig, Optimizer, WeightDecay};
    /// let mut opt = Adam::<f32>::new(AdamConfig::default());
    /// let cfg = opt.config();
    /// assert_eq!((cfg.lr, cfg.betas, cfg.eps, cfg.weight_decay, cfg.amsgrad), (1e-3, (0.9, 0.999), 1e-8, WeightDecay::None, false)); // PyTorch's
    /// opt.set_lr(3e-4);
    /// assert_eq!(opt.config().lr, 3e-4);
    /// ```
    pub fn config(&self) -> &AdamConfig {
        &self.cfg
    }

    /// Number of completed [`Optimizer::step`] calls (since creation or [`Optimizer::reset_state`]).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut model = Linear::<f64>::new(2, 1);
    /// let mut opt = Adam::new(AdamConfig::default());
    /// for _ in 0..3 {
    ///     let tape = Tape::new();
    ///     let grads = model.forward(tape.constant(Tensor::ones([4, 2]))).square().mean().backward();
    ///     opt.step(&mut model, &grads)?;
    /// }
    /// assert_eq!(opt.steps(), 3);
    /// opt.reset_state();
    /// assert_eq!(opt.steps(), 0);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn update(&mut self, id: ParamId, value: &mut Tensor<T>, grad: &Tensor<T>) {
        check_grad_shape("Adam", value, grad);
        let cfg = self.cfg;
        let n = value.numel();
        let st = self.state.entry(id).or_insert_with(|| Moments {
            t: 0,
            m: vec![T::ZERO; n],
            v: vec![T::ZERO; n],
            v_max: if cfg.amsgrad { vec![T::ZERO; n] } else { Vec::new() },
        });
        check_state_len("Adam", st.m.len(), value);
        st.t += 1;

        let (b1, b2) = cfg.betas;
        let t = st.t as f64;
        let (l2, shrink) = cfg.weight_decay.coefficients::<T>(cfg.lr);
        // lr·m̂/(√v̂ + ε) = (lr / (1 − β₁ᵗ))·m / (√v / √(1 − β₂ᵗ) + ε), as PyTorch computes it.
        let step_size = T::from_f64(cfg.lr / (1.0 - b1.powf(t)));
        // multiplying by 1/√(1 − β₂ᵗ) spares a vector division per element (they are slow)
        let inv_bc2_sqrt = T::from_f64(1.0 / (1.0 - b2.powf(t)).sqrt());
        let (eps, one_b1, one_b2) = (T::from_f64(cfg.eps), T::from_f64(1.0 - b1), T::from_f64(1.0 - b2));
        let (b1, b2) = (T::from_f64(b1), T::from_f64(b2));

        // Decays p (decoupled), updates the moments from the (L2-decayed) gradient and returns
        // the new moments. Every element is read before any is written, so no load waits on
        // a store to another array.
        // Decaying moments are flushed to 0 below the normal range (see `flush_subnormal`).
        let moments = |p: T, g: T, m: T, v: T| {
            let g = g + l2 * p;
            (p * shrink, flush_subnormal(b1 * m + one_b1 * g), flush_subnormal(b2 * v + one_b2 * g * g))
        };
        let descend = |p: T, m: T, v: T| p - step_size * (m / (v.sqrt() * inv_bc2_sqrt + eps));

        let it = value.data_mut().iter_mut().zip(grad.as_slice()).zip(st.m.iter_mut().zip(st.v.iter_mut()));
        if cfg.amsgrad {
            it.zip(st.v_max.iter_mut()).for_each(|(((p, &g), (m, v)), v_max)| {
                let (p1, m1, v1) = moments(*p, g, *m, *v);
                let vm = v_max.max(v1);
                (*m, *v, *v_max) = (m1, v1, vm);
                *p = descend(p1, m1, vm);
            });
        } else {
            it.for_each(|((p, &g), (m, v))| {
                let (p1, m1, v1) = moments(*p, g, *m, *v);
                (*m, *v) = (m1, v1);
                *p = descend(p1, m1, v1);
            });
        }
    }

    fn lr(&self) -> f64 {
        self.cfg.lr
    }

    #[track_caller]
    fn set_lr(&mut self, lr: f64) {
        check_lr("Adam", lr);
        self.cfg.lr = lr;
    }

    fn begin_step(&mut self) {
        self.steps += 1;
    }

    fn reset_state(&mut self) {
        self.steps = 0;
        self.state.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, step_with, Tiny};
    use super::*;

    const EPS: f64 = 1e-8;

    /// Steps on `w = [1]` with gradient `gs[i]` at step i; returns `w` after each step.
    fn run(cfg: AdamConfig, gs: &[f64]) -> Vec<f64> {
        let mut m = Tiny::new(&[1.0], &[0.0]);
        let mut opt = Adam::new(cfg);
        gs.iter()
            .map(|&g| {
                step_with(&mut opt, &mut m, &[g], Some(&[0.0]));
                m.w.value().item()
            })
            .collect()
    }

    #[test]
    fn defaults_are_pytorchs() {
        let c = AdamConfig::default();
        assert_eq!((c.lr, c.betas, c.eps, c.weight_decay, c.amsgrad), (1e-3, (0.9, 0.999), 1e-8, WeightDecay::None, false));
    }

    #[test]
    fn bias_corrected_steps() {
        // lr 0.1, β = (0.9, 0.999), p = 1; g = 0.5 then −1.
        // 1: m = 0.05, v = 0.001·0.25 = 0.00025
        //    m̂ = 0.05/0.1 = 0.5, v̂ = 0.00025/0.001 = 0.25, p = 1 − 0.1·0.5/(0.5 + ε)
        // 2: m = 0.045 − 0.1 = −0.055, v = 0.999·0.00025 + 0.001·1 = 0.00124975
        //    1 − β₁² = 0.19, 1 − β₂² = 0.001999
        //    p = p₁ − 0.1·(−0.055/0.19)/(√(0.00124975/0.001999) + ε)
        let got = run(AdamConfig { lr: 0.1, ..Default::default() }, &[0.5, -1.0]);
        let p1 = 1.0 - 0.1 * 0.5 / (0.5 + EPS);
        let p2 = p1 - 0.1 * (-0.055 / 0.19) / ((0.00124975f64 / 0.001999).sqrt() + EPS);
        assert_close(&got, &[p1, p2]);
        // Without bias correction step 1 would have been 0.1·0.05/(√0.00025) ≈ 0.316, not 0.1.
        assert!((1.0 - p1 - 0.1).abs() < 1e-7);
    }

    #[test]
    fn amsgrad_keeps_the_largest_second_moment() {
        // lr 0.1, β = (0.5, 0.5), p = 1; g = 2, 0, 0.
        // 1: m = 1, v = 2, v_max = 2; 1 − βᵗ = 0.5: m̂ = 2, v̂ = 4; p₁ = 1 − 0.1·2/(2 + ε)
        // 2: m = 0.5, v = 1, v_max = 2; 1 − βᵗ = 0.75: m̂ = 2/3
        //    amsgrad: p₂ = p₁ − 0.1·(2/3)/(√(2/0.75) + ε);  plain: √(1/0.75) instead
        // 3: m = 0.25, v = 0.5, v_max = 2; 1 − βᵗ = 0.875: m̂ = 2/7
        //    amsgrad: p₃ = p₂ − 0.1·(2/7)/(√(2/0.875) + ε); plain: √(0.5/0.875) instead
        let cfg = AdamConfig { lr: 0.1, betas: (0.5, 0.5), eps: EPS, ..Default::default() };
        let p1 = 1.0 - 0.1 * 2.0 / (2.0 + EPS);
        let a2 = p1 - 0.1 * (2.0 / 3.0) / ((2.0f64 / 0.75).sqrt() + EPS);
        let a3 = a2 - 0.1 * (2.0 / 7.0) / ((2.0f64 / 0.875).sqrt() + EPS);
        assert_close(&run(AdamConfig { amsgrad: true, ..cfg }, &[2.0, 0.0, 0.0]), &[p1, a2, a3]);
        let q2 = p1 - 0.1 * (2.0 / 3.0) / ((1.0f64 / 0.75).sqrt() + EPS);
        let q3 = q2 - 0.1 * (2.0 / 7.0) / ((0.5f64 / 0.875).sqrt() + EPS);
        assert_close(&run(cfg, &[2.0, 0.0, 0.0]), &[p1, q2, q3]);
    }

    #[test]
    fn l2_versus_decoupled_weight_decay() {
        // lr 0.1, β = (0.5, 0.5), λ = 0.5, p = 1, loss gradient g = 0 every step.
        // L2: 1: g' = 0 + 0.5·1 = 0.5, m = 0.25, v = 0.125; m̂ = 0.5, v̂ = 0.25
        //        p₁ = 1 − 0.1·0.5/(0.5 + ε)
        //     2: g' = 0.5·p₁, m = 0.125 + 0.5·g', v = 0.0625 + 0.5·g'²; 1 − βᵗ = 0.75
        //        p₂ = p₁ − 0.1·(m/0.75)/(√(v/0.75) + ε)
        // Decoupled: m = v = 0 forever, so only p ← p·(1 − 0.1·0.5) = 0.95·p: 0.95, 0.9025
        let cfg = AdamConfig { lr: 0.1, betas: (0.5, 0.5), eps: EPS, ..Default::default() };
        let p1 = 1.0 - 0.1 * 0.5 / (0.5 + EPS);
        let g2 = 0.5 * p1;
        let (m2, v2) = (0.125 + 0.5 * g2, 0.0625 + 0.5 * g2 * g2);
        let p2 = p1 - 0.1 * (m2 / 0.75) / ((v2 / 0.75f64).sqrt() + EPS);
        assert_close(&run(AdamConfig { weight_decay: WeightDecay::L2(0.5), ..cfg }, &[0.0, 0.0]), &[p1, p2]);
        assert_close(&run(AdamConfig { weight_decay: WeightDecay::Decoupled(0.5), ..cfg }, &[0.0, 0.0]), &[0.95, 0.9025]);
    }

    #[test]
    fn adamw_decays_then_steps() {
        // lr 0.1, λ = 0.01, defaults otherwise, p = 1, g = 0.5:
        // p ← 1·(1 − 0.001) = 0.999, then the bias-corrected step 0.1·0.5/(0.5 + ε).
        let mut m = Tiny::new(&[1.0], &[0.0]);
        let mut opt = adamw(0.1, 0.01);
        step_with(&mut opt, &mut m, &[0.5], Some(&[0.0]));
        assert_close(&m.w.value().to_vec(), &[0.999 - 0.1 * 0.5 / (0.5 + EPS)]);
        assert_eq!(opt.config().weight_decay, WeightDecay::Decoupled(0.01));
    }

    #[test]
    fn moments_decaying_below_the_normal_range_are_flushed() {
        // After one gradient of 1, zero gradients shrink m by β₁ per step: 0.1·0.9ᵗ leaves
        // f64's normal range (2.2e-308) after about 6,700 steps, and must then be exactly 0.
        let mut m = Tiny::new(&[1.0], &[0.0]);
        let mut opt = Adam::new(AdamConfig::default());
        step_with(&mut opt, &mut m, &[1.0], Some(&[0.0]));
        for _ in 0..7000 {
            step_with(&mut opt, &mut m, &[0.0], Some(&[0.0]));
        }
        let st = &opt.state[&m.w.id()];
        assert_eq!(st.m[0], 0.0);
        // v shrinks by β₂ = 0.999 per step only, so it is still normal and untouched
        assert!(st.v[0].is_normal() && (st.v[0] - 0.001 * 0.999f64.powi(7000)).abs() < 1e-15);
    }

    #[test]
    fn each_param_counts_its_own_updates() {
        // b is frozen for the first step; when unfrozen its first update is bias-corrected
        // as t = 1 (a full lr step), as in PyTorch, while the optimizer has done 2 steps.
        let mut m = Tiny::new(&[1.0], &[1.0]);
        m.b.set_trainable(false);
        let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() });
        step_with(&mut opt, &mut m, &[0.5], Some(&[0.5]));
        m.b.set_trainable(true);
        step_with(&mut opt, &mut m, &[0.5], Some(&[0.5]));
        assert_eq!(opt.steps(), 2);
        assert_close(&m.b.value().to_vec(), &[1.0 - 0.1 * 0.5 / (0.5 + EPS)]);
        opt.reset_state();
        assert_eq!(opt.steps(), 0);
    }

    #[test]
    #[should_panic(expected = "beta2 must be in [0, 1), got 1")]
    fn beta_of_one_panics() {
        let _ = Adam::<f64>::new(AdamConfig { betas: (0.9, 1.0), ..Default::default() });
    }
}
