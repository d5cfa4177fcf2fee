//! Numerically stable softmax and log-softmax along one axis.

use crate::element::Float;
use crate::error::{Error, OrPanic, Result};
use crate::kernels::split_at_axis;
use crate::tensor::Tensor;
use std::mem::MaybeUninit;

/// Softmax (or log-softmax) of the contiguous rows of `src` (each `n` long) into `dst`:
/// `dst_i = exp(x_i - max) / Σ_j exp(x_j - max)`, rows split across the thread pool for
/// large inputs.
fn softmax_rows<T: Float>(src: &[T], dst: &mut [MaybeUninit<T>], n: usize, log: bool) {
    for_row_parts(src, n, dst, n, |_, rows, d| softmax_rows_seq(rows, d, n, log));
}

/// The largest sum of exponentials a shifted pass may reach and be kept: below it, no element
/// lay more than ln(e⁴⁰) = 40 above the shift, and the sum is far from overflow.
const SHIFT_SUM_LIMIT: f64 = 2.35e17; // e⁴⁰

/// Two passes per row. Softmax is shift-invariant, and any shift `c` at or below the row's
/// max gives the same result, with no more underflow than the max would (exp(x - c) ≥
/// exp(x - max)) and no overflow while no element exceeds `c` by much. So the shift is the
/// max of the row's first 64 elements, and the first pass writes and sums `e_i = exp(x_i - c)`;
/// a sum above [`SHIFT_SUM_LIMIT`] (some element lay more than 40 above `c`, an exponential
/// overflowed, or the row holds a NaN) redoes the pass with the row's true max. The second
/// pass, over the row while it sits in L1, scales (or, for log-softmax, writes
/// `x_i - c - ln Σ e`). One pass fewer than max, exp and sum, scale: 1024x1024 in 177 -> 148
/// µs in one run. The max ignores NaN (a plain vector max): a NaN in the row still makes the
/// sum and so every output NaN, as it should.
fn softmax_rows_seq<T: Float>(src: &[T], dst: &mut [MaybeUninit<T>], n: usize, log: bool) {
    use crate::kernels::reduce::{fold_lanes, map_sum_lanes};
    let limit = T::from_f64(SHIFT_SUM_LIMIT);
    for (row, out) in src.chunks_exact(n).zip(dst.chunks_exact_mut(n)) {
        let exp_sum = |out: &mut [MaybeUninit<T>], c: T| map_sum_lanes(row, out, |x| (x - c).fast_exp());
        let c = fold_lanes(&row[..n.min(64)], larger);
        let (c, sum) = match c.is_finite().then(|| exp_sum(out, c)) {
            Some(sum) if sum <= limit => (c, sum),
            _ => {
                let m = fold_lanes(row, larger);
                let m = if m.is_finite() { m } else { T::ZERO };
                (m, exp_sum(out, m))
            }
        };
        // SAFETY: map_sum_lanes wrote every slot of `out`.
        let out = unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) };
        if log {
            let lse = sum.ln() + c;
            out.iter_mut().zip(row).for_each(|(o, &x)| *o = x - lse);
        } else {
            let inv = T::ONE / sum;
            out.iter_mut().for_each(|x| *x *= inv);
        }
    }
}

fn softmax_impl<T: Float>(op: &'static str, x: &Tensor<T>, axis: isize, log: bool) -> Result<Tensor<T>> {
    let ax = x.shape().axis(op, axis)?;
    let (outer, n, inner) = split_at_axis(x.shape(), ax);
    if x.numel() == 0 {
        return Ok(x.clone());
    }
    let rows_of = |src: &[T]| {
        let mut out = Vec::with_capacity(src.len());
        softmax_rows(src, &mut out.spare_capacity_mut()[..src.len()], n, log);
        // SAFETY: softmax_rows writes every element of every row, and the rows cover src.
        unsafe { out.set_len(src.len()) };
        out
    };
    if inner == 1 {
        return Ok(Tensor::from_parts(rows_of(x.as_slice()), x.shape().clone()));
    }
    // the axis is strided: blocks [n, inner] split across threads, or, with fewer blocks
    // than threads, each block's columns
    let (src, block) = (x.as_slice(), n * inner);
    let mut out = Vec::with_capacity(x.numel());
    let dst = crate::parallel::SendPtr(out.spare_capacity_mut().as_mut_ptr());
    let threads = if x.numel() >= crate::kernels::PARALLEL_MIN_ELEMENTS { crate::runtime::num_threads() } else { 1 };
    let bands = if outer >= threads { 1 } else { threads.min(inner.div_ceil(16)) };
    crate::parallel::for_each_task(threads.min(outer * bands), |t| {
        let tasks = threads.min(outer * bands);
        for job in (t * outer * bands / tasks)..((t + 1) * outer * bands / tasks) {
            let (o, b) = (job / bands, job % bands);
            let cols = (inner * b / bands / 16 * 16)..if b + 1 == bands { inner } else { inner * (b + 1) / bands / 16 * 16 };
            // SAFETY: `out` has room for x.numel() elements; job (o, b) writes only block o's
            // columns `cols`, which no other job touches.
            unsafe { softmax_columns(&src[o * block..(o + 1) * block], dst.get().add(o * block), n, inner, cols, log) };
        }
    });
    // SAFETY: the jobs cover every column of every block, and softmax_columns writes every
    // element of its columns.
    unsafe { out.set_len(x.numel()) };
    Ok(Tensor::from_parts(out, x.shape().clone()))
}

/// Softmax (or log-softmax) down the columns `cols` of the row-major `n x inner` block `src`
/// into the block at `dst`: the axis is strided, so the work runs across those columns at
/// once, in three passes along contiguous row pieces that vectorize (the column maxima, the
/// exponentials and their sums, the scaling). Moving the axis last, taking row softmaxes and
/// moving it back (two transposes) took 1.3 ms on 1024x1024 along axis 0; narrow bands of
/// columns meant to stay in L2 between the passes were slower than whole rows (32 columns
/// 763 µs, 256 521 µs, all 1024 357 µs, on one thread).
///
/// # Safety
/// `dst` must be valid for writes of `n·inner` elements, of which this writes columns `cols`.
unsafe fn softmax_columns<T: Float>(src: &[T], dst: *mut MaybeUninit<T>, n: usize, inner: usize, cols: std::ops::Range<usize>, log: bool) {
    let (c0, w) = (cols.start, cols.len());
    if w == 0 {
        return;
    }
    let rows = || src.chunks_exact(inner).map(|r| &r[c0..c0 + w]);
    // SAFETY: row r's columns `cols` lie inside the caller's block and are written by this
    // call only.
    let out_row = |r: usize| unsafe { std::slice::from_raw_parts_mut(dst.add(r * inner + c0), w) };
    let mut m = src[c0..c0 + w].to_vec();
    for r in rows().skip(1) {
        m.iter_mut().zip(r).for_each(|(m, &v)| *m = larger(*m, v));
    }
    // a column of -∞ or +∞ (or NaN) is shifted by 0, as in the row kernel
    m.iter_mut().for_each(|m| *m = if m.is_finite() { *m } else { T::ZERO });
    let mut sum = vec![T::ZERO; w];
    for (i, r) in rows().enumerate() {
        for (((d, &v), &m), s) in out_row(i).iter_mut().zip(r).zip(&m).zip(sum.iter_mut()) {
            *s += *d.write((v - m).fast_exp());
        }
    }
    if log {
        // x − m − ln Σ e^(x − m)
        m.iter_mut().zip(&sum).for_each(|(m, &s)| *m += s.ln());
        for (i, r) in rows().enumerate() {
            out_row(i).iter_mut().zip(r).zip(&m).for_each(|((d, &v), &l)| {
                d.write(v - l);
            });
        }
    } else {
        sum.iter_mut().for_each(|s| *s = T::ONE / *s);
        for i in 0..n {
            // SAFETY: the exponential pass above wrote these slots.
            out_row(i).iter_mut().zip(&sum).for_each(|(d, &inv)| unsafe { *d.assume_init_mut() *= inv });
        }
    }
}

/// `exp(x_i) / Σ_j exp(x_j)` along `axis`, shifted by the max so it never overflows.
///
/// ```
/// use wengert_core::{kernels::softmax::softmax, Tensor};
/// let x = Tensor::new(vec![0.0f64, 2f64.ln(), 1000.0, 1000.0], [2, 2]);
/// let p = softmax(&x, 1).unwrap().to_vec();
/// assert!((p[0] - 1.0 / 3.0).abs() < 1e-15 && (p[1] - 2.0 / 3.0).abs() < 1e-15);
/// assert_eq!(p[2..], [0.5, 0.5]); // 1000 does not overflow
/// assert_eq!(softmax(&x, 0).unwrap().dims(), &[2, 2]); // down the columns
/// assert!(softmax(&x, 2).is_err()); // no axis 2 in a matrix
/// ```
pub fn softmax<T: Float>(x: &Tensor<T>, axis: isize) -> Result<Tensor<T>> {
    softmax_impl("softmax", x, axis, false)
}

/// `x_i - ln Σ_j exp(x_j)` along `axis`, computed stably.
///
/// ```
/// use wengert_core::{kernels::softmax::log_softmax, Tensor};
/// let x = Tensor::new(vec![0.0f64, 0.0, -1000.0, 0.0], [2, 2]);
/// let l = log_softmax(&x, -1).unwrap().to_vec();
/// assert_eq!(l[..2], [-2f64.ln(), -2f64.ln()]);
/// assert_eq!(l[2..], [-1000.0, 0.0]); // exp(−1000) underflows, its log does not
/// assert!(log_softmax(&x, 5).is_err());
/// ```
pub fn log_softmax<T: Float>(x: &Tensor<T>, axis: isize) -> Result<Tensor<T>> {
    softmax_impl("log_softmax", x, axis, true)
}

/// Checks logits `[n, C]` against class indices `[n]` (each below C); returns (n, C).
fn check_class_targets<T: Float>(op: &'static str, x: &Tensor<T>, targets: &Tensor<usize>) -> Result<(usize, usize)> {
    let (s, t) = (x.shape(), targets.shape());
    if s.ndim() != 2 || t.ndim() != 1 || t[0] != s[0] {
        return Err(Error::shapes(op, &[s, t], "logits must be [n, classes] and targets [n]"));
    }
    if let Some(&bad) = targets.as_slice().iter().find(|&&c| c >= s[1]) {
        return Err(Error::invalid(op, format!("target class {bad} is out of range for {} classes (logits {s})", s[1])));
    }
    Ok((s[0], s[1]))
}

/// The larger of two values, as a plain vector max: a NaN in `b` is passed over (a NaN row
/// still reaches its outputs through the sum of exponentials).
#[inline(always)]
fn larger<T: Float>(a: T, b: T) -> T {
    if b > a {
        b
    } else {
        a
    }
}

/// Rows at most this long (a classifier's few classes) are handled [`SHORT_ROW`] at a time,
/// one row per vector lane ([`short_rows_logsumexp`]).
const SHORT_ROW: usize = 16;

/// `(m, ln Σⱼ e^{xⱼ − m})` of one row, m its max (ln Σⱼ e^{xⱼ} is their sum; kept apart so a
/// caller can subtract another logit from m exactly before adding the small part).
fn row_logsumexp<T: Float>(row: &[T]) -> (T, T) {
    use crate::kernels::reduce::{fold_lanes, sum_map_lanes};
    let m = fold_lanes(row, larger);
    if m == T::NEG_INFINITY {
        return (m, T::ZERO); // every e^{xⱼ} is 0
    }
    (m, sum_map_lanes(row, |v| (v - m).fast_exp()).ln())
}

/// [`row_logsumexp`] of up to [`SHORT_ROW`] rows of `c <= SHORT_ROW` elements (`rows`, whole
/// rows), one row per lane: the row maxima, then the sums of exponentials, as vector ops
/// across the rows. Row by row (each row one vector, padded with -∞), each row's max,
/// exponentials, sum and logarithm were a chain of dependent steps the CPU could not overlap
/// with the next row's: the cross-entropy of `[32, 10]` logits took 1.1 µs that way, 0.6 so.
fn short_rows_logsumexp<T: Float>(rows: &[T], c: usize) -> ([T; SHORT_ROW], [T; SHORT_ROW]) {
    let g = rows.len() / c;
    debug_assert!(c <= SHORT_ROW && g <= SHORT_ROW && g * c == rows.len());
    // the rows transposed, column j in cols[j] (lanes past the last row repeat it)
    let mut cols = [[T::ZERO; SHORT_ROW]; SHORT_ROW];
    for (r, row) in (0..SHORT_ROW).map(|r| &rows[r.min(g - 1) * c..][..c]).enumerate() {
        for (col, &v) in cols.iter_mut().zip(row) {
            col[r] = v;
        }
    }
    let mut m = cols[0];
    for v in &cols[1..c] {
        m.iter_mut().zip(v).for_each(|(m, &v)| *m = larger(*m, v));
    }
    let mut sum = [T::ZERO; SHORT_ROW];
    for v in &cols[..c] {
        for r in 0..SHORT_ROW {
            sum[r] += (v[r] - m[r]).fast_exp();
        }
    }
    // a row of -∞: every e^{xⱼ} is 0
    let mut ln_sum = sum;
    for r in 0..SHORT_ROW {
        ln_sum[r] = if m[r] == T::NEG_INFINITY { T::ZERO } else { sum[r].fast_ln() };
    }
    (m, ln_sum)
}

/// Runs `f(first_row, rows, out)` over parts of `out` (`per_row` slots per row of `x`, each
/// row `c` long), split across threads (whole rows each) when `x` is large.
fn for_row_parts<T: Float>(x: &[T], c: usize, out: &mut [MaybeUninit<T>], per_row: usize, f: impl Fn(usize, &[T], &mut [MaybeUninit<T>]) + Sync) {
    let parts = if x.len() >= crate::kernels::PARALLEL_MIN_ELEMENTS { crate::parallel::parts_for(x.len(), crate::kernels::PARALLEL_MIN_ELEMENTS / 4) } else { 1 };
    crate::parallel::for_each_part_mut(out, parts, per_row, |start, o| {
        let first = start / per_row;
        f(first, &x[first * c..(first + o.len() / per_row) * c], o)
    });
}

/// Cross-entropy of each row of logits `[n, C]` at its class index (`targets` `[n]`):
/// `ℓᵢ = ln Σⱼ e^{xᵢⱼ} − xᵢ,yᵢ`, stable for any logits (shifted by the row max). Returns
/// `[n]`. One pass over the logits and no `[n, C]` temporary, against log-softmax, a gather
/// and a negation as three ops.
///
/// ```
/// use wengert_core::{kernels::softmax::cross_entropy_rows, Tensor};
/// let x = Tensor::new(vec![0.0f64, 0.0, 1000.0, 0.0], [2, 2]);
/// let l = cross_entropy_rows(&x, &Tensor::new(vec![1usize, 0], [2])).unwrap().to_vec();
/// assert!((l[0] - 2f64.ln()).abs() < 1e-15 && l[1] == 0.0);
/// ```
pub fn cross_entropy_rows<T: Float>(x: &Tensor<T>, targets: &Tensor<usize>) -> Result<Tensor<T>> {
    Ok(cross_entropy_parts(x, targets)?.0)
}

/// [`cross_entropy_rows`] and, per row, its logsumexp in two parts: the row max `m` and
/// `ln Σⱼ e^{xᵢⱼ − m}`, all `[n]` (what the gradient needs, see
/// [`cross_entropy_rows_backward`]).
///
/// ```
/// use wengert_core::{kernels::softmax::cross_entropy_parts, Tensor};
/// let x = Tensor::new(vec![1.0f64, 1.0, 3.0, 0.0], [2, 2]);
/// let (loss, max, ln_sum) = cross_entropy_parts(&x, &Tensor::new(vec![0usize, 0], [2])).unwrap();
/// assert_eq!(max.to_vec(), [1.0, 3.0]);
/// assert_eq!(ln_sum.to_vec()[0], 2f64.ln()); // ln(e⁰ + e⁰)
/// assert!((loss.to_vec()[1] - (1.0 + (-3f64).exp()).ln()).abs() < 1e-15); // m − x_y + ln_sum
/// assert!(cross_entropy_parts(&x, &Tensor::new(vec![2usize, 0], [2])).is_err()); // class 2 of 2
/// ```
pub fn cross_entropy_parts<T: Float>(x: &Tensor<T>, targets: &Tensor<usize>) -> Result<(Tensor<T>, Tensor<T>, Tensor<T>)> {
    let (n, c) = check_class_targets("cross_entropy_rows", x, targets)?;
    let mut out = Vec::with_capacity(3 * n);
    if n > 0 {
        let ys = targets.as_slice();
        // the large parts cancel first: m − x_y is exact when they are close
        let put = |o: &mut [MaybeUninit<T>], row: &[T], y: usize, m: T, ln_sum: T| {
            o[0].write((m - row[y]) + ln_sum);
            o[1].write(m);
            o[2].write(ln_sum);
        };
        for_row_parts(x.as_slice(), c, &mut out.spare_capacity_mut()[..3 * n], 3, |first, rows, o| {
            if c <= SHORT_ROW {
                let groups = rows.chunks(SHORT_ROW * c).zip(o.chunks_mut(SHORT_ROW * 3));
                for (g, (rows, o)) in groups.enumerate() {
                    let (m, ln_sum) = short_rows_logsumexp(rows, c);
                    let ys = &ys[first + g * SHORT_ROW..];
                    for (r, (row, o)) in rows.chunks_exact(c).zip(o.chunks_exact_mut(3)).enumerate() {
                        put(o, row, ys[r], m[r], ln_sum[r]);
                    }
                }
                return;
            }
            for ((row, &y), o) in rows.chunks_exact(c).zip(&ys[first..]).zip(o.chunks_exact_mut(3)) {
                let (m, ln_sum) = row_logsumexp(row);
                put(o, row, y, m, ln_sum);
            }
        });
    }
    // SAFETY: every slot was written above (n rows, three each).
    unsafe { out.set_len(3 * n) };
    let part = |k: usize| Tensor::from_parts(out.iter().skip(k).step_by(3).copied().collect::<Vec<T>>(), [n].into());
    Ok((part(0), part(1), part(2)))
}

/// The gradient of [`cross_entropy_rows`] for per-row gradients `g` `[n]`:
/// `∂/∂xᵢⱼ = gᵢ·(e^{(xᵢⱼ − mᵢ) − ln_sumᵢ} − [j = yᵢ])`, with the row max `m` and `ln_sum` from
/// [`cross_entropy_parts`] (so the row sums are not taken again, and xᵢⱼ − mᵢ is exact
/// before the small part is subtracted, as in a log-softmax).
///
/// ```
/// use wengert_core::kernels::softmax::{cross_entropy_parts, cross_entropy_rows_backward};
/// use wengert_core::Tensor;
/// let x = Tensor::new(vec![3f64.ln(), 0.0], [1, 2]); // softmax [0.75, 0.25]
/// let y = Tensor::new(vec![0usize], [1]);
/// let (_, max, ln_sum) = cross_entropy_parts(&x, &y).unwrap();
/// let dx = cross_entropy_rows_backward(&x, &y, &max, &ln_sum, &Tensor::from_slice(&[2.0])).unwrap().to_vec();
/// assert!((dx[0] + 0.5).abs() < 1e-6 && (dx[1] - 0.5).abs() < 1e-6); // 2·(softmax − one-hot)
/// assert!(cross_entropy_rows_backward(&x, &y, &max, &ln_sum, &Tensor::from_slice(&[1.0, 1.0])).is_err()); // g must be [n]
/// ```
pub fn cross_entropy_rows_backward<T: Float>(x: &Tensor<T>, targets: &Tensor<usize>, max: &Tensor<T>, ln_sum: &Tensor<T>, g: &Tensor<T>) -> Result<Tensor<T>> {
    let op = "cross_entropy_rows_backward";
    let (n, c) = check_class_targets(op, x, targets)?;
    if max.dims() != [n] || ln_sum.dims() != [n] || g.dims() != [n] {
        return Err(Error::shapes(op, &[x.shape(), max.shape(), ln_sum.shape(), g.shape()], "row maxima, log-sums and gradients must be [n]"));
    }
    let mut out = Vec::with_capacity(n * c);
    if n * c > 0 {
        let (ys, ms, ls, gs) = (targets.as_slice(), max.as_slice(), ln_sum.as_slice(), g.as_slice());
        for_row_parts(x.as_slice(), c, &mut out.spare_capacity_mut()[..n * c], c, |first, rows, o| {
            for (i, (row, o)) in rows.chunks_exact(c).zip(o.chunks_exact_mut(c)).enumerate() {
                let (y, m, l, gi) = (ys[first + i], ms[first + i], ls[first + i], gs[first + i]);
                o.iter_mut().zip(row).for_each(|(o, &v)| {
                    o.write(gi * ((v - m) - l).fast_exp());
                });
                // SAFETY: the slot was written just above.
                unsafe { *o[y].assume_init_mut() -= gi };
            }
        });
    }
    // SAFETY: every slot was written above (n rows of c).
    unsafe { out.set_len(n * c) };
    Ok(Tensor::from_parts(out, [n, c].into()))
}

impl<T: Float> Tensor<T> {
    /// Softmax along `axis`.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let p = Tensor::new(vec![1000.0f64, 1000.0], [1, 2]).softmax(-1);
    /// assert_eq!(p.to_vec(), vec![0.5, 0.5]);
    /// ```
    #[track_caller]
    pub fn softmax(&self, axis: isize) -> Tensor<T> {
        softmax(self, axis).or_panic()
    }

    /// Log-softmax along `axis`.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let l = Tensor::new(vec![0.0f64, 0.0, 0.0, 0.0], [1, 4]).log_softmax(-1);
    /// assert_eq!(l.to_vec(), vec![-4f64.ln(); 4]);
    /// assert!((l.map(f64::exp).sum().item() - 1.0).abs() < 1e-15);
    /// ```
    #[track_caller]
    pub fn log_softmax(&self, axis: isize) -> Tensor<T> {
        log_softmax(self, axis).or_panic()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_on_any_axis() {
        let x = Tensor::<f64>::from_fn([2, 3, 4], |i| (i[0] as f64) - (i[1] * i[2]) as f64 * 0.7);
        for ax in 0..3 {
            let s = x.softmax(ax).sum_axes(&[ax], false);
            assert!(s.allclose(&Tensor::ones(s.shape().clone()), 1e-12, 1e-12));
            let l = x.log_softmax(ax).exp();
            assert!(l.allclose(&x.softmax(ax), 1e-12, 1e-12));
        }
        let v = Tensor::new(vec![1.0f64, 2.0, 3.0], [3]).softmax(0).to_vec();
        let z = 1f64.exp() + 2f64.exp() + 3f64.exp();
        assert!((v[2] - 3f64.exp() / z).abs() < 1e-15);
    }

    /// Along a strided axis (the column kernel, several bands of columns), softmax and
    /// log-softmax match the row kernel run in f64 on the tensor with that axis moved last,
    /// with large values, a column of -∞ next to finite ones, and a NaN that poisons only
    /// its own column.
    #[test]
    fn strided_axes_match_rows_of_the_moved_tensor() {
        let x = Tensor::<f32>::from_fn([3, 300, 130], |i| match (i[0], i[1], i[2]) {
            (_, _, 7) => f32::NEG_INFINITY,
            (1, 5, 9) => f32::NAN,
            (a, b, c) => ((a * 31 + b * 7 + c * 3) % 23) as f32 * 0.9 + if c == 11 { 300.0 } else { 0.0 },
        });
        for ax in [0usize, 1] {
            let mut perm = vec![0, 1, 2];
            perm.swap(ax, 2);
            let moved = x.to_dtype::<f64>().permute(&perm);
            for log in [false, true] {
                let got = if log { x.log_softmax(ax as isize) } else { x.softmax(ax as isize) };
                let want = if log { moved.log_softmax(-1) } else { moved.softmax(-1) }.permute(&perm);
                for (i, (&g, &w)) in got.as_slice().iter().zip(want.as_slice()).enumerate() {
                    // f32 rounding of the inputs' size (a log-softmax subtracts ~300 from ~300)
                    let scale = w.abs().max(x.as_slice()[i].abs() as f64).max(1.0);
                    let g = g as f64;
                    let ok = if w.is_nan() { g.is_nan() } else if w.is_infinite() { g == w } else { (g - w).abs() <= 1e-6 * scale };
                    assert!(ok, "axis {ax} log {log} at {i}: {g} against {w}");
                }
            }
        }
    }

    /// The fused cross-entropy equals -log_softmax at the target, for short rows (one padded
    /// block) and long ones, huge and -∞ logits included; its gradient is softmax − onehot;
    /// bad shapes and classes are errors that name them.
    #[test]
    fn cross_entropy_rows_match_log_softmax() {
        for c in [1, 3, 10, 16, 17, 40] {
            let x = Tensor::<f32>::from_fn([5, c], |i| match (i[0], i[1] % 4) {
                (0, _) => (i[1] as f32 * 0.7).sin() * 3.0,
                (1, 0) => 1e4,
                (2, 1) => f32::NEG_INFINITY,
                _ => i[1] as f32 * 0.1 - i[0] as f32,
            });
            let ys = Tensor::new((0..5).map(|r| (r * 7) % c).collect(), [5]);
            let ys = if c > 1 { ys.map(|y| if x.get(&[2, y]) == f32::NEG_INFINITY { (y + 1) % c } else { y }) } else { ys };
            let got = cross_entropy_rows(&x, &ys).unwrap();
            let logp = x.log_softmax(-1);
            for r in 0..5 {
                let want = -logp.get(&[r, ys.as_slice()[r]]);
                assert!((got.get(&[r]) - want).abs() <= 1e-5 * want.abs().max(1.0), "c {c} row {r}: {} vs {want}", got.get(&[r]));
            }
            let g = Tensor::from_fn([5], |i| 0.5 + i[0] as f32);
            let (_, m, l) = cross_entropy_parts(&x, &ys).unwrap();
            let dx = cross_entropy_rows_backward(&x, &ys, &m, &l, &g).unwrap();
            let p = x.softmax(-1);
            for r in 0..5 {
                for j in 0..c {
                    let onehot = if ys.as_slice()[r] == j { 1.0 } else { 0.0 };
                    let want = g.get(&[r]) * (p.get(&[r, j]) - onehot);
                    assert!((dx.get(&[r, j]) - want).abs() <= 1e-5, "c {c} ({r}, {j}): {} vs {want}", dx.get(&[r, j]));
                }
            }
        }
        // large enough to split rows across threads (forward, backward and softmax alike)
        let (n, c) = (700, 120);
        let x = Tensor::<f64>::from_fn([n, c], |i| ((i[0] * 31 + i[1] * 17) % 23) as f64 * 0.4 - 4.0);
        let ys = Tensor::new((0..n).map(|r| (r * 13) % c).collect(), [n]);
        let (loss, m, l) = cross_entropy_parts(&x, &ys).unwrap();
        let logp = x.log_softmax(-1);
        let p = x.softmax(-1);
        let want_p = Tensor::from_fn([n, c], |i| {
            let row: Vec<f64> = (0..c).map(|j| x.get(&[i[0], j])).collect();
            let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            (x.get(i) - mx).exp() / row.iter().map(|v| (v - mx).exp()).sum::<f64>()
        });
        assert!(p.allclose(&want_p, 1e-12, 1e-12));
        let dx = cross_entropy_rows_backward(&x, &ys, &m, &l, &Tensor::ones([n])).unwrap();
        for r in 0..n {
            let y = ys.as_slice()[r];
            assert!((loss.get(&[r]) + logp.get(&[r, y])).abs() < 1e-12, "row {r}");
            for j in [0, y, c - 1] {
                let want = p.get(&[r, j]) - if j == y { 1.0 } else { 0.0 };
                assert!((dx.get(&[r, j]) - want).abs() < 1e-12, "row {r} col {j}");
            }
        }

        let x = Tensor::<f32>::zeros([2, 3]);
        let err = cross_entropy_rows(&x, &Tensor::new(vec![0usize, 3], [2])).unwrap_err().to_string();
        assert!(err.contains("cross_entropy_rows") && err.contains("class 3") && err.contains("3 classes"), "{err}");
        let err = cross_entropy_rows(&x, &Tensor::new(vec![0usize], [1])).unwrap_err().to_string();
        assert!(err.contains("cross_entropy_rows") && err.contains("[2, 3]") && err.contains("[1]"), "{err}");
        assert_eq!(cross_entropy_rows(&Tensor::<f32>::zeros([0, 3]), &Tensor::new(vec![], [0])).unwrap().dims(), &[0]);
    }

    /// Rows of at most 16 classes go 16 rows at a time, one per lane: whole groups and a
    /// partial last one agree with the row-by-row path, a row of -∞ has max -∞ and log-sum
    /// 0, and a NaN stays in its own row.
    #[test]
    fn short_rows_in_groups_match_row_by_row() {
        for c in [1, 7, 10, 16] {
            let n = 37;
            let x = Tensor::<f64>::from_fn([n, c], |i| match i[0] {
                20 => f64::NEG_INFINITY,
                33 if i[1] == c / 2 => f64::NAN,
                r => ((r * 31 + i[1] * 17) % 23) as f64 * 0.9 - 10.0,
            });
            let ys = Tensor::new((0..n).map(|r| (r * 7) % c).collect(), [n]);
            let (loss, m, l) = cross_entropy_parts(&x, &ys).unwrap();
            for r in 0..n {
                let row: Vec<f64> = (0..c).map(|j| x.get(&[r, j])).collect();
                let (want_m, want_l) = row_logsumexp(&row);
                let want_loss = (want_m - row[ys.as_slice()[r]]) + want_l;
                let got = [loss.get(&[r]), m.get(&[r]), l.get(&[r])];
                match r {
                    20 => assert!(got[0].is_nan() && got[1] == f64::NEG_INFINITY && got[2] == 0.0, "c {c}: {got:?}"),
                    33 => assert!(got[0].is_nan(), "c {c}: {got:?}"),
                    _ => {
                        let want = [want_loss, want_m, want_l];
                        assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12), "c {c} row {r}: {got:?} vs {want:?}");
                    }
                }
            }
        }
    }

    /// The shift is the max of a row's first 64 elements; rows whose later elements lie far
    /// above it (up to overflow), hold NaN or -∞, or start with -∞ take the true max, and
    /// every row matches softmax computed in f64 with the true max.
    #[test]
    fn later_maxima_infinities_and_nan() {
        let n = 200;
        let rows: Vec<Vec<f32>> = vec![
            (0..n).map(|i| (i % 7) as f32 * 0.5).collect(),
            (0..n).map(|i| if i == 150 { 39.0 } else { (i % 5) as f32 * 0.1 }).collect(),
            (0..n).map(|i| if i == 150 { 45.0 } else { 0.0 }).collect(),
            (0..n).map(|i| if i == 199 { 500.0 } else if i == 3 { 499.0 } else { -(i as f32) }).collect(),
            (0..n).map(|i| if i < 64 { f32::NEG_INFINITY } else { (i % 3) as f32 }).collect(),
            (0..n).map(|i| if i % 2 == 0 { f32::NEG_INFINITY } else { 1.0 }).collect(),
        ];
        let flat: Vec<f32> = rows.concat();
        let x = Tensor::new(flat, [rows.len(), n]);
        for log in [false, true] {
            let got = if log { x.log_softmax(-1) } else { x.softmax(-1) };
            for (r, row) in rows.iter().enumerate() {
                let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
                let lse = row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln() + m;
                for (j, &v) in row.iter().enumerate() {
                    let want = if log { v as f64 - lse } else { (v as f64 - lse).exp() };
                    let g = got.get(&[r, j]) as f64;
                    let ok = if want.is_infinite() { g == want } else { (g - want).abs() <= 1e-6 * want.abs().max((v as f64).abs()).max(1.0) };
                    assert!(ok, "row {r} col {j} log {log}: got {g}, want {want}");
                }
            }
        }
        let nan_row = Tensor::new((0..n).map(|i| if i == 100 { f32::NAN } else { 0.0 }).collect(), [1, n]);
        assert!(nan_row.softmax(-1).as_slice().iter().all(|v| v.is_nan()));
        assert!(nan_row.log_softmax(-1).as_slice().iter().all(|v| v.is_nan()));
    }
}
