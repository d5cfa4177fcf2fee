//! Training runs in flat memory: every step records on a fresh tape that is dropped after the
//! optimizer update, so nothing accumulates across steps.

use wengert::nn::prelude::*;

/// Resident set size of this process in bytes (Linux), from /proc/self/statm.
#[cfg(target_os = "linux")]
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs is mounted");
    let pages: usize = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("statm has a resident field");
    pages * 4096
}

#[cfg(target_os = "linux")]
#[test]
fn five_thousand_training_steps_run_in_flat_memory() {
    wengert::nn::init::manual_seed(0);
    let mut model = Sequential::new().add(Linear::new(8, 32)).add(Tanh).add(Linear::new(32, 2));
    let mut opt = Adam::new(AdamConfig::default());
    let x = Tensor::<f32>::from_fn([16, 8], |i| ((i[0] * 8 + i[1]) % 7) as f32 / 7.0);
    let y = Tensor::from_fn([16], |i| i[0] % 2);
    let mut step = |model: &mut Sequential<f32>| {
        let tape = Tape::new();
        let loss = cross_entropy(model.forward(tape.constant(x.clone())), &y);
        let grads = loss.backward();
        opt.step(model, &grads).unwrap();
        loss.item()
    };
    for _ in 0..500 {
        step(&mut model);
    }
    let warm = rss_bytes();
    let mut last = 0.0;
    for _ in 0..5000 {
        last = step(&mut model);
    }
    let grown = rss_bytes().saturating_sub(warm);
    assert!(grown < 2 << 20, "resident memory grew by {grown} bytes over 5000 steps");
    assert!(last < 0.7, "the model still learns: loss {last}");
}
