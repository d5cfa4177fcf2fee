//! Function transforms over tensors, as `torch.func` and JAX give them: [`vjp`], [`jvp`],
//! [`jacobian`], [`hessian`] and [`hvp`]. Each takes the function as a closure over `Var`s
//! (`for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>`, the same form as [`gradcheck`](crate::gradcheck::gradcheck)), runs it
//! on a tape of its own and returns plain tensors.
//!
//! Forward mode ([`jvp`]) is the double-backward trick, not dual numbers: `u ↦ Jᵀu` is
//! linear in `u`, so differentiating `⟨Jᵀu, t⟩` with respect to `u` gives `J·t`. It reuses every
//! op's reverse rule and `grad_graph` (which all ops support, being written in `Var` ops), so
//! every op, custom [`crate::Function`]s with recorded backward rules included, has a JVP
//! without a second, forward rule to write and keep right; the price is about three reverse
//! passes' work instead of one forward pass.
//!
//! ```
//! use wengert_core::functional::{hessian, jacobian, jvp, var_fn};
//! use wengert_core::{Tensor, Var};
//! let x = Tensor::from_slice(&[1.0, 2.0]);
//! // f(x) = [x₀·x₁, x₀²]: J = [[x₁, x₀], [2x₀, 0]] (var_fn: a closure kept in a `let`)
//! let f = var_fn(|v| {
//!     let (x0, x1) = (v[0].narrow(0, 0, 1), v[0].narrow(0, 1, 1));
//!     Var::concat(&[x0 * x1, x0.square()], 0)
//! });
//! assert_eq!(jacobian(f, &[x.clone()])[0].to_vec(), [2.0, 1.0, 2.0, 0.0]);
//! let (_, jt) = jvp(f, &[x.clone()], &[Tensor::from_slice(&[1.0, 0.0])]);
//! assert_eq!(jt.to_vec(), [2.0, 2.0]);
//! // the Hessian of Σ x³ is diag(6x)
//! assert_eq!(hessian(|v| v[0].powf(3.0).sum(), &x).to_vec(), [6.0, 0.0, 0.0, 12.0]);
//! ```

use crate::element::Float;
use crate::shape::Shape;
use crate::tape::Tape;
use crate::tensor::Tensor;
use crate::var::Var;

/// Shape `a ++ b`.
fn joined(a: &Shape, b: &Shape) -> Shape {
    let mut dims = a.to_vec();
    dims.extend_from_slice(b);
    Shape::new(&dims)
}

/// A one-hot tensor of `shape` with a 1 at flat index `i`.
fn one_hot<T: Float>(shape: &Shape, i: usize) -> Tensor<T> {
    let mut t = Tensor::zeros(shape.clone());
    t.data_mut()[i] = T::ONE;
    t
}

#[track_caller]
fn check_like<T: Float>(what: &str, given: &[Tensor<T>], inputs: &[Tensor<T>]) {
    let same = given.len() == inputs.len() && given.iter().zip(inputs).all(|(g, x)| g.shape() == x.shape());
    if !same {
        let shapes = |ts: &[Tensor<T>]| ts.iter().map(|t| t.shape().to_string()).collect::<Vec<_>>().join(", ");
        panic!("wengert: {what}: the {} given have shapes [{}], the inputs [{}]", what, shapes(given), shapes(inputs));
    }
}

/// Returns the closure unchanged, typed as a function of `Var`s on *any* tape
/// (`for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>`). A closure stored in a `let` before being passed
/// gets one fixed lifetime instead and fails with "lifetime may not live long enough"; wrapping
/// it here gives it the higher-ranked type the transforms and gradchecks take, so it can be
/// stored and passed to several of them.
///
/// ```
/// use wengert_core::functional::{hessian, jacobian, var_fn};
/// use wengert_core::Tensor;
/// // the gradient of Σ x³ as a function, reused: its Jacobian is the Hessian
/// let grad = var_fn(|v| v[0].tape().grad_graph(v[0].powf(3.0).sum(), &[v[0]], None)[0]);
/// let x = Tensor::from_slice(&[1.0, 2.0]);
/// assert_eq!(jacobian(grad, &[x.clone()])[0], hessian(|v| v[0].powf(3.0).sum(), &x));
/// wengert_core::gradcheck(grad, &[x]).unwrap();
/// ```
pub fn var_fn<T: Float, F>(f: F) -> F
where
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    f
}

/// `f(inputs)` and the vector-Jacobian products `vᵀ·∂f/∂xᵢ` for each input (reverse mode, one
/// backward pass): `v` has the output's shape, each result its input's.
///
/// ```
/// use wengert_core::functional::vjp;
/// use wengert_core::Tensor;
/// // f(x, w) = x·w: vᵀ∂f/∂x = v·wᵀ, vᵀ∂f/∂w = xᵀ·v
/// let (x, w) = (Tensor::new(vec![1.0, 2.0], [1, 2]), Tensor::new(vec![3.0, 4.0], [2, 1]));
/// let (y, g) = vjp(|v| v[0].matmul(v[1]), &[x, w], &Tensor::new(vec![1.0], [1, 1]));
/// assert_eq!((y.to_vec(), g[0].to_vec(), g[1].to_vec()), (vec![11.0], vec![3.0, 4.0], vec![1.0, 2.0]));
/// ```
#[track_caller]
pub fn vjp<T, F>(f: F, inputs: &[Tensor<T>], v: &Tensor<T>) -> (Tensor<T>, Vec<Tensor<T>>)
where
    T: Float,
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let xs: Vec<Var<'_, T>> = inputs.iter().map(|x| tape.var(x.clone())).collect();
    let y = f(&xs);
    let grads = tape.grad_with(y, &xs, v.clone());
    (y.value(), grads)
}

/// `f(inputs)` and the Jacobian-vector product `J·t = Σᵢ ∂f/∂xᵢ·tᵢ` (forward mode, by the
/// double-backward trick described in the [module docs](self)): `tangents` has one tensor per
/// input, of its shape; the result has the output's shape.
///
/// ```
/// use wengert_core::functional::jvp;
/// use wengert_core::Tensor;
/// // f(x, w) = x·w, so J·t = tₓ·w + x·t_w
/// let (x, w) = (Tensor::new(vec![1.0, 2.0], [1, 2]), Tensor::new(vec![3.0, 4.0], [2, 1]));
/// let (tx, tw) = (Tensor::new(vec![1.0, 0.0], [1, 2]), Tensor::new(vec![0.0, 1.0], [2, 1]));
/// let (y, jt) = jvp(|v| v[0].matmul(v[1]), &[x, w], &[tx, tw]);
/// assert_eq!(y.to_vec(), [11.0]);
/// assert_eq!(jt.to_vec(), [3.0 + 2.0]);
/// ```
#[track_caller]
pub fn jvp<T, F>(f: F, inputs: &[Tensor<T>], tangents: &[Tensor<T>]) -> (Tensor<T>, Tensor<T>)
where
    T: Float,
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    check_like("jvp tangents", tangents, inputs);
    let tape = Tape::new();
    let xs: Vec<Var<'_, T>> = inputs.iter().map(|x| tape.var(x.clone())).collect();
    let y = f(&xs);
    // u ↦ Jᵀu recorded; ⟨Jᵀu, t⟩ differentiated in u is J·t (any u: it is linear in u)
    let u = tape.var(Tensor::zeros(y.shape()));
    let jt_u = tape.grad_graph(y, &xs, Some(u));
    let inner = jt_u.iter().zip(tangents).map(|(g, t)| (*g * tape.constant(t.clone())).sum()).reduce(|a, b| a + b);
    let jt = match inner {
        Some(s) => tape.grad(s, &[u]).remove(0),
        None => Tensor::zeros(y.shape()),
    };
    (y.value(), jt)
}

/// The Jacobian of `f` with respect to each input: `∂f/∂xᵢ` of shape `output ++ inputᵢ`
/// (`torch.func.jacrev`), one reverse sweep per output element over one recorded pass.
///
/// ```
/// use wengert_core::functional::jacobian;
/// use wengert_core::Tensor;
/// let j = jacobian(|v| v[0].tanh(), &[Tensor::from_slice(&[0.0, 1.0])]);
/// assert_eq!(j[0].dims(), &[2, 2]);
/// assert_eq!(j[0].get(&[0, 1]), 0.0);                       // elementwise: diagonal
/// assert!((j[0].get(&[1, 1]) - (1.0 - 1f64.tanh().powi(2))).abs() < 1e-15);
/// ```
#[track_caller]
pub fn jacobian<T, F>(f: F, inputs: &[Tensor<T>]) -> Vec<Tensor<T>>
where
    T: Float,
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let xs: Vec<Var<'_, T>> = inputs.iter().map(|x| tape.var(x.clone())).collect();
    let y = f(&xs);
    let out = y.shape();
    let mut rows: Vec<Vec<T>> = inputs.iter().map(|x| Vec::with_capacity(out.numel() * x.numel())).collect();
    for i in 0..out.numel() {
        for (row, g) in rows.iter_mut().zip(tape.grad_with(y, &xs, one_hot(&out, i))) {
            row.extend_from_slice(g.as_slice());
        }
    }
    rows.into_iter().zip(inputs).map(|(data, x)| Tensor::new(data, joined(&out, x.shape()))).collect()
}

/// The Hessian `∂²f/∂x²` of a function `f` of one input with a one-element output, of shape
/// `x ++ x` (dense: for small inputs), row `i` from one reverse sweep through the recorded
/// gradient (`torch.func.hessian`).
///
/// ```
/// use wengert_core::functional::{hessian, var_fn};
/// use wengert_core::Tensor;
/// // f(x) = x₀²·x₁: H = [[2x₁, 2x₀], [2x₀, 0]]
/// let f = var_fn(|v| (v[0].narrow(0, 0, 1).square() * v[0].narrow(0, 1, 1)).sum());
/// let h = hessian(f, &Tensor::from_slice(&[3.0, 5.0]));
/// assert_eq!(h.dims(), &[2, 2]);
/// assert_eq!(h.to_vec(), [10.0, 6.0, 6.0, 0.0]);
/// ```
#[track_caller]
pub fn hessian<T, F>(f: F, x: &Tensor<T>) -> Tensor<T>
where
    T: Float,
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let y = f(&[xv]);
    let g = tape.grad_graph(y, &[xv], None)[0];
    let mut data = Vec::with_capacity(x.numel() * x.numel());
    for i in 0..x.numel() {
        data.extend_from_slice(tape.grad_with(g, &[xv], one_hot(x.shape(), i))[0].as_slice());
    }
    Tensor::new(data, joined(x.shape(), x.shape()))
}

/// The Hessian-vector product `H·v` of a function `f` of one input with a one-element output
/// (reverse over reverse: the gradient recorded, then `⟨∇f, v⟩` differentiated), without
/// forming `H`; `v` and the result have `x`'s shape.
///
/// ```
/// use wengert_core::functional::hvp;
/// use wengert_core::Tensor;
/// // f = Σ x³: H = diag(6x)
/// let hv = hvp(|v| v[0].powf(3.0).sum(), &Tensor::from_slice(&[1.0, 2.0]), &Tensor::from_slice(&[1.0, 1.0]));
/// assert_eq!(hv.to_vec(), [6.0, 12.0]);
/// ```
#[track_caller]
pub fn hvp<T, F>(f: F, x: &Tensor<T>, v: &Tensor<T>) -> Tensor<T>
where
    T: Float,
    F: for<'t> Fn(&[Var<'t, T>]) -> Var<'t, T>,
{
    check_like("hvp vector", std::slice::from_ref(v), std::slice::from_ref(x));
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let y = f(&[xv]);
    let g = tape.grad_graph(y, &[xv], None)[0];
    tape.grad((g * tape.constant(v.clone())).sum(), &[xv]).remove(0)
}
