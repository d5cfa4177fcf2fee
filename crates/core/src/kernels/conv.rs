//! im2col (`unfold2d`) and col2im (`fold2d`): the two data-movement kernels behind
//! convolution, transposed convolution and pooling. Each is the other's adjoint, so the tape
//! differentiates every conv and pool op built on them (to any order) with no extra rules.
//!
//! Layout (PyTorch's `F.unfold`): an input `[N, C, H, W]` becomes columns
//! `[N, C·kh·kw, OH·OW]` where row `(c, i, j)` holds, for each output position `(oh, ow)`,
//! the input at `(oh·sh + i·dh - ph, ow·sw + j·dw - pw)` (or the pad value outside).

use crate::element::{Element, Float};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Kernel size, stride, padding and dilation of a 2-D window, as (height, width) pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window2d {
    /// (kh, kw)
    pub kernel: (usize, usize),
    /// (sh, sw), at least 1
    pub stride: (usize, usize),
    /// zeros (or the pad value) added on both sides: (ph, pw)
    pub padding: (usize, usize),
    /// spacing between kernel taps: (dh, dw), at least 1
    pub dilation: (usize, usize),
}

impl Window2d {
    /// A `kh x kw` window with stride 1, no padding, no dilation.
    ///
    /// ```
    /// use wengert_core::Window2d;
    /// let win = Window2d::new((3, 3));
    /// assert_eq!((win.stride, win.padding, win.dilation), ((1, 1), (0, 0), (1, 1)));
    /// assert_eq!(win.output_size("demo", 5, 5).unwrap(), (3, 3));
    /// ```
    pub fn new(kernel: (usize, usize)) -> Self {
        Window2d { kernel, stride: (1, 1), padding: (0, 0), dilation: (1, 1) }
    }

    /// Output size along one axis: ⌊(n + 2p - d(k-1) - 1) / s⌋ + 1, or `None` if the window
    /// does not fit.
    fn out_len(n: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
        let span = d * (k - 1) + 1;
        (n + 2 * p >= span).then(|| (n + 2 * p - span) / s + 1)
    }

    /// `Err` unless kernel, stride and dilation are all at least 1.
    ///
    /// ```
    /// use wengert_core::Window2d;
    /// assert!(Window2d::new((3, 3)).validate("demo").is_ok());
    /// assert!(Window2d { stride: (0, 1), ..Window2d::new((3, 3)) }.validate("demo").is_err());
    /// ```
    pub fn validate(&self, op: &'static str) -> Result<()> {
        let (kh, kw) = self.kernel;
        if kh == 0 || kw == 0 || self.stride.0 == 0 || self.stride.1 == 0 || self.dilation.0 == 0 || self.dilation.1 == 0 {
            return Err(Error::invalid(op, format!("kernel, stride and dilation must be at least 1, got {self:?}")));
        }
        Ok(())
    }

    /// (OH, OW) for an input of spatial size (H, W).
    ///
    /// ```
    /// use wengert_core::Window2d;
    /// let win = Window2d { stride: (2, 2), padding: (1, 1), ..Window2d::new((3, 3)) };
    /// assert_eq!(win.output_size("demo", 5, 5).unwrap(), (3, 3)); // (5 + 2 - 3) / 2 + 1
    /// assert!(Window2d::new((3, 3)).output_size("demo", 2, 2).is_err()); // does not fit
    /// ```
    pub fn output_size(&self, op: &'static str, h: usize, w: usize) -> Result<(usize, usize)> {
        self.validate(op)?;
        let (kh, kw) = self.kernel;
        let oh = Self::out_len(h, kh, self.stride.0, self.padding.0, self.dilation.0);
        let ow = Self::out_len(w, kw, self.stride.1, self.padding.1, self.dilation.1);
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok((oh, ow)),
            _ => Err(Error::invalid(
                op,
                format!("a {kh}x{kw} window (dilation {:?}, padding {:?}) does not fit an input of {h}x{w}", self.dilation, self.padding),
            )),
        }
    }

    /// For output column `o` along one axis and kernel tap `t`: the input index, if inside.
    /// Returns the range of outputs whose input index lies in `0..n`, and the input index of
    /// output 0 (possibly negative).
    fn valid_range(n: usize, out: usize, tap: usize, s: usize, p: usize, d: usize) -> (usize, usize, isize) {
        let base = (tap * d) as isize - p as isize;
        // o·s + base >= 0  and  o·s + base < n
        let lo = if base >= 0 { 0 } else { ((-base) as usize).div_ceil(s) };
        let hi = if (n as isize) <= base { 0 } else { ((n as isize - base) as usize).div_ceil(s) };
        (lo.min(out), hi.min(out).max(lo.min(out)), base)
    }
}

/// A run of window positions that read one input line: columns row `row` (kernel tap
/// `i·kw + j`), entries `col..col + len` of that row, read from the input plane at `input`,
/// `input + sw`, ... (every plane of every sample has the same runs, so they are worked out
/// once per call).
struct Segment {
    row: usize,
    col: usize,
    input: usize,
    len: usize,
}

/// The runs of [`Segment`]s an unfold/fold with this window, input size and grid moves.
fn segments(win: &Window2d, (h, w): (usize, usize), (oh, ow): (usize, usize)) -> Vec<Segment> {
    let (kh, kw) = win.kernel;
    let (sh, sw) = win.stride;
    let mut out = Vec::new();
    for i in 0..kh {
        let (y_lo, y_hi, y0) = Window2d::valid_range(h, oh, i, sh, win.padding.0, win.dilation.0);
        for j in 0..kw {
            let (x_lo, x_hi, x0) = Window2d::valid_range(w, ow, j, sw, win.padding.1, win.dilation.1);
            if x_lo >= x_hi {
                continue;
            }
            for oy in y_lo..y_hi {
                let iy = ((oy * sh) as isize + y0) as usize;
                let first = ((x_lo * sw) as isize + x0) as usize;
                out.push(Segment { row: i * kw + j, col: oy * ow + x_lo, input: iy * w + first, len: x_hi - x_lo });
            }
        }
    }
    out
}

fn check_4d<E: Element>(op: &'static str, x: &Tensor<E>) -> Result<(usize, usize, usize, usize)> {
    match *x.dims() {
        [n, c, h, w] => Ok((n, c, h, w)),
        _ => Err(Error::invalid(op, format!("expected a 4-D input [N, C, H, W], got shape {}", x.shape()))),
    }
}

/// im2col: `[N, C, H, W]` -> `[N, C·kh·kw, OH·OW]`, positions outside the input read `pad`.
///
/// ```
/// use wengert_core::{kernels::conv::unfold2d, Tensor, Window2d};
/// let x = Tensor::<f64>::new(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [1, 1, 2, 3]);
/// let cols = unfold2d(&x, &Window2d::new((2, 2)), 0.0).unwrap();
/// assert_eq!(cols.dims(), &[1, 4, 2]); // taps (0,0) (0,1) (1,0) (1,1), 2 positions
/// assert_eq!(cols.to_vec(), [0.0, 1.0, 1.0, 2.0, 3.0, 4.0, 4.0, 5.0]);
/// assert!(unfold2d(&Tensor::<f64>::zeros([2, 3]), &Window2d::new((1, 1)), 0.0).is_err());
/// ```
pub fn unfold2d<T: Float>(x: &Tensor<T>, win: &Window2d, pad: T) -> Result<Tensor<T>> {
    let (_, _, h, w) = check_4d("unfold2d", x)?;
    let grid = win.output_size("unfold2d", h, w)?;
    unfold2d_grid(x, win, pad, grid)
}

/// [`unfold2d`] over an explicit grid of `(OH, OW)` window positions (windows reaching past
/// the input read `pad`); a transposed convolution with `output_padding` needs a grid other
/// than the one its output size implies.
///
/// ```
/// use wengert_core::{kernels::conv::unfold2d_grid, Tensor, Window2d};
/// let x = Tensor::<f64>::new(vec![1.0, 2.0], [1, 1, 1, 2]);
/// // three 1x1 windows over a 1x2 input: the last reads the pad value
/// let cols = unfold2d_grid(&x, &Window2d::new((1, 1)), -1.0, (1, 3)).unwrap();
/// assert_eq!(cols.to_vec(), [1.0, 2.0, -1.0]);
/// ```
pub fn unfold2d_grid<T: Float>(x: &Tensor<T>, win: &Window2d, pad: T, grid: (usize, usize)) -> Result<Tensor<T>> {
    let (n, c, h, w) = check_4d("unfold2d", x)?;
    win.validate("unfold2d")?;
    let (kh, kw) = win.kernel;
    let l = grid.0 * grid.1;
    let segments = segments(win, (h, w), grid);
    let sw = win.stride.1;
    let (plane_in, plane_out) = ((h * w).max(1), (kh * kw * l).max(1));
    let total = n * c * kh * kw * l;
    let src = x.as_slice();
    // Planes are split across threads; each is filled with `pad` while it is in cache, then
    // overwritten by its runs (a zeroed allocation up front was a serial 780 KB memset, 9%
    // of a conv training step).
    let parts = crate::parallel::parts_for(total, crate::kernels::PARALLEL_MIN_ELEMENTS);
    // SAFETY: every slot of each part is written by the fill before the runs overwrite some.
    let out = unsafe {
        crate::parallel::collect_parts(total, parts, plane_out, |start, part| {
            let first = start / plane_out;
            for (plane, rows) in src[first * plane_in..].chunks_exact(plane_in).zip(part.chunks_exact_mut(plane_out)) {
                rows.iter_mut().for_each(|r| {
                    r.write(pad);
                });
                // SAFETY: every slot of `rows` was just written.
                let rows = &mut *(rows as *mut [std::mem::MaybeUninit<T>] as *mut [T]);
                for s in &segments {
                    let dst = &mut rows[s.row * l + s.col..][..s.len];
                    if sw == 1 {
                        dst.copy_from_slice(&plane[s.input..s.input + s.len]);
                    } else {
                        dst.iter_mut().zip(plane[s.input..].iter().step_by(sw)).for_each(|(d, &v)| *d = v);
                    }
                }
            }
        })
    };
    Ok(Tensor::from_parts(out, crate::Shape::new(&[n, c * kh * kw, l])))
}

/// col2im: columns `[N, C·kh·kw, OH·OW]` summed back into `[N, C, H, W]` (overlaps add,
/// padded positions are dropped). The adjoint of [`unfold2d`].
///
/// ```
/// use wengert_core::{kernels::conv::fold2d, Tensor, Window2d};
/// let cols = Tensor::<f64>::ones([1, 4, 4]); // a 2x2 window at each of 2x2 positions
/// let x = fold2d(&cols, &Window2d::new((2, 2)), (3, 3)).unwrap();
/// assert_eq!(x.to_vec(), [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]); // overlaps add
/// assert!(fold2d(&Tensor::<f64>::ones([1, 4, 3]), &Window2d::new((2, 2)), (3, 3)).is_err());
/// ```
pub fn fold2d<T: Float>(cols: &Tensor<T>, win: &Window2d, size: (usize, usize)) -> Result<Tensor<T>> {
    let grid = win.output_size("fold2d", size.0, size.1)?;
    fold2d_grid(cols, win, size, grid)
}

/// [`fold2d`] from an explicit grid of `(OH, OW)` window positions; the adjoint of
/// [`unfold2d_grid`].
///
/// ```
/// use wengert_core::{kernels::conv::fold2d_grid, Tensor, Window2d};
/// let cols = Tensor::<f64>::new(vec![1.0, 2.0, 3.0], [1, 1, 3]);
/// // three 1x1 windows folded into a 1x2 output: the one past its end is dropped
/// let x = fold2d_grid(&cols, &Window2d::new((1, 1)), (1, 2), (1, 3)).unwrap();
/// assert_eq!(x.to_vec(), [1.0, 2.0]);
/// ```
pub fn fold2d_grid<T: Float>(cols: &Tensor<T>, win: &Window2d, size: (usize, usize), grid: (usize, usize)) -> Result<Tensor<T>> {
    win.validate("fold2d")?;
    let (h, w) = size;
    let (oh, ow) = grid;
    let (kh, kw) = win.kernel;
    let l = oh * ow;
    let (n, ckk) = match *cols.dims() {
        [n, ckk, ll] if ll == l && ckk % (kh * kw) == 0 => (n, ckk),
        _ => {
            return Err(Error::invalid(
                "fold2d",
                format!("columns of shape {} do not fit a {kh}x{kw} window over {h}x{w} ({} positions)", cols.shape(), l),
            ))
        }
    };
    let c = ckk / (kh * kw);
    let mut out = vec![T::ZERO; n * c * h * w];
    let segments = segments(win, (h, w), grid);
    let sw = win.stride.1;
    let (plane_out, plane_in) = ((h * w).max(1), (kh * kw * l).max(1));
    // planes split across threads, as in unfold (a pooling layer's backward is this fold:
    // one thread took 2x as long on 32x16x28x28)
    let parts = crate::parallel::parts_for(cols.numel(), crate::kernels::PARALLEL_MIN_ELEMENTS);
    crate::parallel::for_each_part_mut(&mut out, parts, plane_out, |start, part| {
        let first = start / plane_out;
        for (plane, rows) in part.chunks_exact_mut(plane_out).zip(cols.as_slice()[first * plane_in..].chunks_exact(plane_in)) {
            for s in &segments {
                let src = &rows[s.row * l + s.col..][..s.len];
                if sw == 1 {
                    plane[s.input..s.input + s.len].iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                } else {
                    plane[s.input..].iter_mut().step_by(sw).zip(src).for_each(|(d, &v)| *d += v);
                }
            }
        }
    });
    Ok(Tensor::from_parts(out, crate::Shape::new(&[n, c, h, w])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct definition of one unfold element, for comparison.
    fn naive(x: &Tensor<f64>, win: &Window2d, pad: f64) -> Tensor<f64> {
        let (n, c, h, w) = (x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]);
        let (oh, ow) = win.output_size("t", h, w).unwrap();
        let (kh, kw) = win.kernel;
        Tensor::from_fn([n, c * kh * kw, oh * ow], |ix| {
            let (b, r, p) = (ix[0], ix[1], ix[2]);
            let (ch, i, j) = (r / (kh * kw), (r / kw) % kh, r % kw);
            let iy = (p / ow * win.stride.0 + i * win.dilation.0) as isize - win.padding.0 as isize;
            let ix_ = (p % ow * win.stride.1 + j * win.dilation.1) as isize - win.padding.1 as isize;
            if iy < 0 || ix_ < 0 || iy >= h as isize || ix_ >= w as isize {
                pad
            } else {
                x.get(&[b, ch, iy as usize, ix_ as usize])
            }
        })
    }

    #[test]
    fn unfold_matches_definition_and_fold_is_its_adjoint() {
        let x = Tensor::<f64>::from_fn([2, 3, 5, 7], |i| (i[0] * 100 + i[1] * 37 + i[2] * 7 + i[3]) as f64 * 0.01);
        for win in [
            Window2d::new((3, 3)),
            Window2d { kernel: (2, 3), stride: (2, 3), padding: (1, 2), dilation: (1, 1) },
            Window2d { kernel: (3, 2), stride: (1, 2), padding: (2, 1), dilation: (2, 3) },
            Window2d { kernel: (1, 1), stride: (4, 5), padding: (0, 0), dilation: (1, 1) },
        ] {
            let u = unfold2d(&x, &win, -7.0).unwrap();
            assert_eq!(u, naive(&x, &win, -7.0), "{win:?}");
            // <unfold(x), y> = <x, fold(y)> for the zero-padded unfold
            let u0 = unfold2d(&x, &win, 0.0).unwrap();
            let y = Tensor::from_fn(u0.shape().clone(), |i| ((i[1] * 13 + i[2] * 5) % 11) as f64 - 5.0);
            let f = fold2d(&y, &win, (5, 7)).unwrap();
            let lhs: f64 = u0.as_slice().iter().zip(y.as_slice()).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.as_slice().iter().zip(f.as_slice()).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-9, "{win:?}: {lhs} vs {rhs}");
        }
    }

    /// fold2d on an input large enough to split its planes across threads, against summing
    /// each column entry into its input position directly.
    #[test]
    fn large_fold_matches_its_definition() {
        let (n, c, h, w) = (3, 16, 40, 37);
        let win = Window2d { kernel: (3, 2), stride: (2, 1), padding: (1, 1), dilation: (1, 2) };
        let (oh, ow) = win.output_size("t", h, w).unwrap();
        let (kh, kw) = win.kernel;
        let cols = Tensor::<f64>::from_fn([n, c * kh * kw, oh * ow], |i| ((i[0] * 7 + i[1] * 13 + i[2] * 3) % 17) as f64 - 8.0);
        assert!(cols.numel() >= 2 * crate::kernels::PARALLEL_MIN_ELEMENTS);
        let mut want = vec![0.0; n * c * h * w];
        for (b, ch, k, p) in (0..n).flat_map(|b| (0..c).flat_map(move |ch| (0..kh * kw).flat_map(move |k| (0..oh * ow).map(move |p| (b, ch, k, p))))) {
            let (ki, kj, oy, ox) = (k / kw, k % kw, p / ow, p % ow);
            let iy = (oy * win.stride.0 + ki * win.dilation.0) as isize - win.padding.0 as isize;
            let ix = (ox * win.stride.1 + kj * win.dilation.1) as isize - win.padding.1 as isize;
            if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                want[((b * c + ch) * h + iy as usize) * w + ix as usize] += cols.get(&[b, ch * kh * kw + k, p]);
            }
        }
        assert_eq!(fold2d(&cols, &win, (h, w)).unwrap().to_vec(), want);
    }

    #[test]
    fn windows_that_do_not_fit_are_errors() {
        let x = Tensor::<f32>::zeros([1, 1, 2, 2]);
        let e = unfold2d(&x, &Window2d::new((3, 3)), 0.0).unwrap_err().to_string();
        assert_eq!(e, "unfold2d: a 3x3 window (dilation (1, 1), padding (0, 0)) does not fit an input of 2x2");
        assert!(unfold2d(&Tensor::<f32>::zeros([2, 2]), &Window2d::new((1, 1)), 0.0).is_err());
    }
}
