//! Numerically stable softmax and log-softmax along one axis.

use crate::element::Float;
use crate::error::{OrPanic, Result};
use crate::kernels::split_at_axis;
use crate::tensor::Tensor;
use std::mem::MaybeUninit;

/// Softmax (or log-softmax) of the contiguous rows of `src` (each `n` long) into `dst`:
/// `dst_i = exp(x_i - max) / Σ_j exp(x_j - max)`, rows split across the thread pool for
/// large inputs.
fn softmax_rows<T: Float>(src: &[T], dst: &mut [MaybeUninit<T>], n: usize, log: bool) {
    if src.len() >= crate::kernels::PARALLEL_MIN_ELEMENTS && src.len() > n {
        let parts = crate::parallel::parts_for(src.len(), crate::kernels::PARALLEL_MIN_ELEMENTS / 4);
        crate::parallel::for_each_part_mut(dst, parts, n, |start, d| {
            softmax_rows_seq(&src[start..start + d.len()], d, n, log)
        });
    } else {
        softmax_rows_seq(src, dst, n, log);
    }
}

/// Three passes per row, the last two over the row while it sits in L1: the max, then
/// `e_i = exp(x_i - max)` written out and summed in the same pass, then the scale (or, for
/// log-softmax, the shift by the log of the sum). The max ignores NaN (a plain vector max):
/// a NaN in the row still makes the sum and so every output NaN, as it should.
fn softmax_rows_seq<T: Float>(src: &[T], dst: &mut [MaybeUninit<T>], n: usize, log: bool) {
    use crate::kernels::reduce::{fold_lanes, map_sum_lanes, sum_map_lanes};
    for (row, out) in src.chunks_exact(n).zip(dst.chunks_exact_mut(n)) {
        let m = fold_lanes(row, |a, b| if b > a { b } else { a });
        let m = if m.is_finite() { m } else { T::ZERO };
        if log {
            let lse = sum_map_lanes(row, |x| (x - m).fast_exp()).ln() + m;
            out.iter_mut().zip(row).for_each(|(o, &x)| {
                o.write(x - lse);
            });
        } else {
            let inv = T::ONE / map_sum_lanes(row, out, |x| (x - m).fast_exp());
            // SAFETY: map_sum_lanes wrote every slot of `out`.
            let out = unsafe { &mut *(out as *mut [MaybeUninit<T>] as *mut [T]) };
            out.iter_mut().for_each(|x| *x *= inv);
        }
    }
}

fn softmax_impl<T: Float>(op: &'static str, x: &Tensor<T>, axis: isize, log: bool) -> Result<Tensor<T>> {
    let ax = x.shape().axis(op, axis)?;
    let (_, n, inner) = split_at_axis(x.shape(), ax);
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
    // Move the axis last, work on rows, move it back.
    let last = x.ndim() - 1;
    let mut perm: Vec<usize> = (0..x.ndim()).collect();
    perm.swap(ax, last);
    let moved = x.permute(&perm);
    let shape: Vec<usize> = perm.iter().map(|&p| x.dims()[p]).collect();
    Ok(Tensor::new(rows_of(moved.as_slice()), shape).permute(&perm))
}

/// `exp(x_i) / Σ_j exp(x_j)` along `axis`, shifted by the max so it never overflows.
pub fn softmax<T: Float>(x: &Tensor<T>, axis: isize) -> Result<Tensor<T>> {
    softmax_impl("softmax", x, axis, false)
}

/// `x_i - ln Σ_j exp(x_j)` along `axis`, computed stably.
pub fn log_softmax<T: Float>(x: &Tensor<T>, axis: isize) -> Result<Tensor<T>> {
    softmax_impl("log_softmax", x, axis, true)
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
}
