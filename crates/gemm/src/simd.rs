//! The few vector operations a micro-kernel needs, one implementation per instruction set.
//!
//! Every method is `#[inline(always)]`: the micro-kernel body that calls them is inlined into
//! a `#[target_feature]` function, and the intrinsics are inlined there, where the feature
//! is enabled.

use crate::Elem;

/// A vector of `LANES` elements of type `E`.
pub(crate) trait Simd: Copy {
    type E: Elem;
    const LANES: usize;
    /// all lanes zero
    unsafe fn zero() -> Self;
    /// all lanes `x`
    unsafe fn splat(x: Self::E) -> Self;
    /// `LANES` elements from `p` (no alignment needed)
    unsafe fn load(p: *const Self::E) -> Self;
    /// `LANES` elements to `p` (no alignment needed)
    unsafe fn store(self, p: *mut Self::E);
    /// `a·b + c`, fused where the instruction set has FMA
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self;
    /// `a·b`
    unsafe fn mul(a: Self, b: Self) -> Self;
    /// Asks for the cache line holding `p` to be brought into L1 (a hint; nothing on
    /// targets without a prefetch instruction).
    #[inline(always)]
    unsafe fn prefetch(p: *const Self::E) {
        let _ = p;
    }
}

/// A portable vector: an array the compiler maps onto whatever vector registers it has.
/// `fma` is a multiply then an add (a software fused multiply-add would be far slower).
#[derive(Clone, Copy)]
pub(crate) struct Lanes<T, const L: usize>(pub [T; L]);

impl<T: Elem, const L: usize> Simd for Lanes<T, L> {
    type E = T;
    const LANES: usize = L;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Lanes([T::ZERO; L])
    }
    #[inline(always)]
    unsafe fn splat(x: T) -> Self {
        Lanes([x; L])
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        // SAFETY: the caller gives L readable elements at p.
        Lanes(unsafe { p.cast::<[T; L]>().read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        // SAFETY: the caller gives L writable elements at p.
        unsafe { p.cast::<[T; L]>().write_unaligned(self.0) }
    }
    #[inline(always)]
    unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
        let mut r = c.0;
        for ((r, a), b) in r.iter_mut().zip(a.0).zip(b.0) {
            *r = a * b + *r;
        }
        Lanes(r)
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        let mut r = a.0;
        for (r, b) in r.iter_mut().zip(b.0) {
            *r = *r * b;
        }
        Lanes(r)
    }
}

/// `impl Simd` for an x86 vector type from its intrinsics.
#[cfg(target_arch = "x86_64")]
macro_rules! x86_simd {
    ($v:ty, $e:ty, $lanes:expr, $zero:ident, $splat:ident, $load:ident, $store:ident, $fma:ident, $mul:ident) => {
        impl Simd for $v {
            type E = $e;
            const LANES: usize = $lanes;
            #[inline(always)]
            unsafe fn zero() -> Self {
                // SAFETY: only called inside functions with the vector's target feature.
                unsafe { core::arch::x86_64::$zero() }
            }
            #[inline(always)]
            unsafe fn splat(x: $e) -> Self {
                // SAFETY: as above.
                unsafe { core::arch::x86_64::$splat(x) }
            }
            #[inline(always)]
            unsafe fn load(p: *const $e) -> Self {
                // SAFETY: as above; the caller gives LANES readable elements at p.
                unsafe { core::arch::x86_64::$load(p) }
            }
            #[inline(always)]
            unsafe fn store(self, p: *mut $e) {
                // SAFETY: as above; the caller gives LANES writable elements at p.
                unsafe { core::arch::x86_64::$store(p, self) }
            }
            #[inline(always)]
            unsafe fn fma(a: Self, b: Self, c: Self) -> Self {
                // SAFETY: as above.
                unsafe { core::arch::x86_64::$fma(a, b, c) }
            }
            #[inline(always)]
            unsafe fn mul(a: Self, b: Self) -> Self {
                // SAFETY: as above.
                unsafe { core::arch::x86_64::$mul(a, b) }
            }
            #[inline(always)]
            unsafe fn prefetch(p: *const $e) {
                // SAFETY: a prefetch never faults, whatever the address.
                unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast()) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Simd;
    use core::arch::x86_64::{__m256, __m256d, __m512, __m512d};
    x86_simd!(__m256, f32, 8, _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, _mm256_mul_ps);
    x86_simd!(__m256d, f64, 4, _mm256_setzero_pd, _mm256_set1_pd, _mm256_loadu_pd, _mm256_storeu_pd, _mm256_fmadd_pd, _mm256_mul_pd);
    x86_simd!(__m512, f32, 16, _mm512_setzero_ps, _mm512_set1_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps, _mm512_mul_ps);
    x86_simd!(__m512d, f64, 8, _mm512_setzero_pd, _mm512_set1_pd, _mm512_loadu_pd, _mm512_storeu_pd, _mm512_fmadd_pd, _mm512_mul_pd);
}
