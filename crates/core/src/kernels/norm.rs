//! Layer normalisation of rows: each row of `len` elements (the trailing `len` of a tensor)
//! becomes `y = (x − μ)·r·γ + β` with μ the row's mean, σ² its biased variance and
//! `r = 1/√(σ² + ε)`, γ and β (optional) of `len` elements. The forward keeps μ and r per
//! row for the backward, which takes each row in one pass:
//!
//! `x̂ = (x − μ)·r`, `d = g·γ`: `dx = r·(d − mean(d) − x̂·mean(d·x̂))`, `dγ = Σ_rows g·x̂`,
//! `dβ = Σ_rows g`.
//!
//! Rows are split across threads; each row is normalised while it is in L1 (the composed
//! form, mean, subtract, square, mean, add, sqrt, divide, scale, shift, made one pass over
//! memory per op each way).

use crate::element::Float;
use crate::error::{Error, Result};
use crate::kernels::reduce::{sum_lanes, sum_map_lanes};
use crate::parallel::{for_each_task, parts_for, SendPtr};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Independent accumulators per pass, so the sums vectorize.
const LANES: usize = 16;
/// Rows are split across threads from this many elements up.
const PARALLEL_MIN: usize = 1 << 15;

/// (Σ a, Σ a·b) over two equally long rows.
#[inline]
fn sum_and_dot<T: Float>(a: &[T], b: &[T]) -> (T, T) {
    let (mut s, mut d) = ([T::ZERO; LANES], [T::ZERO; LANES]);
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (mut st, mut dt) = (T::ZERO, T::ZERO);
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        st += x;
        dt += x * y;
    }
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            s[i] += x[i];
            d[i] = x[i].mul_add_fast(y[i], d[i]);
        }
    }
    (s.iter().fold(st, |a, &v| a + v), d.iter().fold(dt, |a, &v| a + v))
}

/// The rows of `x` that `len` trailing elements make, checking that `len` is a whole number
/// of trailing dims and that γ, β hold `len` elements.
fn rows_of<T: Float>(x: &Tensor<T>, len: usize, weight: Option<&Tensor<T>>, bias: Option<&Tensor<T>>) -> Result<usize> {
    let dims = x.dims();
    let mut trailing = 1;
    let whole = len > 0 && dims.iter().rev().any(|&d| {
        trailing *= d;
        trailing == len
    });
    let param_shapes: Vec<&Shape> = weight.iter().chain(bias.iter()).map(|p| p.shape()).collect();
    let mut all = vec![x.shape()];
    all.extend(param_shapes.iter().copied());
    let scalar = len == 1 && dims.is_empty();
    if !(whole || scalar) {
        return Err(Error::shapes("layer_norm", &all, format!("{len} elements are not a whole number of trailing dims")));
    }
    if param_shapes.iter().any(|s| s.numel() != len) {
        return Err(Error::shapes("layer_norm", &all, format!("weight and bias must hold the {len} normalised elements")));
    }
    Ok(x.numel() / len)
}

/// Layer normalisation of the rows of `len` trailing elements of `x` (see the module docs):
/// returns `y` (the shape of `x`) and each row's mean μ and `r = 1/√(σ² + ε)` (`[rows]`).
///
/// ```
/// use wengert_core::{kernels::norm::layer_norm, Tensor};
/// let x = Tensor::new(vec![1.0f64, 3.0, 2.0, 6.0], [2, 2]);
/// let (y, mean, r) = layer_norm(&x, 2, None, None, 0.0).unwrap();
/// assert_eq!(y.to_vec(), vec![-1.0, 1.0, -1.0, 1.0]); // (x − 2)/1 and (x − 4)/2
/// assert_eq!(mean.to_vec(), vec![2.0, 4.0]);
/// assert_eq!(r.to_vec(), vec![1.0, 0.5]);
/// let w = Tensor::from_slice(&[2.0, 1.0]);
/// let b = Tensor::from_slice(&[0.5, 0.5]);
/// assert_eq!(layer_norm(&x, 2, Some(&w), Some(&b), 0.0).unwrap().0.to_vec()[..2], [-1.5, 1.5]);
/// assert!(layer_norm(&x, 3, None, None, 1e-5).is_err()); // 3 is not a trailing block of [2, 2]
/// ```
pub fn layer_norm<T: Float>(x: &Tensor<T>, len: usize, weight: Option<&Tensor<T>>, bias: Option<&Tensor<T>>, eps: f64) -> Result<(Tensor<T>, Tensor<T>, Tensor<T>)> {
    let rows = rows_of(x, len, weight, bias)?;
    let (xs, w, b) = (x.as_slice(), weight.map(|t| t.as_slice()), bias.map(|t| t.as_slice()));
    let mut y: Vec<T> = Vec::with_capacity(rows * len);
    let (mut mean, mut r): (Vec<T>, Vec<T>) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    let (py, pm, pr) = (SendPtr(y.as_mut_ptr()), SendPtr(mean.as_mut_ptr()), SendPtr(r.as_mut_ptr()));
    let (n, eps) = (T::from_f64(len as f64), T::from_f64(eps));
    let parts = parts_for(rows * len, PARALLEL_MIN).min(rows.max(1));
    for_each_task(parts, |part| {
        for row in rows * part / parts..rows * (part + 1) / parts {
            let src = &xs[row * len..(row + 1) * len];
            // SAFETY: row `row` of y and its mean and r belong to this task alone, inside the
            // capacity reserved above.
            let dst = unsafe { std::slice::from_raw_parts_mut(py.get().add(row * len), len) };
            let mean = sum_lanes(src) / n;
            let r = T::ONE / (sum_map_lanes(src, |v| (v - mean) * (v - mean)) / n + eps).sqrt();
            match (w, b) {
                (Some(w), Some(b)) => dst.iter_mut().zip(src).zip(w.iter().zip(b)).for_each(|((d, &v), (&w, &b))| *d = ((v - mean) * r).mul_add_fast(w, b)),
                (Some(w), None) => dst.iter_mut().zip(src).zip(w).for_each(|((d, &v), &w)| *d = (v - mean) * r * w),
                (None, Some(b)) => dst.iter_mut().zip(src).zip(b).for_each(|((d, &v), &b)| *d = (v - mean) * r + b),
                (None, None) => dst.iter_mut().zip(src).for_each(|(d, &v)| *d = (v - mean) * r),
            }
            // SAFETY: as above.
            unsafe {
                *pm.get().add(row) = mean;
                *pr.get().add(row) = r;
            }
        }
    });
    // SAFETY: the tasks wrote every row of y and every row's mean and r.
    unsafe {
        y.set_len(rows * len);
        mean.set_len(rows);
        r.set_len(rows);
    }
    Ok((Tensor::from_parts(y, x.shape().clone()), Tensor::new(mean, [rows]), Tensor::new(r, [rows])))
}

/// The gradients of [`layer_norm`] from the output's gradient `g`, the input `x` and the
/// forward's `mean` and `r`: `dx` (the shape of `x`), and `dγ`, `dβ` (`[len]`) summed over
/// the rows (the module docs give the formulas).
///
/// ```
/// use wengert_core::{kernels::norm::{layer_norm, layer_norm_backward}, Tensor};
/// let x = Tensor::new(vec![1.0f64, 3.0], [1, 2]);
/// let (_, mean, r) = layer_norm(&x, 2, None, None, 0.0).unwrap();
/// // y = [-1, 1] whatever the scale of x, so a gradient along y's direction gives dx = 0
/// let (dx, dw, db) = layer_norm_backward(&Tensor::new(vec![-1.0, 1.0], [1, 2]), &x, &mean, &r, None, 2);
/// assert_eq!(dx.to_vec(), vec![0.0, 0.0]);
/// assert_eq!((dw.to_vec(), db.to_vec()), (vec![1.0, 1.0], vec![-1.0, 1.0]));
/// ```
pub fn layer_norm_backward<T: Float>(g: &Tensor<T>, x: &Tensor<T>, mean: &Tensor<T>, r: &Tensor<T>, weight: Option<&Tensor<T>>, len: usize) -> (Tensor<T>, Tensor<T>, Tensor<T>) {
    let rows = mean.numel();
    assert!(
        g.shape() == x.shape() && rows * len == x.numel() && r.numel() == rows,
        "wengert: layer_norm backward: gradient {}, input {}, mean {} and r {} do not fit rows of {len}",
        g.shape(),
        x.shape(),
        mean.shape(),
        r.shape()
    );
    let (gs, xs, ms, rs, w) = (g.as_slice(), x.as_slice(), mean.as_slice(), r.as_slice(), weight.map(|t| t.as_slice()));
    let mut dx: Vec<T> = Vec::with_capacity(rows * len);
    let parts = parts_for(rows * len, PARALLEL_MIN).min(rows.max(1));
    // per task: Σ g·x̂ then Σ g, `len` each
    let mut partial = vec![T::ZERO; parts * 2 * len];
    let (pdx, pp) = (SendPtr(dx.as_mut_ptr()), SendPtr(partial.as_mut_ptr()));
    let n = T::from_f64(len as f64);
    for_each_task(parts, |part| {
        let mut xhat = vec![T::ZERO; len];
        let mut gw = if w.is_some() { vec![T::ZERO; len] } else { Vec::new() };
        // SAFETY: this task's partial sums are its own 2·len elements of `partial`.
        let (dw, db) = unsafe { std::slice::from_raw_parts_mut(pp.get().add(part * 2 * len), 2 * len).split_at_mut(len) };
        for row in rows * part / parts..rows * (part + 1) / parts {
            let (src, gr) = (&xs[row * len..(row + 1) * len], &gs[row * len..(row + 1) * len]);
            let (mu, rr) = (ms[row], rs[row]);
            xhat.iter_mut().zip(src).for_each(|(h, &v)| *h = (v - mu) * rr);
            // d = g·γ (g itself without γ)
            let d: &[T] = match w {
                Some(w) => {
                    gw.iter_mut().zip(gr).zip(w).for_each(|((d, &g), &w)| *d = g * w);
                    &gw
                }
                None => gr,
            };
            let (sd, sdx) = sum_and_dot(d, &xhat);
            let (md, mdx) = (sd / n, sdx / n);
            // SAFETY: row `row` of dx belongs to this task alone, inside the capacity.
            let out = unsafe { std::slice::from_raw_parts_mut(pdx.get().add(row * len), len) };
            out.iter_mut().zip(d.iter().zip(&xhat)).for_each(|(o, (&d, &h))| *o = rr * (d - md - h * mdx));
            dw.iter_mut().zip(gr.iter().zip(&xhat)).for_each(|(a, (&g, &h))| *a = g.mul_add_fast(h, *a));
            db.iter_mut().zip(gr).for_each(|(a, &g)| *a += g);
        }
    });
    // SAFETY: the tasks wrote every row of dx.
    unsafe { dx.set_len(rows * len) };
    let (mut dw, mut db) = (vec![T::ZERO; len], vec![T::ZERO; len]);
    for p in partial.chunks_exact(2 * len) {
        dw.iter_mut().zip(&p[..len]).for_each(|(a, &v)| *a += v);
        db.iter_mut().zip(&p[len..]).for_each(|(a, &v)| *a += v);
    }
    (Tensor::from_parts(dx, x.shape().clone()), Tensor::new(dw, [len]), Tensor::new(db, [len]))
}
