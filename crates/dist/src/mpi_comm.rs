//! [`MpiComm`]: the MPI communicator (feature `mpi`), over rsmpi and the system's MPI library.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Mutex;

use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::environment::Universe;
use mpi::topology::{Communicator as _, SimpleCommunicator};

use crate::comm::{check_root, collect_streamed, streamed_protocol_error, BucketSet, CommElement, Communicator, Producer, ReduceOp};
use crate::error::{DistError, Result};

/// Buckets whose non-blocking all-reduce may be in flight at once in
/// [`MpiComm::all_reduce_sum_buckets`]: bucket `k` is waited for after bucket `k + 1` has been
/// packed and started. Two is the least that lets packing overlap a reduction; more would only
/// hold more buffers, since all of them are waited for in order anyway.
///
/// ```
/// assert_eq!(wengert_dist::MAX_BUCKETS_IN_FLIGHT, 2);
/// ```
pub const MAX_BUCKETS_IN_FLIGHT: usize = 2;

/// `MPI_COMM_WORLD` of a process started by `mpirun` (or alone, as a group of one).
///
/// [`MpiComm::init`] initializes MPI (`MPI_Init_thread` with `MPI_THREAD_SINGLE`: call the
/// collectives from one thread) and dropping the `MpiComm` finalizes it, so create one per
/// process, at the start of `main`, and keep it until the end. MPI errors abort the job
/// (`MPI_ERRORS_ARE_FATAL`, MPI's default), so the collectives here return `Err` only for
/// arguments they check first.
///
/// ```no_run
/// use wengert_dist::{Communicator, MpiComm};
/// // run as: mpirun -np 2 target/release/examples/my_program
/// let comm = MpiComm::init().unwrap();
/// let mut x = [comm.rank() as f32];
/// comm.all_reduce_sum(&mut x).unwrap();
/// assert_eq!(x[0], (0..comm.size()).sum::<usize>() as f32);
/// ```
pub struct MpiComm {
    world: SimpleCommunicator,
    /// the send and receive buffers of the last [`MpiComm::all_reduce_sum_buckets`], kept so
    /// the next call (the next training step) writes into memory that is already mapped
    /// instead of page-faulting in twice the gradients' size every step
    bucket_buffers: Mutex<Option<Box<dyn Any + Send>>>,
    /// the copy of the input [`MpiComm::all_reduce`] sends from (rsmpi has no `MPI_IN_PLACE`),
    /// kept for the same reason
    send_buffer: Mutex<Option<Box<dyn Any + Send>>>,
    // dropped after `world`: finalizes MPI
    _universe: Universe,
}

impl std::fmt::Debug for MpiComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiComm").field("rank", &self.rank()).field("size", &self.size()).finish()
    }
}

impl MpiComm {
    /// Initializes MPI and returns the world communicator; [`DistError::Mpi`] if MPI was
    /// already initialized in this process (only one `MpiComm` can exist).
    ///
    /// ```no_run
    /// let comm = wengert_dist::MpiComm::init().unwrap();
    /// assert!(wengert_dist::MpiComm::init().is_err()); // once per process
    /// # drop(comm);
    /// ```
    pub fn init() -> Result<Self> {
        let universe = mpi::initialize()
            .ok_or_else(|| DistError::Mpi("MPI is already initialized in this process: MpiComm::init can be called once".into()))?;
        let world = universe.world();
        Ok(MpiComm { world, bucket_buffers: Mutex::new(None), send_buffer: Mutex::new(None), _universe: universe })
    }

    /// The rsmpi communicator, for collectives this crate does not wrap.
    ///
    /// ```no_run
    /// use mpi::topology::Communicator;
    /// let comm = wengert_dist::MpiComm::init().unwrap();
    /// println!("{} of {}", comm.world().rank(), comm.world().size());
    /// ```
    pub fn world(&self) -> &SimpleCommunicator {
        &self.world
    }

    /// The host's name (`MPI_Get_processor_name`), for logs of a multi-host run.
    ///
    /// ```no_run
    /// let comm = wengert_dist::MpiComm::init().unwrap();
    /// println!("running on {}", comm.processor_name());
    /// ```
    pub fn processor_name(&self) -> String {
        mpi::environment::processor_name().unwrap_or_else(|_| "?".into())
    }
}

fn system_op(op: ReduceOp) -> SystemOperation {
    match op {
        ReduceOp::Sum => SystemOperation::sum(),
        ReduceOp::Min => SystemOperation::min(),
        ReduceOp::Max => SystemOperation::max(),
    }
}

impl Communicator for MpiComm {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn all_reduce<T: CommElement>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        if buf.is_empty() {
            return Ok(()); // every rank has the same length, so every rank skips
        }
        let cached = self.send_buffer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut send: Vec<T> = cached.and_then(|b| b.downcast::<Vec<T>>().ok()).map_or_else(Vec::new, |b| *b);
        send.clear();
        send.extend_from_slice(buf);
        self.world.all_reduce_into(&send[..], buf, system_op(op));
        *self.send_buffer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new(send));
        Ok(())
    }

    fn broadcast<T: CommElement>(&self, buf: &mut [T], root: usize) -> Result<()> {
        check_root(root, self.size())?;
        if buf.is_empty() {
            return Ok(());
        }
        self.world.process_at_rank(root as i32).broadcast_into(buf);
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.world.barrier();
        Ok(())
    }

    /// Packs bucket 0, starts its `MPI_Iallreduce`, packs bucket 1 and starts it, then waits
    /// for bucket 0 and unpacks it, and so on, with at most [`MAX_BUCKETS_IN_FLIGHT`]
    /// reductions outstanding. OpenMPI progresses a non-blocking collective mostly inside MPI
    /// calls (there is no progress thread by default), so what overlaps is the packing of the
    /// next bucket with the network transfer of the current one.
    fn all_reduce_sum_buckets<T: CommElement, B: BucketSet<T> + ?Sized>(&self, buckets: &mut B) -> Result<()> {
        let n = buckets.count();
        type Buffers<T> = (Vec<Vec<T>>, Vec<Vec<T>>);
        let cached = self.bucket_buffers.lock().unwrap_or_else(|e| e.into_inner()).take();
        let (mut sends, mut sums): Buffers<T> = cached.and_then(|b| b.downcast::<Buffers<T>>().ok()).map_or_else(Default::default, |b| *b);
        sends.resize_with(n, Vec::new);
        sums.resize_with(n, Vec::new);
        mpi::request::scope(|scope| {
            let mut pending = VecDeque::with_capacity(MAX_BUCKETS_IN_FLIGHT + 1);
            for (k, (send, sum)) in sends.iter_mut().zip(sums.iter_mut()).enumerate() {
                send.clear();
                buckets.pack(k, send);
                sum.resize(send.len(), T::default());
                let send: &Vec<T> = send;
                let request = self.world.immediate_all_reduce_into(scope, &send[..], &mut sum[..], SystemOperation::sum());
                pending.push_back((k, request));
                if pending.len() >= MAX_BUCKETS_IN_FLIGHT {
                    let (j, request) = pending.pop_front().expect("non-empty");
                    buckets.unpack(j, request.wait_for_data());
                }
            }
            while let Some((j, request)) = pending.pop_front() {
                buckets.unpack(j, request.wait_for_data());
            }
        });
        *self.bucket_buffers.lock().unwrap_or_else(|e| e.into_inner()) = Some(Box::new((sends, sums)));
        Ok(())
    }

    /// Starts each bucket's `MPI_Iallreduce` as `produce` hands it over and returns to
    /// `produce` (backward goes on computing the next gradients while the reduction is in
    /// flight). OpenMPI has no progress thread by default and moves a non-blocking collective
    /// on only inside MPI calls, so each hand-over also tests the reductions in flight; the
    /// rest are waited for when `produce` returns. The buckets move in and the sums move out:
    /// nothing is copied.
    fn all_reduce_sum_streamed<T: CommElement>(&self, count: usize, produce: &mut Producer<'_, T>) -> Result<Vec<Vec<T>>> {
        let mut sends: Vec<Vec<T>> = vec![Vec::new(); count];
        let mut recvs: Vec<Vec<T>> = vec![Vec::new(); count];
        let mut given = vec![false; count];
        let mut failed: Option<DistError> = None;
        mpi::request::scope(|scope| {
            let mut slots: Vec<Option<(&mut Vec<T>, &mut Vec<T>)>> = sends.iter_mut().zip(recvs.iter_mut()).map(Some).collect();
            let mut pending = VecDeque::with_capacity(count);
            produce(&mut |k, data| {
                let Some((send, recv)) = slots.get_mut(k).and_then(Option::take) else {
                    failed.get_or_insert_with(|| streamed_protocol_error(k, count, "given twice or out of range"));
                    return;
                };
                given[k] = true;
                *send = data;
                recv.resize(send.len(), T::default());
                let send: &Vec<T> = send;
                pending.push_back(self.world.immediate_all_reduce_into(scope, &send[..], &mut recv[..], SystemOperation::sum()));
                // progress: retire the oldest reductions that have completed
                while let Some(request) = pending.pop_front() {
                    if let Err(still) = request.test() {
                        pending.push_front(still);
                        break;
                    }
                }
            });
            pending.into_iter().for_each(|request| request.wait_without_status());
        });
        if let Some(e) = failed {
            return Err(e);
        }
        collect_streamed(recvs.into_iter().zip(given).map(|(r, g)| g.then_some(r)).collect())
    }
}
