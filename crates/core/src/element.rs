//! Element types: what a [`Tensor`](crate::Tensor) can hold.
//!
//! Every tensor holds an [`Element`] (`f32`, `f64`, `usize` for indices, `bool` for masks,
//! `i64`, `i32` and `u8` for integer data loaded from or saved to files);
//! arithmetic, the tape and gradients need a [`Float`] (`f32` or `f64`).

use std::fmt::{Debug, Display, LowerExp};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A value a tensor can store: plain, copyable, thread-safe data.
pub trait Element: Copy + Debug + Default + PartialEq + Send + Sync + 'static {
    /// Short name used in `Debug` output and error messages (`"f32"`, `"usize"`, ...).
    const NAME: &'static str;

    /// `if m { a } else { b }`, written for the types here with bit masks: in a loop over
    /// slices, LLVM turns the plain `if` into a select of the two addresses and a gather
    /// from them (`where_` of 1M f32 took 650 µs on one thread that way, 190 with masks).
    #[inline(always)]
    fn select(m: bool, a: Self, b: Self) -> Self {
        if m {
            a
        } else {
            b
        }
    }
}

/// [`Element::select`] by masking the bits of both values.
macro_rules! select_by_bits {
    ($t:ty, $bits:ty, $to:expr, $from:expr) => {
        #[inline(always)]
        fn select(m: bool, a: $t, b: $t) -> $t {
            let mask = (m as $bits).wrapping_neg();
            $from(($to(a) & mask) | ($to(b) & !mask))
        }
    };
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    select_by_bits!(f32, u32, f32::to_bits, f32::from_bits);
}
impl Element for f64 {
    const NAME: &'static str = "f64";
    select_by_bits!(f64, u64, f64::to_bits, f64::from_bits);
}
impl Element for usize {
    const NAME: &'static str = "usize";
    select_by_bits!(usize, usize, std::convert::identity, std::convert::identity);
}
impl Element for i64 {
    const NAME: &'static str = "i64";
    select_by_bits!(i64, i64, std::convert::identity, std::convert::identity);
}
impl Element for i32 {
    const NAME: &'static str = "i32";
    select_by_bits!(i32, i32, std::convert::identity, std::convert::identity);
}
impl Element for u8 {
    const NAME: &'static str = "u8";
    select_by_bits!(u8, u8, std::convert::identity, std::convert::identity);
}
impl Element for bool {
    const NAME: &'static str = "bool";
    #[inline(always)]
    fn select(m: bool, a: bool, b: bool) -> bool {
        (m & a) | (!m & b)
    }
}

/// A floating-point element: `f32` or `f64`. Everything differentiable is generic over it.
pub trait Float:
    Element
    + PartialOrd
    + Display
    + LowerExp
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    /// 0
    const ZERO: Self;
    /// 1
    const ONE: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// +infinity
    const INFINITY: Self;
    /// -infinity
    const NEG_INFINITY: Self;
    /// The smallest positive normal value; magnitudes below it are subnormal, which many CPUs
    /// compute on far more slowly (an optimizer flushes its decaying moments to 0 there).
    const MIN_POSITIVE: Self;

    /// Converts from `f64` (rounding for `f32`).
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Converts a count to this type.
    fn from_usize(n: usize) -> Self {
        Self::from_f64(n as f64)
    }
    /// e^x
    fn exp(self) -> Self;
    /// eˣ in a form the compiler vectorizes (used by the kernels): for f32 a range reduction
    /// and a degree-6 polynomial (relative error below 1.2e-7, about 2 ulp, with correct
    /// overflow and NaN; results below 2⁻¹²⁵ flush to zero); for f64 the standard library's
    /// `exp`. Speed: 1M f32 in 107-112 µs on two cores (the memory bound of the pass);
    /// a closure calling `f32::exp` instead is not vectorized and runs about 10x slower.
    ///
    /// ```
    /// use wengert_core::Float;
    /// let x = 1.5f32;
    /// assert!((x.fast_exp() - x.exp()).abs() <= 2.0 * f32::EPSILON * x.exp());
    /// ```
    fn fast_exp(self) -> Self;
    /// tanh x in a form the compiler vectorizes (used by the kernels): for f32 an odd
    /// polynomial below |x| = 0.625 and 1 - 2/(e²ˣ + 1) (with [`Float::fast_exp`]) above,
    /// relative error below 2e-7 (3 ulp); for f64 the standard library's `tanh`.
    fn fast_tanh(self) -> Self;
    /// natural logarithm
    fn ln(self) -> Self;
    /// ln x in a form the compiler vectorizes (used by the kernels): for f32 x = 2ᵏ·m with
    /// m in [√½, √2) and ln m = 2·atanh(s), s = (m − 1)/(m + 1), by its series to s⁹
    /// (within 1.9 ulp of the exact result, subnormals included; ±0 gives -∞, a negative x or
    /// NaN gives NaN, +∞ stays +∞); for f64 the standard library's `ln`. Speed: 1M f32 in
    /// 235-252 µs on two cores, against 2.2-2.3 ms with libm's `logf` per element.
    ///
    /// ```
    /// use wengert_core::Float;
    /// assert!((10.0f32.fast_ln() - 10.0f32.ln()).abs() <= 2.0 * f32::EPSILON * 10.0f32.ln());
    /// assert_eq!(0.0f32.fast_ln(), f32::NEG_INFINITY);
    /// ```
    fn fast_ln(self) -> Self;
    /// ln(1 + x), accurate for small x
    fn ln_1p(self) -> Self;
    /// square root
    fn sqrt(self) -> Self;
    /// |x|
    fn abs(self) -> Self;
    /// x^p for a real exponent
    fn powf(self, p: Self) -> Self;
    /// sine
    fn sin(self) -> Self;
    /// cosine
    fn cos(self) -> Self;
    /// The largest |x| that [`Float::fast_sin`] and [`Float::fast_cos`] take: 2²⁰ for f32,
    /// ∞ for f64.
    const FAST_TRIG_MAX: Self;
    /// sin x in a form the compiler vectorizes (used by the kernels), for |x| ≤
    /// [`Float::FAST_TRIG_MAX`]; past that the result is meaningless and callers use
    /// [`Float::sin`] (the tensor kernels do, element by element). For f32: x = j·π/2 + r
    /// with |r| ≤ π/4, reduced and evaluated in f64 by Taylor polynomials (truncation below
    /// 1e-11), so the result is the exact one rounded to f32, within 0.5001 ulp on every f32
    /// up to 2²⁰ (libm's `sinf` per element took 4.4 ms on 1M f32 in [-10, 10]); ±0, NaN and
    /// ±∞ as `sin`. For f64 the standard library's `sin`.
    fn fast_sin(self) -> Self;
    /// cos x as [`Float::fast_sin`] computes sin x (for f32, sin of the quadrant after).
    fn fast_cos(self) -> Self;
    /// hyperbolic tangent
    fn tanh(self) -> Self;
    /// larger of two values (NaN-ignoring, like `f32::max`)
    fn max(self, other: Self) -> Self;
    /// smaller of two values (NaN-ignoring, like `f32::min`)
    fn min(self, other: Self) -> Self;
    /// neither NaN nor infinite
    fn is_finite(self) -> bool;
    /// NaN
    fn is_nan(self) -> bool;
    /// `self·a + b`, one fused instruction where the target has FMA (the native build here),
    /// else a multiply then an add. Rust never fuses `x * y + z` on its own, so kernels that
    /// want the FMA units call this.
    fn mul_add_fast(self, a: Self, b: Self) -> Self;

    /// C = alpha * op(A) * op(B) + beta * C for strided row/column layouts
    /// (the general matrix multiply used by [`crate::kernels::matmul`]), its row blocks run
    /// by `fork` ([`wengert_gemm::gemm`]).
    ///
    /// # Safety
    /// The pointers with their strides must address valid `m x k`, `k x n` and `m x n`
    /// matrices, and C must not alias A or B.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
        fork: &dyn wengert_gemm::Fork,
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

/// `fn name(self) -> Self { path(self) }` for each pair, inside [`impl_float`].
macro_rules! unary_forwards {
    ($($name:ident => $path:path),* $(,)?) => {$(
        #[inline]
        fn $name(self) -> Self {
            $path(self)
        }
    )*};
}

macro_rules! impl_float {
    ($t:ident, $gemm:path, $fast:ident) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const EPSILON: Self = $t::EPSILON;
            const INFINITY: Self = $t::INFINITY;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            const MIN_POSITIVE: Self = $t::MIN_POSITIVE;
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            unary_forwards! {
                exp => $t::exp, ln => $t::ln, fast_exp => crate::fastmath::$fast::exp, fast_ln => crate::fastmath::$fast::ln,
                fast_tanh => crate::fastmath::$fast::tanh, fast_sin => crate::fastmath::$fast::sin,
                fast_cos => crate::fastmath::$fast::cos, ln_1p => $t::ln_1p, sqrt => $t::sqrt, abs => $t::abs,
                sin => $t::sin, cos => $t::cos, tanh => $t::tanh,
            }
            const FAST_TRIG_MAX: Self = crate::fastmath::$fast::TRIG_MAX;
            #[inline(always)]
            fn mul_add_fast(self, a: Self, b: Self) -> Self {
                #[cfg(target_feature = "fma")]
                {
                    self.mul_add(a, b)
                }
                #[cfg(not(target_feature = "fma"))]
                {
                    self * a + b
                }
            }
            #[inline]
            fn powf(self, p: Self) -> Self {
                $t::powf(self, p)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                $t::max(self, other)
            }
            #[inline]
            fn min(self, other: Self) -> Self {
                $t::min(self, other)
            }
            #[inline]
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
            #[inline]
            fn is_nan(self) -> bool {
                $t::is_nan(self)
            }
            #[inline]
            unsafe fn gemm(
                fork: &dyn wengert_gemm::Fork,
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded contract of `Float::gemm`.
                unsafe { $gemm(fork, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

// the fast maths of each type: crate::fastmath::{f32s, f64s}
impl_float!(f32, wengert_gemm::gemm::<f32>, f32s);
impl_float!(f64, wengert_gemm::gemm::<f64>, f64s);
