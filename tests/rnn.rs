//! Recurrent layers: parameter and input gradients against finite differences (f64, random
//! small shapes, 1 and 2 layers), forward values against hand-computed numbers, shapes and
//! PyTorch parameter names, bad-shape panics, and the `rnn_sine` example learning.

use proptest::prelude::*;
use rand::SeedableRng;
use wengert::core::testing::tensor_of;
use wengert::core::{gradcheck, Tape, Tensor, Var};
use wengert::nn::init::manual_seed;
use wengert::nn::prelude::{
    Gru, GruConfig, Lstm, LstmConfig, Module, Nonlinearity, Rnn, RnnConfig, Sequential,
};

#[path = "../examples/rnn_sine.rs"]
mod rnn_sine;

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// The three layers behind one interface: every output of `forward_seq` (the all-steps output,
/// then `h_n`, then `c_n` for the LSTM), from optional initial states.
trait Recurrent: Module<f64> {
    fn outputs<'t>(&self, x: Var<'t, f64>, h0: Option<Var<'t, f64>>, c0: Option<Var<'t, f64>>) -> Vec<Var<'t, f64>>;
    fn has_cell(&self) -> bool {
        false
    }
}

impl Recurrent for Rnn<f64> {
    fn outputs<'t>(&self, x: Var<'t, f64>, h0: Option<Var<'t, f64>>, _: Option<Var<'t, f64>>) -> Vec<Var<'t, f64>> {
        let (out, h_n) = self.forward_seq(x, h0);
        vec![out, h_n]
    }
}

impl Recurrent for Gru<f64> {
    fn outputs<'t>(&self, x: Var<'t, f64>, h0: Option<Var<'t, f64>>, _: Option<Var<'t, f64>>) -> Vec<Var<'t, f64>> {
        let (out, h_n) = self.forward_seq(x, h0);
        vec![out, h_n]
    }
}

impl Recurrent for Lstm<f64> {
    fn outputs<'t>(&self, x: Var<'t, f64>, h0: Option<Var<'t, f64>>, c0: Option<Var<'t, f64>>) -> Vec<Var<'t, f64>> {
        let (out, (h_n, c_n)) = self.forward_seq(x, h0.zip(c0));
        vec![out, h_n, c_n]
    }
    fn has_cell(&self) -> bool {
        true
    }
}

/// All outputs flattened into one vector, for `gradcheck`.
fn joined<'t>(outs: Vec<Var<'t, f64>>) -> Var<'t, f64> {
    let flat: Vec<_> = outs.into_iter().map(|o| o.flatten()).collect();
    Var::concat(&flat, 0)
}

/// A fixed weighting of an output, different for each output `which`, so every element of
/// `out`, `h_n` and `c_n` matters to the loss.
fn weights(shape: &[usize], which: usize) -> Tensor<f64> {
    Tensor::from_fn(shape.to_vec(), |i| (((i.iter().sum::<usize>() + 3 * which) * 37 % 11) as f64) / 5.0 - 1.0)
}

/// Checks d(Σ out·r₁ + Σ h_n·r₂ [+ Σ c_n·r₃])/dθ for every parameter θ of `m` against central
/// differences with the public `check_params`, with the initial states given as
/// constants (or zeros when `None`).
fn check_params<M: Recurrent>(m: &mut M, x: &Tensor<f64>, state: Option<(&Tensor<f64>, &Tensor<f64>)>) -> Result<(), TestCaseError> {
    fn loss<'t, M: Recurrent>(m: &M, tape: &'t Tape<f64>, x: &Tensor<f64>, state: Option<(&Tensor<f64>, &Tensor<f64>)>) -> Var<'t, f64> {
        let h0 = state.map(|s| tape.constant(s.0.clone()));
        let c0 = state.map(|s| tape.constant(s.1.clone()));
        let outs = m.outputs(tape.constant(x.clone()), h0, c0);
        let terms: Vec<_> = outs
            .into_iter()
            .enumerate()
            .map(|(k, o)| (o * tape.constant(weights(o.shape().dims(), k))).sum())
            .collect();
        terms.into_iter().reduce(|a, b| a + b).unwrap()
    }
    wengert::nn::gradcheck::check_params(m, |m, tape| loss(m, tape, x, state)).map_err(|e| TestCaseError::fail(e.to_string()))
}

/// Input gradients (x, and h0/c0 when given) of every output through `gradcheck`.
fn check_inputs<M: Recurrent>(m: &M, x: &Tensor<f64>, h0: &Tensor<f64>, c0: &Tensor<f64>) -> Result<(), TestCaseError> {
    let fail = |e: wengert::core::GradcheckError| TestCaseError::fail(e.to_string());
    gradcheck(|v| joined(m.outputs(v[0], None, None)), std::slice::from_ref(x)).map_err(fail)?;
    if m.has_cell() {
        gradcheck(|v| joined(m.outputs(v[0], Some(v[1]), Some(v[2]))), &[x.clone(), h0.clone(), c0.clone()]).map_err(fail)?;
    } else {
        gradcheck(|v| joined(m.outputs(v[0], Some(v[1]), None)), &[x.clone(), h0.clone()]).map_err(fail)?;
    }
    Ok(())
}

/// A random small problem: input `[b, s, i]`, states `[L, b, H]`, and the sizes.
fn problem() -> impl Strategy<Value = (Tensor<f64>, Tensor<f64>, Tensor<f64>, usize, usize, bool, u64)> {
    (1usize..3, 1usize..4, 1usize..3, 1usize..3, 1usize..=2, any::<bool>(), 0u64..1000).prop_flat_map(|(b, s, i, h, l, given, seed)| {
        (
            tensor_of(vec![b, s, i], -1.5, 1.5),
            tensor_of(vec![l, b, h], -1.0, 1.0),
            tensor_of(vec![l, b, h], -1.0, 1.0),
            Just(h),
            Just(l),
            Just(given),
            Just(seed),
        )
    })
}

proptest! {
    #![proptest_config(cfg(32))]

    #[test]
    fn parameter_gradients_match_finite_differences((x, h0, c0, hidden, layers, given, seed) in problem()) {
        let input = x.dims()[2];
        let state = given.then_some((&h0, &c0));
        for nonlinearity in [Nonlinearity::Tanh, Nonlinearity::Relu] {
            let rc = RnnConfig { num_layers: layers, bias: true, nonlinearity, ..Default::default() };
            check_params(&mut Rnn::<f64>::with_config(input, hidden, rc, &mut rng(seed)), &x, state)?;
        }
        let lc = LstmConfig { num_layers: layers, bias: seed % 3 != 0, ..Default::default() };
        check_params(&mut Lstm::<f64>::with_config(input, hidden, lc, &mut rng(seed)), &x, state)?;
        let gc = GruConfig { num_layers: layers, bias: seed % 3 != 1, ..Default::default() };
        check_params(&mut Gru::<f64>::with_config(input, hidden, gc, &mut rng(seed)), &x, state)?;
    }

    #[test]
    fn input_and_state_gradients_match_finite_differences((x, h0, c0, hidden, layers, _given, seed) in problem()) {
        let input = x.dims()[2];
        for nonlinearity in [Nonlinearity::Tanh, Nonlinearity::Relu] {
            let rc = RnnConfig { num_layers: layers, bias: true, nonlinearity, ..Default::default() };
            check_inputs(&Rnn::<f64>::with_config(input, hidden, rc, &mut rng(seed)), &x, &h0, &c0)?;
        }
        let lc = LstmConfig { num_layers: layers, ..Default::default() };
        check_inputs(&Lstm::<f64>::with_config(input, hidden, lc, &mut rng(seed)), &x, &h0, &c0)?;
        let gc = GruConfig { num_layers: layers, ..Default::default() };
        check_inputs(&Gru::<f64>::with_config(input, hidden, gc, &mut rng(seed)), &x, &h0, &c0)?;
    }
}

/// A random bidirectional problem: input `[b, s, i]`, states `[2L, b, H]`.
fn bidirectional_problem() -> impl Strategy<Value = (Tensor<f64>, Tensor<f64>, Tensor<f64>, usize, usize, u64)> {
    (1usize..3, 1usize..4, 1usize..3, 1usize..3, 1usize..=2, 0u64..1000).prop_flat_map(|(b, s, i, h, l, seed)| {
        (tensor_of(vec![b, s, i], -1.5, 1.5), tensor_of(vec![2 * l, b, h], -1.0, 1.0), tensor_of(vec![2 * l, b, h], -1.0, 1.0), Just(h), Just(l), Just(seed))
    })
}

proptest! {
    #![proptest_config(cfg(16))]

    /// Bidirectional stacks (PyTorch's `bidirectional=True`), 1 and 2 layers: every parameter
    /// (the `_reverse` sets too) and the input and state gradients.
    #[test]
    fn bidirectional_gradients_match_finite_differences((x, h0, c0, hidden, layers, seed) in bidirectional_problem()) {
        let input = x.dims()[2];
        let rc = RnnConfig { num_layers: layers, bidirectional: true, ..Default::default() };
        let mut rnn = Rnn::<f64>::with_config(input, hidden, rc, &mut rng(seed));
        check_params(&mut rnn, &x, Some((&h0, &c0)))?;
        check_inputs(&rnn, &x, &h0, &c0)?;
        let lc = LstmConfig { num_layers: layers, bidirectional: true, ..Default::default() };
        let mut lstm = Lstm::<f64>::with_config(input, hidden, lc, &mut rng(seed));
        check_params(&mut lstm, &x, Some((&h0, &c0)))?;
        check_inputs(&lstm, &x, &h0, &c0)?;
        let gc = GruConfig { num_layers: layers, bidirectional: true, ..Default::default() };
        let mut gru = Gru::<f64>::with_config(input, hidden, gc, &mut rng(seed));
        check_params(&mut gru, &x, None)?;
        check_inputs(&gru, &x, &h0, &c0)?;
    }
}

/// The reverse direction is the forward recurrence run on the time-reversed sequence: a
/// one-layer bidirectional LSTM's second half equals a plain LSTM holding its `_reverse`
/// weights on the flipped input, flipped back; the first half equals one holding the forward
/// weights; `h_n` is [forward final, reverse final]. Names and shapes are PyTorch's.
#[test]
fn bidirectional_is_forward_and_time_reversed_runs_side_by_side() {
    let (b, s, i, h) = (2, 4, 3, 5);
    let bi = Lstm::<f64>::with_config(i, h, LstmConfig { num_layers: 2, bidirectional: true, ..Default::default() }, &mut rng(8));
    assert!(bi.bidirectional() && bi.num_layers() == 2);
    let names: Vec<(String, Vec<usize>)> = bi.named_params().into_iter().map(|(n, p)| (n, p.value().dims().to_vec())).collect();
    let want = [
        ("weight_ih_l0", vec![20, 3]), ("weight_hh_l0", vec![20, 5]), ("bias_ih_l0", vec![20]), ("bias_hh_l0", vec![20]),
        ("weight_ih_l0_reverse", vec![20, 3]), ("weight_hh_l0_reverse", vec![20, 5]), ("bias_ih_l0_reverse", vec![20]), ("bias_hh_l0_reverse", vec![20]),
        ("weight_ih_l1", vec![20, 10]), ("weight_hh_l1", vec![20, 5]), ("bias_ih_l1", vec![20]), ("bias_hh_l1", vec![20]),
        ("weight_ih_l1_reverse", vec![20, 10]), ("weight_hh_l1_reverse", vec![20, 5]), ("bias_ih_l1_reverse", vec![20]), ("bias_hh_l1_reverse", vec![20]),
    ];
    assert_eq!(names, want.iter().map(|(n, d)| (n.to_string(), d.clone())).collect::<Vec<_>>());

    let one = Lstm::<f64>::with_config(i, h, LstmConfig { bidirectional: true, ..Default::default() }, &mut rng(9));
    let copy = |set: usize| {
        let mut m = Lstm::<f64>::new(i, h);
        let (dst, src) = (&mut m.layers[0], &one.layers[set]);
        dst.weight_ih.set(src.weight_ih.value().clone()).unwrap();
        dst.weight_hh.set(src.weight_hh.value().clone()).unwrap();
        dst.bias_ih.as_mut().unwrap().set(src.bias_ih.as_ref().unwrap().value().clone()).unwrap();
        dst.bias_hh.as_mut().unwrap().set(src.bias_hh.as_ref().unwrap().value().clone()).unwrap();
        m
    };
    let (fwd, rev) = (copy(0), copy(1));
    let x = Tensor::from_fn([b, s, i], |ix| ((ix[0] * 7 + ix[1] * 3 + ix[2]) % 5) as f64 / 4.0 - 0.5);
    let flip = |t: &Tensor<f64>| Tensor::from_fn(t.dims().to_vec(), |ix| t.get(&[ix[0], s - 1 - ix[1], ix[2]]));
    let tape = Tape::new();
    let (out, (h_n, _)) = one.forward_seq(tape.constant(x.clone()), None);
    assert_eq!(out.shape().dims(), &[b, s, 2 * h]);
    assert_eq!(h_n.shape().dims(), &[2, b, h]);
    let (f_out, (f_h, _)) = fwd.forward_seq(tape.constant(x.clone()), None);
    let (r_out, (r_h, _)) = rev.forward_seq(tape.constant(flip(&x)), None);
    let out = out.value();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    for (bi_, t, u) in (0..b).flat_map(|bb| (0..s).flat_map(move |t| (0..h).map(move |u| (bb, t, u)))) {
        assert!(close(out.get(&[bi_, t, u]), f_out.value().get(&[bi_, t, u])), "forward half at {bi_}, {t}, {u}");
        assert!(close(out.get(&[bi_, t, h + u]), flip(&r_out.value()).get(&[bi_, t, u])), "reverse half at {bi_}, {t}, {u}");
    }
    let h_n = h_n.value();
    for (bb, u) in (0..b).flat_map(|bb| (0..h).map(move |u| (bb, u))) {
        assert!(close(h_n.get(&[0, bb, u]), f_h.value().get(&[0, bb, u])) && close(h_n.get(&[1, bb, u]), r_h.value().get(&[0, bb, u])));
    }
}

/// Dropout between layers acts in training only, on every layer's output but the last.
#[test]
fn dropout_between_layers_only_in_training() {
    let x = Tensor::from_fn([4, 6, 3], |ix| ((ix[0] + 2 * ix[1] + 3 * ix[2]) % 7) as f64 / 3.0 - 1.0);
    let mut gru = Gru::<f64>::with_config(3, 8, GruConfig { num_layers: 2, dropout: 0.5, ..Default::default() }, &mut rng(10));
    let mut plain = Gru::<f64>::with_config(3, 8, GruConfig { num_layers: 2, ..Default::default() }, &mut rng(10));
    for (a, b) in plain.named_params_mut().into_iter().zip(gru.named_params()) {
        a.1.set(b.1.value().clone()).unwrap();
    }
    let run = |m: &Gru<f64>| {
        let tape = Tape::new();
        m.forward(tape.constant(x.clone())).value()
    };
    assert_ne!(run(&gru), run(&plain), "training: the second layer reads dropped outputs");
    gru.eval();
    plain.eval();
    assert_eq!(run(&gru), run(&plain), "eval: no dropout");
    // one layer: nothing between layers to drop
    let single = Gru::<f64>::with_config(3, 8, GruConfig { dropout: 0.5, ..Default::default() }, &mut rng(11));
    assert_eq!(run(&single), run(&single));
}

/// Sets a 1-input, 1-unit layer's four parameters (`weight_ih`, `weight_hh`, `bias_ih`,
/// `bias_hh`, each with one entry per gate).
fn set_params<M: Module<f64>>(m: &mut M, values: [&[f64]; 4]) {
    let mut ps = m.named_params_mut();
    assert_eq!(ps.len(), 4);
    for ((_, p), v) in ps.iter_mut().zip(values) {
        let shape = p.value().shape().clone();
        p.set(Tensor::new(v.to_vec(), shape)).unwrap();
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[test]
fn one_step_lstm_matches_hand_computation() {
    let mut lstm = Lstm::<f64>::new(1, 1);
    // gates in PyTorch's order i, f, g, o
    set_params(&mut lstm, [&[0.5, -0.3, 0.8, 0.2], &[0.1, 0.4, -0.6, 0.3], &[0.0, 0.1, 0.2, -0.1], &[0.05, 0.0, -0.1, 0.2]]);
    let tape = Tape::new();
    let x = tape.constant(Tensor::new(vec![1.5], [1, 1, 1]));
    let h0 = tape.constant(Tensor::new(vec![0.4], [1, 1, 1]));
    let c0 = tape.constant(Tensor::new(vec![-0.2], [1, 1, 1]));
    let (out, (h_n, c_n)) = lstm.forward_seq(x, Some((h0, c0)));
    // x = 1.5, h₀ = 0.4, c₀ = -0.2:
    // i = σ( 0.5·1.5 + 0.0  + 0.1·0.4  + 0.05) = σ(0.84)  = 0.698465216...
    // f = σ(-0.3·1.5 + 0.1  + 0.4·0.4  + 0.0 ) = σ(-0.19) = 0.452642381...
    // g = tanh(0.8·1.5 + 0.2 - 0.6·0.4 - 0.1)  = tanh(1.06) = 0.785663859...
    // o = σ( 0.2·1.5 - 0.1  + 0.3·0.4  + 0.2 ) = σ(0.52)  = 0.627147766...
    // c = f·c₀ + i·g = 0.452642·(-0.2) + 0.698465·0.785664 = 0.458230400...
    // h = o·tanh(c) = 0.627148·0.428714 = 0.268821146...
    let (i, f, g, o) = (sigmoid(0.84), sigmoid(-0.19), 1.06f64.tanh(), sigmoid(0.52));
    let c = f * -0.2 + i * g;
    let h = o * c.tanh();
    assert!((c - 0.458230400629).abs() < 1e-11 && (h - 0.268821146684).abs() < 1e-11);
    assert!((out.value().item() - h).abs() < 1e-14, "{} vs {h}", out.value().item());
    assert!((h_n.value().item() - h).abs() < 1e-14);
    assert!((c_n.value().item() - c).abs() < 1e-14);
}

#[test]
fn one_step_gru_and_rnn_match_hand_computation() {
    let mut gru = Gru::<f64>::new(1, 1);
    // gates in PyTorch's order r, z, n
    set_params(&mut gru, [&[0.5, -0.3, 0.8], &[0.1, 0.4, -0.6], &[0.0, 0.1, 0.2], &[0.05, 0.0, -0.1]]);
    let tape = Tape::new();
    let x = tape.constant(Tensor::new(vec![1.5], [1, 1, 1]));
    let h0 = tape.constant(Tensor::new(vec![0.4], [1, 1, 1]));
    let (out, h_n) = gru.forward_seq(x, Some(h0));
    // x = 1.5, h₀ = 0.4:
    // r = σ( 0.5·1.5 + 0.0 + 0.1·0.4 + 0.05) = σ(0.84)  = 0.698465216...
    // z = σ(-0.3·1.5 + 0.1 + 0.4·0.4 + 0.0 ) = σ(-0.19) = 0.452642381...
    // n = tanh(0.8·1.5 + 0.2 + r·(-0.6·0.4 - 0.1)) = tanh(1.4 - 0.34·r) = 0.821860028...
    // h = (1 - z)·n + z·h₀ = 0.547358·0.821860 + 0.452642·0.4 = 0.630908300...
    let (r, z) = (sigmoid(0.84), sigmoid(-0.19));
    let n = (1.4 - 0.34 * r).tanh();
    let h = (1.0 - z) * n + z * 0.4;
    assert!((h - 0.630908300324).abs() < 1e-11);
    assert!((out.value().item() - h).abs() < 1e-14, "{} vs {h}", out.value().item());
    assert!((h_n.value().item() - h).abs() < 1e-14);

    // Elman: h = act(0.5·1.5 + 0.0 + 0.1·0.4 + 0.05) = act(0.84); tanh(0.84) = 0.685809062...
    for (nonlinearity, want) in [(Nonlinearity::Tanh, 0.84f64.tanh()), (Nonlinearity::Relu, 0.84)] {
        let rc = RnnConfig { nonlinearity, ..Default::default() };
        let mut rnn = Rnn::<f64>::with_config(1, 1, rc, &mut rng(0));
        set_params(&mut rnn, [&[0.5], &[0.1], &[0.0], &[0.05]]);
        let (out, _) = rnn.forward_seq(x, Some(h0));
        assert!((out.value().item() - want).abs() < 1e-14, "{nonlinearity:?}");
    }
    assert!((0.84f64.tanh() - 0.685809062229).abs() < 1e-11);
}

#[test]
fn output_shapes_and_pytorch_names() {
    let (b, s, i, h) = (3, 5, 4, 6);
    let x = Tensor::<f32>::ones([b, s, i]);
    for layers in [1, 2, 3] {
        let tape = Tape::new();
        let rnn = Rnn::<f32>::with_config(i, h, RnnConfig { num_layers: layers, ..Default::default() }, &mut rng(1));
        let (out, h_n) = rnn.forward_seq(tape.constant(x.clone()), None);
        assert_eq!((out.shape().dims(), h_n.shape().dims()), (&[b, s, h][..], &[layers, b, h][..]));
        let lstm = Lstm::<f32>::with_config(i, h, LstmConfig { num_layers: layers, ..Default::default() }, &mut rng(1));
        let (out, (h_n, c_n)) = lstm.forward_seq(tape.constant(x.clone()), None);
        assert_eq!(out.shape().dims(), &[b, s, h]);
        assert_eq!((h_n.shape().dims(), c_n.shape().dims()), (&[layers, b, h][..], &[layers, b, h][..]));
        let gru = Gru::<f32>::with_config(i, h, GruConfig { num_layers: layers, ..Default::default() }, &mut rng(1));
        let (out, h_n) = gru.forward_seq(tape.constant(x.clone()), None);
        assert_eq!((out.shape().dims(), h_n.shape().dims()), (&[b, s, h][..], &[layers, b, h][..]));
        // Module::forward is the all-steps output
        assert_eq!(gru.forward(tape.constant(x.clone())).value(), out.value());
    }

    let lstm = Lstm::<f32>::with_config(i, h, LstmConfig { num_layers: 2, ..Default::default() }, &mut rng(2));
    let names: Vec<(String, Vec<usize>)> = lstm.named_params().into_iter().map(|(n, p)| (n, p.value().dims().to_vec())).collect();
    let want = [
        ("weight_ih_l0", vec![4 * h, i]),
        ("weight_hh_l0", vec![4 * h, h]),
        ("bias_ih_l0", vec![4 * h]),
        ("bias_hh_l0", vec![4 * h]),
        ("weight_ih_l1", vec![4 * h, h]),
        ("weight_hh_l1", vec![4 * h, h]),
        ("bias_ih_l1", vec![4 * h]),
        ("bias_hh_l1", vec![4 * h]),
    ];
    assert_eq!(names, want.map(|(n, d)| (n.to_string(), d)));
    let gru = Gru::<f32>::with_config(i, h, GruConfig { num_layers: 2, bias: false, ..Default::default() }, &mut rng(2));
    let names: Vec<_> = gru.named_params().into_iter().map(|(n, p)| (n, p.value().dims()[0])).collect();
    assert_eq!(names, [("weight_ih_l0", 3 * h), ("weight_hh_l0", 3 * h), ("weight_ih_l1", 3 * h), ("weight_hh_l1", 3 * h)].map(|(n, d)| (n.to_string(), d)));
    assert_eq!(Rnn::<f32>::new(i, h).num_params(), h * i + h * h + 2 * h);

    // they compose in Sequential, with PyTorch's nested names
    manual_seed(3);
    let model = Sequential::<f32>::new().add(Lstm::new(i, h)).add(Gru::new(h, 2));
    let tape = Tape::new();
    assert_eq!(model.forward(tape.constant(x)).shape().dims(), &[b, s, 2]);
    let names: Vec<_> = model.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "0.weight_ih_l0");
    assert_eq!(names[7], "1.bias_hh_l0");

    // initialisation: U(-1/√H, 1/√H) for every weight and bias
    let big = Lstm::<f64>::with_config(2, 25, LstmConfig { num_layers: 2, ..Default::default() }, &mut rng(4));
    for (name, p) in big.named_params() {
        let max = p.value().as_slice().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(max <= 0.2 && max > 0.15, "{name}: max |w| {max}");
    }
}

#[test]
#[should_panic(expected = "wengert: Lstm(input 3, hidden 8): input of shape [2, 5, 4] must be [batch, seq, 3]")]
fn lstm_names_its_shapes_on_bad_input() {
    let lstm = Lstm::<f32>::new(3, 8);
    let tape = Tape::new();
    let _ = lstm.forward_seq(tape.constant(Tensor::zeros([2, 5, 4])), None);
}

#[test]
#[should_panic(expected = "wengert: Rnn(input 3, hidden 8): input of shape [5, 3] must be [batch, seq, 3]")]
fn rnn_rejects_unbatched_input() {
    let rnn = Rnn::<f32>::new(3, 8);
    let tape = Tape::new();
    let _ = rnn.forward(tape.constant(Tensor::zeros([5, 3])));
}

#[test]
#[should_panic(expected = "wengert: Lstm(input 3, hidden 8): c0 of shape [1, 2, 7] must be [num_layers, batch, hidden] = [1, 2, 8]")]
fn lstm_names_its_shapes_on_bad_cell_state() {
    let lstm = Lstm::<f32>::new(3, 8);
    let tape = Tape::new();
    let x = tape.constant(Tensor::zeros([2, 5, 3]));
    let _ = lstm.forward_seq(x, Some((tape.constant(Tensor::zeros([1, 2, 8])), tape.constant(Tensor::zeros([1, 2, 7])))));
}

#[test]
#[should_panic(expected = "wengert: Gru(input 3, hidden 8): input of shape [2, 0, 3] has no time steps")]
fn gru_rejects_empty_sequences() {
    let gru = Gru::<f32>::new(3, 8);
    let tape = Tape::new();
    let _ = gru.forward(tape.constant(Tensor::zeros([2, 0, 3])));
}

#[test]
fn rnn_sine_beats_repeating_the_last_value() {
    let r = rnn_sine::run(3, 1, false);
    let l = &r.losses;
    assert!(l[l.len() - 1] < 0.5 * l[0], "loss must fall: {l:?}");
    assert!(r.test_mse < 0.7 * r.baseline_mse, "test MSE {} vs baseline {}", r.test_mse, r.baseline_mse);
}
