//! [`ThreadComm`]: ranks as threads of one process, for testing data-parallel code without MPI.

use std::any::Any;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::comm::{check_root, CommElement, Communicator, ReduceOp};
use crate::error::{DistError, Result};

/// One rank of a group whose ranks are threads of this process. Collectives meet at a
/// shared slot table: each rank deposits its buffer, waits for the others, then computes the
/// result from all deposits in rank order (so every rank gets the same bits), and waits
/// again before the slots can be reused. Calls of different collectives or lengths across the
/// ranks are [`DistError::CollectiveMismatch`] / [`DistError::LengthMismatch`] on every rank;
/// a rank whose `ThreadComm` is dropped (its thread returned or panicked) makes the others'
/// pending and later collectives fail with [`DistError::PeerLeft`] instead of hanging.
///
/// Meant for tests: each collective copies every rank's buffer once.
///
/// ```
/// use std::thread;
/// use wengert_dist::{Communicator, ThreadComm};
/// let handles: Vec<_> = ThreadComm::group(3)
///     .unwrap()
///     .into_iter()
///     .map(|comm| thread::spawn(move || {
///         let mut v = [if comm.rank() == 2 { 42i64 } else { 0 }];
///         comm.broadcast(&mut v, 2).unwrap(); // rank 2's value everywhere
///         v[0]
///     }))
///     .collect();
/// let got: Vec<i64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
/// assert_eq!(got, vec![42, 42, 42]);
/// ```
pub struct ThreadComm {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ThreadComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadComm").field("rank", &self.rank).field("size", &self.size).finish()
    }
}

struct Shared {
    state: Mutex<State>,
    arrived_cv: Condvar,
}

struct State {
    /// each rank's deposit for the collective in progress
    slots: Vec<Option<Slot>>,
    /// ranks waiting at the current meeting point
    arrived: usize,
    /// meeting points completed so far
    generation: u64,
    /// the first rank whose communicator was dropped
    left: Option<usize>,
}

struct Slot {
    /// what was called, e.g. "all_reduce(Sum) of f32", to compare across ranks
    call: String,
    data: Box<dyn Any + Send>,
}

impl ThreadComm {
    /// The `size` ranks of a new group, rank `i` at index `i`; move each to its own thread.
    /// [`DistError::InvalidConfig`] if `size` is 0.
    ///
    /// ```
    /// use wengert_dist::{Communicator, ThreadComm};
    /// let group = ThreadComm::group(2).unwrap();
    /// assert_eq!((group[1].rank(), group[1].size()), (1, 2));
    /// assert!(ThreadComm::group(0).is_err());
    /// ```
    pub fn group(size: usize) -> Result<Vec<ThreadComm>> {
        if size == 0 {
            return Err(DistError::InvalidConfig { field: "ThreadComm::group size", reason: "a group needs at least one rank".into() });
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State { slots: (0..size).map(|_| None).collect(), arrived: 0, generation: 0, left: None }),
            arrived_cv: Condvar::new(),
        });
        Ok((0..size).map(|rank| ThreadComm { rank, size, shared: Arc::clone(&shared) }).collect())
    }

    /// Runs `f` on `size` scoped threads, one per rank of a new group, and returns their
    /// results in rank order. A panic in `f` is resumed on the caller's thread (after the
    /// other ranks returned: their collectives fail with [`DistError::PeerLeft`]).
    ///
    /// ```
    /// use wengert_dist::{Communicator, ThreadComm};
    /// let ranks = ThreadComm::run(4, |comm| comm.rank()).unwrap();
    /// assert_eq!(ranks, vec![0, 1, 2, 3]);
    /// ```
    pub fn run<R: Send>(size: usize, f: impl Fn(ThreadComm) -> R + Sync) -> Result<Vec<R>> {
        let group = Self::group(size)?;
        let f = &f;
        let results = std::thread::scope(|s| {
            let handles: Vec<_> = group.into_iter().map(|comm| s.spawn(move || f(comm))).collect();
            handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
        });
        let mut out = Vec::with_capacity(size);
        for r in results {
            match r {
                Ok(v) => out.push(v),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(out)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code panics while holding the lock; a poisoned lock still has consistent state.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every rank has arrived at this meeting point.
    fn meet<'a>(&'a self, mut st: MutexGuard<'a, State>) -> Result<MutexGuard<'a, State>> {
        if let Some(rank) = st.left {
            return Err(DistError::PeerLeft { rank });
        }
        st.arrived += 1;
        if st.arrived == self.size {
            st.arrived = 0;
            st.generation += 1;
            self.shared.arrived_cv.notify_all();
            return Ok(st);
        }
        let generation = st.generation;
        loop {
            st = self.shared.arrived_cv.wait(st).unwrap_or_else(|e| e.into_inner());
            if st.generation != generation {
                return Ok(st);
            }
            if let Some(rank) = st.left {
                return Err(DistError::PeerLeft { rank });
            }
        }
    }

    /// One collective: deposit `data` under `call`, meet, let `combine` read every deposit in
    /// rank order, meet again (so no rank overwrites its slot while another still reads).
    fn collective<D: Any + Send, R>(&self, call: String, data: D, combine: impl FnOnce(&[&D]) -> Result<R>) -> Result<R> {
        let mut st = self.lock();
        st.slots[self.rank] = Some(Slot { call, data: Box::new(data) });
        let st = self.meet(st)?;
        let result = Self::check_calls(&st).and_then(|()| {
            let deposits: Vec<&D> = st
                .slots
                .iter()
                .map(|s| s.as_ref().and_then(|s| s.data.downcast_ref::<D>()).expect("calls checked equal, so types are"))
                .collect();
            combine(&deposits)
        });
        let mut st = self.meet(st)?;
        st.slots[self.rank] = None;
        result
    }

    /// [`DistError::CollectiveMismatch`] naming the first rank whose call differs from rank 0's.
    fn check_calls(st: &State) -> Result<()> {
        let call = |r: usize| st.slots[r].as_ref().map_or("nothing", |s| s.call.as_str());
        match (1..st.slots.len()).find(|&r| call(r) != call(0)) {
            Some(rank) => Err(DistError::CollectiveMismatch { rank, root_call: call(0).to_string(), call: call(rank).to_string() }),
            None => Ok(()),
        }
    }

    fn check_lengths(call: &str, lens: impl Iterator<Item = usize>) -> Result<usize> {
        let lens: Vec<usize> = lens.collect();
        match lens.iter().position(|&l| l != lens[0]) {
            Some(rank) => Err(DistError::LengthMismatch { call: call.to_string(), rank, root_len: lens[0], len: lens[rank] }),
            None => Ok(lens[0]),
        }
    }
}

impl Communicator for ThreadComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce<T: CommElement>(&self, buf: &mut [T], op: ReduceOp) -> Result<()> {
        let call = format!("all_reduce({op:?}) of {}", T::NAME);
        let reduced = self.collective(call.clone(), buf.to_vec(), |all: &[&Vec<T>]| {
            Self::check_lengths(&call, all.iter().map(|v| v.len()))?;
            let mut acc = all[0].clone();
            for other in &all[1..] {
                for (a, &b) in acc.iter_mut().zip(other.iter()) {
                    *a = T::reduce(op, *a, b);
                }
            }
            Ok(acc)
        })?;
        buf.copy_from_slice(&reduced);
        Ok(())
    }

    fn broadcast<T: CommElement>(&self, buf: &mut [T], root: usize) -> Result<()> {
        // Checked before depositing: every rank passes the same root, so all return here.
        check_root(root, self.size)?;
        let call = format!("broadcast from rank {root} of {}", T::NAME);
        let data = self.collective(call.clone(), buf.to_vec(), |all: &[&Vec<T>]| {
            Self::check_lengths(&call, all.iter().map(|v| v.len()))?;
            Ok(all[root].clone())
        })?;
        buf.copy_from_slice(&data);
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.collective("barrier".to_string(), (), |_: &[&()]| Ok(()))
    }
}

impl Drop for ThreadComm {
    fn drop(&mut self) {
        let mut st = self.lock();
        st.left.get_or_insert(self.rank);
        self.shared.arrived_cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_reduce_sums_mins_and_maxes_in_rank_order() {
        let out = ThreadComm::run(3, |c| {
            let r = c.rank() as f64;
            let mut s = [r, 10.0 * r];
            c.all_reduce(&mut s, ReduceOp::Sum).unwrap();
            let mut lo = [r - 1.0];
            c.all_reduce(&mut lo, ReduceOp::Min).unwrap();
            let mut hi = [r as u64];
            c.all_reduce(&mut hi, ReduceOp::Max).unwrap();
            (s, lo[0], hi[0])
        })
        .unwrap();
        for (s, lo, hi) in out {
            assert_eq!(s, [3.0, 30.0]);
            assert_eq!((lo, hi), (-1.0, 2));
        }
    }

    #[test]
    fn sums_are_bitwise_equal_on_every_rank() {
        // values whose sum depends on the order of addition in f32
        let out = ThreadComm::run(4, |c| {
            let mut x: Vec<f32> = (0..64).map(|i| ((i * 7 + c.rank() * 13) as f32).sin() * 1e3f32.powi(c.rank() as i32 % 2)).collect();
            c.all_reduce_sum(&mut x).unwrap();
            x.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
        })
        .unwrap();
        assert!(out.iter().all(|bits| *bits == out[0]));
    }

    #[test]
    fn mismatched_calls_and_lengths_fail_on_every_rank() {
        let out = ThreadComm::run(2, |c| {
            let mut a = vec![0f32; 2 + c.rank()];
            let lengths = c.all_reduce_sum(&mut a);
            let calls = if c.rank() == 0 { c.barrier() } else { c.broadcast(&mut [0u8], 0) };
            (lengths, calls)
        })
        .unwrap();
        for (lengths, calls) in out {
            assert_eq!(lengths, Err(DistError::LengthMismatch { call: "all_reduce(Sum) of f32".into(), rank: 1, root_len: 2, len: 3 }));
            assert_eq!(
                calls,
                Err(DistError::CollectiveMismatch { rank: 1, root_call: "barrier".into(), call: "broadcast from rank 0 of u8".into() })
            );
        }
    }

    #[test]
    fn a_rank_that_leaves_fails_the_others_instead_of_hanging() {
        let out = ThreadComm::run(2, |c| {
            if c.rank() == 1 {
                return Ok(()); // drops its communicator without joining the barrier
            }
            c.barrier()
        })
        .unwrap();
        assert_eq!(out[0], Err(DistError::PeerLeft { rank: 1 }));
    }

    #[test]
    fn broadcast_checks_the_root() {
        let out = ThreadComm::run(2, |c| c.broadcast(&mut [1.0f32], 2)).unwrap();
        assert!(out.iter().all(|r| *r == Err(DistError::InvalidRoot { root: 2, size: 2 })));
    }
}
