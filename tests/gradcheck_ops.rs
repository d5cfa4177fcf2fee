//! Every differentiable op's gradient against central finite differences in f64, over random
//! shapes and values, with the public `gradcheck` and `testing` strategies users get too.
//! Second-order gradients of the smooth ops are checked with `gradgradcheck` at the end.

// The check! macros clone each input into the slice gradcheck takes, whatever their count.
#![allow(clippy::cloned_ref_to_slice_refs)]

#[macro_use]
mod common;
use common::cfg;

use proptest::prelude::*;
use proptest::sample::subsequence;
use wengert::core::testing::{broadcast_shapes, shape, tensor, tensor_in, tensor_of};
use proptest::test_runner::TestCaseError;
use wengert::core::ops::UNARY_OPS;
use wengert::core::{Tensor, Transpose, Var};




/// A tensor, a subset of its axes (some written negative; empty = all) and keepdim.
fn tensor_axes() -> impl Strategy<Value = (Tensor<f64>, Vec<isize>, bool)> {
    tensor(3, 4).prop_flat_map(|t| {
        let n = t.ndim();
        let axes = subsequence((0..n).collect::<Vec<_>>(), 0..=n);
        (Just(t), axes, proptest::collection::vec(any::<bool>(), n), any::<bool>()).prop_map(move |(t, axes, neg, keep)| {
            let axes = axes.iter().map(|&a| if neg[a] { a as isize - n as isize } else { a as isize }).collect();
            (t, axes, keep)
        })
    })
}

/// A tensor and one of its axes (as a possibly negative number).
fn tensor_axis() -> impl Strategy<Value = (Tensor<f64>, isize)> {
    tensor(3, 4).prop_flat_map(|t| {
        let n = t.ndim() as isize;
        (Just(t), -n..n)
    })
}

/// Logits `[n, C]` (short rows and rows past the 16-lane block) and a class index per row.
fn logits_and_targets() -> impl Strategy<Value = (Tensor<f64>, Tensor<usize>)> {
    (1usize..5, 1usize..20).prop_flat_map(|(n, c)| (tensor_of(vec![n, c], -3.0, 3.0), proptest::collection::vec(0..c, n)))
        .prop_map(|(x, ys)| {
            let n = ys.len();
            (x, Tensor::new(ys, [n]))
        })
}

/// Two tensors that broadcast together, the second with values in `[lo, hi)`.
fn pair_with_rhs(lo: f64, hi: f64) -> impl Strategy<Value = (Tensor<f64>, Tensor<f64>)> {
    broadcast_shapes(3, 3).prop_flat_map(move |(a, b)| (tensor_of(a, -2.0, 2.0), tensor_of(b, lo, hi)))
}

// ---------------------------------------------------------------- arithmetic

proptest! {
    #![proptest_config(cfg(64))]

    #[test]
    fn add_broadcast((a, b) in pair_with_rhs(-2.0, 2.0)) {
        check!(|v| v[0] + v[1], a, b);
    }

    #[test]
    fn sub_broadcast((a, b) in pair_with_rhs(-2.0, 2.0)) {
        check!(|v| v[0] - v[1], a, b);
    }

    #[test]
    fn mul_broadcast((a, b) in pair_with_rhs(-2.0, 2.0)) {
        check!(|v| v[0] * v[1], a, b);
    }

    #[test]
    fn div_broadcast((a, b) in pair_with_rhs(0.5, 2.0)) {
        check!(|v| v[0] / v[1], a, b);
        check!(|v| v[1] / v[0].exp(), a, b);
    }

    #[test]
    fn pow_broadcast((b, a) in pair_with_rhs(0.5, 2.0)) {
        // base a in [0.5, 2), exponent b in [-2, 2)
        check!(|v| v[0].pow(v[1]), a, b);
    }

    #[test]
    fn maximum_minimum((a, b) in pair_with_rhs(-2.0, 2.0)) {
        check!(|v| v[0].maximum(v[1]), a, b);
        check!(|v| v[0].minimum(v[1]), a, b);
    }

    #[test]
    fn scalar_forms(x in tensor_in(3, 4, 0.5, 2.0), c in -3.0f64..3.0) {
        check!(|v| v[0] + c, x);
        check!(|v| c - v[0], x);
        check!(|v| v[0] * c, x);
        check!(|v| c / v[0], x);
        check!(|v| -v[0], x);
    }
}

// ---------------------------------------------------------------- unary

proptest! {
    #![proptest_config(cfg(64))]

    /// Every op declared in ops/unary.rs, on random shapes and values in its domain, first
    /// order and (for the smooth ones) second order: a new op is checked without a new line.
    #[test]
    fn every_declared_unary_op(s in shape(3, 4), u in proptest::collection::vec(0.0f64..1.0, 64)) {
        for op in UNARY_OPS {
            let (lo, hi) = op.domain;
            let n: usize = s.iter().product();
            let x = Tensor::new(u[..n].iter().map(|u| lo + (hi - lo) * u).collect(), s.clone());
            let f = op.on_f64;
            ::wengert::core::gradcheck(|v| f(v[0]), std::slice::from_ref(&x))
                .map_err(|e| TestCaseError::fail(format!("{}: {e}", op.name)))?;
            if op.smooth {
                ::wengert::core::gradgradcheck(|v| f(v[0]), std::slice::from_ref(&x))
                    .map_err(|e| TestCaseError::fail(format!("{} (second order): {e}", op.name)))?;
            }
            prop_assert_eq!(f(wengert::core::Tape::new().constant(x.clone())).value(), (op.tensor_f64)(&x), "{}: Var and Tensor values", op.name);
        }
    }

    #[test]
    fn ops_with_a_parameter_and_compositions(x in tensor(3, 4)) {
        check!(|v| v[0].log_sigmoid(), x);
        check!(|v| v[0].leaky_relu(0.1), x);
        check!(|v| v[0].elu(1.3), x);
    }

    #[test]
    fn powf(x in tensor_in(3, 4, 0.3, 3.0), p in -2.5f64..2.5) {
        check!(|v| v[0].powf(p), x);
        // the exponents computed without libm, and their derivatives' exponents (x² -> 2x¹)
        for p in [0.0, 1.0, 2.0, 3.0, 0.5, -1.0, -0.5] {
            check!(|v| v[0].powf(p), x);
        }
    }

    #[test]
    fn relu_and_clamp(x in tensor(3, 4)) {
        // recorded backward (relu's rule builds a mask then): x·relu(x) has a nonzero second
        // derivative (2 where x > 0)
        check2!(|v| v[0].relu() * v[0], x);
        check!(|v| v[0].clamp(-0.7, 0.9), x);
    }
}

// ---------------------------------------------------------------- reductions

proptest! {
    #![proptest_config(cfg(64))]

    #[test]
    fn sum_and_mean_over_axes((x, axes, keep) in tensor_axes()) {
        check!(|v| v[0].sum(), x);
        check!(|v| v[0].sum_axes(&axes, keep), x);
        check!(|v| v[0].mean_axes(&axes, keep), x);
    }

    #[test]
    fn max_min_over_axes((x, axes, keep) in tensor_axes()) {
        check!(|v| v[0].max_axes(&axes, keep), x);
        check!(|v| v[0].min_axes(&axes, keep), x);
    }

    #[test]
    fn var_and_logsumexp_over_axes((x, axes, keep) in tensor_axes(), correction in 0usize..2) {
        let n: usize = if axes.is_empty() { x.numel() } else {
            axes.iter().map(|&a| x.dims()[(a + x.ndim() as isize) as usize % x.ndim()]).product()
        };
        if n > correction {
            check!(|v| v[0].var_axes(&axes, correction, keep), x);
        }
        check!(|v| v[0].logsumexp_axes(&axes, keep), x);
    }
}

// ---------------------------------------------------------------- shape ops

proptest! {
    #![proptest_config(cfg(64))]

    #[test]
    fn reshape_flatten_squeeze(x in tensor(3, 4)) {
        let n = x.numel();
        check!(|v| v[0].reshape([n, 1]) * 2.0, x);
        check!(|v| v[0].flatten().unsqueeze(0).squeeze(0) * 2.0, x);
    }

    #[test]
    fn permute_and_transpose(x in tensor(4, 3).prop_flat_map(|t| {
        let n = t.ndim();
        (Just(t), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
    })) {
        let (x, perm) = x;
        let w = Tensor::from_fn(perm.iter().map(|&p| x.dims()[p]).collect::<Vec<_>>(), |i| i.iter().sum::<usize>() as f64 - 1.5);
        check!(|v| v[0].permute(&perm) * v[0].tape().constant(w.clone()), x);
        if x.ndim() >= 2 {
            check!(|v| v[0].t() * 1.5, x);
        }
    }

    #[test]
    fn broadcast_to_and_sum_to((small, big) in broadcast_shapes(3, 3).prop_flat_map(|(a, _)| {
        let full = a.clone();
        (tensor_of(a, -2.0, 2.0), Just(full))
    })) {
        // broadcast [.., 1, ..] up by 2 along each length-1 dim and a new leading dim
        let mut target = vec![2];
        target.extend(small.dims().iter().map(|&d| if d == 1 { 3 } else { d }));
        let _ = big;
        check!(|v| v[0].broadcast_to(target.clone()), small);
        let big_t = Tensor::from_fn(target.clone(), |i| i.iter().map(|&k| k as f64).sum::<f64>() * 0.3 - 1.0);
        let s = small.shape().clone();
        check!(|v| v[0].sum_to(s.clone()), big_t);
    }

    #[test]
    fn narrow_and_pad((x, axis) in tensor_axis(), start in 0usize..4, len in 1usize..4, before in 0usize..3, after in 0usize..3) {
        let d = x.dims()[(axis + x.ndim() as isize) as usize % x.ndim()];
        let start = start % d;
        let len = 1 + (len - 1) % (d - start);
        check!(|v| v[0].narrow(axis, start, len), x);
        check!(|v| v[0].pad(axis, before, after, 0.5), x);
    }

    #[test]
    fn concat_and_stack(s in shape(3, 3), axis_pick in 0usize..3, extra in 1usize..4) {
        let axis = axis_pick % s.len();
        let mut s2 = s.clone();
        s2[axis] = extra;
        let a = Tensor::from_fn(s.clone(), |i| i.iter().sum::<usize>() as f64 * 0.1 - 0.3);
        let b = Tensor::from_fn(s2, |i| i.iter().product::<usize>() as f64 * 0.2 + 0.1);
        check!(|v| Var::concat(&[v[0], v[1], v[0]], axis as isize) * 1.5, a, b);
        check!(|v| Var::stack(&[v[0], v[0] * 2.0], axis as isize), a);
    }
}

// ---------------------------------------------------------------- indexing

/// A tensor, an axis and a gather index (off-axis dims no larger, duplicates likely).
fn gather_case() -> impl Strategy<Value = (Tensor<f64>, usize, Tensor<usize>)> {
    tensor(3, 3).prop_flat_map(|x| {
        let n = x.ndim();
        let dims = x.dims().to_vec();
        (Just(x), 0..n).prop_flat_map(move |(x, axis)| {
            let dims = dims.clone();
            let idx_shape: Vec<BoxedStrategy<usize>> = dims
                .iter()
                .enumerate()
                .map(|(d, &len)| if d == axis { (1usize..5).boxed() } else { (1..=len).boxed() })
                .collect();
            (Just(x), Just(axis), idx_shape).prop_flat_map(move |(x, axis, ishape)| {
                let len = x.dims()[axis];
                let n: usize = ishape.iter().product();
                let ishape2 = ishape.clone();
                (Just(x), Just(axis), proptest::collection::vec(0..len, n).prop_map(move |v| Tensor::new(v, ishape2.clone())))
            })
        })
    })
}

proptest! {
    #![proptest_config(cfg(64))]

    #[test]
    fn index_select_with_repeats((x, axis) in tensor_axis(), picks in proptest::collection::vec(0usize..16, 1..6)) {
        let d = x.dims()[(axis + x.ndim() as isize) as usize % x.ndim()];
        let idx: Vec<usize> = picks.iter().map(|p| p % d).collect();
        check!(|v| v[0].index_select(axis, &idx), x);
    }

    #[test]
    fn index_add_with_repeats((x, axis) in tensor_axis(), picks in proptest::collection::vec(0usize..16, 1..5)) {
        let ax = (axis + x.ndim() as isize) as usize % x.ndim();
        let idx: Vec<usize> = picks.iter().map(|p| p % x.dims()[ax]).collect();
        let mut sd = x.dims().to_vec();
        sd[ax] = idx.len();
        let src = Tensor::from_fn(sd, |i| i.iter().sum::<usize>() as f64 * 0.25 - 0.5);
        check!(|v| v[0].index_add(axis, &idx, v[1]) * v[0], x, src);
    }

    #[test]
    fn gather_with_repeats((x, axis, index) in gather_case()) {
        check!(|v| v[0].gather(axis as isize, &index), x);
    }

    #[test]
    fn scatter_add_with_repeats((x, axis, index) in gather_case()) {
        let src = Tensor::from_fn(index.shape().clone(), |i| i.iter().sum::<usize>() as f64 * 0.3 - 0.4);
        check!(|v| v[0].scatter_add(axis as isize, &index, v[1]).square(), x, src);
    }

    #[test]
    fn where_by_mask((a, b) in pair_with_rhs(-2.0, 2.0), bits in proptest::collection::vec(any::<bool>(), 27)) {
        let s = wengert::core::Shape::broadcast("t", a.shape(), b.shape()).unwrap();
        let mut k = 0;
        let mask = Tensor::from_fn(s, |_| { k += 1; bits[k % bits.len()] });
        check!(|v| Var::where_(&mask, v[0], v[1]), a, b);
    }
}

// ---------------------------------------------------------------- matmul and softmax

fn dims3() -> impl Strategy<Value = (usize, usize, usize)> {
    (1usize..5, 1usize..5, 1usize..5)
}

proptest! {
    #![proptest_config(cfg(64))]

    #[test]
    fn matmul_2d_and_vectors((m, k, n) in dims3(), seed in 0u64..1000) {
        let f = |s: &[usize], off: u64| Tensor::<f64>::from_fn(s.to_vec(), |i| (((i.iter().sum::<usize>() as u64 * 7919 + seed + off) % 97) as f64) / 48.0 - 1.0);
        let (a, b) = (f(&[m, k], 1), f(&[k, n], 2));
        check!(|v| v[0].matmul(v[1]), a, b);
        let (x, y) = (f(&[k], 3), f(&[k], 4));
        check!(|v| v[0].matmul(v[1]), x, y);      // dot
        check!(|v| v[0].matmul(v[1]), a, x);      // matrix · vector
        check!(|v| v[0].matmul(v[1]), x, b);      // vector · matrix
    }

    #[test]
    fn matmul_batched_broadcast((m, k, n) in dims3(), batch in 1usize..4, b_batched in any::<bool>()) {
        let a = Tensor::<f64>::from_fn([batch, 1, m, k], |i| (i[0] + 2 * i[2] + 3 * i[3]) as f64 * 0.1 - 0.4);
        let bs: Vec<usize> = if b_batched { vec![2, k, n] } else { vec![k, n] };
        let b = Tensor::<f64>::from_fn(bs, |i| i.iter().enumerate().map(|(j, &v)| (j + 1) * v).sum::<usize>() as f64 * 0.07 - 0.2);
        check!(|v| v[0].matmul(v[1]), a, b);
    }

    #[test]
    fn matmul_transposed_operands((m, k, n) in dims3(), ta in any::<bool>(), tb in any::<bool>()) {
        let sa = if ta { [k, m] } else { [m, k] };
        let sb = if tb { [n, k] } else { [k, n] };
        let a = Tensor::<f64>::from_fn(sa, |i| (i[0] * 3 + i[1]) as f64 * 0.13 - 0.5);
        let b = Tensor::<f64>::from_fn(sb, |i| (i[0] + 2 * i[1]) as f64 * 0.11 - 0.3);
        check!(|v| v[0].matmul_t(v[1], Transpose { a: ta, b: tb }), a, b);
    }

    #[test]
    fn matmul_batch_against_one_matrix((m, k, n) in dims3(), batch in 1usize..4, tb in any::<bool>(), seed in 0u64..1000) {
        // a linear layer on [B, L, in]: the batch of A against one 2-D B, whose gradient is
        // one product over the batch's rows (MatMulRule's shared-B path), with and without a bias
        let a = Tensor::<f64>::from_fn([batch, 2, m, k], |i| (((i[0] * 5 + i[1] * 3 + i[2] * 7 + i[3]) as u64 * 7919 + seed) % 97) as f64 / 48.0 - 1.0);
        let sb = if tb { [n, k] } else { [k, n] };
        let b = Tensor::<f64>::from_fn(sb, |i| (i[0] + 2 * i[1]) as f64 * 0.11 - 0.3);
        let bias = Tensor::from_fn([n], |i| 0.1 - i[0] as f64 * 0.2);
        let t = Transpose { a: false, b: tb };
        check!(|v| v[0].matmul_t(v[1], t), a, b);
        check!(|v| v[0].matmul_t_bias(v[1], t, v[2]), a, b, bias);
        check2!(|v| v[0].matmul_t_bias(v[1], t, v[2]).tanh().sum(), a, b, bias);
    }

    #[test]
    fn matmul_with_row_or_column_bias((m, k, n) in dims3(), ta in any::<bool>(), tb in any::<bool>(), batch in 0usize..3, per_row in any::<bool>()) {
        let sa = if ta { vec![k, m] } else { vec![m, k] };
        let mut sb = if tb { vec![n, k] } else { vec![k, n] };
        if batch > 0 {
            sb.insert(0, batch);
        }
        let a = Tensor::<f64>::from_fn(sa, |i| (i[0] * 3 + i[1]) as f64 * 0.13 - 0.5);
        let b = Tensor::<f64>::from_fn(sb, |i| i.iter().enumerate().map(|(j, &v)| (j + 2) * v).sum::<usize>() as f64 * 0.11 - 0.3);
        let bias = if per_row { Tensor::from_fn([m, 1], |i| i[0] as f64 * 0.3 - 0.2) } else { Tensor::from_fn([n], |i| 0.1 - i[0] as f64 * 0.2) };
        let t = Transpose { a: ta, b: tb };
        check!(|v| v[0].matmul_t_bias(v[1], t, v[2]), a, b, bias);
    }

    #[test]
    fn layer_norm_over_trailing_dims((a, b, c) in (1usize..4, 1usize..4, 2usize..5), two_axes in any::<bool>(), affine in 0usize..4, seed in 0u64..1000) {
        let x = Tensor::<f64>::from_fn([a, b, c], |i| (((i[0] * 5 + i[1] * 3 + i[2] * 7) as u64 * 7919 + seed) % 97) as f64 / 48.0 - 1.0);
        let (len, ps) = if two_axes { (b * c, vec![b, c]) } else { (c, vec![c]) };
        let w = Tensor::<f64>::from_fn(ps.clone(), |i| 0.7 + i.iter().sum::<usize>() as f64 * 0.13);
        let bias = Tensor::<f64>::from_fn(ps, |i| i.iter().sum::<usize>() as f64 * 0.11 - 0.2);
        let eps = 1e-5;
        match affine {
            0 => { check!(|v| v[0].layer_norm(len, None, None, eps), x); check2!(|v| v[0].layer_norm(len, None, None, eps).tanh().sum(), x); }
            1 => { check!(|v| v[0].layer_norm(len, Some(v[1]), None, eps), x, w); check2!(|v| v[0].layer_norm(len, Some(v[1]), None, eps).tanh().sum(), x, w); }
            2 => { check!(|v| v[0].layer_norm(len, None, Some(v[1]), eps), x, bias); check2!(|v| v[0].layer_norm(len, None, Some(v[1]), eps).tanh().sum(), x, bias); }
            _ => { check!(|v| v[0].layer_norm(len, Some(v[1]), Some(v[2]), eps), x, w, bias); check2!(|v| v[0].layer_norm(len, Some(v[1]), Some(v[2]), eps).tanh().sum(), x, w, bias); }
        }
    }

    #[test]
    fn softmax_and_log_softmax((x, axis) in tensor_axis()) {
        check!(|v| v[0].softmax(axis), x);
        check!(|v| v[0].log_softmax(axis), x);
    }

    #[test]
    fn cross_entropy_rows((x, ys) in logits_and_targets()) {
        check!(|v| v[0].cross_entropy_rows(&ys), x);
        check2!(|v| v[0].cross_entropy_rows(&ys).square(), x);
    }
}

// ---------------------------------------------------------------- second order

proptest! {
    #![proptest_config(cfg(24))]

    #[test]
    fn second_order_elementwise(x in tensor(2, 3), y in tensor_in(2, 3, 0.5, 2.0)) {
        check2!(|v| (v[0].exp() * v[0].tanh() + v[0].sigmoid() * v[0].sin() - v[0].cos() + v[0].softplus()).sum(), x);
        check2!(|v| (v[0].ln() + v[0].sqrt() + v[0].recip() + v[0].powf(1.7)).sum(), y);
        check2!(|v| (v[0].silu() * v[0].gelu() + v[0].elu(1.3) * v[0].leaky_relu(0.1)).sum(), x);
        check2!(|v| (v[0].erf() * v[0].gelu_tanh() + v[0].gelu()).sum(), x);
        check2!(|v| v[0].square().mul(v[0]), x);
    }

    #[test]
    fn second_order_binary((a, b) in pair_with_rhs(0.5, 2.0)) {
        check2!(|v| v[0] * v[1] + v[0] / v[1] - v[1].pow(v[0]), a, b);
    }

    #[test]
    fn second_order_reductions_and_softmax((x, axes, keep) in tensor_axes(), axis_pick in 0usize..3) {
        let axis = (axis_pick % x.ndim()) as isize;
        check2!(|v| v[0].logsumexp_axes(&axes, keep), x);
        check2!(|v| v[0].softmax(axis) * v[0], x);
        check2!(|v| v[0].log_softmax(axis).square(), x);
        check2!(|v| v[0].var_axes(&[], 0, false) + v[0].mean_axes(&axes, keep).square().sum(), x);
    }

    #[test]
    fn second_order_matmul_and_shapes((m, k, n) in dims3()) {
        let a = Tensor::<f64>::from_fn([m, k], |i| (i[0] * 3 + i[1]) as f64 * 0.13 - 0.5);
        let b = Tensor::<f64>::from_fn([k, n], |i| (i[0] + 2 * i[1]) as f64 * 0.11 - 0.3);
        check2!(|v| v[0].matmul(v[1]).tanh().sum_axes(&[0], false), a, b);
        check2!(|v| v[0].matmul_t(v[0], Transpose::NT).square().sum(), a);
        check2!(|v| Var::concat(&[v[0], v[1]], 1).square().narrow(1, 0, 1).sum(), a.t(), b);
    }
}

// ---------------------------------------------------------------- convolution and pooling

use wengert::core::{Conv2dOptions, ConvTranspose2dOptions, Window2d};

/// A deterministic tensor of `shape` with values spread over [-1, 1).
fn filled(shape: &[usize], salt: usize) -> Tensor<f64> {
    Tensor::from_fn(shape.to_vec(), |i| {
        let h = i.iter().fold(salt * 7919 + 17, |a, &k| (a * 31 + k * 131) % 10007);
        (h % 200) as f64 / 100.0 - 1.0
    })
}

/// Window geometry with odd sizes, stride possibly larger than the kernel, padding on both
/// sides and dilation.
#[derive(Clone, Debug)]
struct Geom {
    n: usize,
    cg: usize,
    og: usize,
    groups: usize,
    h: usize,
    w: usize,
    k: (usize, usize),
    s: (usize, usize),
    p: (usize, usize),
    d: (usize, usize),
}

fn geom() -> impl Strategy<Value = Geom> {
    (1usize..3, 1usize..3, 1usize..3, 1usize..3, 1usize..8, 1usize..8, (1usize..4, 1usize..4), (1usize..4, 1usize..4), (0usize..3, 0usize..3), (1usize..3, 1usize..3))
        .prop_map(|(n, cg, og, groups, h, w, k, s, p, d)| Geom { n, cg, og, groups, h, w, k, s, p, d })
        .prop_filter("window must fit", |g| {
            Window2d { kernel: g.k, stride: g.s, padding: g.p, dilation: g.d }.output_size("t", g.h, g.w).is_ok()
        })
}

proptest! {
    #![proptest_config(cfg(48))]

    #[test]
    fn unfold_and_fold(g in geom()) {
        let win = Window2d { kernel: g.k, stride: g.s, padding: g.p, dilation: g.d };
        let x = filled(&[g.n, g.cg, g.h, g.w], 1);
        check!(|v| v[0].unfold2d(win), x);
        let (oh, ow) = win.output_size("t", g.h, g.w).unwrap();
        let cols = filled(&[g.n, g.cg * g.k.0 * g.k.1, oh * ow], 2);
        check!(|v| v[0].fold2d(win, (g.h, g.w)), cols);
    }

    #[test]
    fn conv2d_stride_padding_dilation_groups(g in geom(), with_bias in any::<bool>()) {
        let c = g.cg * g.groups;
        let o = g.og * g.groups;
        let x = filled(&[g.n, c, g.h, g.w], 3);
        let w = filled(&[o, g.cg, g.k.0, g.k.1], 4);
        let b = filled(&[o], 5);
        let opts = Conv2dOptions { stride: g.s, padding: g.p, dilation: g.d, groups: g.groups };
        if with_bias {
            check!(|v| v[0].conv2d(v[1], Some(v[2]), opts), x, w, b);
        } else {
            check!(|v| v[0].conv2d(v[1], None, opts), x, w);
        }
    }

    #[test]
    fn conv1d_all_options(g in geom()) {
        let c = g.cg * g.groups;
        let x = filled(&[g.n, c, g.w], 6);
        let w = filled(&[g.og * g.groups, g.cg, g.k.1], 7);
        let b = filled(&[g.og * g.groups], 8);
        check!(|v| v[0].conv1d(v[1], Some(v[2]), g.s.1, g.p.1, g.d.1, g.groups), x, w, b);
    }

    #[test]
    fn conv_transpose2d_all_options(g in geom(), op in (0usize..3, 0usize..3)) {
        let out_pad = (op.0 % g.s.0.max(g.d.0), op.1 % g.s.1.max(g.d.1));
        let span = |k: usize, d: usize| d * (k - 1) + 1;
        let fh = (g.h - 1) * g.s.0 + span(g.k.0, g.d.0) + out_pad.0;
        let fw = (g.w - 1) * g.s.1 + span(g.k.1, g.d.1) + out_pad.1;
        prop_assume!(fh > 2 * g.p.0 && fw > 2 * g.p.1);
        let c = g.cg * g.groups;
        let x = filled(&[g.n, c, g.h, g.w], 9);
        let w = filled(&[c, g.og, g.k.0, g.k.1], 10);
        let b = filled(&[g.og * g.groups], 11);
        let opts = ConvTranspose2dOptions { stride: g.s, padding: g.p, output_padding: out_pad, dilation: g.d, groups: g.groups };
        check!(|v| v[0].conv_transpose2d(v[1], Some(v[2]), opts), x, w, b);
    }

    #[test]
    fn pooling(g in geom(), oh in 1usize..4, ow in 1usize..4) {
        let p = (g.p.0.min(g.k.0 / 2), g.p.1.min(g.k.1 / 2));
        let fits = Window2d { kernel: g.k, stride: g.s, padding: p, dilation: (1, 1) }.output_size("t", g.h, g.w).is_ok();
        // distinct values so no window has a tie for its maximum
        let x = Tensor::from_fn([g.n, g.cg, g.h, g.w], |i| {
            let flat = ((i[0] * g.cg + i[1]) * g.h + i[2]) * g.w + i[3];
            ((flat * 37) % 101) as f64 / 50.0 - 1.0 + flat as f64 * 1e-4
        });
        if fits {
            check!(|v| v[0].max_pool2d(g.k, g.s, p), x);
            check!(|v| v[0].avg_pool2d(g.k, g.s, p), x);
        }
        check!(|v| v[0].adaptive_avg_pool2d((oh, ow)), x);
    }
}

proptest! {
    #![proptest_config(cfg(12))]

    #[test]
    fn second_order_conv(g in geom()) {
        let x = filled(&[1, g.cg, g.h, g.w], 12);
        let w = filled(&[2, g.cg, g.k.0, g.k.1], 13);
        let b = filled(&[2], 14);
        let opts = Conv2dOptions { stride: g.s, padding: g.p, dilation: g.d, groups: 1 };
        check2!(|v| v[0].conv2d(v[1], None, opts).tanh(), x, w);
        check2!(|v| v[0].conv2d(v[1], Some(v[2]), opts).tanh(), x, w, b);
    }
}

#[test]
fn conv2d_matches_direct_definition() {
    // out[n,o,y,x] = Σ_{c,i,j} w[o,c,i,j]·in[n,c,y·s+i·d-p, x·s+j·d-p]
    let (x, w) = (filled(&[2, 3, 6, 5], 20), filled(&[4, 3, 3, 2], 21));
    let opts = Conv2dOptions { stride: (2, 1), padding: (1, 1), dilation: (1, 2), groups: 1 };
    let tape = wengert::core::Tape::<f64>::new();
    let y = tape.constant(x.clone()).conv2d(tape.constant(w.clone()), None, opts).value();
    let (oh, ow) = (y.dims()[2], y.dims()[3]);
    assert_eq!((oh, ow), (3, 5)); // H: (6+2-3)/2+1 = 3; W: (5+2-3)/1+1 = 5
    for n in 0..2 {
        for o in 0..4 {
            for yy in 0..oh {
                for xx in 0..ow {
                    let mut s = 0.0;
                    for c in 0..3 {
                        for i in 0..3 {
                            for j in 0..2 {
                                let iy = (yy * 2 + i) as isize - 1;
                                let ix = (xx + j * 2) as isize - 1;
                                if iy >= 0 && ix >= 0 && iy < 6 && ix < 5 {
                                    s += w.get(&[o, c, i, j]) * x.get(&[n, c, iy as usize, ix as usize]);
                                }
                            }
                        }
                    }
                    assert!((y.get(&[n, o, yy, xx]) - s).abs() < 1e-12);
                }
            }
        }
    }
}

#[test]
fn conv_transpose2d_is_the_adjoint_of_conv2d() {
    // <conv2d(x, w), y> = <x, conv_transpose2d(y, w)> with the same stride/padding/dilation,
    // output_padding chosen so the transpose returns x's size.
    let x = filled(&[2, 4, 7, 6], 30);
    let w = filled(&[6, 2, 3, 2], 31);
    let c = Conv2dOptions { stride: (2, 3), padding: (1, 1), dilation: (1, 2), groups: 2 };
    let tape = wengert::core::Tape::<f64>::new();
    let y_shape = tape.constant(x.clone()).conv2d(tape.constant(w.clone()), None, c).shape();
    let y = filled(y_shape.dims(), 32);
    let t = ConvTranspose2dOptions { stride: c.stride, padding: c.padding, output_padding: (0, 2), dilation: c.dilation, groups: 2 };
    let xt = tape.constant(y.clone()).conv_transpose2d(tape.constant(w.clone()), None, t).value();
    assert_eq!(xt.dims(), x.dims());
    let conv = tape.constant(x.clone()).conv2d(tape.constant(w), None, c).value();
    let lhs: f64 = conv.as_slice().iter().zip(y.as_slice()).map(|(a, b)| a * b).sum();
    let rhs: f64 = x.as_slice().iter().zip(xt.as_slice()).map(|(a, b)| a * b).sum();
    assert!((lhs - rhs).abs() < 1e-9, "{lhs} vs {rhs}");
}
