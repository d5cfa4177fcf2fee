//! Large matrix products (the packed GEMM of `wengert-gemm` behind `matmul`, on both cores):
//! square f32 and f64 products of 256-1024, the transposed forms `matmul_t` (A·Bᵀ, Aᵀ·B)
//! and a batch. Before criterion runs, the FMA peak is measured in the same process
//! (`roofline::Limits::measure`) and every product is printed as GFLOP/s and % of it.
//! Run: `cargo bench --bench gemm`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::SeedableRng;
use std::hint::black_box;
use wengert::core::kernels::matmul::{matmul_t, Transpose};
use wengert::core::roofline::{Limits, Report, Work};
use wengert::prelude::*;

fn t<T: Float>(shape: &[usize], seed: u64) -> Tensor<T> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Tensor::<f64>::uniform(shape.to_vec(), -1.0, 1.0, &mut rng).cast(T::from_f64)
}

fn gemm(c: &mut Criterion) {
    let limits = Limits::measure();
    let mut report = Report::new(limits);
    let cube = |n: usize| Work::Flops(2.0 * (n as f64).powi(3));
    // warm-up: the thread pool, the packing buffers and the clock settle before the first row
    let (a, b) = (t::<f32>(&[1024, 1024], 1), t::<f32>(&[1024, 1024], 2));
    (0..20).for_each(|_| drop(black_box(a.matmul(&b))));
    for n in [256usize, 512, 1024] {
        let (a, b) = (t::<f32>(&[n, n], 1), t::<f32>(&[n, n], 2));
        report.add("matmul", &format!("{n}x{n} f32"), cube(n), || a.matmul(&b));
        report.add("matmul_t A·Bᵀ", &format!("{n}x{n} f32"), cube(n), || matmul_t(&a, &b, Transpose::NT).unwrap());
        report.add("matmul_t Aᵀ·B", &format!("{n}x{n} f32"), cube(n), || matmul_t(&a, &b, Transpose::TN).unwrap());
    }
    let (ba, bb) = (t::<f32>(&[8, 512, 512], 3), t::<f32>(&[8, 512, 512], 4));
    report.add("batched matmul", "8 x 512x512 f32", Work::Flops(8.0 * 2.0 * 512f64.powi(3)), || ba.matmul(&bb));
    for n in [512usize, 1024] {
        let (a, b) = (t::<f64>(&[n, n], 5), t::<f64>(&[n, n], 6));
        report.add("matmul", &format!("{n}x{n} f64"), cube(n), || a.matmul(&b));
    }
    // one thread, against the one-thread peak (printed in the header line)
    wengert::core::runtime::set_num_threads(1);
    for n in [512usize, 1024] {
        let (a, b) = (t::<f32>(&[n, n], 1), t::<f32>(&[n, n], 2));
        let row = report.add("matmul, 1 thread", &format!("{n}x{n} f32"), cube(n), || a.matmul(&b));
        let flops = 2.0 * (n as f64).powi(3) / row.seconds;
        println!("matmul {n}x{n} f32 on one thread: {:.1} GFLOP/s = {:.1}% of the one-thread peak", flops / 1e9, 100.0 * flops / limits.peak_flops_1t);
    }
    for n in [512usize, 1024] {
        let (a, b) = (t::<f64>(&[n, n], 5), t::<f64>(&[n, n], 6));
        let row = report.add("matmul, 1 thread", &format!("{n}x{n} f64"), cube(n), || a.matmul(&b));
        let flops = 2.0 * (n as f64).powi(3) / row.seconds;
        println!("matmul {n}x{n} f64 on one thread: {:.1} GFLOP/s = {:.1}% of the one-thread f64 peak", flops / 1e9, 200.0 * flops / limits.peak_flops_1t);
    }
    wengert::core::runtime::set_num_threads(wengert::core::runtime::max_threads());
    println!("{report}");
    println!("FMA peak in this run: {:.0} GFLOP/s (f32; f64 peak is half)", limits.peak_flops / 1e9);

    let mut g = c.benchmark_group("gemm");
    g.sample_size(20);
    for n in [512usize, 1024] {
        let (a, b) = (t::<f32>(&[n, n], 1), t::<f32>(&[n, n], 2));
        g.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        g.bench_with_input(BenchmarkId::new("square_f32", n), &n, |bch, _| bch.iter(|| black_box(a.matmul(&b))));
        g.bench_with_input(BenchmarkId::new("a_bT_f32", n), &n, |bch, _| bch.iter(|| black_box(matmul_t(&a, &b, Transpose::NT).unwrap())));
        let (a, b) = (t::<f64>(&[n, n], 5), t::<f64>(&[n, n], 6));
        g.bench_with_input(BenchmarkId::new("square_f64", n), &n, |bch, _| bch.iter(|| black_box(a.matmul(&b))));
    }
    g.finish();
}

criterion_group!(benches, gemm);
criterion_main!(benches);
