//! Layers with parameters (and the parameter-free `Dropout` and `Flatten`).

mod attention;
mod batch_norm;
mod checkpoint;
mod conv;
mod dropout;
pub(crate) mod embedding;
mod flatten;
mod layer_norm;
mod linear;
mod norm;
mod pool;
mod rnn;

pub use checkpoint::Checkpoint;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use layer_norm::{LayerNorm, LayerNormConfig};
pub use linear::{Linear, LinearConfig};
pub use norm::{GroupNorm, GroupNormConfig};
pub use attention::*;
pub use batch_norm::*;
pub use conv::*;
pub use pool::*;
pub use rnn::*;
