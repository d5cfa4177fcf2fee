//! Flattens all but the batch axis.

use wengert_core::{Float, Param, Var};

use crate::module::Module;

/// `[n, d1, d2, ..] -> [n, d1·d2·..]`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Flatten;

impl<T: Float> Module<T> for Flatten {
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let s = x.shape();
        let n = s.dims().first().copied().unwrap_or(1);
        x.reshape([n, s.numel() / n.max(1)])
    }
    fn visit_params<'a>(&'a self, _: &str, _: &mut dyn FnMut(String, &'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(String, &'a mut Param<T>)) {}
}
