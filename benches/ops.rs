//! Op throughput by family, f32. Elementwise, broadcast, reduce and softmax report bytes moved
//! (criterion prints GB/s); matmul and conv report floating-point operations (FLOP/s).
//! Run: `cargo bench --bench ops` (add a filter such as `matmul` to run one family).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use std::hint::black_box;
use wengert::prelude::*;

fn rand_tensor(shape: &[usize], seed: u64) -> Tensor<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Tensor::uniform(shape.to_vec(), -1.0, 1.0, &mut rng)
}

const M: usize = 1 << 20;
const F32: u64 = 4;

fn elementwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("elementwise");
    let (a, b, d) = (rand_tensor(&[M], 1), rand_tensor(&[M], 2), rand_tensor(&[M], 3));
    // two ops: t = a*b (read 2, write 1), t + d (read 2, write 1)
    g.throughput(Throughput::Bytes(6 * F32 * M as u64));
    // written as users write it: the product is a temporary the sum may overwrite
    g.bench_function("a*b+c/1M", |bch| bch.iter(|| black_box(&a * &b + &d)));
    g.throughput(Throughput::Bytes(2 * F32 * M as u64));
    g.bench_function("exp/1M", |bch| bch.iter(|| black_box(a.exp())));
    let positive = a.map(|v| v.abs() + 0.5);
    g.bench_function("ln/1M", |bch| bch.iter(|| black_box(positive.ln())));
    let angles = a.map(|v| v * 10.0);
    g.bench_function("sin/1M", |bch| bch.iter(|| black_box(angles.sin())));
    g.bench_function("powf_0.5/1M", |bch| bch.iter(|| black_box(positive.powf(0.5))));
    g.bench_function("relu/1M", |bch| bch.iter(|| black_box(a.relu())));
    g.finish();
}

fn broadcast(c: &mut Criterion) {
    let mut g = c.benchmark_group("broadcast");
    let x = rand_tensor(&[1024, 1024], 4);
    let same = rand_tensor(&[1024, 1024], 5);
    let row = rand_tensor(&[1, 1024], 6);
    let col = rand_tensor(&[1024, 1], 7);
    g.throughput(Throughput::Bytes(3 * F32 * M as u64));
    g.bench_function("add_same/1024x1024", |b| b.iter(|| black_box(&x + &same)));
    g.throughput(Throughput::Bytes(2 * F32 * M as u64));
    g.bench_function("add_row/1024x1024", |b| b.iter(|| black_box(&x + &row)));
    g.bench_function("add_col/1024x1024", |b| b.iter(|| black_box(&x + &col)));
    g.finish();
}

fn reduce(c: &mut Criterion) {
    let mut g = c.benchmark_group("reduce");
    let x = rand_tensor(&[M], 8);
    let m = rand_tensor(&[1024, 1024], 9);
    g.throughput(Throughput::Bytes(F32 * M as u64));
    g.bench_function("sum/1M", |b| b.iter(|| black_box(x.sum())));
    g.bench_function("sum_rows/1024x1024", |b| b.iter(|| black_box(m.sum_axes(&[1], false))));
    g.bench_function("sum_cols/1024x1024", |b| b.iter(|| black_box(m.sum_axes(&[0], false))));
    g.bench_function("max_rows/1024x1024", |b| b.iter(|| black_box(m.max_axes(&[1], false))));
    g.bench_function("logsumexp_rows/1024x1024", |b| b.iter(|| black_box(m.logsumexp_axes(&[1], false))));
    g.finish();
}

fn softmax(c: &mut Criterion) {
    let mut g = c.benchmark_group("softmax");
    let m = rand_tensor(&[1024, 1024], 10);
    g.throughput(Throughput::Bytes(2 * F32 * M as u64));
    g.bench_function("softmax_last/1024x1024", |b| b.iter(|| black_box(m.softmax(-1))));
    g.bench_function("log_softmax_last/1024x1024", |b| b.iter(|| black_box(m.log_softmax(-1))));
    g.bench_function("softmax_axis0/1024x1024", |b| b.iter(|| black_box(m.softmax(0))));
    g.finish();
}

/// Activations forward and backward through the tape, and the indexing and masking ops
/// layers are built from. Throughput counts the tensor's bytes once.
fn layers(c: &mut Criterion) {
    let mut g = c.benchmark_group("layers");
    let x = rand_tensor(&[1024, 1024], 20);
    let y = rand_tensor(&[1024, 1024], 21);
    g.throughput(Throughput::Bytes(F32 * M as u64));
    type Act = for<'t> fn(Var<'t, f32>) -> Var<'t, f32>;
    let acts: [(&str, Act); 7] =
        [("gelu", |v| v.gelu()), ("gelu_tanh", |v| v.gelu_tanh()), ("erf", |v| v.erf()), ("silu", |v| v.silu()), ("sigmoid", |v| v.sigmoid()), ("leaky_relu", |v| v.leaky_relu(0.01)), ("elu", |v| v.elu(1.0))];
    for (name, f) in acts {
        g.bench_function(format!("{name}_fwd_bwd/1M"), |b| {
            b.iter(|| {
                let tape = Tape::new();
                let v = tape.var(x.clone());
                black_box(f(v).sum().backward_release())
            })
        });
    }
    g.bench_function("maximum_fwd_bwd/1M", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let (u, v) = (tape.var(x.clone()), tape.var(y.clone()));
            black_box(u.maximum(v).sum().backward_release())
        })
    });
    let dropout = Dropout::new(0.5);
    g.bench_function("dropout_fwd/1M", |b| b.iter(|| black_box(dropout.forward(Tape::new().constant(x.clone())).value())));
    let mask = x.gt(&Tensor::scalar(0.0));
    g.bench_function("where/1M", |b| b.iter(|| black_box(Tensor::where_(&mask, &x, &y))));
    g.bench_function("argmax_rows/1024x1024", |b| b.iter(|| black_box(x.argmax(1, false))));
    let index = Tensor::from_fn([1024, 1024], |i| (i[0] * 31 + i[1] * 7) % 1024);
    g.bench_function("gather_axis1/1024x1024", |b| b.iter(|| black_box(x.gather(1, &index))));
    let emb = Embedding::<f32>::new(10_000, 256);
    let ids = Tensor::from_fn([64, 128], |i| (i[0] * 131 + i[1] * 17) % 10_000);
    g.throughput(Throughput::Bytes(F32 * 64 * 128 * 256));
    g.bench_function("embedding_fwd_bwd/10000x256_8192_ids", |b| {
        b.iter(|| {
            let tape = Tape::new();
            black_box(emb.lookup(&tape, &ids).sum().backward_release())
        })
    });
    g.finish();
}

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    for n in [64usize, 128, 256, 512, 1024] {
        let (a, b) = (rand_tensor(&[n, n], 11), rand_tensor(&[n, n], 12));
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        g.bench_with_input(BenchmarkId::new("square", n), &n, |bch, _| bch.iter(|| black_box(a.matmul(&b))));
    }
    let (a, b) = (rand_tensor(&[512, 512], 13), rand_tensor(&[512, 512], 14));
    g.throughput(Throughput::Elements(2 * 512u64.pow(3)));
    g.bench_function("a_bT/512", |bch| {
        bch.iter(|| black_box(wengert::core::kernels::matmul::matmul_t(&a, &b, Transpose::NT).unwrap()))
    });
    // 64 products of 128x128 (the same FLOPs as one 512x512x... product: 64·2·128³)
    let (ba, bb) = (rand_tensor(&[64, 128, 128], 15), rand_tensor(&[64, 128, 128], 16));
    g.throughput(Throughput::Elements(64 * 2 * 128u64.pow(3)));
    g.bench_function("batched/64x128", |bch| bch.iter(|| black_box(ba.matmul(&bb))));
    g.finish();
}

fn conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv");
    // batch 32, 1 -> 32 channels, 3x3, 28x28 (valid: 26x26 output) + ReLU + sum, fwd + bwd
    let x = rand_tensor(&[32, 1, 28, 28], 17);
    let w0 = rand_tensor(&[32, 1, 3, 3], 18);
    let b0 = rand_tensor(&[32], 19);
    let flops = 2 * 32 * 32 * 26 * 26 * 9;
    g.throughput(Throughput::Elements(3 * flops as u64)); // forward + two backward products
    g.bench_function("conv2d_relu_sum_fwd_bwd/32x1x28x28_k3_c32", |bch| {
        bch.iter(|| {
            let tape = Tape::new();
            let (w, b) = (tape.var(w0.clone()), tape.var(b0.clone()));
            let y = tape.constant(x.clone()).conv2d(w, Some(b), Default::default()).relu().sum();
            black_box(y.backward_release());
        })
    });
    g.finish();
}

criterion_group!(benches, elementwise, broadcast, reduce, softmax, layers, matmul, conv);
criterion_main!(benches);
