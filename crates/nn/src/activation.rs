//! Activation functions, as functions on `Var`s and as parameter-free modules.
//! Each is composed of core ops, so its gradient comes from the tape.

use wengert_core::{Float, Param, Tensor, Var};

use crate::module::Module;

/// max(x, 0)
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::from_slice(&[-1.0, 2.0]));
/// let y = relu(x);
/// assert_eq!(y.value().to_vec(), vec![0.0, 2.0]);
/// assert_eq!(y.sum().backward().wrt(x).to_vec(), vec![0.0, 1.0]);
/// ```
pub fn relu<'t, T: Float>(x: Var<'t, T>) -> Var<'t, T> {
    x.relu()
}

/// x for x > 0, `slope`·x otherwise.
/// One core op (`Var::leaky_relu`); as a mask and a `where_`, forward and backward on 1M
/// f32 took 2.2 ms.
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::from_slice(&[-2.0, 3.0]));
/// let y = leaky_relu(x, 0.1);
/// assert_eq!(y.value().to_vec(), vec![-0.2, 3.0]);
/// assert_eq!(y.sum().backward().wrt(x).to_vec(), vec![0.1, 1.0]);
/// ```
pub fn leaky_relu<'t, T: Float>(x: Var<'t, T>, slope: f64) -> Var<'t, T> {
    x.leaky_relu(T::from_f64(slope))
}

/// x for x > 0, α(eˣ - 1) otherwise (the exponential is taken of min(x, 0), so large
/// positive inputs cannot overflow the unused branch). One core op (`Var::elu`; composed,
/// forward and backward on 1M f32 took 3.0 ms).
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::from_slice(&[-1.0, 2.0]));
/// let y = elu(x, 1.0);
/// assert!((y.value().get(&[0]) - ((-1f64).exp() - 1.0)).abs() < 1e-15);
/// assert_eq!(y.value().get(&[1]), 2.0);
/// ```
pub fn elu<'t, T: Float>(x: Var<'t, T>, alpha: f64) -> Var<'t, T> {
    x.elu(T::from_f64(alpha))
}

/// Which GELU: PyTorch's `approximate` argument of `nn.GELU` / `F.gelu`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Approximate {
    /// The exact x·Φ(x) = ½x(1 + erf(x/√2)) (PyTorch's default, `approximate="none"`, and
    /// what BERT-family checkpoints were trained with).
    #[default]
    None,
    /// ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (`approximate="tanh"`, GPT-2's form), within
    /// 1e-3 of the exact one.
    Tanh,
}

/// GELU, exact form as PyTorch's default: x·Φ(x) = ½x(1 + erf(x/√2)). One core op
/// (`Var::gelu`), its erf within 1 ulp in f32.
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let y = wengert_nn::activation::gelu(tape.constant(Tensor::new(vec![-1.0, 0.0, 1.0], [3])));
/// let want = [-0.158_655_253_931_457_05, 0.0, 0.841_344_746_068_542_9]; // torch.nn.GELU()
/// assert!(y.value().to_vec().iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-15));
/// ```
pub fn gelu<'t, T: Float>(x: Var<'t, T>) -> Var<'t, T> {
    x.gelu()
}

/// GELU in the chosen form: [`Approximate::None`] is [`gelu`], [`Approximate::Tanh`] the
/// tanh form (`Var::gelu_tanh`, one core op).
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::from_slice(&[1.0]));
/// let (exact, tanh) = (gelu_with(x, Approximate::None).item(), gelu_with(x, Approximate::Tanh).item());
/// assert!((exact - 0.841_344_746_068_542_9).abs() < 1e-15 && (tanh - exact).abs() < 1e-3);
/// ```
pub fn gelu_with<'t, T: Float>(x: Var<'t, T>, approximate: Approximate) -> Var<'t, T> {
    match approximate {
        Approximate::None => x.gelu(),
        Approximate::Tanh => x.gelu_tanh(),
    }
}

/// SiLU / swish: x·σ(x), one core op (`Var::silu`; as x times its sigmoid, forward and
/// backward on 1M f32 took 1.6 ms).
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::from_slice(&[0.0, 2.0]));
/// let y = silu(x).value();
/// assert_eq!(y.get(&[0]), 0.0);
/// assert!((y.get(&[1]) - 2.0 / (1.0 + (-2f64).exp())).abs() < 1e-15);
/// ```
pub fn silu<'t, T: Float>(x: Var<'t, T>) -> Var<'t, T> {
    x.silu()
}

macro_rules! activation_modules {
    ($($(#[$doc:meta])* $name:ident $(($field:ty))? => |$s:ident, $x:ident| $body:expr;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $name $((pub $field))?;
        impl<T: Float> Module<T> for $name {
            #[allow(unused_variables)]
            fn forward<'t>(&self, $x: Var<'t, T>) -> Var<'t, T> {
                let $s = self;
                $body
            }
            fn visit_params<'a>(&'a self, _: &str, _: &mut dyn FnMut(String, &'a Param<T>)) {}
            fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(String, &'a mut Param<T>)) {}
        }
    )*};
}

activation_modules! {
    /// [`relu`] as a module.
    ReLU => |s, x| x.relu();
    /// [`leaky_relu`] with the given negative slope (PyTorch's default is 0.01).
    LeakyReLU(f64) => |s, x| leaky_relu(x, s.0);
    /// [`elu`] with the given α (PyTorch's default is 1).
    ELU(f64) => |s, x| elu(x, s.0);
    /// σ(x) as a module.
    Sigmoid => |s, x| x.sigmoid();
    /// tanh as a module.
    Tanh => |s, x| x.tanh();
    /// GELU as a module, exact by default (`GELU::default()`, as `nn.GELU()`), or
    /// `GELU(Approximate::Tanh)` as `nn.GELU(approximate="tanh")`.
    GELU(Approximate) => |s, x| gelu_with(x, s.0);
    /// [`silu`] as a module.
    SiLU => |s, x| silu(x);
    /// Softmax along the given axis.
    Softmax(isize) => |s, x| x.softmax(s.0);
    /// Log-softmax along the given axis.
    LogSoftmax(isize) => |s, x| x.log_softmax(s.0);
}

/// Row-wise softmax of plain logits `[n, k]` (no tape): class probabilities for prediction.
///
/// ```
/// use wengert_nn::prelude::*;
/// let p = predict_proba(&Tensor::new(vec![0.0f64, 0.0, 1.0, 1.0], [2, 2]));
/// assert_eq!(p.to_vec(), vec![0.5, 0.5, 0.5, 0.5]);
/// ```
pub fn predict_proba<T: Float>(logits: &Tensor<T>) -> Tensor<T> {
    logits.softmax(-1)
}
