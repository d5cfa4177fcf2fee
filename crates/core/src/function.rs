//! Backward rules and custom differentiable ops.
//!
//! Every op's rule implements [`Backward`]: given the gradient of the op's output it returns
//! the gradient of each input, **written with `Var` ops on the same tape**. So the same rule
//! serves both a plain first-order backward (where those ops record values only) and a
//! create-graph backward (where they are recorded too and can be differentiated again).
//!
//! Users define their own differentiable op with [`Function`] (like `torch.autograd.Function`)
//! and apply it with [`Var::apply`].

use smallvec::SmallVec;

use crate::element::Float;
use crate::tensor::Tensor;
use crate::var::Var;

/// Gradients for each input of an op, `None` where an input gets none.
pub type InputGrads<'t, T> = SmallVec<[Option<Var<'t, T>>; 2]>;

/// What a backward rule can see: the op's inputs and output as `Var`s.
pub struct Context<'t, T: Float> {
    pub(crate) inputs: SmallVec<[Var<'t, T>; 2]>,
    pub(crate) needs: SmallVec<[bool; 2]>,
    pub(crate) output: Var<'t, T>,
    /// In a first-order sweep, the scratch node holding this rule's incoming gradient: no one
    /// else reads it, so a rule may take its value and write its result over it.
    pub(crate) scratch_grad: Option<crate::tape::NodeId>,
}

impl<'t, T: Float> Context<'t, T> {
    /// Input `i` of the op.
    ///
    /// ```
    /// use wengert_core::{Context, Function, InputGrads, Tape, Tensor, Var};
    /// struct Square;
    /// impl Function<f64> for Square {
    ///     fn name(&self) -> &'static str { "square" }
    ///     fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> { x[0].map(|v| v * v) }
    ///     fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> { [Some(g * ctx.input(0) * 2.0)].into_iter().collect() }
    /// }
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(3.0));
    /// assert_eq!(Var::apply(Square, &[x]).backward().wrt(x).item(), 6.0);
    /// ```
    #[track_caller]
    pub fn input(&self, i: usize) -> Var<'t, T> {
        self.inputs[i]
    }

    /// Whether input `i` needs a gradient (PyTorch's `ctx.needs_input_grad`): a rule may
    /// return `None` for the others and skip computing them.
    ///
    /// ```
    /// use wengert_core::{Context, Function, InputGrads, Tape, Tensor, Var};
    /// struct Mul;
    /// impl Function<f64> for Mul {
    ///     fn name(&self) -> &'static str { "mul" }
    ///     fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> { x[0].map(|a| a * x[1].item()) }
    ///     fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> {
    ///         let (dx, dc) = (ctx.needs_grad(0), ctx.needs_grad(1)); // (true, false) below: c is a constant
    ///         [dx.then(|| g * ctx.input(1)), dc.then(|| g * ctx.input(0))].into_iter().collect()
    ///     }
    /// }
    /// let tape = Tape::<f64>::new();
    /// let (x, c) = (tape.var(Tensor::scalar(3.0)), tape.constant(Tensor::scalar(5.0)));
    /// assert_eq!(Var::apply(Mul, &[x, c]).backward().wrt(x).item(), 5.0);
    /// ```
    pub fn needs_grad(&self, i: usize) -> bool {
        self.needs.get(i).copied().unwrap_or(false)
    }

    /// All inputs of the op.
    ///
    /// ```
    /// use wengert_core::{Context, Function, InputGrads, Tape, Tensor, Var};
    /// struct Sum;
    /// impl Function<f64> for Sum {
    ///     fn name(&self) -> &'static str { "sum" }
    ///     fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> { Tensor::scalar(x.iter().map(|t| t.item()).sum()) }
    ///     fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> { ctx.inputs().iter().map(|_| Some(g)).collect() }
    /// }
    /// let tape = Tape::<f64>::new();
    /// let v: Vec<_> = [1.0, 2.0, 3.0].map(|a| tape.var(Tensor::scalar(a))).into();
    /// let y = Var::apply(Sum, &v);
    /// assert_eq!(y.value().item(), 6.0);
    /// assert_eq!(y.backward().wrt(v[1]).item(), 1.0);
    /// ```
    pub fn inputs(&self) -> &[Var<'t, T>] {
        &self.inputs
    }

    /// The op's output.
    ///
    /// ```
    /// use wengert_core::{Context, Function, InputGrads, Tape, Tensor, Var};
    /// struct Exp; // d/dx eˣ = eˣ, the output
    /// impl Function<f64> for Exp {
    ///     fn name(&self) -> &'static str { "exp" }
    ///     fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> { x[0].map(f64::exp) }
    ///     fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> { [Some(g * ctx.output())].into_iter().collect() }
    /// }
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(1.0));
    /// assert_eq!(Var::apply(Exp, &[x]).backward().wrt(x).item(), 1f64.exp());
    /// ```
    pub fn output(&self) -> Var<'t, T> {
        self.output
    }

    /// Whether this backward is itself being recorded (`Tape::grad_graph`): then the rule's
    /// gradient must be built from `Var` ops; otherwise (first-order backward) a rule may
    /// compute it directly with tensor kernels and return it as a constant, saving passes.
    ///
    /// ```
    /// use wengert_core::{Context, Function, InputGrads, Tape, Tensor, Var};
    /// struct Square;
    /// impl Function<f64> for Square {
    ///     fn name(&self) -> &'static str { "square" }
    ///     fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> { x[0].map(|v| v * v) }
    ///     fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> {
    ///         let x = ctx.input(0);
    ///         let d = if ctx.records_graph() { x * 2.0 } else { ctx.constant(x.value().map(|v| 2.0 * v)) };
    ///         [Some(g * d)].into_iter().collect()
    ///     }
    /// }
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(3.0));
    /// assert_eq!(Var::apply(Square, &[x]).backward().wrt(x).item(), 6.0); // first order: the constant
    /// let dy = tape.grad_graph(Var::apply(Square, &[x]), &[x], None)[0]; // recorded: 2x, differentiable again
    /// assert_eq!(dy.backward().wrt(x).item(), 2.0);
    /// ```
    pub fn records_graph(&self) -> bool {
        self.output.tape.is_grad_enabled()
    }

    /// The incoming gradient's value, owned: taken out of its scratch node in a first-order
    /// sweep (so an elementwise rule can write its result over it, one large buffer fewer),
    /// a shared copy otherwise. `g` must be the gradient this rule was given.
    pub(crate) fn take_grad(&self, g: Var<'t, T>) -> crate::tensor::Tensor<T> {
        if self.scratch_grad == Some(g.id) {
            return g.tape.take_value(g.id);
        }
        g.value()
    }

    /// A constant on the tape (a mask, a saved index...): no gradient flows into it.
    ///
    /// ```
    /// use wengert_core::{Context, Function, InputGrads, Tape, Tensor, Var};
    /// struct Abs;
    /// impl Function<f64> for Abs {
    ///     fn name(&self) -> &'static str { "abs" }
    ///     fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> { x[0].map(f64::abs) }
    ///     fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> {
    ///         let sign = ctx.constant(ctx.input(0).value().map(f64::signum)); // a mask: no gradient flows into it
    ///         [Some(g * sign)].into_iter().collect()
    ///     }
    /// }
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[-2.0, 3.0]));
    /// assert_eq!(Var::apply(Abs, &[x]).sum().backward().wrt(x).to_vec(), [-1.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn constant(&self, value: Tensor<T>) -> Var<'t, T> {
        self.output.tape.constant(value)
    }

    /// A gradient computed by plain tensor math, which cannot itself be differentiated
    /// (PyTorch's `once_differentiable`). First-order backward uses it as is; differentiating
    /// through it again (a create-graph backward reaching it) panics naming `op`, rather than
    /// silently giving a zero second derivative.
    ///
    /// ```
    /// use wengert_core::{Context, Function, InputGrads, Tape, Tensor, Var};
    /// struct Square;
    /// impl Function<f64> for Square {
    ///     fn name(&self) -> &'static str { "square" }
    ///     fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> { x[0].map(|v| v * v) }
    ///     fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> {
    ///         let d = ctx.input(0).value().map(|v| 2.0 * v); // 2x by plain tensor math
    ///         [Some(g * ctx.once_differentiable("square backward", d, &[ctx.input(0)]))].into_iter().collect()
    ///     }
    /// }
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(3.0));
    /// assert_eq!(Var::apply(Square, &[x]).backward().wrt(x).item(), 6.0); // a second derivative would panic
    /// ```
    #[track_caller]
    pub fn once_differentiable(&self, op: &'static str, value: Tensor<T>, depends_on: &[Var<'t, T>]) -> Var<'t, T> {
        self.output.tape.push_op(op, value, depends_on, OnceDifferentiable(op))
    }
}

struct OnceDifferentiable(&'static str);

impl<T: Float> Backward<T> for OnceDifferentiable {
    fn backward<'t>(&self, _: &Context<'t, T>, _: Var<'t, T>) -> InputGrads<'t, T> {
        panic!(
            "wengert: {} is once-differentiable: its gradient was computed by plain tensor math and \
             cannot be differentiated again (write its backward with Var ops for higher order)",
            self.0
        )
    }
}

/// How an op sends its output's gradient back to its inputs.
pub trait Backward<T: Float>: 'static {
    /// Returns `dL/d input_i` for each input given `grad = dL/d output`, using `Var` ops so the
    /// rule is itself differentiable. Each returned gradient must have its input's shape.
    fn backward<'t>(&self, ctx: &Context<'t, T>, grad: Var<'t, T>) -> InputGrads<'t, T>;
}

/// A user-defined differentiable op: a forward on plain tensors and a backward with `Var` ops.
///
/// ```
/// use wengert_core::{function::{Context, Function, InputGrads}, gradcheck, Tape, Tensor, Var};
///
/// /// softplus(x) = ln(1 + e^x); d/dx = sigmoid(x)
/// struct Softplus;
/// impl Function<f64> for Softplus {
///     fn name(&self) -> &'static str { "softplus" }
///     fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> {
///         x[0].map(|v| if v > 0.0 { v + (-v).exp().ln_1p() } else { v.exp().ln_1p() })
///     }
///     fn backward<'t>(&self, ctx: &Context<'t, f64>, grad: Var<'t, f64>) -> InputGrads<'t, f64> {
///         [Some(grad * ctx.input(0).sigmoid())].into_iter().collect()
///     }
/// }
///
/// let tape = Tape::new();
/// let x = tape.var(Tensor::from_slice(&[-1.0, 0.0, 2.0]));
/// let y = Var::apply(Softplus, &[x]);
/// assert!((y.value().get(&[1]) - 2f64.ln()).abs() < 1e-12);
/// gradcheck::gradcheck(|v| Var::apply(Softplus, &[v[0]]), &[Tensor::from_slice(&[-1.0, 0.5])]).unwrap();
/// ```
pub trait Function<T: Float>: 'static {
    /// The op's name, shown in errors, anomaly reports and `to_dot`.
    fn name(&self) -> &'static str;
    /// The output computed from the inputs' values.
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T>;
    /// As [`Backward::backward`].
    fn backward<'t>(&self, ctx: &Context<'t, T>, grad: Var<'t, T>) -> InputGrads<'t, T>;
}

struct FunctionRule<F>(F);

impl<T: Float, F: Function<T>> Backward<T> for FunctionRule<F> {
    fn backward<'t>(&self, ctx: &Context<'t, T>, grad: Var<'t, T>) -> InputGrads<'t, T> {
        self.0.backward(ctx, grad)
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Applies a custom [`Function`] to `inputs` (at least one), recording it on their tape.
    ///
    /// ```
    /// use wengert_core::{Context, Function, InputGrads, Tape, Tensor, Var};
    /// struct Double;
    /// impl Function<f64> for Double {
    ///     fn name(&self) -> &'static str { "double" }
    ///     fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> { x[0].map(|v| 2.0 * v) }
    ///     fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> { [Some(g * 2.0)].into_iter().collect() }
    /// }
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, -3.0]));
    /// let y = Var::apply(Double, &[x]);
    /// assert_eq!(y.value().to_vec(), [2.0, -6.0]);
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), [2.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn apply<F: Function<T>>(f: F, inputs: &[Var<'t, T>]) -> Var<'t, T> {
        // checks in this frame, not in closures, so a panic names the caller's line
        let Some(first) = inputs.first() else {
            panic!("wengert: {}: no inputs given", f.name())
        };
        for v in inputs {
            v.same_tape(first, f.name());
        }
        let values: Vec<Tensor<T>> = inputs.iter().map(|v| v.value()).collect();
        let refs: Vec<&Tensor<T>> = values.iter().collect();
        let out = f.forward(&refs);
        let name = f.name();
        first.tape.push_op(name, out, inputs, FunctionRule(f))
    }
}
