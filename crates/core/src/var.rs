//! [`Var`]: a handle on a tape node. The differentiable ops on it live in [`crate::ops`].

use std::fmt;

use crate::element::Float;
use crate::shape::Shape;
use crate::tape::{NodeId, Tape};
use crate::tensor::Tensor;

/// A value recorded on a [`Tape`]: two words, `Copy`, so expressions read like math.
///
/// ```
/// use wengert_core::{Tape, Tensor};
/// let tape = Tape::<f64>::new();
/// let w = tape.var(Tensor::new(vec![1.0, 2.0], [2]));
/// let x = tape.constant(Tensor::new(vec![3.0, 4.0], [2]));
/// let y = (w * x).sum().tanh();
/// let g = y.backward();
/// assert_eq!(g.wrt(w).dims(), &[2]);
/// ```
#[derive(Clone, Copy)]
pub struct Var<'t, T: Float = f32> {
    pub(crate) tape: &'t Tape<T>,
    pub(crate) id: NodeId,
}

impl<'t, T: Float> Var<'t, T> {
    /// The tape this value is recorded on.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// assert!(std::ptr::eq(x.tape(), &tape));
    /// ```
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// Its position on the tape.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// let y = x * 2.0;
    /// assert_eq!((x.id(), y.id()), (0, 1)); // positions in recording order
    /// ```
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The forward value (a cheap clone of shared storage).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// assert_eq!((x * 2.0).value().to_vec(), vec![2.0, 4.0, 6.0]);
    /// ```
    #[track_caller]
    pub fn value(&self) -> Tensor<T> {
        self.tape.value_of(self.id)
    }

    /// The shape of the value.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// assert_eq!(x.shape().dims(), &[3]);
    /// ```
    pub fn shape(&self) -> Shape {
        self.tape.nodes.borrow()[self.id].value.shape().clone()
    }

    /// Number of elements of the value.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// assert_eq!(x.numel(), 3);
    /// ```
    pub fn numel(&self) -> usize {
        self.tape.nodes.borrow()[self.id].value.numel()
    }

    /// Number of dimensions of the value.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// assert_eq!((x.ndim(), x.sum().ndim()), (1, 0));
    /// ```
    pub fn ndim(&self) -> usize {
        self.tape.nodes.borrow()[self.id].value.ndim()
    }

    /// The single value of a one-element `Var`.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// assert_eq!(x.sum().item(), 6.0);
    /// ```
    #[track_caller]
    pub fn item(&self) -> T {
        self.tape.nodes.borrow()[self.id].value().item()
    }

    /// Whether [`Var::backward_release`] has dropped this value (its shape is still known).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// let h = x * x;
    /// let _grads = h.sum().backward_release();
    /// assert!(h.is_released() && !x.is_released()); // the activation was freed, the input kept
    /// assert_eq!(h.shape().dims(), &[3]);
    /// ```
    pub fn is_released(&self) -> bool {
        self.tape.nodes.borrow()[self.id].released
    }

    /// Whether a gradient flows through this value.
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// let c = tape.constant(Tensor::from_slice(&[1.0, 1.0, 1.0]));
    /// assert!(x.requires_grad() && (x * c).requires_grad() && !c.requires_grad());
    /// ```
    pub fn requires_grad(&self) -> bool {
        self.tape.requires_grad_of(self.id)
    }

    /// The name of the op that produced it (`"var"`, `"constant"`, `"matmul"`...).
    ///
    /// ```
    /// use wengert_core::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[1.0, 2.0, 3.0]));
    /// assert_eq!((x.op_name(), x.sum().op_name()), ("var", "sum"));
    /// ```
    pub fn op_name(&self) -> &'static str {
        self.tape.nodes.borrow()[self.id].op
    }

    #[track_caller]
    pub(crate) fn same_tape(&self, other: &Var<'t, T>, op: &'static str) {
        if !std::ptr::eq(self.tape, other.tape) {
            panic!("wengert: {op}: operands are recorded on different tapes");
        }
    }
}

impl<T: Float> fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_released() {
            return write!(f, "Var(#{} {}, released, shape={})", self.id, self.op_name(), self.shape());
        }
        write!(f, "Var(#{} {}, {:?})", self.id, self.op_name(), self.value())
    }
}

impl<T: Float> fmt::Display for Var<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value(), f)
    }
}
