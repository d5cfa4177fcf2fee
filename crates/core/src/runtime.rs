//! Process-level settings that make the kernels fast: memory reuse and thread count.
//!
//! **Memory.** glibc's malloc serves blocks above its mmap threshold (128 KiB at start) with
//! fresh `mmap`s and hands them back to the kernel on `free`, so every large temporary is
//! faulted in page by page on its next use. Measured here, that made `a*b` on 1M f32 take
//! 2 ms instead of under 0.1 ms. The first time a tensor of [`LARGE_TENSOR_BYTES`] or more is
//! created, wengert raises the mmap threshold to its maximum (32 MiB) and the trim threshold to
//! 1 GiB, so freed buffers stay in the heap and are reused without page faults (PyTorch keeps
//! a caching allocator for the same reason). Set `WENGERT_KEEP_MEMORY=0` to leave malloc alone.

use std::sync::atomic::{AtomicBool, Ordering};

/// Tensors at least this large (bytes) trigger the allocator setting once: below it glibc
/// serves blocks from its heap anyway.
pub const LARGE_TENSOR_BYTES: usize = 128 * 1024;

static TUNED: AtomicBool = AtomicBool::new(false);

/// Applies the allocator setting described in the module docs (once; later calls are free).
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
        /// Free memory at the top of the heap kept rather than returned to the kernel.
        const TRIM_THRESHOLD: i32 = 1 << 30;
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Whether the allocator setting has been applied.
pub fn allocator_tuned() -> bool {
    TUNED.load(Ordering::Relaxed)
}

// ------------------------------------------------------------------------------ threads

use std::sync::atomic::AtomicUsize;

/// 0 until first read: then `WENGERT_NUM_THREADS` or the core count.
static THREADS: AtomicUsize = AtomicUsize::new(0);

fn default_threads() -> usize {
    std::env::var("WENGERT_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Sets the number of threads large kernels use (1 = everything on the calling thread).
/// Matrix products follow `matrixmultiply`'s own `MATMUL_NUM_THREADS` (read once, at its
/// first use), except batches of products, which wengert splits itself.
///
/// ```
/// wengert_core::runtime::set_num_threads(1);
/// assert_eq!(wengert_core::runtime::num_threads(), 1);
/// ```
pub fn set_num_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

/// The number of threads large kernels use ([`crate::parallel`] runs their tasks):
/// `WENGERT_NUM_THREADS` if set, else one per available core, until [`set_num_threads`].
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
