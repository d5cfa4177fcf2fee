//! Whole models with the structure and parameter names of their reference implementations,
//! so pretrained checkpoints load by their own tensor names.

pub mod bert;
#[cfg(feature = "tokenizers")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokenizers")))]
pub mod sentence;
