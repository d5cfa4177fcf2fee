//! Indexing ops: `index_select`/`index_add` and `gather`/`scatter_add` (each pair is the
//! other's adjoint, repeated indices accumulate), and `where_` by a mask.

use std::sync::Arc;

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::kernels::{elementwise, index};
use crate::ops::one;
use crate::tensor::Tensor;
use crate::var::Var;

struct IndexSelectRule {
    axis: isize,
    indices: Arc<[usize]>,
}
impl<T: Float> Backward<T> for IndexSelectRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let zeros = Tensor::zeros(ctx.input(0).shape());
        if !ctx.records_graph() {
            // added straight into fresh zeros (recorded, the zeros are a constant the sum
            // copies): an embedding's gradient for 8192 lookups of 10000x256 took 3.7 ms so
            let d = g.with_value(|gv| index::index_add_into(zeros, self.axis, &self.indices, gv));
            return one(ctx.constant(d.or_panic()));
        }
        one(ctx.constant(zeros).index_add_shared(self.axis, self.indices.clone(), g))
    }
}

struct IndexAddRule {
    axis: isize,
    indices: Arc<[usize]>,
}
impl<T: Float> Backward<T> for IndexAddRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let src = ctx.needs_grad(1).then(|| g.index_select_shared(self.axis, self.indices.clone()));
        smallvec::smallvec![Some(g), src]
    }
}

struct GatherRule {
    axis: isize,
    index: Tensor<usize>,
}
impl<T: Float> Backward<T> for GatherRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let zeros = Tensor::zeros(ctx.input(0).shape());
        if !ctx.records_graph() {
            let d = g.with_value(|gv| index::scatter_add_into(zeros, self.axis, &self.index, gv));
            return one(ctx.constant(d.or_panic()));
        }
        one(ctx.constant(zeros).scatter_add(self.axis, &self.index, g))
    }
}

struct ScatterAddRule {
    axis: isize,
    index: Tensor<usize>,
}
impl<T: Float> Backward<T> for ScatterAddRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let src = ctx.needs_grad(1).then(|| g.gather(self.axis, &self.index));
        smallvec::smallvec![Some(g), src]
    }
}

struct WhereRule {
    mask: Tensor<bool>,
}
impl<T: Float> Backward<T> for WhereRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let zero = ctx.constant(Tensor::scalar(T::ZERO));
        let (a, b) = (ctx.input(0), ctx.input(1));
        smallvec::smallvec![
            ctx.needs_grad(0).then(|| Var::where_(&self.mask, g, zero).sum_to_like(a)),
            ctx.needs_grad(1).then(|| Var::where_(&self.mask, zero, g).sum_to_like(b)),
        ]
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Entries `indices` along `axis` (repeats allowed), like `torch.index_select`.
    /// Gradient: `index_add` into zeros, so repeated indices accumulate.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let emb = tape.var(Tensor::from_fn([3, 2], |i| i[0] as f64));
    /// let rows = emb.index_select(0, &[2, 2, 0]);
    /// let g = rows.sum().backward().wrt(emb);
    /// assert_eq!(g.to_vec(), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn index_select(self, axis: isize, indices: &[usize]) -> Var<'t, T> {
        self.index_select_shared(axis, indices.into())
    }

    #[track_caller]
    fn index_select_shared(self, axis: isize, indices: Arc<[usize]>) -> Var<'t, T> {
        let v = self.with_value(|x| index::index_select(x, axis, &indices)).or_panic();
        self.tape.push_op("index_select", v, &[self], IndexSelectRule { axis, indices })
    }

    /// This value with `src[.., j, ..]` added at `[.., indices[j], ..]` along `axis`.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let base = tape.var(Tensor::zeros([3, 2]));
    /// let src = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0], [2, 2]));
    /// let y = base.index_add(0, &[2, 2], src); // both rows of src land on row 2
    /// assert_eq!(y.value().to_vec(), [0.0, 0.0, 0.0, 0.0, 4.0, 6.0]);
    /// let g = (y * y).sum().backward(); // ∂/∂src = 2·y at the row each src row went to
    /// assert_eq!(g.wrt(src).to_vec(), [8.0, 12.0, 8.0, 12.0]);
    /// assert_eq!(g.wrt(base).to_vec(), [0.0, 0.0, 0.0, 0.0, 8.0, 12.0]);
    /// ```
    #[track_caller]
    pub fn index_add(self, axis: isize, indices: &[usize], src: Var<'t, T>) -> Var<'t, T> {
        self.index_add_shared(axis, indices.into(), src)
    }

    #[track_caller]
    fn index_add_shared(self, axis: isize, indices: Arc<[usize]>, src: Var<'t, T>) -> Var<'t, T> {
        let v = self.with_values(&src, "index_add", |b, s| index::index_add(b, axis, &indices, s)).or_panic();
        self.tape.push_op("index_add", v, &[self, src], IndexAddRule { axis, indices })
    }

    /// PyTorch `gather`: `out[i][j] = x[i][index[i][j]]` for `axis = 1`; the result has the
    /// index's shape. Gradient: `scatter_add` into zeros.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]));
    /// let y = x.gather(1, &Tensor::new(vec![2usize, 2, 0, 1], [2, 2]));
    /// assert_eq!(y.value().to_vec(), [3.0, 3.0, 4.0, 5.0]); // [[x₀₂, x₀₂], [x₁₀, x₁₁]]
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), [0.0, 0.0, 2.0, 1.0, 1.0, 0.0]); // x₀₂ read twice
    /// ```
    #[track_caller]
    pub fn gather(self, axis: isize, index: &Tensor<usize>) -> Var<'t, T> {
        let v = self.with_value(|x| index::gather(x, axis, index)).or_panic();
        self.tape.push_op("gather", v, &[self], GatherRule { axis, index: index.clone() })
    }

    /// This value with `src` (of the index's shape) added at the positions `index` names
    /// along `axis`; repeats accumulate.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::zeros([2, 3]));
    /// let src = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0], [2, 2]));
    /// let y = x.scatter_add(1, &Tensor::new(vec![2usize, 2, 0, 1], [2, 2]), src);
    /// assert_eq!(y.value().to_vec(), [0.0, 0.0, 3.0, 3.0, 4.0, 0.0]); // 1 + 2 both at [0, 2]
    /// let g = (y * tape.constant(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]))).sum().backward();
    /// assert_eq!(g.wrt(src).to_vec(), [3.0, 3.0, 4.0, 5.0]); // the gather of the gradient
    /// ```
    #[track_caller]
    pub fn scatter_add(self, axis: isize, index: &Tensor<usize>, src: Var<'t, T>) -> Var<'t, T> {
        let v = self.with_values(&src, "scatter_add", |b, s| index::scatter_add(b, axis, index, s)).or_panic();
        self.tape.push_op("scatter_add", v, &[self, src], ScatterAddRule { axis, index: index.clone() })
    }

    /// `mask ? a : b` elementwise, all broadcast together. Gradient: `g` routed to the chosen
    /// side, summed back to each input's shape.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor, Var};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[-1.0, 2.0, -3.0]));
    /// let relu = Var::where_(&x.value().map(|v| v > 0.0), x, tape.scalar(0.0)); // b broadcasts
    /// assert_eq!(relu.value().to_vec(), [0.0, 2.0, 0.0]);
    /// assert_eq!(relu.sum().backward().wrt(x).to_vec(), [0.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn where_(mask: &Tensor<bool>, a: Var<'t, T>, b: Var<'t, T>) -> Var<'t, T> {
        let v = a.with_values(&b, "where", |x, y| elementwise::where_(mask, x, y)).or_panic();
        a.tape.push_op("where", v, &[a, b], WhereRule { mask: mask.clone() })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Tape, Tensor, Var};

    #[test]
    fn gather_scatter_gradients_accumulate_repeats() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_fn([2, 3], |i| (i[0] * 3 + i[1]) as f64));
        let idx = Tensor::new(vec![2usize, 2, 0, 1], [2, 2]);
        let g = x.gather(1, &idx).sum().backward().wrt(x);
        assert_eq!(g.to_vec(), vec![0., 0., 2., 1., 1., 0.]);
        let src = tape.var(Tensor::from_fn([2, 2], |i| (i[1] + 1) as f64));
        let s = x.scatter_add(1, &idx, src);
        let gs = (s * x).sum().backward();
        assert_eq!(gs.wrt(src).to_vec(), vec![2., 2., 3., 4.]);
        let m = Tensor::from_slice(&[true, false, true]);
        let w = Var::where_(&m, x, tape.scalar(0.0));
        assert_eq!(w.sum().backward().wrt(x).to_vec(), vec![1., 0., 1., 1., 0., 1.]);
    }
}
