//! The error type of wengert-nn: file, data and model errors, each naming what it is about.

use std::fmt;
use std::path::PathBuf;

use wengert_core::Shape;

/// Errors from loading data, saving/loading weights and training.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing a file failed.
    Io {
        /// the file
        path: PathBuf,
        /// the OS error
        source: std::io::Error,
    },
    /// A data file has a bad row or value (`line` counts from 1).
    Parse {
        /// the file
        path: PathBuf,
        /// 1-based line number
        line: usize,
        /// what is wrong with it
        reason: String,
    },
    /// A weights file is truncated or corrupt.
    Format {
        /// the file
        path: PathBuf,
        /// what is wrong with it
        reason: String,
    },
    /// A model parameter has no tensor in the file.
    MissingTensor {
        /// the parameter's name
        name: String,
    },
    /// The file holds a tensor the model has no parameter for.
    UnexpectedTensor {
        /// the tensor's name
        name: String,
    },
    /// A tensor in the file has another shape or dtype than the parameter.
    TensorMismatch {
        /// the parameter's name
        name: String,
        /// the parameter's shape (boxed to keep `Error` small)
        expected: Box<Shape>,
        /// the file's shape (and dtype, in `reason`)
        found: Box<Shape>,
        /// dtype or shape, in words
        reason: String,
    },
    /// A trainable parameter received no gradient in an optimizer step: the graph is cut.
    NoGradient {
        /// the parameter's name
        param: String,
    },
    /// A bad argument (an empty dataset, a split fraction outside (0, 1)...).
    InvalidArgument {
        /// what is wrong
        reason: String,
    },
    /// A pretrained model's folder or one of its files is not there.
    ModelNotFound {
        /// the file or folder looked for
        path: PathBuf,
        /// how to get the model
        hint: String,
    },
    /// A tensor op failed.
    Core(wengert_core::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Parse { path, line, reason } => write!(f, "{}:{line}: {reason}", path.display()),
            Error::Format { path, reason } => write!(f, "{}: not a valid weights file: {reason}", path.display()),
            Error::MissingTensor { name } => write!(f, "tensor `{name}` is missing from the file"),
            Error::UnexpectedTensor { name } => write!(f, "the file has tensor `{name}`, which the model does not"),
            Error::TensorMismatch { name, expected, found, reason } => {
                write!(f, "tensor `{name}`: {reason}: the model has {expected}, the file has {found}")
            }
            Error::NoGradient { param } => write!(
                f,
                "parameter `{param}` received no gradient: the graph from the loss to it is cut \
                 (freeze it with set_trainable(false) if that is intended)"
            ),
            Error::InvalidArgument { reason } => write!(f, "{reason}"),
            Error::ModelNotFound { path, hint } => write!(f, "{}: no such model file or folder; {hint}", path.display()),
            Error::Core(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Core(e) => Some(e),
            _ => None,
        }
    }
}

impl From<wengert_core::Error> for Error {
    fn from(e: wengert_core::Error) -> Self {
        Error::Core(e)
    }
}

/// `Result` with wengert-nn's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
