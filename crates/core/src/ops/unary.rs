//! Elementwise functions of one input. Each is declared once, in the `unary_ops!` list
//! below: its value (the `Tensor` method), its derivative built from `Var` ops (the recorded
//! backward, differentiable again), optionally a fused one-pass first-order form, and the
//! domain its gradient is checked on. The declaration generates the `Tensor` method, the
//! `Var` method and its rule, and the op's entry in [`UNARY_OPS`], which the gradient checks
//! (tests/gradcheck_ops.rs), the fused-versus-recorded bit-equality test below and the docs
//! iterate: a new op is one entry, and cannot be left out of its tests.

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::kernels::elementwise::{gelu_exact, gelu_tanh_inner, ln_1p_unit, map, trig};
use crate::kernels::{COSTLY_PARALLEL_MIN_ELEMENTS, PARALLEL_MIN_ELEMENTS};
use crate::ops::one;
use crate::tensor::Tensor;
use crate::var::Var;

/// An elementwise op of one input, as its declaration in `ops/unary.rs` states it: for
/// iterating every op in tests, benches and tools (gradient checks, op reports).
///
/// ```
/// use wengert_core::{gradcheck, ops::UNARY_OPS, Tensor};
/// for op in UNARY_OPS {
///     let (lo, hi) = op.domain;
///     let x = Tensor::from_fn([3], |i| lo + (hi - lo) * (0.15 + 0.3 * i[0] as f64)); // off the kinks at 0
///     gradcheck(|v| (op.on_f64)(v[0]), &[x]).unwrap_or_else(|e| panic!("{}: {e}", op.name));
/// }
/// ```
#[derive(Clone, Copy)]
pub struct UnaryOp {
    /// The method's name (`"erf"`), also the op name on the tape.
    pub name: &'static str,
    /// The op on an f64 `Var`.
    pub on_f64: for<'t> fn(Var<'t, f64>) -> Var<'t, f64>,
    /// The op on an f32 `Var`.
    pub on_f32: for<'t> fn(Var<'t, f32>) -> Var<'t, f32>,
    /// The op on an f64 `Tensor` (no tape).
    pub tensor_f64: fn(&Tensor<f64>) -> Tensor<f64>,
    /// An interval `(lo, hi)` of inputs where the op is defined and its gradient is checked.
    pub domain: (f64, f64),
    /// Whether it is smooth there, so its second derivative is checked too (`relu` and `abs`
    /// have a kink at 0).
    pub smooth: bool,
    /// Whether a first-order backward uses a fused one-pass form (its values must equal the
    /// recorded backward's bit for bit).
    pub fused: bool,
}

/// `true` when given a token (the op declares a fused first-order form).
macro_rules! is_given {
    () => {
        false
    };
    ($t:tt) => {
        true
    };
}

macro_rules! unary_ops {
    ($($name:ident, $Rule:ident {
        tensor $(#[$tdoc:meta])*
        var $(#[$vdoc:meta])*
        value |$t:ident| $value:expr,
        grad |$x:ident, $y:ident, $g:ident, $ctx:ident| $grad:expr,
        $(first order from $from:ident |$gv:ident, $v:ident| $fused:expr,)?
        domain ($lo:expr, $hi:expr), smooth $smooth:literal;
    })*) => {
        impl<T: Float> Tensor<T> {
            $(
                $(#[$tdoc])*
                pub fn $name(&self) -> Tensor<T> {
                    let $t = self;
                    $value
                }
            )*
        }

        $(
            struct $Rule;
            impl<T: Float> Backward<T> for $Rule {
                #[allow(unused_variables)]
                fn backward<'t>(&self, $ctx: &Context<'t, T>, $g: Var<'t, T>) -> InputGrads<'t, T> {
                    let ($x, $y) = ($ctx.input(0), $ctx.output());
                    $(
                        if !$ctx.records_graph() {
                            return one(first_order($ctx, $g, $from, concat!(stringify!($name), " backward"), |$gv: T, $v: T| $fused));
                        }
                    )?
                    one($grad)
                }
            }
        )*

        impl<'t, T: Float> Var<'t, T> {
            $(
                $(#[$vdoc])*
                #[track_caller]
                pub fn $name(self) -> Var<'t, T> {
                    let v = self.with_value(|t| t.$name());
                    self.tape.push_op(stringify!($name), v, &[self], $Rule)
                }
            )*
        }

        #[doc = concat!(
            "Every op declared in `ops/unary.rs`, in declaration order: ",
            $("`", stringify!($name), "` ",)*
            "(each a `Tensor` and a `Var` method). The ops with a parameter (`powf`, `clamp`, \
             `leaky_relu`, `elu`) and the compositions (`log_sigmoid`) are written by hand \
             beside them.\n\n",
            "```\nuse wengert_core::ops::UNARY_OPS;\n",
            "assert!(UNARY_OPS.iter().any(|op| op.name == \"erf\" && op.smooth && op.fused));\n```"
        )]
        pub const UNARY_OPS: &[UnaryOp] = &[$(
            UnaryOp {
                name: stringify!($name),
                on_f64: |x| x.$name(),
                on_f32: |x| x.$name(),
                tensor_f64: |t| t.$name(),
                domain: ($lo, $hi),
                smooth: $smooth,
                fused: is_given!($($from)?),
            },
        )*];
    };
}

/// A first-order gradient (the backward is not itself recorded) in one pass, `f(g, v)` per
/// element with `v` the op's input or output, written over the incoming gradient's buffer
/// when no one else holds it. Built from `Var` ops instead (as the recorded backward must
/// be), σ'(x)·g = g·y·(1 − y) is three passes and two new buffers: sigmoid forward and
/// backward on 1M f32 took 620 µs so, tanh 650.
fn first_order<'t, T: Float>(ctx: &Context<'t, T>, g: Var<'t, T>, v: Var<'t, T>, op: &'static str, f: impl Fn(T, T) -> T + Sync) -> Var<'t, T> {
    let gv = ctx.take_grad(g);
    let d = v.with_value(|vv| crate::kernels::elementwise::zip_reusing(op, gv, vv, true, f));
    ctx.constant(d.or_panic())
}

// Each op: `tensor` docs, `var` docs, the value, the recorded derivative (`x` input, `y`
// output, `g` incoming gradient), optionally the fused first-order form (the same arithmetic
// as the recorded one, so the same values) from `x` or `y`, the checked domain. Values marked
// `COSTLY_PARALLEL_MIN_ELEMENTS` compute enough per element to use both cores on smaller
// tensors than the memory-bound ones.
unary_ops! {
    exp, ExpRule {
        tensor
        /// e^x
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[0.0f64, 1.0]).exp();
        /// assert!(y.allclose(&Tensor::from_slice(&[1.0, std::f64::consts::E]), 1e-12, 1e-12));
        /// ```
        var
        /// eˣ. Derivative: itself.
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(0.0));
        /// assert_eq!(x.exp().backward().wrt(x).item(), 1.0);
        /// ```
        value |t| map(t, COSTLY_PARALLEL_MIN_ELEMENTS, |x: T| x.fast_exp()),
        grad |x, y, g, ctx| g * y,
        domain (-2.0, 2.0), smooth true;
    }

    ln, LnRule {
        tensor
        /// ln x (natural log)
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[1.0f64, std::f64::consts::E]).ln();
        /// assert!(y.allclose(&Tensor::from_slice(&[0.0, 1.0]), 1e-12, 1e-12));
        /// ```
        var
        /// ln x. Derivative: 1/x.
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(2.0));
        /// let y = x.ln();
        /// assert_eq!(y.value().item(), 2f64.ln());
        /// assert_eq!(y.backward().wrt(x).item(), 0.5);
        /// ```
        value |t| map(t, COSTLY_PARALLEL_MIN_ELEMENTS, |x: T| x.fast_ln()),
        grad |x, y, g, ctx| g / x,
        domain (0.3, 3.0), smooth true;
    }

    sqrt, SqrtRule {
        tensor
        /// √x
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// assert_eq!(Tensor::from_slice(&[4.0f64, 9.0]).sqrt().to_vec(), vec![2.0, 3.0]);
        /// ```
        var
        /// √x. Derivative: 1/(2√x).
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(4.0));
        /// let y = x.sqrt();
        /// assert_eq!(y.value().item(), 2.0);
        /// assert_eq!(y.backward().wrt(x).item(), 0.25); // 1/(2·2)
        /// ```
        value |t| map(t, PARALLEL_MIN_ELEMENTS, |x: T| x.sqrt()),
        grad |x, y, g, ctx| g / (y * 2.0),
        first order from y |g, y| g / (y + y),
        domain (0.3, 3.0), smooth true;
    }

    abs, AbsRule {
        tensor
        /// |x|
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// assert_eq!(Tensor::from_slice(&[-1.5f64, 2.0]).abs().to_vec(), vec![1.5, 2.0]);
        /// ```
        var
        /// |x|. Derivative: sign(x) (0 at 0).
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::from_slice(&[-2.0, 0.0, 3.0]));
        /// assert_eq!(x.abs().value().to_vec(), [2.0, 0.0, 3.0]);
        /// assert_eq!(x.abs().sum().backward().wrt(x).to_vec(), [-1.0, 0.0, 1.0]);
        /// ```
        value |t| map(t, PARALLEL_MIN_ELEMENTS, |x: T| x.abs()),
        grad |x, y, g, ctx| g * ctx.constant(x.value().sign()),
        first order from x |g, x| g * if x > T::ZERO { T::ONE } else if x < T::ZERO { -T::ONE } else { T::ZERO },
        domain (-2.0, 2.0), smooth false;
    }

    sin, SinRule {
        tensor
        /// sin x: [`Float::fast_sin`] where it applies, [`Float::sin`] past
        /// [`Float::FAST_TRIG_MAX`]
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[0.0f64, std::f64::consts::FRAC_PI_2, 1e9]).sin();
        /// assert!(y.allclose(&Tensor::from_slice(&[0.0, 1.0, 1e9f64.sin()]), 1e-12, 1e-12));
        /// ```
        var
        /// sin x. Derivative: cos x.
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(0.0));
        /// let y = x.sin();
        /// assert_eq!(y.value().item(), 0.0);
        /// assert_eq!(y.backward().wrt(x).item(), 1.0); // cos 0
        /// ```
        value |t| trig(t, T::fast_sin, T::sin),
        grad |x, y, g, ctx| g * x.cos(),
        domain (-2.0, 2.0), smooth true;
    }

    cos, CosRule {
        tensor
        /// cos x: [`Float::fast_cos`] where it applies, [`Float::cos`] past
        /// [`Float::FAST_TRIG_MAX`]
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[0.0f64, std::f64::consts::PI, 1e9]).cos();
        /// assert!(y.allclose(&Tensor::from_slice(&[1.0, -1.0, 1e9f64.cos()]), 1e-12, 1e-12));
        /// ```
        var
        /// cos x. Derivative: -sin x.
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(0.0));
        /// let y = x.cos();
        /// assert_eq!(y.value().item(), 1.0);
        /// assert_eq!(y.backward().wrt(x).item(), 0.0); // -sin 0
        /// ```
        value |t| trig(t, T::fast_cos, T::cos),
        grad |x, y, g, ctx| -(g * x.sin()),
        domain (-2.0, 2.0), smooth true;
    }

    tanh, TanhRule {
        tensor
        /// tanh x
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[0.0f64, 1.0]).tanh();
        /// assert!(y.allclose(&Tensor::from_slice(&[0.0, 1f64.tanh()]), 1e-12, 1e-12));
        /// ```
        var
        /// tanh x. Derivative: 1 - tanh² x.
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(0.0));
        /// let y = x.tanh();
        /// assert_eq!(y.value().item(), 0.0);
        /// assert_eq!(y.backward().wrt(x).item(), 1.0); // 1 - tanh² 0
        /// ```
        value |t| map(t, COSTLY_PARALLEL_MIN_ELEMENTS, |x: T| x.fast_tanh()),
        grad |x, y, g, ctx| g * (1.0 - y.square()),
        first order from y |g, y| g * (T::ONE - y * y),
        domain (-2.0, 2.0), smooth true;
    }

    sigmoid, SigmoidRule {
        tensor
        /// 1 / (1 + e^-x); for large -x, e^-x overflows to ∞ and the result is exactly 0
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[0.0f64, -1000.0]).sigmoid().to_vec();
        /// assert!((y[0] - 0.5).abs() < 1e-12);
        /// assert_eq!(y[1], 0.0);
        /// ```
        var
        /// σ(x) = 1/(1+e⁻ˣ), stable for large |x|. Derivative: σ(x)(1-σ(x)).
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(0.0));
        /// let y = x.sigmoid();
        /// assert_eq!(y.value().item(), 0.5);
        /// assert_eq!(y.backward().wrt(x).item(), 0.25); // σ(0)(1 - σ(0))
        /// ```
        value |t| map(t, COSTLY_PARALLEL_MIN_ELEMENTS, |x: T| T::ONE / (T::ONE + (-x).fast_exp())),
        grad |x, y, g, ctx| g * y * (1.0 - y),
        first order from y |g, y| g * y * (T::ONE - y),
        domain (-2.0, 2.0), smooth true;
    }

    softplus, SoftplusRule {
        tensor
        /// ln(1 + eˣ), computed as max(x, 0) + ln(1 + e^-|x|) so it never overflows
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[0.0f64, -1000.0, 1000.0]).softplus();
        /// assert!(y.allclose(&Tensor::from_slice(&[2f64.ln(), 0.0, 1000.0]), 1e-12, 1e-12));
        /// ```
        var
        /// ln(1 + eˣ), stable for large |x|. Derivative: σ(x).
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(0.0));
        /// let y = x.softplus();
        /// assert!((y.value().item() - 2f64.ln()).abs() < 1e-12);
        /// assert!((y.backward().wrt(x).item() - 0.5).abs() < 1e-12); // σ(0)
        /// ```
        value |t| map(t, COSTLY_PARALLEL_MIN_ELEMENTS, |x: T| x.max(T::ZERO) + ln_1p_unit((-x.abs()).fast_exp())),
        grad |x, y, g, ctx| g * x.sigmoid(),
        first order from x |g, x| g * (T::ONE / (T::ONE + (-x).fast_exp())),
        domain (-2.0, 2.0), smooth true;
    }

    silu, SiluRule {
        tensor
        /// x·σ(x) (SiLU, swish)
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[0.0f64, 1.0]).silu();
        /// assert!(y.allclose(&Tensor::from_slice(&[0.0, 1.0 / (1.0 + (-1f64).exp())]), 1e-12, 1e-12));
        /// ```
        var
        /// x·σ(x) (SiLU, swish). Derivative: σ(x)·(1 + x·(1 − σ(x))).
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(0.0));
        /// let y = x.silu();
        /// assert_eq!(y.value().item(), 0.0);
        /// assert!((y.backward().wrt(x).item() - 0.5).abs() < 1e-12); // σ(0)·(1 + 0)
        /// ```
        value |t| map(t, COSTLY_PARALLEL_MIN_ELEMENTS, |x: T| x * (T::ONE / (T::ONE + (-x).fast_exp()))),
        grad |x, y, g, ctx| { let s = x.sigmoid(); g * (s * ((1.0 - s) * x + 1.0)) },
        first order from x |g, x| {
                let s = T::ONE / (T::ONE + (-x).fast_exp());
                g * (s * ((T::ONE - s) * x + T::ONE))
            },
        domain (-2.0, 2.0), smooth true;
    }

    gelu_tanh, GeluTanhRule {
        tensor
        /// GELU, tanh form (PyTorch's `approximate="tanh"`): ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[0.0f64, 1.0]).gelu_tanh();
        /// assert!(y.allclose(&Tensor::from_slice(&[0.0, 0.8411919906082768]), 1e-12, 1e-12));
        /// ```
        var
        /// GELU, tanh form (PyTorch's `approximate="tanh"`): ½x(1 + t), t = tanh(u),
        /// u = √(2/π)(x + 0.044715x³). Derivative: ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²).
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(0.0));
        /// let y = x.gelu_tanh();
        /// assert_eq!(y.value().item(), 0.0);
        /// assert!((y.backward().wrt(x).item() - 0.5).abs() < 1e-12); // ½(1 + tanh 0)
        /// ```
        value |t| map(t, COSTLY_PARALLEL_MIN_ELEMENTS, |x: T| x * (gelu_tanh_inner(x) + T::ONE) * T::from_f64(0.5)),
        grad |x, y, g, ctx| {
            use crate::kernels::elementwise::{GELU_C, GELU_K};
            let t = ((x + x.powf(T::from_f64(3.0)) * GELU_C) * GELU_K).tanh();
            let du = (x.square() * (3.0 * GELU_C) + 1.0) * GELU_K;
            g * ((t + 1.0) * 0.5 + x * (1.0 - t.square()) * du * 0.5)
        },
        first order from x |g, x| {
                use crate::kernels::elementwise::{gelu_tanh_inner, GELU_C, GELU_K};
                let (t, half) = (gelu_tanh_inner(x), T::from_f64(0.5));
                let du = (x * x * T::from_f64(3.0 * GELU_C) + T::ONE) * T::from_f64(GELU_K);
                g * ((t + T::ONE) * half + x * (T::ONE - t * t) * du * half)
            },
        domain (-2.0, 2.0), smooth true;
    }

    gelu, GeluRule {
        tensor
        /// GELU, exact form (PyTorch's default): x·Φ(x) = ½x(1 + erf(x/√2))
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[0.0f64, 1.0]).gelu();
        /// assert!(y.allclose(&Tensor::from_slice(&[0.0, 0.8413447460685429]), 1e-12, 1e-12));
        /// ```
        var
        /// GELU, exact form (PyTorch's default `gelu`): x·Φ(x) = ½x(1 + erf(x/√2)). Derivative:
        /// Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π).
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(1.0));
        /// let y = x.gelu();
        /// assert!((y.value().item() - 0.841_344_746_068_542_9).abs() < 1e-15);
        /// let d = y.backward().wrt(x).item(); // Φ(1) + φ(1)
        /// assert!((d - (0.841_344_746_068_542_9 + 0.241_970_724_519_143_37)).abs() < 1e-15);
        /// ```
        value |t| map(t, COSTLY_PARALLEL_MIN_ELEMENTS, |x: T| gelu_exact(x)),
        grad |x, y, g, ctx| {
            use std::f64::consts::{FRAC_1_SQRT_2, PI};
            let cdf = ((x * FRAC_1_SQRT_2).erf() + 1.0) * 0.5;
            let pdf = (x.square() * -0.5).exp() * (1.0 / (2.0 * PI).sqrt());
            g * (cdf + x * pdf)
        },
        first order from x |g, x| {
                use std::f64::consts::{FRAC_1_SQRT_2, PI};
                let cdf = (crate::kernels::special::erf(x * T::from_f64(FRAC_1_SQRT_2)) + T::ONE) * T::from_f64(0.5);
                let pdf = (x * x * T::from_f64(-0.5)).fast_exp() * T::from_f64(1.0 / (2.0 * PI).sqrt());
                g * (cdf + x * pdf)
            },
        domain (-2.0, 2.0), smooth true;
    }

    erf, ErfRule {
        tensor
        /// the error function erf x = 2/√π ∫₀ˣ e^(−s²) ds (within 2.2e-16 relative in f64, 2 ulp
        /// in f32; see `kernels::special`)
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// let y = Tensor::from_slice(&[0.0f64, 1.0, -1.0]).erf();
        /// assert!(y.allclose(&Tensor::from_slice(&[0.0, 0.8427007929497149, -0.8427007929497149]), 1e-15, 1e-15));
        /// ```
        var
        /// erf x = 2/√π ∫₀ˣ e^(−s²) ds. Derivative: 2/√π·e^(−x²).
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(0.0));
        /// assert_eq!(x.erf().backward().wrt(x).item(), std::f64::consts::FRAC_2_SQRT_PI);
        /// ```
        value |t| map(t, COSTLY_PARALLEL_MIN_ELEMENTS, |x: T| crate::kernels::special::erf(x)),
        grad |x, y, g, ctx| g * ((-x.square()).exp() * std::f64::consts::FRAC_2_SQRT_PI),
        first order from x |g, x| g * ((-(x * x)).fast_exp() * T::from_f64(std::f64::consts::FRAC_2_SQRT_PI)),
        domain (-2.0, 2.0), smooth true;
    }

    relu, ReluRule {
        tensor
        /// max(x, 0); NaN stays NaN (as `torch.relu`)
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// assert_eq!(Tensor::from_slice(&[-1.0f64, 0.0, 2.0]).relu().to_vec(), vec![0.0, 0.0, 2.0]);
        /// assert!(Tensor::from_slice(&[f64::NAN]).relu().item().is_nan());
        /// ```
        var
        /// max(x, 0), NaN kept (as `torch.relu`). Derivative: 0 where x ≤ 0, else 1 (also at
        /// NaN, as PyTorch's `threshold_backward`).
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::from_slice(&[-1.0, 0.0, 2.0]));
        /// assert_eq!(x.relu().value().to_vec(), [0.0, 0.0, 2.0]);
        /// assert_eq!(x.relu().sum().backward().wrt(x).to_vec(), [0.0, 0.0, 1.0]);
        /// ```
        value |t| map(t, PARALLEL_MIN_ELEMENTS, |x: T| if x <= T::ZERO { T::ZERO } else { x }),
        grad |x, y, g, ctx| g * ctx.constant(x.value().par_map(|v| if v <= T::ZERO { T::ZERO } else { T::ONE })),
        first order from x |g, x| if x <= T::ZERO { T::ZERO } else { g },
        domain (-2.0, 2.0), smooth false;
    }

    square, SquareRule {
        tensor
        /// x²
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// assert_eq!(Tensor::from_slice(&[3.0f64, -2.0]).square().to_vec(), vec![9.0, 4.0]);
        /// ```
        var
        /// x². Derivative: 2x.
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(3.0));
        /// let y = x.square();
        /// assert_eq!(y.value().item(), 9.0);
        /// assert_eq!(y.backward().wrt(x).item(), 6.0);
        /// ```
        value |t| map(t, PARALLEL_MIN_ELEMENTS, |x: T| x * x),
        grad |x, y, g, ctx| g * x * 2.0,
        first order from x |g, x| g * (x + x),
        domain (-2.0, 2.0), smooth true;
    }

    recip, RecipRule {
        tensor
        /// 1 / x
        ///
        /// ```
        /// use wengert_core::Tensor;
        /// assert_eq!(Tensor::from_slice(&[2.0f64, 4.0]).recip().to_vec(), vec![0.5, 0.25]);
        /// ```
        var
        /// 1/x. Derivative: -1/x².
        ///
        /// ```
        /// use wengert_core::{Tape, Tensor};
        /// let tape = Tape::<f64>::new();
        /// let x = tape.var(Tensor::scalar(2.0));
        /// let y = x.recip();
        /// assert_eq!(y.value().item(), 0.5);
        /// assert_eq!(y.backward().wrt(x).item(), -0.25); // -1/2²
        /// ```
        value |t| map(t, PARALLEL_MIN_ELEMENTS, |x: T| T::ONE / x),
        grad |x, y, g, ctx| -(g * y.square()),
        first order from y |g, y| -(g * (y * y)),
        domain (0.3, 3.0), smooth true;
    }
}


struct PowfRule<T>(T);
impl<T: Float> Backward<T> for PowfRule<T> {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let p = self.0;
        if p == T::ZERO {
            return one(g.mul_scalar(T::ZERO));
        }
        one(g * ctx.input(0).powf(p - T::ONE).mul_scalar(p))
    }
}

struct ClampRule<T>(T, T);
impl<T: Float> Backward<T> for ClampRule<T> {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let (lo, hi) = (self.0, self.1);
        let x = ctx.input(0);
        if !ctx.records_graph() {
            return one(first_order(ctx, g, x, "clamp backward", move |g, v| if v >= lo && v <= hi { g } else { T::ZERO }));
        }
        let inside = x.value().par_map(move |v| if v >= lo && v <= hi { T::ONE } else { T::ZERO });
        one(g * ctx.constant(inside))
    }
}

struct LeakyReluRule<T>(T);
impl<T: Float> Backward<T> for LeakyReluRule<T> {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let (x, slope) = (ctx.input(0), self.0);
        if !ctx.records_graph() {
            return one(first_order(ctx, g, x, "leaky_relu backward", move |g, v| if v > T::ZERO { g } else { g * slope }));
        }
        one(g * ctx.constant(x.value().par_map(move |v| if v > T::ZERO { T::ONE } else { slope })))
    }
}

struct EluRule<T>(T);
impl<T: Float> Backward<T> for EluRule<T> {
    fn backward<'t>(&self, ctx: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        let (x, alpha) = (ctx.input(0), self.0);
        if !ctx.records_graph() {
            return one(first_order(ctx, g, x, "elu backward", move |g, v| {
                if v > T::ZERO {
                    g
                } else {
                    g * (crate::kernels::elementwise::non_positive(v).fast_exp() * alpha)
                }
            }));
        }
        // α·e^min(x, 0) below 0, 1 above, differentiable again through the exponential
        let pos = x.value().par_map(|v| v > T::ZERO);
        let slope = Var::where_(&pos, ctx.constant(crate::Tensor::scalar(T::ONE)), x.clamp(T::NEG_INFINITY, T::ZERO).exp().mul_scalar(alpha));
        one(g * slope)
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// ln σ(x) = -softplus(-x), stable for large |x|. Derivative: σ(-x) = 1 - σ(x).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(0.0));
    /// let y = x.log_sigmoid();
    /// assert!((y.value().item() + 2f64.ln()).abs() < 1e-12);
    /// assert!((y.backward().wrt(x).item() - 0.5).abs() < 1e-12); // 1 - σ(0)
    /// ```
    #[track_caller]
    pub fn log_sigmoid(self) -> Var<'t, T> {
        -((-self).softplus())
    }

    /// xᵖ for a scalar exponent. Derivative: p·xᵖ⁻¹.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(2.0));
    /// let y = x.powf(3.0);
    /// assert_eq!(y.value().item(), 8.0);
    /// assert_eq!(y.backward().wrt(x).item(), 12.0); // 3·2²
    /// ```
    #[track_caller]
    pub fn powf(self, p: T) -> Var<'t, T> {
        let v = self.with_value(|t| t.powf(p));
        self.tape.push_op("powf", v, &[self], PowfRule(p))
    }

    /// x for x > 0, `slope`·x otherwise (PyTorch's `leaky_relu`). Derivative: 1 for x > 0,
    /// `slope` otherwise.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[-2.0, 3.0]));
    /// let y = x.leaky_relu(0.1);
    /// assert_eq!(y.value().to_vec(), [-0.2, 3.0]);
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), [0.1, 1.0]);
    /// ```
    #[track_caller]
    pub fn leaky_relu(self, slope: T) -> Var<'t, T> {
        let v = self.with_value(|t| t.leaky_relu(slope));
        self.tape.push_op("leaky_relu", v, &[self], LeakyReluRule(slope))
    }

    /// x for x > 0, α(eˣ − 1) otherwise (PyTorch's `elu`). Derivative: 1 for x > 0, α·eˣ
    /// otherwise.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[0.0, 2.0]));
    /// let y = x.elu(0.5);
    /// assert_eq!(y.value().get(&[1]), 2.0);
    /// let g = y.sum().backward().wrt(x).to_vec();
    /// assert!((g[0] - 0.5).abs() < 1e-12 && g[1] == 1.0); // α·e⁰ and 1
    /// ```
    #[track_caller]
    pub fn elu(self, alpha: T) -> Var<'t, T> {
        let v = self.with_value(|t| t.elu(alpha));
        self.tape.push_op("elu", v, &[self], EluRule(alpha))
    }

    /// x clamped to `[lo, hi]`. Derivative: 1 inside the interval, 0 outside.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[-1.0, 0.5, 2.0]));
    /// let y = x.clamp(0.0, 1.0);
    /// assert_eq!(y.value().to_vec(), [0.0, 0.5, 1.0]);
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), [0.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn clamp(self, lo: T, hi: T) -> Var<'t, T> {
        let v = self.with_value(|t| t.clamp(lo, hi));
        self.tape.push_op("clamp", v, &[self], ClampRule(lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Tape, Tensor};

    #[test]
    fn known_derivatives() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_slice(&[-1.0, 0.5, 2.0]));
        let d = |y: crate::Var<'_, f64>| y.sum().backward().wrt(x).to_vec();
        assert_eq!(d(x.relu()), vec![0.0, 1.0, 1.0]);
        assert_eq!(d(x.abs()), vec![-1.0, 1.0, 1.0]);
        assert_eq!(d(x.clamp(0.0, 1.0)), vec![0.0, 1.0, 0.0]);
        assert_eq!(d(x.powf(3.0)), vec![3.0, 0.75, 12.0]);
        assert_eq!(d(x.square()), vec![-2.0, 1.0, 4.0]);
        let s = x.value().sigmoid();
        let ds: Vec<f64> = s.as_slice().iter().map(|v| v * (1.0 - v)).collect();
        assert_eq!(d(x.sigmoid()), ds);
    }

    /// ReLU's first-order backward writes over its incoming gradient's buffer when no one
    /// else holds it (a large one, split across threads), and leaves it alone when the caller
    /// asked for that gradient too.
    #[test]
    fn relu_backward_in_place_keeps_requested_gradients() {
        let n = crate::kernels::PARALLEL_MIN_ELEMENTS + 5;
        let tape = Tape::<f32>::new();
        let x = tape.var(Tensor::from_fn([n], |i| (i[0] % 7) as f32 - 3.0));
        let r = x.relu();
        let w = Tensor::from_fn([n], |i| 1.0 + (i[0] % 3) as f32);
        let y = (r * tape.constant(w.clone())).sum();
        let want: Vec<f32> = x.value().as_slice().iter().zip(w.as_slice()).map(|(&x, &w)| if x > 0.0 { w } else { 0.0 }).collect();
        assert_eq!(y.backward().wrt(x).to_vec(), want, "in place");
        let g = tape.grad(y, &[x, r]);
        assert_eq!(g[1].to_vec(), w.to_vec(), "the kept gradient of the ReLU output is untouched");
        assert_eq!(g[0].to_vec(), want);
    }

    /// The fused first-order gradients equal the recorded ones (built from `Var` ops) bit for
    /// bit, in f32 on inputs large enough for the in-place, multi-threaded pass, with zeros,
    /// ±∞ and NaN among them.
    #[test]
    fn first_order_rules_match_the_recorded_ones() {
        type Op = for<'t> fn(crate::Var<'t, f32>) -> crate::Var<'t, f32>;
        let n = crate::kernels::PARALLEL_MIN_ELEMENTS + 37;
        let xs = Tensor::<f32>::from_fn([n], |i| match i[0] % 97 {
            0 => 0.0,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => f32::NAN,
            k => (k as f32 - 48.0) * 0.37,
        });
        let w = Tensor::<f32>::from_fn([n], |i| 0.5 + (i[0] % 5) as f32);
        // every declared op with a fused form, and the hand-written ones with a parameter
        let declared = super::UNARY_OPS.iter().filter(|op| op.fused).map(|op| (op.name, op.on_f32));
        let by_hand: [(&str, Op); 3] = [("leaky_relu", |x| x.leaky_relu(0.1)), ("elu", |x| x.elu(1.3)), ("clamp", |x| x.clamp(-2.0, 3.0))];
        let ops: Vec<(&str, Op)> = declared.chain(by_hand).collect();
        assert!(ops.len() > by_hand.len(), "the declared fused ops are in the list");
        for (name, op) in ops {
            let tape = Tape::<f32>::new();
            let x = tape.var(xs.clone());
            let y = (op(x) * tape.constant(w.clone())).sum();
            let fused = y.backward().wrt(x).to_vec();
            let recorded = tape.grad_graph(y, &[x], None)[0].value().to_vec();
            let same = fused.iter().zip(&recorded).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            assert!(same, "{name}: the first-order gradient differs from the recorded one");
        }
    }
}
