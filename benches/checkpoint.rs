//! Activation checkpointing on a 24-block residual MLP (each block x + W₂·relu(W₁·x), width
//! 256, hidden 1024, batch 2048, f32): one training step's forward + backward, plain and with
//! every block under `Checkpoint`, for the peak memory of the step (this binary's counting
//! allocator) and its time (`roofline::Report`, % of the FMA peak measured in the same run).
//! The two runs' gradients are checked equal bit for bit before anything is timed.
//!
//! FLOPs counted: the matrix products of forward + backward (3x the forward's 2·m·n·k each);
//! the checkpointed step does one more forward on top, which is its price, so both rows are
//! given the plain step's work and their % of peak compare directly.

use criterion::{criterion_group, criterion_main, Criterion};
use wengert::core::roofline::{Limits, Report, Work};
use wengert::nn::prelude::*;

const BLOCKS: usize = 24;
const WIDTH: usize = 256;
const HIDDEN: usize = 1024;
const BATCH: usize = 2048;

#[path = "../tests/common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::peak_of;

fn model(checkpointed: bool) -> Sequential<f32> {
    wengert::nn::init::manual_seed(0);
    let mut m = Sequential::new();
    for _ in 0..BLOCKS {
        let mlp = Residual::new(Sequential::new().add(Linear::new(WIDTH, HIDDEN)).add(ReLU).add(Linear::new(HIDDEN, WIDTH)));
        if checkpointed {
            m.push(Checkpoint::new(mlp));
        } else {
            m.push(mlp);
        }
    }
    m
}

/// Forward + backward of a mean-square loss; the gradients, in parameter order.
fn step(model: &Sequential<f32>, x: &Tensor<f32>) -> Vec<Tensor<f32>> {
    let tape = Tape::new();
    let grads = model.forward(tape.constant(x.clone())).square().mean().backward_release();
    model.named_params().into_iter().map(|(_, p)| grads.param(p).expect("bound").clone()).collect()
}

fn checkpoint(c: &mut Criterion) {
    let x = Tensor::<f32>::from_fn([BATCH, WIDTH], |i| ((i[0] * 7 + i[1] * 3) % 17) as f32 / 17.0 - 0.5);
    let (plain, ckpt) = (model(false), model(true));
    let (g_plain, peak_plain) = peak_of(|| step(&plain, &x));
    let (g_ckpt, peak_ckpt) = peak_of(|| step(&ckpt, &x));
    assert!(g_plain == g_ckpt, "checkpointed gradients differ from the plain ones");
    drop((g_plain, g_ckpt));

    let flops = 3.0 * BLOCKS as f64 * 2.0 * (2.0 * (BATCH * WIDTH * HIDDEN) as f64);
    let limits = Limits::measure();
    let mut report = Report::new(limits);
    let shape = format!("{BLOCKS}x({WIDTH}-{HIDDEN}-{WIDTH}) b{BATCH} f32");
    let t_plain = report.add("residual MLP step, plain", &shape, Work::Flops(flops), || step(&plain, &x).len()).seconds;
    let t_ckpt = report.add("residual MLP step, checkpointed", &shape, Work::Flops(flops), || step(&ckpt, &x).len()).seconds;
    println!("{report}");
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!(
        "peak memory of a step: plain {:.0} MiB, checkpointed {:.0} MiB ({:.2}x lower); time {:.3} s vs {:.3} s ({:.2}x); \
         gradients equal bit for bit (FMA peak {:.0} GFLOP/s in this run)",
        mib(peak_plain),
        mib(peak_ckpt),
        peak_plain as f64 / peak_ckpt as f64,
        t_plain,
        t_ckpt,
        t_ckpt / t_plain,
        limits.peak_flops / 1e9
    );

    let mut g = c.benchmark_group("checkpoint");
    g.sample_size(10);
    g.bench_function("residual_mlp_24_plain", |b| b.iter(|| step(&plain, &x).len()));
    g.bench_function("residual_mlp_24_checkpointed", |b| b.iter(|| step(&ckpt, &x).len()));
    g.finish();
}

criterion_group!(benches, checkpoint);
criterion_main!(benches);
