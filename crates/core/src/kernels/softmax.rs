//! Numerically stable softmax and log-softmax along one axis.

use crate::element::Float;
use crate::error::{OrPanic, Result};
use crate::kernels::split_at_axis;
use crate::tensor::Tensor;

/// Softmax of contiguous rows in place: `x_i <- exp(x_i - max) / Σ exp(x_j - max)`, rows
/// split across the thread pool for large inputs.
fn softmax_rows<T: Float>(v: &mut [T], n: usize, log: bool) {
    if v.len() >= crate::kernels::PARALLEL_MIN_ELEMENTS && v.len() > n {
        use rayon::prelude::*;
        let pool = crate::runtime::thread_pool();
        let rows = v.len() / n;
        let per_task = rows.div_ceil(pool.current_num_threads() * 2).max(1);
        pool.install(|| v.par_chunks_mut(per_task * n).for_each(|part| softmax_rows_seq(part, n, log)));
    } else {
        softmax_rows_seq(v, n, log);
    }
}

fn softmax_rows_seq<T: Float>(v: &mut [T], n: usize, log: bool) {
    for row in v.chunks_exact_mut(n) {
        #[allow(clippy::eq_op)]
        let m = crate::kernels::reduce::fold_lanes(row, |a, b| if b > a || b != b { b } else { a });
        let m = if m.is_finite() { m } else { T::ZERO };
        if log {
            let lse = crate::kernels::reduce::sum_map_lanes(row, |x| (x - m).fast_exp()).ln() + m;
            row.iter_mut().for_each(|x| *x -= lse);
        } else {
            row.iter_mut().for_each(|x| *x = (*x - m).fast_exp());
            let inv = T::ONE / crate::kernels::reduce::sum_slice(row);
            row.iter_mut().for_each(|x| *x *= inv);
        }
    }
}

fn softmax_impl<T: Float>(op: &'static str, x: &Tensor<T>, axis: isize, log: bool) -> Result<Tensor<T>> {
    let ax = x.shape().axis(op, axis)?;
    let (_, n, inner) = split_at_axis(x.shape(), ax);
    if x.numel() == 0 {
        return Ok(x.clone());
    }
    if inner == 1 {
        let mut v = x.to_vec();
        softmax_rows(&mut v, n, log);
        return Ok(Tensor::from_parts(v, x.shape().clone()));
    }
    // Move the axis last, work on rows, move it back.
    let last = x.ndim() - 1;
    let mut perm: Vec<usize> = (0..x.ndim()).collect();
    perm.swap(ax, last);
    let mut v = x.permute(&perm).into_vec();
    softmax_rows(&mut v, n, log);
    let shape: Vec<usize> = perm.iter().map(|&p| x.dims()[p]).collect();
    Ok(Tensor::new(v, shape).permute(&perm))
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
