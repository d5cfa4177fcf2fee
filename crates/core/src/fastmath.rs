//! Fast maths: the approximations behind [`Float::fast_exp`], [`Float::fast_ln`],
//! [`Float::fast_tanh`], [`Float::fast_sin`] and [`Float::fast_cos`] (their accuracy and speed
//! are stated there and below). In f32 they are written without libm calls, so loops over
//! them vectorize; in f64 they are the standard library's functions. [`Float`] takes each
//! type's set by module: [`f32s`] and [`f64s`].
//!
//! [`Float`]: crate::Float
//! [`Float::fast_exp`]: crate::Float::fast_exp
//! [`Float::fast_ln`]: crate::Float::fast_ln
//! [`Float::fast_tanh`]: crate::Float::fast_tanh
//! [`Float::fast_sin`]: crate::Float::fast_sin
//! [`Float::fast_cos`]: crate::Float::fast_cos

use crate::element::Float;

/// f32's fast maths, by the names `impl_float!` reads.
pub(crate) mod f32s {
    pub(crate) use super::{fast_cos_f32 as cos, fast_exp_f32 as exp, fast_ln_f32 as ln, fast_sin_f32 as sin, fast_tanh_f32 as tanh};
    /// |x| up to which `sin` and `cos` reduce their argument exactly (2²⁰).
    pub(crate) const TRIG_MAX: f32 = 1_048_576.0;
}

/// f64's: the standard library's functions (no faster form within f64 precision here).
pub(crate) mod f64s {
    macro_rules! std_fns {
        ($($f:ident),*) => {$(
            #[inline]
            pub(crate) fn $f(x: f64) -> f64 {
                x.$f()
            }
        )*};
    }
    std_fns!(exp, ln, tanh, sin, cos);
    /// No reduction limit: `sin` and `cos` are exact everywhere.
    pub(crate) const TRIG_MAX: f64 = f64::INFINITY;
}

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

/// ln 2 in two parts for f32 range reductions: `LN2_HI` has few enough significant bits that
/// n·`LN2_HI` is exact for the integers n they meet, and `LN2_HI + LN2_LO` is ln 2 to well
/// beyond f32 precision.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// eˣ for f32 without a libm call, so loops over it vectorize: 15 vector operations per 16
/// lanes (one run: 1M values in 212 µs on one thread, against 268 µs for the Cephes form with
/// a two-step 2ⁿ that this replaced).
///
/// x = n·ln2 + r with n = round(x·log₂e) and |r| ≤ ln2/2 (ln2 split in two parts so r is
/// exact). Adding 1.5·2²³ + 126 rounds x·log₂e to n and leaves n + 126 in the low mantissa
/// bits, which one shift turns into the float 2ⁿ⁻¹. Then eˣ = 2eʳ·2ⁿ⁻¹ with
/// 2eʳ ≈ 2 + 2r + r²·Q(r), Q of degree 4 fitted for least relative error on |r| ≤ ln2/2
/// (3e-9 before rounding). Relative error below 1.2e-7 (2 ulp) for results from 2⁻¹²⁵ up to
/// f32::MAX; past ln(f32::MAX) the result is +∞, NaN stays NaN, and results below 2⁻¹²⁵
/// (x < -86.99: the subnormals and a sliver above) flush to 0, as with flush-to-zero
/// arithmetic.
#[inline(always)]
pub(crate) fn fast_exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    /// 1.5·2²³ + 126: adding it rounds to an integer n held in the low mantissa bits as n + 126.
    const SHIFT: f32 = 12_583_038.0;
    // -87.6 keeps n + 126 >= 0 (n = -126 gives the float 0); 89 reaches n = 128, whose
    // result overflows to +∞ whenever eˣ does.
    let x = x.clamp(-87.6, 89.0);
    let t = fma(x, LOG2E, SHIFT);
    let n = t - SHIFT;
    let r = fma(n, -LN2_LO, fma(n, -LN2_HI, x));
    let q = 2.762_92e-3_f32;
    let q = fma(q, r, 1.673_743_1e-2);
    let q = fma(q, r, 8.333_678e-2);
    let q = fma(q, r, 3.333_304_1e-1);
    let q = fma(q, r, 9.999_999e-1);
    let two_er = fma(q, r * r, fma(r, 2.0, 2.0));
    two_er * f32::from_bits(t.to_bits() << 23)
}

/// ln x for f32 without a libm call, so loops over it vectorize (libm's `logf` made `ln` of
/// 1M f32 18x slower than `exp`). A subnormal x is first scaled by 2²³. Subtracting the bits
/// of √½ from x's bits and shifting out the mantissa gives k with m = x·2⁻ᵏ in [√½, √2),
/// whose bits are x's with k taken off the exponent. f = m − 1 is exact there, and with
/// s = f/(2 + f) (|s| ≤ 0.172), ln m = 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + s⁶/7 + s⁸/9), the
/// next term below 2e-9 relative. ln x = k·ln2 + ln m, ln2 split in two parts so k·ln2 is
/// exact to f32 precision. The special values are selected at the end, without a branch.
#[inline(always)]
pub(crate) fn fast_ln_f32(x: f32) -> f32 {
    const SQRT_HALF_BITS: i32 = 0x3f35_04f3;
    let subnormal = x < f32::MIN_POSITIVE;
    let scaled = if subnormal { x * 8_388_608.0 } else { x }; // 2^23
    let bits = scaled.to_bits() as i32;
    let k = bits.wrapping_sub(SQRT_HALF_BITS) >> 23;
    let m = f32::from_bits(bits.wrapping_sub(k << 23) as u32);
    let k = (k - if subnormal { 23 } else { 0 }) as f32;
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let q = fma(z, 1.0 / 9.0, 1.0 / 7.0);
    let q = fma(q, z, 1.0 / 5.0);
    let q = fma(q, z, 1.0 / 3.0);
    // 2s + 2s·z·q, the small part added last
    let two_s = s + s;
    let ln_m = fma(two_s * z, q, two_s);
    let r = fma(k, LN2_HI, fma(k, LN2_LO, ln_m));
    let r = if x == f32::INFINITY { x } else { r };
    let r = if x == 0.0 { f32::NEG_INFINITY } else { r };
    if x < 0.0 || x.is_nan() { f32::NAN } else { r }
}

/// tanh x for f32 without a libm call, so loops over it vectorize (libm's `tanhf` and the
/// `expm1f` it calls were 28% of an LSTM's training time). Below |x| = 0.625,
/// x + x³·P(x²) with P of degree 4 fitted for least relative error (4e-9 before rounding);
/// above, 1 - 2/(e^(2|x|) + 1), with the sign of x. Both are computed and one is selected,
/// so there is no branch. Relative error below 2e-7; ±∞ give ±1, NaN stays NaN.
#[inline(always)]
pub(crate) fn fast_tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let u = x * x;
    let p = fma(-5.704_987e-3, u, 2.063_908_7e-2);
    let p = fma(p, u, -5.373_971_5e-2);
    let p = fma(p, u, 1.333_144_2e-1);
    let p = fma(p, u, -3.333_328e-1);
    let small = fma(x * u, p, x);
    let big = 1.0 - 2.0 / (fast_exp_f32(2.0 * a) + 1.0);
    // the sign of x on either branch (and -0 for -0, which the polynomial would make +0)
    if a < 0.625 { small } else { big }.copysign(x)
}

/// π/2 in two parts for the f64 range reduction of f32 arguments: `PIO2_HI` is π/2 cut to
/// its leading 33 bits, so j·`PIO2_HI` is exact for every j below 2²⁰, and `PIO2_LO` is the
/// rest (the bits of `FRAC_PI_2` cut off, plus `FRAC_PI_2`'s own rounding error
/// π/2 − `FRAC_PI_2` = 6.123233995736766e-17), which makes the sum π/2 to about 86 bits.
const PIO2_HI: f64 = f64::from_bits(std::f64::consts::FRAC_PI_2.to_bits() & !0xF_FFFF);
const PIO2_LO: f64 = (std::f64::consts::FRAC_PI_2 - PIO2_HI) + 6.123_233_995_736_766e-17;

/// 1/n! for n = 0..=12: the Taylor coefficients of sin and cos.
const INV_FACTORIALS: [f64; 13] = {
    let mut f = [1.0; 13];
    let mut n = 1;
    while n < 13 {
        f[n] = f[n - 1] / n as f64;
        n += 1;
    }
    f
};

/// sin(x + quarter·π/2) for |x| ≤ 2²⁰ (see [`Float::fast_sin`]). x = j·π/2 + r in f64:
/// adding 1.5·2⁵² rounds x·2/π to the integer j and leaves it in the low mantissa bits, so
/// the quadrant j + quarter (mod 4) is read from them; r = (x − j·`PIO2_HI`) − j·`PIO2_LO`
/// is exact up to the last step's rounding. Then sin r and cos r by their Taylor series to
/// r¹¹ and r¹² (the next terms are below 2e-11 at |r| = π/4), in Horner form with fused
/// multiply-adds: the quadrant picks one and its sign. In f64 this is 3.5x the cost of
/// [`fast_exp_f32`] per element; the same with the polynomials in f32 was 1.5x faster but
/// 1.5 ulp off.
#[inline(always)]
fn sin_quadrant_f32(x: f32, quarter: u64) -> f32 {
    const ROUND: f64 = 6_755_399_441_055_744.0; // 1.5·2⁵²
    let x = x as f64;
    let t = x.mul_add_fast(std::f64::consts::FRAC_2_PI, ROUND);
    let j = t - ROUND;
    let quadrant = t.to_bits().wrapping_add(quarter);
    let r = j.mul_add_fast(-PIO2_LO, j.mul_add_fast(-PIO2_HI, x));
    let r2 = r * r;
    let f = INV_FACTORIALS;
    // r·(1 − r²/3! + …) rather than r + r³·(…), which would turn sin(-0) into +0
    let s = r2.mul_add_fast(-f[11], f[9]).mul_add_fast(r2, -f[7]).mul_add_fast(r2, f[5]).mul_add_fast(r2, -f[3]).mul_add_fast(r2, 1.0) * r;
    let c = r2.mul_add_fast(f[12], -f[10]).mul_add_fast(r2, f[8]).mul_add_fast(r2, -f[6]).mul_add_fast(r2, f[4]).mul_add_fast(r2, -f[2]).mul_add_fast(r2, 1.0);
    let v = if quadrant & 1 == 0 { s } else { c };
    // quadrants 2 and 3 flip the sign
    f64::from_bits(v.to_bits() ^ ((quadrant & 2) << 62)) as f32
}

#[inline(always)]
pub(crate) fn fast_sin_f32(x: f32) -> f32 {
    sin_quadrant_f32(x, 0)
}

#[inline(always)]
pub(crate) fn fast_cos_f32(x: f32) -> f32 {
    sin_quadrant_f32(x, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_tanh_f32_is_accurate_everywhere() {
        let mut worst = 0.0f64;
        let mut x = -12.0f32;
        while x < 12.0 {
            for v in [x, x * 1e-3, x * 1e-6] {
                let (got, want) = (fast_tanh_f32(v) as f64, (v as f64).tanh());
                if want != 0.0 {
                    worst = worst.max(((got - want) / want).abs());
                }
            }
            x += 0.000_731;
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        assert_eq!(fast_tanh_f32(0.0), 0.0);
        assert!(fast_tanh_f32(-0.0).is_sign_negative());
        assert_eq!(fast_tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(fast_tanh_f32(f32::NEG_INFINITY), -1.0);
        assert_eq!(fast_tanh_f32(100.0), 1.0);
        assert!(fast_tanh_f32(f32::NAN).is_nan());
    }

    /// Against f64's `sin` and `cos` on every 97th f32 bit pattern from 0 up to 2²⁰ (about
    /// 11 million values, each with both signs): within half an ulp but for the rare case
    /// within 1e-4 ulp of halfway (over all 2.1 billion f32 up to 2²⁰ the worst is 0.5001 ulp,
    /// and about 1.6 in a million are not the correctly rounded result).
    #[test]
    fn fast_sin_and_cos_f32_are_within_half_an_ulp() {
        let ulps = |got: f32, want: f64| {
            let ulp = (want as f32).abs().max(f32::MIN_POSITIVE);
            (got as f64 - want).abs() / (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64
        };
        let mut worst = 0.0f64;
        let mut bits = 0u32;
        while bits <= f32::FAST_TRIG_MAX.to_bits() {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                worst = worst.max(ulps(fast_sin_f32(x), (x as f64).sin())).max(ulps(fast_cos_f32(x), (x as f64).cos()));
            }
            bits += 97;
        }
        assert!(worst <= 0.5001, "worst error {worst} ulp");
        assert_eq!(PIO2_HI + PIO2_LO, std::f64::consts::FRAC_PI_2);
        // 33 significant bits (π/2 lies in [1, 2)), so j·PIO2_HI fits 53 for j below 2^20
        assert_eq!((PIO2_HI * 2f64.powi(32)).fract(), 0.0);
        assert_eq!(fast_sin_f32(std::f32::consts::FRAC_PI_2), 1.0);
        assert_eq!(fast_cos_f32(std::f32::consts::PI), -1.0);
        assert_eq!((fast_sin_f32(0.0), fast_cos_f32(0.0)), (0.0, 1.0));
        assert!(fast_sin_f32(-0.0).is_sign_negative());
        for x in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(fast_sin_f32(x).is_nan() && fast_cos_f32(x).is_nan());
        }
    }

    /// Against f64's `ln` on every 97th f32 bit pattern from the smallest subnormal to
    /// f32::MAX (about 22 million values), in ulps of the result.
    #[test]
    fn fast_ln_f32_is_accurate_over_its_whole_range() {
        let mut worst = 0.0f64;
        let mut bits = 1u32;
        while bits < f32::MAX.to_bits() {
            let x = f32::from_bits(bits);
            let (got, want) = (fast_ln_f32(x) as f64, (x as f64).ln());
            let ulp = (want as f32).abs().max(f32::MIN_POSITIVE);
            let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
            worst = worst.max((got - want).abs() / ulp);
            bits += 97;
        }
        assert!(worst < 2.0, "worst error {worst} ulp");
        assert_eq!(fast_ln_f32(1.0), 0.0);
        assert_eq!(fast_ln_f32(0.0), f32::NEG_INFINITY);
        assert_eq!(fast_ln_f32(-0.0), f32::NEG_INFINITY);
        assert_eq!(fast_ln_f32(f32::INFINITY), f32::INFINITY);
        assert!(fast_ln_f32(-1.0).is_nan() && fast_ln_f32(f32::NEG_INFINITY).is_nan() && fast_ln_f32(f32::NAN).is_nan());
    }

    #[test]
    fn fast_exp_f32_is_accurate_over_its_whole_range() {
        let mut worst = 0.0f64;
        let mut x = -86.9f32;
        while x < 88.72 {
            let got = fast_exp_f32(x) as f64;
            let want = (x as f64).exp();
            worst = worst.max(((got - want) / want).abs());
            x += 0.00137;
        }
        assert!(worst < 1.5e-7, "worst relative error {worst}");
        assert_eq!(fast_exp_f32(0.0), 1.0);
        assert!((fast_exp_f32(88.72) as f64 / (88.72f32 as f64).exp() - 1.0).abs() < 1.5e-7);
        assert_eq!(fast_exp_f32(88.73), f32::INFINITY);
        assert_eq!(fast_exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(fast_exp_f32(100.0), f32::INFINITY);
        assert_eq!(fast_exp_f32(f32::NEG_INFINITY), 0.0);
        assert!(fast_exp_f32(f32::NAN).is_nan());
        // below 2^-125 the result flushes to zero; never negative, never garbage
        for x in [-87.0f32, -87.6, -87.7, -100.0, -1e30] {
            assert_eq!(fast_exp_f32(x), 0.0, "exp({x})");
        }
    }
}
