//! The reverse sweep and the gradients it returns.
//!
//! Nodes are in execution order, so walking indices from the output down to 0 visits every
//! node after all of its consumers. Two forms share that loop:
//!
//! * **first order** ([`Var::backward`], [`Tape::grad`]): grad mode is off while rules run, so
//!   their `Var` ops record values only; each rule's scratch nodes are truncated away right after
//!   it, and adjoints are plain tensors accumulated in place. Nothing extra stays on the tape.
//! * **create graph** ([`Tape::grad_graph`]): rules run with grad mode on, so the gradient is
//!   itself a recorded computation that can be differentiated again (Hessian-vector products,
//!   Hessians, `gradgradcheck`).

use smallvec::SmallVec;

use crate::element::Float;
use crate::function::Context;
use crate::param::{Param, ParamId};
use crate::tape::{GradModeGuard, NodeId, Tape};
use crate::tensor::Tensor;
use crate::var::Var;

/// Gradients from a first-order backward, looked up by [`Var`] or by [`Param`].
/// Independent of the tape's lifetime, so the tape can be dropped before the optimizer runs.
#[derive(Clone)]
pub struct Gradients<T: Float = f32> {
    tape_id: u64,
    grads: Vec<Option<Tensor<T>>>,
    params: Vec<(ParamId, NodeId)>,
}

impl<T: Float> Gradients<T> {
    fn check_tape(&self, v: &Var<'_, T>) {
        if v.tape.id != self.tape_id {
            panic!("wengert: Gradients: this Var is from another tape than the one differentiated");
        }
    }

    /// The gradient for `v`, or `None` if no gradient reached it.
    ///
    /// ```
    /// use wengert_core::{Param, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let (x, unused) = (tape.var(Tensor::scalar(3.0)), tape.var(Tensor::scalar(1.0)));
    /// let grads = (x * x).backward();
    /// assert_eq!(grads.get(x).unwrap().item(), 6.0);
    /// assert!(grads.get(unused).is_none());
    /// ```
    #[track_caller]
    pub fn get(&self, v: Var<'_, T>) -> Option<&Tensor<T>> {
        self.check_tape(&v);
        self.grads.get(v.id).and_then(|g| g.as_ref())
    }

    /// The gradient for `v`; zeros of its shape if none reached it.
    ///
    /// ```
    /// use wengert_core::{Param, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let (x, unused) = (tape.var(Tensor::scalar(3.0)), tape.var(Tensor::from_slice(&[1.0, 1.0])));
    /// let grads = (x * x).backward();
    /// assert_eq!(grads.wrt(x).item(), 6.0);
    /// assert_eq!(grads.wrt(unused).to_vec(), vec![0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn wrt(&self, v: Var<'_, T>) -> Tensor<T> {
        self.get(v).cloned().unwrap_or_else(|| Tensor::zeros(v.shape()))
    }

    /// The gradient for a parameter bound on the differentiated tape, `None` if it was not
    /// bound or no gradient reached it.
    ///
    /// ```
    /// use wengert_core::{Param, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let (w, other) = (Param::new(Tensor::scalar(2.0)), Param::new(Tensor::scalar(1.0)));
    /// let grads = (tape.param(&w) * 5.0).backward();
    /// assert_eq!(grads.param(&w).unwrap().item(), 5.0);
    /// assert!(grads.param(&other).is_none()); // never bound
    /// ```
    pub fn param(&self, p: &Param<T>) -> Option<&Tensor<T>> {
        self.param_by_id(p.id())
    }

    /// Mutable access to a parameter's gradient (for clipping before an optimizer step).
    ///
    /// ```
    /// use wengert_core::{Param, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let w = Param::new(Tensor::scalar(2.0));
    /// let mut grads = (tape.param(&w) * 5.0).backward();
    /// *grads.param_mut(&w).unwrap() = Tensor::scalar(1.0); // clip it, say
    /// assert_eq!(grads.param(&w).unwrap().item(), 1.0);
    /// ```
    pub fn param_mut(&mut self, p: &Param<T>) -> Option<&mut Tensor<T>> {
        let (_, node) = self.params.iter().find(|(pid, _)| *pid == p.id())?;
        self.grads.get_mut(*node).and_then(|g| g.as_mut())
    }

    /// As [`Gradients::param`], by id.
    ///
    /// ```
    /// use wengert_core::{Param, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let w = Param::new(Tensor::scalar(2.0));
    /// let grads = (tape.param(&w) * 5.0).backward();
    /// assert_eq!(grads.param_by_id(w.id()).unwrap().item(), 5.0);
    /// ```
    pub fn param_by_id(&self, id: ParamId) -> Option<&Tensor<T>> {
        let (_, node) = self.params.iter().find(|(pid, _)| *pid == id)?;
        self.grads.get(*node).and_then(|g| g.as_ref())
    }

    /// Whether the parameter was bound on the tape that was differentiated.
    ///
    /// ```
    /// use wengert_core::{Param, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let (w, other) = (Param::new(Tensor::scalar(2.0)), Param::new(Tensor::scalar(1.0)));
    /// let grads = (tape.param(&w) * 5.0).backward();
    /// assert!(grads.was_bound(&w) && !grads.was_bound(&other));
    /// ```
    pub fn was_bound(&self, p: &Param<T>) -> bool {
        self.params.iter().any(|(pid, _)| *pid == p.id())
    }
}

/// Checks a rule's output gradients against its inputs' shapes (a wrong shape is a bug in the
/// rule, e.g. a custom op) and, in anomaly mode, for NaN/Inf.
fn check_grad<T: Float>(tape: &Tape<T>, node: NodeId, k: usize, input: NodeId, g: &Tensor<T>) {
    let nodes = tape.nodes.borrow();
    let (n, inp) = (&nodes[node], &nodes[input]);
    if g.shape() != inp.value.shape() {
        panic!(
            "wengert: backward of {} (recorded at {}) returned a gradient of shape {} for input {k} of shape {}",
            n.op, n.at, g.shape(), inp.value.shape()
        );
    }
    if tape.anomaly.get() && !g.all_finite() {
        panic!(
            "wengert anomaly: backward of {} (recorded at {}) produced NaN or Inf in the gradient of input {k} (shape {})",
            n.op, n.at, inp.value.shape()
        );
    }
}

/// The adjoints of one sweep: `dense[i - floor]` for the nodes whose rules it runs, and the
/// gradients that reached nodes below `floor`, summed in arrival order (as the dense ones).
pub(crate) struct Adjoints<G> {
    floor: NodeId,
    pub(crate) dense: Vec<Option<G>>,
    pub(crate) below: SmallVec<[(NodeId, G); 4]>,
}

impl<G: Clone> Adjoints<G> {
    fn new(floor: NodeId, root: NodeId, seed: G) -> Self {
        let mut dense = vec![None; root + 1 - floor];
        dense[root - floor] = Some(seed);
        Adjoints { floor, dense, below: SmallVec::new() }
    }

    /// Adds `g` into node `id`'s adjoint with `acc` (the first gradient is moved in as is).
    #[inline]
    fn add(&mut self, id: NodeId, g: G, acc: impl FnOnce(&mut G, G)) {
        let slot = if id >= self.floor {
            &mut self.dense[id - self.floor]
        } else {
            match self.below.iter().position(|(n, _)| *n == id) {
                Some(k) => return acc(&mut self.below[k].1, g),
                None => return self.below.push((id, g)),
            }
        };
        match slot {
            None => *slot = Some(g),
            Some(a) => acc(a, g),
        }
    }

    /// The gradient that reached node `id` below the floor, if any.
    pub(crate) fn take_below(&mut self, id: NodeId) -> Option<G> {
        let k = self.below.iter().position(|(n, _)| *n == id)?;
        Some(self.below.swap_remove(k).1)
    }
}

/// Called with a leaf's node and its final gradient as the sweep passes it.
pub(crate) type LeafHook<'a, T> = &'a mut dyn FnMut(NodeId, &Tensor<T>);

/// A node's backward rule, taken out while it runs, and the node's inputs.
type TakenRule<T> = (Box<dyn crate::function::Backward<T>>, SmallVec<[NodeId; 2]>);

impl<T: Float> Tape<T> {
    /// Takes node `i`'s rule out for the duration of a call (rules may push nodes).
    fn rule_inputs(&self, i: NodeId) -> Option<TakenRule<T>> {
        let mut nodes = self.nodes.borrow_mut();
        let n = &mut nodes[i];
        if !n.requires_grad {
            return None;
        }
        let rule = n.rule.take()?;
        Some((rule, n.inputs.clone()))
    }

    fn put_rule(&self, i: NodeId, rule: Box<dyn crate::function::Backward<T>>) {
        self.nodes.borrow_mut()[i].rule = Some(rule);
    }

    fn context<'t>(&'t self, i: NodeId, inputs: &[NodeId], scratch_grad: Option<NodeId>) -> Context<'t, T> {
        let nodes = self.nodes.borrow();
        // Filled in place: collecting into the small vectors and moving them in stalled on
        // reading back their just-written elements with wider loads.
        let mut ctx = Context { inputs: SmallVec::new(), needs: SmallVec::new(), output: Var { tape: self, id: i }, scratch_grad };
        for &id in inputs {
            ctx.inputs.push(Var { tape: self, id });
            ctx.needs.push(nodes[id].requires_grad);
        }
        ctx
    }

    /// First-order sweep from `root` seeded with `seed`; adjoints of nodes where `keep` holds
    /// are kept in the result, the rest are dropped as soon as they are used. With `release`,
    /// each op node's value below the root is dropped once its rule has run: every consumer
    /// of a value comes later on the tape, so by then nothing in the sweep reads it again.
    fn sweep_values(&self, root: NodeId, seed: Tensor<T>, keep: impl Fn(NodeId) -> bool, release: bool) -> Vec<Option<Tensor<T>>> {
        self.sweep_values_from(root, seed, 0, keep, release, None).dense
    }

    /// As [`Tape::sweep_values`], running only the rules of nodes `floor..=root`: gradients
    /// reaching nodes below `floor` are summed into [`Adjoints::below`] and go no further
    /// (a checkpointed block's recompute differentiates its own nodes this way).
    pub(crate) fn sweep_values_from(
        &self,
        root: NodeId,
        seed: Tensor<T>,
        floor: NodeId,
        keep: impl Fn(NodeId) -> bool,
        release: bool,
        mut on_leaf: Option<LeafHook<'_, T>>,
    ) -> Adjoints<Tensor<T>> {
        let _g = GradModeGuard::set(self, false);
        let mut adj = Adjoints::new(floor, root, seed);
        for i in (floor..=root).rev() {
            let Some(g) = &adj.dense[i - floor] else { continue };
            let Some((rule, inputs)) = self.rule_inputs(i) else {
                // a leaf: every op reading it comes later on the tape, so its gradient is final
                if let Some(f) = on_leaf.as_mut() {
                    f(i, g);
                }
                continue;
            };
            let slot = &mut adj.dense[i - floor];
            let g = if keep(i) { slot.clone() } else { slot.take() }.expect("checked above");
            let mark = self.len();
            let gvar = self.constant(g);
            let ctx = self.context(i, &inputs, Some(gvar.id));
            let prev = self.in_backward_of.replace(Some(i));
            let out = rule.backward(&ctx, gvar);
            self.in_backward_of.set(prev);
            self.put_rule(i, rule);
            for (k, (&inp, og)) in inputs.iter().zip(out).enumerate() {
                let Some(v) = og else { continue };
                if !self.requires_grad_of(inp) {
                    continue;
                }
                let t = self.value_of(v.id);
                check_grad(self, i, k, inp, &t);
                adj.add(inp, t, |acc, t| acc.axpy_(T::ONE, &t));
            }
            self.truncate(mark);
            if release && i != root {
                self.release(i);
            }
        }
        adj
    }

    /// Create-graph sweep: adjoints are `Var`s recorded on this tape.
    fn sweep_vars<'t>(&'t self, root: NodeId, seed: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        self.sweep_vars_from(root, seed, 0).dense
    }

    /// As [`Tape::sweep_vars`], running only the rules of nodes `floor..=root` (see
    /// [`Tape::sweep_values_from`]).
    pub(crate) fn sweep_vars_from<'t>(&'t self, root: NodeId, seed: Var<'t, T>, floor: NodeId) -> Adjoints<Var<'t, T>> {
        let _g = GradModeGuard::set(self, true);
        let mut adj = Adjoints::new(floor, root, seed);
        for i in (floor..=root).rev() {
            let Some(g) = adj.dense[i - floor] else { continue };
            let Some((rule, inputs)) = self.rule_inputs(i) else { continue };
            let ctx = self.context(i, &inputs, None);
            let prev = self.in_backward_of.replace(Some(i));
            let out = rule.backward(&ctx, g);
            self.in_backward_of.set(prev);
            self.put_rule(i, rule);
            for (k, (&inp, og)) in inputs.iter().zip(out).enumerate() {
                let Some(v) = og else { continue };
                if !self.requires_grad_of(inp) {
                    continue;
                }
                check_grad(self, i, k, inp, &v.value());
                adj.add(inp, v, |acc, v| *acc = *acc + v);
            }
        }
        adj
    }

    #[track_caller]
    fn default_seed(&self, y: &Var<'_, T>, op: &str) -> Tensor<T> {
        let shape = y.shape();
        if shape.numel() != 1 {
            panic!(
                "wengert: {op}: the output has shape {shape}; backward from a non-scalar needs a seed \
                 gradient of that shape (use backward_with / grad_with)"
            );
        }
        Tensor::ones(shape)
    }

    #[track_caller]
    fn check_seed(&self, y: &Var<'_, T>, seed: &crate::Shape, op: &str) {
        if *seed != y.shape() {
            panic!("wengert: {op}: seed gradient has shape {seed}, the output has shape {}", y.shape());
        }
    }

    /// First-order gradients of `y` (one element) with respect to `xs` (any recorded values,
    /// leaves or not), like `torch.autograd.grad`. An `x` that `y` does not depend on gets zeros.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let h = x * x;          // intermediate
    /// let y = h * 3.0;
    /// let g = tape.grad(y, &[x, h]);
    /// assert_eq!((g[0].item(), g[1].item()), (12.0, 3.0));
    /// ```
    #[track_caller]
    pub fn grad(&self, y: Var<'_, T>, xs: &[Var<'_, T>]) -> Vec<Tensor<T>> {
        let seed = self.default_seed(&y, "grad");
        self.grad_with(y, xs, seed)
    }

    /// As [`Tape::grad`] from a seed gradient `dL/dy` of `y`'s shape.
    ///
    /// ```
    /// use wengert_core::{Param, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0]));
    /// let y = x * x; // not a scalar: seed dL/dy
    /// let g = tape.grad_with(y, &[x], Tensor::from_slice(&[1.0, 10.0]));
    /// assert_eq!(g[0].to_vec(), vec![2.0, 40.0]);
    /// ```
    #[track_caller]
    pub fn grad_with(&self, y: Var<'_, T>, xs: &[Var<'_, T>], seed: Tensor<T>) -> Vec<Tensor<T>> {
        self.check_seed(&y, seed.shape(), "grad_with");
        let ids: SmallVec<[NodeId; 8]> = xs.iter().map(|x| x.id).collect();
        let adj = self.sweep_values(y.id, seed, |i| ids.contains(&i), false);
        xs.iter()
            .map(|x| adj.get(x.id).cloned().flatten().unwrap_or_else(|| Tensor::zeros(x.shape())))
            .collect()
    }

    /// Gradients of `y` with respect to `xs` as recorded `Var`s (`create_graph=True`), so they
    /// can be differentiated again. `seed` is `dL/dy` (ones for a one-element `y` when `None`);
    /// it may itself be a `Var` that requires a gradient. An `x` that `y` does not depend on
    /// gets a zero constant.
    ///
    /// A Hessian-vector product of f(x) = Σ x³ (H = diag(6x)):
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0]));
    /// let y = x.powf(3.0).sum();
    /// let g = tape.grad_graph(y, &[x], None)[0];       // 3x², recorded
    /// let v = tape.constant(Tensor::from_slice(&[1.0, 1.0]));
    /// let hv = tape.grad((g * v).sum(), &[x]);
    /// assert_eq!(hv[0].to_vec(), vec![6.0, 12.0]);
    /// ```
    #[track_caller]
    pub fn grad_graph<'t>(&'t self, y: Var<'t, T>, xs: &[Var<'t, T>], seed: Option<Var<'t, T>>) -> Vec<Var<'t, T>> {
        let seed = match seed {
            Some(s) => {
                self.check_seed(&y, &s.shape(), "grad_graph");
                s
            }
            None => self.constant(self.default_seed(&y, "grad_graph")),
        };
        let adj = self.sweep_vars(y.id, seed);
        xs.iter()
            .map(|x| adj.get(x.id).copied().flatten().unwrap_or_else(|| self.constant(Tensor::zeros(x.shape()))))
            .collect()
    }

    fn gradients(&self, adj: Vec<Option<Tensor<T>>>) -> Gradients<T> {
        Gradients {
            tape_id: self.id,
            grads: adj,
            params: self.params.borrow().clone(),
        }
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Reverse-mode gradients of this one-element value with respect to every leaf that
    /// requires a gradient (vars and trainable params), like `loss.backward()` in PyTorch.
    /// The tape keeps its values, so backward can run again.
    ///
    /// ```
    /// use wengert_core::{Param, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0]));
    /// let loss = (x * x).sum();
    /// assert_eq!(loss.backward().wrt(x).to_vec(), vec![2.0, 4.0]);
    /// assert_eq!(loss.backward().wrt(x).to_vec(), vec![2.0, 4.0]); // again: values are kept
    /// ```
    #[track_caller]
    pub fn backward(self) -> Gradients<T> {
        let seed = self.tape.default_seed(&self, "backward");
        self.backward_with(seed)
    }

    /// Backward from a seed gradient `dL/dself` of this value's shape (for a non-scalar output).
    ///
    /// ```
    /// use wengert_core::{Param, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0]));
    /// let grads = (x * 3.0).backward_with(Tensor::from_slice(&[1.0, -1.0]));
    /// assert_eq!(grads.wrt(x).to_vec(), vec![3.0, -3.0]);
    /// ```
    #[track_caller]
    pub fn backward_with(self, seed: Tensor<T>) -> Gradients<T> {
        self.tape.check_seed(&self, seed.shape(), "backward_with");
        self.backward_impl(seed, false, None)
    }

    /// As [`Var::backward`], and frees memory as it goes: each intermediate value is dropped
    /// as soon as the reverse sweep is past it, so activations are released while gradients
    /// are made and peak memory falls (PyTorch frees a graph's saved tensors this way unless
    /// `retain_graph=True`). This value, the vars and the constants stay readable, and so do
    /// parameters through their [`Param`] (the tape's reference is dropped, so the optimizer
    /// updates them in place rather than copying). Reading any other value of the
    /// differentiated graph afterwards, or running backward through it again, panics and
    /// names the op. Training loops use it; read what you need (`Var::value` is a cheap
    /// clone) before the call.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0]));
    /// let h = x * x; // an intermediate
    /// let y = (h * 3.0).sum();
    /// let g = y.backward_release();
    /// assert_eq!(g.wrt(x).to_vec(), vec![6.0, 12.0]);
    /// assert!(h.is_released()); // its memory is gone
    /// assert_eq!((y.item(), x.value().to_vec()), (15.0, vec![1.0, 2.0])); // root and leaves stay
    /// ```
    #[track_caller]
    pub fn backward_release(self) -> Gradients<T> {
        let seed = self.tape.default_seed(&self, "backward_release");
        self.backward_impl(seed, true, None)
    }

    /// As [`Var::backward_release`], calling `ready(param, gradient)` for each bound
    /// parameter as soon as its gradient is final, while the sweep goes on below it: the
    /// sweep passes a parameter's node after every op that reads it, so the last-bound
    /// parameters come first. Data-parallel training starts reducing those gradients across
    /// processes while the rest of backward runs (PyTorch's DDP uses autograd hooks so).
    ///
    /// ```
    /// use wengert_core::{Param, Tape, Tensor};
    /// let (w1, w2) = (Param::new(Tensor::<f64>::scalar(2.0)), Param::new(Tensor::scalar(3.0)));
    /// let tape = Tape::new();
    /// let x = tape.constant(Tensor::scalar(1.5));
    /// let y = (x * tape.param(&w1)).tanh() * tape.param(&w2); // w1 bound first
    /// let mut order = Vec::new();
    /// let grads = y.backward_release_hooked(|id, g| order.push((id, g.item())));
    /// assert_eq!(order.iter().map(|o| o.0).collect::<Vec<_>>(), [w2.id(), w1.id()]); // last bound first
    /// assert_eq!(order[0].1, grads.param(&w2).unwrap().item());
    /// assert_eq!(order[1].1, grads.param(&w1).unwrap().item());
    /// ```
    #[track_caller]
    pub fn backward_release_hooked(self, mut ready: impl FnMut(ParamId, &Tensor<T>)) -> Gradients<T> {
        let seed = self.tape.default_seed(&self, "backward_release_hooked");
        let bound: Vec<(ParamId, NodeId)> = self.tape.params.borrow().clone();
        let mut on_leaf = |node: NodeId, g: &Tensor<T>| {
            if let Some(&(pid, _)) = bound.iter().find(|&&(_, n)| n == node) {
                ready(pid, g);
            }
        };
        self.backward_impl(seed, true, Some(&mut on_leaf))
    }

    fn backward_impl(self, seed: Tensor<T>, release: bool, on_leaf: Option<LeafHook<'_, T>>) -> Gradients<T> {
        let tape = self.tape;
        let is_leaf: Vec<bool> = tape.nodes.borrow()[..=self.id].iter().map(|n| n.rule.is_none() && n.requires_grad).collect();
        let adj = tape.sweep_values_from(self.id, seed, 0, |i| is_leaf[i], release, on_leaf).dense;
        if release {
            // A bound parameter's value lives on in its Param: dropping the tape's copy lets
            // the optimizer update the parameter in place instead of copying it first.
            let bound: SmallVec<[NodeId; 8]> = tape.params.borrow().iter().map(|&(_, node)| node).collect();
            bound.into_iter().filter(|&n| n != self.id).for_each(|n| tape.release(n));
        }
        tape.gradients(adj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulates_over_reuse_and_zero_for_unused() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_slice(&[1.0, 2.0]));
        let unused = tape.var(Tensor::from_slice(&[5.0]));
        let y = (x * x + x * 3.0).sum(); // dy/dx = 2x + 3
        let g = y.backward();
        assert_eq!(g.wrt(x).to_vec(), vec![5.0, 7.0]);
        assert!(g.get(unused).is_none());
        assert_eq!(g.wrt(unused).to_vec(), vec![0.0]);
        // first-order backward leaves no scratch nodes behind and can run again
        let len = tape.len();
        assert_eq!(y.backward().wrt(x).to_vec(), vec![5.0, 7.0]);
        assert_eq!(tape.len(), len);
    }

    #[test]
    fn backward_release_frees_intermediates_and_says_so_when_read() {
        let p = Param::new(Tensor::<f64>::from_slice(&[0.5, -1.0]));
        let tape = Tape::new();
        let (w, x) = (tape.param(&p), tape.constant(Tensor::from_slice(&[2.0, 3.0])));
        let h = (w * x).tanh();
        let y = h.sum();
        let kept = y.backward().param(&p).unwrap().clone();
        let g = y.backward_release();
        assert_eq!(g.param(&p).unwrap().to_vec(), kept.to_vec());
        assert!(h.is_released() && w.is_released() && !x.is_released() && !y.is_released());
        assert_eq!(h.shape().dims(), &[2]);
        assert!(format!("{h:?}").contains("released, shape=[2]"));
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.value()));
        let msg = read.expect_err("a released value panics when read");
        let msg = msg.downcast_ref::<String>().expect("a formatted message");
        assert!(msg.contains("tanh") && msg.contains("released by backward_release"), "{msg}");
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward()));
        assert!(again.is_err(), "backward through released values fails loudly");
    }

    #[test]
    fn constants_and_detach_stop_gradients() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::scalar(3.0));
        let y = x * x.detach();
        assert_eq!(y.backward().wrt(x).item(), 3.0);
    }

    #[test]
    #[should_panic(expected = "backward: the output has shape [2]")]
    fn non_scalar_needs_seed() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_slice(&[1.0, 2.0]));
        let _ = (x * 2.0).backward();
    }

    #[test]
    fn second_derivative_of_cube() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::scalar(2.0));
        let y = x * x * x;
        let dy = tape.grad_graph(y, &[x], None)[0];
        assert_eq!(dy.item(), 12.0);
        let d2y = tape.grad_graph(dy, &[x], None)[0];
        assert_eq!(d2y.item(), 12.0);
        let d3y = tape.grad(d2y, &[x]);
        assert_eq!(d3y[0].item(), 6.0);
    }

    #[test]
    fn shared_param_gets_one_gradient() {
        let p = Param::new(Tensor::<f64>::scalar(2.0));
        let tape = Tape::new();
        let a = tape.param(&p);
        let b = tape.param(&p);
        assert_eq!(a.id(), b.id());
        let g = (a * b).backward();
        assert_eq!(g.param(&p).unwrap().item(), 4.0);
    }
}
