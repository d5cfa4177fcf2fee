//! # wengert-core
//!
//! Tensors, a tape (Wengert list) that records operations in execution order, reverse-mode
//! backward with higher-order gradients, custom differentiable ops, and gradient checks.
//!
//! ```
//! use wengert_core::prelude::*;
//!
//! let tape = Tape::<f64>::new();
//! let w = tape.var(Tensor::new(vec![0.5, -0.25], [2, 1]));
//! let x = tape.constant(Tensor::new(vec![1.0, 2.0, 3.0, 4.0], [2, 2]));
//! let loss = x.matmul(w).tanh().square().mean();
//! let grads = loss.backward();
//! assert_eq!(grads.wrt(w).dims(), &[2, 1]);
//! ```
//!
//! * [`Tensor`] is the plain n-d array (f32/f64, plus `usize` indices and `bool` masks); its
//!   math in [`kernels`] is the no-grad path and carries no tape cost.
//! * [`Tape`] records ops on [`Var`] handles; [`Var::backward`] walks it in reverse.
//! * Backward rules are written with `Var` ops, so [`Tape::grad_graph`] records a gradient that
//!   can be differentiated again.
//! * [`function::Function`] defines a custom op; [`gradcheck()`] proves gradients numerically;
//!   `testing` (feature `proptest`) generates random tensors for property tests.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backward;
pub mod checkpoint;
pub mod element;
pub mod error;
mod fastmath;
pub mod function;
pub mod functional;
pub mod gradcheck;
pub mod kernels;
pub mod ops;
pub mod parallel;
pub mod param;
pub mod roofline;
pub mod runtime;
pub mod shape;
pub mod storage;
pub mod tape;
pub mod tensor;
#[cfg(feature = "proptest")]
#[cfg_attr(docsrs, doc(cfg(feature = "proptest")))]
pub mod testing;
pub mod var;

pub use backward::Gradients;
pub use checkpoint::checkpoint;
pub use element::{Element, Float};
pub use error::{Error, Result};
pub use function::{Backward, Context, Function, InputGrads};
pub use gradcheck::{gradcheck, gradgradcheck, GradcheckError, GradcheckOptions};
pub use kernels::conv::Window2d;
pub use kernels::matmul::Transpose;
pub use ops::{causal_mask, Conv2dOptions, ConvTranspose2dOptions, PoolOptions};
pub use param::{Param, ParamId};
pub use shape::Shape;
pub use tape::Tape;
pub use tensor::Tensor;
pub use var::Var;

/// The names most programs need.
pub mod prelude {
    pub use crate::{
        checkpoint, gradcheck, gradgradcheck, Float, Function, Gradients, Param, Shape, Tape, Tensor, Transpose, Var,
    };
}
