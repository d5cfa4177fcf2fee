//! Batch normalisation over the channel axis (axis 1): `BatchNorm1d` for `[N, C]` / `[N, C, L]`,
//! `BatchNorm2d` for `[N, C, H, W]`, with PyTorch's running statistics.
//!
//! The running mean and variance are *buffers*, not parameters: no optimizer touches them and
//! [`Module::visit_params`] does not visit them. They are [`Module::visit_buffers`], under
//! PyTorch's `state_dict` names `running_mean`, `running_var` (float, `[C]`) and
//! `num_batches_tracked` (an `i64` scalar), so [`save_module`](crate::serialize::save_module)
//! and [`load_module`](crate::serialize::load_module) carry them both ways.

use std::cell::RefCell;

use wengert_core::{Float, Param, Tensor, Var};

use super::norm::{affine, normalize, Normalized};
use crate::module::{visit_affine, Buffer, BufferMut, Module};

/// Options for [`BatchNorm1d`] and [`BatchNorm2d`], defaults as PyTorch's `nn.BatchNorm*d`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance before the square root (default 1e-5).
    pub eps: f64,
    /// Weight of the new batch in the running averages,
    /// `running ← (1 - momentum)·running + momentum·batch` (default 0.1).
    pub momentum: f64,
    /// Learn a per-channel scale γ (init 1) and shift β (init 0) (default `true`).
    pub affine: bool,
    /// Keep running statistics in training and normalise with them in eval mode (default
    /// `true`). When `false` the batch statistics are used in both modes and there are no
    /// buffers.
    pub track_running_stats: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig { eps: 1e-5, momentum: 0.1, affine: true, track_running_stats: true }
    }
}

/// The state and arithmetic both layers share; they differ only in the ranks they accept.
struct Norm<T: Float> {
    num_features: usize,
    eps: f64,
    momentum: f64,
    track: bool,
    training: bool,
    running_mean: RefCell<Tensor<T>>,
    running_var: RefCell<Tensor<T>>,
    /// A 0-d `i64` tensor, as PyTorch's.
    num_batches_tracked: RefCell<Tensor<i64>>,
}

impl<T: Float> Norm<T> {
    fn new(num_features: usize, cfg: &BatchNormConfig) -> Self {
        Norm {
            num_features,
            eps: cfg.eps,
            momentum: cfg.momentum,
            track: cfg.track_running_stats,
            training: true,
            running_mean: RefCell::new(Tensor::zeros([num_features])),
            running_var: RefCell::new(Tensor::ones([num_features])),
            num_batches_tracked: RefCell::new(Tensor::scalar(0)),
        }
    }

    /// Normalises `x` (channel axis 1), then applies γ and β.
    #[track_caller]
    fn forward<'t>(&self, name: &str, x: Var<'t, T>, weight: Option<&Param<T>>, bias: Option<&Param<T>>) -> Var<'t, T> {
        let shape = x.shape();
        let c = self.num_features;
        // [1, C, 1, ..]: per-channel values broadcast against x
        let mut bshape = vec![1; shape.ndim()];
        bshape[1] = c;
        let tape = x.tape();
        let y = if self.training || !self.track {
            let axes: Vec<isize> = (0..shape.ndim() as isize).filter(|&a| a != 1).collect();
            let n = shape.numel() / c.max(1);
            if n <= 1 && self.training {
                panic!("wengert: {name}({c}): expected more than 1 value per channel when training, got input of shape {shape}");
            }
            let Normalized { y, mean, var } = normalize(x, &axes, self.eps);
            // once per step: not again while backward recomputes a checkpointed block
            if self.training && self.track && !tape.is_recomputing() {
                self.update_running(&mean.value(), &var.value(), n);
            }
            y
        } else {
            let mean = self.running_mean.borrow().reshape(bshape.clone());
            let eps = self.eps;
            let inv_std = self.running_var.borrow().map(move |v| T::from_f64(1.0 / (v.to_f64() + eps).sqrt()));
            (x - tape.constant(mean)) * tape.constant(inv_std.reshape(bshape.clone()))
        };
        affine(y, weight, bias, Some(&bshape))
    }

    /// `running ← (1 - m)·running + m·batch`, the variance unbiased (× n/(n-1)) as PyTorch.
    fn update_running(&self, mean: &Tensor<T>, var: &Tensor<T>, n: usize) {
        let m = self.momentum;
        let unbias = n as f64 / (n as f64 - 1.0);
        let blend = |run: &RefCell<Tensor<T>>, batch: &Tensor<T>, k: f64| {
            let mut r = run.borrow_mut();
            for (r, &b) in r.data_mut().iter_mut().zip(batch.as_slice()) {
                *r = T::from_f64((1.0 - m) * r.to_f64() + m * k * b.to_f64());
            }
        };
        blend(&self.running_mean, mean, 1.0);
        blend(&self.running_var, var, unbias);
        self.num_batches_tracked.borrow_mut().data_mut()[0] += 1;
    }

    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, Buffer<T>)) {
        if self.track {
            f(format!("{prefix}running_mean"), Buffer::Float(self.running_mean.borrow().clone()));
            f(format!("{prefix}running_var"), Buffer::Float(self.running_var.borrow().clone()));
            f(format!("{prefix}num_batches_tracked"), Buffer::Int(self.num_batches_tracked.borrow().clone()));
        }
    }

    fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, BufferMut<'_, T>)) {
        if self.track {
            f(format!("{prefix}running_mean"), BufferMut::Float(self.running_mean.get_mut()));
            f(format!("{prefix}running_var"), BufferMut::Float(self.running_var.get_mut()));
            f(format!("{prefix}num_batches_tracked"), BufferMut::Int(self.num_batches_tracked.get_mut()));
        }
    }
}

macro_rules! batch_norm_layer {
    ($(#[$doc:meta])* $Name:ident, $label:literal, $ranks:pat, $expect:literal, $example:literal) => {
        $(#[$doc])*
        pub struct $Name<T: Float = f32> {
            /// γ, `[C]` (init 1); `None` when `affine` is off
            pub weight: Option<Param<T>>,
            /// β, `[C]` (init 0); `None` when `affine` is off
            pub bias: Option<Param<T>>,
            norm: Norm<T>,
        }

        impl<T: Float> $Name<T> {
            /// Normalises `num_features` channels with the default options.
            ///
            /// ```
            /// use wengert_nn::prelude::*;
            #[doc = concat!("let bn = ", stringify!($Name), "::<f32>::new(3);")]
            /// assert_eq!((bn.num_features(), bn.is_training()), (3, true));
            /// assert_eq!(bn.named_params()[0].1.value().to_vec(), [1.0; 3]); // γ = 1, β = 0
            /// ```
            pub fn new(num_features: usize) -> Self {
                Self::with_config(num_features, BatchNormConfig::default())
            }

            /// With explicit options.
            ///
            /// ```
            /// use wengert_nn::prelude::*;
            /// let cfg = BatchNormConfig { affine: false, track_running_stats: false, ..Default::default() };
            #[doc = concat!("let bn = ", stringify!($Name), "::<f32>::with_config(3, cfg);")]
            /// assert!(bn.named_params().is_empty() && bn.named_buffers().is_empty());
            /// ```
            pub fn with_config(num_features: usize, cfg: BatchNormConfig) -> Self {
                $Name {
                    weight: cfg.affine.then(|| Param::new(Tensor::ones([num_features]))),
                    bias: cfg.affine.then(|| Param::new(Tensor::zeros([num_features]))),
                    norm: Norm::new(num_features, &cfg),
                }
            }

            /// Number of channels C.
            ///
            /// ```
            /// use wengert_nn::prelude::*;
            #[doc = concat!("assert_eq!(", stringify!($Name), "::<f32>::new(8).num_features(), 8);")]
            /// ```
            pub fn num_features(&self) -> usize {
                self.norm.num_features
            }

            /// Whether it is in training mode (the default, as in PyTorch).
            ///
            /// ```
            /// use wengert_nn::prelude::*;
            #[doc = concat!("let mut bn = ", stringify!($Name), "::<f32>::new(2);")]
            /// assert!(bn.is_training());
            /// bn.eval();
            /// assert!(!bn.is_training());
            /// ```
            pub fn is_training(&self) -> bool {
                self.norm.training
            }

            /// The running mean `[C]` (zeros initially; left at zeros without
            /// `track_running_stats`).
            ///
            /// ```
            /// use wengert_nn::prelude::*;
            #[doc = concat!("let bn = ", stringify!($Name), "::<f64>::new(2);")]
            /// let tape = Tape::new();
            /// // channel 0 holds 0 and 2 (mean 1), channel 1 holds 1 and 5 (mean 3)
            #[doc = concat!("bn.forward(tape.constant(Tensor::new(vec![0.0, 1.0, 2.0, 5.0], ", $example, ")));")]
            /// let m = bn.running_mean().to_vec(); // 0.9·0 + 0.1·mean
            /// assert!((m[0] - 0.1).abs() < 1e-12 && (m[1] - 0.3).abs() < 1e-12);
            /// ```
            pub fn running_mean(&self) -> Tensor<T> {
                self.norm.running_mean.borrow().clone()
            }

            /// The running (unbiased) variance `[C]` (ones initially; left at ones without
            /// `track_running_stats`).
            ///
            /// ```
            /// use wengert_nn::prelude::*;
            #[doc = concat!("let bn = ", stringify!($Name), "::<f64>::new(2);")]
            /// let tape = Tape::new();
            /// // unbiased variances of {0, 2} and {1, 5}: 2 and 8
            #[doc = concat!("bn.forward(tape.constant(Tensor::new(vec![0.0, 1.0, 2.0, 5.0], ", $example, ")));")]
            /// let v = bn.running_var().to_vec(); // 0.9·1 + 0.1·var
            /// assert!((v[0] - 1.1).abs() < 1e-12 && (v[1] - 1.7).abs() < 1e-12);
            /// ```
            pub fn running_var(&self) -> Tensor<T> {
                self.norm.running_var.borrow().clone()
            }

            /// Training batches seen since construction (or the last restore).
            ///
            /// ```
            /// use wengert_nn::prelude::*;
            #[doc = concat!("let mut bn = ", stringify!($Name), "::<f64>::new(2);")]
            /// let tape = Tape::new();
            #[doc = concat!("let x = Tensor::new(vec![0.0, 1.0, 2.0, 5.0], ", $example, ");")]
            /// bn.forward(tape.constant(x.clone()));
            /// bn.eval(); // eval mode uses the statistics and does not count
            /// bn.forward(tape.constant(x));
            /// assert_eq!(bn.num_batches_tracked(), 1);
            /// ```
            pub fn num_batches_tracked(&self) -> i64 {
                self.norm.num_batches_tracked.borrow().item()
            }

        }

        impl<T: Float> Module<T> for $Name<T> {
            #[track_caller]
            fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
                let s = x.shape();
                let c = self.norm.num_features;
                if !matches!(s.ndim(), $ranks) || s[1] != c {
                    panic!("wengert: {}({c}): input of shape {s} must be {} with C = {c}", $label, $expect);
                }
                self.norm.forward($label, x, self.weight.as_ref(), self.bias.as_ref())
            }
            visit_affine!();
            fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, Buffer<T>)) {
                self.norm.visit_buffers(prefix, f)
            }
            fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, BufferMut<'_, T>)) {
                self.norm.visit_buffers_mut(prefix, f)
            }
            fn set_training(&mut self, training: bool) {
                self.norm.training = training;
            }
        }
    };
}

batch_norm_layer!(
    /// Batch normalisation of `[N, C]` or `[N, C, L]` inputs (PyTorch `nn.BatchNorm1d`):
    ///
    /// y = (x - μ_c) / √(σ²_c + ε) · γ_c + β_c
    ///
    /// In training mode μ_c and σ²_c are the mean and *biased* variance of channel c over the
    /// batch (and length) axes, and the running statistics are updated with momentum m:
    /// `running_mean ← (1-m)·running_mean + m·μ`, `running_var ← (1-m)·running_var + m·σ²·n/(n-1)`
    /// (the *unbiased* variance, n values per channel). In eval mode the running statistics
    /// are used instead, so the output of one sample no longer depends on the batch. Gradients
    /// (through μ and σ² in training) come from the tape. The running statistics are buffers,
    /// outside [`Module::visit_params`]: see [`Module::visit_buffers`].
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let bn = BatchNorm1d::<f64>::new(2);
    /// let tape = Tape::new();
    /// let x = tape.constant(Tensor::new(vec![1.0, 10.0, 3.0, 30.0], [2, 2]));
    /// let y = bn.forward(x).value();                 // each channel: values ±1 after normalising
    /// assert!((y.get(&[0, 0]) + 1.0).abs() < 1e-4 && (y.get(&[1, 1]) - 1.0).abs() < 1e-4);
    /// // running mean moved 10% of the way to the batch means [2, 20]
    /// assert_eq!(bn.running_mean().to_vec(), vec![0.2, 2.0]);
    /// ```
    BatchNorm1d, "BatchNorm1d", 2 | 3, "[N, C] or [N, C, L]", "[2, 2]"
);

batch_norm_layer!(
    /// Batch normalisation of images `[N, C, H, W]` (PyTorch `nn.BatchNorm2d`): as
    /// [`BatchNorm1d`], with the statistics of channel c taken over N, H and W.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut bn = BatchNorm2d::<f32>::new(3);
    /// let tape = Tape::new();
    /// let x = tape.constant(Tensor::from_fn([2, 3, 4, 4], |i| (i[0] + i[2] * i[3]) as f32));
    /// assert_eq!(bn.forward(x).shape().dims(), &[2, 3, 4, 4]);
    /// bn.eval();                                      // now uses the running statistics
    /// assert_eq!(bn.num_batches_tracked(), 1);
    /// ```
    BatchNorm2d, "BatchNorm2d", 4, "[N, C, H, W]", "[2, 2, 1, 1]"
);

#[cfg(test)]
mod tests {
    use super::*;
    use wengert_core::Tape;

    #[test]
    fn buffers_have_torch_names_and_restore() {
        let bn = BatchNorm1d::<f64>::new(2);
        let tape = Tape::new();
        let _ = bn.forward(tape.constant(Tensor::new(vec![0.0, 1.0, 2.0, 5.0], [2, 2])));
        let saved = bn.named_buffers();
        let names: Vec<_> = saved.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["running_mean", "running_var", "num_batches_tracked"]);
        assert_eq!(saved[2].1, Buffer::Int(Tensor::scalar(1)));
        let mut other = BatchNorm1d::<f64>::new(2);
        let mut values = saved.into_iter();
        other.visit_buffers_mut("", &mut |_, b| match (b, values.next().unwrap().1) {
            (BufferMut::Float(t), Buffer::Float(v)) => *t = v,
            (BufferMut::Int(t), Buffer::Int(v)) => *t = v,
            _ => panic!("kinds differ"),
        });
        assert_eq!(other.running_mean(), bn.running_mean());
        assert_eq!(other.running_var(), bn.running_var());
        assert_eq!(other.num_batches_tracked(), 1);
        let untracked = BatchNorm1d::<f64>::with_config(2, BatchNormConfig { track_running_stats: false, ..Default::default() });
        assert!(untracked.named_buffers().is_empty());
    }

    #[test]
    #[should_panic(expected = "wengert: BatchNorm2d(3): input of shape [2, 4, 5, 5] must be [N, C, H, W] with C = 3")]
    fn names_its_shapes() {
        let tape = Tape::<f32>::new();
        let _ = BatchNorm2d::<f32>::new(3).forward(tape.constant(Tensor::zeros([2, 4, 5, 5])));
    }

    #[test]
    #[should_panic(expected = "expected more than 1 value per channel when training")]
    fn one_value_per_channel_cannot_train() {
        let tape = Tape::<f32>::new();
        let _ = BatchNorm1d::<f32>::new(3).forward(tape.constant(Tensor::zeros([1, 3])));
    }
}
