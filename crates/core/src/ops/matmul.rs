//! Matrix products. `matmul_t` multiplies `op(A)·op(B)` with either operand transposed
//! in place (no copy), and is closed under differentiation: its gradients are `matmul_t`s.

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::kernels::matmul::{self, Transpose};
use crate::var::Var;

/// For C = op(A)·op(B) with upstream G:
///
/// | op(A), op(B) | dA | dB |
/// |---|---|---|
/// | A, B   | G·Bᵀ   | Aᵀ·G   |
/// | A, Bᵀ  | G·B    | Gᵀ·A   |
/// | Aᵀ, B  | B·Gᵀ   | A·G    |
/// | Aᵀ, Bᵀ | Bᵀ·Gᵀ  | Gᵀ·Aᵀ  |
///
/// each summed back over broadcast batch dims.
struct MatMulRule(Transpose);
impl<T: Float> Backward<T> for MatMulRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let (a, b) = (ctx.input(0), ctx.input(1));
        let da = ctx.needs_grad(0).then(|| {
            match (self.0.a, self.0.b) {
                (false, false) => g.matmul_t(b, Transpose::NT),
                (false, true) => g.matmul_t(b, Transpose::NN),
                (true, false) => b.matmul_t(g, Transpose::NT),
                (true, true) => b.matmul_t(g, Transpose::TT),
            }
            .sum_to_like(a)
        });
        let db = ctx.needs_grad(1).then(|| {
            if let Some(db) = shared_b_grad(self.0, a, b, g) {
                return db;
            }
            match (self.0.a, self.0.b) {
                (false, false) => a.matmul_t(g, Transpose::TN),
                (false, true) => g.matmul_t(a, Transpose::TN),
                (true, false) => a.matmul_t(g, Transpose::NN),
                (true, true) => g.matmul_t(a, Transpose::TT),
            }
            .sum_to_like(b)
        });
        smallvec::smallvec![da, db]
    }
}

/// dB for a batch of row-major A `[.., m, k]` against one 2-D B (a linear layer on
/// `[B, L, in]`): the batch's products `Σᵢ Aᵢᵀ·Gᵢ` (or `Σᵢ Gᵢᵀ·Aᵢ` for `A·Bᵀ`) are one
/// product over the batch's rows, `A_flatᵀ·G_flat` with `k = batch·m`. The batched form
/// made a `[batch, k, n]` stack of short-k products and reduced it: the MiniLM encoder's
/// feed-forward weight gradients were 32 products of k = 128 and a 75 MB sum each.
/// `None` where op(A) is transposed or B is batched (each product then has its own dB, or
/// the rows are not contiguous).
fn shared_b_grad<'t, T: Float>(t: Transpose, a: Var<'t, T>, b: Var<'t, T>, g: Var<'t, T>) -> Option<Var<'t, T>> {
    let (sa, sg) = (a.shape(), g.shape());
    if t.a || b.ndim() != 2 || sa.ndim() <= 2 {
        return None;
    }
    let flat = |x: Var<'t, T>, cols: usize| x.reshape([x.shape().numel() / cols.max(1), cols]);
    let (af, gf) = (flat(a, sa[sa.ndim() - 1]), flat(g, sg[sg.ndim() - 1]));
    Some(if t.b { gf.matmul_t(af, Transpose::TN) } else { af.matmul_t(gf, Transpose::TN) })
}

/// C = op(A)·op(B) + bias: the product's gradients as [`MatMulRule`], and the bias gets G
/// summed down to its shape.
struct MatMulBiasRule(Transpose);
impl<T: Float> Backward<T> for MatMulBiasRule {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        if let Some(grads) = self.weight_and_bias_in_one_pass(ctx, g) {
            return grads;
        }
        let mut grads = MatMulRule(self.0).backward(ctx, g);
        grads.push(ctx.needs_grad(2).then(|| g.sum_to_like(ctx.input(2))));
        grads
    }
}

impl MatMulBiasRule {
    /// First order, for a conv's shapes (a shared weight `[m, k]` with `k` at most `SKINNY`, a
    /// batch of columns `[batch, k, l]`, a per-row bias `[m, 1]`): the weight and bias
    /// gradients from one pass over G ([`matmul::matmul_nt_with_row_sums`]); the columns'
    /// gradient, if wanted, as in [`MatMulRule`]. `None` where that does not apply.
    fn weight_and_bias_in_one_pass<'t, T: Float>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> Option<InputGrads<'t, T>> {
        let (a, b, bias) = (ctx.input(0), ctx.input(1), ctx.input(2));
        let (sa, sb, sbias) = (a.shape(), b.shape(), bias.shape());
        let fits = match (sa.dims(), sb.dims(), sbias.dims()) {
            (&[m, k], &[_, kb, _], &[mb, 1]) => k == kb && m == mb && k <= matmul::SKINNY,
            _ => false,
        };
        if ctx.records_graph() || self.0 != Transpose::NN || !fits || !ctx.needs_grad(0) || !ctx.needs_grad(2) {
            return None;
        }
        let (dw, rows) = g.with_values(&b, "matmul_bias", |gv, bv| matmul::matmul_nt_with_row_sums(gv, bv)).or_panic();
        let db = ctx.constant(rows.reshape(sbias));
        let dcols = ctx.needs_grad(1).then(|| a.matmul_t(g, Transpose::TN).sum_to_like(b));
        Some(smallvec::smallvec![Some(ctx.constant(dw)), dcols, Some(db)])
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// `op(self)·op(other)` for operands of 2+ dims with broadcast batch dims, where `t` says
    /// which operand is used transposed (read in place, never copied).
    ///
    /// ```
    /// use wengert_core::{kernels::matmul::Transpose, Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let x = tape.constant(Tensor::ones([4, 3]));
    /// let w = tape.var(Tensor::ones([5, 3]));          // stored as [out, in]
    /// assert_eq!(x.matmul_t(w, Transpose::NT).shape().dims(), &[4, 5]);
    /// ```
    #[track_caller]
    pub fn matmul_t(self, other: Var<'t, T>, t: Transpose) -> Var<'t, T> {
        let v = self.with_values(&other, "matmul", |a, b| matmul::matmul_t(a, b, t)).or_panic();
        self.tape.push_op("matmul", v, &[self, other], MatMulRule(t))
    }

    /// `op(self)·op(other) + bias` as one op, where `bias` is `[m, 1]` (one value per row of
    /// each product: a conv's `weight · columns + b`) or `[n]` (one per column: a linear
    /// layer's `x · Wᵀ + b`). Same value and gradients as `matmul_t` then `+ bias`, but the
    /// bias is added to each block of the product while it is in cache: `conv2d` uses it and
    /// saves a 2.8 MB pass on 32x1x28x28 with 32 filters (conv step 400-414 -> 385-395 µs);
    /// `nn::Linear` uses it too (digits MLP epoch 2.5% faster, 4 of 4 alternating runs).
    /// Gradient of the bias: the output's gradient summed to its shape.
    ///
    /// ```
    /// use wengert_core::{kernels::matmul::Transpose, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(Tensor::ones([4, 3]));
    /// let w = tape.var(Tensor::ones([5, 3]));
    /// let b = tape.var(Tensor::from_slice(&[0.0, 1.0, 2.0, 3.0, 4.0]));
    /// let y = x.matmul_t_bias(w, Transpose::NT, b);
    /// assert_eq!(y.value().get(&[0, 4]), 7.0);
    /// assert_eq!(y.sum().backward().wrt(b).to_vec(), vec![4.0; 5]);
    /// ```
    #[track_caller]
    pub fn matmul_t_bias(self, other: Var<'t, T>, t: Transpose, bias: Var<'t, T>) -> Var<'t, T> {
        self.same_tape(&other, "matmul_bias");
        self.same_tape(&bias, "matmul_bias");
        let v = {
            let nodes = self.tape.nodes.borrow();
            matmul::matmul_t_bias(nodes[self.id].value(), nodes[other.id].value(), t, nodes[bias.id].value()).or_panic()
        };
        self.tape.push_op("matmul_bias", v, &[self, other, bias], MatMulBiasRule(t))
    }

    /// Matrix product with NumPy semantics: 1-D operands are a row (left) or column (right)
    /// vector, leading batch dims broadcast. Shapes `[.., m, k] · [.., k, n] -> [.., m, n]`.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::new(vec![1.0, 2.0, 3.0, 4.0], [2, 2]));
    /// let x = tape.var(Tensor::from_slice(&[1.0, 1.0]));
    /// let y = a.matmul(x).sum();                   // Σ_i Σ_j a_ij x_j
    /// let g = y.backward();
    /// assert_eq!(g.wrt(x).to_vec(), vec![4.0, 6.0]);   // column sums of a
    /// ```
    #[track_caller]
    pub fn matmul(self, other: Var<'t, T>) -> Var<'t, T> {
        let (sa, sb) = (self.shape(), other.shape());
        if sa.ndim() >= 2 && sb.ndim() >= 2 {
            return self.matmul_t(other, Transpose::NN);
        }
        // Check shapes with the NumPy-semantics kernel so errors show the caller's shapes.
        let out = self.with_values(&other, "matmul", |a, b| matmul::matmul(a, b).map(|c| c.shape().clone())).or_panic();
        let a2 = if sa.ndim() == 1 { self.reshape([1, sa[0]]) } else { self };
        let b2 = if sb.ndim() == 1 { other.reshape([sb[0], 1]) } else { other };
        a2.matmul_t(b2, Transpose::NN).reshape(out)
    }
}
