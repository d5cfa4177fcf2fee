//! A roofline view of op throughput: measure this machine's FMA peak and memory bandwidth,
//! time ops, and print each op's speed as a share of the limit that bounds it.
//!
//! ```no_run
//! use wengert_core::roofline::{Limits, Report, Work};
//! use wengert_core::Tensor;
//!
//! let limits = Limits::measure();
//! let mut report = Report::new(limits);
//! let (a, b) = (Tensor::<f32>::ones([512, 512]), Tensor::<f32>::ones([512, 512]));
//! report.add("matmul", "512x512 f32", Work::Flops(2.0 * 512f64.powi(3)), || a.matmul(&b));
//! report.add("exp", "512x512 f32", Work::Bytes(2.0 * 4.0 * 512.0 * 512.0), || a.exp());
//! println!("{report}");
//! ```

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};


use crate::runtime;

/// What bounds an op: arithmetic (FLOPs) or memory traffic (bytes read + written).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Work {
    /// floating-point operations per call (a fused multiply-add counts 2)
    Flops(f64),
    /// bytes moved per call
    Bytes(f64),
}

/// The machine's measured limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// f32 FMA peak on all threads of the pool, FLOP/s
    pub peak_flops: f64,
    /// the same on one thread
    pub peak_flops_1t: f64,
    /// streaming bandwidth (triad `c = 1.5a + b`) with data in L2, one core's rate times the
    /// thread count (L2 is per core), bytes/s
    pub bw_l2: f64,
    /// the same for 1M f32 per array (about L3 size)
    pub bw_l3: f64,
    /// the same for 16M f32 per array (main memory)
    pub bw_dram: f64,
    /// which instruction set the peak was measured with
    pub isa: &'static str,
}

/// Independent accumulators in the peak loop: enough to hide FMA latency (4 cycles) on two
/// FMA ports.
const ACC: usize = 12;
/// Iterations of the peak loop per call.
const PEAK_ITERS: usize = 1 << 16;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop_avx512() -> f32 {
    use std::arch::x86_64::*;
    // opaque inputs, so the compiler cannot evaluate the loop ahead of time
    let mut acc = [_mm512_set1_ps(black_box(0.0)); ACC];
    let (a, b) = (_mm512_set1_ps(black_box(0.999_999)), _mm512_set1_ps(black_box(1e-7)));
    for _ in 0..PEAK_ITERS {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_ps(*x, a, b);
        }
    }
    let mut s = _mm512_set1_ps(0.0);
    for x in acc {
        s = _mm512_add_ps(s, x);
    }
    _mm512_reduce_add_ps(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_avx2() -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(black_box(0.0)); ACC];
    let (a, b) = (_mm256_set1_ps(black_box(0.999_999)), _mm256_set1_ps(black_box(1e-7)));
    for _ in 0..PEAK_ITERS {
        for x in acc.iter_mut() {
            *x = _mm256_fmadd_ps(*x, a, b);
        }
    }
    let mut out = [0.0f32; 8];
    let mut s = _mm256_set1_ps(0.0);
    for x in acc {
        s = _mm256_add_ps(s, x);
    }
    _mm256_storeu_ps(out.as_mut_ptr(), s);
    out.iter().sum()
}

fn fma_loop_scalar() -> f32 {
    let mut acc = [black_box(0.0f32); ACC * 4];
    let (a, b) = (black_box(0.999_999f32), black_box(1e-7f32));
    for _ in 0..PEAK_ITERS {
        for x in acc.iter_mut() {
            *x = x.mul_add(a, b);
        }
    }
    acc.iter().sum()
}

/// (FLOPs per call, the loop, its name) for the best ISA this CPU has.
fn peak_kernel() -> (f64, fn() -> f32, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the feature was detected at run time.
            return ((PEAK_ITERS * ACC * 16 * 2) as f64, || unsafe { fma_loop_avx512() }, "AVX-512");
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the features were detected at run time.
            return ((PEAK_ITERS * ACC * 8 * 2) as f64, || unsafe { fma_loop_avx2() }, "AVX2+FMA");
        }
    }
    ((PEAK_ITERS * ACC * 4 * 2) as f64, fma_loop_scalar, "scalar")
}

/// Median seconds per call of `f` over about `budget` of wall time (at least 5 calls).
///
/// ```
/// use std::time::Duration;
/// use wengert_core::roofline::median_seconds;
///
/// let secs = median_seconds(Duration::from_millis(1), || (0..1000u64).sum::<u64>());
/// assert!(secs.is_finite() && (0.0..1.0).contains(&secs));
/// ```
pub fn median_seconds<R>(budget: Duration, f: impl FnMut() -> R) -> f64 {
    let times = call_seconds(budget, f);
    times[times.len() / 2]
}

/// The fastest call of `f` over about `budget` (at least 5 calls): the estimate for a limit
/// of the machine, which other work on it can only ever lower. (A median FMA peak on a
/// shared host has read half the peak when the other core was busy for a moment.)
fn fastest_seconds<R>(budget: Duration, f: impl FnMut() -> R) -> f64 {
    call_seconds(budget, f)[0]
}

/// Seconds per call of `f` over about `budget` of wall time (at least 5 calls), sorted.
fn call_seconds<R>(budget: Duration, mut f: impl FnMut() -> R) -> Vec<f64> {
    black_box(f()); // warm up caches, allocator and thread pool
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < 5 || (start.elapsed() < budget && times.len() < 10_000) {
        let t = Instant::now();
        black_box(f());
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times
}

fn triad_bandwidth(n: usize) -> f64 {
    let a = vec![1.0f32; n];
    let b = vec![2.0f32; n];
    let mut c = vec![0.0f32; n];
    let threads = runtime::num_threads();
    if n < crate::kernels::PARALLEL_MIN_ELEMENTS {
        // L2 is private to each core: time one core (a pool hand-off would dominate) and
        // count every core's L2 alike.
        let secs = fastest_seconds(Duration::from_millis(200), || {
            c.iter_mut().zip(a.iter().zip(&b)).for_each(|(c, (&a, &b))| *c = 1.5 * a + b);
            c[0]
        });
        return (3 * 4 * n) as f64 / secs * threads as f64;
    }
    let secs = fastest_seconds(Duration::from_millis(200), || {
        crate::parallel::for_each_part_mut(&mut c, threads, 16, |start, c| {
            let (a, b) = (&a[start..start + c.len()], &b[start..start + c.len()]);
            c.iter_mut().zip(a.iter().zip(b)).for_each(|(c, (&a, &b))| *c = 1.5 * a + b)
        });
        c[0]
    });
    (3 * 4 * n) as f64 / secs
}

impl Limits {
    /// Measures the FMA peak (1 and all threads) and triad bandwidth at three sizes, each
    /// the fastest of many calls (other work on the machine only ever slows a call down);
    /// takes about two seconds.
    ///
    /// ```
    /// use wengert_core::roofline::Limits;
    /// let limits = Limits::measure();
    /// // rates, not ratios: on a loaded machine the all-thread peak can even fall below one thread's
    /// for rate in [limits.peak_flops, limits.peak_flops_1t, limits.bw_l2, limits.bw_l3, limits.bw_dram] {
    ///     assert!(rate.is_finite() && rate > 0.0);
    /// }
    /// assert!(!limits.isa.is_empty());
    /// ```
    pub fn measure() -> Limits {
        let (flops, kernel, isa) = peak_kernel();
        let one = fastest_seconds(Duration::from_millis(300), kernel);
        let t = runtime::num_threads();
        let all = fastest_seconds(Duration::from_millis(300), || {
            let mut sums = vec![0.0f32; t];
            crate::parallel::for_each_part_mut(&mut sums, t, 1, |_, s| s[0] = kernel());
            sums.iter().sum::<f32>()
        });
        Limits {
            peak_flops_1t: flops / one,
            peak_flops: flops * t as f64 / all,
            bw_l2: triad_bandwidth(16 * 1024),
            bw_l3: triad_bandwidth(1 << 20),
            bw_dram: triad_bandwidth(16 << 20),
            isa,
        }
    }

    /// The bandwidth for an op that moves `bytes`: L2, L3 or DRAM by working-set size.
    ///
    /// ```
    /// use wengert_core::roofline::Limits;
    ///
    /// let limits = Limits { peak_flops: 1e12, peak_flops_1t: 1e11, bw_l2: 4e11, bw_l3: 2e11, bw_dram: 5e10, isa: "scalar" };
    /// assert_eq!(limits.bandwidth_for(64.0 * 1024.0), limits.bw_l2);
    /// assert_eq!(limits.bandwidth_for(12e6), limits.bw_l3);
    /// assert_eq!(limits.bandwidth_for(1e9), limits.bw_dram);
    /// ```
    pub fn bandwidth_for(&self, bytes: f64) -> f64 {
        if bytes <= 3.0 * 64.0 * 1024.0 * 4.0 {
            self.bw_l2
        } else if bytes <= 3.0 * 4.0 * (1 << 21) as f64 {
            self.bw_l3
        } else {
            self.bw_dram
        }
    }
}

/// One timed op.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// op name
    pub op: String,
    /// shape and dtype, free text
    pub shape: String,
    /// median seconds per call
    pub seconds: f64,
    /// the work per call
    pub work: Work,
}

/// A table of timed ops against the machine's limits.
pub struct Report {
    limits: Limits,
    rows: Vec<Row>,
    budget: Duration,
}

impl Report {
    /// An empty report (each op is timed for about 300 ms).
    ///
    /// ```
    /// use wengert_core::roofline::{Limits, Report};
    ///
    /// let limits = Limits { peak_flops: 1e12, peak_flops_1t: 1e11, bw_l2: 4e11, bw_l3: 2e11, bw_dram: 5e10, isa: "scalar" };
    /// let report = Report::new(limits);
    /// assert!(report.rows().is_empty());
    /// assert!(report.to_string().starts_with("machine:"));
    /// ```
    pub fn new(limits: Limits) -> Self {
        Report { limits, rows: Vec::new(), budget: Duration::from_millis(300) }
    }

    /// Times `f` and adds a row.
    ///
    /// ```
    /// use wengert_core::roofline::{Limits, Report, Work};
    ///
    /// let limits = Limits { peak_flops: 1e12, peak_flops_1t: 1e11, bw_l2: 4e11, bw_l3: 2e11, bw_dram: 5e10, isa: "scalar" };
    /// let mut report = Report::new(limits);
    /// let row = report.add("add", "scalar u64", Work::Flops(1.0), || std::hint::black_box(2u64) + 3);
    /// assert_eq!((row.op.as_str(), row.work), ("add", Work::Flops(1.0)));
    /// assert!(row.seconds < 1.0);
    /// ```
    pub fn add<R>(&mut self, op: &str, shape: &str, work: Work, f: impl FnMut() -> R) -> &Row {
        let seconds = median_seconds(self.budget, f);
        self.rows.push(Row { op: op.into(), shape: shape.into(), seconds, work });
        self.rows.last().expect("just pushed")
    }

    /// The rows so far.
    ///
    /// ```
    /// use wengert_core::roofline::{Limits, Report, Work};
    ///
    /// let limits = Limits { peak_flops: 1e12, peak_flops_1t: 1e11, bw_l2: 4e11, bw_l3: 2e11, bw_dram: 5e10, isa: "scalar" };
    /// let mut report = Report::new(limits);
    /// report.add("a", "-", Work::Flops(1.0), || 1 + 1);
    /// report.add("b", "-", Work::Bytes(8.0), || 2 * 2);
    /// assert_eq!(report.rows().iter().map(|r| r.op.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
}

fn human_time(s: f64) -> String {
    if s < 1e-6 {
        format!("{:.0} ns", s * 1e9)
    } else if s < 1e-3 {
        format!("{:.1} us", s * 1e6)
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.limits;
        writeln!(
            f,
            "machine: f32 FMA peak {:.0} GFLOP/s ({:.0} on one thread, {}), triad {:.0} GB/s in L2, {:.0} GB/s at 1M f32, {:.0} GB/s at 16M f32, {} threads",
            l.peak_flops / 1e9, l.peak_flops_1t / 1e9, l.isa, l.bw_l2 / 1e9, l.bw_l3 / 1e9, l.bw_dram / 1e9, runtime::num_threads()
        )?;
        writeln!(f, "{:<28} {:<22} {:>10} {:>14} {:>8}", "op", "shape", "median", "throughput", "% limit")?;
        for r in &self.rows {
            let (rate, unit, limit) = match r.work {
                Work::Flops(n) => (n / r.seconds / 1e9, "GFLOP/s", l.peak_flops / 1e9),
                Work::Bytes(n) => (n / r.seconds / 1e9, "GB/s", l.bandwidth_for(n) / 1e9),
            };
            writeln!(f, "{:<28} {:<22} {:>10} {:>6.1} {:<7} {:>7.1}%", r.op, r.shape, human_time(r.seconds), rate, unit, 100.0 * rate / limit)?;
        }
        Ok(())
    }
}
