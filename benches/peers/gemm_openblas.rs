//! wengert's `matmul` against OpenBLAS in one process: square f32 and f64 products of 512
//! and 1024, on the same threads, in blocks of calls that alternate between the two for the
//! whole run, so that both see the same minutes of a shared host (on ours, two runs a minute
//! apart differ by more than the two libraries do). Printed as the median and best GFLOP/s, as
//! % of the FMA peak measured in the same run (`roofline::Limits::measure`), and as the ratio
//! of the medians.
//!
//! OpenBLAS is loaded at run time from the shared library you name, so nothing is built
//! against it: NumPy's wheels bundle one (`numpy.libs/libscipy_openblas64_-*.so`, 64-bit
//! integers, `scipy_`-prefixed names), and Debian's `libopenblas0` is the other kind (plain
//! `cblas_sgemm`, 32-bit integers). Both are recognised by their symbols.
//!
//! ```text
//! cargo run --release --example gemm_openblas -- <libopenblas.so> [seconds per case] [threads, e.g. 1,2]
//! ```
//!
//! Between blocks (0.25 s of calls each) the program sleeps 30 ms, longer than either
//! library's worker threads spin after a call (wengert's 200 µs; set `OPENBLAS_THREAD_TIMEOUT`
//! low if your OpenBLAS spins longer), so neither runs against the other's spinning threads.

use rand::SeedableRng;
use std::ffi::{c_char, c_void, CStr, CString};
use std::hint::black_box;
use std::time::{Duration, Instant};
use wengert::core::roofline::Limits;
use wengert::prelude::*;

/// `cblas_?gemm(order, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)` with the
/// integer width `I` of the library's build.
type Gemm<E, I> = unsafe extern "C" fn(i32, i32, i32, I, I, I, E, *const E, I, *const E, I, E, *mut E, I);

/// CblasRowMajor, CblasNoTrans
const ROW_MAJOR: i32 = 101;
const NO_TRANS: i32 = 111;

/// The library's square row-major product, whichever integer width it was built with.
enum Blas {
    /// scipy-openblas64 (NumPy's wheels): 64-bit integers.
    Ilp64 { s: Gemm<f32, i64>, d: Gemm<f64, i64>, threads: unsafe extern "C" fn(i32) },
    /// a plain OpenBLAS: 32-bit integers.
    Lp64 { s: Gemm<f32, i32>, d: Gemm<f64, i32>, threads: unsafe extern "C" fn(i32) },
}

/// A symbol of the library `h`, null if it has none of that name.
///
/// # Safety
/// `h` is a handle from `dlopen`.
unsafe fn symbol(h: *mut c_void, name: &str) -> *mut c_void {
    let c = CString::new(name).expect("symbol names have no NUL");
    // SAFETY: forwarded contract; `c` is a valid C string.
    unsafe { libc::dlsym(h, c.as_ptr()) }
}

impl Blas {
    /// Loads the library at `path`; the products, and the name of the kernel set OpenBLAS
    /// picked for this CPU if it says.
    fn open(path: &str) -> Result<(Blas, Option<String>), String> {
        let c_path = CString::new(path).map_err(|e| e.to_string())?;
        // SAFETY: dlopen/dlsym with valid C strings; each symbol is cast to the signature
        // OpenBLAS's cblas.h gives it for the integer width its name tells, the core name
        // function returns a static C string.
        unsafe {
            let h = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if h.is_null() {
                let why = CStr::from_ptr(libc::dlerror()).to_string_lossy().into_owned();
                return Err(format!("cannot load {path}: {why}"));
            }
            let core = ["scipy_openblas_get_corename64_", "openblas_get_corename"].iter().map(|n| symbol(h, n)).find(|p| !p.is_null()).map(|f| {
                let f = std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> *const c_char>(f);
                CStr::from_ptr(f()).to_string_lossy().into_owned()
            });
            let (s64, d64, t64) = (symbol(h, "scipy_cblas_sgemm64_"), symbol(h, "scipy_cblas_dgemm64_"), symbol(h, "scipy_openblas_set_num_threads64_"));
            if !s64.is_null() && !d64.is_null() && !t64.is_null() {
                let blas = Blas::Ilp64 { s: std::mem::transmute::<*mut c_void, Gemm<f32, i64>>(s64), d: std::mem::transmute::<*mut c_void, Gemm<f64, i64>>(d64), threads: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(i32)>(t64) };
                return Ok((blas, core));
            }
            let (s, d, t) = (symbol(h, "cblas_sgemm"), symbol(h, "cblas_dgemm"), symbol(h, "openblas_set_num_threads"));
            if !s.is_null() && !d.is_null() && !t.is_null() {
                let blas = Blas::Lp64 { s: std::mem::transmute::<*mut c_void, Gemm<f32, i32>>(s), d: std::mem::transmute::<*mut c_void, Gemm<f64, i32>>(d), threads: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(i32)>(t) };
                return Ok((blas, core));
            }
            Err(format!("{path} has neither scipy_cblas_sgemm64_ nor cblas_sgemm (with their dgemm and set_num_threads): not an OpenBLAS"))
        }
    }

    fn set_threads(&self, n: usize) {
        // SAFETY: OpenBLAS accepts any positive thread count.
        unsafe {
            match self {
                Blas::Ilp64 { threads, .. } | Blas::Lp64 { threads, .. } => threads(n as i32),
            }
        }
    }

    /// `C = A·B` for row-major n x n matrices.
    fn square<E: Float>(&self, n: usize, a: &[E], b: &[E], c: &mut [E]) {
        assert!(a.len() == n * n && b.len() == n * n && c.len() == n * n);
        let (pa, pb, pc) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        // SAFETY: three row-major n x n matrices; E is f32 or f64, matching the function
        // called (checked by size).
        unsafe {
            match (self, std::mem::size_of::<E>()) {
                (Blas::Ilp64 { s, .. }, 4) => call(*s, n as i64, pa.cast(), pb.cast(), pc.cast()),
                (Blas::Ilp64 { d, .. }, _) => call(*d, n as i64, pa.cast(), pb.cast(), pc.cast()),
                (Blas::Lp64 { s, .. }, 4) => call(*s, n as i32, pa.cast(), pb.cast(), pc.cast()),
                (Blas::Lp64 { d, .. }, _) => call(*d, n as i32, pa.cast(), pb.cast(), pc.cast()),
            }
        }
    }
}

/// `C = A·B` through `gemm` for row-major `n x n` matrices at `a`, `b` and `c`.
///
/// # Safety
/// The pointers address three whole row-major `n x n` matrices; C aliases neither A nor B.
unsafe fn call<E: Float, I: Copy>(gemm: Gemm<E, I>, n: I, a: *const E, b: *const E, c: *mut E) {
    // SAFETY: forwarded contract; leading dimension n for every row-major operand.
    unsafe { gemm(ROW_MAJOR, NO_TRANS, NO_TRANS, n, n, n, E::ONE, a, n, b, n, E::ZERO, c, n) }
}

fn random<T: Float>(n: usize, seed: u64) -> Tensor<T> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Tensor::<f64>::uniform(vec![n, n], -1.0, 1.0, &mut rng).cast(T::from_f64)
}

/// Alternates blocks of wengert's and OpenBLAS's `n x n` product for `secs`; returns the
/// sorted call times of each.
fn alternate<T: Float>(blas: &Blas, n: usize, secs: f64) -> [Vec<f64>; 2] {
    let (a, b) = (random::<T>(n, 1), random::<T>(n, 2));
    let mut c = vec![T::ZERO; n * n];
    // the two agree (a check that the library was called right), to f32 rounding
    blas.square(n, a.as_slice(), b.as_slice(), &mut c);
    let ours = a.matmul(&b);
    let worst = ours.as_slice().iter().zip(&c).map(|(x, y)| (x.to_f64() - y.to_f64()).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-3 * n as f64, "OpenBLAS and wengert differ by {worst} at n = {n}");
    let mut times: [Vec<f64>; 2] = [vec![], vec![]];
    let start = Instant::now();
    for turn in 0.. {
        if start.elapsed().as_secs_f64() >= secs {
            break;
        }
        std::thread::sleep(Duration::from_millis(30));
        let block = Instant::now();
        while block.elapsed().as_secs_f64() < 0.25 {
            let t = Instant::now();
            if turn % 2 == 0 {
                drop(black_box(a.matmul(&b)));
            } else {
                blas.square(n, a.as_slice(), b.as_slice(), &mut c);
                black_box(&mut c);
            }
            times[turn % 2].push(t.elapsed().as_secs_f64());
        }
    }
    times.iter_mut().for_each(|t| t.sort_by(f64::total_cmp));
    times
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: gemm_openblas <libopenblas.so> [seconds per case, default 16] [threads, default 1,2]");
        std::process::exit(2);
    };
    let secs: f64 = args.get(2).map_or(Ok(16.0), |s| s.parse()).unwrap_or_else(|e| panic!("seconds: {e}"));
    let thread_counts: Vec<usize> = args.get(3).map_or(vec![1, 2], |s| s.split(',').map(|x| x.parse().unwrap_or_else(|e| panic!("threads {x:?}: {e}"))).collect());
    let (blas, core) = Blas::open(path).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    println!("OpenBLAS from {path}, kernels for {}", core.unwrap_or_else(|| "(not said)".into()));
    let limits = Limits::measure();
    println!("FMA peak in this run: {:.0} GFLOP/s on all cores, {:.0} on one (f32; f64 is half)", limits.peak_flops / 1e9, limits.peak_flops_1t / 1e9);
    println!("| threads | product | wengert median (best), % of peak | OpenBLAS median (best), % of peak | speed ratio, wengert / OpenBLAS (medians) |");
    println!("|---|---|---|---|---|");
    for &threads in &thread_counts {
        wengert::core::runtime::set_num_threads(threads);
        blas.set_threads(threads);
        let peak = if threads == 1 { limits.peak_flops_1t } else { limits.peak_flops };
        for (n, double) in [(512usize, false), (1024, false), (512, true), (1024, true)] {
            let times = if double { alternate::<f64>(&blas, n, secs) } else { alternate::<f32>(&blas, n, secs) };
            let (flops, peak) = (2.0 * (n as f64).powi(3), if double { peak / 2.0 } else { peak });
            let pct = |t: f64| 100.0 * flops / t / peak;
            let [ours, theirs] = times.map(|t| (t[t.len() / 2], t[0]));
            println!(
                "| {threads} | {n}x{n} {} | {:.1} ({:.1})% | {:.1} ({:.1})% | {:.3} |",
                if double { "f64" } else { "f32" },
                pct(ours.0),
                pct(ours.1),
                pct(theirs.0),
                pct(theirs.1),
                theirs.0 / ours.0
            );
        }
    }
}
