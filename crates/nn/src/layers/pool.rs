//! Pooling layers (no parameters).

use wengert_core::{Float, Param, PoolOptions, Var};

use crate::layers::Size2;
use crate::module::Module;

macro_rules! no_params {
    () => {
        fn visit_params<'a>(&'a self, _: &str, _: &mut dyn FnMut(String, &'a Param<T>)) {}
        fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(String, &'a mut Param<T>)) {}
    };
}

/// Max over `kh x kw` windows moved by `stride` (default: the kernel size), with `padding`
/// (reads -∞) on each side: `[N, C, H, W]` -> `[N, C, OH, OW]`. Sizes are a `usize` or a
/// `(h, w)` pair, as PyTorch's.
///
/// ```
/// use wengert_nn::prelude::*;
/// let pool = MaxPool2d::new((2, 3)).with_stride((2, 1)).with_padding((0, 1)); // nn.MaxPool2d((2, 3), (2, 1), (0, 1))
/// let tape = Tape::new();
/// assert_eq!(Module::<f32>::forward(&pool, tape.constant(Tensor::zeros([1, 1, 4, 5]))).shape().dims(), &[1, 1, 2, 5]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// window size
    pub kernel: Size2,
    /// step between windows
    pub stride: Size2,
    /// padding on each side, at most half the window
    pub padding: Size2,
    /// round the output size up, pooling a last partial window (PyTorch's `ceil_mode`,
    /// default `false`)
    pub ceil_mode: bool,
}

impl MaxPool2d {
    /// Non-overlapping windows (stride = kernel, as PyTorch's default).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pool = MaxPool2d::new(2);
    /// assert_eq!((pool.kernel, pool.stride, pool.padding), (Size2(2, 2), Size2(2, 2), Size2(0, 0)));
    /// let tape = Tape::new();
    /// let y = Module::<f64>::forward(&pool, tape.constant(Tensor::from_fn([1, 1, 2, 4], |i| (i[2] * 4 + i[3]) as f64)));
    /// assert_eq!(y.value().to_vec(), vec![5.0, 7.0]); // the max of each 2 x 2 window
    /// ```
    pub fn new(kernel: impl Into<Size2>) -> Self {
        let kernel = kernel.into();
        MaxPool2d { kernel, stride: kernel, padding: Size2(0, 0), ceil_mode: false }
    }
    /// With PyTorch's `ceil_mode`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pool = MaxPool2d::new(2).with_ceil_mode(true);
    /// let tape = Tape::new();
    /// // 5 = 2 + 2 + a partial window of 1, kept by ceil_mode
    /// assert_eq!(Module::<f32>::forward(&pool, tape.constant(Tensor::zeros([1, 1, 5, 5]))).shape().dims(), &[1, 1, 3, 3]);
    /// ```
    pub fn with_ceil_mode(self, ceil_mode: bool) -> Self {
        MaxPool2d { ceil_mode, ..self }
    }
    /// With this stride.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pool = MaxPool2d::new(3).with_stride(1);
    /// assert_eq!(pool.stride, Size2(1, 1));
    /// let tape = Tape::new();
    /// assert_eq!(Module::<f32>::forward(&pool, tape.constant(Tensor::zeros([1, 2, 5, 6]))).shape().dims(), &[1, 2, 3, 4]);
    /// ```
    pub fn with_stride(self, stride: impl Into<Size2>) -> Self {
        MaxPool2d { stride: stride.into(), ..self }
    }
    /// With this padding.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pool = MaxPool2d::new(3).with_stride(1).with_padding(1); // keeps H and W
    /// assert_eq!(pool.padding, Size2(1, 1));
    /// let tape = Tape::new();
    /// assert_eq!(Module::<f32>::forward(&pool, tape.constant(Tensor::zeros([1, 2, 5, 6]))).shape().dims(), &[1, 2, 5, 6]);
    /// ```
    pub fn with_padding(self, padding: impl Into<Size2>) -> Self {
        MaxPool2d { padding: padding.into(), ..self }
    }
}

impl<T: Float> Module<T> for MaxPool2d {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let opts = PoolOptions { ceil_mode: self.ceil_mode, ..Default::default() };
        x.max_pool2d_with(self.kernel.into(), self.stride.into(), self.padding.into(), opts)
    }
    no_params!();
}

/// Mean over `kh x kw` windows; sizes as [`MaxPool2d`]'s. Zero padding is counted in the
/// mean unless `count_include_pad` is off, as PyTorch's `nn.AvgPool2d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// window size
    pub kernel: Size2,
    /// step between windows
    pub stride: Size2,
    /// zero padding on each side, at most half the window
    pub padding: Size2,
    /// round the output size up (PyTorch's `ceil_mode`, default `false`)
    pub ceil_mode: bool,
    /// count the padding in each window's mean (PyTorch's `count_include_pad`, default `true`)
    pub count_include_pad: bool,
}

impl AvgPool2d {
    /// Non-overlapping windows (stride = kernel).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pool = AvgPool2d::new(2);
    /// assert!(pool.count_include_pad && !pool.ceil_mode);
    /// let tape = Tape::new();
    /// let y = Module::<f64>::forward(&pool, tape.constant(Tensor::from_fn([1, 1, 2, 4], |i| (i[2] * 4 + i[3]) as f64)));
    /// assert_eq!(y.value().to_vec(), vec![2.5, 4.5]); // the mean of each 2 x 2 window
    /// ```
    pub fn new(kernel: impl Into<Size2>) -> Self {
        let kernel = kernel.into();
        AvgPool2d { kernel, stride: kernel, padding: Size2(0, 0), ceil_mode: false, count_include_pad: true }
    }
    /// With PyTorch's `ceil_mode`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pool = AvgPool2d::new(2).with_ceil_mode(true);
    /// let tape = Tape::new();
    /// assert_eq!(Module::<f32>::forward(&pool, tape.constant(Tensor::zeros([1, 1, 5, 5]))).shape().dims(), &[1, 1, 3, 3]);
    /// ```
    pub fn with_ceil_mode(self, ceil_mode: bool) -> Self {
        AvgPool2d { ceil_mode, ..self }
    }
    /// With PyTorch's `count_include_pad`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pool = AvgPool2d::new(3).with_stride(1).with_padding(1).with_count_include_pad(false);
    /// let tape = Tape::new();
    /// let y = Module::<f64>::forward(&pool, tape.constant(Tensor::ones([1, 1, 3, 3])));
    /// assert_eq!(y.value().to_vec(), vec![1.0; 9]); // the padding is left out of every mean
    /// ```
    pub fn with_count_include_pad(self, count_include_pad: bool) -> Self {
        AvgPool2d { count_include_pad, ..self }
    }
    /// With this stride.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pool = AvgPool2d::new(2).with_stride(1);
    /// assert_eq!(pool.stride, Size2(1, 1));
    /// let tape = Tape::new();
    /// assert_eq!(Module::<f32>::forward(&pool, tape.constant(Tensor::zeros([1, 1, 3, 4]))).shape().dims(), &[1, 1, 2, 3]);
    /// ```
    pub fn with_stride(self, stride: impl Into<Size2>) -> Self {
        AvgPool2d { stride: stride.into(), ..self }
    }
    /// With this padding.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pool = AvgPool2d::new(2).with_padding(1);
    /// let tape = Tape::new();
    /// let y = Module::<f64>::forward(&pool, tape.constant(Tensor::ones([1, 1, 2, 2])));
    /// assert_eq!(y.value().to_vec(), vec![0.25; 4]); // each window: one 1 and three zeros of padding
    /// ```
    pub fn with_padding(self, padding: impl Into<Size2>) -> Self {
        AvgPool2d { padding: padding.into(), ..self }
    }
}

impl<T: Float> Module<T> for AvgPool2d {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let opts = PoolOptions { ceil_mode: self.ceil_mode, count_include_pad: self.count_include_pad };
        x.avg_pool2d_with(self.kernel.into(), self.stride.into(), self.padding.into(), opts)
    }
    no_params!();
}

/// Mean over an `(OH, OW)` grid of windows covering the input, whatever its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d(pub usize, pub usize);

impl<T: Float> Module<T> for AdaptiveAvgPool2d {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        x.adaptive_avg_pool2d((self.0, self.1))
    }
    no_params!();
}
