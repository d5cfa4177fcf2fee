//! The cost of the tape itself: a chain of ops on a 1-element tensor, recorded and
//! differentiated, so the time is bookkeeping (node push, rule dispatch, adjoint
//! accumulation), not arithmetic. Throughput is in ops, so criterion reports ops/s.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use wengert::prelude::*;

/// Ops in the chain: each step is one mul and one add (2 ops).
const STEPS: usize = 500;

/// y ← y·x + x, `STEPS` times, recorded on `tape`; returns (x, y).
fn record(tape: &Tape<f32>) -> (Var<'_, f32>, Var<'_, f32>) {
    let x = tape.var(Tensor::scalar(0.5));
    let mut y = x;
    for _ in 0..STEPS {
        y = y * x + x;
    }
    (x, y)
}

fn chain(c: &mut Criterion) {
    let mut g = c.benchmark_group("tape");
    g.throughput(Throughput::Elements(2 * STEPS as u64));
    g.bench_function("forward_backward_1elem_1000ops", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let (x, y) = record(&tape);
            black_box(y.backward().wrt(x));
        })
    });
    g.bench_function("forward_only_1elem_1000ops", |b| {
        b.iter(|| {
            let tape = Tape::new();
            black_box(record(&tape).1.item());
        })
    });
    g.bench_function("plain_tensor_1elem_1000ops", |b| {
        b.iter(|| {
            let x = Tensor::<f32>::scalar(0.5);
            let mut y = x.clone();
            for _ in 0..STEPS {
                y = &(&y * &x) + &x;
            }
            black_box(y.item());
        })
    });
    g.finish();
}

criterion_group!(benches, chain);
criterion_main!(benches);
