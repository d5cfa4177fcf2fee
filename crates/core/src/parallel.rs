//! The fork-join pool the large kernels split their work over.
//!
//! A kernel hands [`for_each_task`] a number of tasks; task `i` always runs on thread
//! `i % threads` of the pool, with the calling thread as thread 0. That fixed (static)
//! schedule is what makes op chains fast: when `a*b` writes the second half of its output on
//! worker 1, the `+ c` that follows reads that half on worker 1 again, from the L2 it was
//! just written to. (A work-stealing pool deals the halves out at random; measured here,
//! `sum` of 1M f32 ran in 47 µs on rayon against 25 µs with this schedule.)
//!
//! Workers spin for [`SPIN`] after each job before they sleep, so back-to-back kernels
//! don't pay a wake-up (tens of microseconds) each; OpenMP runtimes do the same. One caller
//! uses the pool at a time: a kernel called while the pool is busy (from another thread, or
//! from inside a task) runs its tasks on the calling thread.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long an idle worker keeps polling for the next job before it parks.
pub const SPIN: Duration = Duration::from_micros(200);

type TaskFn = dyn Fn(usize) + Sync;

struct Worker {
    /// Bumped by the caller to hand this worker the current job.
    ticket: AtomicU64,
    sleeping: AtomicBool,
    thread: Thread,
}

struct Pool {
    /// Held by the one caller using the pool.
    busy: AtomicBool,
    /// The current job: `f` (lifetime erased), the task count and the thread count. Written
    /// only while no worker runs; read by a worker after it sees its ticket change.
    job: UnsafeCell<(*const TaskFn, usize, usize)>,
    /// Workers that have not yet finished the current job.
    pending: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    workers: Mutex<Vec<&'static Worker>>,
    epoch: AtomicU64,
}

// SAFETY: `job` is written only by the caller holding `busy` while `pending` is 0 (no worker
// reads it), and read by workers only between their ticket's Acquire and their Release
// decrement of `pending`; the pointer it holds is to a `Sync` closure.
unsafe impl Sync for Pool {}
unsafe impl Send for Pool {}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        busy: AtomicBool::new(false),
        job: UnsafeCell::new((std::ptr::null::<fn(usize)>() as *const TaskFn, 0, 0)),
        pending: AtomicUsize::new(0),
        panic: Mutex::new(None),
        workers: Mutex::new(Vec::new()),
        epoch: AtomicU64::new(0),
    })
}

fn worker_loop(me: &'static Worker, index: usize) {
    let pool = pool();
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            let t = me.ticket.load(Ordering::Acquire);
            if t != seen {
                seen = t;
                break;
            }
            spins += 1;
            if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            me.sleeping.store(true, Ordering::SeqCst);
            if me.ticket.load(Ordering::SeqCst) == seen {
                std::thread::park();
            }
            me.sleeping.store(false, Ordering::SeqCst);
        }
        // SAFETY: see `Pool`'s Sync impl; the caller keeps `f` alive until `pending` is 0.
        let (f, tasks, threads) = unsafe { *pool.job.get() };
        let f = unsafe { &*f };
        let run = catch_unwind(AssertUnwindSafe(|| {
            (index..tasks).step_by(threads).for_each(f);
        }));
        if let Err(payload) = run {
            pool.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
        }
        pool.pending.fetch_sub(1, Ordering::Release);
    }
}

/// Workers 1..n (thread 0 is the caller), started on first use.
fn workers(n: usize) -> Vec<&'static Worker> {
    let pool = pool();
    let mut ws = pool.workers.lock().unwrap_or_else(|e| e.into_inner());
    while ws.len() < n {
        let index = ws.len() + 1;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("wengert-{index}"))
            .spawn(move || {
                let me: &'static Worker = Box::leak(Box::new(Worker {
                    ticket: AtomicU64::new(0),
                    sleeping: AtomicBool::new(false),
                    thread: std::thread::current(),
                }));
                tx.send(me).expect("the pool waits for its new worker");
                worker_loop(me, index);
            })
            .expect("the OS refused to start a wengert worker thread");
        ws.push(rx.recv().expect("a new worker thread reports in"));
    }
    ws[..n].to_vec()
}

/// Waits for the workers of the current job and releases the pool, also when the caller's
/// own tasks panic (the workers hold a reference into the caller's frame).
struct JobGuard<'a>(&'a Pool);

impl Drop for JobGuard<'_> {
    fn drop(&mut self) {
        let mut spins = 0u32;
        while self.0.pending.load(Ordering::Acquire) != 0 {
            spins += 1;
            if spins < 1 << 16 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        self.0.busy.store(false, Ordering::Release);
    }
}

/// Runs `f(0)`, ..., `f(tasks - 1)` on the pool, task `i` on thread `i % threads` (thread 0
/// is the caller), and returns when all are done. A panic in any task is re-raised here.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// let total = AtomicUsize::new(0);
/// wengert_core::parallel::for_each_task(8, |i| {
///     total.fetch_add(i, Ordering::Relaxed);
/// });
/// assert_eq!(total.into_inner(), 28);
/// ```
pub fn for_each_task(tasks: usize, f: impl Fn(usize) + Sync) {
    let threads = crate::runtime::num_threads().min(tasks);
    let pool = pool();
    if threads <= 1 || pool.busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        (0..tasks).for_each(f);
        return;
    }
    let ws = workers(threads - 1);
    // A panic left over from a job whose caller panicked too.
    drop(pool.panic.lock().unwrap_or_else(|e| e.into_inner()).take());
    let f: &(dyn Fn(usize) + Sync + '_) = &f;
    // SAFETY: only the lifetime is erased; JobGuard waits for every worker to be done with
    // `f` before this frame (and `f`) can go away, on return or on unwind.
    let f: *const TaskFn = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync + '_), &'static TaskFn>(f) };
    // SAFETY: we hold `busy` and `pending` is 0, so no worker reads `job` now.
    unsafe { *pool.job.get() = (f, tasks, threads) };
    pool.pending.store(threads - 1, Ordering::Relaxed);
    let guard = JobGuard(pool);
    let ticket = pool.epoch.fetch_add(1, Ordering::Relaxed) + 1;
    for w in &ws {
        w.ticket.store(ticket, Ordering::SeqCst);
        if w.sleeping.load(Ordering::SeqCst) {
            w.thread.unpark();
        }
    }
    // SAFETY: as above, `f` is alive for this whole call.
    (0..tasks).step_by(threads).for_each(unsafe { &*f });
    drop(guard);
    if let Some(payload) = pool.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
        resume_unwind(payload);
    }
}

/// How many equal parts to cut `n` items into: one per thread, but none smaller than
/// `min_part` (1 = stay on the calling thread).
///
/// ```
/// use wengert_core::parallel::parts_for;
/// use wengert_core::runtime::{num_threads, set_num_threads};
/// set_num_threads(2); // (capped at the cores available)
/// let threads = num_threads();
/// assert_eq!(parts_for(1_000, 4_096), 1); // too small to split
/// assert_eq!(parts_for(1_000_000, 4_096), threads); // one part per thread
/// assert_eq!(parts_for(0, 0), 1);
/// ```
pub fn parts_for(n: usize, min_part: usize) -> usize {
    (n / min_part.max(1)).clamp(1, crate::runtime::num_threads())
}

/// A raw pointer the tasks of one job share, each reading or writing only its own disjoint
/// range of the memory behind it.
pub(crate) struct SendPtr<T>(pub(crate) *mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
// SAFETY: users hand disjoint ranges (or read-only access) to different tasks.
unsafe impl<T: Send> Sync for SendPtr<T> {}
unsafe impl<T: Send> Send for SendPtr<T> {}
impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the Sync wrapper, not the raw field).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// Calls `f(start, part)` for `parts` contiguous, disjoint parts of `dst` (as equal as
/// possible, in order), part `i` on thread `i`; `start` is the part's offset in `dst`.
/// `align` rounds every part boundary to a multiple of it (say a row length).
///
/// ```
/// use wengert_core::parallel::for_each_part_mut;
/// // 5 rows of 3: in 2 parts, the boundary falls on a row boundary (after row 2)
/// let mut m = vec![0usize; 15];
/// for_each_part_mut(&mut m, 2, 3, |start, part| {
///     assert_eq!(start % 3, 0);
///     for (k, v) in part.iter_mut().enumerate() {
///         *v = start + k; // each element learns its own index
///     }
/// });
/// assert_eq!(m, (0..15).collect::<Vec<_>>());
/// let starts = std::sync::Mutex::new(Vec::new());
/// for_each_part_mut(&mut m, 2, 3, |start, part| starts.lock().unwrap().push((start, part.len())));
/// let mut starts = starts.into_inner().unwrap();
/// starts.sort();
/// assert_eq!(starts, [(0, 6), (6, 9)]); // units·i/parts rows: 5·1/2 = 2 rows, then 3
/// ```
pub fn for_each_part_mut<T: Send>(dst: &mut [T], parts: usize, align: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let n = dst.len();
    let align = align.max(1);
    let units = n.div_ceil(align);
    let parts = parts.clamp(1, units.max(1));
    if parts == 1 {
        f(0, dst);
        return;
    }
    let bound = |i: usize| (units * i / parts * align).min(n);
    let base = SendPtr(dst.as_mut_ptr());
    for_each_task(parts, |i| {
        let (lo, hi) = (bound(i), bound(i + 1));
        // SAFETY: the ranges [bound(i), bound(i+1)) are disjoint and inside dst, which the
        // caller's &mut borrow keeps alive and unaliased for the whole call.
        let part = unsafe { std::slice::from_raw_parts_mut(base.get().add(lo), hi - lo) };
        f(lo, part);
    });
}

/// A `Vec` of `n` elements built in place by [`for_each_part_mut`]'s `f(start, part)` over
/// its uninitialized slots, without zeroing them first.
///
/// # Safety
/// `f` must write every slot of the part it is given.
pub(crate) unsafe fn collect_parts<T: Send>(
    n: usize,
    parts: usize,
    align: usize,
    f: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    for_each_part_mut(&mut v.spare_capacity_mut()[..n], parts, align, f);
    // SAFETY: the parts cover all n slots, and the caller's `f` wrote each of them.
    unsafe { v.set_len(n) };
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_slice_in_order() {
        for n in [0usize, 1, 7, 100, 1001] {
            for parts in 1..5 {
                let mut v = vec![0usize; n];
                for_each_part_mut(&mut v, parts, 3, |start, p| {
                    assert!(start % 3 == 0 || start == n);
                    p.iter_mut().enumerate().for_each(|(i, x)| *x = start + i + 1);
                });
                assert!(v.iter().enumerate().all(|(i, &x)| x == i + 1), "n {n} parts {parts}");
            }
        }
    }

    #[test]
    fn a_panicking_task_panics_the_caller_and_the_pool_recovers() {
        let r = std::panic::catch_unwind(|| {
            for_each_task(4, |i| {
                if i == 3 {
                    panic!("task three");
                }
            })
        });
        let msg = r.expect_err("the panic reaches the caller");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"task three"));
        let sum = AtomicUsize::new(0);
        for_each_task(4, |i| {
            sum.fetch_add(i, Ordering::Relaxed);
        });
        assert_eq!(sum.into_inner(), 6);
    }

    #[test]
    fn nested_and_concurrent_calls_run_inline() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for_each_task(2, |_| {
                        for_each_task(3, |j| {
                            total.fetch_add(j, Ordering::Relaxed);
                        })
                    })
                });
            }
        });
        assert_eq!(total.into_inner(), 3 * 2 * 3);
    }
}
