//! Reductions over one or more axes: sum, mean, max, min, var, logsumexp, argmax, and `sum_to`
//! (the adjoint of broadcasting).

use crate::element::Float;
use crate::error::{Error, OrPanic, Result};
use crate::kernels::split_at_axis;
use crate::shape::Shape;
use crate::tensor::Tensor;
use smallvec::SmallVec;
use std::mem::MaybeUninit;

/// One AVX-512 register of f32 lanes. Sums keep four such accumulators side by side
/// ([`SUM_LANES`]): enough independent adds in flight to hide the add latency (one register,
/// as a single running sum does, ran `sum` of 1M at half the speed). They are four separate
/// locals, not one `[T; 64]`: LLVM keeps those in registers, where it sometimes left the big
/// array on the stack and the sum ran 4x slower.
const LANE: usize = 16;
const SUM_LANES: usize = 4 * LANE;

/// Four lanes of partial results (sums, maxima, ...).
struct Acc<T>([[T; LANE]; 4]);

impl<T: Float> Acc<T> {
    #[inline(always)]
    fn splat(v: T) -> Self {
        Acc([[v; LANE]; 4])
    }

    /// Updates the partial result at each of the `SUM_LANES` positions `i` of one block to
    /// `g(partial, i)`.
    #[inline(always)]
    fn update(&mut self, mut g: impl FnMut(T, usize) -> T) {
        // All four registers in one loop over the lanes: looping over the registers one at a
        // time, LLVM vectorized the updates two lanes wide (`sum` of 1M f32 took 40 µs on two
        // threads, 78-96 on one; now 22-24 and 43).
        let [a0, a1, a2, a3] = &mut self.0;
        for i in 0..LANE {
            a0[i] = g(a0[i], i);
            a1[i] = g(a1[i], LANE + i);
            a2[i] = g(a2[i], 2 * LANE + i);
            a3[i] = g(a3[i], 3 * LANE + i);
        }
    }

    /// Like [`Acc::update`] for one register's `LANE` positions (the tail of a slice).
    #[inline(always)]
    fn update_one(&mut self, mut g: impl FnMut(T, usize) -> T) {
        self.0[0].iter_mut().enumerate().for_each(|(i, a)| *a = g(*a, i));
    }

    /// The partial results combined: the four registers lane by lane, then the sixteen lanes
    /// as a halving tree (a serial chain over the lanes was most of a 128-long dot product).
    #[inline(always)]
    fn reduce(self, combine: impl Fn(T, T) -> T) -> T {
        let [a0, a1, a2, a3] = self.0;
        let mut v = [T::ZERO; LANE];
        for i in 0..LANE {
            v[i] = combine(combine(a0[i], a1[i]), combine(a2[i], a3[i]));
        }
        fold_register(v, combine)
    }
}

/// One register's lanes combined as a halving tree (log₂ 16 = 4 vector steps).
#[inline(always)]
fn fold_register<T: Float>(mut v: [T; LANE], combine: impl Fn(T, T) -> T) -> T {
    let mut width = LANE;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            v[i] = combine(v[i], v[i + width]);
        }
    }
    v[0]
}

/// Sum of a slice, vectorized with independent partial sums, and split across the thread pool
/// for large slices.
///
/// ```
/// use wengert_core::kernels::reduce::sum_slice;
/// assert_eq!(sum_slice(&[1.0f64, 2.0, 3.0, 4.0]), 10.0);
/// assert_eq!(sum_slice::<f32>(&[]), 0.0);
/// ```
#[inline]
pub fn sum_slice<T: Float>(x: &[T]) -> T {
    if x.len() >= PARALLEL_SUM_ELEMENTS {
        let parts = crate::parallel::parts_for(x.len(), PARALLEL_SUM_ELEMENTS / 4);
        let mut partial = vec![T::ZERO; parts];
        crate::parallel::for_each_part_mut(&mut partial, parts, 1, |i, s| {
            let (lo, hi) = (x.len() * i / parts, x.len() * (i + 1) / parts);
            s[0] = sum_lanes(&x[lo..hi]);
        });
        return partial.into_iter().sum();
    }
    sum_lanes(x)
}

/// Slices this long are summed on several threads: below it (measured, 2 cores) one core
/// streams the data faster than the pool hands the halves out.
const PARALLEL_SUM_ELEMENTS: usize = 1 << 18;

pub(crate) fn sum_lanes<T: Float>(x: &[T]) -> T {
    sum_map_lanes(x, |v| v)
}

/// Σ f(x) in independent lanes (a plain `.sum()` is one long dependency chain that does not
/// vectorize).
#[inline]
pub(crate) fn sum_map_lanes<T: Float>(x: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = Acc::splat(T::ZERO);
    let mut chunks = x.chunks_exact(SUM_LANES);
    for c in &mut chunks {
        let c: &[T; SUM_LANES] = c.try_into().expect("chunks_exact gives whole blocks");
        acc.update(|a, i| a + f(c[i]));
    }
    let mut tail = chunks.remainder().chunks_exact(LANE);
    for c in &mut tail {
        acc.update_one(|a, i| a + f(c[i]));
    }
    let rest: T = tail.remainder().iter().map(|&v| f(v)).sum();
    acc.reduce(|p, q| p + q) + rest
}

/// `[x·y0, x·y1, x·y2, x·y3]` for one row `x` against four rows of the same length: each
/// 16-lane chunk of `x` is loaded once for four multiply-adds (against two loads per
/// multiply-add for separate dot products, which made the conv weight gradient load-bound).
#[inline]
#[allow(clippy::needless_range_loop)]
pub(crate) fn dot4_lanes<T: Float>(x: &[T], y: [&[T]; 4]) -> [T; 4] {
    let n = x.len();
    let [y0, y1, y2, y3] = y.map(|r| &r[..n]);
    let (mut s0, mut s1, mut s2, mut s3) = ([T::ZERO; LANE], [T::ZERO; LANE], [T::ZERO; LANE], [T::ZERO; LANE]);
    let whole = n / LANE * LANE;
    for c in (0..whole).step_by(LANE) {
        let xc: &[T; LANE] = x[c..c + LANE].try_into().expect("whole chunk");
        let (c0, c1, c2, c3): (&[T; LANE], &[T; LANE], &[T; LANE], &[T; LANE]) = (
            y0[c..c + LANE].try_into().expect("whole chunk"),
            y1[c..c + LANE].try_into().expect("whole chunk"),
            y2[c..c + LANE].try_into().expect("whole chunk"),
            y3[c..c + LANE].try_into().expect("whole chunk"),
        );
        for t in 0..LANE {
            s0[t] = xc[t].mul_add_fast(c0[t], s0[t]);
            s1[t] = xc[t].mul_add_fast(c1[t], s1[t]);
            s2[t] = xc[t].mul_add_fast(c2[t], s2[t]);
            s3[t] = xc[t].mul_add_fast(c3[t], s3[t]);
        }
    }
    let acc = [s0, s1, s2, s3];
    let mut out = [T::ZERO; 4];
    for (q, (o, yq)) in out.iter_mut().zip([y0, y1, y2, y3]).enumerate() {
        let tail: T = x[whole..].iter().zip(&yq[whole..]).map(|(&p, &r)| p * r).sum();
        *o = fold_register(acc[q], |p, q| p + q) + tail;
    }
    out
}

/// `out[r][q] = x_r·y_q` for two rows `x` against four rows `y` of the same length: per
/// 16-lane chunk, six loads feed eight multiply-adds in eight independent registers (one row
/// against four, [`dot4_lanes`], needs five loads for four).
#[inline]
#[allow(clippy::needless_range_loop)]
pub(crate) fn dot2x4_lanes<T: Float>(x: [&[T]; 2], y: [&[T]; 4]) -> [[T; 4]; 2] {
    let n = x[0].len();
    let [x0, x1] = x.map(|r| &r[..n]);
    let [y0, y1, y2, y3] = y.map(|r| &r[..n]);
    let z = [T::ZERO; LANE];
    let (mut s00, mut s01, mut s02, mut s03) = (z, z, z, z);
    let (mut s10, mut s11, mut s12, mut s13) = (z, z, z, z);
    let whole = n / LANE * LANE;
    let chunk = |r: &[T], c: usize| -> [T; LANE] { r[c..c + LANE].try_into().expect("whole chunk") };
    for c in (0..whole).step_by(LANE) {
        let (a0, a1) = (chunk(x0, c), chunk(x1, c));
        let (b0, b1, b2, b3) = (chunk(y0, c), chunk(y1, c), chunk(y2, c), chunk(y3, c));
        for t in 0..LANE {
            s00[t] = a0[t].mul_add_fast(b0[t], s00[t]);
            s01[t] = a0[t].mul_add_fast(b1[t], s01[t]);
            s02[t] = a0[t].mul_add_fast(b2[t], s02[t]);
            s03[t] = a0[t].mul_add_fast(b3[t], s03[t]);
            s10[t] = a1[t].mul_add_fast(b0[t], s10[t]);
            s11[t] = a1[t].mul_add_fast(b1[t], s11[t]);
            s12[t] = a1[t].mul_add_fast(b2[t], s12[t]);
            s13[t] = a1[t].mul_add_fast(b3[t], s13[t]);
        }
    }
    let acc = [[s00, s01, s02, s03], [s10, s11, s12, s13]];
    let mut out = [[T::ZERO; 4]; 2];
    for (r, xr) in [x0, x1].into_iter().enumerate() {
        for (q, yq) in [y0, y1, y2, y3].into_iter().enumerate() {
            let tail: T = xr[whole..].iter().zip(&yq[whole..]).map(|(&p, &v)| p * v).sum();
            out[r][q] = fold_register(acc[r][q], |p, q| p + q) + tail;
        }
    }
    out
}

/// One register of lane-wise partial sums: the lanes of `v` add up to the value it stands for
/// ([`sum_register`]).
pub(crate) type Lanes<T> = [T; LANE];

/// The sum of the lanes of `v`.
#[inline]
pub(crate) fn sum_register<T: Float>(v: Lanes<T>) -> T {
    fold_register(v, |p, q| p + q)
}

/// Adds the products `a[i][l]·b[j][l]` of row-major `a` `[m, k]` and `b` `[n, k]` into
/// `acc[i·n + j]` spread over its lanes, and, when `acc` is longer than `m·n`, the
/// row sums `Σ_l a[i][l]` into `acc[m·n + i]`. The lanes of each register add up to the
/// dot product, so a caller summing many such products (a conv's weight gradient over a
/// batch) folds each register once at the end instead of once per product ([`sum_register`]).
/// Four rows of `a` meet three rows of `b` per pass: seven loads feed twelve multiply-adds
/// (and, in the first pass over `b`, four adds for the row sums) in independent registers.
/// A row's last `k mod 16` elements are read as the row's last full chunk with the lanes
/// already counted set to zero.
pub(crate) fn add_dots_lanes<T: Float>(a: &[T], b: &[T], acc: &mut [Lanes<T>], m: usize, k: usize, n: usize) {
    assert!(a.len() == m * k && b.len() == n * k && acc.len() >= m * n);
    let sums = acc.len() >= m * n + m;
    let mut i = 0;
    while i < m {
        let rows = if m - i >= 4 { 4 } else { 1 };
        match rows {
            4 => dots_rows::<T, 4>(a, b, acc, i, m, k, n, sums),
            _ => dots_rows::<T, 1>(a, b, acc, i, m, k, n, sums),
        }
        i += rows;
    }
}

/// Rows `i..i+R` of A against every row of B (three at a time, then one), for [`add_dots_lanes`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dots_rows<T: Float, const R: usize>(a: &[T], b: &[T], acc: &mut [Lanes<T>], i: usize, m: usize, k: usize, n: usize, sums: bool) {
    let arows: [&[T]; R] = std::array::from_fn(|r| &a[(i + r) * k..(i + r + 1) * k]);
    let brow = |j: usize| &b[j * k..(j + 1) * k];
    let n3 = n / 3 * 3;
    let sums = sums.then(|| m * n + i);
    for j in (0..n3).step_by(3) {
        if j == 0 && sums.is_some() {
            dots_tile::<T, R, 3, true>(arows, [brow(j), brow(j + 1), brow(j + 2)], acc, i, j, n, sums);
        } else {
            dots_tile::<T, R, 3, false>(arows, [brow(j), brow(j + 1), brow(j + 2)], acc, i, j, n, None);
        }
    }
    for j in n3..n {
        if j == 0 && sums.is_some() {
            dots_tile::<T, R, 1, true>(arows, [brow(j)], acc, i, j, n, sums);
        } else {
            dots_tile::<T, R, 1, false>(arows, [brow(j)], acc, i, j, n, None);
        }
    }
    if let (0, Some(at)) = (n, sums) {
        for (r, row) in arows.into_iter().enumerate() {
            acc[at + r] = add_lanes(acc[at + r], row_sum_lanes(row));
        }
    }
}

/// Lane-wise sum of one row (for [`add_dots_lanes`] with no rows of `b`).
fn row_sum_lanes<T: Float>(x: &[T]) -> Lanes<T> {
    let chunks = x.chunks_exact(LANE);
    let tail = if chunks.remainder().is_empty() { [T::ZERO; LANE] } else { tail_chunk(x) };
    chunks.fold(tail, |s, c| add_lanes(s, c.try_into().expect("whole chunk")))
}

/// `p + q` lane by lane.
#[inline(always)]
pub(crate) fn add_lanes<T: Float>(mut p: Lanes<T>, q: Lanes<T>) -> Lanes<T> {
    p.iter_mut().zip(q).for_each(|(p, q)| *p += q);
    p
}

/// The last `k mod LANE` elements of `row` as one register, the other lanes zero: the row's
/// last full chunk with the lanes an earlier chunk already covered masked off (or, for rows
/// shorter than a register, the row padded with zeros).
#[inline(always)]
fn tail_chunk<T: Float>(row: &[T]) -> Lanes<T> {
    let k = row.len();
    let rem = k % LANE;
    if k >= LANE {
        let c: &Lanes<T> = row[k - LANE..].try_into().expect("whole chunk");
        std::array::from_fn(|t| if t >= LANE - rem { c[t] } else { T::ZERO })
    } else {
        let mut c = [T::ZERO; LANE];
        c[..k].copy_from_slice(row);
        c
    }
}

/// One chunk of a [`dots_tile`]: `s[r][q] += a[r]·b[q]` lane-wise (and `rs[r] += a[r]`
/// when `SUMS`).
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn dots_step<T: Float, const R: usize, const C: usize, const SUMS: bool>(
    s: &mut [[Lanes<T>; C]; R],
    rs: &mut [Lanes<T>; R],
    ac: [Lanes<T>; R],
    bc: [Lanes<T>; C],
) {
    for r in 0..R {
        for q in 0..C {
            for t in 0..LANE {
                s[r][q][t] = ac[r][t].mul_add_fast(bc[q][t], s[r][q][t]);
            }
        }
        if SUMS {
            for t in 0..LANE {
                rs[r][t] += ac[r][t];
            }
        }
    }
}

/// One `R x C` block of [`add_dots_lanes`]: rows `i..i+R` of A against rows `j..j+C` of B,
/// and with `SUMS` the `R` rows' sums added at `acc[sums_at..]`.
#[inline(always)]
#[allow(clippy::needless_range_loop, clippy::too_many_arguments)]
fn dots_tile<T: Float, const R: usize, const C: usize, const SUMS: bool>(
    a: [&[T]; R],
    b: [&[T]; C],
    acc: &mut [Lanes<T>],
    i: usize,
    j: usize,
    n: usize,
    sums_at: Option<usize>,
) {
    let k = a[0].len();
    let a = a.map(|r| &r[..k]);
    let b = b.map(|r| &r[..k]);
    let mut s = [[[T::ZERO; LANE]; C]; R];
    let mut rs = [[T::ZERO; LANE]; R];
    let whole = k / LANE * LANE;
    for c in (0..whole).step_by(LANE) {
        let chunk = |row: &[T]| -> Lanes<T> { row[c..c + LANE].try_into().expect("whole chunk") };
        dots_step::<T, R, C, SUMS>(&mut s, &mut rs, a.map(chunk), b.map(chunk));
    }
    if whole < k {
        dots_step::<T, R, C, SUMS>(&mut s, &mut rs, a.map(tail_chunk), b.map(tail_chunk));
    }
    for r in 0..R {
        for q in 0..C {
            acc[(i + r) * n + j + q] = add_lanes(acc[(i + r) * n + j + q], s[r][q]);
        }
        if let (true, Some(at)) = (SUMS, sums_at) {
            acc[at + r] = add_lanes(acc[at + r], rs[r]);
        }
    }
}

/// Writes `dst[i] = f(src[i])` (every slot of `dst`) and returns Σ dst, in one pass with
/// independent lanes.
#[inline]
pub(crate) fn map_sum_lanes<T: Float>(src: &[T], dst: &mut [MaybeUninit<T>], f: impl Fn(T) -> T) -> T {
    assert_eq!(src.len(), dst.len());
    let mut acc = Acc::splat(T::ZERO);
    let mut s = src.chunks_exact(SUM_LANES);
    let mut d = dst.chunks_exact_mut(SUM_LANES);
    for (sc, dc) in (&mut s).zip(&mut d) {
        let sc: &[T; SUM_LANES] = sc.try_into().expect("chunks_exact gives whole blocks");
        let dc: &mut [MaybeUninit<T>; SUM_LANES] = dc.try_into().expect("chunks_exact gives whole blocks");
        acc.update(|a, i| a + *dc[i].write(f(sc[i])));
    }
    let mut rest = T::ZERO;
    for (o, &v) in d.into_remainder().iter_mut().zip(s.remainder()) {
        rest += *o.write(f(v));
    }
    acc.reduce(|p, q| p + q) + rest
}

/// `combine` folded over a non-empty slice in independent lanes (so it vectorizes), then
/// over the lanes; `combine` must be associative, commutative and idempotent (max, min:
/// every lane starts from the first element).
pub(crate) fn fold_lanes<T: Float>(x: &[T], combine: impl Fn(T, T) -> T) -> T {
    let mut acc = Acc::splat(x[0]);
    let chunks = x.chunks_exact(SUM_LANES);
    let rest = chunks.remainder();
    for c in chunks {
        let c: &[T; SUM_LANES] = c.try_into().expect("chunks_exact gives whole blocks");
        acc.update(|a, i| combine(a, c[i]));
    }
    rest.iter().fold(acc.reduce(&combine), |a, &b| combine(a, b))
}

/// Which reduction to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Σ
    Sum,
    /// largest element
    Max,
    /// smallest element
    Min,
}

/// The larger of two values, NaN if either is NaN (as `torch.maximum` and `torch.amax`);
/// branch-free, so loops over it vectorize (compare + blend).
#[inline(always)]
pub(crate) fn max_nan<T: Float>(a: T, b: T) -> T {
    #[allow(clippy::eq_op)]
    if b > a || b != b {
        b
    } else {
        a
    }
}

/// The smaller of two values, NaN if either is NaN.
#[inline(always)]
pub(crate) fn min_nan<T: Float>(a: T, b: T) -> T {
    #[allow(clippy::eq_op)]
    if b < a || b != b {
        b
    } else {
        a
    }
}

/// `out[j] = combine(rows[0][j], rows[1][j], ...)` over the rows (of `inner`, at least one)
/// of `src`: 64 columns at a time held in registers down all the rows, then 16, then the
/// rest.
#[allow(clippy::needless_range_loop)]
fn fold_rows<T: Float>(src: &[T], inner: usize, out: &mut [T], combine: impl Fn(T, T) -> T) {
    fn block<T: Float, const B: usize>(src: &[T], inner: usize, j: usize, out: &mut [T], combine: &impl Fn(T, T) -> T) {
        let mut acc: [T; B] = src[j..j + B].try_into().expect("B columns");
        for row in src[inner..].chunks_exact(inner) {
            let r: &[T; B] = row[j..j + B].try_into().expect("B columns");
            for t in 0..B {
                acc[t] = combine(acc[t], r[t]);
            }
        }
        out[j..j + B].copy_from_slice(&acc);
    }
    assert!(inner > 0 && out.len() == inner && !src.is_empty() && src.len().is_multiple_of(inner));
    let mut j = 0;
    while j + 4 * LANE <= inner {
        block::<T, { 4 * LANE }>(src, inner, j, out, &combine);
        j += 4 * LANE;
    }
    while j + LANE <= inner {
        block::<T, LANE>(src, inner, j, out, &combine);
        j += LANE;
    }
    if j < inner {
        // the last columns, fewer than a register: row by row into `out` (one column at a
        // time would be a chain of dependent adds per column)
        out[j..].copy_from_slice(&src[j..inner]);
        for row in src[inner..].chunks_exact(inner) {
            out[j..].iter_mut().zip(&row[j..]).for_each(|(a, &b)| *a = combine(*a, b));
        }
    }
}

/// `out[o, j] = combine over r of src[o, r, j]` for `src` seen as `[outer, n, inner]` (n > 0),
/// the outputs split into `parts` ranges on the thread pool. Rows (inner = 1) reduce with
/// `fold_row`; otherwise whole contiguous `inner` rows are combined into the output row.
fn reduce_lanes<T: Float>(
    src: &[T],
    out: &mut [T],
    n: usize,
    inner: usize,
    parts: usize,
    combine: impl Fn(T, T) -> T + Sync,
    fold_row: impl Fn(&[T]) -> T + Sync,
) {
    if inner > 1 && out.len() == inner && parts > 1 && n >= 2 * parts {
        // One output row (sum over rows of a matrix): split the reduced rows rather than the
        // columns, so each thread streams whole contiguous rows into a partial row (split by
        // columns, `sum` over the rows of 1024x1024 ran at 82-97 µs against 63 on one thread).
        let mut partial = vec![T::ZERO; parts * inner];
        crate::parallel::for_each_part_mut(&mut partial, parts, inner, |start, acc| {
            let p = start / inner;
            let (r0, r1) = (n * p / parts, n * (p + 1) / parts);
            fold_rows(&src[r0 * inner..r1 * inner], inner, acc, &combine);
        });
        fold_rows(&partial, inner, out, &combine);
        return;
    }
    crate::parallel::for_each_part_mut(out, parts, 1, |start, part| {
        if inner == 1 {
            let rows = src[start * n..].chunks_exact(n);
            part.iter_mut().zip(rows).for_each(|(o, row)| *o = fold_row(row));
            return;
        }
        // Output positions [start, start + len) cover pieces of consecutive outer blocks.
        let mut pos = start;
        let end = start + part.len();
        while pos < end {
            let (o, j) = (pos / inner, pos % inner);
            let len = (inner - j).min(end - pos);
            let acc = &mut part[pos - start..pos - start + len];
            let block = &src[o * n * inner..(o + 1) * n * inner];
            acc.copy_from_slice(&block[j..j + len]);
            for row in block[inner..].chunks_exact(inner) {
                acc.iter_mut().zip(&row[j..j + len]).for_each(|(a, &b)| *a = combine(*a, b));
            }
            pos += len;
        }
    });
}

/// Reduces one axis (kept as length 1).
fn reduce_one_axis<T: Float>(x: &Tensor<T>, axis: usize, op: ReduceOp) -> Tensor<T> {
    let (outer, n, inner) = split_at_axis(x.shape(), axis);
    let mut shape = x.shape().clone();
    shape.0[axis] = 1;
    let src = x.as_slice();
    if n == 0 {
        let fill = match op {
            ReduceOp::Sum => T::ZERO,
            ReduceOp::Max => T::NEG_INFINITY,
            ReduceOp::Min => T::INFINITY,
        };
        return Tensor::full(shape, fill);
    }
    if outer * inner == 1 && op == ReduceOp::Sum {
        return Tensor::from_parts(vec![sum_slice(src)], shape);
    }
    let mut out = vec![T::ZERO; outer * inner];
    let parts = crate::parallel::parts_for(src.len(), crate::kernels::PARALLEL_MIN_ELEMENTS / 2);
    match op {
        ReduceOp::Sum => reduce_lanes(src, &mut out, n, inner, parts, |a, b| a + b, sum_lanes),
        ReduceOp::Max => reduce_lanes(src, &mut out, n, inner, parts, max_nan, |r| fold_lanes(r, max_nan)),
        ReduceOp::Min => reduce_lanes(src, &mut out, n, inner, parts, min_nan, |r| fold_lanes(r, min_nan)),
    }
    Tensor::from_parts(out, shape)
}

/// Reduces `axes` (empty = all) with `op`, keeping reduced axes as 1 when `keepdim`.
///
/// ```
/// use wengert_core::kernels::reduce::{reduce, ReduceOp};
/// use wengert_core::Tensor;
/// let x = Tensor::new(vec![1.0f64, 5.0, 2.0, 0.0, 3.0, 4.0], [2, 3]);
/// assert_eq!(reduce("max", &x, &[1], false, ReduceOp::Max).unwrap().to_vec(), vec![5.0, 4.0]);
/// assert_eq!(reduce("sum", &x, &[0], true, ReduceOp::Sum).unwrap().dims(), &[1, 3]);
/// assert!(reduce("sum", &x, &[2], false, ReduceOp::Sum).is_err());
/// ```
pub fn reduce<T: Float>(
    op_name: &'static str,
    x: &Tensor<T>,
    axes: &[isize],
    keepdim: bool,
    op: ReduceOp,
) -> Result<Tensor<T>> {
    let axes = x.shape().axes(op_name, axes)?;
    let extremum = match op {
        ReduceOp::Sum => None,
        ReduceOp::Max => Some("maximum"),
        ReduceOp::Min => Some("minimum"),
    };
    if let (Some(what), Some(&a)) = (extremum, axes.iter().find(|&&a| x.dims()[a] == 0)) {
        // as PyTorch's amax/amin: an empty max has no value (a sum of nothing is 0)
        return Err(Error::invalid(op_name, format!("axis {a} of shape {} is empty, so it has no {what}", x.shape())));
    }
    reduce_unchecked(x, &axes, keepdim, op)
}

/// [`reduce`] over resolved `axes`; an empty max or min is -∞ or +∞ (what a stable
/// log-sum-exp shifts by).
fn reduce_unchecked<T: Float>(x: &Tensor<T>, axes: &[usize], keepdim: bool, op: ReduceOp) -> Result<Tensor<T>> {
    let out_shape = x.shape().reduced(axes, keepdim);
    if x.ndim() == 0 {
        return Ok(x.clone());
    }
    if axes.len() == x.ndim() && op == ReduceOp::Sum {
        return Ok(Tensor::from_parts(vec![sum_slice(x.as_slice())], out_shape));
    }
    // Adjacent axes of the same kind are merged first (the bias gradient of a conv, a sum of
    // [N, C, H, W] over N, H and W, becomes one pass over rows of H·W, then one over N: 200 ->
    // 30 µs on 32x32x26x26, where three passes folded rows of 26).
    let mut merged: SmallVec<[usize; 6]> = SmallVec::new();
    let mut merged_axes: SmallVec<[usize; 6]> = SmallVec::new();
    for (i, &d) in x.dims().iter().enumerate() {
        let reduced = axes.contains(&i);
        let continues = i > 0 && reduced == axes.contains(&(i - 1));
        match merged.last_mut() {
            Some(last) if continues => *last *= d,
            _ => {
                if reduced {
                    merged_axes.push(merged.len());
                }
                merged.push(d);
            }
        }
    }
    let mut cur = x.try_reshape(Shape::new(&merged))?;
    for &a in merged_axes.iter().rev() {
        cur = reduce_one_axis(&cur, a, op);
    }
    cur.try_reshape(out_shape)
}

/// Sums `x` down to `shape`, the shape it was broadcast from: the adjoint of broadcasting.
///
/// ```
/// use wengert_core::{kernels::reduce::sum_to, Shape, Tensor};
/// let g = Tensor::<f32>::ones([2, 3]);
/// assert_eq!(sum_to(&g, &Shape::new(&[3])).unwrap().to_vec(), vec![2.0, 2.0, 2.0]);
/// assert_eq!(sum_to(&g, &Shape::new(&[2, 1])).unwrap().to_vec(), vec![3.0, 3.0]);
/// ```
pub fn sum_to<T: Float>(x: &Tensor<T>, shape: &Shape) -> Result<Tensor<T>> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    if !shape.broadcasts_to(x.shape()) {
        return Err(Error::shapes(
            "sum_to",
            &[x.shape(), shape],
            "the target shape does not broadcast to the source",
        ));
    }
    // The commonest case, a bias gradient (the rows of a batch summed to one row), skips the
    // general reduction's bookkeeping, most of the time of a small one: a [32, 10] summed to
    // [10] took 320 ns, most of it spent outside the additions.
    let ones = shape.iter().take_while(|&&d| d == 1).count();
    let tail = &shape[ones..];
    if x.numel() < crate::kernels::PARALLEL_MIN_ELEMENTS && x.dims().ends_with(tail) {
        let inner = tail.iter().product::<usize>();
        let mut out = vec![T::ZERO; inner];
        match (inner, x.numel()) {
            (_, 0) | (0, _) => {}
            (1, _) => out[0] = sum_slice(x.as_slice()),
            _ => fold_rows(x.as_slice(), inner, &mut out, |a, b| a + b),
        }
        return Ok(Tensor::from_parts(out, shape.clone()));
    }
    let off = x.ndim() - shape.ndim();
    let axes: Vec<isize> = (0..x.ndim())
        .filter(|&i| i < off || (shape[i - off] == 1 && x.shape()[i] != 1))
        .map(|i| i as isize)
        .collect();
    if axes.is_empty() {
        return x.try_reshape(shape.clone());
    }
    reduce("sum_to", x, &axes, true, ReduceOp::Sum)?.try_reshape(shape.clone())
}

/// Number of elements folded into each output of a reduction over `axes`.
///
/// ```
/// use wengert_core::{kernels::reduce::reduced_count, Shape};
/// let s = Shape::new(&[2, 3, 4]);
/// assert_eq!(reduced_count(&s, &[0, 2]).unwrap(), 8);
/// assert_eq!(reduced_count(&s, &[]).unwrap(), 24);
/// assert!(reduced_count(&s, &[3]).is_err());
/// ```
pub fn reduced_count(shape: &Shape, axes: &[isize]) -> Result<usize> {
    Ok(shape.axes("reduce", axes)?.iter().map(|&a| shape[a]).product())
}

impl<T: Float> Tensor<T> {
    /// Σ of all elements, as a 0-d tensor.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let s = Tensor::new(vec![1.0f64, 2.0, 3.0, 4.0], [2, 2]).sum();
    /// assert!(s.dims().is_empty());
    /// assert_eq!(s.item(), 10.0);
    /// ```
    pub fn sum(&self) -> Tensor<T> {
        Tensor::scalar(sum_slice(self.as_slice()))
    }

    /// Σ over `axes` (empty = all); reduced axes stay as length 1 when `keepdim`.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]);
    /// assert_eq!(x.sum_axes(&[0], false).to_vec(), vec![5.0, 7.0, 9.0]);
    /// assert_eq!(x.sum_axes(&[-1], true).dims(), &[2, 1]);
    /// ```
    #[track_caller]
    pub fn sum_axes(&self, axes: &[isize], keepdim: bool) -> Tensor<T> {
        reduce("sum", self, axes, keepdim, ReduceOp::Sum).or_panic()
    }

    /// Mean of all elements, as a 0-d tensor.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// assert_eq!(Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0]).mean().item(), 2.5);
    /// ```
    pub fn mean(&self) -> Tensor<T> {
        Tensor::scalar(sum_slice(self.as_slice()) / T::from_usize(self.numel()))
    }

    /// Mean over `axes` (empty = all).
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::new(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]);
    /// assert_eq!(x.mean_axes(&[0], false).to_vec(), vec![2.5, 3.5, 4.5]);
    /// assert_eq!(x.mean_axes(&[1], true).to_vec(), vec![2.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn mean_axes(&self, axes: &[isize], keepdim: bool) -> Tensor<T> {
        let n = reduced_count(self.shape(), axes).or_panic();
        self.sum_axes(axes, keepdim).mul_scalar(T::ONE / T::from_usize(n))
    }

    /// Largest element over `axes` (empty = all). NaN propagates.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::new(vec![1.0f64, 5.0, 2.0, 0.0, 3.0, 4.0], [2, 3]);
    /// assert_eq!(x.max_axes(&[1], false).to_vec(), vec![5.0, 4.0]);
    /// assert!(Tensor::from_slice(&[1.0f64, f64::NAN]).max_axes(&[], false).item().is_nan());
    /// ```
    #[track_caller]
    pub fn max_axes(&self, axes: &[isize], keepdim: bool) -> Tensor<T> {
        reduce("max", self, axes, keepdim, ReduceOp::Max).or_panic()
    }

    /// Smallest element over `axes` (empty = all). NaN propagates.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::new(vec![1.0f64, 5.0, 2.0, 0.0, 3.0, 4.0], [2, 3]);
    /// assert_eq!(x.min_axes(&[0], false).to_vec(), vec![0.0, 3.0, 2.0]);
    /// assert!(Tensor::from_slice(&[1.0f64, f64::NAN]).min_axes(&[], false).item().is_nan());
    /// ```
    #[track_caller]
    pub fn min_axes(&self, axes: &[isize], keepdim: bool) -> Tensor<T> {
        reduce("min", self, axes, keepdim, ReduceOp::Min).or_panic()
    }

    /// Variance over `axes`: Σ(x - mean)² / (N - correction). `correction = 1` is the unbiased
    /// estimate (PyTorch's default), `0` the population variance.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0]);
    /// assert_eq!(x.var_axes(&[], 0, false).item(), 1.25);
    /// assert!((x.var_axes(&[], 1, false).item() - 5.0 / 3.0).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn var_axes(&self, axes: &[isize], correction: usize, keepdim: bool) -> Tensor<T> {
        let n = reduced_count(self.shape(), axes).or_panic();
        let centered = self.sub(&self.mean_axes(axes, true));
        let denom = T::from_usize(n.saturating_sub(correction));
        centered.square().sum_axes(axes, keepdim).mul_scalar(T::ONE / denom)
    }

    /// ln Σ exp(x) over `axes`, computed stably by shifting by the max.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::new(vec![0.0f64, 0.0, 1000.0, 1000.0], [2, 2]);
    /// let l = x.logsumexp_axes(&[1], false);
    /// assert!(l.allclose(&Tensor::from_slice(&[2f64.ln(), 1000.0 + 2f64.ln()]), 1e-12, 1e-12));
    /// ```
    #[track_caller]
    pub fn logsumexp_axes(&self, axes: &[isize], keepdim: bool) -> Tensor<T> {
        let ax = self.shape().axes("logsumexp", axes).or_panic();
        let n = self.dims().last().copied().unwrap_or(1);
        if ax.len() == 1 && ax[0] + 1 == self.ndim() && n > 0 {
            // along the last axis, row by row: the max and the sum of exponentials each one
            // vector pass over the row, no [.., n] temporaries (five passes and two of them
            // before: 221 µs on 1024x1024)
            let rows = self.numel() / n;
            let mut out = vec![T::ZERO; rows];
            let src = self.as_slice();
            let parts = crate::parallel::parts_for(self.numel(), crate::kernels::PARALLEL_MIN_ELEMENTS);
            crate::parallel::for_each_part_mut(&mut out, parts, 1, |first, part| {
                for (o, row) in part.iter_mut().zip(src[first * n..].chunks_exact(n)) {
                    let m = fold_lanes(row, |a, b| if b > a { b } else { a });
                    // ±∞ or NaN at the top: shift by 0, as below
                    let c = if m.is_finite() { m } else { T::ZERO };
                    *o = sum_map_lanes(row, |v| (v - c).fast_exp()).ln() + c;
                }
            });
            return Tensor::new(out, self.shape().reduced(&ax, keepdim));
        }
        let m = reduce_unchecked(self, &ax, true, ReduceOp::Max).or_panic().map(|v| if v.is_finite() { v } else { T::ZERO });
        let s = self.sub(&m).exp().sum_axes(axes, true).ln().add(&m);
        if keepdim {
            s
        } else {
            let axes = self.shape().axes("logsumexp", axes).or_panic();
            s.reshape(self.shape().reduced(&axes, false))
        }
    }

    /// Index of the largest element along `axis` (the first one on ties). A NaN counts as
    /// larger than anything, as in PyTorch: the first NaN's index is the result.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::new(vec![1.0f64, 5.0, 5.0, 4.0, 3.0, 0.0], [2, 3]);
    /// assert_eq!(x.argmax(1, false).to_vec(), vec![1, 0]);
    /// assert_eq!(x.argmax(0, true).dims(), &[1, 3]);
    /// ```
    #[track_caller]
    pub fn argmax(&self, axis: isize, keepdim: bool) -> Tensor<usize> {
        self.arg_reduce("argmax", axis, keepdim, |a, b| b > a)
    }

    /// Index of the smallest element along `axis` (the first one on ties). A NaN counts as
    /// smaller than anything, as in PyTorch: the first NaN's index is the result.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::new(vec![1.0f64, 5.0, 5.0, 4.0, 3.0, 0.0], [2, 3]);
    /// assert_eq!(x.argmin(1, false).to_vec(), vec![0, 2]);
    /// assert_eq!(x.argmin(0, false).to_vec(), vec![0, 1, 1]);
    /// ```
    #[track_caller]
    pub fn argmin(&self, axis: isize, keepdim: bool) -> Tensor<usize> {
        self.arg_reduce("argmin", axis, keepdim, |a, b| b < a)
    }

    /// Along a contiguous axis (the last, or any with only 1s after it), each row's best value
    /// by a vector fold, then its first position (or the first NaN's); along any other axis,
    /// the running best of every lane of `inner` at once, updated by selects. Both loops
    /// vectorize, and large inputs split across threads: 1024x1024 along its rows took
    /// 964 µs with a running (index, value) fold per row, which branches on every entry.
    #[track_caller]
    fn arg_reduce(&self, op: &'static str, axis: isize, keepdim: bool, better: impl Fn(T, T) -> bool + Sync) -> Tensor<usize> {
        let ax = self.shape().axis(op, axis).or_panic();
        let (outer, n, inner) = split_at_axis(self.shape(), ax);
        if n == 0 {
            panic!("wengert: {op}: axis {axis} of shape {} is empty", self.shape());
        }
        let src = self.as_slice();
        // b replaces a: better, or the first NaN
        let takes = |a: T, b: T| better(a, b) || (b.is_nan() && !a.is_nan());
        let parts = crate::parallel::parts_for(src.len(), crate::kernels::PARALLEL_MIN_ELEMENTS);
        // SAFETY: every part writes each of its slots (one per row, or per lane of a block).
        let out = unsafe {
            crate::parallel::collect_parts(outer * inner, parts, inner, |start, out| {
                if inner == 1 {
                    for (o, row) in out.iter_mut().zip(src[start * n..].chunks_exact(n)) {
                        let best = fold_lanes(row, |a, b| if better(a, b) { b } else { a });
                        let nan = row.iter().fold(false, |any, v| any | v.is_nan());
                        let at = if nan { first_where(row, |v| v.is_nan()) } else { first_where(row, |v| v == best) };
                        o.write(at.unwrap_or(0));
                    }
                    return;
                }
                for (block, o) in out.chunks_exact_mut(inner).enumerate() {
                    let base = &src[(start / inner + block) * n * inner..][..n * inner];
                    let mut best: Vec<T> = base[..inner].to_vec();
                    let mut at = vec![0usize; inner];
                    for (k, row) in base.chunks_exact(inner).enumerate().skip(1) {
                        for ((b, i), &v) in best.iter_mut().zip(at.iter_mut()).zip(row) {
                            let take = takes(*b, v);
                            *b = if take { v } else { *b };
                            *i = if take { k } else { *i };
                        }
                    }
                    o.iter_mut().zip(at).for_each(|(o, i)| {
                        o.write(i);
                    });
                }
            })
        };
        Tensor::new(out, self.shape().reduced(&[ax], keepdim))
    }
}

/// The first index of `x` where `pred` holds: 16 entries tested at a time in a loop that
/// vectorizes, then the one block that holds it entry by entry (`position` alone goes one
/// entry per step).
fn first_where<T: Copy>(x: &[T], pred: impl Fn(T) -> bool) -> Option<usize> {
    const BLOCK: usize = 16;
    let block = x.chunks(BLOCK).position(|c| c.iter().fold(false, |any, &v| any | pred(v)))?;
    let at = x[block * BLOCK..].iter().position(|&v| pred(v))?;
    Some(block * BLOCK + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x() -> Tensor<f64> {
        Tensor::from_fn([2, 3, 4], |i| (i[0] * 12 + i[1] * 4 + i[2]) as f64)
    }

    /// Reductions large enough to split across threads, over each axis, against indexing.
    #[test]
    fn large_reductions_match_indexing() {
        let (r, c) = (300, 257);
        let x = Tensor::<f64>::from_fn([r, c], |i| ((i[0] * 31 + i[1] * 17) % 23) as f64 - 11.0);
        let xr = &x;
        let col = |j: usize| (0..r).map(move |i| xr.get(&[i, j]));
        let row = |i: usize| (0..c).map(move |j| xr.get(&[i, j]));
        assert_eq!(x.sum_axes(&[0], false).to_vec(), (0..c).map(|j| col(j).sum()).collect::<Vec<f64>>());
        assert_eq!(x.sum_axes(&[1], false).to_vec(), (0..r).map(|i| row(i).sum()).collect::<Vec<f64>>());
        assert_eq!(x.max_axes(&[0], false).to_vec(), (0..c).map(|j| col(j).fold(f64::MIN, f64::max)).collect::<Vec<f64>>());
        assert_eq!(x.min_axes(&[1], false).to_vec(), (0..r).map(|i| row(i).fold(f64::MAX, f64::min)).collect::<Vec<f64>>());
        let y = x.reshape([3, 100, 257]);
        let want: Vec<f64> = (0..3).flat_map(|b| (0..c).map(move |j| (0..100).map(|i| xr.get(&[b * 100 + i, j])).sum::<f64>())).collect();
        assert_eq!(y.sum_axes(&[1], false).to_vec(), want);
    }

    #[test]
    fn sums_over_axes() {
        let x = x();
        assert_eq!(x.sum().item(), 276.0);
        assert_eq!(x.sum_axes(&[1], false).to_vec(), vec![12., 15., 18., 21., 48., 51., 54., 57.]);
        assert_eq!(x.sum_axes(&[0, 2], false).to_vec(), vec![60., 92., 124.]);
        assert_eq!(x.sum_axes(&[0, 2], true).dims(), &[1, 3, 1]);
        assert_eq!(x.mean_axes(&[-1], false).to_vec(), vec![1.5, 5.5, 9.5, 13.5, 17.5, 21.5]);
    }

    /// Adjacent reduced axes are merged before reducing: every mix of reduced and kept axes
    /// of a 4-D tensor (the conv bias gradient sums axes 0, 2 and 3) against indexing.
    #[test]
    fn merged_axes_match_indexing() {
        let dims = [3usize, 4, 5, 6];
        let x = Tensor::<f64>::from_fn(dims, |i| ((i[0] * 7 + i[1] * 5 + i[2] * 3 + i[3]) % 11) as f64 - 5.0);
        for mask in 1u32..16 {
            let axes: Vec<isize> = (0..4).filter(|a| mask & (1 << a) != 0).map(|a| a as isize).collect();
            let got = x.sum_axes(&axes, true);
            let mx = x.max_axes(&axes, true);
            let out_dims: Vec<usize> = (0..4).map(|a| if mask & (1 << a) != 0 { 1 } else { dims[a] }).collect();
            assert_eq!(got.dims(), &out_dims[..]);
            for o in 0..got.numel() {
                let mut rest = o;
                let mut at = [0usize; 4];
                for a in (0..4).rev() {
                    at[a] = rest % out_dims[a];
                    rest /= out_dims[a];
                }
                let (mut sum, mut max) = (0.0, f64::MIN);
                for i in 0..x.numel() {
                    let mut r = i;
                    let mut ix = [0usize; 4];
                    for a in (0..4).rev() {
                        ix[a] = r % dims[a];
                        r /= dims[a];
                    }
                    if (0..4).all(|a| mask & (1 << a) != 0 || ix[a] == at[a]) {
                        sum += x.get(&ix);
                        max = max.max(x.get(&ix));
                    }
                }
                assert_eq!(got.get(&at), sum, "sum over {axes:?} at {at:?}");
                assert_eq!(mx.get(&at), max, "max over {axes:?} at {at:?}");
            }
        }
    }

    #[test]
    fn max_min_arg() {
        let x = Tensor::new(vec![3.0f32, 1.0, 4.0, 1.0, 5.0, 9.0], [2, 3]);
        assert_eq!(x.max_axes(&[1], false).to_vec(), vec![4.0, 9.0]);
        assert_eq!(x.min_axes(&[0], false).to_vec(), vec![1.0, 1.0, 4.0]);
        assert_eq!(x.argmax(1, false).to_vec(), vec![2, 2]);
        assert_eq!(x.argmin(0, false).to_vec(), vec![1, 0, 0]);
        assert_eq!(x.max_axes(&[], false).item(), 9.0);
    }

    /// argmax and argmin along every axis of 3-d tensors (with ties, NaNs and -∞), large
    /// enough to split across threads, against a scan of each line in index order.
    #[test]
    fn arg_reductions_match_a_scan() {
        let dims = [37usize, 29, 71];
        let x = Tensor::<f32>::from_fn(dims, |i| match (i[0] * 131 + i[1] * 17 + i[2] * 7) % 53 {
            0 => f32::NAN,
            1 => f32::NEG_INFINITY,
            v => (v % 11) as f32,
        });
        for ax in 0..3 {
            for (max, got) in [(true, x.argmax(ax as isize, false)), (false, x.argmin(ax as isize, false))] {
                let mut rest = dims.to_vec();
                rest.remove(ax);
                for r in 0..rest[0] * rest[1] {
                    let mut at = vec![r / rest[1], r % rest[1]];
                    at.insert(ax, 0);
                    let line: Vec<f32> = (0..dims[ax]).map(|k| { at[ax] = k; x.get(&at) }).collect();
                    let want = line.iter().position(|v| v.is_nan()).unwrap_or_else(|| {
                        let best = line.iter().copied().fold(line[0], |a, b| if (max && b > a) || (!max && b < a) { b } else { a });
                        line.iter().position(|&v| v == best).unwrap()
                    });
                    assert_eq!(got.as_slice()[r], want, "axis {ax}, line {r}, max {max}: {line:?}");
                }
            }
        }
    }

    /// max/min over an empty axis is an error naming the op and shape (as PyTorch's amax);
    /// sum, mean's numerator and logsumexp of nothing keep their values (0, 0, -∞), and
    /// reducing a non-empty axis of an empty tensor gives an empty result.
    #[test]
    fn empty_extremum_is_an_error() {
        let x = Tensor::<f64>::zeros([0, 3]);
        for (op, got) in [
            ("max", reduce("max", &x, &[], false, ReduceOp::Max)),
            ("min", reduce("min", &x, &[0], false, ReduceOp::Min)),
        ] {
            let e = got.unwrap_err().to_string();
            assert!(e.starts_with(op) && e.contains("[0, 3]") && e.contains("axis 0"), "{e}");
        }
        assert_eq!(x.max_axes(&[1], false).dims(), &[0]);
        assert_eq!(x.sum().item(), 0.0);
        assert_eq!(x.sum_axes(&[0], false).to_vec(), vec![0.0; 3]);
        assert_eq!(x.logsumexp_axes(&[0], false).to_vec(), vec![f64::NEG_INFINITY; 3]);
        let caught = std::panic::catch_unwind(|| x.max_axes(&[], false));
        let msg = caught.unwrap_err().downcast::<String>().unwrap();
        assert!(msg.contains("max: axis 0 of shape [0, 3] is empty, so it has no maximum"), "{msg}");
    }

    #[test]
    fn var_and_logsumexp() {
        let x = Tensor::new(vec![1.0f64, 2.0, 3.0, 4.0], [4]);
        assert!((x.var_axes(&[0], 1, false).item() - 5.0 / 3.0).abs() < 1e-15);
        assert_eq!(x.var_axes(&[0], 0, false).item(), 1.25);
        let big = Tensor::new(vec![1000.0f64, 1000.0], [2]);
        assert!((big.logsumexp_axes(&[0], false).item() - (1000.0 + 2f64.ln())).abs() < 1e-9);
    }

    /// logsumexp along the last axis (the row kernel, split across threads) against the
    /// general path on the transposed tensor, with rows of -∞, a +∞, a NaN and huge values.
    #[test]
    fn logsumexp_rows_match_the_general_path() {
        let x = Tensor::<f64>::from_fn([300, 257], |i| match (i[0], i[1]) {
            (0, _) => f64::NEG_INFINITY,
            (1, 5) => f64::INFINITY,
            (2, 9) => f64::NAN,
            (3, j) => 1e4 + j as f64,
            (r, j) => ((r * 31 + j * 7) % 19) as f64 * 0.3 - 2.0,
        });
        for keepdim in [false, true] {
            let rows = x.logsumexp_axes(&[-1], keepdim);
            let general = x.t().logsumexp_axes(&[0], keepdim);
            assert_eq!(rows.numel(), 300);
            for (r, (&a, &b)) in rows.as_slice().iter().zip(general.as_slice()).enumerate() {
                let same = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-12 * a.abs().max(1.0);
                assert!(same, "row {r}: {a} against {b}");
            }
        }
    }

    #[test]
    fn sum_to_inverts_broadcast() {
        let g = Tensor::<f64>::ones([2, 3, 4]);
        assert_eq!(sum_to(&g, &Shape::new(&[3, 1])).unwrap().to_vec(), vec![8.0; 3]);
        assert!(sum_to(&g, &Shape::new(&[5])).is_err());
    }

    /// Sums of leading rows down to the trailing shape (a bias gradient), with 64-, 16- and
    /// 1-column blocks, leading ones kept, everything summed, empty tensors, and one large
    /// enough for the threaded reduction: against the general `sum_axes`.
    #[test]
    fn sum_to_trailing_shape_matches_sum_axes() {
        let cases: [(&[usize], &[usize]); 11] = [
            (&[32, 10], &[10]),
            (&[32, 128], &[128]),
            (&[7, 150], &[1, 150]),
            (&[3, 5, 83], &[5, 83]),
            (&[3, 5, 83], &[1, 1, 83]),
            (&[4, 6], &[1, 1]),
            (&[4, 6], &[]),
            (&[1, 33], &[33]),
            (&[0, 3], &[3]),
            (&[2, 0], &[0]),
            (&[300, 300], &[300]),
        ];
        for (from, to) in cases {
            let x = Tensor::<f64>::from_fn(from, |i| ((i.iter().sum::<usize>() * 7) % 11) as f64 - 5.0);
            let lead = from.len() - to.iter().skip_while(|&&d| d == 1).count();
            let axes: Vec<isize> = (0..lead as isize).collect();
            let want = x.sum_axes(&axes, false).to_vec();
            let got = sum_to(&x, &Shape::new(to)).unwrap();
            assert_eq!((got.dims(), got.to_vec()), (to, want), "{from:?} -> {to:?}");
        }
    }

    #[test]
    fn max_and_min_propagate_nan_and_cover_remainders() {
        for n in [1usize, 5, 16, 17, 40] {
            let mut v: Vec<f64> = (0..n).map(|i| ((i * 7) % 11) as f64 - 4.0).collect();
            let x = Tensor::new(v.clone(), [n]);
            assert_eq!(x.max_axes(&[0], false).item(), v.iter().cloned().fold(f64::MIN, f64::max));
            assert_eq!(x.min_axes(&[0], false).item(), v.iter().cloned().fold(f64::MAX, f64::min));
            v[n / 2] = f64::NAN;
            let x = Tensor::new(v, [1, n]);
            assert!(x.max_axes(&[1], false).item().is_nan() && x.min_axes(&[1], false).item().is_nan());
            assert!(x.max_axes(&[0], false).get(&[n / 2]).is_nan());
        }
    }

    #[test]
    fn sum_slice_matches_naive() {
        let v: Vec<f64> = (0..1001).map(|i| i as f64 * 0.5).collect();
        assert_eq!(sum_slice(&v), v.iter().sum::<f64>());
    }
}
