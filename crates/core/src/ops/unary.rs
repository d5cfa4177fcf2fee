//! Elementwise functions of one input. Each rule states the derivative in its doc.

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::ops::one;
use crate::var::Var;

macro_rules! unary_op {
    ($($(#[$doc:meta])* $name:ident, $Rule:ident, |$x:ident, $y:ident, $g:ident, $ctx:ident| $grad:expr;)*) => {$(
        struct $Rule;
        impl<T: Float> Backward<T> for $Rule {
            #[allow(unused_variables)]
            fn backward<'t>(&self, $ctx: &Context<'t, T>, $g: Var<'t, T>) -> InputGrads<'t, T> {
                let ($x, $y) = ($ctx.input(0), $ctx.output());
                one($grad)
            }
        }
        impl<'t, T: Float> Var<'t, T> {
            $(#[$doc])*
            #[track_caller]
            pub fn $name(self) -> Var<'t, T> {
                let v = self.with_value(|t| t.$name());
                self.tape.push_op(stringify!($name), v, &[self], $Rule)
            }
        }
    )*};
}

unary_op! {
    /// eˣ. Derivative: itself.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0));
    /// assert_eq!(x.exp().backward().wrt(x).item(), 1.0);
    /// ```
    exp, ExpRule, |x, y, g, ctx| g * y;
    /// ln x. Derivative: 1/x.
    ln, LnRule, |x, y, g, ctx| g / x;
    /// √x. Derivative: 1/(2√x).
    sqrt, SqrtRule, |x, y, g, ctx| g / (y * 2.0);
    /// |x|. Derivative: sign(x) (0 at 0).
    abs, AbsRule, |x, y, g, ctx| g * ctx.constant(x.value().sign());
    /// sin x. Derivative: cos x.
    sin, SinRule, |x, y, g, ctx| g * x.cos();
    /// cos x. Derivative: -sin x.
    cos, CosRule, |x, y, g, ctx| -(g * x.sin());
    /// tanh x. Derivative: 1 - tanh² x.
    tanh, TanhRule, |x, y, g, ctx| g * (1.0 - y.square());
    /// σ(x) = 1/(1+e⁻ˣ), stable for large |x|. Derivative: σ(x)(1-σ(x)).
    sigmoid, SigmoidRule, |x, y, g, ctx| g * y * (1.0 - y);
    /// ln(1 + eˣ), stable for large |x|. Derivative: σ(x).
    softplus, SoftplusRule, |x, y, g, ctx| g * x.sigmoid();
    /// max(x, 0). Derivative: 1 where x > 0, else 0.
    /// (First order: one fused pass `x > 0 ? g : 0`; recorded: `g` times a 0/1 mask.)
    relu, ReluRule, |x, y, g, ctx| if ctx.records_graph() {
        g * ctx.constant(x.value().par_map(|v| if v > T::ZERO { T::ONE } else { T::ZERO }))
    } else {
        // written over the incoming gradient's buffer when no one else holds it
        let gv = ctx.take_grad(g);
        let d = x.with_value(|xv| crate::kernels::elementwise::zip_reusing("relu backward", gv, xv, true, |g, x| if x > T::ZERO { g } else { T::ZERO }));
        ctx.constant(d.or_panic())
    };
    /// x². Derivative: 2x.
    square, SquareRule, |x, y, g, ctx| g * x * 2.0;
    /// 1/x. Derivative: -1/x².
    recip, RecipRule, |x, y, g, ctx| -(g * y.square());
}

struct PowfRule<T>(T);
impl<T: Float> Backward<T> for PowfRule<T> {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let p = self.0;
        if p == T::ZERO {
            return one(g.mul_scalar(T::ZERO));
        }
        one(g * ctx.input(0).powf(p - T::ONE).mul_scalar(p))
    }
}

struct ClampRule<T>(T, T);
impl<T: Float> Backward<T> for ClampRule<T> {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let (lo, hi) = (self.0, self.1);
        let inside = ctx.input(0).value().par_map(move |v| if v >= lo && v <= hi { T::ONE } else { T::ZERO });
        one(g * ctx.constant(inside))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// ln σ(x) = -softplus(-x), stable for large |x|. Derivative: σ(-x) = 1 - σ(x).
    #[track_caller]
    pub fn log_sigmoid(self) -> Var<'t, T> {
        -((-self).softplus())
    }

    /// xᵖ for a scalar exponent. Derivative: p·xᵖ⁻¹.
    #[track_caller]
    pub fn powf(self, p: T) -> Var<'t, T> {
        let v = self.with_value(|t| t.powf(p));
        self.tape.push_op("powf", v, &[self], PowfRule(p))
    }

    /// x clamped to `[lo, hi]`. Derivative: 1 inside the interval, 0 outside.
    #[track_caller]
    pub fn clamp(self, lo: T, hi: T) -> Var<'t, T> {
        let v = self.with_value(|t| t.clamp(lo, hi));
        self.tape.push_op("clamp", v, &[self], ClampRule(lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Tape, Tensor};

    #[test]
    fn known_derivatives() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_slice(&[-1.0, 0.5, 2.0]));
        let d = |y: crate::Var<'_, f64>| y.sum().backward().wrt(x).to_vec();
        assert_eq!(d(x.relu()), vec![0.0, 1.0, 1.0]);
        assert_eq!(d(x.abs()), vec![-1.0, 1.0, 1.0]);
        assert_eq!(d(x.clamp(0.0, 1.0)), vec![0.0, 1.0, 0.0]);
        assert_eq!(d(x.powf(3.0)), vec![3.0, 0.75, 12.0]);
        assert_eq!(d(x.square()), vec![-2.0, 1.0, 4.0]);
        let s = x.value().sigmoid();
        let ds: Vec<f64> = s.as_slice().iter().map(|v| v * (1.0 - v)).collect();
        assert_eq!(d(x.sigmoid()), ds);
    }

    /// ReLU's first-order backward writes over its incoming gradient's buffer when no one
    /// else holds it (a large one, split across threads), and leaves it alone when the caller
    /// asked for that gradient too.
    #[test]
    fn relu_backward_in_place_keeps_requested_gradients() {
        let n = crate::kernels::PARALLEL_MIN_ELEMENTS + 5;
        let tape = Tape::<f32>::new();
        let x = tape.var(Tensor::from_fn([n], |i| (i[0] % 7) as f32 - 3.0));
        let r = x.relu();
        let w = Tensor::from_fn([n], |i| 1.0 + (i[0] % 3) as f32);
        let y = (r * tape.constant(w.clone())).sum();
        let want: Vec<f32> = x.value().as_slice().iter().zip(w.as_slice()).map(|(&x, &w)| if x > 0.0 { w } else { 0.0 }).collect();
        assert_eq!(y.backward().wrt(x).to_vec(), want, "in place");
        let g = tape.grad(y, &[x, r]);
        assert_eq!(g[1].to_vec(), w.to_vec(), "the kept gradient of the ReLU output is untouched");
        assert_eq!(g[0].to_vec(), want);
    }
}
