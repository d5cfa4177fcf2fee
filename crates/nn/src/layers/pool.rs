//! Pooling layers (no parameters).

use wengert_core::{Float, Param, Var};

use crate::module::Module;

macro_rules! no_params {
    () => {
        fn visit_params<'a>(&'a self, _: &str, _: &mut dyn FnMut(String, &'a Param<T>)) {}
        fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(String, &'a mut Param<T>)) {}
    };
}

/// Max over `kernel x kernel` windows moved by `stride` (default: the kernel size), with
/// `padding` (reads -∞) on each side: `[N, C, H, W]` -> `[N, C, OH, OW]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// window size
    pub kernel: usize,
    /// step between windows
    pub stride: usize,
    /// padding on each side, at most kernel/2
    pub padding: usize,
}

impl MaxPool2d {
    /// Non-overlapping `kernel x kernel` windows (stride = kernel, as PyTorch's default).
    pub fn new(kernel: usize) -> Self {
        MaxPool2d { kernel, stride: kernel, padding: 0 }
    }
}

impl<T: Float> Module<T> for MaxPool2d {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        x.max_pool2d((self.kernel, self.kernel), (self.stride, self.stride), (self.padding, self.padding))
    }
    no_params!();
}

/// Mean over `kernel x kernel` windows (zero padding counted, as PyTorch's default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// window size
    pub kernel: usize,
    /// step between windows
    pub stride: usize,
    /// zero padding on each side, at most kernel/2
    pub padding: usize,
}

impl AvgPool2d {
    /// Non-overlapping `kernel x kernel` windows.
    pub fn new(kernel: usize) -> Self {
        AvgPool2d { kernel, stride: kernel, padding: 0 }
    }
}

impl<T: Float> Module<T> for AvgPool2d {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        x.avg_pool2d((self.kernel, self.kernel), (self.stride, self.stride), (self.padding, self.padding))
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
