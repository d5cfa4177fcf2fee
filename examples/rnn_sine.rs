//! Next-value prediction on noisy sine waves with a recurrent network.
//!
//! Each sample is 20 noisy steps of `sin(ω·t + φ) + N(0, 0.05²)`, with a frequency ω drawn
//! from [0.5, 1.5] radians per step and a phase φ from [0, 2π); the target is the (noisy)
//! 21st value. An LSTM with 32 hidden units reads the sequence, a linear head maps its last
//! hidden state to the prediction, and Adam minimises the mean squared error. The naive
//! forecast "repeat the last value" is the baseline to beat: it cannot know how fast the wave
//! is turning, which the network has to infer from the sequence.
//!
//! Run: `cargo run --release --example rnn_sine` (trains the LSTM, then a GRU and a tanh RNN of
//! the same width for comparison).

use std::f64::consts::PI;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wengert::nn::data::Dataset;
use wengert::nn::prelude::*;

/// Steps the network reads.
pub const SEQ_LEN: usize = 20;
/// Width of the recurrent state.
pub const HIDDEN: usize = 32;
/// Standard deviation of the observation noise.
pub const NOISE: f64 = 0.05;
/// Training sequences.
pub const N_TRAIN: usize = 1024;
/// Test sequences (drawn independently of the training ones).
pub const N_TEST: usize = 512;

/// Which recurrent layer reads the sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`Lstm`]
    Lstm,
    /// [`Gru`]
    Gru,
    /// [`Rnn`] with tanh
    Rnn,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct Report {
    /// mean squared error of the trained model on the test set
    pub test_mse: f64,
    /// mean squared error of "repeat the last value" on the same test set
    pub baseline_mse: f64,
    /// mean training loss (MSE) of each epoch
    pub losses: Vec<f64>,
    /// wall-clock training time in seconds
    pub seconds: f64,
}

/// `n` sequences `[n, SEQ_LEN, 1]` and their next values `[n, 1]`.
pub fn sine_waves(n: usize, rng: &mut StdRng) -> Dataset<f32, f32> {
    let noise = Tensor::<f64>::normal([n, SEQ_LEN + 1], 0.0, NOISE, rng);
    let mut x = Vec::with_capacity(n * SEQ_LEN);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let omega = rng.gen_range(0.5..1.5);
        let phase = rng.gen_range(0.0..2.0 * PI);
        let value = |t: usize| ((omega * t as f64 + phase).sin() + noise.as_slice()[i * (SEQ_LEN + 1) + t]) as f32;
        x.extend((0..SEQ_LEN).map(value));
        y.push(value(SEQ_LEN));
    }
    Dataset::new(Tensor::new(x, [n, SEQ_LEN, 1]), Tensor::new(y, [n, 1])).expect("x and y have n rows")
}

/// The last time step of a `[batch, seq, H]` output: `[batch, H]`.
fn last_step<'t>(h: Var<'t, f32>) -> Var<'t, f32> {
    let d = h.shape();
    h.narrow(1, d[1] - 1, 1).reshape([d[0], d[2]])
}

/// recurrent layer -> last step -> Linear(H, 1)
fn model(kind: Kind) -> Sequential<f32> {
    let seq = Sequential::new();
    let seq = match kind {
        Kind::Lstm => seq.add(Lstm::new(1, HIDDEN)),
        Kind::Gru => seq.add(Gru::new(1, HIDDEN)),
        Kind::Rnn => seq.add(Rnn::new(1, HIDDEN)),
    };
    seq.add(Lambda(last_step)).add(Linear::new(HIDDEN, 1))
}

/// Mean squared error of a batch of predictions `[batch, 1]`.
fn loss<'t>(out: Var<'t, f32>, y: &Tensor<f32>) -> Var<'t, f32> {
    mse_loss(out, out.tape().constant(y.clone()), Reduction::Mean)
}

fn mse(pred: &[f32], target: &[f32]) -> f64 {
    let sum: f64 = pred.iter().zip(target).map(|(&p, &t)| (p as f64 - t as f64).powi(2)).sum();
    sum / target.len().max(1) as f64
}

/// Trains a `kind` model for `epochs` epochs (batch 32, Adam lr 5e-3) on [`N_TRAIN`] sequences
/// and scores it on [`N_TEST`] others, everything seeded by `seed`.
pub fn run_kind(kind: Kind, epochs: usize, seed: u64, verbose: bool) -> Report {
    let mut rng = StdRng::seed_from_u64(seed);
    let train = sine_waves(N_TRAIN, &mut rng);
    let test = sine_waves(N_TEST, &mut rng);

    wengert::nn::init::manual_seed(seed);
    let mut net = model(kind);
    let mut opt = Adam::new(AdamConfig { lr: 5e-3, ..Default::default() });
    let cfg = FitConfig { epochs, batch_size: 32, seed, verbose, ..Default::default() };
    let history = fit(&mut net, &mut opt, &train, loss, None, &cfg).expect("every parameter gets a gradient");

    let pred = predict(&mut net, &test.x, 256).expect("batch size 256");
    let last: Vec<f32> = test.x.as_slice().chunks(SEQ_LEN).map(|s| s[SEQ_LEN - 1]).collect();
    Report {
        test_mse: mse(pred.as_slice(), test.y.as_slice()),
        baseline_mse: mse(&last, test.y.as_slice()),
        losses: history.train_loss,
        seconds: history.seconds,
    }
}

/// [`run_kind`] with the LSTM.
pub fn run(epochs: usize, seed: u64, verbose: bool) -> Report {
    run_kind(Kind::Lstm, epochs, seed, verbose)
}

#[allow(dead_code)]
fn main() {
    let epochs = 30;
    println!("LSTM({HIDDEN}) + Linear, {N_TRAIN} training sequences of {SEQ_LEN} steps, {epochs} epochs\n");
    let r = run(epochs, 0, true);
    println!("\ntraining time {:.2} s", r.seconds);
    println!("test MSE {:.5}   repeat-the-last-value baseline {:.5}   ratio {:.3}", r.test_mse, r.baseline_mse, r.test_mse / r.baseline_mse);
    println!("(noise floor: the target's own noise variance {:.5})", NOISE * NOISE);

    println!("\nthe same task with each recurrent layer ({epochs} epochs):");
    println!("{:<6} {:>10} {:>10} {:>7} {:>9}", "layer", "test MSE", "baseline", "ratio", "seconds");
    for kind in [Kind::Lstm, Kind::Gru, Kind::Rnn] {
        let r = if kind == Kind::Lstm { r.clone() } else { run_kind(kind, epochs, 0, false) };
        println!(
            "{:<6} {:>10.5} {:>10.5} {:>7.3} {:>9.2}",
            format!("{kind:?}"),
            r.test_mse,
            r.baseline_mse,
            r.test_mse / r.baseline_mse,
            r.seconds
        );
    }
}
