//! Arithmetic with broadcasting: `+ - * /`, `pow`, `maximum`, `minimum`, negation and scalar
//! forms. Broadcast gradients are summed back to each input's shape with `sum_to`.
//!
//! The methods `add`, `sub`, `mul`, `div`, `neg` mirror PyTorch's `x.add(y)`; the operator
//! traits call them.
#![allow(clippy::should_implement_trait)]

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::kernels::elementwise::zip_broadcast;
use crate::ops::one;
use crate::var::Var;

macro_rules! binary_op {
    ($(#[$doc:meta])* $name:ident, $op:literal, $Rule:ident, |$x:ident, $y:ident| $f:expr,
     |$a:ident, $b:ident, $out:ident, $g:ident, $ctx:ident| $ga:expr, $gb:expr) => {
        struct $Rule;
        impl<T: Float> Backward<T> for $Rule {
            #[allow(unused_variables)]
            fn backward<'t>(&self, $ctx: &Context<'t, T>, $g: Var<'t, T>) -> InputGrads<'t, T> {
                let ($a, $b, $out) = ($ctx.input(0), $ctx.input(1), $ctx.output());
                // only the gradients someone needs are computed
                let ga = $ctx.needs_grad(0).then(|| ($ga).sum_to_like($a));
                let gb = $ctx.needs_grad(1).then(|| ($gb).sum_to_like($b));
                smallvec::smallvec![ga, gb]
            }
        }
        impl<'t, T: Float> Var<'t, T> {
            $(#[$doc])*
            #[track_caller]
            pub fn $name(self, other: Var<'t, T>) -> Var<'t, T> {
                let v = self.with_values(&other, $op, |a, b| zip_broadcast($op, a, b, |$x: T, $y: T| $f));
                self.tape.push_op($op, v.or_panic(), &[self, other], $Rule)
            }
        }
    };
}

binary_op!(
    /// `a + b` with broadcasting. ∂/∂a = ∂/∂b = 1.
    add, "add", AddRule, |x, y| x + y, |a, b, out, g, ctx| g, g
);
binary_op!(
    /// `a - b` with broadcasting. ∂/∂a = 1, ∂/∂b = -1.
    sub, "sub", SubRule, |x, y| x - y, |a, b, out, g, ctx| g, -g
);
binary_op!(
    /// `a * b` elementwise with broadcasting. ∂/∂a = b, ∂/∂b = a.
    mul, "mul", MulRule, |x, y| x * y, |a, b, out, g, ctx| g * b, g * a
);
binary_op!(
    /// `a / b` elementwise with broadcasting. ∂/∂a = 1/b, ∂/∂b = -a/b² = -out/b.
    div, "div", DivRule, |x, y| x / y, |a, b, out, g, ctx| g / b, -(g * out / b)
);
binary_op!(
    /// `a^b` elementwise with broadcasting. ∂/∂a = b·a^(b-1), ∂/∂b = a^b·ln a (0 where a = 0).
    pow, "pow", PowRule, |x, y| x.powf(y),
    |a, b, out, g, ctx| g * b * a.pow(b - 1.0f64), g * out * a.ln_or_zero()
);
binary_op!(
    /// `max(a, b)` elementwise with broadcasting, NaN where either is NaN (as
    /// `torch.maximum`); the gradient goes to the larger input (split evenly on ties, as in
    /// PyTorch, and to both where one is NaN).
    maximum, "maximum", MaximumRule, |x, y| crate::kernels::reduce::max_nan(x, y),
    |a, b, out, g, ctx| tie_grad(ctx, g, a, b, |x, y| x < y), tie_grad(ctx, g, b, a, |x, y| x < y)
);
binary_op!(
    /// `min(a, b)` elementwise with broadcasting, NaN where either is NaN; the gradient goes
    /// to the smaller input (split evenly on ties).
    minimum, "minimum", MinimumRule, |x, y| crate::kernels::reduce::min_nan(x, y),
    |a, b, out, g, ctx| tie_grad(ctx, g, a, b, |x, y| x > y), tie_grad(ctx, g, b, a, |x, y| x > y)
);

/// The gradient reaching input `a` of max/min against `b`: `g` times 0 where `a` loses, ½ on
/// ties, 1 otherwise (where it wins, or either is NaN: PyTorch's rule, which masks only the
/// loser). First order with all three of one shape, one pass; otherwise (a
/// broadcast, or the backward recorded) `g` times a constant tensor of the weights: two
/// passes, and maximum forward and backward on 1M f32 took 1.24 ms so (0.40-0.58 now).
fn tie_grad<'t, T: Float>(ctx: &Context<'t, T>, g: Var<'t, T>, a: Var<'t, T>, b: Var<'t, T>, loses: impl Fn(T, T) -> bool + Sync) -> Var<'t, T> {
    let half = T::from_f64(0.5);
    let weight = move |x: T, y: T| if loses(x, y) { T::ZERO } else if x == y { half } else { T::ONE };
    let (av, bv) = (a.value(), b.value());
    if !ctx.records_graph() && av.shape() == bv.shape() && g.shape() == *av.shape() {
        let d = crate::kernels::par_zip3(g.value().as_slice(), av.as_slice(), bv.as_slice(), |g, x, y| g * weight(x, y));
        return ctx.constant(crate::Tensor::from_parts(d, av.shape().clone()));
    }
    g * ctx.constant(zip_broadcast("maximum", &av, &bv, weight).or_panic())
}

impl<'t, T: Float> Var<'t, T> {
    /// ln x where x ≠ 0, else 0: the factor in ∂(a^b)/∂b, kept differentiable.
    fn ln_or_zero(self) -> Var<'t, T> {
        let mask = self.value().map(|v| v != T::ZERO);
        let safe = Var::where_(&mask, self, self.tape.scalar(T::ONE));
        Var::where_(&mask, safe.ln(), self.tape.scalar(T::ZERO))
    }
}

struct NegRule;
impl<T: Float> Backward<T> for NegRule {
    fn backward<'t>(&self, _: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(-g)
    }
}

struct AddScalarRule;
impl<T: Float> Backward<T> for AddScalarRule {
    fn backward<'t>(&self, _: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g)
    }
}

struct MulScalarRule<T>(T);
impl<T: Float> Backward<T> for MulScalarRule<T> {
    fn backward<'t>(&self, _: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g.mul_scalar(self.0))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// `-x`. ∂/∂x = -1.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, -2.0]));
    /// assert_eq!(x.neg().value().to_vec(), [-1.0, 2.0]);
    /// assert_eq!(x.neg().sum().backward().wrt(x).to_vec(), [-1.0, -1.0]);
    /// ```
    #[track_caller]
    pub fn neg(self) -> Var<'t, T> {
        let v = self.with_value(|x| x.neg());
        self.tape.push_op("neg", v, &[self], NegRule)
    }

    /// `x + c` for a scalar c. ∂/∂x = 1.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, -2.0]));
    /// assert_eq!(x.add_scalar(0.5).value().to_vec(), [1.5, -1.5]);
    /// assert_eq!(x.add_scalar(0.5).sum().backward().wrt(x).to_vec(), [1.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn add_scalar(self, c: T) -> Var<'t, T> {
        let v = self.with_value(|x| x.add_scalar(c));
        self.tape.push_op("add_scalar", v, &[self], AddScalarRule)
    }

    /// `x * c` for a scalar c. ∂/∂x = c.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, -2.0]));
    /// assert_eq!(x.mul_scalar(3.0).value().to_vec(), [3.0, -6.0]);
    /// assert_eq!(x.mul_scalar(3.0).sum().backward().wrt(x).to_vec(), [3.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn mul_scalar(self, c: T) -> Var<'t, T> {
        let v = self.with_value(|x| x.mul_scalar(c));
        self.tape.push_op("mul_scalar", v, &[self], MulScalarRule(c))
    }
}

macro_rules! var_operators {
    ($($Trait:ident, $method:ident, $var_op:ident, |$x:ident, $c:ident| $scalar:expr, |$c2:ident, $y:ident| $rscalar:expr;)*) => {$(
        impl<'t, T: Float> $Trait<Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> { Var::$var_op(self, rhs) }
        }
        impl<'t, T: Float> $Trait<&Var<'t, T>> for &Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: &Var<'t, T>) -> Var<'t, T> { Var::$var_op(*self, *rhs) }
        }
        impl<'t, T: Float> $Trait<&Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: &Var<'t, T>) -> Var<'t, T> { Var::$var_op(self, *rhs) }
        }
        impl<'t, T: Float> $Trait<Var<'t, T>> for &Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> { Var::$var_op(*self, rhs) }
        }
        impl<'t, T: Float> $Trait<f64> for Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, $c: f64) -> Var<'t, T> { let $x = self; $scalar }
        }
        impl<'t, T: Float> $Trait<f64> for &Var<'t, T> {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, $c: f64) -> Var<'t, T> { let $x = *self; $scalar }
        }
        impl<'t, T: Float> $Trait<Var<'t, T>> for f64 {
            type Output = Var<'t, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> { let ($c2, $y) = (self, rhs); $rscalar }
        }
    )*};
}

var_operators! {
    Add, add, add, |x, c| x.add_scalar(T::from_f64(c)), |c, y| y.add_scalar(T::from_f64(c));
    Sub, sub, sub, |x, c| x.add_scalar(T::from_f64(-c)), |c, y| y.neg().add_scalar(T::from_f64(c));
    Mul, mul, mul, |x, c| x.mul_scalar(T::from_f64(c)), |c, y| y.mul_scalar(T::from_f64(c));
    Div, div, div, |x, c| x.mul_scalar(T::from_f64(1.0 / c)), |c, y| y.recip().mul_scalar(T::from_f64(c));
}

impl<'t, T: Float> Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn neg(self) -> Var<'t, T> {
        Var::neg(self)
    }
}
impl<'t, T: Float> Neg for &Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn neg(self) -> Var<'t, T> {
        Var::neg(*self)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Tape, Tensor};

    #[test]
    #[allow(clippy::op_ref)] // shows that operators work on references too
    fn operators_and_broadcast_gradients() {
        let tape = Tape::<f64>::new();
        let a = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]));
        let b = tape.var(Tensor::from_slice(&[1.0, 2.0, 4.0]));
        let y = ((&a * &b) / 2.0 - 1.0 + 3.0 * a).sum();
        let g = y.backward();
        // d/da = b/2 + 3, d/db = Σ_rows a / 2
        assert_eq!(g.wrt(a).to_vec(), vec![3.5, 4.0, 5.0, 3.5, 4.0, 5.0]);
        assert_eq!(g.wrt(b).to_vec(), vec![2.5, 3.5, 4.5]);
        let z = (1.0 / b).sum();
        assert_eq!(z.backward().wrt(b).to_vec(), vec![-1.0, -0.25, -0.0625]);
    }

    #[test]
    fn maximum_splits_ties() {
        let tape = Tape::<f64>::new();
        let a = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
        let b = tape.var(Tensor::from_slice(&[2.0, 2.0, 1.0]));
        let g = a.maximum(b).sum().backward();
        assert_eq!(g.wrt(a).to_vec(), vec![0.0, 0.5, 1.0]);
        assert_eq!(g.wrt(b).to_vec(), vec![1.0, 0.5, 0.0]);
    }

    /// NaN from either side comes through maximum and minimum, forward and on the tape, and
    /// the gradient reaches both inputs there (PyTorch masks only the loser).
    #[test]
    fn max_min_propagate_nan() {
        let tape = Tape::<f64>::new();
        let a = tape.var(Tensor::from_slice(&[f64::NAN, 1.0, 1.0]));
        let b = tape.var(Tensor::from_slice(&[1.0, f64::NAN, 2.0]));
        for y in [a.maximum(b), a.minimum(b)] {
            let v = y.value().to_vec();
            assert!(v[0].is_nan() && v[1].is_nan(), "{v:?}");
            let first = y.sum().backward();
            let recorded = tape.grad_graph(y.sum(), &[a, b], None);
            assert_eq!(first.wrt(a).to_vec()[..2], [1.0, 1.0]);
            assert_eq!(first.wrt(b).to_vec()[..2], [1.0, 1.0]);
            assert_eq!(first.wrt(a).to_vec(), recorded[0].value().to_vec());
        }
        let r = tape.var(Tensor::from_slice(&[f64::NAN, -1.0, 0.0, 2.0]));
        assert!(r.relu().value().get(&[0]).is_nan());
        let g = r.relu().sum().backward();
        assert_eq!(g.wrt(r).to_vec(), vec![1.0, 0.0, 0.0, 1.0]);
        assert_eq!(tape.grad_graph(r.relu().sum(), &[r], None)[0].value().to_vec(), vec![1.0, 0.0, 0.0, 1.0]);
    }

    /// maximum and minimum's one-pass first-order gradients (same shapes, large enough to
    /// split across threads, with ties) equal the recorded ones, and a broadcast operand
    /// takes the other path, summed back to its shape.
    #[test]
    fn max_min_first_order_matches_recorded() {
        let n = crate::kernels::PARALLEL_MIN_ELEMENTS + 11;
        let tape = Tape::<f64>::new();
        let a = tape.var(Tensor::from_fn([n], |i| (i[0] % 7) as f64));
        let b = tape.var(Tensor::from_fn([n], |i| (i[0] % 5) as f64));
        let w = tape.constant(Tensor::from_fn([n], |i| 1.0 + (i[0] % 3) as f64));
        for y in [(a.maximum(b) * w).sum(), (a.minimum(b) * w).sum()] {
            let first = y.backward();
            let recorded = tape.grad_graph(y, &[a, b], None);
            assert_eq!(first.wrt(a).to_vec(), recorded[0].value().to_vec());
            assert_eq!(first.wrt(b).to_vec(), recorded[1].value().to_vec());
        }
        let row = tape.var(Tensor::from_slice(&[1.0, 3.0]));
        let m = tape.var(Tensor::new(vec![2.0, 2.0, 0.0, 3.0], [2, 2]));
        let g = row.maximum(m).sum().backward();
        assert_eq!(g.wrt(row).to_vec(), vec![1.0, 1.5]);
        assert_eq!(g.wrt(m).to_vec(), vec![1.0, 0.0, 0.0, 0.5]);
    }

    #[test]
    #[should_panic(expected = "wengert: add: cannot broadcast: shapes [2, 3] and [2]")]
    fn shape_error_names_op() {
        let tape = Tape::<f32>::new();
        let _ = tape.var(Tensor::zeros([2, 3])) + tape.var(Tensor::zeros([2]));
    }
}
