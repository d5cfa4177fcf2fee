//! Memory of training, measured with a counting allocator (this test binary's global
//! allocator): steps run in flat memory, `backward_release` frees activations during the
//! sweep, and the peak of an MLP step stays within 2x of parameters + activations + gradients.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{live, peak_of};

use wengert::nn::prelude::*;

/// A test without libtest's harness (`harness = false` in Cargo.toml), run on the main
/// thread, so that no other thread allocates while the counters are read: libtest's main
/// thread did its own bookkeeping (148 + 608 bytes) after starting the test thread, at times
/// as late as step 239 of the loop below. The counters are process-wide: the thread pool's
/// allocations count too, as they should.
fn main() {
    ten_thousand_training_steps_run_in_flat_memory();
    mlp_step_peak_is_within_twice_parameters_activations_and_gradients();
    checkpointed_blocks_lower_the_peak_3x_with_the_same_gradients();
    println!("memory: 10,000 steps in flat memory; MLP step peak within bounds; checkpointing lowers the peak: ok");
}

fn ten_thousand_training_steps_run_in_flat_memory() {
    wengert::nn::init::manual_seed(0);
    let mut model = Sequential::new().add(Linear::new(8, 32)).add(Tanh).add(Linear::new(32, 2));
    let mut opt = Adam::new(AdamConfig::default());
    let x = Tensor::<f32>::from_fn([16, 8], |i| ((i[0] * 8 + i[1]) % 7) as f32 / 7.0);
    let y = Tensor::from_fn([16], |i| i[0] % 2);
    let mut step = |model: &mut Sequential<f32>| {
        let tape = Tape::new();
        let loss = cross_entropy(model.forward(tape.constant(x.clone())), &y);
        let grads = loss.backward_release();
        opt.step(model, &grads).unwrap();
        loss.item()
    };
    // the first steps create the optimizer state
    for _ in 0..10 {
        step(&mut model);
    }
    let warm = live();
    let mut last = 0.0;
    for i in 0..10_000 {
        last = step(&mut model);
        assert_eq!(live(), warm, "live bytes changed between steps (step {i})");
    }
    assert!(last < 0.7, "the model still learns: loss {last}");
}

fn mlp_step_peak_is_within_twice_parameters_activations_and_gradients() {
    wengert::nn::init::manual_seed(0);
    let mut model = Sequential::new().add(Linear::new(784, 256)).add(ReLU).add(Linear::new(256, 10));
    let mut opt = Adam::new(AdamConfig::default());
    let x = Tensor::<f32>::from_fn([128, 784], |i| ((i[0] * 31 + i[1] * 7) % 17) as f32 / 17.0);
    let y = Tensor::from_fn([128], |i| i[0] % 10);
    let param_bytes = 4 * (784 * 256 + 256 + 256 * 10 + 10);
    let mut step = |model: &mut Sequential<f32>, release: bool| {
        let tape = Tape::new();
        let before = live();
        let loss = cross_entropy(model.forward(tape.constant(x.clone())), &y);
        let activations = live() - before;
        let grads = if release { loss.backward_release() } else { loss.backward() };
        opt.step(model, &grads).unwrap();
        activations
    };
    step(&mut model, true); // optimizer state
    let (activations, peak_release) = peak_of(|| step(&mut model, true));
    let (_, peak_keep) = peak_of(|| step(&mut model, false));
    let bound = 2 * (param_bytes + activations + param_bytes);
    println!(
        "MLP 784-256-10, batch 128: parameters {} KiB, activations {} KiB, peak above the model {} KiB \
         with backward_release ({} KiB with backward)",
        param_bytes / 1024,
        activations / 1024,
        peak_release / 1024,
        peak_keep / 1024
    );
    assert!(param_bytes + peak_release <= bound, "peak {} + parameters {param_bytes} > {bound}", peak_release);
    assert!(peak_release < peak_keep, "releasing during backward lowers the peak ({peak_release} vs {peak_keep})");
}

/// `blocks` residual MLP blocks (width → 4·width → width), each under `Checkpoint` or not;
/// the same seed gives the same weights and dropout streams either way.
fn residual_mlp(blocks: usize, width: usize, checkpointed: bool) -> Sequential<f32> {
    wengert::nn::init::manual_seed(3);
    let mut model = Sequential::new();
    for _ in 0..blocks {
        let mlp = Residual::new(Sequential::new().add(Linear::new(width, 4 * width)).add(ReLU).add(Dropout::new(0.1)).add(Linear::new(4 * width, width)));
        if checkpointed {
            model.push(Checkpoint::new(mlp));
        } else {
            model.push(mlp);
        }
    }
    model
}

fn checkpointed_blocks_lower_the_peak_3x_with_the_same_gradients() {
    let (blocks, width, batch) = (8, 32, 256);
    let x = Tensor::<f32>::from_fn([batch, width], |i| ((i[0] * 5 + i[1] * 3) % 13) as f32 / 13.0 - 0.5);
    let step = |model: &Sequential<f32>| {
        let tape = Tape::new();
        let loss = model.forward(tape.constant(x.clone())).square().mean();
        let grads = loss.backward_release();
        model.named_params().into_iter().map(|(_, p)| grads.param(p).unwrap().to_vec()).collect::<Vec<_>>()
    };
    let (plain, ckpt) = (residual_mlp(blocks, width, false), residual_mlp(blocks, width, true));
    let (g_plain, peak_plain) = peak_of(|| step(&plain));
    let (g_ckpt, peak_ckpt) = peak_of(|| step(&ckpt));
    println!(
        "{blocks} residual MLP blocks {width}-{}-{width}, batch {batch}: step peak {} KiB plain, {} KiB checkpointed ({:.1}x lower)",
        4 * width,
        peak_plain / 1024,
        peak_ckpt / 1024,
        peak_plain as f64 / peak_ckpt as f64
    );
    assert!(g_plain == g_ckpt, "checkpointed gradients equal the plain ones bit for bit");
    assert!(peak_plain >= 3 * peak_ckpt, "peak {peak_plain} plain vs {peak_ckpt} checkpointed: less than 3x lower");
}
