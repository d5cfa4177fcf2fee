//! Data-parallel training of wengert-nn models, as PyTorch's `torch.distributed` +
//! `DistributedDataParallel` do it: every rank holds the whole model, trains on its shard of
//! each global batch, and gradients are averaged over the ranks before each optimizer step.
//!
//! | PyTorch | here |
//! |---|---|
//! | `dist.init_process_group("mpi")` | `MpiComm::init` (feature `mpi`) |
//! | `dist.get_rank()`, `get_world_size()` | [`Communicator::rank`], [`Communicator::size`] |
//! | `dist.all_reduce(t)`, `broadcast(t, src)`, `barrier()` | [`Communicator::all_reduce`], [`Communicator::broadcast`], [`Communicator::barrier`] |
//! | `DistributedDataParallel(model, bucket_cap_mb=25)` | [`DistributedDataParallel::with_config`] with [`DdpConfig`] |
//! | gradients averaged during `loss.backward()` | [`DistributedDataParallel::all_reduce_gradients`] after it |
//! | `DistributedSampler` | [`shard_batch`] / [`DistributedDataParallel::shard`] of each global batch |
//!
//! The communicators: [`Local`] (one rank), [`ThreadComm`] (ranks as threads of one process,
//! for tests; no system library) and `MpiComm` (feature `mpi`: processes under `mpirun`, through rsmpi and
//! the system's MPI library, so the default build needs no MPI).
//!
//! ```
//! use wengert_dist::{DistributedDataParallel, ThreadComm};
//! use wengert_nn::prelude::*;
//!
//! // a global batch of 8 rows, 2 ranks: each trains on 4 of them
//! let x = Tensor::<f32>::from_fn([8, 3], |i| (i[0] + i[1]) as f32 / 10.0);
//! let y = Tensor::from_slice(&[0usize, 1, 0, 1, 1, 0, 1, 0]);
//! let losses = ThreadComm::run(2, |comm| {
//!     let mut ddp = DistributedDataParallel::new(Linear::<f32>::new(3, 2), comm).unwrap();
//!     let mut opt = Adam::new(AdamConfig::default());
//!     let (xs, ys) = (ddp.shard(&x).unwrap(), ddp.shard(&y).unwrap());
//!     let mut losses = Vec::new();
//!     for _ in 0..3 {
//!         let tape = Tape::new();
//!         let loss = cross_entropy(ddp.forward(tape.constant(xs.clone())), &ys);
//!         losses.push(ddp.average_scalar(loss.value().item()).unwrap()); // the global batch's loss
//!         let mut grads = loss.backward_release();
//!         ddp.all_reduce_gradients(&mut grads).unwrap();
//!         opt.step(&mut ddp, &grads).unwrap();
//!     }
//!     losses
//! })
//! .unwrap();
//! assert_eq!(losses[0], losses[1]); // both ranks see the same global loss
//! ```
//!
//! Under MPI the same code runs with `let comm = MpiComm::init()?` in place of the thread
//! group and the program started by `mpirun -np 2` (see the `ddp_digits` example).

#![warn(missing_docs)]

mod comm;
mod ddp;
mod error;
#[cfg(feature = "mpi")]
mod mpi_comm;
mod threads;

pub use comm::{BucketSet, CommElement, Communicator, Local, Producer, ReduceOp};
pub use ddp::{
    shard_batch, shard_range, shard_rows, BucketReduce, DdpConfig, DistFloat, DistributedDataParallel, ReduceStats,
    DEFAULT_BUCKET_CAP_BYTES,
};
pub use error::{DistError, Result, TensorInfo, TensorKind};
#[cfg(feature = "mpi")]
pub use mpi_comm::{MpiComm, MAX_BUCKETS_IN_FLIGHT};
pub use threads::ThreadComm;
