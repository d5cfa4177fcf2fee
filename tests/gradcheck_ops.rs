//! Every differentiable op's gradient against central finite differences in f64, over random
//! shapes and values, with the public `gradcheck` and `testing` strategies users get too.
//! Second-order gradients of the smooth ops are checked with `gradgradcheck` at the end.

// The check! macros clone each input into the slice gradcheck takes, whatever their count.
#![allow(clippy::cloned_ref_to_slice_refs)]

use proptest::prelude::*;
use proptest::sample::subsequence;
use wengert::core::testing::{broadcast_shapes, shape, tensor, tensor_in, tensor_of};
use wengert::core::{gradcheck, gradgradcheck, Tensor, Transpose, Var};

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Runs gradcheck and turns a failure into a proptest failure showing the worst element.
macro_rules! check {
    ($f:expr, $($x:expr),+ $(,)?) => {
        gradcheck($f, &[$($x.clone()),+]).map_err(|e| TestCaseError::fail(e.to_string()))?
    };
}

macro_rules! check2 {
    ($f:expr, $($x:expr),+ $(,)?) => {
        gradgradcheck($f, &[$($x.clone()),+]).map_err(|e| TestCaseError::fail(e.to_string()))?
    };
}

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

    #[test]
    fn exp_sin_cos_tanh_sigmoid(x in tensor(3, 4)) {
        check!(|v| v[0].exp(), x);
        check!(|v| v[0].sin(), x);
        check!(|v| v[0].cos(), x);
        check!(|v| v[0].tanh(), x);
        check!(|v| v[0].sigmoid(), x);
        check!(|v| v[0].softplus(), x);
        check!(|v| v[0].log_sigmoid(), x);
        check!(|v| v[0].square(), x);
    }

    #[test]
    fn ln_sqrt_recip_powf(x in tensor_in(3, 4, 0.3, 3.0), p in -2.5f64..2.5) {
        check!(|v| v[0].ln(), x);
        check!(|v| v[0].sqrt(), x);
        check!(|v| v[0].recip(), x);
        check!(|v| v[0].powf(p), x);
    }

    #[test]
    fn relu_abs_clamp(x in tensor(3, 4)) {
        check!(|v| v[0].relu(), x);
        check!(|v| v[0].abs(), x);
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
    fn softmax_and_log_softmax((x, axis) in tensor_axis()) {
        check!(|v| v[0].softmax(axis), x);
        check!(|v| v[0].log_softmax(axis), x);
    }
}

// ---------------------------------------------------------------- second order

proptest! {
    #![proptest_config(cfg(24))]

    #[test]
    fn second_order_elementwise(x in tensor(2, 3), y in tensor_in(2, 3, 0.5, 2.0)) {
        check2!(|v| (v[0].exp() * v[0].tanh() + v[0].sigmoid() * v[0].sin() - v[0].cos() + v[0].softplus()).sum(), x);
        check2!(|v| (v[0].ln() + v[0].sqrt() + v[0].recip() + v[0].powf(1.7)).sum(), y);
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
