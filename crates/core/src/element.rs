//! Element types: what a [`Tensor`](crate::Tensor) can hold.
//!
//! Every tensor holds an [`Element`] (`f32`, `f64`, `usize` for indices, `bool` for masks);
//! arithmetic, the tape and gradients need a [`Float`] (`f32` or `f64`).

use std::fmt::{Debug, Display, LowerExp};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A value a tensor can store: plain, copyable, thread-safe data.
pub trait Element: Copy + Debug + Default + PartialEq + Send + Sync + 'static {
    /// Short name used in `Debug` output and error messages (`"f32"`, `"usize"`, ...).
    const NAME: &'static str;
}

impl Element for f32 {
    const NAME: &'static str = "f32";
}
impl Element for f64 {
    const NAME: &'static str = "f64";
}
impl Element for usize {
    const NAME: &'static str = "usize";
}
impl Element for i64 {
    const NAME: &'static str = "i64";
}
impl Element for bool {
    const NAME: &'static str = "bool";
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
    /// and a degree-7 polynomial (relative error below 2e-7, about 2 ulp, with correct
    /// overflow, underflow and NaN); for f64 the standard library's `exp`.
    fn fast_exp(self) -> Self;
    /// natural logarithm
    fn ln(self) -> Self;
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
    /// (the general matrix multiply used by [`crate::kernels::matmul`]).
    ///
    /// # Safety
    /// The pointers with their strides must address valid `m x k`, `k x n` and `m x n`
    /// matrices, and C must not alias A or B.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm(
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

macro_rules! impl_float {
    ($t:ident, $gemm:path, $fast_exp:path) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const EPSILON: Self = $t::EPSILON;
            const INFINITY: Self = $t::INFINITY;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            #[inline]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                $t::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline]
            fn fast_exp(self) -> Self {
                $fast_exp(self)
            }
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
            fn ln_1p(self) -> Self {
                $t::ln_1p(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline]
            fn powf(self, p: Self) -> Self {
                $t::powf(self, p)
            }
            #[inline]
            fn sin(self) -> Self {
                $t::sin(self)
            }
            #[inline]
            fn cos(self) -> Self {
                $t::cos(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                $t::tanh(self)
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
                unsafe { $gemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

impl_float!(f32, matrixmultiply::sgemm, fast_exp_f32);
impl_float!(f64, matrixmultiply::dgemm, f64::exp);

/// a·b + c, fused into one instruction where the target has FMA (the repo's
/// `.cargo/config.toml` builds for the native CPU); a plain multiply-add elsewhere, since a
/// software `fmaf` call would be far slower.
#[inline(always)]
fn fma(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(target_feature = "fma")]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(target_feature = "fma"))]
    {
        a * b + c
    }
}

/// eˣ for f32 without a libm call, so loops over it vectorize.
///
/// x = n·ln2 + r with n = round(x/ln2) and |r| ≤ ln2/2 (ln2 split in two parts so r is exact);
/// eʳ ≈ 1 + r + r²·P(r) with the classic Cephes `expf` minimax coefficients; 2ⁿ is built in
/// two halves from exponent bits so that results down to the denormals and up to overflow
/// (→ +∞) come out right.
#[inline(always)]
fn fast_exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    /// 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    // Beyond these, eˣ is 0 (below the smallest denormal) or +∞.
    let x = x.clamp(-104.0, 89.0);
    let t = fma(x, LOG2E, ROUND);
    let n = t - ROUND;
    let ni = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = fma(n, -LN2_LO, fma(n, -LN2_HI, x));
    let p = 1.987_569_1e-4_f32;
    let p = fma(p, r, 1.398_199_9e-3);
    let p = fma(p, r, 8.333_452e-3);
    let p = fma(p, r, 4.166_579_6e-2);
    let p = fma(p, r, 1.666_666_5e-1);
    let p = fma(p, r, 0.5);
    let e = fma(p, r * r, r) + 1.0;
    let h = ni >> 1;
    let s1 = f32::from_bits(((h + 127) << 23) as u32);
    let s2 = f32::from_bits(((ni - h + 127) << 23) as u32);
    e * s1 * s2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_f32_is_accurate_over_its_whole_range() {
        let mut worst = 0.0f64;
        let mut x = -103.0f32;
        while x < 88.7 {
            let got = fast_exp_f32(x) as f64;
            let want = (x as f64).exp();
            if want > f32::MIN_POSITIVE as f64 {
                worst = worst.max(((got - want) / want).abs());
            }
            x += 0.0137;
        }
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert_eq!(fast_exp_f32(0.0), 1.0);
        assert_eq!(fast_exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(fast_exp_f32(100.0), f32::INFINITY);
        assert_eq!(fast_exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(fast_exp_f32(f32::NAN).is_nan());
        // a denormal: within one denormal step (2^-149) of the true value
        let d = fast_exp_f32(-100.0) as f64;
        assert!((d - (-100f64).exp()).abs() <= 2f64.powi(-149), "{d}");
    }
}
