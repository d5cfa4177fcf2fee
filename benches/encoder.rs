//! The BERT encoder of all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, feed-forward 1536)
//! at batch 32 x 128 tokens: the forward pass (no gradient recording, as inference) and
//! forward + backward (every parameter's gradient), in eval mode (no dropout) so each call
//! does the same work. Random weights of the pretrained shapes: the speed does not depend on
//! the values, so the bench needs no download.
//!
//! Before criterion runs, the FMA peak is measured in the same process
//! (`roofline::Limits::measure`) and both passes are printed as tokens/s, GFLOP/s and % of
//! that peak. FLOPs counted: the matrix products (2·m·n·k each; the backward's two products
//! per forward product make forward + backward 3x the forward), not the elementwise work.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wengert::core::roofline::{Limits, Report, Work};
use wengert::nn::models::bert::{BertConfig, BertInput, BertModel};
use wengert::prelude::*;

const BATCH: usize = 32;
const LEN: usize = 128;

fn minilm() -> (BertModel<f32>, BertInput) {
    let cfg = BertConfig { hidden_size: 384, num_hidden_layers: 6, num_attention_heads: 12, intermediate_size: 1536, ..BertConfig::default() };
    wengert::nn::init::manual_seed(0);
    let mut model = BertModel::new(&cfg).without_pooler();
    model.eval();
    let ids = Tensor::from_fn([BATCH, LEN], |i| 1000 + (i[0] * 7919 + i[1] * 104729) % 28000);
    (model, BertInput::new(ids))
}

/// Matrix-product FLOPs of one forward pass.
fn forward_flops(cfg: &BertConfig) -> f64 {
    let (t, h, i) = ((BATCH * LEN) as f64, cfg.hidden_size as f64, cfg.intermediate_size as f64);
    let projections = 4.0 * 2.0 * t * h * h + 2.0 * 2.0 * t * h * i;
    let attention = 2.0 * 2.0 * BATCH as f64 * (LEN * LEN) as f64 * h; // q·kᵀ and p·v over all heads
    cfg.num_hidden_layers as f64 * (projections + attention)
}

fn forward(model: &BertModel<f32>, input: &BertInput) -> f32 {
    let tape = Tape::new();
    tape.no_grad(|| model.last_hidden_state(&tape, input).value().as_slice()[0])
}

fn forward_backward(model: &BertModel<f32>, input: &BertInput) -> f32 {
    let tape = Tape::new();
    let h = model.last_hidden_state(&tape, input);
    let grads = h.square().mean().backward_release();
    grads.param(&model.encoder.layer[0].attention.self_attention.query.weight).expect("on the tape").as_slice()[0]
}

fn encoder(c: &mut Criterion) {
    let (model, input) = minilm();
    let flops = forward_flops(model.config());
    let limits = Limits::measure();
    let mut report = Report::new(limits);
    let fwd = report.add("MiniLM encoder forward", "32x128 tokens f32", Work::Flops(flops), || forward(&model, &input)).seconds;
    let both = report.add("MiniLM encoder fwd+bwd", "32x128 tokens f32", Work::Flops(3.0 * flops), || forward_backward(&model, &input)).seconds;
    println!("{report}");
    let tokens = (BATCH * LEN) as f64;
    println!("forward: {:.0} tokens/s; forward+backward: {:.0} tokens/s (FMA peak {:.0} GFLOP/s in this run)", tokens / fwd, tokens / both, limits.peak_flops / 1e9);

    let mut g = c.benchmark_group("encoder");
    g.throughput(Throughput::Elements((BATCH * LEN) as u64));
    g.sample_size(10);
    g.bench_function("minilm_forward_32x128", |b| b.iter(|| forward(&model, &input)));
    g.bench_function("minilm_forward_backward_32x128", |b| b.iter(|| forward_backward(&model, &input)));
    g.finish();
}

criterion_group!(benches, encoder);
criterion_main!(benches);
