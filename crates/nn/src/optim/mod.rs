//! Optimizers, learning-rate schedules and gradient clipping.
//!
//! Every optimizer implements [`Optimizer`]: [`Optimizer::update`] is its rule for one
//! parameter, and the provided [`Optimizer::step`] applies it to every trainable parameter of a
//! model, after checking that each one received a gradient. The rules follow `torch.optim`
//! exactly (same defaults, same order of operations), so a run here and a run in PyTorch
//! from the same weights and gradients take the same steps.
//!
//! | optimizer | rule | PyTorch |
//! |---|---|---|
//! | [`Sgd`] | `p ← p − lr·g`, with [`Momentum`] classic or Nesterov | `torch.optim.SGD` |
//! | [`Adam`] | `p ← p − lr·m̂/(√v̂ + ε)` | `torch.optim.Adam` |
//! | [`Adam`] + [`WeightDecay::Decoupled`] ([`adamw`]) | the same after `p ← p − lr·λ·p` | `torch.optim.AdamW` |
//! | [`RmsProp`] | `p ← p − lr·g/(√s + ε)` | `torch.optim.RMSprop` |
//! | [`Adagrad`] | `p ← p − lr·g/(√Σg² + ε)` | `torch.optim.Adagrad` |
//!
//! A training loop with a one-weight model `y = w·x`, fitting `w` to 3:
//!
//! ```
//! use wengert_core::{Param, Tensor, Var};
//! use wengert_nn::Module;
//! use wengert_nn::optim::{Momentum, Optimizer, Sgd, SgdConfig};
//!
//! struct Scale { w: Param<f64> }
//! impl Module<f64> for Scale {
//!     fn forward<'t>(&self, x: Var<'t, f64>) -> Var<'t, f64> {
//!         x * x.tape().param(&self.w)
//!     }
//!     fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<f64>)) {
//!         f(format!("{prefix}w"), &self.w)
//!     }
//!     fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<f64>)) {
//!         f(format!("{prefix}w"), &mut self.w)
//!     }
//! }
//!
//! let mut model = Scale { w: Param::new(Tensor::scalar(0.0)) };
//! let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: Momentum::Classic(0.5), ..Default::default() });
//! for _ in 0..100 {
//!     let tape = wengert_core::Tape::new();
//!     let x = tape.constant(Tensor::from_slice(&[1.0, 2.0]));
//!     let loss = (model.forward(x) - x * 3.0).square().mean();
//!     let grads = loss.backward();
//!     opt.step(&mut model, &grads).unwrap();
//! }
//! assert!((model.w.value().item() - 3.0).abs() < 1e-6);
//! ```

use wengert_core::{Float, Gradients, Param, ParamId, Tensor};

use crate::error::{Error, Result};
use crate::module::Module;

mod adagrad;
mod adam;
pub mod clip;
mod rmsprop;
pub mod schedule;
mod sgd;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{adamw, Adam, AdamConfig};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use schedule::{CosineAnnealingLr, ExponentialLr, LinearWarmup, LrSchedule, StepLr};
pub use sgd::{Momentum, Sgd, SgdConfig};

/// How weight decay λ enters an update. The default, `None`, is PyTorch's `weight_decay=0`.
///
/// The two forms differ once the update is not plain SGD: an L2 term passes through momentum
/// and Adam's normalisation, a decoupled decay does not (Loshchilov & Hutter, *Decoupled Weight
/// Decay Regularization*, 2019). For plain SGD they coincide.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum WeightDecay {
    /// No decay.
    #[default]
    None,
    /// L2 penalty added to the gradient before the rule sees it: `g ← g + λ·p`.
    /// PyTorch's `weight_decay=λ` in SGD, Adam, RMSprop and Adagrad.
    L2(f64),
    /// Decoupled decay applied to the parameter before the rule's own step: `p ← p − lr·λ·p`.
    /// PyTorch's `weight_decay=λ` in AdamW (whose default is λ = 0.01).
    Decoupled(f64),
}

impl WeightDecay {
    /// `(l2, shrink)` for one step at learning rate `lr`: the rule uses `g + l2·p` as its
    /// gradient and multiplies `p` by `shrink` before stepping. One of the two is neutral
    /// (`l2 = 0` or `shrink = 1`), so one branch-free kernel serves all three forms.
    pub(crate) fn coefficients<T: Float>(self, lr: f64) -> (T, T) {
        match self {
            WeightDecay::None => (T::ZERO, T::ONE),
            WeightDecay::L2(l) => (T::from_f64(l), T::ONE),
            WeightDecay::Decoupled(l) => (T::ZERO, T::from_f64(1.0 - lr * l)),
        }
    }

    /// Panics (at the caller) if λ is negative or NaN, as PyTorch does.
    #[track_caller]
    pub(crate) fn validate(self, opt: &str) {
        if let WeightDecay::L2(l) | WeightDecay::Decoupled(l) = self {
            require(l >= 0.0, opt, format_args!("weight decay must be >= 0, got {l}"));
        }
    }
}

/// `x`, or 0 if `x` is subnormal. Optimizer state that decays geometrically (momentum, Adam's
/// and RMSprop's averages) sinks into the subnormal range wherever the gradient stays 0 (a
/// weight on an always-blank input pixel), and x86 CPUs compute on subnormals several times
/// more slowly: on the digits MLP they had doubled Adam's time. Flushing them changes the
/// state by less than 1e-38 (f32), far below the step's rounding.
#[inline(always)]
pub(crate) fn flush_subnormal<T: Float>(x: T) -> T {
    if x.abs() < T::MIN_POSITIVE {
        T::ZERO
    } else {
        x
    }
}

/// Panics with `wengert: {opt}: {msg}` at the caller's line unless `ok` (bad hyper-parameters
/// are a programming error, like PyTorch's `ValueError` in an optimizer's constructor).
#[track_caller]
pub(crate) fn require(ok: bool, opt: &str, msg: std::fmt::Arguments<'_>) {
    if !ok {
        panic!("wengert: {opt}: {msg}");
    }
}

/// Panics at the caller's line unless `lr` is a finite number `>= 0`: the one check of a
/// learning rate, in every optimizer's constructor and `set_lr` (a NaN rate turned every
/// weight to NaN in one step, a negative one ascends).
#[track_caller]
pub(crate) fn check_lr(opt: &str, lr: f64) {
    require(
        lr >= 0.0 && lr.is_finite(),
        opt,
        format_args!("learning rate must be finite and >= 0, got {lr}"),
    );
}

/// Panics naming both shapes if a gradient does not match its parameter.
#[track_caller]
pub(crate) fn check_grad_shape<T: Float>(opt: &str, value: &Tensor<T>, grad: &Tensor<T>) {
    if value.shape() != grad.shape() {
        panic!(
            "wengert: {opt}: the gradient has shape {} but the parameter has shape {}",
            grad.shape(),
            value.shape()
        );
    }
}

/// Panics if a parameter's stored state was made for another number of elements (its value
/// was replaced by one of a different size after the optimizer first saw it).
#[track_caller]
pub(crate) fn check_state_len<T: Float>(opt: &str, state_len: usize, value: &Tensor<T>) {
    if state_len != value.numel() {
        panic!(
            "wengert: {opt}: the optimizer state of this parameter has {state_len} elements but the \
             parameter now has {} (shape {}); call reset_state after resizing a parameter",
            value.numel(),
            value.shape()
        );
    }
}

/// A gradient-based optimizer.
///
/// Implementors give the rule for one parameter ([`update`](Optimizer::update)) and keep any
/// per-parameter state (momentum buffers, moments) keyed by [`ParamId`]; [`step`](Optimizer::step)
/// does the rest. Hyper-parameters are `f64` whatever the element type `T`, and converted once
/// per update.
///
/// `step` is generic over the model, so it requires `Self: Sized`; the other methods work on a
/// `dyn Optimizer<T>` (for example to pick the optimizer at run time and drive `update` yourself).
pub trait Optimizer<T: Float = f32> {
    /// Applies this optimizer's rule to one parameter: `value` is updated in place from `grad`
    /// (same shape) and the state kept for `id`.
    ///
    /// # Panics
    /// If `grad`'s shape differs from `value`'s, or `value` changed size since the state for
    /// `id` was created.
    fn update(&mut self, id: ParamId, value: &mut Tensor<T>, grad: &Tensor<T>);

    /// The current learning rate.
    fn lr(&self) -> f64;

    /// Sets the learning rate used from the next update on (see [`schedule`]).
    ///
    /// # Panics
    /// The built-in optimizers panic, as their constructors do, unless `lr` is finite and
    /// `>= 0`.
    #[track_caller]
    fn set_lr(&mut self, lr: f64);

    /// Called once per [`step`](Optimizer::step), before the first `update`. Default: nothing.
    fn begin_step(&mut self) {}

    /// Forgets all per-parameter state (momentum buffers, moments, step counts), as if the
    /// optimizer were new; hyper-parameters, including the current learning rate, are kept.
    /// Default: nothing (for stateless optimizers).
    fn reset_state(&mut self) {}

    /// One optimization step over `model`'s parameters with `grads` from a backward pass.
    ///
    /// Every trainable parameter must have a gradient in `grads` (bound on the differentiated
    /// tape and reached from the loss); otherwise this returns [`Error::NoGradient`] naming
    /// the first such parameter and changes nothing, neither values nor optimizer state.
    /// Frozen parameters ([`Param::is_trainable`] false) are skipped. Then it calls
    /// [`begin_step`](Optimizer::begin_step) once and [`update`](Optimizer::update) for each
    /// trainable parameter, in the model's parameter order.
    fn step<M: Module<T> + ?Sized>(&mut self, model: &mut M, grads: &Gradients<T>) -> Result<()>
    where
        Self: Sized,
    {
        let mut trainable: Vec<(String, &mut Param<T>)> = Vec::new();
        model.visit_params_mut("", &mut |name, p| {
            if p.is_trainable() {
                trainable.push((name, p));
            }
        });
        // Check every gradient before touching anything: no partial step.
        let mut work = Vec::with_capacity(trainable.len());
        for (name, p) in trainable {
            match grads.param(p) {
                Some(g) => work.push((p, g)),
                None => return Err(Error::NoGradient { param: name }),
            }
        }
        self.begin_step();
        for (p, g) in work {
            self.update(p.id(), p.value_mut(), g);
        }
        Ok(())
    }
}

/// A tiny model and gradient helpers for the optimizer tests.
#[cfg(test)]
pub(crate) mod testing {
    use wengert_core::{Gradients, Param, Tape, Tensor, Var};

    use crate::module::Module;

    /// Two parameters, `w` and `b`; forward is `x·w + b` elementwise.
    pub struct Tiny {
        pub w: Param<f64>,
        pub b: Param<f64>,
    }

    impl Tiny {
        pub fn new(w: &[f64], b: &[f64]) -> Self {
            Tiny { w: Param::new(Tensor::from_slice(w)), b: Param::new(Tensor::from_slice(b)) }
        }
    }

    impl Module<f64> for Tiny {
        fn forward<'t>(&self, x: Var<'t, f64>) -> Var<'t, f64> {
            let tape = x.tape();
            x * tape.param(&self.w) + tape.param(&self.b)
        }
        fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<f64>)) {
            f(format!("{prefix}w"), &self.w);
            f(format!("{prefix}b"), &self.b);
        }
        fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<f64>)) {
            f(format!("{prefix}w"), &mut self.w);
            f(format!("{prefix}b"), &mut self.b);
        }
    }

    /// Gradients of `Σ cw·w + Σ cb·b` from a real tape: exactly `cw` for `w` and `cb` for `b`,
    /// whatever their values. `cb = None` leaves `b` out of the loss (and so without gradient).
    pub fn grads(m: &Tiny, cw: &[f64], cb: Option<&[f64]>) -> Gradients<f64> {
        let tape = Tape::new();
        let mut loss = (tape.param(&m.w) * tape.constant(Tensor::from_slice(cw))).sum();
        if let Some(cb) = cb {
            loss = loss + (tape.param(&m.b) * tape.constant(Tensor::from_slice(cb))).sum();
        }
        loss.backward()
    }

    /// Computes [`grads`] for `m` and takes one optimizer step with them.
    pub fn step_with<O: super::Optimizer<f64>>(opt: &mut O, m: &mut Tiny, cw: &[f64], cb: Option<&[f64]>) {
        let g = grads(m, cw, cb);
        opt.step(m, &g).unwrap();
    }

    /// Asserts `a ≈ b` elementwise (absolute 1e-12: the expected values are computed by hand
    /// with the same formulas, so only rounding may differ).
    #[track_caller]
    pub fn assert_close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{assert_close, grads, Tiny};
    use super::*;

    #[test]
    fn only_subnormals_are_flushed() {
        for x in [1e-39f32, -1e-39, f32::MIN_POSITIVE / 2.0, -0.0] {
            assert_eq!(flush_subnormal(x), 0.0, "{x:e}");
        }
        for x in [f32::MIN_POSITIVE, -f32::MIN_POSITIVE, 1e-37, 1.0, f32::INFINITY] {
            assert_eq!(flush_subnormal(x), x);
        }
        assert!(flush_subnormal(f32::NAN).is_nan(), "a NaN is not hidden");
        assert_eq!(flush_subnormal(1e-300f64), 1e-300, "normal in f64");
    }

    #[test]
    fn step_without_a_gradient_names_the_param_and_changes_nothing() {
        let mut m = Tiny::new(&[1.0, 2.0], &[3.0]);
        let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() });
        // `b` is not in the loss; `w` comes first, so a partial step would have moved it.
        let g = grads(&m, &[1.0, 1.0], None);
        match opt.step(&mut m, &g) {
            Err(Error::NoGradient { param }) => assert_eq!(param, "b"),
            other => panic!("expected NoGradient, got {other:?}"),
        }
        assert_eq!(m.w.value().to_vec(), vec![1.0, 2.0]);
        assert_eq!(m.b.value().to_vec(), vec![3.0]);
        assert_eq!(opt.steps(), 0, "begin_step must not run on a failed step");
        // And the optimizer has no state: the next real step is its first (a full lr step).
        let g = grads(&m, &[1.0, 1.0], Some(&[1.0]));
        opt.step(&mut m, &g).unwrap();
        assert_close(&m.w.value().to_vec(), &[1.0 - 0.1 / (1.0 + 1e-8), 2.0 - 0.1 / (1.0 + 1e-8)]);
    }

    #[test]
    fn frozen_params_are_skipped() {
        let mut m = Tiny::new(&[1.0], &[3.0]);
        m.b.set_trainable(false);
        let mut opt = Sgd::new(SgdConfig { lr: 0.5, ..Default::default() });
        // b is bound as a constant, so it gets no gradient; that is fine for a frozen param.
        let g = grads(&m, &[2.0], Some(&[1.0]));
        assert!(g.param(&m.b).is_none());
        opt.step(&mut m, &g).unwrap();
        assert_eq!(m.w.value().to_vec(), vec![0.0]); // 1 − 0.5·2
        assert_eq!(m.b.value().to_vec(), vec![3.0]);
    }

    #[test]
    fn gradients_from_a_forward_pass_reach_every_param() {
        // loss = Σ (x·w + b) with x = [1, 2]: dL/dw = x, dL/db = 2 (b broadcast over x).
        let mut m = Tiny::new(&[0.0, 0.0], &[0.0]);
        let tape = wengert_core::Tape::new();
        let x = tape.constant(Tensor::from_slice(&[1.0, 2.0]));
        let g = m.forward(x).sum().backward();
        let mut opt = Sgd::new(SgdConfig { lr: 1.0, ..Default::default() });
        opt.step(&mut m, &g).unwrap();
        assert_eq!(m.w.value().to_vec(), vec![-1.0, -2.0]);
        assert_eq!(m.b.value().to_vec(), vec![-2.0]);
    }

    #[test]
    fn optimizers_are_object_safe_for_update_and_lr() {
        let mut w = Param::new(Tensor::from_slice(&[1.0f64]));
        let mut opts: Vec<Box<dyn Optimizer<f64>>> = vec![
            Box::new(Sgd::new(SgdConfig::default())),
            Box::new(Adam::new(AdamConfig::default())),
            Box::new(RmsProp::new(RmsPropConfig::default())),
            Box::new(Adagrad::new(AdagradConfig::default())),
        ];
        for opt in &mut opts {
            opt.set_lr(0.5);
            assert_eq!(opt.lr(), 0.5);
            let id = w.id();
            opt.update(id, w.value_mut(), &Tensor::from_slice(&[1.0]));
            opt.reset_state();
        }
        assert!(w.value().item() < 1.0);
    }

    /// `set_lr` checks its argument as the constructors do: NaN, negative and infinite
    /// rates panic naming the optimizer and the value, and leave the rate unchanged; so does
    /// `clip_grad_norm` with a NaN or negative bound.
    #[test]
    fn setters_validate_like_constructors() {
        type MakeOptimizer = fn() -> Box<dyn Optimizer<f64>>;
        let make: [MakeOptimizer; 4] = [
            || Box::new(Sgd::new(SgdConfig::default())),
            || Box::new(Adam::new(AdamConfig::default())),
            || Box::new(RmsProp::new(RmsPropConfig::default())),
            || Box::new(Adagrad::new(AdagradConfig::default())),
        ];
        for new in make {
            for bad in [f64::NAN, -1.0, f64::INFINITY] {
                let mut opt = new();
                let before = opt.lr();
                let caught =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| opt.set_lr(bad)));
                let msg = *caught
                    .expect_err("a bad learning rate must panic")
                    .downcast::<String>()
                    .unwrap();
                assert!(
                    msg.contains("learning rate must be finite and >= 0")
                        && msg.contains(&bad.to_string()),
                    "{msg}"
                );
                assert_eq!(opt.lr(), before);
            }
            let mut opt = new();
            opt.set_lr(0.0);
            assert_eq!(opt.lr(), 0.0);
        }
        let caught = std::panic::catch_unwind(|| {
            Sgd::<f64>::new(SgdConfig {
                lr: f64::INFINITY,
                ..Default::default()
            })
        });
        assert!(caught.is_err());
        let m = Tiny::new(&[1.0], &[1.0]);
        for bad in [f64::NAN, -0.5] {
            let mut g = grads(&m, &[3.0], Some(&[4.0]));
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                clip_grad_norm(&m, &mut g, bad)
            }));
            let msg = *caught
                .expect_err("a bad max_norm must panic")
                .downcast::<String>()
                .unwrap();
            assert!(
                msg.contains("clip_grad_norm: max_norm must be >= 0"),
                "{msg}"
            );
        }
    }

    #[test]
    fn element_type_is_inferred_from_the_model() {
        let mut m = Tiny::new(&[1.0], &[1.0]);
        let mut opt = Adam::new(AdamConfig::default()); // Adam<f64> from the step below
        let g = grads(&m, &[1.0], Some(&[1.0]));
        opt.step(&mut m, &g).unwrap();
        assert!(m.w.value().item() < 1.0);
    }

    #[test]
    fn works_in_f32() {
        let mut w = Param::new(Tensor::from_slice(&[1.0f32, -1.0]));
        let mut opt = Sgd::new(SgdConfig { lr: 0.25, momentum: Momentum::Nesterov(0.5), ..Default::default() });
        let id = w.id();
        opt.update(id, w.value_mut(), &Tensor::from_slice(&[1.0, 2.0]));
        // b = g; d = g + 0.5·b = 1.5·g; p − 0.25·d
        assert_eq!(w.value().to_vec(), vec![0.625, -1.75]);
    }

    #[test]
    #[should_panic(expected = "the gradient has shape [1] but the parameter has shape [2]")]
    fn mismatched_gradient_shape_panics() {
        let mut w = Tensor::from_slice(&[1.0f64, 2.0]);
        let id = Param::new(w.clone()).id();
        Sgd::new(SgdConfig::default()).update(id, &mut w, &Tensor::from_slice(&[1.0]));
    }

    #[test]
    #[should_panic(expected = "weight decay must be >= 0, got -0.1")]
    fn negative_weight_decay_panics() {
        let _ = Sgd::<f64>::new(SgdConfig { weight_decay: WeightDecay::L2(-0.1), ..Default::default() });
    }
}
