//! The micro-kernels: an `MR x NR` block of C from a packed `MR x kc` strip of A and a packed
//! `kc x NR` strip of B, with the `MR·NR/LANES` accumulators held in vector registers.

use crate::simd::Simd;
use crate::Elem;
use core::mem::MaybeUninit;

/// A micro-kernel and the block sizes the driver cuts the product into for it.
///
/// The packed strips of one `kc` step are `MR·KC` (A) and `KC·NR` (B) elements: a B strip
/// stays in L1 while the A strips of an `MC x KC` block stream from L2, and the `KC x NC`
/// panel of B sits in L3.
pub(crate) trait Micro {
    type E: Elem;
    /// rows of the C block (A strip height)
    const MR: usize;
    /// columns of the C block (B strip width)
    const NR: usize;
    /// depth of one packed panel
    const KC: usize;
    /// rows of A packed at a time (a multiple of `MR`)
    const MC: usize;
    /// columns of B packed at a time (a multiple of `NR`; the buffer is rounded up to one anyway)
    const NC: usize;
    /// `C[..mr, ..nr] = alpha · A·B + beta · C` for the packed strips `a` (`kc x MR`, column
    /// by column) and `b` (`kc x NR`, row by row); `beta == 0` never reads C.
    ///
    /// # Safety
    /// `a` and `b` hold `kc·MR` and `kc·NR` elements, C addresses an `mr x nr` block with
    /// strides `rsc`, `csc`, `mr <= MR`, `nr <= NR`, and the CPU has the kernel's features.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        kc: usize,
        a: *const Self::E,
        b: *const Self::E,
        c: *mut Self::E,
        rsc: isize,
        csc: isize,
        mr: usize,
        nr: usize,
        alpha: Self::E,
        beta: Self::E,
    );
}

/// The largest `MR·NR` of any kernel (AVX-512 f32, 12 x 32), for the edge-tile buffer.
const MAX_TILE: usize = 12 * 32;

/// How many steps of depth ahead the micro-kernel prefetches its A strip.
const PREFETCH_STEPS: usize = 8;

/// One step of depth: a row of the B strip times a column of the A strip, into `acc`.
#[inline(always)]
unsafe fn step<S: Simd, const MR: usize, const NV: usize>(acc: &mut [[S; NV]; MR], a: *const S::E, b: *const S::E) {
    let mut bv = [unsafe { S::zero() }; NV];
    for (j, v) in bv.iter_mut().enumerate() {
        // SAFETY: the strip row holds NV·LANES elements.
        *v = unsafe { S::load(b.add(j * S::LANES)) };
    }
    for (i, row) in acc.iter_mut().enumerate() {
        // SAFETY: the strip column holds MR elements.
        let av = unsafe { S::splat(*a.add(i)) };
        for (r, &bj) in row.iter_mut().zip(&bv) {
            // SAFETY: the enclosing kernel runs with the vector type's features.
            *r = unsafe { S::fma(av, bj, *r) };
        }
    }
}

/// The body of every micro-kernel, inlined into a `#[target_feature]` function per
/// instruction set (see [`Micro::tile`] for the contract).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn tile<S: Simd, const MR: usize, const NV: usize>(
    kc: usize,
    a: *const S::E,
    b: *const S::E,
    c: *mut S::E,
    rsc: isize,
    csc: isize,
    mr: usize,
    nr: usize,
    alpha: S::E,
    beta: S::E,
) {
    let nr_full = NV * S::LANES;
    // SAFETY (whole body): the strips hold kc·MR and kc·NR elements, C is an mr x nr block.
    unsafe {
        // C's block is read (or written) only after the loop: ask for its lines now, so the
        // misses overlap the arithmetic (rows of a wide C are far apart, each its own line).
        for i in 0..mr {
            let row = c.offset(i as isize * rsc);
            S::prefetch(row);
            S::prefetch(row.offset((nr as isize - 1) * csc));
        }
        let mut acc = [[S::zero(); NV]; MR];
        let (mut a, mut b) = (a, b);
        // The A strip streams from L2 (the B strip stays in L1): each group of four steps asks
        // for the lines of A it will read PREFETCH_STEPS steps on (+2-4% at n = 1024).
        let group_lines = (4 * MR * core::mem::size_of::<S::E>()).div_ceil(64);
        let line = 64 / core::mem::size_of::<S::E>();
        for _ in 0..kc / 4 {
            for l in 0..group_lines {
                S::prefetch(a.add(PREFETCH_STEPS * MR + l * line));
            }
            step(&mut acc, a, b);
            step(&mut acc, a.add(MR), b.add(nr_full));
            step(&mut acc, a.add(2 * MR), b.add(2 * nr_full));
            step(&mut acc, a.add(3 * MR), b.add(3 * nr_full));
            a = a.add(4 * MR);
            b = b.add(4 * nr_full);
        }
        for _ in 0..kc % 4 {
            step(&mut acc, a, b);
            a = a.add(MR);
            b = b.add(nr_full);
        }
        let va = S::splat(alpha);
        if mr == MR && nr == nr_full && csc == 1 {
            for (i, row) in acc.iter().enumerate() {
                let cr = c.offset(i as isize * rsc);
                for (j, &x) in row.iter().enumerate() {
                    let p = cr.add(j * S::LANES);
                    let v = if beta == S::E::ZERO {
                        S::mul(va, x)
                    } else if beta == S::E::ONE {
                        S::fma(va, x, S::load(p))
                    } else {
                        S::fma(va, x, S::mul(S::splat(beta), S::load(p)))
                    };
                    v.store(p);
                }
            }
        } else {
            // An edge block (or a strided C): the whole tile to a buffer, then its mr x nr part.
            let mut t: [MaybeUninit<S::E>; MAX_TILE] = MaybeUninit::uninit().assume_init();
            let t = t.as_mut_ptr().cast::<S::E>();
            for (i, row) in acc.iter().enumerate() {
                for (j, &x) in row.iter().enumerate() {
                    S::mul(va, x).store(t.add(i * nr_full + j * S::LANES));
                }
            }
            for i in 0..mr {
                let cr = c.offset(i as isize * rsc);
                for j in 0..nr {
                    let p = cr.offset(j as isize * csc);
                    let x = *t.add(i * nr_full + j);
                    *p = if beta == S::E::ZERO { x } else { x + beta * *p };
                }
            }
        }
    }
}

/// A [`Micro`] type from a vector type, its register block and cache blocks, and the target
/// features its body is compiled with.
macro_rules! micro {
    ($(#[$attr:meta])* $name:ident, $inner:ident, $simd:ty, $e:ty, $mr:expr, $nv:expr, $kc:expr, $mc:expr, $nc:expr) => {
        pub(crate) struct $name;
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        unsafe fn $inner(kc: usize, a: *const $e, b: *const $e, c: *mut $e, rsc: isize, csc: isize, mr: usize, nr: usize, alpha: $e, beta: $e) {
            // SAFETY: forwarded contract of Micro::tile.
            unsafe { tile::<$simd, $mr, $nv>(kc, a, b, c, rsc, csc, mr, nr, alpha, beta) }
        }
        impl Micro for $name {
            type E = $e;
            const MR: usize = $mr;
            const NR: usize = $nv * <$simd as Simd>::LANES;
            const KC: usize = $kc;
            const MC: usize = $mc;
            const NC: usize = $nc;
            #[inline(always)]
            unsafe fn tile(kc: usize, a: *const $e, b: *const $e, c: *mut $e, rsc: isize, csc: isize, mr: usize, nr: usize, alpha: $e, beta: $e) {
                // SAFETY: forwarded contract.
                unsafe { $inner(kc, a, b, c, rsc, csc, mr, nr, alpha, beta) }
            }
        }
    };
}

use crate::simd::Lanes;

// Portable kernels: 8 x 8 blocks of plain arrays.
micro!(PortableF32, portable_f32, Lanes<f32, 8>, f32, 8, 1, 256, 128, 4096);
micro!(PortableF64, portable_f64, Lanes<f64, 4>, f64, 8, 2, 256, 64, 4096);
// The AVX-512 block shapes on portable 16- and 8-lane arrays: the tests run the driver's
// AVX-512 cuts (12 x 32 f32, 12 x 16 f64) on machines without AVX-512.
micro!(Wide512F32, wide512_f32, Lanes<f32, 16>, f32, 12, 2, 1024, 48, 4096);
micro!(Wide512F64, wide512_f64, Lanes<f64, 8>, f64, 12, 2, 512, 48, 4096);

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::*;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{tile, Micro};
    use crate::simd::Simd;
    use core::arch::x86_64::{__m256, __m256d, __m512, __m512d};
    // AVX2 + FMA: 6 x 16 (f32) and 6 x 8 (f64) blocks, 12 accumulators of the 16 registers.
    micro!(#[target_feature(enable = "avx2,fma")] Avx2F32, avx2_f32, __m256, f32, 6, 2, 384, 96, 4080);
    micro!(#[target_feature(enable = "avx2,fma")] Avx2F64, avx2_f64, __m256d, f64, 6, 2, 256, 72, 4080);
    // AVX-512: 12 x 32 (f32) and 12 x 16 (f64) blocks, 24 accumulators of the 32 registers.
    // A deep KC with a short MC: on Zen 4 the B strip (KC x NR, 128 KB) streams from L2 at
    // full speed, and each tile's C update and each packed row of A are spread over more
    // steps. One thread, 1024 x 1024 f32: KC x MC 192x144 84%, 384x96 89%, 1024x48 92-93%
    // of the one-thread peak (with the vector A packing; 79/84/89% before it). f64 takes half
    // the depth (a 64 KB B strip, and a packed B panel per thread of 4 MB, not 8, at n = 1024):
    // 1024 x 1024 f64 on both cores, KC x MC 1024x48 80-88.5% of the f64 peak over four
    // runs, 512x48 88.6-89.6% (256x144 83.5%, 512x96 89.5%); one thread 91-92% either way.
    micro!(#[target_feature(enable = "avx512f")] Avx512F32, avx512_f32, __m512, f32, 12, 2, 1024, 48, 4096);
    micro!(#[target_feature(enable = "avx512f")] Avx512F64, avx512_f64, __m512d, f64, 12, 2, 512, 48, 4096);
}
