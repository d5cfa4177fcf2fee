//! Learning-rate schedules (`torch.optim.lr_scheduler`), as pure functions of the epoch.
//!
//! A schedule here is stateless: [`LrSchedule::lr_at`] gives the learning rate for an epoch
//! (counted from 0) in closed form, and [`apply`] sets it on an optimizer. Call it at the start
//! of each epoch; this matches PyTorch's schedulers stepped once per epoch (after epoch `e`'s
//! `scheduler.step()` PyTorch uses `lr_at(e + 1)`).
//!
//! ```
//! use wengert_nn::optim::schedule::{apply, CosineAnnealingLr, LinearWarmup, LrSchedule};
//! use wengert_nn::optim::{Optimizer, Sgd, SgdConfig};
//!
//! let sched = LinearWarmup {
//!     warmup_epochs: 2,
//!     start_factor: 0.5,
//!     after: CosineAnnealingLr { base_lr: 0.1, t_max: 10, eta_min: 0.0 },
//! };
//! let mut opt = Sgd::<f32>::new(SgdConfig::default());
//! for epoch in 0..=12 {
//!     apply(&sched, &mut opt, epoch);
//!     // ... train one epoch ...
//! }
//! assert!((sched.lr_at(0) - 0.05).abs() < 1e-12);
//! assert!((sched.lr_at(2) - 0.1).abs() < 1e-12);
//! assert!(opt.lr() < 1e-12); // epoch 12 is t_max = 10 epochs past the warm-up: eta_min
//! ```

use std::f64::consts::PI;

use wengert_core::Float;

use super::Optimizer;

/// A learning rate as a function of the epoch (0-based).
pub trait LrSchedule {
    /// The learning rate for `epoch`.
    fn lr_at(&self, epoch: usize) -> f64;
}

/// A constant learning rate.
impl LrSchedule for f64 {
    fn lr_at(&self, _epoch: usize) -> f64 {
        *self
    }
}

impl<S: LrSchedule + ?Sized> LrSchedule for &S {
    fn lr_at(&self, epoch: usize) -> f64 {
        (**self).lr_at(epoch)
    }
}

/// Sets `opt`'s learning rate to `sched.lr_at(epoch)`.
///
/// ```
/// use wengert_nn::optim::schedule::{apply, StepLr};
/// use wengert_nn::optim::{Adam, AdamConfig, Optimizer};
/// let sched = StepLr { base_lr: 0.1, step_size: 2, gamma: 0.5 };
/// let mut opt = Adam::<f32>::new(AdamConfig::default());
/// let lrs: Vec<f64> = (0..5).map(|epoch| { apply(&sched, &mut opt, epoch); opt.lr() }).collect();
/// assert_eq!(lrs, [0.1, 0.1, 0.05, 0.05, 0.025]);
/// apply(&0.3, &mut opt, 99); // a bare f64 is a constant schedule
/// assert_eq!(opt.config().lr, 0.3);
/// ```
pub fn apply<T: Float, O: Optimizer<T>>(sched: &impl LrSchedule, opt: &mut O, epoch: usize) {
    opt.set_lr(sched.lr_at(epoch));
}

/// Decays by `gamma` every `step_size` epochs: `lr = base_lr · γ^⌊epoch / step_size⌋`
/// (`torch.optim.lr_scheduler.StepLR`, whose default γ is 0.1).
///
/// ```
/// use wengert_nn::optim::{LrSchedule, StepLr};
/// let s = StepLr { base_lr: 1.0, step_size: 2, gamma: 0.5 };
/// assert_eq!([0, 1, 2, 3, 4].map(|e| s.lr_at(e)), [1.0, 1.0, 0.5, 0.5, 0.25]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    /// The learning rate at epoch 0.
    pub base_lr: f64,
    /// Epochs between decays (PyTorch `step_size`); 0 is treated as 1.
    pub step_size: usize,
    /// Multiplicative factor per decay (PyTorch `gamma`, default there 0.1).
    pub gamma: f64,
}

impl LrSchedule for StepLr {
    fn lr_at(&self, epoch: usize) -> f64 {
        self.base_lr * powi(self.gamma, epoch / self.step_size.max(1))
    }
}

/// Decays by `gamma` every epoch: `lr = base_lr · γ^epoch`
/// (`torch.optim.lr_scheduler.ExponentialLR`).
///
/// ```
/// use wengert_nn::optim::{ExponentialLr, LrSchedule};
/// let s = ExponentialLr { base_lr: 1.0, gamma: 0.5 };
/// assert_eq!(s.lr_at(3), 0.125);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialLr {
    /// The learning rate at epoch 0.
    pub base_lr: f64,
    /// Multiplicative factor per epoch (PyTorch `gamma`).
    pub gamma: f64,
}

impl LrSchedule for ExponentialLr {
    fn lr_at(&self, epoch: usize) -> f64 {
        self.base_lr * powi(self.gamma, epoch)
    }
}

/// Cosine annealing from `base_lr` to `eta_min` over `t_max` epochs (Loshchilov & Hutter,
/// SGDR), in PyTorch's closed form (`torch.optim.lr_scheduler.CosineAnnealingLR`):
///
/// `lr = η_min + (base_lr − η_min)·(1 + cos(π·epoch / T_max)) / 2`
///
/// Past `t_max` the cosine continues, rising back to `base_lr` at `2·t_max` (as PyTorch's
/// closed form does; there is no restart).
///
/// ```
/// use wengert_nn::optim::{CosineAnnealingLr, LrSchedule};
/// let s = CosineAnnealingLr { base_lr: 1.0, t_max: 4, eta_min: 0.0 };
/// assert_eq!(s.lr_at(0), 1.0);
/// assert!((s.lr_at(2) - 0.5).abs() < 1e-12);
/// assert!(s.lr_at(4).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealingLr {
    /// The learning rate at epoch 0.
    pub base_lr: f64,
    /// Epochs from `base_lr` down to `eta_min` (PyTorch `T_max`); 0 is treated as 1.
    pub t_max: usize,
    /// The minimum learning rate (PyTorch `eta_min`, default there 0).
    pub eta_min: f64,
}

impl LrSchedule for CosineAnnealingLr {
    fn lr_at(&self, epoch: usize) -> f64 {
        let phase = PI * epoch as f64 / self.t_max.max(1) as f64;
        self.eta_min + (self.base_lr - self.eta_min) * (1.0 + phase.cos()) / 2.0
    }
}

/// A linear warm-up followed by another schedule: over the first `warmup_epochs` epochs the
/// rate rises linearly from `start_factor · after.lr_at(0)` towards `after.lr_at(0)`,
///
/// `lr = after.lr_at(0) · (f + (1 − f)·epoch / warmup_epochs)`  for `epoch < warmup_epochs`,
///
/// then `lr = after.lr_at(epoch − warmup_epochs)`, so `after` starts at its own epoch 0.
/// This is PyTorch's `LinearLR(start_factor=f, total_iters=warmup_epochs)` chained with
/// `after` through `SequentialLR(milestones=[warmup_epochs])`.
///
/// ```
/// use wengert_nn::optim::{LinearWarmup, LrSchedule};
/// let s = LinearWarmup { warmup_epochs: 4, start_factor: 0.25, after: 1.0 };
/// assert_eq!([0, 1, 2, 3, 4, 9].map(|e| s.lr_at(e)), [0.25, 0.4375, 0.625, 0.8125, 1.0, 1.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearWarmup<S: LrSchedule> {
    /// Epochs of warm-up; 0 means none.
    pub warmup_epochs: usize,
    /// The fraction of `after.lr_at(0)` to start from (PyTorch `LinearLR`'s `start_factor`,
    /// default there 1/3).
    pub start_factor: f64,
    /// The schedule after warm-up.
    pub after: S,
}

impl<S: LrSchedule> LrSchedule for LinearWarmup<S> {
    fn lr_at(&self, epoch: usize) -> f64 {
        if epoch >= self.warmup_epochs {
            return self.after.lr_at(epoch - self.warmup_epochs);
        }
        let f = self.start_factor;
        self.after.lr_at(0) * (f + (1.0 - f) * epoch as f64 / self.warmup_epochs as f64)
    }
}

/// `x^n` for a count `n` (exact repeated squaring, no `i32` overflow).
fn powi(x: f64, n: usize) -> f64 {
    match i32::try_from(n) {
        Ok(n) => x.powi(n),
        Err(_) => x.powf(n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Sgd, SgdConfig};
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn step_lr() {
        // 0.1 for epochs 0-2, 0.01 for 3-5, 0.001 from 6
        let s = StepLr { base_lr: 0.1, step_size: 3, gamma: 0.1 };
        for (e, lr) in [(0, 0.1), (2, 0.1), (3, 0.01), (5, 0.01), (6, 0.001)] {
            assert!(close(s.lr_at(e), lr), "epoch {e}: {}", s.lr_at(e));
        }
    }

    #[test]
    fn exponential_lr() {
        let s = ExponentialLr { base_lr: 1.0, gamma: 0.5 };
        assert_eq!([0, 1, 3].map(|e| s.lr_at(e)), [1.0, 0.5, 0.125]);
    }

    #[test]
    fn cosine_annealing() {
        // base 1, η_min 0.1, T 4: 0.1 + 0.9·(1 + cos(πe/4))/2
        // e=0: 1; e=1: 0.1 + 0.45·(1 + √2/2); e=2: 0.55; e=4: 0.1; e=8: back to 1
        let s = CosineAnnealingLr { base_lr: 1.0, t_max: 4, eta_min: 0.1 };
        let expected = [(0, 1.0), (1, 0.1 + 0.45 * (1.0 + 0.5f64.sqrt())), (2, 0.55), (4, 0.1), (6, 0.55), (8, 1.0)];
        for (e, lr) in expected {
            assert!(close(s.lr_at(e), lr), "epoch {e}: {}", s.lr_at(e));
        }
    }

    #[test]
    fn linear_warmup_then_step() {
        // after(0) = 0.1; warm-up 4 epochs from 0.25:  0.1·(0.25 + 0.75·e/4)
        // e=0: 0.025, 1: 0.04375, 2: 0.0625, 3: 0.08125; then StepLr from its epoch 0:
        // e=4,5: 0.1; e=6,7: 0.05; e=8: 0.025
        let s = LinearWarmup { warmup_epochs: 4, start_factor: 0.25, after: StepLr { base_lr: 0.1, step_size: 2, gamma: 0.5 } };
        let expected = [0.025, 0.04375, 0.0625, 0.08125, 0.1, 0.1, 0.05, 0.05, 0.025];
        for (e, &lr) in expected.iter().enumerate() {
            assert!(close(s.lr_at(e), lr), "epoch {e}: {}", s.lr_at(e));
        }
        let none = LinearWarmup { warmup_epochs: 0, start_factor: 0.25, after: 0.3 };
        assert_eq!(none.lr_at(0), 0.3);
    }

    #[test]
    fn apply_sets_the_optimizers_lr() {
        let mut opt = Sgd::<f64>::new(SgdConfig::default());
        let s = ExponentialLr { base_lr: 0.2, gamma: 0.5 };
        apply(&s, &mut opt, 2);
        assert_eq!(opt.lr(), 0.05);
        apply(&&s, &mut opt, 0); // schedules by reference work too
        assert_eq!(opt.lr(), 0.2);
    }

    #[test]
    fn zero_periods_do_not_divide_by_zero() {
        assert_eq!(StepLr { base_lr: 1.0, step_size: 0, gamma: 0.5 }.lr_at(2), 0.25);
        assert!(CosineAnnealingLr { base_lr: 1.0, t_max: 0, eta_min: 0.0 }.lr_at(1).abs() < 1e-12);
    }
}
