//! Differentiable ops on [`Var`]: one file per family, each holding the `Var` methods and
//! their backward rules side by side. Every rule is written with `Var` ops, so gradients can
//! be differentiated again; every op has a finite-difference gradcheck in `tests/`.
//!
//! | file | ops |
//! |---|---|
//! | `arith` | `+ - * /` (broadcast), `neg`, `pow`, `maximum`, `minimum`, scalar forms |
//! | `unary` | every op of [`UNARY_OPS`] (its doc lists them, generated from their one declaration each), and `powf clamp leaky_relu elu log_sigmoid` |
//! | `reduce` | `sum mean max min var logsumexp` over all or some axes |
//! | `shape` | `reshape permute transpose t broadcast_to sum_to squeeze unsqueeze flatten narrow pad concat stack` |
//! | `index` | `index_select index_add gather scatter_add where_` |
//! | `matmul` | `matmul` (NumPy semantics), `matmul_t` (transposed operands, no copy) |
//! | `softmax` | `softmax log_softmax` |
//! | `norm` | `layer_norm` (one op, one pass per row each way) |
//! | `conv` | `unfold2d fold2d conv1d conv2d conv_transpose2d max_pool2d avg_pool2d adaptive_avg_pool2d` |
//! | `attention` | `scaled_dot_product_attention` |

mod arith;
mod attention;
pub use attention::causal_mask;
mod conv;
pub use conv::{Conv2dOptions, ConvTranspose2dOptions, PoolOptions};
mod index;
mod matmul;
mod norm;
mod reduce;
mod shape;
mod softmax;
mod unary;
pub use unary::{UnaryOp, UNARY_OPS};

use smallvec::smallvec;

use crate::element::Float;
use crate::function::InputGrads;
use crate::tensor::Tensor;
use crate::var::Var;

/// One input gradient.
pub(crate) fn one<'t, T: Float>(g: Var<'t, T>) -> InputGrads<'t, T> {
    smallvec![Some(g)]
}

impl<'t, T: Float> Var<'t, T> {
    /// Runs `f` on the value without cloning it.
    #[inline]
    #[track_caller]
    pub(crate) fn with_value<R>(&self, f: impl FnOnce(&Tensor<T>) -> R) -> R {
        f(self.tape.nodes.borrow()[self.id].value())
    }

    /// Whether the value has this shape (compared in place, without copying the shape).
    #[inline]
    pub(crate) fn has_shape(&self, shape: &crate::Shape) -> bool {
        self.tape.nodes.borrow()[self.id].value.shape() == shape
    }

    /// Runs `f` on this value and another's (which must be on the same tape).
    #[inline]
    #[track_caller]
    pub(crate) fn with_values<R>(&self, other: &Var<'t, T>, op: &'static str, f: impl FnOnce(&Tensor<T>, &Tensor<T>) -> R) -> R {
        self.same_tape(other, op);
        let nodes = self.tape.nodes.borrow();
        f(nodes[self.id].value(), nodes[other.id].value())
    }

    /// The same value as a constant: no gradient flows back through it (stop-gradient).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::scalar(3.0));
    /// let y = x * x.detach();          // treated as 3x
    /// assert_eq!(y.backward().wrt(x).item(), 3.0);
    /// ```
    #[track_caller]
    pub fn detach(self) -> Var<'t, T> {
        let v = self.value();
        self.tape.constant(v)
    }
}
