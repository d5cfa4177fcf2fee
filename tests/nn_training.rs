//! The training machinery end to end: fit with validation and early stopping, a cut graph
//! reported by name, frozen parameters, dropout train/eval, save/load errors naming tensors.

use wengert::core::{Tape, Tensor, Var};
use wengert::nn::data::Dataset;
use wengert::nn::init::manual_seed;
use wengert::nn::prelude::*;
use wengert::nn::serialize::{load_module, save, save_module};
use wengert::nn::train::{accuracy, EarlyStopping};
use wengert::nn::Error;

/// Two Gaussian blobs in 2-D, labels 0/1.
fn blobs(n: usize) -> Dataset<f32, usize> {
    let x = Tensor::from_fn([n, 2], |i| {
        let c = if i[0] % 2 == 0 { -1.5 } else { 1.5 };
        c + (((i[0] * 7919 + i[1] * 104729) % 1000) as f32 / 1000.0 - 0.5)
    });
    let y = Tensor::from_fn([n], |i| i[0] % 2);
    Dataset::new(x, y).unwrap()
}

#[test]
fn fit_with_validation_split_reports_metric_and_writes_curves() {
    manual_seed(1);
    let mut model = Sequential::new().add(Linear::new(2, 8)).add(Tanh).add(Linear::new(8, 2));
    let mut opt = Adam::new(AdamConfig { lr: 1e-2, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("curves.svg");
    let cfg = FitConfig { epochs: 15, batch_size: 16, validation_split: Some(0.25), verbose: false, plot: Some(plot.clone()), ..Default::default() };
    let h = fit(&mut model, &mut opt, &blobs(200), |o, y| cross_entropy(o, y), Some(accuracy()), &cfg).unwrap();
    assert_eq!((h.train_loss.len(), h.val_loss.len(), h.val_metric.len(), h.train_metric.len()), (15, 15, 15, 15));
    assert!(h.train_metric[14] > h.train_metric[0] || h.train_metric[0] > 0.95);
    assert!(h.train_loss[14] < h.train_loss[0]);
    assert!(h.val_metric[14] > 0.95, "val accuracy {}", h.val_metric[14]);
    let svg = std::fs::read_to_string(plot).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 4, "train loss, val loss, train acc, val acc");
}

#[test]
fn early_stopping_stops_and_restores_the_best_epoch() {
    manual_seed(2);
    let mut model = Sequential::new().add(Linear::new(2, 2));
    // a learning rate so large the loss diverges after the first epochs
    let mut opt = Sgd::new(SgdConfig { lr: 50.0, ..Default::default() });
    let es = EarlyStopping { patience: 2, min_delta: 0.0, restore_best: true };
    let cfg = FitConfig { epochs: 50, batch_size: 200, early_stopping: Some(es), verbose: false, ..Default::default() };
    let data = blobs(200);
    let h = fit(&mut model, &mut opt, &data, |o, y| cross_entropy(o, y), None, &cfg).unwrap();
    assert!(h.stopped_early && h.train_loss.len() < 50, "{:?}", h.train_loss);
    let best = h.train_loss.iter().cloned().fold(f64::INFINITY, f64::min);
    let best_epoch = h.train_loss.iter().position(|&l| l == best).unwrap();
    assert_eq!(h.train_loss.len(), best_epoch + 1 + 2, "stops `patience` epochs after the best");
}

/// A model with a branch the loss never reaches.
#[derive(Module)]
struct TwoHeads {
    used: Linear<f32>,
    unused: Linear<f32>,
}

impl TwoHeads {
    fn forward<'t>(&self, x: Var<'t, f32>) -> Var<'t, f32> {
        self.used.forward(x)
    }
}

#[test]
fn a_cut_graph_is_an_error_naming_the_parameter_unless_frozen() {
    let mut m = TwoHeads { used: Linear::new(2, 2), unused: Linear::new(2, 2) };
    let mut opt = Sgd::new(SgdConfig::default());
    let before = m.used.weight.value().clone();
    let step = |m: &mut TwoHeads, opt: &mut Sgd<f32>| {
        let tape = Tape::new();
        let loss = cross_entropy(m.forward(tape.constant(Tensor::ones([3, 2]))), &Tensor::from_slice(&[0usize, 1, 1]));
        let grads = loss.backward();
        opt.step(m, &grads)
    };
    match step(&mut m, &mut opt) {
        Err(Error::NoGradient { param }) => assert_eq!(param, "unused.weight"),
        other => panic!("expected NoGradient, got {other:?}"),
    }
    assert_eq!(m.used.weight.value(), &before, "no parameter moves in a failed step");
    m.unused.weight.set_trainable(false);
    m.unused.bias.as_mut().unwrap().set_trainable(false);
    step(&mut m, &mut opt).unwrap();
    assert_ne!(m.used.weight.value(), &before);
}

#[test]
fn dropout_scales_in_training_and_is_identity_in_eval() {
    manual_seed(3);
    let mut model = Sequential::<f64>::new().add(Dropout::new(0.25));
    let tape = Tape::new();
    let x = tape.constant(Tensor::ones([100, 100]));
    let y = model.forward(x).value();
    let zeros = y.as_slice().iter().filter(|&&v| v == 0.0).count();
    assert!((2200..2800).contains(&zeros), "{zeros} of 10000 dropped");
    assert!(y.as_slice().iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-12));
    model.eval();
    assert_eq!(model.forward(x).value(), Tensor::ones([100, 100]));
}

#[test]
fn loading_weights_names_the_offending_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let model = Sequential::<f32>::new().add(Linear::new(3, 2));
    save_module(&path, &model).unwrap();
    let mut other = Sequential::<f32>::new().add(Linear::new(3, 2)).add(Linear::new(2, 2));
    match load_module(&path, &mut other) {
        Err(Error::MissingTensor { name }) => assert_eq!(name, "1.weight"),
        e => panic!("{e:?}"),
    }
    let mut wrong = Sequential::<f32>::new().add(Linear::new(4, 2));
    match load_module(&path, &mut wrong) {
        Err(Error::TensorMismatch { name, .. }) => assert_eq!(name, "0.weight"),
        e => panic!("{e:?}"),
    }
    let extra = Tensor::<f32>::zeros([1]);
    let w = model.named_params()[0].1.value().clone();
    let b = model.named_params()[1].1.value().clone();
    save(&path, [("0.weight", &w), ("0.bias", &b), ("9.bias", &extra)]).unwrap();
    let mut same = Sequential::<f32>::new().add(Linear::new(3, 2));
    match load_module(&path, &mut same) {
        Err(Error::UnexpectedTensor { name }) => assert_eq!(name, "9.bias"),
        e => panic!("{e:?}"),
    }
    // a truncated file is a Format error, and the model is left unchanged
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let snapshot = same.named_params()[0].1.value().clone();
    assert!(matches!(load_module(&path, &mut same), Err(Error::Format { .. })));
    assert_eq!(same.named_params()[0].1.value(), &snapshot);
}

/// `fit_with`: the schedule sets each step's rate, clipping bounds each update (SGD moves the
/// parameters by lr·g, so ‖Δθ‖ <= lr·max_norm), `on_step` sees every step and the norm before
/// clipping, and `on_epoch` can compute its own metric and stop the run.
#[test]
fn fit_with_schedules_clips_and_calls_back() {
    use wengert::nn::train::{fit_with, Control, FitHooks};
    manual_seed(5);
    let x = Tensor::from_fn([16, 3], |i| ((i[0] * 7 + i[1] * 5) % 11) as f32 - 5.0);
    let y = Tensor::new((0..16).map(|i| i % 3).collect(), [16]);
    let data = Dataset::new(x.clone(), y).unwrap();
    let mut model = Sequential::<f32>::new().add(Linear::new(3, 8)).add(ReLU).add(Linear::new(8, 3));
    let mut opt = Sgd::new(SgdConfig { lr: 1.0, ..Default::default() });
    let flat = |m: &Sequential<f32>| m.named_params().into_iter().flat_map(|(_, p)| p.value().to_vec()).collect::<Vec<f32>>();
    let mut reports = Vec::new();
    let mut moves = Vec::new();
    let mut last = flat(&model);
    let mut own_metric = Vec::new();
    let hooks = FitHooks {
        lr_at_step: Some(Box::new(|step| 0.5 / (1.0 + step as f64))),
        clip_grad_norm: Some(0.01),
        on_step: Some(Box::new(|r| reports.push(*r))),
        on_epoch: Some(Box::new(|e, m: &Sequential<f32>| {
            let now = flat(m);
            moves.push(now.iter().zip(&last).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt());
            last = now;
            let tape = Tape::new();
            own_metric.push(m.forward(tape.constant(x.clone())).value().as_slice()[0]);
            if e.epoch == 2 { Control::Stop } else { Control::Continue }
        })),
    };
    let cfg = FitConfig { epochs: 10, batch_size: 16, verbose: false, ..Default::default() };
    let h = fit_with(&mut model, &mut opt, &data, |o, t| cross_entropy(o, t), None, &cfg, hooks).unwrap();
    assert_eq!((h.train_loss.len(), h.stopped_early), (3, true));
    assert_eq!(reports.len(), 3, "one step per epoch at batch 16");
    for (k, r) in reports.iter().enumerate() {
        assert_eq!((r.step, r.epoch), (k, k));
        assert!((r.lr - 0.5 / (1.0 + k as f64)).abs() < 1e-12);
        assert!(r.grad_norm.unwrap() > 0.01, "the norm before clipping");
        // one step per epoch: the epoch's move is lr·(clipped gradient)
        assert!(moves[k] <= r.lr * 0.01 * 1.0001, "step {k} moved {} > {}", moves[k], r.lr * 0.01);
    }
    assert_eq!(own_metric.len(), 3);
}
