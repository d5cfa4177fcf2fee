//! # wengert-nn
//!
//! Neural networks on wengert-core: every gradient comes from the tape.

#![warn(missing_docs)]

pub mod data;
pub mod error;
pub mod metrics;
pub mod serialize;

pub use error::{Error, Result};
