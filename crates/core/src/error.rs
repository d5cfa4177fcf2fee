//! The error type of wengert-core: every message names the op and the shapes involved.

use std::fmt;

use crate::shape::Shape;

/// What went wrong in a tensor op. The `Display` text names the op and the shapes,
/// e.g. ``matmul: inner dimensions differ: lhs [2, 3] vs rhs [4, 5]``.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// Two or more operands have shapes the op cannot combine.
    ShapeMismatch {
        /// the op that failed
        op: &'static str,
        /// the shapes it was given, in argument order
        shapes: Vec<Shape>,
        /// why the shapes do not fit
        reason: String,
    },
    /// An axis outside `-ndim..ndim`.
    BadAxis {
        /// the op that failed
        op: &'static str,
        /// the axis given
        axis: isize,
        /// the shape it was applied to
        shape: Shape,
    },
    /// An index outside its axis.
    IndexOutOfRange {
        /// the op that failed
        op: &'static str,
        /// the index given
        index: usize,
        /// the length of the axis indexed
        len: usize,
        /// the shape indexed
        shape: Shape,
    },
    /// Any other invalid argument (an empty list, a bad step, a wrong element count...).
    InvalidArgument {
        /// the op that failed
        op: &'static str,
        /// what is wrong
        reason: String,
    },
}

impl Error {
    pub(crate) fn shapes(op: &'static str, shapes: &[&Shape], reason: impl Into<String>) -> Self {
        Error::ShapeMismatch {
            op,
            shapes: shapes.iter().map(|s| (*s).clone()).collect(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }

    /// The name of the op that failed.
    ///
    /// ```
    /// use wengert_core::{kernels::matmul::matmul, Tensor};
    /// let err = matmul(&Tensor::<f32>::zeros([2, 3]), &Tensor::zeros([4, 5])).unwrap_err();
    /// assert_eq!(err.op(), "matmul");
    /// assert!(err.to_string().starts_with("matmul: "));
    /// assert_eq!(Tensor::<f32>::zeros([2, 3]).try_reshape([4]).unwrap_err().op(), "reshape");
    /// ```
    pub fn op(&self) -> &'static str {
        match self {
            Error::ShapeMismatch { op, .. }
            | Error::BadAxis { op, .. }
            | Error::IndexOutOfRange { op, .. }
            | Error::InvalidArgument { op, .. } => op,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { op, shapes, reason } => {
                write!(f, "{op}: {reason}: shapes ")?;
                for (i, s) in shapes.iter().enumerate() {
                    if i > 0 {
                        write!(f, " and ")?;
                    }
                    write!(f, "{s}")?;
                }
                Ok(())
            }
            Error::BadAxis { op, axis, shape } => write!(
                f,
                "{op}: axis {axis} is out of range for shape {shape} ({} dims)",
                shape.len()
            ),
            Error::IndexOutOfRange {
                op,
                index,
                len,
                shape,
            } => write!(
                f,
                "{op}: index {index} is out of range for an axis of length {len} (shape {shape})"
            ),
            Error::InvalidArgument { op, reason } => write!(f, "{op}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with wengert-core's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Unwraps an op result, panicking with the op's message at the caller's location.
pub(crate) trait OrPanic<T> {
    fn or_panic(self) -> T;
}

impl<T> OrPanic<T> for Result<T> {
    #[track_caller]
    #[inline]
    fn or_panic(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("wengert: {e}"),
        }
    }
}
