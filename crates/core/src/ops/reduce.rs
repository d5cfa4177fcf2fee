//! Reductions: `sum`, `mean`, `max`, `min`, `var`, `logsumexp` over all or some axes.
//! Axes may be negative (`-1` is the last); an empty list means all axes.

use smallvec::SmallVec;

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::kernels::reduce::{reduce, reduced_count, ReduceOp};
use crate::ops::one;
use crate::shape::Shape;
use crate::var::Var;

/// ∂(Σ x)/∂x = 1: the gradient, viewed with the reduced axes kept, broadcast back.
struct SumRule {
    keep: Shape,
}
impl<T: Float> Backward<T> for SumRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g.reshape(&self.keep).broadcast_to(ctx.input(0).shape()))
    }
}

/// ∂(max x)/∂x = 1 at the maximum (split evenly between ties), 0 elsewhere.
struct ExtremumRule {
    keep: Shape,
}
impl<T: Float> Backward<T> for ExtremumRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let x = ctx.input(0).value();
        let y = ctx.output().value().reshape(&self.keep);
        let hit = x.eq_elem(&y).to_float::<T>();
        let axes: SmallVec<[isize; 6]> = (0..x.ndim()).filter(|&i| self.keep[i] == 1 && x.dims()[i] != 1).map(|i| i as isize).collect();
        let weights = if axes.is_empty() { hit } else { hit.div(&hit.sum_axes(&axes, true)) };
        one(g.reshape(&self.keep) * ctx.constant(weights))
    }
}

/// ∂(ln Σ eˣ)/∂x = softmax(x) = e^(x - out).
struct LogSumExpRule {
    keep: Shape,
}
impl<T: Float> Backward<T> for LogSumExpRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let p = (ctx.input(0) - ctx.output().reshape(&self.keep)).exp();
        one(p * g.reshape(&self.keep))
    }
}

impl<'t, T: Float> Var<'t, T> {
    #[track_caller]
    fn keep_shape(&self, op: &'static str, axes: &[isize]) -> (SmallVec<[usize; 6]>, Shape) {
        let shape = self.shape();
        let ax = shape.axes(op, axes).or_panic();
        let keep = shape.reduced(&ax, true);
        (ax, keep)
    }

    /// Σ of all elements (a 0-d result).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let x = tape.var(Tensor::ones([2, 3]));
    /// assert_eq!(x.sum().item(), 6.0);
    /// ```
    #[track_caller]
    pub fn sum(self) -> Var<'t, T> {
        self.sum_axes(&[], false)
    }

    /// Σ over `axes` (empty = all), keeping them as length 1 when `keepdim`.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]));
    /// assert_eq!(x.sum_axes(&[1], false).value().to_vec(), vec![6.0, 15.0]);
    /// assert_eq!(x.sum_axes(&[1], true).shape().dims(), &[2, 1]);
    /// assert_eq!(x.sum_axes(&[0], false).sum().backward().wrt(x).to_vec(), vec![1.0; 6]);
    /// ```
    #[track_caller]
    pub fn sum_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let (_, keep) = self.keep_shape("sum", axes);
        let v = self.with_value(|x| reduce("sum", x, axes, keepdim, ReduceOp::Sum)).or_panic();
        self.tape.push_op("sum", v, &[self], SumRule { keep })
    }

    /// Mean of all elements.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0]));
    /// assert_eq!(x.mean().item(), 2.5);
    /// assert_eq!(x.mean().backward().wrt(x).to_vec(), vec![0.25; 4]);
    /// ```
    #[track_caller]
    pub fn mean(self) -> Var<'t, T> {
        self.mean_axes(&[], false)
    }

    /// Mean over `axes` (empty = all): Σ / N.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]));
    /// assert_eq!(x.mean_axes(&[0], false).value().to_vec(), vec![2.5, 3.5, 4.5]);
    /// assert_eq!(x.mean_axes(&[0], false).sum().backward().wrt(x).to_vec(), vec![0.5; 6]);
    /// ```
    #[track_caller]
    pub fn mean_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let n = reduced_count(&self.shape(), axes).or_panic();
        self.sum_axes(axes, keepdim).mul_scalar(T::ONE / T::from_usize(n))
    }

    #[track_caller]
    fn extremum(self, op: &'static str, rop: ReduceOp, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let (_, keep) = self.keep_shape(op, axes);
        let v = self.with_value(|x| reduce(op, x, axes, keepdim, rop)).or_panic();
        self.tape.push_op(op, v, &[self], ExtremumRule { keep })
    }

    /// Largest element over `axes` (empty = all). The gradient goes to the maximum
    /// (shared evenly between ties, like `torch.amax`).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 5.0, 2.0, 0.0, 3.0, 4.0], [2, 3]));
    /// assert_eq!(x.max_axes(&[1], false).value().to_vec(), vec![5.0, 4.0]);
    /// let g = x.max_axes(&[1], false).sum().backward();
    /// assert_eq!(g.wrt(x).to_vec(), vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn max_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        self.extremum("max", ReduceOp::Max, axes, keepdim)
    }

    /// Smallest element over `axes` (empty = all); gradient as for [`Var::max_axes`].
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 5.0, 2.0, 0.0, 3.0, 4.0], [2, 3]));
    /// assert_eq!(x.min_axes(&[1], false).value().to_vec(), vec![1.0, 0.0]);
    /// let g = x.min_axes(&[1], false).sum().backward();
    /// assert_eq!(g.wrt(x).to_vec(), vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn min_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        self.extremum("min", ReduceOp::Min, axes, keepdim)
    }

    /// Largest element of all.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 3.0, 2.0]));
    /// assert_eq!(x.max().item(), 3.0);
    /// assert_eq!(x.max().backward().wrt(x).to_vec(), vec![0.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn max(self) -> Var<'t, T> {
        self.max_axes(&[], false)
    }

    /// Smallest element of all.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 3.0, 2.0]));
    /// assert_eq!(x.min().item(), 1.0);
    /// assert_eq!(x.min().backward().wrt(x).to_vec(), vec![1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn min(self) -> Var<'t, T> {
        self.min_axes(&[], false)
    }

    /// Variance over `axes`: Σ(x - mean)² / (N - correction); `correction = 1` is unbiased
    /// (PyTorch's default), `0` the population variance (what normalisation layers use).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0]));
    /// assert_eq!(x.var_axes(&[], 0, false).item(), 1.25);
    /// assert!((x.var_axes(&[], 1, false).item() - 5.0 / 3.0).abs() < 1e-12);
    /// assert_eq!(x.var_axes(&[], 0, false).backward().wrt(x).to_vec(), vec![-0.75, -0.25, 0.25, 0.75]);
    /// ```
    #[track_caller]
    pub fn var_axes(self, axes: &[isize], correction: usize, keepdim: bool) -> Var<'t, T> {
        let n = reduced_count(&self.shape(), axes).or_panic();
        let centered = self - self.mean_axes(axes, true);
        centered
            .square()
            .sum_axes(axes, keepdim)
            .mul_scalar(T::ONE / T::from_usize(n.saturating_sub(correction)))
    }

    /// ln Σ eˣ over `axes`, computed stably. Derivative: softmax over those axes.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[0.0, 0.0]));
    /// assert!((x.logsumexp_axes(&[0], false).item() - 2f64.ln()).abs() < 1e-12);
    /// let g = x.logsumexp_axes(&[0], false).backward();
    /// assert!(g.wrt(x).allclose(&Tensor::from_slice(&[0.5, 0.5]), 1e-12, 1e-12));
    /// ```
    #[track_caller]
    pub fn logsumexp_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let (_, keep) = self.keep_shape("logsumexp", axes);
        let v = self.with_value(|x| x.logsumexp_axes(axes, keepdim));
        self.tape.push_op("logsumexp", v, &[self], LogSumExpRule { keep })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Tape, Tensor};

    #[test]
    fn reduction_gradients() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::new(vec![1.0, 5.0, 5.0, 2.0, 0.0, 3.0], [2, 3]));
        assert_eq!(x.max_axes(&[1], false).sum().backward().wrt(x).to_vec(), vec![0.0, 0.5, 0.5, 0.0, 0.0, 1.0]);
        assert_eq!(x.mean_axes(&[0], false).sum().backward().wrt(x).to_vec(), vec![0.5; 6]);
        assert_eq!(x.min().backward().wrt(x).to_vec(), vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        let lse = x.logsumexp_axes(&[-1], false);
        let g = lse.sum().backward().wrt(x);
        assert!(g.allclose(&x.value().softmax(-1), 1e-12, 1e-12));
        assert_eq!(x.var_axes(&[], 0, false).item(), x.value().var_axes(&[], 0, false).item());
    }
}
