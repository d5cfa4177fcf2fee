//! Gradients of nn's losses, activations and layers against finite differences (f64,
//! random shapes and values), and their forward values against hand-computed numbers.

// The check! macros clone each input into the slice gradcheck takes, whatever their count.
#![allow(clippy::cloned_ref_to_slice_refs)]

#[macro_use]
mod common;
use common::cfg;

use proptest::prelude::*;
use wengert::core::testing::{shape, tensor, tensor_of};
use wengert::core::{gradgradcheck, Tape, Tensor};
use wengert::nn::activation::{elu, gelu, gelu_with, leaky_relu, silu, Approximate};
use wengert::nn::gradcheck::check_params_at;
use wengert::nn::init::manual_seed;
use wengert::nn::loss::*;
use wengert::nn::prelude::{Embedding, LayerNorm, Linear, Module, ReLU, Sequential, Tanh};



/// Logits `[n, c]` and class targets `[n]`.
fn classification() -> impl Strategy<Value = (Tensor<f64>, Tensor<usize>)> {
    (1usize..6, 2usize..5).prop_flat_map(|(n, c)| {
        (tensor_of(vec![n, c], -3.0, 3.0), proptest::collection::vec(0..c, n).prop_map(move |t| Tensor::new(t, [n])))
    })
}

/// Two tensors of one random shape, the second in `[lo, hi)`.
fn same_shape(lo: f64, hi: f64) -> impl Strategy<Value = (Tensor<f64>, Tensor<f64>)> {
    shape(3, 4).prop_flat_map(move |s| (tensor_of(s.clone(), -2.0, 2.0), tensor_of(s, lo, hi)))
}

proptest! {
    #![proptest_config(cfg(48))]

    #[test]
    fn regression_losses((p, t) in same_shape(-2.0, 2.0), delta in 0.2f64..2.0) {
        for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
            check!(|v| mse_loss(v[0], v[1], r), p, t);
            check!(|v| l1_loss(v[0], v[1], r), p, t);
            check!(|v| huber_loss(v[0], v[1], delta, r), p, t);
            check!(|v| smooth_l1_loss(v[0], v[1], delta, r), p, t);
        }
    }

    #[test]
    fn binary_losses((x, y) in same_shape(0.0, 1.0)) {
        check!(|v| bce_with_logits(v[0], v[1], Reduction::Mean), x, y);
        check!(|v| binary_cross_entropy(v[0].sigmoid(), v[1], Reduction::Sum), x, y);
        let last = *x.dims().last().unwrap_or(&1);
        let pos = Tensor::from_fn([last], |i| 0.5 + i[0] as f64);
        let w = Tensor::from_fn(x.dims(), |i| 0.25 + (i.iter().sum::<usize>() % 3) as f64);
        for reduction in [Reduction::Mean, Reduction::Sum] {
            let bce = BceWithLogitsLoss { reduction, weight: Some(w.clone()), pos_weight: Some(pos.clone()) };
            check!(|v| bce.loss(v[0], v[1]), x, y);
            let bce = BceLoss { reduction, weight: Some(w.clone()) };
            check!(|v| bce.loss(v[0].sigmoid(), v[1]), x, y);
        }
    }

    #[test]
    fn cross_entropy_variants((logits, targets) in classification(), eps in 0.0f64..0.3) {
        let c = logits.dims()[1];
        let w = Tensor::from_fn([c], |i| 0.5 + i[0] as f64 * 0.25);
        check!(|v| cross_entropy(v[0], &targets), logits);
        check!(|v| nll_loss(v[0].log_softmax(1), &targets, Reduction::Sum), logits);
        let nll = NllLoss { reduction: Reduction::Sum, weight: Some(w.clone()), ignore_index: Some(targets.as_slice()[0]) };
        check!(|v| nll.loss(v[0].log_softmax(1), &targets), logits);
        for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
            let ce = CrossEntropyLoss { reduction, label_smoothing: eps, weight: Some(w.clone()), ignore_index: None };
            check!(|v| ce.loss(v[0], &targets), logits);
            // the first sample's class ignored (with and without weights), and an out-of-range
            // ignore value as torch's -100
            // (a mean over only ignored samples is NaN: skipped)
            let first = targets.as_slice()[0];
            if !matches!(reduction, Reduction::Mean) || targets.as_slice().iter().any(|&t| t != first) {
                let ignored = CrossEntropyLoss { ignore_index: Some(first), ..ce.clone() };
                check!(|v| ignored.loss(v[0], &targets), logits);
                let unweighted = CrossEntropyLoss { weight: None, ..ignored };
                check!(|v| unweighted.loss(v[0], &targets), logits);
            }
            let outside = CrossEntropyLoss { ignore_index: Some(usize::MAX), ..ce };
            check!(|v| outside.loss(v[0], &targets), logits);
        }
        gradgradcheck(|v| cross_entropy(v[0], &targets), &[logits.clone()]).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    #[test]
    fn activations(x in tensor(3, 4), slope in 0.01f64..0.5) {
        check!(|v| leaky_relu(v[0], slope), x);
        check!(|v| elu(v[0], 1.3), x);
        check!(|v| gelu(v[0]), x);
        check!(|v| gelu_with(v[0], Approximate::Tanh), x);
        check!(|v| silu(v[0]), x);
    }
}

/// The public parameter gradcheck, as a proptest failure.
fn check_module<M: Module<f64>>(m: &mut M, x: &Tensor<f64>) -> Result<(), TestCaseError> {
    check_params_at(m, x).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #![proptest_config(cfg(16))]

    #[test]
    fn layer_parameter_gradients(n in 1usize..4, d_in in 1usize..5, d_out in 1usize..5, seed in 0u64..1000) {
        manual_seed(seed);
        let x = Tensor::<f64>::from_fn([n, d_in], |i| ((i[0] * 7 + i[1] * 3 + seed as usize) % 13) as f64 / 6.0 - 1.0);
        check_module(&mut Linear::<f64>::new(d_in, d_out), &x)?;
        let mut mlp = Sequential::<f64>::new().add(Linear::new(d_in, 4)).add(Tanh).add(Linear::new(4, d_out)).add(ReLU);
        check_module(&mut mlp, &x)?;
        let mut ln = LayerNorm::<f64>::new(d_in);
        ln.weight.as_mut().unwrap().value_mut().data_mut().iter_mut().enumerate().for_each(|(i, w)| *w = 1.0 + i as f64 * 0.3);
        if d_in > 1 {
            check_module(&mut ln, &x)?;
        }
        // over the two trailing axes of [n, d_in, 2] (γ and β of shape [d_in, 2])
        let mut ln2 = LayerNorm::<f64>::with_shape(&[d_in, 2], Default::default());
        ln2.weight.as_mut().unwrap().value_mut().data_mut().iter_mut().enumerate().for_each(|(i, w)| *w = 1.0 + i as f64 * 0.3);
        let x3 = Tensor::<f64>::from_fn([n, d_in, 2], |i| ((i[0] * 7 + i[1] * 3 + i[2] * 5 + seed as usize) % 13) as f64 / 6.0 - 1.0);
        check_module(&mut ln2, &x3)?;
        // inputs of a linear layer: gradcheck through the module
        let lin = Linear::<f64>::new(d_in, d_out);
        check!(|v| lin.forward(v[0]).tanh(), x);
        let ids = Tensor::from_fn([n, 2], |i| (i[0] + i[1] * 2) % 3);
        let mut emb = Embedding::<f64>::new(3, d_out);
        let xs = ids.map(|i| i as f64);
        check_module(&mut emb, &xs)?;
    }
}

#[test]
fn loss_values_match_hand_computation() {
    let tape = Tape::<f64>::new();
    let logits = tape.constant(Tensor::new(vec![1.0, 2.0, 0.5, 0.0, 0.0, 0.0], [2, 3]));
    let y = Tensor::new(vec![1usize, 2], [2]);
    // sample 0: lse = ln(e + e² + e^0.5); sample 1: ln 3
    let lse0 = (1f64.exp() + 2f64.exp() + 0.5f64.exp()).ln();
    let (l0, l1) = (lse0 - 2.0, 3f64.ln());
    assert!((cross_entropy(logits, &y).item() - (l0 + l1) / 2.0).abs() < 1e-12);
    // weights w = [1, 2, 3]: mean = (2·l0 + 3·l1) / (2 + 3)
    let w = Tensor::from_slice(&[1.0, 2.0, 3.0]);
    let ce = CrossEntropyLoss { weight: Some(w), ..Default::default() };
    assert!((ce.loss(logits, &y).item() - (2.0 * l0 + 3.0 * l1) / 5.0).abs() < 1e-12);
    // label smoothing ε = 0.3: (1-ε)·nll + ε·mean_c(-log p_c)
    let smooth0 = (3.0 * lse0 - 3.5) / 3.0;
    let smooth1 = 3f64.ln();
    let ce = CrossEntropyLoss { label_smoothing: 0.3, ..Default::default() };
    let expect = ((0.7 * l0 + 0.3 * smooth0) + (0.7 * l1 + 0.3 * smooth1)) / 2.0;
    assert!((ce.loss(logits, &y).item() - expect).abs() < 1e-12);
    // ignore_index = 2 drops sample 1: the mean is sample 0's loss alone, with or without
    // smoothing and weights (its weight divides out), and `None` gives 0 for sample 1
    for (eps, w) in [(0.0, None), (0.3, None), (0.0, Some(Tensor::from_slice(&[1.0, 2.0, 3.0])))] {
        let ce = CrossEntropyLoss { label_smoothing: eps, weight: w, ignore_index: Some(2), ..Default::default() };
        let one = (1.0 - eps) * l0 + eps * smooth0;
        assert!((ce.loss(logits, &y).item() - one).abs() < 1e-12, "eps {eps}");
        let per = CrossEntropyLoss { reduction: Reduction::None, ..ce.clone() }.loss(logits, &y).value().to_vec();
        assert_eq!(per[1], 0.0);
    }
    let all = CrossEntropyLoss { ignore_index: Some(1), ..Default::default() };
    assert!(all.loss(logits, &Tensor::new(vec![1usize, 1], [2])).item().is_nan(), "mean over nothing is NaN");
    // pos_weight p and weight w: w·[p·y·softplus(−x) + (1 − y)·softplus(x)], stable at ±1000
    let x = tape.constant(Tensor::new(vec![0.5, -1.0, 1000.0, -1000.0], [2, 2]));
    let t = tape.constant(Tensor::new(vec![1.0, 0.0, 0.0, 1.0], [2, 2]));
    let sp = |v: f64| (1.0 + v.exp()).ln();
    let bce = BceWithLogitsLoss { reduction: Reduction::None, weight: Some(Tensor::from_slice(&[2.0, 0.5])), pos_weight: Some(Tensor::from_slice(&[3.0, 4.0])) };
    let got = bce.loss(x, t).value().to_vec();
    let want = [2.0 * 3.0 * sp(-0.5), 0.5 * sp(-1.0), 2.0 * 1000.0, 0.5 * 4.0 * 1000.0];
    assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12 * w.max(1.0)), "{got:?} vs {want:?}");
    // bce_with_logits is stable: x = ±1000 gives 0 and 1000
    let x = tape.constant(Tensor::from_slice(&[1000.0, -1000.0, 1000.0]));
    let t = tape.constant(Tensor::from_slice(&[1.0, 0.0, 0.0]));
    assert_eq!(bce_with_logits(x, t, Reduction::None).value().to_vec(), vec![0.0, 0.0, 1000.0]);
    // bce_with_logits at x = 0 has gradient σ(0) - y = 0.5 - y (a zero-initialised model)
    let z = tape.var(Tensor::from_slice(&[0.0, 0.0]));
    let g = bce_with_logits(z, tape.constant(Tensor::from_slice(&[1.0, 0.0])), Reduction::Sum).backward();
    assert_eq!(g.wrt(z).to_vec(), vec![-0.5, 0.5]);
    // huber: d = 3, δ = 1 -> 1·(3 - 0.5) = 2.5; d = 0.5 -> 0.125
    let p = tape.constant(Tensor::from_slice(&[3.0, 0.5]));
    let zero = tape.constant(Tensor::zeros([2]));
    assert_eq!(huber_loss(p, zero, 1.0, Reduction::None).value().to_vec(), vec![2.5, 0.125]);
}

#[test]
fn penalties_sum_over_trainable_params() {
    let mut lin = Linear::<f64>::new(2, 1);
    lin.weight.set(Tensor::new(vec![1.0, -2.0], [1, 2])).unwrap();
    lin.bias.as_mut().unwrap().set(Tensor::from_slice(&[3.0])).unwrap();
    let tape = Tape::new();
    assert_eq!(l1_penalty(&lin, &tape).item(), 6.0);
    assert_eq!(l2_penalty(&lin, &tape).item(), 14.0);
    let g = l2_penalty(&lin, &tape).backward();
    assert_eq!(g.param(&lin.weight).unwrap().to_vec(), vec![2.0, -4.0]);
    lin.bias.as_mut().unwrap().set_trainable(false);
    let tape = Tape::new();
    assert_eq!(l1_penalty(&lin, &tape).item(), 3.0);
}

#[test]
#[should_panic(expected = "wengert: Linear(3 -> 2): input of shape [4, 5] must end in 3")]
fn linear_names_its_shapes_on_bad_input() {
    let lin = Linear::<f32>::new(3, 2);
    let tape = Tape::new();
    let _ = lin.forward(tape.constant(Tensor::zeros([4, 5])));
}

#[test]
#[should_panic(expected = "wengert: cross_entropy: target class 3 is out of range for 3 classes (scores [1, 3])")]
fn cross_entropy_rejects_bad_targets() {
    let tape = Tape::<f32>::new();
    let _ = cross_entropy(tape.constant(Tensor::zeros([1, 3])), &Tensor::from_slice(&[3usize]));
}
