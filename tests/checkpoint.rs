//! Activation checkpointing: its gradient against finite differences (first and second order,
//! over random shapes and values, nested too), and against the plain run: bit for bit with
//! dropout and `backward_release`, and through the `Checkpoint` module with BatchNorm's
//! running statistics updated once; second order through nested checkpoints equals the plain
//! graph to rounding. The peak-memory check is in tests/memory.rs.

// The check! macros clone each input into the slice gradcheck takes, whatever their count.
#![allow(clippy::cloned_ref_to_slice_refs)]

#[macro_use]
mod common;
use common::cfg;

use proptest::prelude::*;
use wengert::core::testing::{tensor, tensor_of};
use wengert::core::{checkpoint, Tape, Tensor, Var};
use wengert::nn::prelude::*;

/// A block with a matrix product, a non-linearity and a reduction-free residual.
fn block<'t>(x: Var<'t, f64>, w: Var<'t, f64>) -> Var<'t, f64> {
    x + x.matmul(w).tanh() * x.sigmoid()
}

proptest! {
    #![proptest_config(cfg(32))]

    #[test]
    fn checkpoint_gradient_matches_finite_differences(x in tensor(3, 4)) {
        check!(|v| checkpoint(|h: Var<'_, f64>| (h * h).sin() + h.exp() * 0.1, v[0]), x);
        check2!(|v| checkpoint(|h: Var<'_, f64>| (h * h).sin() + h.tanh(), v[0]), x);
    }

    #[test]
    fn checkpoint_gradient_reaches_captured_inputs(
        (x, w) in (1usize..4, 1usize..4).prop_flat_map(|(n, d)| (tensor_of(vec![n, d], -1.5, 1.5), tensor_of(vec![d, d], -1.0, 1.0)))
    ) {
        // w is read inside the block without being its argument: it is an input of the checkpoint too
        check!(|v| { let w = v[1]; checkpoint(move |h| block(h, w), v[0]) }, x, w);
        check2!(|v| { let w = v[1]; checkpoint(move |h| checkpoint(move |g| block(g, w), h).sin(), v[0]) }, x, w);
    }
}

/// A residual MLP block of nn layers, with dropout.
struct Mlp {
    up: Linear<f32>,
    down: Linear<f32>,
    drop: Dropout,
}

impl Mlp {
    fn new(width: usize) -> Self {
        Mlp { up: Linear::new(width, 4 * width), down: Linear::new(4 * width, width), drop: Dropout::new(0.2) }
    }
    fn run<'t>(&self, x: Var<'t, f32>) -> Var<'t, f32> {
        x + self.down.forward(self.drop.forward(self.up.forward(x).relu()))
    }
}

/// The same model twice (same seed: same weights and the same dropout streams).
fn twin_models(blocks: usize, width: usize) -> (Vec<Mlp>, Vec<Mlp>) {
    let make = || {
        wengert::nn::init::manual_seed(11);
        (0..blocks).map(|_| Mlp::new(width)).collect::<Vec<_>>()
    };
    (make(), make())
}

fn params(model: &[Mlp]) -> Vec<&Param<f32>> {
    model.iter().flat_map(|b| [&b.up.weight, b.up.bias.as_ref().unwrap(), &b.down.weight, b.down.bias.as_ref().unwrap()]).collect()
}

fn input(batch: usize, width: usize) -> Tensor<f32> {
    Tensor::from_fn([batch, width], |i| ((i[0] * 7 + i[1] * 3) % 11) as f32 / 11.0 - 0.5)
}

#[test]
fn checkpointed_mlp_with_dropout_gives_the_plain_gradients_bit_for_bit() {
    let (plain, ckpt) = twin_models(6, 8);
    let x = input(5, 8);
    for step in 0..3 {
        let (ta, tb) = (Tape::new(), Tape::new());
        let mut a = ta.constant(x.clone());
        let mut b = tb.var(x.clone());
        for (pa, pb) in plain.iter().zip(&ckpt) {
            a = pa.run(a);
            b = checkpoint(|h| pb.run(h), b);
        }
        let (la, lb) = ((a * a).mean(), (b * b).mean());
        assert_eq!(la.item(), lb.item(), "step {step}: the same forward");
        // release on one side: the recompute composes with freeing as the sweep goes
        let (ga, gb) = if step % 2 == 0 { (la.backward(), lb.backward_release()) } else { (la.backward_release(), lb.backward()) };
        for (k, (pa, pb)) in params(&plain).into_iter().zip(params(&ckpt)).enumerate() {
            assert_eq!(ga.param(pa).unwrap().to_vec(), gb.param(pb).unwrap().to_vec(), "step {step}, parameter {k}");
        }
    }
}

#[test]
fn second_order_through_checkpoints_equals_the_plain_graph() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_fn([2, 3], |i| (i[0] as f64 - 0.5) * 0.7 + i[1] as f64 * 0.3));
    let w = tape.var(Tensor::from_fn([3, 3], |i| ((i[0] + 2 * i[1]) % 5) as f64 * 0.2 - 0.4));
    let v = tape.constant(Tensor::from_fn([2, 3], |i| 1.0 + i[1] as f64));
    let hvp = |ckpt: bool| {
        let y = if ckpt { checkpoint(move |h| checkpoint(move |g| block(g, w), h), x) } else { block(x, w) };
        let l = (y * y).sum();
        let gx = tape.grad_graph(l, &[x], None)[0];
        tape.grad((gx * v).sum(), &[x, w])
    };
    // equal to rounding: the Hessian-vector sweep meets the block twice (through its output
    // and through the recompute that made the gradient), summing the same terms in another order
    let (plain, ckpt) = (hvp(false), hvp(true));
    for (p, c) in plain.iter().zip(&ckpt) {
        for (a, b) in p.to_vec().into_iter().zip(c.to_vec()) {
            assert!((a - b).abs() <= 1e-13 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}

#[test]
fn checkpoint_module_with_batch_norm_updates_running_statistics_once() {
    let make = |ckpt: bool| {
        wengert::nn::init::manual_seed(5);
        let inner = Sequential::<f64>::new().add(Linear::new(3, 4)).add(BatchNorm1d::new(4)).add(Tanh);
        if ckpt {
            Sequential::new().add(Checkpoint::new(inner))
        } else {
            Sequential::new().add(inner)
        }
    };
    let (plain, ckpt) = (make(false), make(true));
    let x = Tensor::from_fn([6, 3], |i| (i[0] * 3 + i[1]) as f64 * 0.1 - 0.8);
    let tape = Tape::new();
    let (a, b) = (plain.forward(tape.constant(x.clone())).sum(), ckpt.forward(tape.constant(x)).sum());
    let (ga, gb) = (a.backward(), b.backward_release());
    for ((_, pa), (_, pb)) in plain.named_params().into_iter().zip(ckpt.named_params()) {
        assert_eq!(ga.param(pa).unwrap().to_vec(), gb.param(pb).unwrap().to_vec());
    }
    let (sa, sb) = (plain.state_dict(), ckpt.state_dict());
    assert_eq!(sa.buffers, sb.buffers, "running statistics and num_batches_tracked updated once");
    assert_eq!(sa.params.keys().collect::<Vec<_>>(), sb.params.keys().collect::<Vec<_>>(), "the same names");
}

#[test]
fn a_block_that_draws_differently_on_recompute_is_reported() {
    let tape = Tape::<f64>::new();
    let calls = std::cell::Cell::new(0);
    let x = tape.var(Tensor::scalar(1.0));
    let y = checkpoint(
        |h: Var<'_, f64>| {
            calls.set(calls.get() + 1);
            (0..calls.get()).fold(h, |acc, _| acc * h.tape().replayable_seed(|| 2) as f64) // a second draw on recompute
        },
        x,
    );
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward())).err().expect("a changed block panics");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("drew more random seeds"), "{msg}");
}
