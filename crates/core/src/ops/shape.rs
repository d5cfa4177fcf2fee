//! Shape ops: reshape, permute/transpose, broadcast/sum_to, squeeze/unsqueeze/flatten,
//! narrow/pad, concat/stack. Their gradients move values back without arithmetic.

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::kernels::{elementwise, index, reduce};
use crate::ops::one;
use crate::shape::Shape;
use crate::var::Var;

struct ReshapeRule;
impl<T: Float> Backward<T> for ReshapeRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g.reshape(ctx.input(0).shape()))
    }
}

struct PermuteRule {
    inverse: Vec<usize>,
}
impl<T: Float> Backward<T> for PermuteRule {
    fn backward<'t>(&self, _: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g.permute(&self.inverse))
    }
}

struct BroadcastRule;
impl<T: Float> Backward<T> for BroadcastRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g.sum_to(ctx.input(0).shape()))
    }
}

struct SumToRule;
impl<T: Float> Backward<T> for SumToRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g.broadcast_to(ctx.input(0).shape()))
    }
}

struct NarrowRule {
    axis: isize,
    start: usize,
    after: usize,
}
impl<T: Float> Backward<T> for NarrowRule {
    fn backward<'t>(&self, _: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g.pad(self.axis, self.start, self.after, T::ZERO))
    }
}

struct PadRule {
    axis: isize,
    before: usize,
    len: usize,
}
impl<T: Float> Backward<T> for PadRule {
    fn backward<'t>(&self, _: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g.narrow(self.axis, self.before, self.len))
    }
}

struct ConcatRule {
    axis: isize,
    lens: Vec<usize>,
}
impl<T: Float> Backward<T> for ConcatRule {
    fn backward<'t>(&self, _: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let mut start = 0;
        self.lens
            .iter()
            .map(|&len| {
                let part = g.narrow(self.axis, start, len);
                start += len;
                Some(part)
            })
            .collect()
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// The same elements under a new shape with the same count.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    /// let y = x.reshape([2, 3]);
    /// assert_eq!(y.shape().dims(), &[2, 3]);
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), vec![1.0; 6]);
    /// ```
    #[track_caller]
    pub fn reshape(self, shape: impl Into<Shape>) -> Var<'t, T> {
        let shape = shape.into();
        if self.has_shape(&shape) {
            return self;
        }
        let v = self.with_value(|x| x.try_reshape(shape)).or_panic();
        self.tape.push_op("reshape", v, &[self], ReshapeRule)
    }

    /// Flattens to 1-D.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0], [2, 2]));
    /// assert_eq!(x.flatten().shape().dims(), &[4]);
    /// assert_eq!(x.flatten().value().to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn flatten(self) -> Var<'t, T> {
        let n = self.numel();
        self.reshape([n])
    }

    /// Reorders axes: result axis `i` is input axis `perm[i]`.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]));
    /// let y = x.permute(&[1, 0]);
    /// assert_eq!(y.value().to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// assert_eq!((y * y).sum().backward().wrt(x).to_vec(), vec![2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
    /// ```
    #[track_caller]
    pub fn permute(self, perm: &[usize]) -> Var<'t, T> {
        let v = self.with_value(|x| index::permute(x, perm)).or_panic();
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        self.tape.push_op("permute", v, &[self], PermuteRule { inverse })
    }

    /// Swaps two axes.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::ones([2, 3, 4]));
    /// assert_eq!(x.transpose(0, -1).shape().dims(), &[4, 3, 2]);
    /// assert_eq!(x.transpose(0, -1).sum().backward().wrt(x).dims(), &[2, 3, 4]);
    /// ```
    #[track_caller]
    pub fn transpose(self, a: isize, b: isize) -> Var<'t, T> {
        let shape = self.shape();
        let (a, b) = (shape.axis("transpose", a).or_panic(), shape.axis("transpose", b).or_panic());
        let mut perm: Vec<usize> = (0..shape.ndim()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Matrix transpose (swaps the last two axes).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]));
    /// assert_eq!(x.t().shape().dims(), &[3, 2]);
    /// assert_eq!(x.t().value().to_vec(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// ```
    #[track_caller]
    pub fn t(self) -> Var<'t, T> {
        if self.ndim() < 2 {
            panic!("wengert: t: needs at least 2 dims, got shape {}", self.shape());
        }
        self.transpose(-2, -1)
    }

    /// Broadcasts to `shape` (NumPy rules). Its gradient sums back over the broadcast axes.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// let y = x.broadcast_to([2, 3]);
    /// assert_eq!(y.value().to_vec(), vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), vec![2.0, 2.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn broadcast_to(self, shape: impl Into<Shape>) -> Var<'t, T> {
        let shape = shape.into();
        if self.has_shape(&shape) {
            return self;
        }
        let v = self.with_value(|x| elementwise::broadcast_to(x, &shape)).or_panic();
        self.tape.push_op("broadcast_to", v, &[self], BroadcastRule)
    }

    /// Sums down to the shape of `like` (a no-op, with no shape copied, when they already
    /// match): how broadcast gradients are reduced back to each input.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]));
    /// let b = tape.var(Tensor::zeros([3]));
    /// assert_eq!(x.sum_to_like(b).value().to_vec(), vec![5.0, 7.0, 9.0]);
    /// ```
    #[track_caller]
    pub fn sum_to_like(self, like: Var<'t, T>) -> Var<'t, T> {
        let same = {
            let nodes = self.tape.nodes.borrow();
            nodes[self.id].value.shape() == nodes[like.id].value.shape()
        };
        if same {
            self
        } else {
            self.sum_to(like.shape())
        }
    }

    /// Sums down to `shape`, a shape that broadcasts to this one (the adjoint of
    /// [`Var::broadcast_to`]).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]));
    /// let y = x.sum_to([2, 1]);
    /// assert_eq!(y.value().to_vec(), vec![6.0, 15.0]);
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), vec![1.0; 6]);
    /// ```
    #[track_caller]
    pub fn sum_to(self, shape: impl Into<Shape>) -> Var<'t, T> {
        let shape = shape.into();
        if self.has_shape(&shape) {
            return self;
        }
        let v = self.with_value(|x| reduce::sum_to(x, &shape)).or_panic();
        self.tape.push_op("sum_to", v, &[self], SumToRule)
    }

    /// Adds a length-1 axis at `axis`.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::ones([3]));
    /// assert_eq!(x.unsqueeze(0).shape().dims(), &[1, 3]);
    /// assert_eq!(x.unsqueeze(1).shape().dims(), &[3, 1]);
    /// ```
    #[track_caller]
    pub fn unsqueeze(self, axis: isize) -> Var<'t, T> {
        let shape = self.with_value(|x| index::unsqueeze(x, axis).map(|t| t.shape().clone())).or_panic();
        self.reshape(shape)
    }

    /// Removes the length-1 axis `axis`.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::ones([1, 3]));
    /// assert_eq!(x.squeeze(0).shape().dims(), &[3]);
    /// assert_eq!(x.squeeze(0).sum().backward().wrt(x).dims(), &[1, 3]);
    /// ```
    #[track_caller]
    pub fn squeeze(self, axis: isize) -> Var<'t, T> {
        let shape = self.with_value(|x| index::squeeze(x, axis).map(|t| t.shape().clone())).or_panic();
        self.reshape(shape)
    }

    /// `len` entries along `axis` from `start`. Gradient: zero-padded back into place.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0, 4.0]));
    /// let y = x.narrow(0, 1, 2);
    /// assert_eq!(y.value().to_vec(), vec![2.0, 3.0]);
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), vec![0.0, 1.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn narrow(self, axis: isize, start: usize, len: usize) -> Var<'t, T> {
        let v = self.with_value(|x| index::narrow(x, axis, start, len)).or_panic();
        let n = self.shape()[self.shape().axis("narrow", axis).or_panic()];
        self.tape.push_op("narrow", v, &[self], NarrowRule { axis, start, after: n - start - len })
    }

    /// Pads `axis` with `before`/`after` entries equal to `value`. Gradient: the middle part.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0]));
    /// let y = x.pad(0, 1, 2, 0.0);
    /// assert_eq!(y.value().to_vec(), vec![0.0, 1.0, 2.0, 0.0, 0.0]);
    /// assert_eq!((y * y).sum().backward().wrt(x).to_vec(), vec![2.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn pad(self, axis: isize, before: usize, after: usize, value: T) -> Var<'t, T> {
        let v = self.with_value(|x| index::pad(x, axis, before, after, value)).or_panic();
        let len = self.shape()[self.shape().axis("pad", axis).or_panic()];
        self.tape.push_op("pad", v, &[self], PadRule { axis, before, len })
    }

    /// Joins values along an existing `axis`; gradient: each input's slice.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor, Var};
    /// let tape = Tape::<f32>::new();
    /// let a = tape.var(Tensor::ones([2, 1]));
    /// let b = tape.var(Tensor::zeros([2, 2]));
    /// assert_eq!(Var::concat(&[a, b], 1).shape().dims(), &[2, 3]);
    /// ```
    #[track_caller]
    pub fn concat(xs: &[Var<'t, T>], axis: isize) -> Var<'t, T> {
        // checks in this frame, not in closures, so a panic names the caller's line
        let Some(&first) = xs.first() else {
            panic!("wengert: concat: no tensors given")
        };
        for x in xs {
            x.same_tape(&first, "concat");
        }
        let values: Vec<_> = xs.iter().map(|x| x.value()).collect();
        let refs: Vec<_> = values.iter().collect();
        let v = index::concat(&refs, axis).or_panic();
        let ax = first.shape().axis("concat", axis).or_panic();
        let lens = values.iter().map(|t| t.dims()[ax]).collect();
        first.tape.push_op("concat", v, xs, ConcatRule { axis, lens })
    }

    /// Joins same-shaped values along a new `axis`.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor, Var};
    /// let tape = Tape::<f64>::new();
    /// let (a, b) = (tape.var(Tensor::ones([2])), tape.var(Tensor::zeros([2])));
    /// let s = Var::stack(&[a, b], 0);
    /// assert_eq!(s.shape().dims(), &[2, 2]);
    /// assert_eq!(s.value().to_vec(), vec![1.0, 1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn stack(xs: &[Var<'t, T>], axis: isize) -> Var<'t, T> {
        let Some(&first) = xs.first() else {
            panic!("wengert: stack: no tensors given")
        };
        for x in xs {
            if x.shape() != first.shape() {
                panic!("wengert: stack: shapes differ: {} and {}", first.shape(), x.shape());
            }
        }
        let ax = index::insert_axis("stack", &first.shape(), axis).or_panic() as isize;
        let parts: Vec<_> = xs.iter().map(|x| x.unsqueeze(ax)).collect();
        Var::concat(&parts, ax)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Tape, Tensor, Var};

    #[test]
    fn shape_gradients_move_values_back() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_fn([2, 3], |i| (i[0] * 3 + i[1]) as f64));
        let w = tape.constant(Tensor::from_fn([3, 2], |i| (i[0] * 2 + i[1]) as f64));
        let g = (x.t() * w).sum().backward().wrt(x);
        assert_eq!(g, w.value().t());
        let g = (x.narrow(1, 1, 2) * 2.0).sum().backward().wrt(x);
        assert_eq!(g.to_vec(), vec![0., 2., 2., 0., 2., 2.]);
        let c = Var::concat(&[x, x.narrow(1, 0, 1)], 1);
        assert_eq!(c.sum().backward().wrt(x).to_vec(), vec![2., 1., 1., 2., 1., 1.]);
        let b = x.sum_axes(&[1], true).broadcast_to([2, 4]);
        assert_eq!(b.sum().backward().wrt(x).to_vec(), vec![4.0; 6]);
        assert_eq!(Var::stack(&[x, x], 0).shape().dims(), &[2, 2, 3]);
    }
}
