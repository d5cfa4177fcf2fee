//! # wengert
//!
//! Reverse-mode automatic differentiation on a tape ([`core`]) and neural networks built on it
//! ([`nn`]). `use wengert::prelude::*;` brings in the common names of both.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use wengert_core as core;
pub use wengert_nn as nn;

pub use wengert_core::*;

/// The names most programs need: core's (tensors, the tape, gradient checks) and nn's
/// (layers, losses, optimizers, training).
pub mod prelude {
    pub use wengert_nn::prelude::*;
}
