//! Packing: copying a block of A (or B) into the strip order the micro-kernel reads, so the
//! kernel's loads are contiguous whatever the operand's strides, and the edge strips are
//! padded with zeros to a whole block.

use crate::Elem;

/// The `mc x kc` block of A at `a` (strides `rsa`, `csa`) into `dst` as `ceil(mc / mr)`
/// strips, each `kc` columns of `mr` elements.
///
/// # Safety
/// A must address a valid `mc x kc` block, `dst` must hold `ceil(mc / mr)·mr·kc` elements.
pub(crate) unsafe fn pack_a<E: Elem>(mc: usize, kc: usize, a: *const E, rsa: isize, csa: isize, mr: usize, dst: *mut E) {
    if csa == 1 {
        // SAFETY (all arms): forwarded contract.
        match mr {
            // (32 and 16: B's strips, packed through here when its columns are contiguous)
            32 => return unsafe { pack_a_rows::<E, 32>(mc, kc, a, rsa, dst) },
            16 => return unsafe { pack_a_rows::<E, 16>(mc, kc, a, rsa, dst) },
            12 => return unsafe { pack_a_rows::<E, 12>(mc, kc, a, rsa, dst) },
            8 => return unsafe { pack_a_rows::<E, 8>(mc, kc, a, rsa, dst) },
            6 => return unsafe { pack_a_rows::<E, 6>(mc, kc, a, rsa, dst) },
            _ => {}
        }
    }
    if rsa == 1 {
        // SAFETY: forwarded contract; A's columns are the contiguous runs.
        return unsafe { pack_contiguous(mc, kc, a, csa, mr, dst) };
    }
    for s in 0..mc.div_ceil(mr) {
        let rows = mr.min(mc - s * mr);
        // SAFETY: strip s starts s·mr rows into A and s·mr·kc elements into dst.
        unsafe {
            let src = a.offset((s * mr) as isize * rsa);
            let out = dst.add(s * mr * kc);
            for p in 0..kc {
                let col = src.offset(p as isize * csa);
                let o = out.add(p * mr);
                for i in 0..rows {
                    *o.add(i) = *col.offset(i as isize * rsa);
                }
                for i in rows..mr {
                    *o.add(i) = E::ZERO;
                }
            }
        }
    }
}

/// [`pack_a`] for an A with contiguous rows (`csa == 1`, the row-major case), `MR` rows per
/// strip: each strip is the transpose of an `MR x kc` block, made four columns at a time in
/// vector registers (4 x 4 blocks of f32, 2 x 2 of f64) where the target has SSE2. Measured
/// on the 1024 x 1024 f32 product (Zen 4, one thread), packing A took 7.4% of the product
/// read row by row and written one element at a time, 3.6% gathered column by column with
/// `MR` known, and 1.5% with the vector transposes.
///
/// # Safety
/// As [`pack_a`] with `csa == 1`.
unsafe fn pack_a_rows<E: Elem, const MR: usize>(mc: usize, kc: usize, a: *const E, rsa: isize, dst: *mut E) {
    for s in 0..mc.div_ceil(MR) {
        let rows = MR.min(mc - s * MR);
        // SAFETY: strip s starts s·MR rows into A and s·MR·kc elements into dst; rows past
        // the end of A are read from a row of A (the last) and overwritten with zeros.
        unsafe {
            let src = a.offset((s * MR) as isize * rsa);
            let out = dst.add(s * MR * kc);
            let r: [*const E; MR] = core::array::from_fn(|i| src.offset(i.min(rows - 1) as isize * rsa));
            let done = transpose_strip::<E, MR>(kc, &r, out);
            for p in done..kc {
                let o = out.add(p * MR);
                for (i, ri) in r.iter().enumerate() {
                    *o.add(i) = *ri.add(p);
                }
            }
            if rows < MR {
                for p in 0..kc {
                    for i in rows..MR {
                        *out.add(p * MR + i) = E::ZERO;
                    }
                }
            }
        }
    }
}

/// Packs `count` strip-wise contiguous elements per step into strips of `w`: step `p`'s run
/// of `count` elements starts at `src + p·stride`, and strip `s` gets elements `s·w..` of
/// every run, `w` to a row (the last strip padded with zeros). This is a row-major B (runs
/// are B's rows, strips of NR columns) and a column-major A (runs are A's columns, strips of
/// MR rows, the Aᵀ·B case of a weight gradient `Gᵀ·X`). Each run is read once, in order, and
/// dealt out to the strips; the common widths copy `[E; W]` blocks. For the A case, against
/// packing strip by strip (each strip re-reading the block's `kc` columns from L2): one thread,
/// Zen 3, Aᵀ·B of 384x4096x384 / 1536x4096x384 / 1024³ (a MiniLM encoder's weight gradients,
/// and a square one) 84.0 / 85.2 / 92.6 -> 87.5 / 92.6 / 93.6 GFLOP/s, best of 50 interleaved.
///
/// # Safety
/// Each of the `kc` runs holds `count` readable elements; `dst` holds `ceil(count / w)·w·kc`.
unsafe fn pack_contiguous<E: Elem>(count: usize, kc: usize, src: *const E, stride: isize, w: usize, dst: *mut E) {
    // SAFETY (all arms): forwarded contract.
    unsafe {
        match w {
            32 => pack_contiguous_w::<E, 32>(count, kc, src, stride, dst),
            16 => pack_contiguous_w::<E, 16>(count, kc, src, stride, dst),
            12 => pack_contiguous_w::<E, 12>(count, kc, src, stride, dst),
            8 => pack_contiguous_w::<E, 8>(count, kc, src, stride, dst),
            6 => pack_contiguous_w::<E, 6>(count, kc, src, stride, dst),
            _ => {
                let strips = count.div_ceil(w);
                for p in 0..kc {
                    let run = src.offset(p as isize * stride);
                    for s in 0..strips {
                        let n = w.min(count - s * w);
                        let o = dst.add(s * w * kc + p * w);
                        core::ptr::copy_nonoverlapping(run.add(s * w), o, n);
                        for j in n..w {
                            *o.add(j) = E::ZERO;
                        }
                    }
                }
            }
        }
    }
}

/// [`pack_contiguous`] with the strip width `W` known, so whole strips copy as `[E; W]`.
///
/// # Safety
/// As [`pack_contiguous`] with `w == W`.
unsafe fn pack_contiguous_w<E: Elem, const W: usize>(count: usize, kc: usize, src: *const E, stride: isize, dst: *mut E) {
    let full = count / W;
    let rest = count - full * W;
    for p in 0..kc {
        // SAFETY: run p holds `count` elements; strip s's row p is W elements at s·W·kc + p·W
        // in dst, the last (partial) strip padded with zeros.
        unsafe {
            let run = src.offset(p as isize * stride);
            for s in 0..full {
                let v = run.add(s * W).cast::<[E; W]>().read_unaligned();
                dst.add(s * W * kc + p * W).cast::<[E; W]>().write_unaligned(v);
            }
            if rest > 0 {
                let o = dst.add(full * W * kc + p * W);
                for i in 0..W {
                    *o.add(i) = if i < rest { *run.add(full * W + i) } else { E::ZERO };
                }
            }
        }
    }
}

/// Writes `out[p·MR + i] = r[i][p]` for the first columns `p` it can take in vector blocks
/// and returns how many it took (the caller copies the rest).
///
/// # Safety
/// Each `r[i]` addresses `kc` elements, `out` holds `kc·MR`.
#[inline(always)]
unsafe fn transpose_strip<E: Elem, const MR: usize>(kc: usize, r: &[*const E; MR], out: *mut E) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        use core::any::TypeId;
        // SAFETY: E is the type the pointers are cast to; forwarded contract.
        if TypeId::of::<E>() == TypeId::of::<f32>() {
            return unsafe { sse::strip_f32::<MR>(kc, &r.map(|p| p.cast::<f32>()), out.cast()) };
        }
        if TypeId::of::<E>() == TypeId::of::<f64>() {
            return unsafe { sse::strip_f64::<MR>(kc, &r.map(|p| p.cast::<f64>()), out.cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (kc, r, out);
    0
}

/// The vector transposes of [`transpose_strip`] on SSE2, which every x86-64 CPU has.
#[cfg(target_arch = "x86_64")]
mod sse {
    use core::arch::x86_64::*;

    /// Four columns at a time: each group of four rows is a 4 x 4 transpose (the last two
    /// rows of an `MR = 6` strip a 2 x 4 one). Returns the columns done (`kc` rounded down to 4).
    ///
    /// # Safety
    /// As [`super::transpose_strip`].
    #[inline(always)]
    pub(super) unsafe fn strip_f32<const MR: usize>(kc: usize, r: &[*const f32; MR], out: *mut f32) -> usize {
        let cols = kc / 4 * 4;
        // SAFETY: columns p..p+4 of every row are inside A, and rows p..p+4 of the strip inside out.
        unsafe {
            for p in (0..cols).step_by(4) {
                let o = out.add(p * MR);
                let mut i = 0;
                while i + 4 <= MR {
                    let (x0, x1) = (_mm_loadu_ps(r[i].add(p)), _mm_loadu_ps(r[i + 1].add(p)));
                    let (x2, x3) = (_mm_loadu_ps(r[i + 2].add(p)), _mm_loadu_ps(r[i + 3].add(p)));
                    // [a0 b0 a1 b1], [a2 b2 a3 b3], [c0 d0 c1 d1], [c2 d2 c3 d3]
                    let (t0, t1) = (_mm_unpacklo_ps(x0, x1), _mm_unpackhi_ps(x0, x1));
                    let (t2, t3) = (_mm_unpacklo_ps(x2, x3), _mm_unpackhi_ps(x2, x3));
                    _mm_storeu_ps(o.add(i), _mm_movelh_ps(t0, t2));
                    _mm_storeu_ps(o.add(MR + i), _mm_movehl_ps(t2, t0));
                    _mm_storeu_ps(o.add(2 * MR + i), _mm_movelh_ps(t1, t3));
                    _mm_storeu_ps(o.add(3 * MR + i), _mm_movehl_ps(t3, t1));
                    i += 4;
                }
                if i + 2 <= MR {
                    let (x0, x1) = (_mm_loadu_ps(r[i].add(p)), _mm_loadu_ps(r[i + 1].add(p)));
                    let (t0, t1) = (_mm_unpacklo_ps(x0, x1), _mm_unpackhi_ps(x0, x1));
                    _mm_storel_pd(o.add(i).cast(), _mm_castps_pd(t0));
                    _mm_storeh_pd(o.add(MR + i).cast(), _mm_castps_pd(t0));
                    _mm_storel_pd(o.add(2 * MR + i).cast(), _mm_castps_pd(t1));
                    _mm_storeh_pd(o.add(3 * MR + i).cast(), _mm_castps_pd(t1));
                    i += 2;
                }
                for (i, ri) in r.iter().enumerate().skip(i) {
                    for q in 0..4 {
                        *o.add(q * MR + i) = *ri.add(p + q);
                    }
                }
            }
        }
        cols
    }

    /// Two columns at a time, as 2 x 2 transposes. Returns the columns done (`kc` rounded
    /// down to 2).
    ///
    /// # Safety
    /// As [`super::transpose_strip`].
    #[inline(always)]
    pub(super) unsafe fn strip_f64<const MR: usize>(kc: usize, r: &[*const f64; MR], out: *mut f64) -> usize {
        let cols = kc / 2 * 2;
        // SAFETY: columns p..p+2 of every row are inside A, and rows p..p+2 of the strip inside out.
        unsafe {
            for p in (0..cols).step_by(2) {
                let o = out.add(p * MR);
                for i in (0..MR / 2 * 2).step_by(2) {
                    let (x0, x1) = (_mm_loadu_pd(r[i].add(p)), _mm_loadu_pd(r[i + 1].add(p)));
                    _mm_storeu_pd(o.add(i), _mm_unpacklo_pd(x0, x1));
                    _mm_storeu_pd(o.add(MR + i), _mm_unpackhi_pd(x0, x1));
                }
                if MR % 2 == 1 {
                    *o.add(MR - 1) = *r[MR - 1].add(p);
                    *o.add(2 * MR - 1) = *r[MR - 1].add(p + 1);
                }
            }
        }
        cols
    }
}

/// The `kc x nc` block of B at `b` (strides `rsb`, `csb`) into `dst` as `ceil(nc / nr)`
/// strips, each `kc` rows of `nr` elements.
///
/// A row-major B is read row by row, each row scattered over the strips: against reading it
/// strip by strip (`nr` elements of each row in turn, from rows a whole row apart) packing B
/// went from 2.4% to 1.1% of the 1024 x 1024 f32 product (Zen 4, one thread).
///
/// # Safety
/// B must address a valid `kc x nc` block, `dst` must hold `ceil(nc / nr)·nr·kc` elements.
pub(crate) unsafe fn pack_b<E: Elem>(kc: usize, nc: usize, b: *const E, rsb: isize, csb: isize, nr: usize, dst: *mut E) {
    // SAFETY (both branches): forwarded contract.
    unsafe {
        if csb == 1 {
            pack_contiguous(nc, kc, b, rsb, nr, dst);
        } else {
            // Packing B into strips of nr columns is packing Bᵀ (an nc x kc matrix with row
            // stride csb) into strips of nr rows: with contiguous columns (rsb == 1, the A·Bᵀ
            // case) that takes pack_a's vector transposes.
            pack_a(nc, kc, b, csb, rsb, nr, dst);
        }
    }
}
