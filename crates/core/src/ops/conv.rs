//! Convolution and pooling, built from two linear data-movement ops, `unfold2d` (im2col) and
//! `fold2d` (col2im), each the other's gradient, plus `matmul`. So every op here is
//! differentiable to any order with no hand-written conv gradient, and the heavy lifting is
//! one gemm per sample.
//!
//! Shapes follow PyTorch: inputs `[N, C, H, W]` (`[N, C, L]` for 1-D), conv weights
//! `[C_out, C_in / groups, kh, kw]`, transposed-conv weights `[C_in, C_out / groups, kh, kw]`.

use crate::element::Float;
use crate::error::OrPanic;
use crate::function::{Backward, Context, InputGrads};
use crate::kernels::conv::{fold2d_grid, unfold2d_grid, Window2d};
use crate::tensor::Tensor;
use crate::kernels::matmul::Transpose;
use crate::ops::one;
use crate::var::Var;

/// Options of [`Var::max_pool2d_with`] and [`Var::avg_pool2d_with`]; defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// Round the output size up, so a last partial window is pooled too (default `false`).
    pub ceil_mode: bool,
    /// Average over the padding too, as zeros (default `true`); `false` divides by the number
    /// of input elements in the window. Ignored by the maximum.
    pub count_include_pad: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { ceil_mode: false, count_include_pad: true }
    }
}

/// Stride, padding, dilation and groups of a 2-D convolution; `Default` is PyTorch's
/// (1, 0, 1, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dOptions {
    /// (sh, sw), default (1, 1)
    pub stride: (usize, usize),
    /// zero padding on both sides (ph, pw), default (0, 0)
    pub padding: (usize, usize),
    /// kernel tap spacing (dh, dw), default (1, 1)
    pub dilation: (usize, usize),
    /// channel groups, default 1 (each group's outputs see only its inputs)
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions { stride: (1, 1), padding: (0, 0), dilation: (1, 1), groups: 1 }
    }
}

/// Options of a 2-D transposed convolution; `Default` is PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvTranspose2dOptions {
    /// (sh, sw), default (1, 1)
    pub stride: (usize, usize),
    /// (ph, pw) removed from both sides of the output, default (0, 0)
    pub padding: (usize, usize),
    /// extra rows/columns on one side of the output to pick among the sizes a strided conv
    /// maps to the same input size, default (0, 0); must be smaller than the stride
    pub output_padding: (usize, usize),
    /// (dh, dw), default (1, 1)
    pub dilation: (usize, usize),
    /// channel groups, default 1
    pub groups: usize,
}

impl Default for ConvTranspose2dOptions {
    fn default() -> Self {
        ConvTranspose2dOptions { stride: (1, 1), padding: (0, 0), output_padding: (0, 0), dilation: (1, 1), groups: 1 }
    }
}

struct UnfoldRule {
    win: Window2d,
    size: (usize, usize),
    grid: (usize, usize),
}
impl<T: Float> Backward<T> for UnfoldRule {
    fn backward<'t>(&self, _: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g.fold2d_grid(self.win, self.size, self.grid))
    }
}

struct FoldRule {
    win: Window2d,
    grid: (usize, usize),
}
impl<T: Float> Backward<T> for FoldRule {
    fn backward<'t>(&self, _: &Context<'t, T>, g: Var<'t, T>) -> InputGrads<'t, T> {
        one(g.unfold2d_grid(self.win, T::ZERO, self.grid))
    }
}

fn dims4<T: Float>(op: &str, x: &Var<'_, T>) -> (usize, usize, usize, usize) {
    match *x.shape().dims() {
        [n, c, h, w] => (n, c, h, w),
        _ => panic!("wengert: {op}: expected an input [N, C, H, W], got shape {}", x.shape()),
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// im2col: `[N, C, H, W]` -> `[N, C·kh·kw, OH·OW]` (PyTorch's `F.unfold`), zero padded.
    /// Gradient: [`Var::fold2d`].
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor, Window2d};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::ones([1, 1, 3, 3]));
    /// let cols = x.unfold2d(Window2d::new((2, 2)));
    /// assert_eq!(cols.shape().dims(), &[1, 4, 4]); // 4 taps x 4 window positions
    /// assert_eq!(cols.sum().backward().wrt(x).get(&[0, 0, 1, 1]), 4.0); // the centre is in every window
    /// ```
    #[track_caller]
    pub fn unfold2d(self, win: Window2d) -> Var<'t, T> {
        self.unfold2d_padded(win, T::ZERO)
    }

    #[track_caller]
    fn unfold2d_padded(self, win: Window2d, pad: T) -> Var<'t, T> {
        let (_, _, h, w) = dims4("unfold2d", &self);
        let grid = win.output_size("unfold2d", h, w).or_panic();
        self.unfold2d_grid(win, pad, grid)
    }

    #[track_caller]
    fn unfold2d_grid(self, win: Window2d, pad: T, grid: (usize, usize)) -> Var<'t, T> {
        let (_, _, h, w) = dims4("unfold2d", &self);
        let v = self.with_value(|x| unfold2d_grid(x, &win, pad, grid)).or_panic();
        self.tape.push_op("unfold2d", v, &[self], UnfoldRule { win, size: (h, w), grid })
    }

    /// col2im: columns `[N, C·kh·kw, OH·OW]` summed into `[N, C, H, W]` with `size = (H, W)`
    /// (PyTorch's `F.fold`). Gradient: [`Var::unfold2d`].
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor, Window2d};
    /// let tape = Tape::<f64>::new();
    /// let cols = tape.var(Tensor::ones([1, 4, 4]));
    /// let y = cols.fold2d(Window2d::new((2, 2)), (3, 3));
    /// assert_eq!(y.value().to_vec(), [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
    /// assert_eq!(y.sum().backward().wrt(cols).dims(), &[1, 4, 4]);
    /// ```
    #[track_caller]
    pub fn fold2d(self, win: Window2d, size: (usize, usize)) -> Var<'t, T> {
        let grid = win.output_size("fold2d", size.0, size.1).or_panic();
        self.fold2d_grid(win, size, grid)
    }

    #[track_caller]
    fn fold2d_grid(self, win: Window2d, size: (usize, usize), grid: (usize, usize)) -> Var<'t, T> {
        let v = self.with_value(|x| fold2d_grid(x, &win, size, grid)).or_panic();
        self.tape.push_op("fold2d", v, &[self], FoldRule { win, grid })
    }

    /// 2-D cross-correlation (PyTorch's `conv2d`):
    /// `out[n, o, y, x] = b[o] + Σ_{c,i,j} w[o, c, i, j] · in[n, g(o)·C/G + c, y·sh + i·dh - ph, x·sw + j·dw - pw]`.
    /// Shapes: `[N, C, H, W]` * `[O, C/G, kh, kw]` (+ `[O]`) -> `[N, O, OH, OW]` with
    /// OH = ⌊(H + 2ph - dh(kh-1) - 1)/sh⌋ + 1.
    ///
    /// ```
    /// use wengert_core::{ops::Conv2dOptions, Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let x = tape.constant(Tensor::ones([1, 1, 4, 4]));
    /// let w = tape.var(Tensor::ones([2, 1, 3, 3]));
    /// let y = x.conv2d(w, None, Conv2dOptions { padding: (1, 1), ..Default::default() });
    /// assert_eq!(y.shape().dims(), &[1, 2, 4, 4]);
    /// assert_eq!(y.value().get(&[0, 0, 0, 0]), 4.0);  // corner: 2x2 of the 3x3 window inside
    /// ```
    #[track_caller]
    pub fn conv2d(self, weight: Var<'t, T>, bias: Option<Var<'t, T>>, opts: Conv2dOptions) -> Var<'t, T> {
        let (n, c, _, _) = dims4("conv2d", &self);
        let ws = weight.shape();
        let g = opts.groups;
        let (o, kh, kw) = match *ws.dims() {
            [o, cg, kh, kw] if g > 0 && c % g == 0 && o % g == 0 && cg == c / g => (o, kh, kw),
            _ => panic!("wengert: conv2d: weight of shape {ws} does not fit input {} with {g} group(s): expected [O, {}, kh, kw] with O divisible by {g}", self.shape(), c / g.max(1)),
        };
        let win = Window2d { kernel: (kh, kw), stride: opts.stride, padding: opts.padding, dilation: opts.dilation };
        let cols = self.unfold2d(win);
        let l = cols.shape()[2];
        let k = c / g * kh * kw;
        // One gemm per sample (a batched product against the shared weight). Measured on
        // 32x1x28x28 with 32 3x3 filters: 0.19 ms forward against 0.32 ms for one gemm over
        // [C·kh·kw, N·L] columns plus the two transposes it needs.
        let (_, _, h, w) = dims4("conv2d", &self);
        let (oh, ow) = win.output_size("conv2d", h, w).or_panic();
        if g == 1 {
            // the bias is added to each sample's product while it is in cache
            let w2 = weight.reshape([o, k]);
            let out = match bias {
                Some(b) => w2.matmul_t_bias(cols, Transpose::NN, b.reshape([o, 1])),
                None => w2.matmul(cols),
            };
            return out.reshape([n, o, oh, ow]);
        }
        let out = weight.reshape([g, o / g, k]).matmul(cols.reshape([n, g, k, l])).reshape([n, o, oh, ow]);
        match bias {
            Some(b) => out + b.reshape([o, 1, 1]),
            None => out,
        }
    }

    /// 1-D cross-correlation: `[N, C, L]` * `[O, C/G, k]` (+ `[O]`) -> `[N, O, OL]`; the
    /// options' second components (stride.1, padding.1, dilation.1) apply along L.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(Tensor::ones([1, 1, 5]));
    /// let w = tape.var(Tensor::ones([1, 1, 3]));
    /// let y = x.conv1d(w, None, 1, 0, 1, 1);
    /// assert_eq!(y.value().to_vec(), [3.0, 3.0, 3.0]); // shape [1, 1, 3]
    /// assert_eq!(y.sum().backward().wrt(w).to_vec(), [3.0, 3.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn conv1d(self, weight: Var<'t, T>, bias: Option<Var<'t, T>>, stride: usize, padding: usize, dilation: usize, groups: usize) -> Var<'t, T> {
        let (xs, ws) = (self.shape(), weight.shape());
        if xs.ndim() != 3 || ws.ndim() != 3 {
            panic!("wengert: conv1d: expected input [N, C, L] and weight [O, C/G, k], got shapes {xs} and {ws}");
        }
        let opts = Conv2dOptions { stride: (1, stride), padding: (0, padding), dilation: (1, dilation), groups };
        self.unsqueeze(2).conv2d(weight.unsqueeze(2), bias, opts).squeeze(2)
    }

    /// Transposed convolution (the gradient of `conv2d` with respect to its input, as a layer):
    /// `[N, C, H, W]` * `[C, O/G, kh, kw]` (+ `[O]`) -> `[N, O, OH, OW]` with
    /// OH = (H-1)·sh - 2ph + dh(kh-1) + output_padding + 1.
    ///
    /// ```
    /// use wengert_core::{ConvTranspose2dOptions, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(Tensor::ones([1, 1, 2, 2]));
    /// let w = tape.var(Tensor::ones([1, 1, 3, 3]));
    /// let y = x.conv_transpose2d(w, None, ConvTranspose2dOptions::default());
    /// assert_eq!(y.shape().dims(), &[1, 1, 4, 4]); // (2 - 1) + 3
    /// assert_eq!((y.value().get(&[0, 0, 0, 0]), y.value().get(&[0, 0, 1, 1])), (1.0, 4.0));
    /// ```
    #[track_caller]
    pub fn conv_transpose2d(self, weight: Var<'t, T>, bias: Option<Var<'t, T>>, opts: ConvTranspose2dOptions) -> Var<'t, T> {
        let (n, c, h, w) = dims4("conv_transpose2d", &self);
        let ws = weight.shape();
        let g = opts.groups;
        let (og, kh, kw) = match *ws.dims() {
            [ci, og, kh, kw] if g > 0 && ci == c && c % g == 0 => (og, kh, kw),
            _ => panic!("wengert: conv_transpose2d: weight of shape {ws} does not fit input {} with {g} group(s): expected [{c}, O/G, kh, kw]", self.shape()),
        };
        let (sh, sw) = opts.stride;
        let (oph, opw) = opts.output_padding;
        if oph >= sh.max(opts.dilation.0) || opw >= sw.max(opts.dilation.1) {
            panic!("wengert: conv_transpose2d: output_padding {:?} must be smaller than stride {:?} or dilation {:?}", opts.output_padding, opts.stride, opts.dilation);
        }
        let span = |k: usize, d: usize| d * (k - 1) + 1;
        let full_h = (h - 1) * sh + span(kh, opts.dilation.0) + oph;
        let full_w = (w - 1) * sw + span(kw, opts.dilation.1) + opw;
        if full_h <= 2 * opts.padding.0 || full_w <= 2 * opts.padding.1 {
            panic!("wengert: conv_transpose2d: padding {:?} leaves no output for input {}", opts.padding, self.shape());
        }
        let (oh, ow) = (full_h - 2 * opts.padding.0, full_w - 2 * opts.padding.1);
        let win = Window2d { kernel: (kh, kw), stride: opts.stride, padding: opts.padding, dilation: opts.dilation };
        let kk = og * kh * kw;
        let x = self.reshape([n, g, c / g, h * w]);
        let cols = weight.reshape([g, c / g, kk]).matmul_t(x, Transpose::TN); // [N, G, O/G·kh·kw, H·W]
        // One window per input position (the grid is the input's H x W, whatever output_padding
        // adds at the far end of the output).
        let out = cols.reshape([n, g * kk, h * w]).fold2d_grid(win, (oh, ow), (h, w));
        match bias {
            Some(b) => out + b.reshape([g * og, 1, 1]),
            None => out,
        }
    }

    /// Max over each `kernel` window (PyTorch's `max_pool2d`; padding reads -∞):
    /// `[N, C, H, W]` -> `[N, C, OH, OW]`. Gradient: to the window's maximum (split between ties).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 4.0, 3.0, 2.0], [1, 1, 2, 2]));
    /// let y = x.max_pool2d((2, 2), (2, 2), (0, 0));
    /// assert_eq!(y.value().to_vec(), [4.0]);
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), [0.0, 1.0, 0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn max_pool2d(self, kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize)) -> Var<'t, T> {
        self.pool2d("max_pool2d", kernel, stride, padding, true, PoolOptions::default())
    }

    /// Mean over each `kernel` window, zero padding counted (PyTorch's `avg_pool2d` with
    /// `count_include_pad=True`): `[N, C, H, W]` -> `[N, C, OH, OW]`.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![1.0, 4.0, 3.0, 2.0], [1, 1, 2, 2]));
    /// let y = x.avg_pool2d((2, 2), (2, 2), (0, 0));
    /// assert_eq!(y.value().to_vec(), [2.5]);
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), [0.25; 4]);
    /// ```
    #[track_caller]
    pub fn avg_pool2d(self, kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize)) -> Var<'t, T> {
        self.pool2d("avg_pool2d", kernel, stride, padding, false, PoolOptions::default())
    }

    /// [`Var::max_pool2d`] with PyTorch's `ceil_mode` ([`PoolOptions::count_include_pad`]
    /// does not apply to a maximum).
    ///
    /// ```
    /// use wengert_core::{PoolOptions, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(Tensor::from_fn([1, 1, 1, 5], |i| i[3] as f64));
    /// let ceil = PoolOptions { ceil_mode: true, ..Default::default() };
    /// // windows [0, 1], [2, 3] and, rounding up, the partial [4]
    /// assert_eq!(x.max_pool2d_with((1, 2), (1, 2), (0, 0), ceil).value().to_vec(), [1.0, 3.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn max_pool2d_with(self, kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize), opts: PoolOptions) -> Var<'t, T> {
        self.pool2d("max_pool2d", kernel, stride, padding, true, opts)
    }

    /// [`Var::avg_pool2d`] with PyTorch's `ceil_mode` and `count_include_pad`: each window's
    /// sum over its elements, divided by how many it covers of the padded input (the default)
    /// or of the input alone (`count_include_pad: false`); with `ceil_mode`, windows that run
    /// past the padded input count only what they cover, as PyTorch's.
    ///
    /// ```
    /// use wengert_core::{PoolOptions, Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.constant(Tensor::new(vec![1.0, 2.0, 3.0], [1, 1, 1, 3]));
    /// let real_only = PoolOptions { count_include_pad: false, ..Default::default() };
    /// // padding 1: windows [pad, 1], [2, 3]... with stride 2: (1)/1 and (2 + 3)/2
    /// assert_eq!(x.avg_pool2d_with((1, 2), (1, 2), (0, 1), real_only).value().to_vec(), [1.0, 2.5]);
    /// assert_eq!(x.avg_pool2d((1, 2), (1, 2), (0, 1)).value().to_vec(), [0.5, 2.5]);
    /// ```
    #[track_caller]
    pub fn avg_pool2d_with(self, kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize), opts: PoolOptions) -> Var<'t, T> {
        self.pool2d("avg_pool2d", kernel, stride, padding, false, opts)
    }

    #[track_caller]
    fn pool2d(self, op: &'static str, kernel: (usize, usize), stride: (usize, usize), padding: (usize, usize), max: bool, opts: PoolOptions) -> Var<'t, T> {
        let (n, c, h, w) = dims4(op, &self);
        if 2 * padding.0 > kernel.0 || 2 * padding.1 > kernel.1 {
            panic!("wengert: {op}: padding {padding:?} must be at most half the kernel {kernel:?}");
        }
        let win = Window2d { kernel, stride, padding, dilation: (1, 1) };
        let (oh, ow) = win.output_size(op, h, w).or_panic();
        // ceil_mode: one more window along an axis when the last would start inside the input
        // or its left padding (PyTorch's rule); the part past the padded input is filled with
        // the pad value and left out of the average's count
        let ceil = |out: usize, n: usize, k: usize, s: usize, p: usize| {
            let more = opts.ceil_mode && !(n + 2 * p - k).is_multiple_of(s) && out * s < n + p;
            let out = out + usize::from(more);
            (out, ((out - 1) * s + k).saturating_sub(n + 2 * p))
        };
        let (oh, extra_h) = ceil(oh, h, kernel.0, stride.0, padding.0);
        let (ow, extra_w) = ceil(ow, w, kernel.1, stride.1, padding.1);
        let pad = if max { T::NEG_INFINITY } else { T::ZERO };
        let tape = self.tape;
        let mut x = self;
        if extra_h > 0 {
            x = Var::concat(&[x, tape.constant(Tensor::full([n, c, extra_h, w], pad))], 2);
        }
        if extra_w > 0 {
            x = Var::concat(&[x, tape.constant(Tensor::full([n, c, h + extra_h, extra_w], pad))], 3);
        }
        let cols = x.unfold2d_padded(win, pad).reshape([n, c, kernel.0 * kernel.1, oh * ow]);
        let pooled = if max {
            cols.max_axes(&[2], false)
        } else if opts.count_include_pad && extra_h + extra_w == 0 {
            cols.mean_axes(&[2], false)
        } else {
            // elements each window covers of [lo, hi): the padded input, or the input alone
            let covered = |i: usize, n: usize, k: usize, s: usize, p: usize| {
                let (lo, hi) = if opts.count_include_pad { (0, n + 2 * p) } else { (p, p + n) };
                (i * s + k).min(hi).saturating_sub((i * s).max(lo))
            };
            let inverse = Tensor::from_fn([oh * ow], |i| {
                let (r, q) = (i[0] / ow, i[0] % ow);
                T::ONE / T::from_usize(covered(r, h, kernel.0, stride.0, padding.0) * covered(q, w, kernel.1, stride.1, padding.1))
            });
            cols.sum_axes(&[2], false) * tape.constant(inverse)
        };
        pooled.reshape([n, c, oh, ow])
    }

    /// Mean over an `(OH, OW)` grid of windows covering the input (PyTorch's
    /// `adaptive_avg_pool2d`): window `i` along H spans rows ⌊iH/OH⌋ .. ⌈(i+1)H/OH⌉.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::new(vec![0.0, 1.0, 2.0], [1, 1, 1, 3]));
    /// let y = x.adaptive_avg_pool2d((1, 2)); // columns 0..2 and 1..3
    /// assert_eq!(y.value().to_vec(), [0.5, 1.5]);
    /// assert_eq!(y.sum().backward().wrt(x).to_vec(), [0.5, 1.0, 0.5]);
    /// ```
    #[track_caller]
    pub fn adaptive_avg_pool2d(self, out: (usize, usize)) -> Var<'t, T> {
        let (_, _, h, w) = dims4("adaptive_avg_pool2d", &self);
        if out.0 == 0 || out.1 == 0 {
            panic!("wengert: adaptive_avg_pool2d: output size {out:?} must be positive");
        }
        if h % out.0 == 0 && w % out.1 == 0 {
            let k = (h / out.0, w / out.1);
            return self.avg_pool2d(k, k, (0, 0));
        }
        let along = |x: Var<'t, T>, axis: isize, n: usize, m: usize| {
            let parts: Vec<_> = (0..m)
                .map(|i| {
                    let (s, e) = (i * n / m, ((i + 1) * n).div_ceil(m));
                    x.narrow(axis, s, e - s).mean_axes(&[axis], true)
                })
                .collect();
            Var::concat(&parts, axis)
        };
        along(along(self, 2, h, out.0), 3, w, out.1)
    }
}
