//! Scaled dot-product attention, composed of `matmul_t`, `where_` and `softmax`, so its
//! gradients (of every order) come from those ops' rules; and the causal mask.

use crate::element::Float;
use crate::kernels::matmul::Transpose;
use crate::shape::Shape;
use crate::tensor::Tensor;
use crate::var::Var;

const OP: &str = "scaled_dot_product_attention";

/// The `[len, len]` mask of a causal (autoregressive) model: entry `[i, j]` is `true` when
/// `j > i`, i.e. query `i` may not attend to the later key `j` (PyTorch's boolean
/// `attn_mask` convention, `true` = masked out).
///
/// ```
/// use wengert_core::Tensor;
/// let m = Tensor::causal_mask(3);
/// assert_eq!(m.to_vec(), vec![false, true, true, false, false, true, false, false, false]);
/// ```
pub fn causal_mask(len: usize) -> Tensor<bool> {
    Tensor::from_fn([len, len], |i| i[1] > i[0])
}

impl Tensor<bool> {
    /// [`causal_mask`] as an associated function: `[len, len]`, `true` above the diagonal.
    ///
    /// ```
    /// use wengert_core::{causal_mask, Tensor};
    /// let m = Tensor::causal_mask(4);
    /// assert_eq!(m.dims(), &[4, 4]);
    /// assert_eq!(m, causal_mask(4));
    /// assert_eq!(m.as_slice().iter().filter(|&&masked| masked).count(), 6); // 4·3/2 future positions
    /// ```
    pub fn causal_mask(len: usize) -> Tensor<bool> {
        causal_mask(len)
    }
}

/// Panics naming the op and all shapes involved.
#[track_caller]
fn shape_error(shapes: &[&Shape], reason: impl std::fmt::Display) -> ! {
    let list: Vec<String> = shapes.iter().map(|s| s.to_string()).collect();
    panic!("wengert: {OP}: {reason}: shapes {}", list.join(" and "))
}

impl<'t, T: Float> Var<'t, T> {
    /// Attention of queries `self` over keys `k` and values `v`:
    ///
    /// `softmax(q·kᵀ/√d + M)·v`, with `M[i, j] = -∞` where `mask[i, j]` is `true` (that key is
    /// hidden from that query) and 0 elsewhere.
    ///
    /// Shapes: `q [.., Lq, d]`, `k [.., Lk, d]`, `v [.., Lk, dv]` give `[.., Lq, dv]`; the
    /// leading (batch) dims of the three broadcast, NumPy style. `mask` must broadcast to
    /// `[.., Lq, Lk]` (e.g. `[Lq, Lk]` shared by the batch, or `[B, 1, 1, Lk]` for padding).
    /// kᵀ is read in place by `matmul_t` (no copy). Masked scores are set with
    /// [`Var::where_`], so no gradient reaches them; a row whose keys are *all* masked is NaN,
    /// as in PyTorch (keep at least one key visible per query). Anomaly detection accepts the
    /// -∞ scores (it flags NaN in forward values, NaN or ±∞ in gradients).
    ///
    /// With P = softmax(S), S = q·kᵀ/√d: ∂/∂v = Pᵀ·G, ∂/∂P = G·vᵀ, ∂/∂S = P ⊙ (∂P - Σⱼ ∂P ⊙ P),
    /// ∂/∂q = ∂S·k/√d, ∂/∂k = ∂Sᵀ·q/√d — all recorded by the composing ops.
    ///
    /// Panics (naming the op and the shapes) when an operand has fewer than 2 dims, when q and k
    /// differ in `d`, when k and v differ in `Lk`, when batch dims do not broadcast, or when the
    /// mask does not broadcast to the scores.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let q = tape.var(Tensor::new(vec![1.0, 0.0], [1, 2]));         // one query, d = 2
    /// let k = tape.var(Tensor::new(vec![1.0, 0.0, 0.0, 1.0], [2, 2])); // two keys
    /// let v = tape.var(Tensor::new(vec![10.0, 20.0], [2, 1]));          // their values
    /// // scores [1/√2, 0]: weights softmax([0.707, 0]) = [0.670, 0.330]
    /// let out = q.scaled_dot_product_attention(k, v, None);
    /// let w0 = 1.0 / (1.0 + (-1.0f64 / 2f64.sqrt()).exp());
    /// assert!((out.item() - (10.0 * w0 + 20.0 * (1.0 - w0))).abs() < 1e-12);
    /// // hiding key 0 leaves only key 1's value
    /// let mask = Tensor::new(vec![true, false], [1, 2]);
    /// assert_eq!(q.scaled_dot_product_attention(k, v, Some(&mask)).item(), 20.0);
    /// ```
    #[track_caller]
    pub fn scaled_dot_product_attention(self, k: Var<'t, T>, v: Var<'t, T>, mask: Option<&Tensor<bool>>) -> Var<'t, T> {
        let (sq, sk, sv) = (self.shape(), k.shape(), v.shape());
        if sq.ndim() < 2 || sk.ndim() < 2 || sv.ndim() < 2 {
            shape_error(&[&sq, &sk, &sv], "q, k and v need at least 2 dims ([.., L, d])");
        }
        let (lq, d) = (sq[sq.ndim() - 2], sq[sq.ndim() - 1]);
        let (lk, dk) = (sk[sk.ndim() - 2], sk[sk.ndim() - 1]);
        let lv = sv[sv.ndim() - 2];
        if d != dk {
            shape_error(&[&sq, &sk, &sv], format!("q and k must have the same last dim d ({d} vs {dk})"));
        }
        if lk != lv {
            shape_error(&[&sq, &sk, &sv], format!("k and v must have the same number of keys ({lk} vs {lv})"));
        }
        let batch = |s: &Shape| Shape::new(&s[..s.ndim() - 2]);
        let batch_qk = Shape::broadcast(OP, &batch(&sq), &batch(&sk))
            .and_then(|b| Shape::broadcast(OP, &b, &batch(&sv)))
            .unwrap_or_else(|_| shape_error(&[&sq, &sk, &sv], "batch dims do not broadcast"));
        if let Some(m) = mask {
            let mut scores = batch_qk.to_vec();
            scores.extend([lq, lk]);
            let scores = Shape::new(&scores);
            let ok = Shape::broadcast(OP, m.shape(), &scores).map(|b| b[b.ndim() - 2..] == [lq, lk]);
            if ok != Ok(true) {
                shape_error(&[&sq, &sk, &sv, m.shape()], format!("mask must broadcast to the scores [.., {lq}, {lk}]"));
            }
        }
        let scale = 1.0 / (d.max(1) as f64).sqrt();
        let scores = (self * scale).matmul_t(k, Transpose::NT);
        let scores = match mask {
            Some(m) => Var::where_(m, self.tape.scalar(T::NEG_INFINITY), scores),
            None => scores,
        };
        scores.softmax(-1).matmul(v)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Tape, Tensor};

    #[test]
    fn weights_are_a_softmax_and_causal_rows_ignore_the_future() {
        let tape = Tape::<f64>::new();
        let q = tape.var(Tensor::from_fn([2, 3, 2], |i| (i[0] + 2 * i[1] + i[2]) as f64 * 0.3));
        let k = tape.var(Tensor::from_fn([2, 3, 2], |i| (i[0] * 3 + i[1] + 2 * i[2]) as f64 * -0.2));
        // v = I makes the output the attention weights themselves
        let eye = tape.constant(Tensor::eye(3));
        let w = q.scaled_dot_product_attention(k, eye, Some(&super::causal_mask(3))).value();
        assert_eq!(w.dims(), &[2, 3, 3]);
        for b in 0..2 {
            for i in 0..3 {
                let row: Vec<f64> = (0..3).map(|j| w.get(&[b, i, j])).collect();
                assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!(row[i + 1..].iter().all(|&x| x == 0.0), "{row:?}");
            }
            assert_eq!(w.get(&[b, 0, 0]), 1.0);
        }
    }

    #[test]
    #[should_panic(expected = "wengert: scaled_dot_product_attention: q and k must have the same last dim d (2 vs 3): shapes [4, 2] and [5, 3] and [5, 1]")]
    fn names_the_op_and_shapes() {
        let tape = Tape::<f32>::new();
        let q = tape.var(Tensor::zeros([4, 2]));
        let k = tape.var(Tensor::zeros([5, 3]));
        let v = tape.var(Tensor::zeros([5, 1]));
        let _ = q.scaled_dot_product_attention(k, v, None);
    }

    #[test]
    #[should_panic(expected = "mask must broadcast to the scores [.., 4, 5]")]
    fn rejects_a_mask_of_the_wrong_shape() {
        let tape = Tape::<f32>::new();
        let q = tape.var(Tensor::zeros([4, 2]));
        let k = tape.var(Tensor::zeros([5, 2]));
        let _ = q.scaled_dot_product_attention(k, k, Some(&Tensor::full([4, 4], false)));
    }
}
