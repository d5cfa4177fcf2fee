//! # wengert-nn
//!
//! Neural networks on wengert-core: modules, losses, optimizers, data, metrics, save/load.
//! Every gradient comes from the tape; no layer here writes a gradient by hand.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod activation;
pub mod data;
pub mod error;
pub mod gradcheck;
pub mod init;
pub mod layers;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod module;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod serialize;
pub mod train;

pub use error::{Error, Result};
pub use module::{Buffer, BufferMut, Lambda, Module, Residual, Sequential, StateDict};
/// `#[derive(Module)]` (see [`wengert_derive`]): the visitors of a model struct from its fields.
pub use wengert_derive::Module;
#[doc(hidden)]
pub use wengert_core;

/// The names most programs need: core's prelude plus modules, layers, losses, optimizers.
pub mod prelude {
    pub use wengert_core::prelude::*;

    pub use crate::activation::*;
    pub use crate::layers::*;
    pub use crate::loss::*;
    pub use crate::module::{Buffer, Lambda, Module, Residual, Sequential, StateDict};
    pub use wengert_derive::Module;
    pub use crate::optim::*;
    pub use crate::train::{fit, predict, FitConfig};
}
