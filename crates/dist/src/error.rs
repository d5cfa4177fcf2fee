//! Typed errors of the communicators and of [`DistributedDataParallel`](crate::DistributedDataParallel).
//!
//! Every error that depends on what several ranks did is raised on all of them with the same
//! value (the ranks exchange what they found before returning), so one rank never returns while
//! another waits for it in the next collective.

use std::fmt;

/// What a rank holds at one position of a model's state: a parameter or a buffer, with its
/// name and shape. Two ranks disagree when any of the three differs (see
/// [`DistError::TensorMismatch`]).
///
/// ```
/// use wengert_dist::{TensorInfo, TensorKind};
/// let w = TensorInfo { name: "0.weight".into(), kind: TensorKind::Param { trainable: true }, dims: vec![128, 64] };
/// assert_eq!(w.to_string(), "'0.weight' [128, 64] (trainable parameter)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// the name [`Module::named_params`](wengert_nn::Module::named_params) or
    /// [`Module::named_buffers`](wengert_nn::Module::named_buffers) gives
    pub name: String,
    /// parameter or buffer
    pub kind: TensorKind,
    /// shape
    pub dims: Vec<usize>,
}

/// Whether a [`TensorInfo`] is a parameter (trainable or frozen) or a buffer (float or integer).
///
/// ```
/// use wengert_dist::TensorKind;
/// assert_eq!(TensorKind::IntBuffer.to_string(), "integer buffer");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// a [`Param`](wengert_core::Param); `trainable` as [`Param::is_trainable`](wengert_core::Param::is_trainable)
    Param {
        /// whether optimizers update it (and gradients are reduced for it)
        trainable: bool,
    },
    /// a [`Buffer::Float`](wengert_nn::Buffer::Float) (BatchNorm's running statistics)
    FloatBuffer,
    /// a [`Buffer::Int`](wengert_nn::Buffer::Int) (`num_batches_tracked`)
    IntBuffer,
}

impl fmt::Display for TensorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TensorKind::Param { trainable: true } => "trainable parameter",
            TensorKind::Param { trainable: false } => "frozen parameter",
            TensorKind::FloatBuffer => "float buffer",
            TensorKind::IntBuffer => "integer buffer",
        })
    }
}

impl fmt::Display for TensorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}' {:?} ({})", self.name, self.dims, self.kind)
    }
}

/// An error of a collective operation or of data-parallel training.
///
/// ```
/// use wengert_dist::{shard_range, DistError};
/// let err = shard_range(30, 0, 4).unwrap_err();
/// assert_eq!(err, DistError::BatchNotDivisible { len: 30, size: 4 });
/// assert!(err.to_string().contains("30 rows"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum DistError {
    /// A configuration value that cannot work (a bucket cap of 0 bytes, a group of 0 ranks).
    InvalidConfig {
        /// the field or argument
        field: &'static str,
        /// why
        reason: String,
    },
    /// A broadcast from a rank that is not in the group.
    InvalidRoot {
        /// the root asked for
        root: usize,
        /// the number of ranks
        size: usize,
    },
    /// The ranks called different collectives at the same point (in-process communicators
    /// detect it; MPI would hang or corrupt data).
    CollectiveMismatch {
        /// the first rank whose call differs from rank 0's
        rank: usize,
        /// rank 0's call, e.g. `"all_reduce(Sum) of f32"`
        root_call: String,
        /// that rank's call
        call: String,
    },
    /// The ranks passed buffers of different lengths to one collective (in-process
    /// communicators detect it).
    LengthMismatch {
        /// the collective
        call: String,
        /// the first rank whose length differs from rank 0's
        rank: usize,
        /// rank 0's length
        root_len: usize,
        /// that rank's length
        len: usize,
    },
    /// Another rank of an in-process group dropped its communicator (its thread returned or
    /// panicked) while this rank waited for it in a collective.
    PeerLeft {
        /// the rank that left
        rank: usize,
    },
    /// Ranks hold models with different numbers of parameters or buffers.
    CountMismatch {
        /// `"parameters"` or `"buffers"`
        what: &'static str,
        /// the first rank that differs from rank 0
        rank: usize,
        /// rank 0's count
        root_count: usize,
        /// that rank's count
        count: usize,
    },
    /// Ranks hold different tensors at one position of their models' state (name, kind or
    /// shape differ).
    TensorMismatch {
        /// position in the model's state (parameters in `visit_params` order, then buffers)
        index: usize,
        /// the first rank that differs from rank 0
        rank: usize,
        /// rank 0's tensor
        root: Box<TensorInfo>,
        /// that rank's tensor
        found: Box<TensorInfo>,
    },
    /// What a rank sent could not be read (the ranks run different builds of wengert-dist).
    Protocol {
        /// the rank whose message could not be read
        rank: usize,
        /// what was wrong
        reason: String,
    },
    /// The global batch does not split into equal shards, so the averaged gradient would not
    /// be the global batch's (use `drop_last` and a batch size divisible by the number of ranks).
    BatchNotDivisible {
        /// rows in the global batch
        len: usize,
        /// number of ranks
        size: usize,
    },
    /// A global batch of 0 rows.
    EmptyBatch,
    /// A trainable parameter got a gradient on some ranks and not on others (it was not used
    /// in some ranks' forward), so its average cannot be written back on every rank.
    GradientMismatch {
        /// the parameter
        name: String,
        /// ranks on which it had a gradient
        with_grad: usize,
        /// number of ranks
        size: usize,
        /// whether it had one on the rank returning this error
        here: bool,
    },
    /// A parameter's value differs across ranks ([`DistributedDataParallel::check_params_in_sync`](crate::DistributedDataParallel::check_params_in_sync)).
    ParamsDiverged {
        /// the parameter
        name: String,
        /// the first element (row-major) that differs
        element: usize,
        /// the smallest value of that element over the ranks
        low: f64,
        /// the largest
        high: f64,
    },
    /// A streamed reduction's producer gave a bucket twice, out of range, or never
    /// ([`Communicator::all_reduce_sum_streamed`](crate::Communicator::all_reduce_sum_streamed)).
    StreamedBucket {
        /// the bucket
        bucket: usize,
        /// the number of buckets
        count: usize,
        /// `"given twice or out of range"` or `"never given"`
        problem: &'static str,
    },
    /// MPI could not be used (already initialized in this process, or finalized).
    Mpi(String),
}

impl fmt::Display for DistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DistError::InvalidConfig { field, reason } => write!(f, "wengert-dist: invalid {field}: {reason}"),
            DistError::InvalidRoot { root, size } => {
                write!(f, "wengert-dist: broadcast from rank {root}, but the group has {size} rank(s) (0..{size})")
            }
            DistError::CollectiveMismatch { rank, root_call, call } => {
                write!(f, "wengert-dist: ranks called different collectives: rank 0 called {root_call}, rank {rank} called {call}")
            }
            DistError::LengthMismatch { call, rank, root_len, len } => write!(
                f,
                "wengert-dist: {call} with buffers of different lengths: rank 0 passed {root_len} element(s), rank {rank} passed {len}"
            ),
            DistError::PeerLeft { rank } => {
                write!(f, "wengert-dist: rank {rank} left the group (its communicator was dropped) while this rank waited for it in a collective")
            }
            DistError::CountMismatch { what, rank, root_count, count } => {
                write!(f, "wengert-dist: the ranks' models differ: rank 0 has {root_count} {what}, rank {rank} has {count}")
            }
            DistError::TensorMismatch { index, rank, root, found } => {
                write!(f, "wengert-dist: the ranks' models differ at state entry #{index}: rank 0 has {root}, rank {rank} has {found}")
            }
            DistError::Protocol { rank, reason } => write!(
                f,
                "wengert-dist: could not read what rank {rank} sent ({reason}); do all ranks run the same build?"
            ),
            DistError::BatchNotDivisible { len, size } => write!(
                f,
                "wengert-dist: a global batch of {len} rows does not split into {size} equal shards ({len} % {size} = {}); \
                 use a batch size divisible by {size} and drop_last",
                len % size.max(&1)
            ),
            DistError::EmptyBatch => write!(f, "wengert-dist: a global batch of 0 rows has no shards"),
            DistError::GradientMismatch { name, with_grad, size, here } => write!(
                f,
                "wengert-dist: parameter '{name}' got a gradient on {with_grad} of {size} ranks ({} on this one): \
                 every rank's forward must use the same parameters",
                if *here { "one" } else { "none" }
            ),
            DistError::ParamsDiverged { name, element, low, high } => write!(
                f,
                "wengert-dist: parameter '{name}' differs across ranks at element {element}: values from {low:e} to {high:e}"
            ),
            DistError::StreamedBucket { bucket, count, problem } => {
                write!(f, "wengert-dist: all_reduce_sum_streamed: bucket {bucket} of {count} was {problem}")
            }
            DistError::Mpi(reason) => write!(f, "wengert-dist: MPI: {reason}"),
        }
    }
}

impl std::error::Error for DistError {}

/// `Result` with a [`DistError`].
pub type Result<T, E = DistError> = std::result::Result<T, E>;
