//! Op-throughput report: measures this machine's f32 FMA peak and memory bandwidth, then
//! times ops and prints each as a share of the limit that bounds it (a roofline view).
//! Run: `cargo run --release --example op_report`
//!
//! Add your own op (a custom differentiable one included) with one `report.add(..)` line:
//! its name, a shape label, the work per call (`Work::Flops` or `Work::Bytes`) and a closure.

#[path = "custom_op.rs"]
#[allow(dead_code)]
mod custom_op;

use rand::SeedableRng;
use wengert::core::roofline::{Limits, Report, Work};
use wengert::nn::prelude::*;

fn t(shape: &[usize], seed: u64) -> Tensor<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Tensor::uniform(shape.to_vec(), -1.0, 1.0, &mut rng)
}

fn main() {
    let limits = Limits::measure();
    let mut report = Report::new(limits);
    const M: usize = 1 << 20;
    let (a, b, c) = (t(&[M], 1), t(&[M], 2), t(&[M], 3));
    report.add("a*b+c (two ops)", "1M f32", Work::Bytes(6.0 * 4.0 * M as f64), || &a * &b + &c);
    report.add("exp", "1M f32", Work::Bytes(2.0 * 4.0 * M as f64), || a.exp());
    report.add("sum", "1M f32", Work::Bytes(4.0 * M as f64), || a.sum());
    let m = t(&[1024, 1024], 4);
    let row = t(&[1, 1024], 5);
    report.add("add row vector", "1024x1024 + 1x1024", Work::Bytes(2.0 * 4.0 * M as f64), || &m + &row);
    report.add("softmax last axis", "1024x1024 f32", Work::Bytes(2.0 * 4.0 * M as f64), || m.softmax(-1));
    report.add("transpose", "1024x1024 f32", Work::Bytes(2.0 * 4.0 * M as f64), || m.t());
    // the loss of 1024 rows of 1024 logits, forward (reads them) and backward (reads, writes)
    let classes = Tensor::from_fn([1024], |i| (i[0] * 7) % 1024);
    report.add("cross-entropy fwd+bwd", "1024x1024 f32", Work::Bytes(3.0 * 4.0 * M as f64), || {
        let tape = Tape::new();
        tape.var(m.clone()).cross_entropy_rows(&classes).sum().backward_release()
    });
    for n in [128usize, 512, 1024] {
        let (x, y) = (t(&[n, n], 6), t(&[n, n], 7));
        report.add("matmul", &format!("{n}x{n} f32"), Work::Flops(2.0 * (n * n * n) as f64), || x.matmul(&y));
    }
    let (ba, bb) = (t(&[64, 128, 128], 8), t(&[64, 128, 128], 9));
    report.add("batched matmul", "64 x 128x128", Work::Flops(64.0 * 2.0 * 128f64.powi(3)), || ba.matmul(&bb));

    // conv2d 1 -> 32, 3x3 on 32x1x28x28, + ReLU + sum, forward + backward
    let (x, w0, b0) = (t(&[32, 1, 28, 28], 10), t(&[32, 1, 3, 3], 11), t(&[32], 12));
    report.add("conv2d+relu+sum fwd+bwd", "32x1x28x28 k3 c32", Work::Flops(3.0 * 2.0 * (32 * 32 * 26 * 26 * 9) as f64), || {
        let tape = Tape::new();
        let (w, b) = (tape.var(w0.clone()), tape.var(b0.clone()));
        tape.constant(x.clone()).conv2d(w, Some(b), Default::default()).relu().sum().backward_release()
    });

    // one Adam step of an MLP 784-256-10, batch 128
    let xb = t(&[128, 784], 13);
    let yb = Tensor::from_fn([128], |i| i[0] % 10);
    let mut mlp = Sequential::new().add(Linear::new(784, 256)).add(ReLU).add(Linear::new(256, 10));
    let mut opt = Adam::new(AdamConfig::default());
    report.add("MLP step (fwd+bwd+Adam)", "784-256-10 b128", Work::Flops(3.0 * 2.0 * 128.0 * (784.0 * 256.0 + 2560.0)), || {
        let tape = Tape::new();
        let loss = cross_entropy(mlp.forward(tape.constant(xb.clone())), &yb);
        let g = loss.backward_release();
        opt.step(&mut mlp, &g).unwrap();
    });

    // a user-defined differentiable op, forward + backward through the tape
    let xs = t(&[M], 14);
    report.add("custom log_cosh fwd+bwd", "1M f32", Work::Bytes(5.0 * 4.0 * M as f64), || {
        let tape = Tape::new();
        let v = tape.var(xs.clone());
        custom_op::log_cosh(v).sum().backward()
    });
    println!("{report}");
}
