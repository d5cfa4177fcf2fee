//! Activation checkpointing (`torch.utils.checkpoint`): trade compute for memory.
//!
//! `checkpoint(block, x)` runs `block(x)` and keeps only its output. The values inside the
//! block are dropped as soon as it returns; when backward reaches the block it runs the block
//! again from `x` (recording it this time), differentiates that recompute, and drops it. A
//! network of `n` checkpointed blocks keeps `n` block outputs plus one block's insides at a
//! time, instead of every intermediate of every block, for about one extra forward pass.
//!
//! What makes the recompute exact:
//! * it runs the same kernels on the same values in the same order, so the gradients equal
//!   those of the plain run bit for bit (when each block input is used only inside its
//!   block; an input also used outside gets the same sum in another order, equal to rounding);
//! * ops that draw randomness take their seed through [`Tape::replayable_seed`], which hands
//!   the recompute the seeds its forward drew (the same dropout mask);
//! * modules that update state in the forward (BatchNorm's running statistics) ask
//!   [`Tape::is_recomputing`] and update once.
//!
//! It composes with the rest of the tape: [`Var::backward_release`] (the recompute is freed
//! as soon as its gradients are out), [`Tape::grad_graph`] (the recompute is recorded, so
//! second derivatives flow through it), nested checkpoints, and parameters bound inside the
//! block (their gradients land in [`crate::Gradients`] as usual).

use std::mem::ManuallyDrop;

use smallvec::SmallVec;

use crate::element::Float;
use crate::function::{Backward, Context, InputGrads};
use crate::tape::{GradModeGuard, NodeId, SeedLog, Tape};
use crate::var::Var;

/// Runs `block(x)` without keeping the values inside it; backward recomputes them from `x`.
///
/// Gradients flow to `x` and to everything the block reads that requires a gradient: the
/// parameters it binds, `Var`s it captures. The block must be deterministic given its inputs
/// and the seeds it draws through [`Tape::replayable_seed`] (wengert's dropout does), since it
/// runs twice. With gradients off (`no_grad`), it simply calls `block(x)`.
///
/// `block` must be `Copy`, which closures are when they capture only references and `Copy`
/// values (`|x| model.forward(x)` is): the tape keeps it until it is cleared or dropped, which
/// may be after the data it borrows is gone, and only a closure with nothing to drop can be
/// dropped then.
///
/// ```
/// use wengert_core::{checkpoint, Tape, Tensor};
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::from_slice(&[0.5, -1.0]));
/// fn block<'t>(v: wengert_core::Var<'t, f64>) -> wengert_core::Var<'t, f64> { (v.tanh() * v).exp() }
/// let y = checkpoint(block, x).sum();
/// let plain = block(x).sum();
/// assert_eq!(y.item(), plain.item());
/// assert_eq!(y.backward().wrt(x).to_vec(), plain.backward().wrt(x).to_vec()); // bit for bit
/// ```
///
/// A residual network whose blocks keep only their outputs, with parameters bound inside:
/// ```
/// use wengert_core::{checkpoint, Param, Tape, Tensor, Var};
/// let w: Vec<Param<f64>> = (0..4).map(|i| Param::new(Tensor::full([3, 3], 0.1 * i as f64))).collect();
/// let tape = Tape::new();
/// let mut h = tape.constant(Tensor::ones([2, 3]));
/// for p in &w {
///     h = checkpoint(|x: Var<'_, f64>| x + x.matmul(x.tape().param(p)).tanh(), h);
/// }
/// let grads = h.sum().backward_release();
/// assert_eq!(grads.param(&w[3]).unwrap().dims(), &[3, 3]);
/// ```
#[track_caller]
pub fn checkpoint<'t, T, F>(block: F, x: Var<'t, T>) -> Var<'t, T>
where
    T: Float,
    F: Fn(Var<'t, T>) -> Var<'t, T> + Copy + 't,
{
    let f: Box<dyn Fn(Var<'t, T>) -> Var<'t, T> + 't> = Box::new(block);
    // SAFETY: only the lifetime is erased (same layout). The closure is called only by this
    // checkpoint's rule, which runs only in a sweep from a node that depends on its output;
    // every handle on such a node is a `Var<'t>` (or shorter) derived from that output, so a
    // sweep reaching it runs within 't, while what the closure borrows is alive. It is dropped
    // with the tape, possibly after 't: `F: Copy` has no drop glue, so that reads nothing.
    let f: Box<StaticBlockFn<T>> = unsafe { std::mem::transmute(f) };
    let fwd = record_forward(x, block);
    finish(ErasedClosure(ManuallyDrop::new(f)), x, fwd)
}

/// A block that [`checkpoint_block`] can run again in backward: it owns (or shares) what it
/// needs, so it works where a borrowing closure cannot, e.g. inside a `Module::forward`,
/// whose `&self` may not outlive the tape (`wengert_nn::layers::Checkpoint` is one).
///
/// ```
/// use wengert_core::{checkpoint::{checkpoint_block, Block}, Tape, Tensor, Var};
/// struct Scale(f64);
/// impl Block<f64> for Scale {
///     fn run<'t>(&self, x: Var<'t, f64>) -> Var<'t, f64> { (x * self.0).tanh() }
/// }
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::scalar(0.5));
/// let y = checkpoint_block(Scale(2.0), x);
/// assert_eq!(y.backward().wrt(x).item(), 2.0 * (1.0 - 1f64.tanh().powi(2)));
/// ```
pub trait Block<T: Float>: 'static {
    /// The block's forward: the same ops on the same values each time it is called.
    fn run<'t>(&self, x: Var<'t, T>) -> Var<'t, T>;
}

/// As [`checkpoint`], for a [`Block`] the tape keeps (owned, so nothing borrowed can go stale).
///
/// ```
/// use wengert_core::{checkpoint::{checkpoint_block, Block}, Param, Tape, Tensor, Var};
/// struct Layer(std::rc::Rc<Param<f64>>);
/// impl Block<f64> for Layer {
///     fn run<'t>(&self, x: Var<'t, f64>) -> Var<'t, f64> { (x * x.tape().param(&self.0)).sin() }
/// }
/// let w = std::rc::Rc::new(Param::new(Tensor::scalar(3.0)));
/// let tape = Tape::new();
/// let x = tape.var(Tensor::scalar(0.5));
/// let g = checkpoint_block(Layer(w.clone()), x).backward();
/// assert_eq!(g.param(&w).unwrap().item(), 0.5 * 1.5f64.cos());
/// ```
#[track_caller]
pub fn checkpoint_block<'t, T: Float, B: Block<T>>(block: B, x: Var<'t, T>) -> Var<'t, T> {
    let first = |x| block.run(x);
    let y = record_forward(x, first);
    finish(block, x, y)
}

/// The closure of [`checkpoint`] with its lifetime erased, as a [`Block`].
struct ErasedClosure<T: Float>(ManuallyDrop<Box<StaticBlockFn<T>>>);

/// A block closure with its lifetime erased.
type StaticBlockFn<T> = dyn Fn(Var<'static, T>) -> Var<'static, T>;

impl<T: Float> Block<T> for ErasedClosure<T> {
    fn run<'s>(&self, x: Var<'s, T>) -> Var<'s, T> {
        // SAFETY: `Var<'s>` and `Var<'static>` differ only in lifetime; the closure runs only
        // within its own lifetime (see `checkpoint`), so the tape and its borrows are alive.
        let f: &dyn Fn(Var<'s, T>) -> Var<'s, T> = unsafe { std::mem::transmute(&**self.0) };
        f(x)
    }
}

impl<T: Float> Drop for ErasedClosure<T> {
    fn drop(&mut self) {
        // SAFETY: taken once, here. Dropping the box runs the closure's drop glue, which is
        // empty (`F: Copy`), then frees the allocation.
        drop(unsafe { ManuallyDrop::take(&mut self.0) });
    }
}

/// A block's first forward: its output, where its nodes start, and the seeds it drew.
struct Forward<'t, T: Float> {
    y: Var<'t, T>,
    mark: NodeId,
    seeds: Vec<u64>,
}

/// With gradients off there is nothing to recompute: the block runs plainly (`Err`).
fn record_forward<'t, T: Float>(x: Var<'t, T>, first: impl FnOnce(Var<'t, T>) -> Var<'t, T>) -> Result<Forward<'t, T>, Var<'t, T>> {
    let tape = x.tape;
    if !tape.is_grad_enabled() {
        return Err(first(x));
    }
    let mark = tape.len();
    let log = SeedLogGuard::push(tape, None);
    let y = first(x);
    Ok(Forward { y, mark, seeds: log.finish() })
}

/// Strips the block's nodes and records the checkpoint node over what the block read.
#[track_caller]
fn finish<'t, T: Float, B: Block<T>>(block: B, x: Var<'t, T>, fwd: Result<Forward<'t, T>, Var<'t, T>>) -> Var<'t, T> {
    let tape = x.tape;
    let Forward { y, mark, seeds } = match fwd {
        Ok(fwd) => fwd,
        Err(plain) => return plain,
    };
    if y.id < mark || !y.requires_grad() {
        return y; // the block returned an outer value, or nothing in it needs a gradient
    }
    let value = y.value();
    let deps = strip_region(tape, mark, tape.len());
    let inputs: SmallVec<[Var<'t, T>; 4]> = deps.iter().map(|&id| Var { tape, id }).collect();
    tape.push_op("checkpoint", value, &inputs, CheckpointRule { block: Box::new(block), x: x.id, deps, seeds })
}

/// The values the block read from before it (`< mark`) that need a gradient, and the
/// parameters it bound: the checkpoint node's inputs. Every node of the block's region
/// `mark..end` then drops its value and rule, except parameter leaves (a parameter stays
/// bound at its node, so the recompute binds the same one and its gradient lands there).
fn strip_region<T: Float>(tape: &Tape<T>, mark: NodeId, end: NodeId) -> SmallVec<[NodeId; 4]> {
    let mut deps: SmallVec<[NodeId; 4]> = SmallVec::new();
    let bound: SmallVec<[NodeId; 8]> = tape.params.borrow().iter().map(|&(_, n)| n).filter(|&n| n >= mark).collect();
    let mut nodes = tape.nodes.borrow_mut();
    for i in mark..end {
        if bound.contains(&i) {
            if nodes[i].requires_grad && !deps.contains(&i) {
                deps.push(i);
            }
            continue;
        }
        for k in 0..nodes[i].inputs.len() {
            let inp = nodes[i].inputs[k];
            if inp < mark && nodes[inp].requires_grad && !deps.contains(&inp) {
                deps.push(inp);
            }
        }
        let n = &mut nodes[i];
        n.rule = None;
        if !n.released {
            n.value = n.value.released();
            n.released = true;
        }
    }
    deps
}

/// Pushes a seed log for a block's run and pops it on drop, also when the block panics.
struct SeedLogGuard<'a, T: Float> {
    tape: &'a Tape<T>,
    depth: usize,
}

impl<'a, T: Float> SeedLogGuard<'a, T> {
    /// A recording log (`replay = None`) or one handing back `replay`'s seeds.
    fn push(tape: &'a Tape<T>, replay: Option<Vec<u64>>) -> Self {
        let mut logs = tape.seed_logs.borrow_mut();
        logs.push(match replay {
            None => SeedLog { seeds: Vec::new(), replay_at: None },
            Some(seeds) => SeedLog { seeds, replay_at: Some(0) },
        });
        SeedLogGuard { tape, depth: logs.len() }
    }

    /// The seeds drawn while the log was on top (or handed back, when replaying).
    fn finish(self) -> Vec<u64> {
        let mut logs = self.tape.seed_logs.borrow_mut();
        debug_assert_eq!(logs.len(), self.depth, "seed logs are pushed and popped in stack order");
        let log = logs.pop().expect("pushed by this guard");
        drop(logs);
        std::mem::forget(self);
        log.seeds
    }
}

impl<T: Float> Drop for SeedLogGuard<'_, T> {
    fn drop(&mut self) {
        self.tape.seed_logs.borrow_mut().truncate(self.depth - 1);
    }
}

/// Marks a recompute for [`Tape::is_recomputing`] and anomaly reports; undone on drop.
struct RecomputeGuard<'a, T: Float> {
    tape: &'a Tape<T>,
    in_backward_of: Option<NodeId>,
}

impl<'a, T: Float> RecomputeGuard<'a, T> {
    fn enter(tape: &'a Tape<T>) -> Self {
        tape.recomputing.set(tape.recomputing.get() + 1);
        // the recompute is a forward: anomaly mode checks its values as forward values
        RecomputeGuard { tape, in_backward_of: tape.in_backward_of.replace(None) }
    }
}

impl<T: Float> Drop for RecomputeGuard<'_, T> {
    fn drop(&mut self) {
        self.tape.recomputing.set(self.tape.recomputing.get() - 1);
        self.tape.in_backward_of.set(self.in_backward_of);
    }
}

struct CheckpointRule<T: Float> {
    /// The block, run again in backward.
    block: Box<dyn Block<T>>,
    /// The block's argument.
    x: NodeId,
    /// The checkpoint node's inputs, in order (see [`strip_region`]).
    deps: SmallVec<[NodeId; 4]>,
    /// The seeds the block's forward drew, handed back to its recompute.
    seeds: Vec<u64>,
}

impl<T: Float> Backward<T> for CheckpointRule<T> {
    fn backward<'s>(&self, ctx: &Context<'s, T>, g: Var<'s, T>) -> InputGrads<'s, T> {
        let tape = ctx.output().tape;
        let mark = tape.len();
        let y = {
            let _log = SeedLogGuard::push(tape, Some(self.seeds.clone()));
            let _re = RecomputeGuard::enter(tape);
            let _on = GradModeGuard::set(tape, true);
            self.block.run(Var { tape, id: self.x })
        };
        assert_eq!(
            y.shape(),
            ctx.output().shape(),
            "wengert: checkpoint: the recomputed block returned another shape than its forward; it must be deterministic"
        );
        if ctx.records_graph() {
            // create-graph: the recompute and its gradients stay recorded, differentiable again
            let mut adj = tape.sweep_vars_from(y.id, g, mark);
            return self.deps.iter().map(|&d| adj.take_below(d)).collect();
        }
        let mut adj = tape.sweep_values_from(y.id, ctx.take_grad(g), mark, |_| false, false, None);
        tape.truncate(mark);
        tape.params.borrow_mut().retain(|&(_, n)| n < mark);
        self.deps.iter().map(|&d| adj.take_below(d).map(|t| tape.constant(t))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Param, Tensor};

    #[test]
    fn recompute_leaves_nothing_on_the_tape_and_frees_the_block() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_slice(&[0.3, -0.7, 1.1]));
        let y = checkpoint(|v: Var<'_, f64>| (v * v).sin() + v, x);
        let len = tape.len();
        let inside = (len - 2..len - 1).map(|i| tape.nodes.borrow()[i].released).collect::<Vec<_>>();
        assert_eq!(inside, [true], "the block's values are dropped after its forward");
        let g = y.sum().backward().wrt(x);
        assert_eq!(tape.len(), len + 1, "only the sum was added; the recompute was truncated");
        let want: Vec<f64> = [0.3f64, -0.7, 1.1].iter().map(|v| (v * v).cos() * 2.0 * v + 1.0).collect();
        assert_eq!(g.to_vec(), want);
    }

    #[test]
    fn gradients_reach_captured_vars_and_params_bound_inside() {
        let p = Param::new(Tensor::<f64>::from_slice(&[2.0, -1.0]));
        let tape = Tape::new();
        let x = tape.var(Tensor::from_slice(&[0.5, 1.5]));
        let c = tape.var(Tensor::from_slice(&[3.0, 4.0]));
        let y = checkpoint(|v: Var<'_, f64>| v * v.tape().param(&p) + c * v, x).sum();
        let g = y.backward();
        assert_eq!(g.wrt(x).to_vec(), vec![2.0 + 3.0, -1.0 + 4.0]);
        assert_eq!(g.wrt(c).to_vec(), vec![0.5, 1.5]);
        assert_eq!(g.param(&p).unwrap().to_vec(), vec![0.5, 1.5]);
    }

    #[test]
    fn no_grad_and_constant_blocks_run_plainly() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(Tensor::scalar(2.0));
        let y = checkpoint(|v: Var<'_, f64>| v * v, x);
        assert!(!y.requires_grad() && !y.is_released());
        let v = tape.var(Tensor::scalar(2.0));
        let z = tape.no_grad(|| checkpoint(|v: Var<'_, f64>| v * v, v));
        assert_eq!(z.item(), 4.0);
        let same = checkpoint(|v: Var<'_, f64>| v, v);
        assert_eq!(same.id(), v.id());
    }

    #[test]
    fn a_panicking_block_leaves_no_seed_log_behind() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::scalar(1.0));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            checkpoint(|_v: Var<'_, f64>| -> Var<'_, f64> { panic!("inside") }, x)
        }));
        assert!(r.is_err());
        assert!(tape.seed_logs.borrow().is_empty());
        assert!(!tape.is_recomputing());
    }
}
