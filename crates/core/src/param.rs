//! Parameters: tensors that outlive a tape.
//!
//! A model owns its `Param`s. Each training step binds them into a fresh [`Tape`](crate::Tape)
//! with [`Tape::param`](crate::Tape::param), backward returns their gradients by id, and the
//! optimizer updates the values in place.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::element::Float;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Identity of a parameter, unique in the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(u64);

static NEXT_PARAM_ID: AtomicU64 = AtomicU64::new(1);

impl ParamId {
    fn fresh() -> Self {
        ParamId(NEXT_PARAM_ID.fetch_add(1, Ordering::Relaxed))
    }
}

/// A trainable tensor with an identity.
///
/// ```
/// use wengert_core::{Param, Tape, Tensor};
/// let mut w = Param::new(Tensor::<f64>::from_slice(&[1.0, 2.0]));
/// let tape = Tape::new();
/// let loss = tape.param(&w).square().sum();
/// let grads = loss.backward();
/// let g = grads.param(&w).unwrap().clone();
/// w.value_mut().axpy_(-0.5, &g);                 // one SGD step, lr 0.5
/// assert_eq!(w.value().to_vec(), vec![0.0, 0.0]);
/// ```
#[derive(Debug)]
pub struct Param<T: Float = f32> {
    id: ParamId,
    value: Tensor<T>,
    trainable: bool,
}

impl<T: Float> Clone for Param<T> {
    /// A copy is a different parameter (new id) with the same value.
    fn clone(&self) -> Self {
        Param { id: ParamId::fresh(), value: self.value.clone(), trainable: self.trainable }
    }
}

impl<T: Float> Param<T> {
    /// A trainable parameter.
    ///
    /// ```
    /// use wengert_core::{Param, Tensor};
    /// let mut w = Param::new(Tensor::from_slice(&[1.0f32, 2.0]));
    /// assert!(w.is_trainable());
    /// ```
    pub fn new(value: Tensor<T>) -> Self {
        Param { id: ParamId::fresh(), value, trainable: true }
    }

    /// Its identity.
    ///
    /// ```
    /// use wengert_core::{Param, Tensor};
    /// let mut w = Param::new(Tensor::from_slice(&[1.0f32, 2.0]));
    /// let copy = w.clone();
    /// assert_ne!(w.id(), copy.id()); // a clone is a new parameter with the same value
    /// ```
    pub fn id(&self) -> ParamId {
        self.id
    }

    /// Its current value.
    ///
    /// ```
    /// use wengert_core::{Param, Tensor};
    /// let mut w = Param::new(Tensor::from_slice(&[1.0f32, 2.0]));
    /// assert_eq!(w.value().to_vec(), vec![1.0, 2.0]);
    /// ```
    pub fn value(&self) -> &Tensor<T> {
        &self.value
    }

    /// Mutable access to the value (for optimizers); the shape should not change.
    ///
    /// ```
    /// use wengert_core::{Param, Tensor};
    /// let mut w = Param::new(Tensor::from_slice(&[1.0f32, 2.0]));
    /// *w.value_mut() = Tensor::from_slice(&[5.0, 2.0]); // as an optimizer's update does
    /// assert_eq!(w.value().to_vec(), vec![5.0, 2.0]);
    /// ```
    pub fn value_mut(&mut self) -> &mut Tensor<T> {
        &mut self.value
    }

    /// Replaces the value; `Err` naming both shapes if the shape differs. A tape that bound
    /// this parameter before keeps the value it bound (bind on a fresh tape to see the new one).
    ///
    /// ```
    /// use wengert_core::{Param, Tensor};
    /// let mut w = Param::new(Tensor::from_slice(&[1.0f32, 2.0]));
    /// w.set(Tensor::from_slice(&[3.0, 4.0])).unwrap();
    /// assert_eq!(w.value().to_vec(), vec![3.0, 4.0]);
    /// assert!(w.set(Tensor::from_slice(&[1.0])).is_err()); // a [1] for a [2]
    /// ```
    pub fn set(&mut self, value: Tensor<T>) -> Result<()> {
        if value.shape() != self.value.shape() {
            return Err(Error::shapes(
                "Param::set",
                &[self.value.shape(), value.shape()],
                "the new value has a different shape",
            ));
        }
        self.value = value;
        Ok(())
    }

    /// Whether optimizers update it (and backward must reach it).
    ///
    /// ```
    /// use wengert_core::{Param, Tensor};
    /// let mut w = Param::new(Tensor::from_slice(&[1.0f32, 2.0]));
    /// w.set_trainable(false);
    /// assert!(!w.is_trainable());
    /// ```
    pub fn is_trainable(&self) -> bool {
        self.trainable
    }

    /// Freezes (`false`) or unfreezes (`true`) the parameter. A frozen parameter is bound as a
    /// constant and optimizers skip it.
    ///
    /// ```
    /// use wengert_core::{Param, Tensor};
    /// let mut w = Param::new(Tensor::from_slice(&[1.0f32, 2.0]));
    /// w.set_trainable(false); // frozen: bound as a constant, no gradient
    /// let tape = wengert_core::Tape::new();
    /// assert!(!tape.param(&w).requires_grad());
    /// ```
    pub fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
    }
}
