//! The tape (a Wengert list): every op on [`Var`]s appends a node in execution order.
//!
//! Index order is a topological order, so the reverse sweep in [`crate::backward`] is a plain
//! reverse loop: no sort, no recursion, no hash map. Values live in the tape; a [`Var`] is a
//! two-word `Copy` handle (tape reference + node index), so user code reads like math.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

use smallvec::SmallVec;

use crate::element::Float;
use crate::function::Backward;
use crate::param::{Param, ParamId};
use crate::tensor::Tensor;
use crate::var::Var;

/// Position of a node on its tape.
pub type NodeId = usize;

pub(crate) struct Node<T: Float> {
    /// The forward result.
    pub(crate) value: Tensor<T>,
    /// The nodes this one was computed from.
    pub(crate) inputs: SmallVec<[NodeId; 2]>,
    /// How to send a gradient back to the inputs; `None` for leaves, constants and nodes
    /// recorded while gradients were off.
    pub(crate) rule: Option<Box<dyn Backward<T>>>,
    /// Whether a gradient flows through this node (a trainable leaf, or an op on one).
    pub(crate) requires_grad: bool,
    /// The op's name (`"matmul"`), for errors, anomaly reports and `to_dot`.
    pub(crate) op: &'static str,
    /// Where the user's code called the op.
    pub(crate) at: &'static Location<'static>,
    /// The value was dropped by [`Var::backward_release`] (only the shape is left).
    pub(crate) released: bool,
}

impl<T: Float> Node<T> {
    /// The value, or a panic naming the op if backward released it.
    #[inline]
    #[track_caller]
    pub(crate) fn value(&self) -> &Tensor<T> {
        if self.released {
            released_panic(self);
        }
        &self.value
    }
}

#[cold]
#[track_caller]
fn released_panic<T: Float>(n: &Node<T>) -> ! {
    panic!(
        "wengert: the value of {} (shape {}, recorded at {}) was released by backward_release; \
         read it before that call (Var::value is a cheap clone), or use backward to keep every value",
        n.op,
        n.value.shape(),
        n.at
    )
}

static NEXT_TAPE_ID: AtomicU64 = AtomicU64::new(1);

/// A Wengert list recording operations on [`Var`]s for reverse-mode differentiation.
///
/// ```
/// use wengert_core::{Tape, Tensor};
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::scalar(3.0));
/// let y = x * x + x;              // y = x² + x
/// let g = y.backward();
/// assert_eq!(g.wrt(x).item(), 7.0); // dy/dx = 2x + 1
/// ```
pub struct Tape<T: Float = f32> {
    pub(crate) nodes: RefCell<Vec<Node<T>>>,
    pub(crate) params: RefCell<Vec<(ParamId, NodeId)>>,
    pub(crate) grad_mode: Cell<bool>,
    pub(crate) anomaly: Cell<bool>,
    /// The node whose backward rule is running (for anomaly reports).
    pub(crate) in_backward_of: Cell<Option<NodeId>>,
    /// Seeds drawn by [`Tape::replayable_seed`] inside the checkpointed blocks being run, one
    /// log per block, innermost last (see [`crate::checkpoint`]).
    pub(crate) seed_logs: RefCell<Vec<SeedLog>>,
    /// How many checkpointed blocks are recomputing their forward right now.
    pub(crate) recomputing: Cell<u32>,
    pub(crate) id: u64,
}

/// The random seeds one checkpointed block drew: recorded during its forward, handed back in
/// the same order while backward recomputes it.
pub(crate) struct SeedLog {
    pub(crate) seeds: Vec<u64>,
    /// The next seed to hand back; `None` while recording.
    pub(crate) replay_at: Option<usize>,
}

impl<T: Float> Default for Tape<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Tape<T> {
    /// An empty tape with gradients on and anomaly detection off.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// assert!(tape.is_empty() && tape.is_grad_enabled());
    /// ```
    pub fn new() -> Self {
        Tape {
            nodes: RefCell::new(Vec::new()),
            params: RefCell::new(Vec::new()),
            grad_mode: Cell::new(true),
            anomaly: Cell::new(false),
            in_backward_of: Cell::new(None),
            seed_logs: RefCell::new(Vec::new()),
            recomputing: Cell::new(0),
            id: NEXT_TAPE_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Number of recorded nodes.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let _y = x * x + 1.0;
    /// assert_eq!(tape.len(), 3); // x, x·x, +1
    /// ```
    pub fn len(&self) -> usize {
        self.nodes.borrow().len()
    }

    /// Whether nothing is recorded.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// assert!(tape.is_empty());
    /// tape.scalar(1.0);
    /// assert!(!tape.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every node, keeping the allocation for the next step.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let mut tape = Tape::<f64>::new();
    /// tape.var(Tensor::scalar(1.0));
    /// tape.clear(); // (no Var of the tape can be alive here: they borrow it)
    /// assert!(tape.is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.nodes.get_mut().clear();
        self.params.get_mut().clear();
    }

    /// A leaf that gradients are taken with respect to (`requires_grad = True` in PyTorch).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(3.0));
    /// assert_eq!((x * x).backward().wrt(x).item(), 6.0);
    /// ```
    #[track_caller]
    pub fn var(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push_leaf("var", value, true)
    }

    /// A leaf that needs no gradient: data, targets, masks.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let (x, c) = (tape.var(Tensor::scalar(3.0)), tape.constant(Tensor::scalar(2.0)));
    /// let grads = (x * c).backward();
    /// assert_eq!(grads.wrt(x).item(), 2.0);
    /// assert!(!c.requires_grad());
    /// ```
    #[track_caller]
    pub fn constant(&self, value: Tensor<T>) -> Var<'_, T> {
        self.push_leaf("constant", value, false)
    }

    /// A scalar constant.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let two = tape.scalar(2.0);
    /// assert_eq!((two.ndim(), two.item()), (0, 2.0));
    /// ```
    #[track_caller]
    pub fn scalar(&self, value: T) -> Var<'_, T> {
        self.constant(Tensor::scalar(value))
    }

    /// Binds a model parameter as a leaf. Binding the same parameter again on this tape returns
    /// the same `Var`, so a weight shared by two layers gets one accumulated gradient.
    /// A frozen parameter is bound as a constant.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let w = wengert_core::Param::new(Tensor::scalar(3.0));
    /// let (a, b) = (tape.param(&w), tape.param(&w));
    /// assert_eq!(a.id(), b.id()); // bound once per tape
    /// let grads = (a * b).backward();
    /// assert_eq!(grads.param(&w).unwrap().item(), 6.0);
    /// ```
    #[track_caller]
    pub fn param(&self, p: &Param<T>) -> Var<'_, T> {
        if let Some(&(_, id)) = self.params.borrow().iter().find(|(pid, _)| *pid == p.id()) {
            return Var { tape: self, id };
        }
        let v = self.push_leaf("param", p.value().clone(), p.is_trainable());
        self.params.borrow_mut().push((p.id(), v.id));
        v
    }

    /// Runs `f` with gradient recording off: ops inside record values only (`torch.no_grad`).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(3.0));
    /// let y = tape.no_grad(|| x * x);
    /// assert_eq!(y.item(), 9.0);
    /// assert!(!y.requires_grad());
    /// ```
    pub fn no_grad<R>(&self, f: impl FnOnce() -> R) -> R {
        let _g = GradModeGuard::set(self, false);
        f()
    }

    /// Whether new ops currently record how to differentiate them.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// assert!(tape.is_grad_enabled());
    /// assert!(!tape.no_grad(|| tape.is_grad_enabled()));
    /// ```
    pub fn is_grad_enabled(&self) -> bool {
        self.grad_mode.get()
    }

    /// Turns anomaly detection on or off. When on, every forward value is checked for NaN and
    /// every gradient for NaN or ±∞ (a forward -∞ is legitimate, e.g. a masked attention
    /// score), and the first op that produced one panics with its name, its input shapes and
    /// the file:line of the user's call (`torch.autograd.detect_anomaly`).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// tape.set_anomaly_detection(true);
    /// let x = tape.var(Tensor::scalar(0.0));
    /// let y = x.sqrt(); // d/dx √x at 0 is +∞
    /// assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward())).is_err());
    /// ```
    pub fn set_anomaly_detection(&self, on: bool) {
        self.anomaly.set(on);
    }

    /// A random seed for an op that draws randomness (dropout): `draw()` normally, but while
    /// backward recomputes a [`checkpoint`](crate::checkpoint::checkpoint)ed block, the seed
    /// that block's forward drew at the same point, so the recompute sees the same mask.
    /// Ops that draw randomness take their seed through here to work inside checkpoints.
    ///
    /// ```
    /// use wengert_core::{checkpoint, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let draws = std::cell::Cell::new(0u64);
    /// let x = tape.var(Tensor::scalar(1.0));
    /// let y = checkpoint(|x| {
    ///     let seed = x.tape().replayable_seed(|| { draws.set(draws.get() + 1); 40 + draws.get() });
    ///     x * (seed as f64) // a stand-in for a mask drawn from the seed
    /// }, x);
    /// assert_eq!(y.backward().wrt(x).item(), 41.0); // the recompute got seed 41 again
    /// assert_eq!(draws.get(), 1);                    // and drew nothing new
    /// ```
    #[track_caller]
    pub fn replayable_seed(&self, draw: impl FnOnce() -> u64) -> u64 {
        let replaying = self.seed_logs.borrow().iter().rposition(|log| log.replay_at.is_some());
        let seed = match replaying {
            None => draw(),
            Some(k) => {
                let mut logs = self.seed_logs.borrow_mut();
                let log = &mut logs[k];
                let at = log.replay_at.expect("a replaying log");
                let Some(&seed) = log.seeds.get(at) else {
                    panic!(
                        "wengert: checkpoint: the recomputed block drew more random seeds ({}) than its forward did ({}); \
                         a checkpointed block must run the same ops each time it is called",
                        at + 1,
                        log.seeds.len()
                    )
                };
                log.replay_at = Some(at + 1);
                seed
            }
        };
        // every block recording above the replaying one (or all, if none replays) logs it
        let from = replaying.map_or(0, |k| k + 1);
        self.seed_logs.borrow_mut()[from..].iter_mut().for_each(|log| log.seeds.push(seed));
        seed
    }

    /// Whether backward is recomputing a [`checkpoint`](crate::checkpoint::checkpoint)ed
    /// block's forward right now: modules that update state in their forward (BatchNorm's
    /// running statistics) skip the update then, so it happens once per step.
    ///
    /// ```
    /// use wengert_core::{checkpoint, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let calls = std::cell::RefCell::new(Vec::new());
    /// let x = tape.var(Tensor::scalar(3.0));
    /// checkpoint(|x| { calls.borrow_mut().push(x.tape().is_recomputing()); x * x }, x).backward();
    /// assert_eq!(*calls.borrow(), [false, true]); // the forward, then backward's recompute
    /// ```
    pub fn is_recomputing(&self) -> bool {
        self.recomputing.get() > 0
    }

    #[inline]
    #[track_caller]
    fn push_leaf(&self, op: &'static str, value: Tensor<T>, requires_grad: bool) -> Var<'_, T> {
        let at = Location::caller();
        if self.anomaly.get() && value.as_slice().iter().any(|x| x.is_nan()) {
            panic!("wengert anomaly: {op} leaf of shape {} created at {at} holds NaN", value.shape());
        }
        let mut nodes = self.nodes.borrow_mut();
        let id = push_node(&mut nodes, Node { value, inputs: SmallVec::new(), rule: None, requires_grad, op, at, released: false });
        Var { tape: self, id }
    }

    /// Records an op: its value, its inputs and its backward rule. The rule is boxed only when
    /// a gradient can flow (grad mode on and some input requires one); rules of built-in ops
    /// are zero-sized or tiny, so most ops allocate nothing beyond their value.
    #[track_caller]
    pub(crate) fn push_op<R: Backward<T>>(
        &self,
        op: &'static str,
        value: Tensor<T>,
        inputs: &[Var<'_, T>],
        rule: R,
    ) -> Var<'_, T> {
        let at = Location::caller();
        let mut nodes = self.nodes.borrow_mut();
        let in_backward = self.in_backward_of.get();
        let bad = |v: &Tensor<T>| if in_backward.is_some() { !v.all_finite() } else { v.as_slice().iter().any(|x| x.is_nan()) };
        if self.anomaly.get() && bad(&value) {
            if let Some(i) = in_backward {
                let (bop, bat) = (nodes[i].op, nodes[i].at);
                drop(nodes);
                panic!("wengert anomaly: backward of {bop} (recorded at {bat}) produced NaN or Inf (in its {op} step)");
            }
            let shapes: Vec<String> = inputs.iter().map(|v| nodes[v.id].value.shape().to_string()).collect();
            drop(nodes);
            panic!(
                "wengert anomaly: {op} produced NaN in its forward value at {at} (input shapes {})",
                shapes.join(", ")
            );
        }
        let requires_grad = self.grad_mode.get() && inputs.iter().any(|v| nodes[v.id].requires_grad);
        let rule: Option<Box<dyn Backward<T>>> = if requires_grad { Some(Box::new(rule)) } else { None };
        let inputs = inputs.iter().map(|v| v.id).collect();
        let id = push_node(&mut nodes, Node { value, inputs, rule, requires_grad, op, at, released: false });
        Var { tape: self, id }
    }

    #[track_caller]
    pub(crate) fn value_of(&self, id: NodeId) -> Tensor<T> {
        self.nodes.borrow()[id].value().clone()
    }

    /// Drops node `id`'s value, keeping its shape for errors and shape queries.
    pub(crate) fn release(&self, id: NodeId) {
        drop(self.take_value(id));
    }

    /// Moves node `id`'s value out, leaving it released (only the shape is left, and a read
    /// panics naming the op).
    pub(crate) fn take_value(&self, id: NodeId) -> Tensor<T> {
        let mut nodes = self.nodes.borrow_mut();
        let n = &mut nodes[id];
        let empty = n.value.released();
        n.released = true;
        std::mem::replace(&mut n.value, empty)
    }

    pub(crate) fn requires_grad_of(&self, id: NodeId) -> bool {
        self.nodes.borrow()[id].requires_grad
    }

    pub(crate) fn truncate(&self, len: usize) {
        self.nodes.borrow_mut().truncate(len);
    }

    /// The recorded graph in Graphviz DOT: one node per op with its name, shape and source
    /// location; leaves that require a gradient are green boxes, constants grey boxes, ops whose
    /// output needs a gradient are drawn solid, the rest dashed.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let x = tape.var(Tensor::ones([2]));
    /// let _y = (x * 2.0).sum();
    /// let dot = tape.to_dot();
    /// assert!(dot.starts_with("digraph tape {"));
    /// assert!(dot.contains("mul_scalar"));
    /// ```
    pub fn to_dot(&self) -> String {
        let nodes = self.nodes.borrow();
        let mut s = String::from("digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n");
        for (i, n) in nodes.iter().enumerate() {
            let style = match (n.inputs.is_empty(), n.requires_grad) {
                (true, true) => "shape=box, style=filled, fillcolor=palegreen",
                (true, false) => "shape=box, style=filled, fillcolor=lightgrey",
                (false, true) => "shape=ellipse",
                (false, false) => "shape=ellipse, style=dashed",
            };
            let file = n.at.file().rsplit('/').next().unwrap_or(n.at.file());
            let _ = writeln!(
                s,
                "  n{i} [label=\"#{i} {}\\n{}\\n{}:{}\", {style}];",
                n.op,
                n.value.shape(),
                file,
                n.at.line()
            );
            for &inp in &n.inputs {
                let _ = writeln!(s, "  n{inp} -> n{i};");
            }
        }
        s.push_str("}\n");
        s
    }
}

/// Appends `node`, returning its id. The node is written straight into the list's spare
/// slot: `Vec::push` built it on the stack first and copied it in with wide loads right after
/// the narrow stores that built it, which the CPU cannot forward (a stall per recorded op).
#[inline(always)]
fn push_node<T: Float>(nodes: &mut Vec<Node<T>>, node: Node<T>) -> NodeId {
    reserve_node(nodes);
    let id = nodes.len();
    let Node { value, inputs, rule, requires_grad, op, at, released } = node;
    let slot = nodes.spare_capacity_mut()[0].as_mut_ptr();
    // SAFETY: reserve_node made room for one more node, and every field of the slot is
    // written (one by one, so nothing is staged on the stack) before the length covers it.
    unsafe {
        std::ptr::addr_of_mut!((*slot).value).write(value);
        std::ptr::addr_of_mut!((*slot).inputs).write(inputs);
        std::ptr::addr_of_mut!((*slot).rule).write(rule);
        std::ptr::addr_of_mut!((*slot).requires_grad).write(requires_grad);
        std::ptr::addr_of_mut!((*slot).op).write(op);
        std::ptr::addr_of_mut!((*slot).at).write(at);
        std::ptr::addr_of_mut!((*slot).released).write(released);
        nodes.set_len(id + 1);
    }
    id
}

/// Makes room for one more node. When the node list outgrows malloc's mmap threshold, the
/// allocator is told to keep freed memory (see [`crate::runtime`]): otherwise every new
/// tape of that size is faulted in page by page (3% of the tape bench).
#[inline]
fn reserve_node<T: Float>(nodes: &mut Vec<Node<T>>) {
    if nodes.len() == nodes.capacity() {
        nodes.reserve(1);
        if nodes.capacity() * std::mem::size_of::<Node<T>>() >= crate::runtime::LARGE_TENSOR_BYTES {
            crate::runtime::keep_freed_memory();
        }
    }
}

/// Sets grad mode for a scope and restores it on drop (also on panic).
pub(crate) struct GradModeGuard<'a, T: Float> {
    tape: &'a Tape<T>,
    prev: bool,
}

impl<'a, T: Float> GradModeGuard<'a, T> {
    pub(crate) fn set(tape: &'a Tape<T>, on: bool) -> Self {
        let prev = tape.grad_mode.replace(on);
        GradModeGuard { tape, prev }
    }
}

impl<T: Float> Drop for GradModeGuard<'_, T> {
    fn drop(&mut self) {
        self.tape.grad_mode.set(self.prev);
    }
}
