//! Special functions: the error function erf, for `Tensor::erf` and the exact GELU.
//!
//! erf(x) = 2/√π ∫₀ˣ e^(−s²) ds. Both ranges are evaluated without branches, so a loop over
//! a slice vectorizes: f64 in f64 with `f64::exp`, f32 in f32 with shorter polynomials and
//! the vectorized [`Float::fast_exp`] (see [`erf_f32`]).
//!
//! * |x| < 1: x·P(x²), P the Taylor series of erf(x)/x to its 17th term (truncation below
//!   1e-16 relative at x = 1).
//! * 1 ≤ |x|: 1 − e^(−x²)·Q(u) with |x| clamped to 6 (erf(6) is 1 in f64), Q a degree-14
//!   polynomial for the scaled complement erfcx(x) = e^(x²)·erfc(x) in u = (t − 11/24)·24/5,
//!   t = 1/(1 + x/2) (which maps [1, 6] onto [−1, 1]), fitted at 15 Chebyshev nodes to
//!   40-digit values.
//!
//! Measured against 40-digit values on 24,000 points of [0, 7] and [1e-300, 1]: within
//! 2.2e-16 relative in f64. f32 uses the same scheme with 12 Taylor terms and a degree-7
//! erfcx on [1, 4] (erf within 3.2e-12 before rounding), in f32 arithmetic: within 2 ulp of
//! the f64 erf rounded (tested over 2²⁰ spread f32 inputs; `erf_f32_is_within_two_ulp`).

use crate::element::Float;

/// 2/√π·(−1)ⁿ/(n!·(2n + 1)) for n = 0..16: erf(x)/x = Σ cₙ·x²ⁿ.
const TAYLOR: [f64; 17] = [
    std::f64::consts::FRAC_2_SQRT_PI,
    -0.376_126_389_031_837_54,
    0.112_837_916_709_551_26,
    -0.026_866_170_645_131_252,
    0.005_223_977_625_442_188,
    -0.000_854_832_702_345_085_3,
    0.000_120_553_329_817_896_64,
    -1.492_565_035_840_625e-5,
    1.646_211_436_588_924_8e-6,
    -1.636_584_469_123_492_4e-7,
    1.480_719_281_587_921_8e-8,
    -1.229_055_530_171_792_8e-9,
    9.422_759_064_650_411e-11,
    -6.711_366_855_164_110_5e-12,
    4.463_224_263_286_477_5e-13,
    -2.783_516_207_210_921_5e-14,
    1.634_261_409_536_715_2e-15,
];

/// erfcx on [1, 6] as Σ qₖ·uᵏ (see the module doc for u).
const ERFCX: [f64; 15] = [
    0.221_429_540_229_931_86,
    0.161_893_568_041_025_25,
    0.038_560_570_425_193_674,
    0.005_588_816_281_839_166_5,
    0.000_197_139_177_607_406_8,
    -8.079_220_423_221_61e-5,
    -7.340_517_607_354_499e-6,
    1.979_561_521_905_263_6e-6,
    1.634_996_058_690_915_6e-7,
    -7.005_225_271_855_807e-8,
    -5.911_363_121_878_317e-10,
    2.622_753_394_805_917e-9,
    -2.641_859_552_237_048e-10,
    -7.302_059_950_322_073e-11,
    1.876_367_878_081_624_6e-11,
];

#[inline(always)]
fn horner(coefficients: &[f64], u: f64) -> f64 {
    coefficients.iter().rev().fold(0.0, |acc, &c| acc.mul_add_fast(u, c))
}

/// erfcx on [1, 4] as Σ qₖ·uᵏ, u = (t − 1/2)·6 (t = 1/(1 + x/2) maps [1, 4] onto [−1, 1]),
/// fitted as [`ERFCX`] at 8 nodes: erf within 3.2e-12 relative, ample for f32, whose erf is 1
/// beyond 3.92.
const ERFCX_F32: [f32; 8] = to_f32(&[
    0.255_395_676_251_903_24,
    0.142_395_282_538_115_12,
    0.026_850_912_343_415_27,
    0.002_925_130_491_570_116,
    4.607_581_914_878_313e-5,
    -2.878_541_321_582_606e-5,
    -1.147_585_695_804_309_4e-6,
    4.317_145_059_218_319_7e-7,
]);

/// One of the two evaluations: the Taylor terms, the erfcx polynomial with the clamp of |x|
/// and the map t ↦ u = (t − t_mid)·scale, and `exp` for e^(−x²).
struct Erf<'a> {
    taylor: &'a [f64],
    erfcx: &'a [f64],
    clamp: f64,
    t_mid: f64,
    scale: f64,
}

/// f64: 17 Taylor terms, erfcx of degree 14 on [1, 6].
const ERF_F64: Erf<'static> = Erf { taylor: &TAYLOR, erfcx: &ERFCX, clamp: 6.0, t_mid: 11.0 / 24.0, scale: 24.0 / 5.0 };
/// The f64 scheme's f32 set: 12 Taylor terms (truncation 1.3e-9 at x = 1), erfcx of degree 7
/// on [1, 4] (see [`erf_f32`]).
const TAYLOR_F32: [f32; 12] = to_f32(&TAYLOR);

const fn to_f32<const N: usize>(c: &[f64]) -> [f32; N] {
    let mut out = [0.0f32; N];
    let mut i = 0;
    while i < N {
        out[i] = c[i] as f32;
        i += 1;
    }
    out
}

#[inline(always)]
fn horner_f32(coefficients: &[f32], u: f32) -> f32 {
    coefficients.iter().rev().fold(0.0, |acc, &c| acc.mul_add_fast(u, c))
}

/// erf in f32 arithmetic throughout, eight lanes to a 256-bit register (the f64 scheme on f32
/// inputs ran four, and its division in f64): the same two ranges and polynomials rounded to
/// f32. Below 1, x·c₀ is added last in one fused rounding to x·x²·Q(x²) (at most 0.35 of
/// the result), so the alternating series' rounding stays below an ulp; from 1,
/// 1 − e^(−c²)·erfcx is at least 0.84 and the product at most 0.16 of it. Within 2 ulp of the
/// f64 erf rounded (`erf_f32_is_within_two_ulp`). The exact GELU had been 10.8% of the
/// MiniLM encoder's forward (32 x 128 tokens); the forward went 671-699 -> 630-640 ms (best
/// of 8, two interleaved runs each).
#[inline(always)]
fn erf_f32(x: f32) -> f32 {
    let ax = x.abs();
    let x2 = x * x;
    // (the sign copied back for x = −0, where the product's +0 would win the sum)
    let small = x.mul_add_fast(TAYLOR_F32[0], x * x2 * horner_f32(&TAYLOR_F32[1..], x2)).copysign(x);
    let c = if ax > 4.0 { 4.0 } else { ax }; // NaN stays NaN
    let t = 1.0 / (1.0 + 0.5 * c);
    let u = (t - 0.5) * 6.0;
    let large = 1.0 - (-(c * c)).fast_exp() * horner_f32(&ERFCX_F32, u);
    let large = if x < 0.0 { -large } else { large };
    if ax < 1.0 {
        small
    } else {
        large
    }
}

impl Erf<'_> {
    /// erf(x), |x| clamped so e^(−x²) has its argument in [−clamp², 0]. NaN gives NaN, ±∞
    /// gives ±1, −0 gives −0.
    #[inline(always)]
    fn eval(&self, x: f64, exp: impl Fn(f64) -> f64) -> f64 {
        let ax = x.abs();
        let small = x * horner(self.taylor, x * x);
        let c = if ax > self.clamp { self.clamp } else { ax }; // NaN stays NaN
        let t = 1.0 / (1.0 + 0.5 * c);
        let u = (t - self.t_mid) * self.scale;
        let large = 1.0 - exp(-(c * c)) * horner(self.erfcx, u);
        let large = if x < 0.0 { -large } else { large };
        if ax < 1.0 {
            small
        } else {
            large
        }
    }
}

/// The error function erf(x) = 2/√π ∫₀ˣ e^(−s²) ds, within 2.2e-16 relative in f64 and 2 ulp
/// in f32 (see the module doc).
///
/// ```
/// use wengert_core::kernels::special::erf;
/// assert_eq!(erf(0.0f64), 0.0);
/// assert!((erf(1.0f64) - 0.842_700_792_949_714_9).abs() < 2e-16);
/// assert_eq!(erf(-0.5f64), -erf(0.5f64)); // odd
/// assert_eq!(erf(10.0f32), 1.0);
/// assert!(erf(f64::NAN).is_nan());
/// ```
#[inline(always)]
pub fn erf<T: Float>(x: T) -> T {
    if std::mem::size_of::<T>() == 4 {
        T::from_f64(f64::from(erf_f32(x.to_f64() as f32)))
    } else {
        T::from_f64(ERF_F64.eval(x.to_f64(), f64::exp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf at points whose values were taken to 25 digits with mpmath (rounded to f64 here).
    #[test]
    fn known_values() {
        let cases = [
            (0.0, 0.0),
            (1e-300, 1.128_379_167_095_512_6e-300),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
        ];
        for (x, want) in cases {
            let got = erf(x);
            assert!((got - want).abs() <= 2.5e-16 * want, "erf({x}) = {got}, want {want}");
            assert_eq!(erf(-x), -got);
        }
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erf(f64::NEG_INFINITY), -1.0);
        assert_eq!(erf(7.0), 1.0);
        assert!(erf(f64::NAN).is_nan() && erf(f32::NAN).is_nan());
        assert!(erf(-0.0f64).is_sign_negative());
        assert_eq!(erf(f32::INFINITY), 1.0);
    }

    /// erf is odd, increasing, and its derivative is 2/√π·e^(−x²): checked by central
    /// differences over [−6, 6].
    #[test]
    fn derivative_matches_the_integrand() {
        let h = 1e-5;
        for i in -600..=600 {
            let x = i as f64 / 100.0;
            let d = (erf(x + h) - erf(x - h)) / (2.0 * h);
            let want = std::f64::consts::FRAC_2_SQRT_PI * (-x * x).exp();
            assert!((d - want).abs() < 1e-9, "erf'({x}) = {d}, want {want}");
        }
    }

    /// The f32 erf (its own, shorter polynomials, in f32 arithmetic) is within 2 ulp of the
    /// f64 one rounded, over 2²⁰ inputs spread across [0, 4.5] (erf(x) rounds to 1 in f32
    /// beyond 3.92) and tiny values.
    #[test]
    fn erf_f32_is_within_two_ulp() {
        let mut worst = 0u32;
        let n = 1 << 20;
        for i in 0..n {
            let x = 4.5 * i as f32 / n as f32;
            for x in [x, x * 1e-20] {
                let got = erf(x);
                let want = erf(f64::from(x)) as f32;
                worst = worst.max(got.to_bits().abs_diff(want.to_bits()));
                assert_eq!(erf(-x).to_bits(), (-got).to_bits());
            }
        }
        println!("erf f32: worst {worst} ulp");
        assert!(worst <= 2, "{worst} ulp");
    }

    /// Against an independent implementation (the `libm` crate's port of musl's erf, within
    /// 1 ulp): every 1/4096 over [−7, 7] and a log-spaced sweep to 1e-300, within 2 ulp.
    #[test]
    fn agrees_with_libm() {
        let ulp = |v: f64| f64::EPSILON * v.abs().max(f64::MIN_POSITIVE);
        let mut worst = 0.0f64;
        let grid = (-7 * 4096..=7 * 4096).map(|i| i as f64 / 4096.0);
        let tiny = (0..=600).map(|i| 10f64.powf(-(i as f64) / 2.0));
        for x in grid.chain(tiny) {
            let (got, want) = (erf(x), libm::erf(x));
            worst = worst.max((got - want).abs() / ulp(want));
        }
        assert!(worst <= 2.0, "{worst} ulp");
    }
}
