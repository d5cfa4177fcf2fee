//! One full training step (forward, backward, Adam update) of an MLP 784-256-10 with softmax
//! cross-entropy on a batch of 128, and one epoch of the main job (digits MLP, batch 32).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use std::hint::black_box;
use wengert::nn::prelude::*;

fn mlp_step(c: &mut Criterion) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let x = Tensor::<f32>::uniform([128, 784], 0.0, 1.0, &mut rng);
    let y = Tensor::from_fn([128], |i| i[0] % 10);
    wengert::nn::init::manual_seed(0);
    let mut model = Sequential::new().add(Linear::new(784, 256)).add(ReLU).add(Linear::new(256, 10));
    let mut opt = Adam::new(AdamConfig::default());
    let mut g = c.benchmark_group("train_step");
    // forward 2·128·(784·256 + 256·10) FLOPs; backward twice that
    g.throughput(Throughput::Elements(3 * 2 * 128 * (784 * 256 + 256 * 10)));
    g.bench_function("mlp_784_256_10_b128_adam", |b| {
        b.iter(|| {
            let tape = Tape::new();
            let loss = cross_entropy(model.forward(tape.constant(x.clone())), &y);
            let grads = loss.backward_release();
            opt.step(&mut model, &grads).unwrap();
            black_box(loss.item());
        })
    });
    g.finish();
}

fn digits_epoch(c: &mut Criterion) {
    use wengert::nn::data::{load_digits, repo_data_path};
    let mut data = load_digits(repo_data_path("digits.csv.gz")).unwrap();
    data.x = &data.x * (1.0 / 16.0);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let (train, _) = data.stratified_split(0.2, &mut rng).unwrap();
    wengert::nn::init::manual_seed(0);
    let mut model = Sequential::new().add(Linear::new(64, 128)).add(ReLU).add(Linear::new(128, 10));
    let mut opt = Adam::new(AdamConfig::default());
    let mut g = c.benchmark_group("train_step");
    g.bench_function("digits_mlp_epoch_b32", |b| {
        b.iter(|| {
            for batch in train.batches(32, Some(&mut rng), false).unwrap() {
                let tape = Tape::new();
                let loss = cross_entropy(model.forward(tape.constant(batch.x)), &batch.y);
                let grads = loss.backward_release();
                opt.step(&mut model, &grads).unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, mlp_step, digits_epoch);
criterion_main!(benches);
