//! Layer normalisation as one op (`kernels::norm`): one pass over each row forward and one
//! back, where the composed form (mean, subtract, square, mean, add, sqrt, divide, scale,
//! shift) made a pass over memory per op each way.

use smallvec::smallvec;

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::kernels::norm;
use crate::tensor::Tensor;
use crate::var::Var;

/// y = layer_norm(x)·γ + β over rows of `len`; inputs `[x, γ?, β?]` as `has`.
struct LayerNormRule<T: Float> {
    len: usize,
    eps: f64,
    has_weight: bool,
    has_bias: bool,
    /// each row's mean and 1/√(σ² + ε), from the forward
    mean: Tensor<T>,
    r: Tensor<T>,
}

impl<T: Float> Backward<T> for LayerNormRule<T> {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let x = ctx.input(0);
        let weight = self.has_weight.then(|| ctx.input(1));
        let bias_at = 1 + self.has_weight as usize;
        let (rows, len) = (self.mean.numel(), self.len);
        if ctx.records_graph() {
            // recorded with Var ops (x̂ recomputed), so it can be differentiated again
            let (x2, g2) = (x.reshape([rows, len]), g.reshape([rows, len]));
            let mean = x2.mean_axes(&[1], true);
            let c = x2 - mean;
            let r = (c.square().mean_axes(&[1], true) + self.eps).sqrt().recip();
            let xhat = c * r;
            let d = weight.map_or(g2, |w| g2 * w.reshape([len]));
            let dx = (d - d.mean_axes(&[1], true) - xhat * (d * xhat).mean_axes(&[1], true)) * r;
            let mut grads: InputGrads<'t, T> = smallvec![ctx.needs_grad(0).then(|| dx.reshape(x.shape()))];
            if let Some(w) = weight {
                grads.push(ctx.needs_grad(1).then(|| (g2 * xhat).sum_axes(&[0], false).reshape(w.shape())));
            }
            if self.has_bias {
                grads.push(ctx.needs_grad(bias_at).then(|| g2.sum_axes(&[0], false).reshape(ctx.input(bias_at).shape())));
            }
            return grads;
        }
        let (dx, dw, db) = g.with_value(|gv| {
            let xv = x.value();
            let wv = weight.map(|w| w.value());
            norm::layer_norm_backward(gv, &xv, &self.mean, &self.r, wv.as_ref(), len)
        });
        let mut grads: InputGrads<'t, T> = smallvec![ctx.needs_grad(0).then(|| ctx.constant(dx))];
        if let Some(w) = weight {
            grads.push(ctx.needs_grad(1).then(|| ctx.constant(dw.reshape(w.shape()))));
        }
        if self.has_bias {
            grads.push(ctx.needs_grad(bias_at).then(|| ctx.constant(db.reshape(ctx.input(bias_at).shape()))));
        }
        grads
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Layer normalisation over the last `len` elements (a whole number of trailing dims,
    /// PyTorch's `normalized_shape`): each row `x` of `len` becomes
    /// `(x − μ)/√(σ² + ε)·γ + β`, μ and σ² the row's mean and biased variance; `weight` γ and
    /// `bias` β (each `len` elements, any shape) are optional. One op: one pass over each row
    /// forward and one back (`kernels::norm`); with `Tape::grad_graph` its gradient is recorded
    /// with `Var` ops, so it can be differentiated again.
    ///
    /// Panics naming the op and the shapes when `len` is not a whole number of trailing dims of
    /// `self`, or γ or β does not hold `len` elements.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 3.0, 2.0, 6.0], [2, 2]));
    /// let w = tape.var(Tensor::from_slice(&[2.0, 1.0]));
    /// let y = x.layer_norm(2, Some(w), None, 0.0); // x̂ = [-1, 1] in both rows, times γ
    /// assert_eq!(y.value().to_vec(), vec![-2.0, 1.0, -2.0, 1.0]);
    /// // ∂Σy/∂γ = Σ over rows of x̂
    /// assert_eq!(y.sum().backward().wrt(w).to_vec(), vec![-2.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn layer_norm(self, len: usize, weight: Option<Var<'t, T>>, bias: Option<Var<'t, T>>, eps: f64) -> Var<'t, T> {
        for p in weight.iter().chain(bias.iter()) {
            self.same_tape(p, "layer_norm");
        }
        let (y, mean, r) = {
            let nodes = self.tape.nodes.borrow();
            let (wv, bv) = (weight.map(|w| nodes[w.id].value()), bias.map(|b| nodes[b.id].value()));
            norm::layer_norm(nodes[self.id].value(), len, wv, bv, eps).or_panic()
        };
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        let rule = LayerNormRule { len, eps, has_weight: weight.is_some(), has_bias: bias.is_some(), mean, r };
        self.tape.push_op("layer_norm", y, &inputs, rule)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Tape, Tensor, Var};

    /// The composed form the op replaces, in `Var` ops.
    fn composed<'t>(x: Var<'t, f64>, axes: &[isize], w: Var<'t, f64>, b: Var<'t, f64>, eps: f64) -> Var<'t, f64> {
        let c = x - x.mean_axes(axes, true);
        c / (c.square().mean_axes(axes, true) + eps).sqrt() * w + b
    }

    #[test]
    fn equals_the_composed_form_in_value_and_gradients() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_fn([3, 2, 5], |i| ((i[0] * 7 + i[1] * 3 + i[2] * 11) % 13) as f64 * 0.3 - 1.7));
        let w = tape.var(Tensor::from_fn([2, 5], |i| 0.5 + (i[0] + i[1]) as f64 * 0.1));
        let b = tape.var(Tensor::from_fn([2, 5], |i| (i[0] * 5 + i[1]) as f64 * 0.05 - 0.2));
        let g = tape.constant(Tensor::from_fn([3, 2, 5], |i| (i[0] + 2 * i[1] + 3 * i[2]) as f64 * 0.1 - 0.6));
        let fused = x.layer_norm(10, Some(w), Some(b), 1e-5);
        let plain = composed(x, &[-2, -1], w, b, 1e-5);
        assert!(fused.value().allclose(&plain.value(), 1e-13, 1e-13));
        let (gf, gp) = ((fused * g).sum().backward(), (plain * g).sum().backward());
        for v in [x, w, b] {
            assert!(gf.wrt(v).allclose(&gp.wrt(v), 1e-12, 1e-12), "{} vs {}", gf.wrt(v), gp.wrt(v));
        }
    }

    #[test]
    fn f32_rows_split_across_threads_match_f64() {
        // 256 rows of 384 (the MiniLM hidden size): more than one task's share
        let x = Tensor::<f64>::from_fn([256, 384], |i| ((i[0] * 31 + i[1] * 17) % 101) as f64 / 50.0 - 1.0);
        let w = Tensor::<f64>::from_fn([384], |i| 1.0 + i[0] as f64 / 384.0);
        let (want, _, _) = crate::kernels::norm::layer_norm(&x, 384, Some(&w), None, 1e-12).unwrap();
        let (got, _, _) = crate::kernels::norm::layer_norm(&x.cast(|v| v as f32), 384, Some(&w.cast(|v| v as f32)), None, 1e-12).unwrap();
        let worst = got.to_vec().iter().zip(want.to_vec()).map(|(&a, b)| (a as f64 - b).abs()).fold(0.0, f64::max);
        assert!(worst < 2e-6, "{worst}");
    }

    #[test]
    #[should_panic(expected = "wengert: layer_norm: 3 elements are not a whole number of trailing dims")]
    fn names_the_op_and_shapes_when_len_is_not_trailing_dims() {
        let tape = Tape::<f32>::new();
        let _ = tape.var(Tensor::zeros([2, 4])).layer_norm(3, None, None, 1e-5);
    }

    #[test]
    #[should_panic(expected = "weight and bias must hold the 4 normalised elements")]
    fn rejects_a_weight_of_the_wrong_size() {
        let tape = Tape::<f32>::new();
        let w = tape.var(Tensor::ones([3]));
        let _ = tape.var(Tensor::zeros([2, 4])).layer_norm(4, Some(w), None, 1e-5);
    }
}
