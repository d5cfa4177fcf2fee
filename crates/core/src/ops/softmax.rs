//! Softmax and log-softmax along one axis, computed stably (shifted by the max).

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::kernels::softmax;
use crate::ops::one;
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
    #[track_caller]
    pub fn log_softmax(self, axis: isize) -> Var<'t, T> {
        let v = self.with_value(|x| softmax::log_softmax(x, axis)).or_panic();
        self.tape.push_op("log_softmax", v, &[self], LogSoftmaxRule(axis))
    }
}
