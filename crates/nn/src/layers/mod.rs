//! Layers with parameters (and the parameter-free `Dropout` and `Flatten`).

mod dropout;
mod embedding;
mod flatten;
mod layer_norm;
mod linear;

pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use layer_norm::{LayerNorm, LayerNormConfig};
pub use linear::{Linear, LinearConfig};
