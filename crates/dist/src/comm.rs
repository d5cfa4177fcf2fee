//! The communicator abstraction: the few collectives data-parallel training needs.
//!
//! [`Communicator`] is implemented by [`Local`] (one rank, every collective is the identity),
//! [`ThreadComm`](crate::ThreadComm) (ranks as threads of one process, for tests) and, with the
//! `mpi` feature, [`MpiComm`](crate::MpiComm) (processes started by `mpirun`).
//!
//! As in MPI, every rank of a group must make the same collective calls in the same order
//! with buffers of the same length. The in-process communicators check this and return
//! [`DistError::CollectiveMismatch`] or [`DistError::LengthMismatch`] on every rank; MPI does
//! not check it (a mismatch hangs or aborts the job).

use crate::error::{DistError, Result};

/// The reduction of an all-reduce, applied elementwise over the ranks' buffers.
///
/// ```
/// use wengert_dist::{Communicator, Local, ReduceOp};
/// let mut x = [1.0f32, -2.0];
/// Local.all_reduce(&mut x, ReduceOp::Max).unwrap(); // one rank: the identity
/// assert_eq!(x, [1.0, -2.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// `MPI_SUM`; integers wrap on overflow
    Sum,
    /// `MPI_MIN`
    Min,
    /// `MPI_MAX`
    Max,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for u64 {}
    impl Sealed for i64 {}
    impl Sealed for u8 {}
}

macro_rules! comm_element_trait {
    ($($extra:tt)*) => {
        /// An element type the communicators move and reduce: `f32`, `f64` (gradients,
        /// parameters, float buffers), `i64` (integer buffers), `u64` (counts and flags) and
        /// `u8` (bytes). Sealed: these are the types MPI has built-in datatypes for.
        ///
        /// ```
        /// use wengert_dist::{CommElement, ReduceOp};
        /// assert_eq!(f32::reduce(ReduceOp::Sum, 1.5, 2.0), 3.5);
        /// assert_eq!(<u64 as CommElement>::NAME, "u64");
        /// ```
        pub trait CommElement: sealed::Sealed + Copy + Default + PartialEq + std::fmt::Debug + Send + Sync + 'static $($extra)* {
            /// The type's name in error messages.
            const NAME: &'static str;
            /// `op` of two values (what an all-reduce computes for each pair of ranks).
            fn reduce(op: ReduceOp, a: Self, b: Self) -> Self;
        }
    };
}
#[cfg(feature = "mpi")]
comm_element_trait!(+ mpi::traits::Equivalence);
#[cfg(not(feature = "mpi"))]
comm_element_trait!();

macro_rules! impl_comm_element {
    ($t:ty, $sum:expr, $min:expr, $max:expr) => {
        impl CommElement for $t {
            const NAME: &'static str = stringify!($t);
            #[inline]
            fn reduce(op: ReduceOp, a: Self, b: Self) -> Self {
                match op {
                    ReduceOp::Sum => $sum(a, b),
                    ReduceOp::Min => $min(a, b),
                    ReduceOp::Max => $max(a, b),
                }
            }
        }
    };
}
impl_comm_element!(f32, |a, b| a + b, f32::min, f32::max);
impl_comm_element!(f64, |a, b| a + b, f64::min, f64::max);
impl_comm_element!(u64, u64::wrapping_add, Ord::min, Ord::max);
impl_comm_element!(i64, i64::wrapping_add, Ord::min, Ord::max);
impl_comm_element!(u8, u8::wrapping_add, Ord::min, Ord::max);

/// A set of flattened buckets to sum over the ranks, for
/// [`Communicator::all_reduce_sum_buckets`]: the communicator asks for bucket `k` with
/// [`pack`](BucketSet::pack) and hands its sum back with [`unpack`](BucketSet::unpack).
/// A communicator that can reduce in the background (MPI's `MPI_Iallreduce`) packs bucket
/// `k + 1` while bucket `k` is being reduced; every bucket is unpacked exactly once, in order.
///
/// ```
/// use wengert_dist::{BucketSet, Communicator, Local};
/// struct Two(Vec<Vec<f64>>);
/// impl BucketSet<f64> for Two {
///     fn count(&self) -> usize { self.0.len() }
///     fn pack(&mut self, k: usize, out: &mut Vec<f64>) { out.extend_from_slice(&self.0[k]) }
///     fn unpack(&mut self, k: usize, sum: &[f64]) { self.0[k].copy_from_slice(sum) }
/// }
/// let mut b = Two(vec![vec![1.0, 2.0], vec![3.0]]);
/// Local.all_reduce_sum_buckets(&mut b).unwrap();
/// assert_eq!(b.0, vec![vec![1.0, 2.0], vec![3.0]]); // one rank: sums are the inputs
/// ```
pub trait BucketSet<T> {
    /// Number of buckets.
    fn count(&self) -> usize;
    /// Appends bucket `k`'s elements to `out` (empty on entry). Every rank must give the same
    /// length for the same `k`.
    fn pack(&mut self, k: usize, out: &mut Vec<T>);
    /// Receives bucket `k`'s elementwise sum over the ranks.
    fn unpack(&mut self, k: usize, sum: &[T]);
}

/// What [`Communicator::all_reduce_sum_streamed`] runs: it computes the buckets and hands
/// each over with `ready(k, data)` as soon as it has it (the data moves, nothing is copied).
pub type Producer<'a, T> = dyn FnMut(&mut dyn FnMut(usize, Vec<T>)) + 'a;

/// A group of ranks and the collectives data-parallel training needs (a subset of MPI's).
///
/// `rank()` is in `0..size()`. Every rank must make the same calls in the same order with
/// buffers of the same length; results are the same on every rank, bit for bit (for a sum,
/// the in-process communicators add in rank order; MPI's built-in reductions compute each
/// element once and send it to every rank for the group sizes and algorithms OpenMPI uses,
/// and [`DistributedDataParallel::check_params_in_sync`](crate::DistributedDataParallel::check_params_in_sync)
/// checks it on a live job).
///
/// ```
/// use wengert_dist::{Communicator, ThreadComm};
/// // two ranks as threads: each contributes rank + 1, both get 1 + 2
/// let sums = ThreadComm::run(2, |comm| {
///     let mut x = [comm.rank() as f64 + 1.0];
///     comm.all_reduce_sum(&mut x).unwrap();
///     x[0]
/// })
/// .unwrap();
/// assert_eq!(sums, vec![3.0, 3.0]);
/// ```
pub trait Communicator {
    /// This process's (or thread's) rank, in `0..size()`.
    ///
    /// ```
    /// use wengert_dist::{Communicator, ThreadComm};
    /// assert_eq!(ThreadComm::run(3, |c| c.rank()).unwrap(), vec![0, 1, 2]);
    /// ```
    fn rank(&self) -> usize;

    /// Number of ranks in the group.
    ///
    /// ```
    /// use wengert_dist::{Communicator, Local, ThreadComm};
    /// assert_eq!(Local.size(), 1);
    /// assert_eq!(ThreadComm::run(3, |c| c.size()).unwrap(), vec![3, 3, 3]);
    /// ```
    fn size(&self) -> usize;

    /// Replaces `buf` on every rank with `op` of all ranks' `buf`, elementwise
    /// (`MPI_Allreduce`).
    ///
    /// ```
    /// use wengert_dist::{Communicator, ReduceOp, ThreadComm};
    /// let lows = ThreadComm::run(2, |c| {
    ///     let mut v = [c.rank() as u64 + 5, 9 - c.rank() as u64]; // [5, 9] and [6, 8]
    ///     c.all_reduce(&mut v, ReduceOp::Min).unwrap();
    ///     v
    /// })
    /// .unwrap();
    /// assert_eq!(lows, vec![[5, 8], [5, 8]]);
    /// ```
    fn all_reduce<T: CommElement>(&self, buf: &mut [T], op: ReduceOp) -> Result<()>;

    /// Replaces `buf` on every rank with rank `root`'s `buf` (`MPI_Bcast`);
    /// [`DistError::InvalidRoot`] unless `root < size()`. Every rank passes the same `root`.
    ///
    /// ```
    /// use wengert_dist::{Communicator, ThreadComm};
    /// let got = ThreadComm::run(2, |c| {
    ///     let mut w = [c.rank() as f32 * 10.0; 2];
    ///     c.broadcast(&mut w, 1).unwrap(); // rank 1's [10, 10] everywhere
    ///     w
    /// })
    /// .unwrap();
    /// assert_eq!(got, vec![[10.0, 10.0], [10.0, 10.0]]);
    /// ```
    fn broadcast<T: CommElement>(&self, buf: &mut [T], root: usize) -> Result<()>;

    /// Returns once every rank has called it (`MPI_Barrier`).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use wengert_dist::{Communicator, ThreadComm};
    /// let arrived = AtomicUsize::new(0);
    /// let seen = ThreadComm::run(3, |c| {
    ///     arrived.fetch_add(1, Ordering::SeqCst);
    ///     c.barrier().unwrap();
    ///     arrived.load(Ordering::SeqCst) // every rank has arrived by now
    /// })
    /// .unwrap();
    /// assert_eq!(seen, vec![3, 3, 3]);
    /// ```
    fn barrier(&self) -> Result<()>;

    /// `all_reduce(buf, ReduceOp::Sum)`: the elementwise sum over the ranks.
    ///
    /// ```
    /// use wengert_dist::{Communicator, Local};
    /// let mut g = [0.5f32, 1.5];
    /// Local.all_reduce_sum(&mut g).unwrap();
    /// assert_eq!(g, [0.5, 1.5]);
    /// ```
    fn all_reduce_sum<T: CommElement>(&self, buf: &mut [T]) -> Result<()> {
        self.all_reduce(buf, ReduceOp::Sum)
    }

    /// Sums every bucket of `buckets` over the ranks. The default packs, reduces and unpacks
    /// one bucket after another; `MpiComm` (feature `mpi`) starts a non-blocking reduction
    /// of each bucket and packs the next one while it runs.
    ///
    /// ```
    /// use wengert_dist::{BucketSet, Communicator, ThreadComm};
    /// struct One(Vec<f32>);
    /// impl BucketSet<f32> for One {
    ///     fn count(&self) -> usize { 1 }
    ///     fn pack(&mut self, _: usize, out: &mut Vec<f32>) { out.extend_from_slice(&self.0) }
    ///     fn unpack(&mut self, _: usize, sum: &[f32]) { self.0.copy_from_slice(sum) }
    /// }
    /// let out = ThreadComm::run(2, |comm| {
    ///     let mut b = One(vec![comm.rank() as f32; 3]);
    ///     comm.all_reduce_sum_buckets(&mut b).unwrap();
    ///     b.0
    /// })
    /// .unwrap();
    /// assert_eq!(out, vec![vec![1.0; 3], vec![1.0; 3]]); // 0 + 1 on both ranks
    /// ```
    fn all_reduce_sum_buckets<T: CommElement, B: BucketSet<T> + ?Sized>(&self, buckets: &mut B) -> Result<()> {
        let mut buf = Vec::new();
        for k in 0..buckets.count() {
            buf.clear();
            buckets.pack(k, &mut buf);
            self.all_reduce_sum(&mut buf)?;
            buckets.unpack(k, &buf);
        }
        Ok(())
    }

    /// Sums `count` buckets over the ranks as they become ready: `produce` runs once and
    /// calls `ready(k, data)` once for every bucket `k` in `0..count`, in any order but the
    /// same on every rank (with the same `data` length for the same `k`); the sums come back
    /// by `k`. So a reduction can start while `produce` computes the next buckets
    /// ([`DistributedDataParallel::backward`](crate::DistributedDataParallel::backward)
    /// reduces gradients while backward runs). The default reduces each bucket when it is
    /// ready; `MpiComm` starts a non-blocking reduction, tests the ones in flight (which is
    /// when OpenMPI moves them on) and returns to `produce`.
    /// [`DistError::StreamedBucket`] if a bucket is given twice, out of range, or never.
    ///
    /// ```
    /// use wengert_dist::{Communicator, ThreadComm};
    /// let sums = ThreadComm::run(2, |comm| {
    ///     let r = comm.rank() as f64;
    ///     comm.all_reduce_sum_streamed::<f64>(2, &mut |ready| {
    ///         ready(1, vec![r, 10.0]); // bucket 1 is ready first
    ///         ready(0, vec![r + 1.0]);
    ///     })
    ///     .unwrap()
    /// })
    /// .unwrap();
    /// assert_eq!(sums[0], vec![vec![3.0], vec![1.0, 20.0]]);
    /// ```
    fn all_reduce_sum_streamed<T: CommElement>(&self, count: usize, produce: &mut Producer<'_, T>) -> Result<Vec<Vec<T>>> {
        let mut sums: Vec<Option<Vec<T>>> = vec![None; count];
        let mut failed: Option<DistError> = None;
        produce(&mut |k, mut buf| {
            if failed.is_some() {
                return;
            }
            failed = match sums.get(k) {
                Some(None) => self.all_reduce_sum(&mut buf).err(),
                _ => Some(streamed_protocol_error(k, count, "given twice or out of range")),
            };
            if failed.is_none() {
                sums[k] = Some(buf);
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        collect_streamed(sums)
    }
}

/// The sums of [`Communicator::all_reduce_sum_streamed`] by bucket, or the error naming the
/// first bucket `produce` never gave.
pub(crate) fn collect_streamed<T>(sums: Vec<Option<Vec<T>>>) -> Result<Vec<Vec<T>>> {
    let count = sums.len();
    sums.into_iter().enumerate().map(|(k, s)| s.ok_or_else(|| streamed_protocol_error(k, count, "never given"))).collect()
}

pub(crate) fn streamed_protocol_error(bucket: usize, count: usize, problem: &'static str) -> DistError {
    DistError::StreamedBucket { bucket, count, problem }
}

impl<C: Communicator + ?Sized> Communicator for &C {
    fn rank(&self) -> usize {
        (**self).rank()
    }
    fn size(&self) -> usize {
        (**self).size()
    }
    fn all_reduce<T: CommElement>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        (**self).all_reduce(buf, op)
    }
    fn broadcast<T: CommElement>(&self, buf: &mut [T], root: usize) -> Result<()> {
        (**self).broadcast(buf, root)
    }
    fn barrier(&self) -> Result<()> {
        (**self).barrier()
    }
    fn all_reduce_sum_buckets<T: CommElement, B: BucketSet<T> + ?Sized>(&self, buckets: &mut B) -> Result<()> {
        (**self).all_reduce_sum_buckets(buckets)
    }
    fn all_reduce_sum_streamed<T: CommElement>(&self, count: usize, produce: &mut Producer<'_, T>) -> Result<Vec<Vec<T>>> {
        (**self).all_reduce_sum_streamed(count, produce)
    }
}

/// A group of one rank: every collective leaves its buffer as it is. Training wrapped in
/// [`DistributedDataParallel`](crate::DistributedDataParallel) over `Local` is single-process
/// training (the shard is the whole batch, the average of one gradient is that gradient).
///
/// ```
/// use wengert_dist::{Communicator, DistError, Local};
/// assert_eq!((Local.rank(), Local.size()), (0, 1));
/// let mut x = [7u64];
/// Local.broadcast(&mut x, 0).unwrap();
/// assert_eq!(Local.broadcast(&mut x, 1), Err(DistError::InvalidRoot { root: 1, size: 1 }));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Local;

impl Communicator for Local {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce<T: CommElement>(&self, _buf: &mut [T], _op: ReduceOp) -> Result<()> {
        Ok(())
    }
    fn broadcast<T: CommElement>(&self, _buf: &mut [T], root: usize) -> Result<()> {
        check_root(root, 1)
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
}

/// [`DistError::InvalidRoot`] unless `root < size`.
pub(crate) fn check_root(root: usize, size: usize) -> Result<()> {
    if root < size {
        Ok(())
    } else {
        Err(DistError::InvalidRoot { root, size })
    }
}
