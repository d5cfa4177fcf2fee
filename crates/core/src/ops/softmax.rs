//! Softmax and log-softmax along one axis, computed stably (shifted by the max), and the
//! fused softmax cross-entropy of logits against class indices.

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::kernels::softmax;
use crate::ops::one;
use crate::tensor::Tensor;
use crate::var::Var;

/// y = softmax(x): dx = y ⊙ (g - Σ(g ⊙ y)).
struct SoftmaxRule(isize);
impl<T: Float> Backward<T> for SoftmaxRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let y = ctx.output();
        one(y * (g - (g * y).sum_axes(&[self.0], true)))
    }
}

/// y = log_softmax(x): dx = g - eʸ ⊙ Σ g.
struct LogSoftmaxRule(isize);
impl<T: Float> Backward<T> for LogSoftmaxRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let y = ctx.output();
        one(g - y.exp() * g.sum_axes(&[self.0], true))
    }
}

/// ℓ = cross_entropy_rows(x, y): ∂ℓᵢ/∂xᵢ = softmax(xᵢ) − onehot(yᵢ), scaled by gᵢ.
struct CrossEntropyRule<T: Float> {
    targets: Tensor<usize>,
    /// each row's max and ln Σ e^(x − max), from the forward pass
    max: Tensor<T>,
    ln_sum: Tensor<T>,
}
impl<T: Float> Backward<T> for CrossEntropyRule<T> {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let x = ctx.input(0);
        if ctx.records_graph() {
            // recorded with Var ops, so it can be differentiated again
            let (n, c) = (self.targets.numel(), x.shape()[1]);
            let ys = self.targets.as_slice();
            let onehot = Tensor::from_fn([n, c], |i| if ys[i[0]] == i[1] { T::ONE } else { T::ZERO });
            return one((x.softmax(1) - ctx.constant(onehot)) * g.reshape([n, 1]));
        }
        let dx = softmax::cross_entropy_rows_backward(&x.value(), &self.targets, &self.max, &self.ln_sum, &g.value());
        one(ctx.constant(dx.or_panic()))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// `exp(xᵢ) / Σⱼ exp(xⱼ)` along `axis`. Jacobian: diag(y) - y yᵀ.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![0.0, 0.0], [1, 2]));
    /// assert_eq!(x.softmax(-1).value().to_vec(), vec![0.5, 0.5]);
    /// ```
    #[track_caller]
    pub fn softmax(self, axis: isize) -> Var<'t, T> {
        let v = self.with_value(|x| softmax::softmax(x, axis)).or_panic();
        self.tape.push_op("softmax", v, &[self], SoftmaxRule(axis))
    }

    /// `xᵢ - ln Σⱼ exp(xⱼ)` along `axis`. Jacobian: I - 1·softmax(x)ᵀ.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![0.0, 0.0], [1, 2]));
    /// let l = x.log_softmax(-1);
    /// assert_eq!(l.value().to_vec(), [-2f64.ln(), -2f64.ln()]);
    /// // ∂(l₀)/∂x = e₀ − softmax(x) = [0.5, −0.5]
    /// assert_eq!(l.narrow(1, 0, 1).sum().backward().wrt(x).to_vec(), [0.5, -0.5]);
    /// ```
    #[track_caller]
    pub fn log_softmax(self, axis: isize) -> Var<'t, T> {
        let v = self.with_value(|x| softmax::log_softmax(x, axis)).or_panic();
        self.tape.push_op("log_softmax", v, &[self], LogSoftmaxRule(axis))
    }

    /// Cross-entropy of each row of logits `[n, C]` at its class index (`targets` `[n]`),
    /// as one op: `ℓᵢ = ln Σⱼ e^{xᵢⱼ} − xᵢ,yᵢ` (= `-log_softmax(x)[i, yᵢ]`), `[n]`. Gradient:
    /// `∂ℓᵢ/∂xᵢ = softmax(xᵢ) − onehot(yᵢ)`. The same values as the three ops
    /// `-log_softmax(1).gather(..)`, in one forward and one backward pass: the digits MLP's
    /// loss on `[32, 10]` logits, with its mean, forward and backward, 5.5 -> 3.2 µs.
    /// Differentiable to any order.
    /// A target `≥ C` or mismatched shapes panic, naming the op and the shapes.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![0.0, 0.0], [1, 2]));
    /// let loss = x.cross_entropy_rows(&Tensor::new(vec![1usize], [1])).sum();
    /// assert!((loss.item() - 2f64.ln()).abs() < 1e-15);
    /// assert_eq!(loss.backward().wrt(x).to_vec(), vec![0.5, -0.5]); // softmax − onehot
    /// ```
    #[track_caller]
    pub fn cross_entropy_rows(self, targets: &Tensor<usize>) -> Var<'t, T> {
        let (v, max, ln_sum) = self.with_value(|x| softmax::cross_entropy_parts(x, targets)).or_panic();
        self.tape.push_op("cross_entropy_rows", v, &[self], CrossEntropyRule { targets: targets.clone(), max, ln_sum })
    }
}
