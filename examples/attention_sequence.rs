//! A tiny transformer encoder learns to REVERSE digit sequences of length 6 to 8: input
//! `3 1 4 1 5 9 2 _`, target `2 9 5 1 4 1 3` (`_` is padding up to 8 positions). Output
//! position i must copy input position n-1-i, where n is the sequence's own length: a routing
//! by position that also depends on how many tokens are real, so the model has to learn it
//! with attention (the first layer can measure n, the second route by it).
//!
//! Model: token embedding + learned positional encoding, two post-norm
//! `TransformerEncoderLayer`s (d_model 64, 4 heads, feed-forward 128, no dropout), then a
//! per-position Linear to the 10 digits. Padding keys are hidden with `key_padding_mask` and
//! padding positions are left out of the loss. Trained with cross-entropy and Adam on fresh
//! random sequences each step; evaluated on 1000 held-out random sequences from another seed
//! (1.1·10⁸ sequences are possible and 1000 steps see 64 000, so only a few short held-out
//! ones can have been trained on).
//! Run: `cargo run --release --example attention_sequence`

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wengert::nn::prelude::*;

/// Digits 0..9 (the classes predicted).
pub const VOCAB: usize = 10;
/// The padding token (an extra embedding row).
pub const PAD: usize = VOCAB;
/// Positions per sequence (the longest length).
pub const LEN: usize = 8;
/// The shortest length.
pub const MIN_LEN: usize = 6;
const D_MODEL: usize = 64;
const HEADS: usize = 4;
const FEEDFORWARD: usize = 128;
const LAYERS: usize = 2;
const BATCH: usize = 64;
const HELD_OUT: usize = 1000;

/// What a run produced.
pub struct Report {
    /// fraction of held-out sequences reversed exactly (every real position right)
    pub sequence_accuracy: f64,
    /// fraction of held-out real (not padding) positions predicted right (chance: 0.1)
    pub token_accuracy: f64,
    /// training loss (mean cross-entropy per position) at every step
    pub losses: Vec<f64>,
    /// training time in seconds
    pub seconds: f64,
    /// a few held-out (input, predicted output) pairs, without padding
    pub samples: Vec<(Vec<usize>, Vec<usize>)>,
}

/// Embedding + positions -> encoder layers -> per-position logits. The derive names the
/// parameters from the fields: `embed.weight`, `layers.0.self_attn.in_proj_weight`, ...
#[derive(Module)]
pub struct Reverser {
    embed: Embedding<f32>,
    pos: LearnedPositionalEncoding<f32>,
    layers: Vec<TransformerEncoderLayer<f32>>,
    head: Linear<f32>,
}

impl Reverser {
    fn new() -> Self {
        let cfg = TransformerEncoderLayerConfig { dim_feedforward: FEEDFORWARD, dropout: 0.0, ..TransformerEncoderLayerConfig::new(D_MODEL, HEADS) };
        Reverser {
            embed: Embedding::new(VOCAB + 1, D_MODEL),
            pos: LearnedPositionalEncoding::new(LEN, D_MODEL),
            layers: (0..LAYERS).map(|_| TransformerEncoderLayer::with_config(cfg)).collect(),
            head: Linear::new(D_MODEL, VOCAB),
        }
    }

    /// `x` holds digit ids as numbers, `[B, L]` (the `Module` entry point).
    fn forward<'t>(&self, x: Var<'t, f32>) -> Var<'t, f32> {
        let ids = x.value().map(|v| v as usize);
        self.logits(x.tape(), &ids)
    }

    /// Logits `[B, L, VOCAB]` for padded digit sequences `[B, L]`; padding keys are masked.
    fn logits<'t>(&self, tape: &'t Tape<f32>, ids: &Tensor<usize>) -> Var<'t, f32> {
        let padding = ids.map(|i| i == PAD);
        let h = self.pos.forward(self.embed.lookup(tape, ids));
        let h = self.layers.iter().fold(h, |h, l| l.forward_masked(h, None, Some(&padding)));
        self.head.forward(h)
    }
}

/// A batch: `n` random sequences of random lengths, padded to `[n, L]`, the flat indices of
/// their real positions in `[n·L]`, and the reversed digits at those positions.
struct Batch {
    x: Tensor<usize>,
    real: Vec<usize>,
    y: Tensor<usize>,
}

fn batch(n: usize, rng: &mut StdRng) -> Batch {
    let (mut x, mut real, mut y) = (vec![PAD; n * LEN], Vec::new(), Vec::new());
    for s in 0..n {
        let len = rng.gen_range(MIN_LEN..=LEN);
        let seq = &mut x[s * LEN..s * LEN + len];
        seq.iter_mut().for_each(|d| *d = rng.gen_range(0..VOCAB));
        real.extend(s * LEN..s * LEN + len);
        y.extend(seq.iter().rev());
    }
    let m = y.len();
    Batch { x: Tensor::new(x, [n, LEN]), real, y: Tensor::new(y, [m]) }
}

/// Trains for `steps` Adam steps (batch 64, lr 1e-3 after a 100-step warm-up) with everything
/// seeded by `seed`, then scores 1000 held-out sequences.
pub fn run(steps: usize, seed: u64, verbose: bool) -> Report {
    wengert::nn::init::manual_seed(seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model = Reverser::new();
    let lr = 1e-3;
    let mut opt = Adam::new(AdamConfig { lr, ..Default::default() });
    let warmup = 100;

    let start = Instant::now();
    let mut losses = Vec::with_capacity(steps);
    for step in 0..steps {
        opt.set_lr(lr * ((step + 1) as f64 / warmup as f64).min(1.0));
        let b = batch(BATCH, &mut rng);
        let tape = Tape::new();
        let logits = model.logits(&tape, &b.x).reshape([BATCH * LEN, VOCAB]).index_select(0, &b.real);
        let loss = cross_entropy(logits, &b.y);
        losses.push(loss.item() as f64);
        let grads = loss.backward_release();
        opt.step(&mut model, &grads).expect("every parameter gets a gradient");
        if verbose && (step + 1) % 100 == 0 {
            let recent = &losses[losses.len() - 100..];
            println!("step {:>5}  loss {:.4}", step + 1, recent.iter().sum::<f64>() / 100.0);
        }
    }
    let seconds = start.elapsed().as_secs_f64();

    model.eval();
    let mut test_rng = StdRng::seed_from_u64(seed ^ 0x7e57_da7a);
    let b = batch(HELD_OUT, &mut test_rng);
    let tape = Tape::new();
    let pred = tape.no_grad(|| model.logits(&tape, &b.x).value()).argmax(-1, false);
    let (p, x) = (pred.as_slice(), b.x.as_slice());
    let (mut right, mut whole, mut samples, mut k) = (0, 0, Vec::new(), 0);
    for s in 0..HELD_OUT {
        let len = x[s * LEN..(s + 1) * LEN].iter().take_while(|&&d| d != PAD).count();
        let (guess, truth) = (&p[s * LEN..s * LEN + len], &b.y.as_slice()[k..k + len]);
        k += len;
        let r = guess.iter().zip(truth).filter(|(a, b)| a == b).count();
        right += r;
        whole += usize::from(r == len);
        if samples.len() < 4 {
            samples.push((x[s * LEN..s * LEN + len].to_vec(), guess.to_vec()));
        }
    }
    Report { sequence_accuracy: whole as f64 / HELD_OUT as f64, token_accuracy: right as f64 / k as f64, losses, seconds, samples }
}

#[allow(dead_code)]
fn main() {
    let steps = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let r = run(steps, 0, true);
    println!("\ntraining time {:.1} s for {steps} steps of {BATCH} sequences", r.seconds);
    println!(
        "held-out sequence accuracy {:.1}%, token accuracy {:.1}% ({HELD_OUT} random sequences of {MIN_LEN}-{LEN} digits)",
        100.0 * r.sequence_accuracy,
        100.0 * r.token_accuracy
    );
    let show = |s: &[usize]| s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(" ");
    for (x, y) in &r.samples {
        println!("  {}  ->  {}", show(x), show(y));
    }
}
