//! Process-level settings that make the kernels fast: memory reuse and thread count.
//!
//! **Memory.** glibc's malloc serves blocks above its mmap threshold (128 KiB at start) with
//! fresh `mmap`s and hands them back to the kernel on `free`, so every large temporary is
//! faulted in page by page on its next use. Measured here, that made `a*b` on 1M f32 take
//! 2 ms instead of under 0.1 ms. The first time a tensor of [`LARGE_TENSOR_BYTES`] or more is
//! created, wengert raises the mmap threshold to its maximum (32 MiB) and turns heap trimming
//! off, so freed buffers stay in the heap and are reused without page faults (PyTorch keeps a
//! caching allocator for the same reason). The heap then stays at its peak size, as PyTorch's
//! cache does. A trim threshold of 1 GiB (the setting until 2026-12-06) was not enough: the
//! MiniLM encoder's forward + backward at 32 x 128 tokens peaks at 1.6 GB of heap, which was
//! handed back after every step and faulted in again (2.3M page faults per bench run against
//! 0.69M, forward + backward 3.05-3.20 -> 2.59-2.65 s). Set `WENGERT_KEEP_MEMORY=0` to leave malloc alone.

use std::sync::atomic::{AtomicBool, Ordering};

/// Tensors at least this large (bytes) trigger the allocator setting once: below it glibc
/// serves blocks from its heap anyway.
pub const LARGE_TENSOR_BYTES: usize = 128 * 1024;

static TUNED: AtomicBool = AtomicBool::new(false);

/// Applies the allocator setting described in the module docs (once; later calls are free).
///
/// ```
/// use wengert_core::runtime::{allocator_tuned, keep_freed_memory};
/// keep_freed_memory();
/// keep_freed_memory(); // a second call only reads a flag
/// assert!(allocator_tuned()); // applied (or, with WENGERT_KEEP_MEMORY=0, deliberately skipped)
/// ```
#[inline]
pub fn keep_freed_memory() {
    if !TUNED.load(Ordering::Relaxed) {
        tune_allocator();
    }
}

#[cold]
fn tune_allocator() {
    if TUNED.swap(true, Ordering::Relaxed) {
        return;
    }
    if std::env::var("WENGERT_KEEP_MEMORY").is_ok_and(|v| v == "0") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes malloc's tuning parameters; any value is accepted.
    unsafe {
        /// glibc's largest allowed mmap threshold on 64-bit targets.
        const MMAP_THRESHOLD_MAX: i32 = 32 * 1024 * 1024;
        /// -1: never return free memory at the top of the heap to the kernel (`mallopt(3)`).
        const TRIM_THRESHOLD: i32 = -1;
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Whether the allocator setting has been applied.
///
/// ```
/// use wengert_core::{runtime::{allocator_tuned, LARGE_TENSOR_BYTES}, Tensor};
/// assert!(!allocator_tuned()); // nothing large made yet in this process
/// let big = Tensor::new(vec![1.0f32; LARGE_TENSOR_BYTES / 4], [LARGE_TENSOR_BYTES / 4]); // the first large tensor applies it
/// assert_eq!(big.numel() * 4, LARGE_TENSOR_BYTES);
/// assert!(allocator_tuned());
/// ```
pub fn allocator_tuned() -> bool {
    TUNED.load(Ordering::Relaxed)
}

// ------------------------------------------------------------------------------ threads

use std::sync::atomic::AtomicUsize;

/// 0 until first read: then `WENGERT_NUM_THREADS` or the core count.
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The most threads the kernels use: the cores this process may run on
/// (`std::thread::available_parallelism`). The pool's static schedule gives each thread an
/// equal part of every op, so threads beyond the cores only wait on each other (999 threads on
/// 2 cores ran 4.5x slower).
///
/// ```
/// use wengert_core::runtime::{max_threads, num_threads, set_num_threads};
/// assert_eq!(max_threads(), std::thread::available_parallelism().map_or(1, |n| n.get()));
/// set_num_threads(max_threads() + 8); // capped: more threads than cores only wait
/// assert_eq!(num_threads(), max_threads());
/// ```
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The thread count for a `WENGERT_NUM_THREADS` value (`None`: unset) on `cores` cores, and
/// the warning to print if the value was not taken as given: not a positive integer (then
/// `cores`), or above `cores` (then capped to it).
fn threads_from_env(value: Option<&str>, cores: usize) -> (usize, Option<String>) {
    let Some(value) = value else {
        return (cores, None);
    };
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 && n <= cores => (n, None),
        Ok(n) if n > cores => (
            cores,
            Some(format!("wengert: WENGERT_NUM_THREADS={value} is more than the {cores} cores available; using {cores}")),
        ),
        _ => (
            cores,
            Some(format!("wengert: WENGERT_NUM_THREADS={value:?} is not a positive integer; using the {cores} cores available")),
        ),
    }
}

fn default_threads() -> usize {
    let value = std::env::var_os("WENGERT_NUM_THREADS").map(|v| v.to_string_lossy().into_owned());
    let (n, warning) = threads_from_env(value.as_deref(), max_threads());
    if let Some(w) = warning {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| eprintln!("{w}"));
    }
    n
}

/// Sets the number of threads large kernels use (1 = everything on the calling thread),
/// capped at [`max_threads`]. Matrix products follow it too: a large product is split into
/// row (or column) blocks of C, one per thread, a batch of products into groups.
///
/// ```
/// wengert_core::runtime::set_num_threads(1);
/// assert_eq!(wengert_core::runtime::num_threads(), 1);
/// wengert_core::runtime::set_num_threads(100_000);
/// assert_eq!(wengert_core::runtime::num_threads(), wengert_core::runtime::max_threads());
/// ```
pub fn set_num_threads(n: usize) {
    THREADS.store(n.clamp(1, max_threads()), Ordering::Relaxed);
}

/// The number of threads large kernels use ([`crate::parallel`] runs their tasks):
/// `WENGERT_NUM_THREADS` if set, else one per available core, until [`set_num_threads`].
/// A value that is not a positive integer (`0`, `-1`, `abc`) or is above [`max_threads`]
/// gives one warning on stderr, then the core count or the cap.
///
/// ```
/// use wengert_core::runtime::{max_threads, num_threads, set_num_threads};
/// let n = num_threads(); // WENGERT_NUM_THREADS, or one per core
/// assert!((1..=max_threads()).contains(&n));
/// set_num_threads(1);
/// assert_eq!(num_threads(), 1);
/// ```
#[inline]
pub fn num_threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let n = default_threads();
            THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::threads_from_env;

    /// `WENGERT_NUM_THREADS` values: a positive integer up to the cores is taken (spaces
    /// trimmed); anything else falls back to the cores or is capped, always with a warning.
    #[test]
    fn thread_count_from_the_environment() {
        assert_eq!(threads_from_env(None, 8), (8, None));
        assert_eq!(threads_from_env(Some("3"), 8), (3, None));
        assert_eq!(threads_from_env(Some(" 8 "), 8), (8, None));
        for bad in ["0", "-1", "abc", "", "2.5"] {
            let (n, warning) = threads_from_env(Some(bad), 8);
            assert_eq!(n, 8, "{bad:?}");
            assert!(warning.expect("a warning").contains("is not a positive integer"), "{bad:?}");
        }
        let (n, warning) = threads_from_env(Some("999"), 2);
        assert_eq!(n, 2);
        assert!(warning.expect("a warning").contains("more than the 2 cores"));
    }
}
