//! Attention, transformer and batch-norm blocks: gradients of `scaled_dot_product_attention`
//! (first and second order, masks, broadcast batch dims) and of every layer's parameters and
//! inputs against finite differences, forward values against hand computation, masks, train
//! vs eval behaviour, running statistics, and a short run of the `attention_sequence` example.

// The check! macros clone each input into the slice gradcheck takes, whatever their count.
#![allow(clippy::cloned_ref_to_slice_refs)]

#[macro_use]
mod common;
use common::cfg;

use proptest::collection::vec;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wengert::core::testing::tensor_of;
use wengert::core::{Tape, Tensor, Var};
use wengert::nn::init::manual_seed;
use wengert::nn::prelude::{
    BatchNorm1d, BatchNorm2d, BatchNormConfig, GroupNorm, LayerNorm, LayerNormConfig, LearnedPositionalEncoding, Module, MultiheadAttention, MultiheadAttentionConfig,
    SinusoidalPositionalEncoding, TransformerActivation, TransformerEncoderLayer, TransformerEncoderLayerConfig,
};

#[path = "../examples/attention_sequence.rs"]
mod attention_sequence;




/// A deterministic pseudo-random tensor in [-1, 1).
fn rand_tensor(shape: &[usize], seed: u64) -> Tensor<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Tensor::from_fn(shape, |_| rng.gen_range(-1.0..1.0))
}

/// A random mask of `shape` (last two dims [Lq, Lk]) with at least one visible key per row.
fn rand_mask(shape: &[usize], seed: u64) -> Tensor<bool> {
    let mut rng = StdRng::seed_from_u64(seed);
    let lk = *shape.last().unwrap();
    let mut m: Vec<bool> = (0..shape.iter().product()).map(|_| rng.gen_bool(0.4)).collect();
    for row in m.chunks_mut(lk) {
        row[rng.gen_range(0..lk)] = false;
    }
    Tensor::new(m, shape)
}

/// The mask with key 0 visible in every row.
fn keep_first_key(m: Tensor<bool>) -> Tensor<bool> {
    Tensor::from_fn(m.shape(), |i| i[i.len() - 1] != 0 && m.get(i))
}

// ---------------------------------------------------------------- scaled dot-product attention

/// q, k, v with broadcasting batch dims (k has some set to 1, v drops the leading one) and
/// maybe a mask of one of three broadcastable shapes.
type Case = (Tensor<f64>, Tensor<f64>, Tensor<f64>, Option<Tensor<bool>>);

fn sdpa_case() -> impl Strategy<Value = Case> {
    (vec(1usize..3, 0..=2), 1usize..4, 1usize..4, 1usize..4, 1usize..3, any::<u64>(), 0usize..4).prop_flat_map(
        |(batch, lq, lk, d, dv, seed, mask_kind)| {
            let with = |b: &[usize], x: usize, y: usize| [b, &[x, y][..]].concat();
            let kb: Vec<usize> = batch.iter().enumerate().map(|(i, &n)| if (seed >> i) & 1 == 1 { 1 } else { n }).collect();
            let vb: Vec<usize> = batch.iter().skip(1).copied().collect();
            let mask = match mask_kind {
                0 => None,
                1 => Some(rand_mask(&[lq, lk], seed)),
                2 => Some(rand_mask(&[1, lk], seed)),
                _ => Some(rand_mask(&with(&batch, lq, lk), seed)),
            };
            (
                tensor_of(with(&batch, lq, d), -1.5, 1.5),
                tensor_of(with(&kb, lk, d), -1.5, 1.5),
                tensor_of(with(&vb, lk, dv), -1.5, 1.5),
                Just(mask),
            )
        },
    )
}

proptest! {
    #![proptest_config(cfg(48))]

    #[test]
    fn sdpa_gradients_wrt_q_k_v((q, k, v, mask) in sdpa_case()) {
        let m = mask.as_ref();
        check!(|x| x[0].scaled_dot_product_attention(x[1], x[2], m), q, k, v);
    }
}

proptest! {
    #![proptest_config(cfg(12))]

    #[test]
    fn sdpa_second_order_gradients((q, k, v, mask) in sdpa_case()) {
        let m = mask.as_ref();
        check2!(|x| x[0].scaled_dot_product_attention(x[1], x[2], m), q, k, v);
    }
}

#[test]
fn sdpa_forward_matches_hand_computation() {
    // q: 2 queries, k/v: 3 keys, d = 2; scores q·kᵀ/√2
    let tape = Tape::<f64>::new();
    let q = tape.constant(Tensor::new(vec![1.0, 0.0, 0.0, 2.0], [2, 2]));
    let k = tape.constant(Tensor::new(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], [3, 2]));
    let v = tape.constant(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2]));
    let s = 1.0 / 2f64.sqrt();
    // query 0 scores [1, 0, 1]·s, query 1 scores [0, 2, 2]·s
    let softmax = |z: [f64; 3]| {
        let e = z.map(|x| x.exp());
        let t: f64 = e.iter().sum();
        e.map(|x| x / t)
    };
    let p0 = softmax([s, 0.0, s]);
    let p1 = softmax([0.0, 2.0 * s, 2.0 * s]);
    let expect = [
        p0[0] * 1.0 + p0[1] * 3.0 + p0[2] * 5.0,
        p0[0] * 2.0 + p0[1] * 4.0 + p0[2] * 6.0,
        p1[0] * 1.0 + p1[1] * 3.0 + p1[2] * 5.0,
        p1[0] * 2.0 + p1[1] * 4.0 + p1[2] * 6.0,
    ];
    let out = q.scaled_dot_product_attention(k, v, None).value();
    assert_eq!(out.dims(), &[2, 2]);
    for (a, b) in out.as_slice().iter().zip(expect) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    // masking key 2 for query 0 and key 0 for query 1
    let mask = Tensor::new(vec![false, false, true, true, false, false], [2, 3]);
    let out = q.scaled_dot_product_attention(k, v, Some(&mask)).value();
    let (w0, w1) = (s.exp() / (s.exp() + 1.0), 0.5);
    let expect = [w0 * 1.0 + (1.0 - w0) * 3.0, w0 * 2.0 + (1.0 - w0) * 4.0, w1 * 3.0 + w1 * 5.0, w1 * 4.0 + w1 * 6.0];
    for (a, b) in out.as_slice().iter().zip(expect) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}

#[test]
fn causal_mask_zeroes_the_future() {
    let (b, l, d) = (2, 5, 3);
    let mask = Tensor::causal_mask(l);
    let tape = Tape::<f64>::new();
    let q = tape.var(rand_tensor(&[b, l, d], 1));
    let k = tape.var(rand_tensor(&[b, l, d], 2));
    // v = I: the output is the attention weights
    let w = q.scaled_dot_product_attention(k, tape.constant(Tensor::eye(l)), Some(&mask)).value();
    for bi in 0..b {
        for i in 0..l {
            let row: Vec<f64> = (0..l).map(|j| w.get(&[bi, i, j])).collect();
            assert!(row[i + 1..].iter().all(|&x| x == 0.0), "row {i} attends to the future: {row:?}");
            assert!(row[..=i].iter().all(|&x| x > 0.0));
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
    // output at position 1 gets no gradient from keys or values at positions 2..
    let v = tape.var(rand_tensor(&[b, l, d], 3));
    let out = q.scaled_dot_product_attention(k, v, Some(&mask));
    let g = out.narrow(1, 1, 1).sum().backward();
    for t in [g.wrt(k), g.wrt(v)] {
        for bi in 0..b {
            for j in 2..l {
                assert!((0..d).all(|c| t.get(&[bi, j, c]) == 0.0));
            }
        }
    }
}

// ---------------------------------------------------------------- layer parameter gradients

/// The public parameter gradcheck (d(Σ f(m)·r)/dθ against central differences for every
/// parameter θ), as a proptest failure.
fn check_params<M: Module<f64>>(m: &mut M, f: impl for<'t> Fn(&M, &'t Tape<f64>) -> Var<'t, f64>) -> Result<(), TestCaseError> {
    wengert::nn::gradcheck::check_params(m, f).map_err(|e| TestCaseError::fail(e.to_string()))
}

/// Moves every parameter off its initial value (zero biases, unit norm weights) so each
/// gradient is exercised at a generic point.
fn perturb<M: Module<f64>>(m: &mut M, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (_, p) in m.named_params_mut() {
        p.value_mut().data_mut().iter_mut().for_each(|w| *w += rng.gen_range(-0.3..0.3));
    }
}

proptest! {
    #![proptest_config(cfg(8))]

    #[test]
    fn multihead_attention_gradients(b in 1usize..3, lq in 1usize..4, lk in 1usize..4, heads in 1usize..3, seed in 0u64..1000) {
        manual_seed(seed);
        let e = 2 * heads;
        let mut mha = MultiheadAttention::<f64>::new(e, heads);
        perturb(&mut mha, seed);
        let x = rand_tensor(&[b, lq, e], seed + 1);
        let kv = rand_tensor(&[b, lk, e], seed + 2);
        // key 0 stays visible to every query, so no row is fully masked by the OR of the two
        let kpm = keep_first_key(rand_mask(&[b, lk], seed + 3));
        let am = keep_first_key(rand_mask(&[lq, lk], seed + 4));
        check_params(&mut mha, |m, t| m.forward(t.constant(x.clone())))?;
        check_params(&mut mha, |m, t| {
            let kv = t.constant(kv.clone());
            m.forward_qkv(t.constant(x.clone()), kv, kv, Some(&am), Some(&kpm))
        })?;
        // inputs: self-attention (fused projection) and cross-attention with masks
        check!(|v| mha.forward(v[0]), x);
        check!(|v| mha.forward_qkv(v[0], v[1], v[2], Some(&am), Some(&kpm)), x, kv, kv);
        // the returned attention weights: their gradient to the inputs and parameters
        check!(|v| mha.forward_qkv_with_weights(v[0], v[1], v[2], Some(&am), Some(&kpm), true).1, x, kv, kv);
        // (the weights alone do not reach out_proj, so the output joins them)
        let r = rand_tensor(&[b, heads, lq, lk], seed + 5);
        check_params(&mut mha, |m, t| {
            let kv = t.constant(kv.clone());
            let (out, w) = m.forward_qkv_with_weights(t.constant(x.clone()), kv, kv, None, Some(&kpm), false);
            (w * t.constant(r.clone())).sum() + out.sum()
        })?;
    }

    /// The weights returned beside the output: the output is the fused path's, each row sums
    /// to 1, masked keys weigh 0, and the average is the mean of the per-head weights.
    #[test]
    fn multihead_attention_returns_its_weights(b in 1usize..3, lq in 1usize..4, lk in 1usize..4, heads in 1usize..3, seed in 0u64..1000) {
        manual_seed(seed);
        let e = 2 * heads;
        let mut mha = MultiheadAttention::<f64>::new(e, heads);
        perturb(&mut mha, seed);
        let (x, kv) = (rand_tensor(&[b, lq, e], seed + 1), rand_tensor(&[b, lk, e], seed + 2));
        let kpm = keep_first_key(rand_mask(&[b, lk], seed + 3));
        let tape = Tape::new();
        let (q, kv) = (tape.constant(x), tape.constant(kv));
        let fused = mha.forward_qkv(q, kv, kv, None, Some(&kpm)).value();
        let (out, avg) = mha.forward_qkv_with_weights(q, kv, kv, None, Some(&kpm), true);
        let (_, per_head) = mha.forward_qkv_with_weights(q, kv, kv, None, Some(&kpm), false);
        prop_assert!(out.value().as_slice().iter().zip(fused.as_slice()).all(|(a, b)| (a - b).abs() < 1e-12));
        prop_assert_eq!(avg.shape().dims().to_vec(), vec![b, lq, lk]);
        prop_assert_eq!(per_head.shape().dims().to_vec(), vec![b, heads, lq, lk]);
        let (avg, per_head) = (avg.value(), per_head.value());
        for bi in 0..b {
            for i in 0..lq {
                let row = &avg.as_slice()[(bi * lq + i) * lk..][..lk];
                prop_assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                for (j, &wj) in row.iter().enumerate() {
                    if kpm.as_slice()[bi * lk + j] {
                        prop_assert_eq!(wj, 0.0);
                    }
                    let mean = (0..heads).map(|hd| per_head.as_slice()[((bi * heads + hd) * lq + i) * lk + j]).sum::<f64>() / heads as f64;
                    prop_assert!((wj - mean).abs() < 1e-15);
                }
            }
        }
    }

    #[test]
    fn transformer_encoder_layer_gradients(b in 1usize..3, l in 1usize..4, norm_first in any::<bool>(), gelu in any::<bool>(), seed in 0u64..1000) {
        manual_seed(seed);
        let activation = if gelu { TransformerActivation::Gelu } else { TransformerActivation::Relu };
        let cfg = TransformerEncoderLayerConfig { dim_feedforward: 5, dropout: 0.1, activation, norm_first, ..TransformerEncoderLayerConfig::new(4, 2) };
        let mut layer = TransformerEncoderLayer::<f64>::with_config(cfg);
        layer.eval(); // dropout off
        perturb(&mut layer, seed);
        let x = rand_tensor(&[b, l, 4], seed + 1);
        let mask = rand_mask(&[l, l], seed + 2);
        check_params(&mut layer, |m, t| m.forward(t.constant(x.clone())))?;
        check_params(&mut layer, |m, t| m.forward_masked(t.constant(x.clone()), Some(&mask), None))?;
        check!(|v| layer.forward_masked(v[0], Some(&mask), None), x);
    }

    #[test]
    fn batch_norm_gradients_in_training_mode(n in 2usize..4, c in 1usize..4, l in 1usize..3, seed in 0u64..1000) {
        let x2 = rand_tensor(&[n, c], seed);
        let x3 = rand_tensor(&[n, c, l], seed + 1);
        let x4 = rand_tensor(&[n, c, l, 2], seed + 2);
        let mut bn1 = BatchNorm1d::<f64>::new(c);
        perturb(&mut bn1, seed);
        check_params(&mut bn1, |m, t| m.forward(t.constant(x2.clone())))?;
        check_params(&mut bn1, |m, t| m.forward(t.constant(x3.clone())))?;
        check!(|v| bn1.forward(v[0]), x2);
        check!(|v| bn1.forward(v[0]), x3);
        let mut bn2 = BatchNorm2d::<f64>::new(c);
        perturb(&mut bn2, seed + 3);
        check_params(&mut bn2, |m, t| m.forward(t.constant(x4.clone())))?;
        check!(|v| bn2.forward(v[0]), x4);
        // eval mode: an affine map of x with the running statistics
        bn2.eval();
        check_params(&mut bn2, |m, t| m.forward(t.constant(x4.clone())))?;
        check!(|v| bn2.forward(v[0]), x4);
    }

    #[test]
    fn group_norm_gradients(n in 1usize..3, groups in 1usize..3, per in 1usize..3, l in 1usize..3, seed in 0u64..1000) {
        let c = groups * per;
        let x3 = rand_tensor(&[n, c, l], seed);
        let x4 = rand_tensor(&[n, c, l, 2], seed + 1);
        let mut gn = GroupNorm::<f64>::new(groups, c);
        perturb(&mut gn, seed);
        if per * l > 1 {
            // a group of one value normalises to 0 whatever it is: nothing to check there
            check_params(&mut gn, |m, t| m.forward(t.constant(x3.clone())))?;
            check!(|v| gn.forward(v[0]), x3);
        }
        check_params(&mut gn, |m, t| m.forward(t.constant(x4.clone())))?;
        check!(|v| gn.forward(v[0]), x4);
        check2!(|v| gn.forward(v[0]).square(), x4);
    }

    #[test]
    fn positional_encoding_gradients(b in 1usize..3, l in 1usize..5, seed in 0u64..1000) {
        manual_seed(seed);
        let mut pe = LearnedPositionalEncoding::<f64>::new(5, 3);
        let x = rand_tensor(&[b, l, 3], seed);
        check_params(&mut pe, |m, t| m.forward(t.constant(x.clone())).square())?;
        let sin = SinusoidalPositionalEncoding::<f64>::new(5, 3);
        check!(|v| sin.forward(v[0]).square(), x);
    }
}

// ---------------------------------------------------------------- multi-head attention values

/// Multi-head attention written out with loops over batches, heads and positions, from the
/// layer's parameter values: the reference the layer's reshapes and permutes must match.
fn reference_mha(m: &MultiheadAttention<f64>, q: &Tensor<f64>, k: &Tensor<f64>, v: &Tensor<f64>, hidden: impl Fn(usize, usize, usize) -> bool) -> Tensor<f64> {
    let (b, lq, e) = (q.dims()[0], q.dims()[1], q.dims()[2]);
    let lk = k.dims()[1];
    let h = m.num_heads();
    let dh = e / h;
    let bias = m.in_proj_bias.as_ref().unwrap().value();
    let wo = m.out_proj.weight.value();
    let bo = m.out_proj.bias.as_ref().unwrap().value();
    // projection `which` (0 q, 1 k, 2 v) of row (bi, t), output feature o (0..3E as stacked):
    // rows of the stacked in_proj_weight, or of q/k/v_proj_weight when kdim/vdim are set
    let separate = [&m.q_proj_weight, &m.k_proj_weight, &m.v_proj_weight];
    let proj = |x: &Tensor<f64>, bi: usize, t: usize, o: usize| {
        let which = o / e;
        let (w, row) = match separate[which] {
            Some(w) => (w.value(), o % e),
            None => (m.in_proj_weight.as_ref().unwrap().value(), o),
        };
        (0..x.dims()[2]).map(|c| x.get(&[bi, t, c]) * w.get(&[row, c])).sum::<f64>() + bias.get(&[o])
    };
    let mut out = vec![0.0; b * lq * e];
    for bi in 0..b {
        let mut concat = vec![vec![0.0; e]; lq];
        for hi in 0..h {
            for (t, row) in concat.iter_mut().enumerate() {
                let qv: Vec<f64> = (0..dh).map(|j| proj(q, bi, t, hi * dh + j)).collect();
                let scores: Vec<f64> = (0..lk)
                    .map(|u| {
                        if hidden(bi, t, u) {
                            return f64::NEG_INFINITY;
                        }
                        (0..dh).map(|j| qv[j] * proj(k, bi, u, e + hi * dh + j)).sum::<f64>() / (dh as f64).sqrt()
                    })
                    .collect();
                let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let ex: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
                let total: f64 = ex.iter().sum();
                for j in 0..dh {
                    row[hi * dh + j] = (0..lk).map(|u| ex[u] / total * proj(v, bi, u, 2 * e + hi * dh + j)).sum();
                }
            }
        }
        for t in 0..lq {
            for o in 0..e {
                out[(bi * lq + t) * e + o] = (0..e).map(|c| concat[t][c] * wo.get(&[o, c])).sum::<f64>() + bo.get(&[o]);
            }
        }
    }
    Tensor::new(out, [b, lq, e])
}

fn assert_close(a: &Tensor<f64>, b: &Tensor<f64>, tol: f64) {
    assert_eq!(a.dims(), b.dims());
    for (i, (x, y)) in a.as_slice().iter().zip(b.as_slice()).enumerate() {
        assert!((x - y).abs() <= tol, "element {i}: {x} vs {y}");
    }
}

#[test]
fn multihead_attention_matches_a_loop_reference() {
    manual_seed(5);
    let mut mha = MultiheadAttention::<f64>::new(6, 3);
    perturb(&mut mha, 5);
    let (q, kv) = (rand_tensor(&[2, 3, 6], 10), rand_tensor(&[2, 4, 6], 11));
    let tape = Tape::new();
    // self-attention (one fused projection) and cross-attention (three)
    let x = tape.constant(q.clone());
    assert_close(&mha.forward(x).value(), &reference_mha(&mha, &q, &q, &q, |_, _, _| false), 1e-12);
    let (qv, kvv) = (tape.constant(q.clone()), tape.constant(kv.clone()));
    assert_close(&mha.forward_qkv(qv, kvv, kvv, None, None).value(), &reference_mha(&mha, &q, &kv, &kv, |_, _, _| false), 1e-12);
    // masks: causal-like attn_mask [Lq, Lk] OR key padding [B, Lk]
    let am = Tensor::from_fn([3, 4], |i| i[1] > i[0] + 1);
    let kpm = Tensor::new(vec![false, false, false, true, true, false, false, false], [2, 4]);
    let hidden = |b: usize, t: usize, u: usize| am.get(&[t, u]) || kpm.get(&[b, u]);
    let got = mha.forward_qkv(qv, kvv, kvv, Some(&am), Some(&kpm)).value();
    assert_close(&got, &reference_mha(&mha, &q, &kv, &kv, hidden), 1e-12);
    // the same masks given as PyTorch's per-head [B·h, Lq, Lk] attn_mask
    let per_head = Tensor::from_fn([6, 3, 4], |i| hidden(i[0] / 3, i[1], i[2]));
    assert_close(&mha.forward_qkv(qv, kvv, kvv, Some(&per_head), None).value(), &got, 1e-12);
    // unbatched [L, E] input is the batched result without the batch axis
    let q0 = tape.constant(q.narrow(0, 0, 1).reshape([3, 6]));
    let un = mha.forward(q0).value();
    assert_close(&un.reshape([1, 3, 6]), &mha.forward(x).value().narrow(0, 0, 1), 1e-12);
}

/// Keys and values of their own sizes (PyTorch's `kdim`, `vdim`): separate projections named
/// as PyTorch's, the loop reference's values, and gradients of inputs and parameters.
#[test]
fn multihead_attention_with_kdim_and_vdim() {
    manual_seed(6);
    let cfg = MultiheadAttentionConfig { kdim: Some(3), vdim: Some(5), ..MultiheadAttentionConfig::new(2) };
    let mut mha = wengert::nn::init::with_rng(|rng| MultiheadAttention::<f64>::with_config(4, cfg, rng));
    let shapes: Vec<(String, Vec<usize>)> = mha.named_params().into_iter().map(|(n, p)| (n, p.value().dims().to_vec())).collect();
    let want: Vec<(String, Vec<usize>)> = [
        ("q_proj_weight", vec![4, 4]),
        ("k_proj_weight", vec![4, 3]),
        ("v_proj_weight", vec![4, 5]),
        ("in_proj_bias", vec![12]),
        ("out_proj.weight", vec![4, 4]),
        ("out_proj.bias", vec![4]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(shapes, want);
    assert_eq!(mha.kv_dims(), (3, 5));
    perturb(&mut mha, 6);
    let (q, k, v) = (rand_tensor(&[2, 3, 4], 20), rand_tensor(&[2, 2, 3], 21), rand_tensor(&[2, 2, 5], 22));
    let kpm = Tensor::new(vec![false, false, false, true], [2, 2]);
    let tape = Tape::new();
    let got = mha.forward_qkv(tape.constant(q.clone()), tape.constant(k.clone()), tape.constant(v.clone()), None, Some(&kpm)).value();
    assert_close(&got, &reference_mha(&mha, &q, &k, &v, |b, _, u| kpm.get(&[b, u])), 1e-12);
    wengert::core::gradcheck(|x| mha.forward_qkv(x[0], x[1], x[2], None, Some(&kpm)), &[q.clone(), k.clone(), v.clone()]).unwrap();
    wengert::nn::gradcheck::check_params(&mut mha, |m, t| m.forward_qkv(t.constant(q.clone()), t.constant(k.clone()), t.constant(v.clone()), None, Some(&kpm))).unwrap();
    // keys of the wrong size name both sizes
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let tape = Tape::new();
        let x = tape.constant(q.clone());
        mha.forward_qkv(x, x, x, None, None);
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("[B, Lk, 3]") && msg.contains("[B, Lk, 5]"), "{msg}");
}

#[test]
fn key_padding_makes_padded_keys_irrelevant() {
    manual_seed(6);
    let mha = MultiheadAttention::<f64>::new(4, 2);
    let q = rand_tensor(&[2, 3, 4], 20);
    let kv = rand_tensor(&[2, 5, 4], 21);
    // batch 0 pads its last two keys, batch 1 its first
    let kpm = Tensor::new(vec![false, false, false, true, true, true, false, false, false, false], [2, 5]);
    let mut changed = kv.clone();
    for (i, x) in changed.data_mut().iter_mut().enumerate() {
        let (b, pos) = (i / 20, i / 4 % 5);
        if kpm.get(&[b, pos]) {
            *x = 100.0 + i as f64;
        }
    }
    let run = |kv: &Tensor<f64>, kpm: Option<&Tensor<bool>>| {
        let tape = Tape::new();
        let kv = tape.constant(kv.clone());
        mha.forward_qkv(tape.constant(q.clone()), kv, kv, None, kpm).value()
    };
    assert_close(&run(&kv, Some(&kpm)), &run(&changed, Some(&kpm)), 1e-12);
    assert!(!run(&kv, None).allclose(&run(&changed, None), 1e-6, 1e-6), "without the mask the padded keys matter");

    // through a whole encoder layer: real positions ignore padded ones
    manual_seed(7);
    let cfg = TransformerEncoderLayerConfig { dim_feedforward: 8, dropout: 0.0, ..TransformerEncoderLayerConfig::new(4, 2) };
    let layer = TransformerEncoderLayer::<f64>::with_config(cfg);
    let enc = |x: &Tensor<f64>| {
        let tape = Tape::new();
        layer.forward_masked(tape.constant(x.clone()), None, Some(&kpm)).value()
    };
    let (a, b) = (enc(&kv), enc(&changed));
    for bi in 0..2 {
        for pos in (0..5).filter(|&p| !kpm.get(&[bi, p])) {
            for c in 0..4 {
                assert!((a.get(&[bi, pos, c]) - b.get(&[bi, pos, c])).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn multihead_attention_dropout_only_in_training() {
    manual_seed(8);
    let cfg = MultiheadAttentionConfig { dropout: 0.5, ..MultiheadAttentionConfig::new(2) };
    let mut mha = MultiheadAttention::<f64>::with_config(4, cfg, &mut StdRng::seed_from_u64(1));
    let x = rand_tensor(&[2, 6, 4], 30);
    let run = |m: &MultiheadAttention<f64>| {
        let tape = Tape::new();
        m.forward(tape.constant(x.clone())).value()
    };
    assert_ne!(run(&mha), run(&mha), "training: fresh dropout masks each call");
    mha.eval();
    let reference = MultiheadAttention::<f64>::with_config(4, MultiheadAttentionConfig::new(2), &mut StdRng::seed_from_u64(1));
    assert_close(&run(&mha), &run(&reference), 1e-12);
}

#[test]
fn encoder_layer_composes_its_blocks_and_names_params_like_pytorch() {
    manual_seed(9);
    let x = rand_tensor(&[2, 3, 8], 40);
    for norm_first in [false, true] {
        let cfg = TransformerEncoderLayerConfig { dim_feedforward: 16, dropout: 0.0, norm_first, ..TransformerEncoderLayerConfig::new(8, 2) };
        let layer = TransformerEncoderLayer::<f64>::with_config(cfg);
        let tape = Tape::new();
        let xv = tape.constant(x.clone());
        fn ff<'t>(layer: &TransformerEncoderLayer<f64>, h: Var<'t, f64>) -> Var<'t, f64> {
            layer.linear2.forward(layer.linear1.forward(h).relu())
        }
        let expect = if norm_first {
            let h = xv + layer.self_attn.forward(layer.norm1.forward(xv));
            h + ff(&layer, layer.norm2.forward(h))
        } else {
            let h = layer.norm1.forward(xv + layer.self_attn.forward(xv));
            layer.norm2.forward(h + ff(&layer, h))
        };
        assert_close(&layer.forward(xv).value(), &expect.value(), 1e-12);
    }
    let layer = TransformerEncoderLayer::<f32>::new(8, 2);
    let names: Vec<(String, Vec<usize>)> = layer.named_params().into_iter().map(|(n, p)| (n, p.value().dims().to_vec())).collect();
    let expect: Vec<(String, Vec<usize>)> = [
        ("self_attn.in_proj_weight", vec![24, 8]),
        ("self_attn.in_proj_bias", vec![24]),
        ("self_attn.out_proj.weight", vec![8, 8]),
        ("self_attn.out_proj.bias", vec![8]),
        ("linear1.weight", vec![2048, 8]),
        ("linear1.bias", vec![2048]),
        ("linear2.weight", vec![8, 2048]),
        ("linear2.bias", vec![8]),
        ("norm1.weight", vec![8]),
        ("norm1.bias", vec![8]),
        ("norm2.weight", vec![8]),
        ("norm2.bias", vec![8]),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect();
    assert_eq!(names, expect);
    // initialisation: zero input biases, Xavier-uniform bound √(6 / (E + 3E))
    let mha = &layer.self_attn;
    assert!(mha.in_proj_bias.as_ref().unwrap().value().as_slice().iter().all(|&b| b == 0.0));
    assert!(mha.out_proj.bias.as_ref().unwrap().value().as_slice().iter().all(|&b| b == 0.0));
    let bound = (6.0f32 / 32.0).sqrt();
    assert!(mha.in_proj_weight.as_ref().unwrap().value().as_slice().iter().all(|w| w.abs() <= bound));
}

#[test]
fn sinusoidal_table_has_the_paper_values() {
    let pe = SinusoidalPositionalEncoding::<f64>::new(10, 6);
    let t = pe.table();
    for p in [0usize, 3, 9] {
        for i in 0..3 {
            let angle = p as f64 / 10000f64.powf(2.0 * i as f64 / 6.0);
            assert!((t.get(&[p, 2 * i]) - angle.sin()).abs() < 1e-12);
            assert!((t.get(&[p, 2 * i + 1]) - angle.cos()).abs() < 1e-12);
        }
    }
    let tape = Tape::new();
    let x = rand_tensor(&[2, 4, 6], 50);
    let y = pe.forward(tape.constant(x.clone())).value();
    assert_close(&y, &(&x + &t.narrow(0, 0, 4)), 0.0);
}

#[test]
#[should_panic(expected = "wengert: MultiheadAttention(E = 4, heads = 2): q, k, v must be [B, Lq, 4], [B, Lk, 4], [B, Lk, 4] (or unbatched [L, ..]), got [2, 3, 5]")]
fn multihead_attention_names_its_shapes() {
    let mha = MultiheadAttention::<f32>::new(4, 2);
    let tape = Tape::new();
    let _ = mha.forward(tape.constant(Tensor::zeros([2, 3, 5])));
}

#[test]
#[should_panic(expected = "wengert: MultiheadAttention: embed_dim 6 must be divisible by num_heads 4")]
fn heads_must_divide_the_embedding() {
    let _ = MultiheadAttention::<f32>::new(6, 4);
}

// ---------------------------------------------------------------- batch norm behaviour

#[test]
fn batch_norm_running_stats_match_hand_computation() {
    let (n, c) = (4, 2);
    let batches: Vec<Tensor<f64>> = (0..3).map(|s| Tensor::from_fn([n, c], |i| ((i[0] * 3 + i[1] * 5 + s * 7) % 11) as f64 * (1.0 + s as f64) - 4.0)).collect();
    let bn = BatchNorm1d::<f64>::with_config(c, BatchNormConfig { momentum: 0.2, ..Default::default() });
    let (mut rm, mut rv) = (vec![0.0; c], vec![1.0; c]);
    for x in &batches {
        let tape = Tape::new();
        let _ = bn.forward(tape.constant(x.clone()));
        for ch in 0..c {
            let col: Vec<f64> = (0..n).map(|i| x.get(&[i, ch])).collect();
            let mean = col.iter().sum::<f64>() / n as f64;
            let unbiased = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            rm[ch] = 0.8 * rm[ch] + 0.2 * mean;
            rv[ch] = 0.8 * rv[ch] + 0.2 * unbiased;
        }
    }
    for ch in 0..c {
        assert!((bn.running_mean().as_slice()[ch] - rm[ch]).abs() < 1e-12);
        assert!((bn.running_var().as_slice()[ch] - rv[ch]).abs() < 1e-12);
    }
    assert_eq!(bn.num_batches_tracked(), 3);
}

#[test]
fn batch_norm_train_normalises_per_channel_and_eval_uses_running_stats() {
    let x = Tensor::from_fn([5, 3, 4, 2], |i| ((i[0] * 7 + i[2] * 3 + i[3]) % 9) as f64 * (1.0 + i[1] as f64) + i[1] as f64 * 10.0);
    let mut bn = BatchNorm2d::<f64>::new(3);
    let tape = Tape::new();
    let y = bn.forward(tape.constant(x.clone())).value();
    for ch in 0..3 {
        let vals: Vec<f64> = (0..5 * 4 * 2).map(|k| y.get(&[k / 8, ch, k / 2 % 4, k % 2])).collect();
        let mean = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
        assert!(mean.abs() < 1e-12, "channel {ch} mean {mean}");
        assert!((var - 1.0).abs() < 1e-4, "channel {ch} variance {var}");
    }
    // training output of a sample depends on the rest of the batch, eval output does not
    let first = |t: &Tensor<f64>| t.narrow(0, 0, 1);
    let alone = bn.forward(tape.constant(first(&x))).value();
    assert!(!alone.allclose(&first(&y), 1e-6, 1e-6));
    // (one more training batch was tracked by that call: take the stats now)
    bn.eval();
    let (rm, rv) = (bn.running_mean(), bn.running_var());
    let gamma = Tensor::from_slice(&[0.5, 2.0, -1.0]);
    let beta = Tensor::from_slice(&[1.0, 0.0, 3.0]);
    bn.weight.as_mut().unwrap().set(gamma.clone()).unwrap();
    bn.bias.as_mut().unwrap().set(beta.clone()).unwrap();
    let tape = Tape::new(); // a fresh tape binds the new γ and β
    let ye = bn.forward(tape.constant(x.clone())).value();
    let expect = Tensor::from_fn([5, 3, 4, 2], |i| {
        let ch = i[1];
        (x.get(i) - rm.get(&[ch])) / (rv.get(&[ch]) + 1e-5).sqrt() * gamma.get(&[ch]) + beta.get(&[ch])
    });
    assert_close(&ye, &expect, 1e-12);
    assert_close(&bn.forward(tape.constant(first(&x))).value(), &first(&ye), 1e-12);
    assert_eq!(bn.running_mean(), rm, "eval must not update the running stats");
    assert_eq!(bn.num_batches_tracked(), 2);
}

#[test]
fn batch_norm_without_running_stats_uses_batch_stats_in_eval() {
    let cfg = BatchNormConfig { track_running_stats: false, affine: false, ..Default::default() };
    let mut bn = BatchNorm1d::<f64>::with_config(2, cfg);
    assert!(bn.named_params().is_empty() && bn.named_buffers().is_empty());
    let x = rand_tensor(&[6, 2, 3], 60);
    let tape = Tape::new();
    let train = bn.forward(tape.constant(x.clone())).value();
    bn.eval();
    assert_close(&bn.forward(tape.constant(x.clone())).value(), &train, 0.0);
    assert_eq!(bn.num_batches_tracked(), 0);
}

// ---------------------------------------------------------------- the example

/// 200 steps (about 3 s at the test profile) take the reversal loss from ln 10 ≈ 2.3 to
/// near 0.01 and held-out token accuracy to ≥ 0.999 for seeds 0-7 (chance: 0.1); the bounds
/// below leave a wide margin for other platforms' rounding (the full release run reaches 100%).
#[test]
fn attention_sequence_learns_to_reverse() {
    let r = attention_sequence::run(200, 1, false);
    let l = &r.losses;
    assert_eq!(l.len(), 200);
    let (first, last) = (l[..10].iter().sum::<f64>() / 10.0, l[l.len() - 10..].iter().sum::<f64>() / 10.0);
    assert!(last < 0.25 * first, "loss must fall: {first} -> {last}");
    assert!(r.token_accuracy > 0.8, "token accuracy {}", r.token_accuracy);
    assert!(r.sequence_accuracy > 0.3, "sequence accuracy {}", r.sequence_accuracy);
}

#[test]
fn group_norm_values_match_hand_computation_and_its_special_cases() {
    let tape = Tape::<f64>::new();
    // one group of 2 channels x 2 positions: values 1..4, mean 2.5, biased variance 1.25
    let x = Tensor::from_fn([1, 2, 2], |i| (i[1] * 2 + i[2] + 1) as f64);
    let y = GroupNorm::<f64>::new(1, 2).forward(tape.constant(x.clone())).value().to_vec();
    let want: Vec<f64> = [1.0, 2.0, 3.0, 4.0].iter().map(|v| (v - 2.5) / (1.25f64 + 1e-5).sqrt()).collect();
    assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "{y:?} vs {want:?}");
    // γ and β act per channel
    let mut gn = GroupNorm::<f64>::new(1, 2);
    gn.weight.as_mut().unwrap().set(Tensor::from_slice(&[2.0, -1.0])).unwrap();
    gn.bias.as_mut().unwrap().set(Tensor::from_slice(&[0.5, 0.0])).unwrap();
    let y2 = gn.forward(tape.constant(x)).value().to_vec();
    let scaled = [want[0] * 2.0 + 0.5, want[1] * 2.0 + 0.5, -want[2], -want[3]];
    assert!(y2.iter().zip(&scaled).all(|(a, b)| (a - b).abs() < 1e-12), "{y2:?}");
    // G = 1 is LayerNorm over [C, H, W] (at the initial γ = 1, β = 0)
    let x4 = Tensor::from_fn([2, 4, 3, 2], |i| ((i[0] * 31 + i[1] * 7 + i[2] * 3 + i[3]) % 11) as f64 * 0.3 - 1.0);
    let g1 = GroupNorm::<f64>::new(1, 4).forward(tape.constant(x4.clone())).value();
    let ln = LayerNorm::<f64>::with_shape(&[4, 3, 2], LayerNormConfig::default()).forward(tape.constant(x4.clone())).value();
    assert!(g1.allclose(&ln, 1e-12, 1e-12));
    // G = 2 with γ, β against the formula in Var ops: μ and the biased σ² of each sample's
    // group of 2 channels x 6 positions
    let (w, b) = ([0.5, -1.0, 2.0, 1.5], [0.1, 0.2, -0.3, 0.0]);
    let mut gn2 = GroupNorm::<f64>::new(2, 4);
    gn2.weight.as_mut().unwrap().set(Tensor::from_slice(&w)).unwrap();
    gn2.bias.as_mut().unwrap().set(Tensor::from_slice(&b)).unwrap();
    let y = gn2.forward(tape.constant(x4.clone())).value();
    let groups = tape.constant(x4.clone()).reshape(vec![2, 2, 12]);
    let centered = groups - groups.mean_axes(&[-1], true);
    let normed = (centered / (centered.square().mean_axes(&[-1], true) + 1e-5).sqrt()).reshape(vec![2, 4, 3, 2]);
    let per_channel = |v: [f64; 4]| tape.constant(Tensor::from_fn([1, 4, 1, 1], |i| v[i[1]]));
    let want = (normed * per_channel(w) + per_channel(b)).value();
    assert!(y.allclose(&want, 1e-12, 1e-12), "{y} vs {want}");
    // an empty batch, or no positions, gives an empty output of the input's shape
    for dims in [[0, 4, 3], [2, 4, 0]] {
        assert_eq!(gn2.forward(tape.constant(Tensor::zeros(dims))).value().dims(), &dims);
    }
    // bad input names the layer and both shapes
    let err = std::panic::catch_unwind(|| {
        let tape = Tape::<f64>::new();
        GroupNorm::<f64>::new(2, 4).forward(tape.constant(Tensor::zeros([2, 3, 5])));
    })
    .expect_err("wrong channel count");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("GroupNorm(2, 4)") && msg.contains("[2, 3, 5]"), "{msg}");
}
