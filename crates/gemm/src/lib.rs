//! Packed general matrix multiply: `C = alpha · A·B + beta · C` for `f32` and `f64`
//! matrices given by pointer and row/column strides, in the blocked loop order of Goto and
//! van de Geijn (and BLIS):
//!
//! ```text
//! for each NC-wide panel of columns of B and C            (B panel in L3)
//!   for each KC-deep slice of k:   pack B[kc, nc] into NR-wide strips
//!     for each MC-tall block of rows of A and C:  pack A[mc, kc] into MR-tall strips (L2)
//!       for each NR strip of B (kept in L1), for each MR strip of A:
//!         the micro-kernel: C[MR, NR] (+)= A strip · B strip, MR·NR accumulators in registers
//! ```
//!
//! The micro-kernel is chosen once, at run time, from what the CPU has
//! ([`Kernel::best`]): AVX-512 (12 x 32 f32 / 12 x 16 f64 blocks), AVX2 with FMA (6 x 16 /
//! 6 x 8), or a portable one, so a binary built for the x86-64 baseline still runs the
//! vector kernels. [`sgemm`] and [`dgemm`] run on the calling thread; [`gemm`] takes a
//! [`Fork`] that runs the product's parts on threads of the caller's choosing (`wengert-core`
//! hands it its pool): C is cut into row blocks, one per part, and the parts share one packed
//! copy of each `KC x NC` panel of B, which they also pack together, a chunk at a time.
//!
//! ```
//! // C (2 x 2) = A (2 x 3) · B (3 x 2), all row-major
//! let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
//! let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0];
//! let mut c = [0.0f32; 4];
//! // SAFETY: the pointers and strides address whole 2 x 3, 3 x 2 and 2 x 2 matrices.
//! unsafe {
//!     wengert_gemm::sgemm(2, 3, 2, 1.0, a.as_ptr(), 3, 1, b.as_ptr(), 2, 1, 0.0, c.as_mut_ptr(), 2, 1);
//! }
//! assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
//! ```

mod kernel;
mod pack;
mod simd;

use core::cell::Cell;
use core::ops::{Add, Mul};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use kernel::Micro;

/// An element type the GEMM runs on: `f32` or `f64`.
pub trait Elem: Copy + PartialEq + Add<Output = Self> + Mul<Output = Self> + Send + Sync + 'static {
    /// 0
    const ZERO: Self;
    /// 1
    const ONE: Self;
    /// How `kernel` cuts a product of elements of this type ([`Kernel::blocking`]).
    fn blocking(kernel: Kernel) -> Blocking;
    /// `C = alpha · op(A)·op(B) + beta · C` with the given micro-kernel, its parts run by
    /// `fork`; see [`gemm`].
    ///
    /// # Safety
    /// As [`sgemm`]; `kernel` must be available on this CPU ([`Kernel::is_available`]).
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_with(
        kernel: Kernel,
        fork: &dyn Fork,
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

/// Which micro-kernel a product runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// AVX-512F: 12 x 32 blocks for f32, 12 x 16 for f64 (24 of the 32 zmm registers).
    Avx512,
    /// AVX2 with FMA: 6 x 16 blocks for f32, 6 x 8 for f64 (12 of the 16 ymm registers).
    Avx2Fma,
    /// Plain arrays the compiler vectorizes for the target it builds for (8 x 8 blocks);
    /// a multiply and an add where the others fuse them.
    Portable,
    /// The portable code cut into the AVX-512 block shapes, so that the driver's AVX-512
    /// blocking is tested on machines without AVX-512. Not fast; for tests.
    #[doc(hidden)]
    PortableWide,
}

impl Kernel {
    /// Every kernel, fastest first.
    pub const ALL: [Kernel; 4] = [Kernel::Avx512, Kernel::Avx2Fma, Kernel::Portable, Kernel::PortableWide];

    /// Whether this CPU can run the kernel.
    ///
    /// ```
    /// assert!(wengert_gemm::Kernel::Portable.is_available());
    /// assert!(wengert_gemm::Kernel::best().is_available());
    /// ```
    pub fn is_available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx512 | Kernel::Avx2Fma => false,
            Kernel::Portable | Kernel::PortableWide => true,
        }
    }

    /// The kernels this CPU can run, fastest first.
    ///
    /// ```
    /// let kernels = wengert_gemm::Kernel::available();
    /// assert_eq!(kernels[0], wengert_gemm::Kernel::best());
    /// ```
    pub fn available() -> Vec<Kernel> {
        Kernel::ALL.into_iter().filter(|k| k.is_available()).collect()
    }

    /// The fastest kernel this CPU can run (detected once, then cached); [`sgemm`] and
    /// [`dgemm`] use it.
    ///
    /// ```
    /// println!("products run on {:?}", wengert_gemm::Kernel::best());
    /// ```
    pub fn best() -> Kernel {
        static BEST: AtomicU8 = AtomicU8::new(u8::MAX);
        let cached = BEST.load(Ordering::Relaxed);
        if let Some(&k) = Kernel::ALL.get(cached as usize) {
            return k;
        }
        let best = Kernel::available()[0];
        BEST.store(Kernel::ALL.iter().position(|&k| k == best).unwrap_or(2) as u8, Ordering::Relaxed);
        best
    }

    /// The `(MR, NR)` register block of C the kernel computes for elements of `E`.
    ///
    /// ```
    /// assert_eq!(wengert_gemm::Kernel::Avx512.block::<f32>(), (12, 32));
    /// ```
    pub fn block<E: Elem>(self) -> (usize, usize) {
        let b = self.blocking::<E>();
        (b.mr, b.nr)
    }

    /// The register block and cache blocks the kernel cuts a product of `E` into.
    ///
    /// ```
    /// let b = wengert_gemm::Kernel::Portable.blocking::<f64>();
    /// assert_eq!((b.mr, b.nr), wengert_gemm::Kernel::Portable.block::<f64>());
    /// assert_eq!(b.mc % b.mr, 0);
    /// ```
    pub fn blocking<E: Elem>(self) -> Blocking {
        E::blocking(self)
    }
}

/// How a kernel cuts a product (see the crate docs for the loops): `MR x NR` blocks of C in
/// registers, A packed `MC x KC` at a time, B `KC x NC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// rows of the register block of C
    pub mr: usize,
    /// columns of the register block of C
    pub nr: usize,
    /// the deepest slice of k packed at a time
    pub kc: usize,
    /// the most rows of A packed at a time (a multiple of `mr`)
    pub mc: usize,
    /// the most columns of B packed at a time
    pub nc: usize,
}

impl Blocking {
    fn of<K: Micro>() -> Blocking {
        Blocking { mr: K::MR, nr: K::NR, kc: K::KC, mc: K::MC, nc: K::NC }
    }
}

/// `C = alpha · A·B + beta · C` for an `m x k` A, a `k x n` B and an `m x n` C of `f32`,
/// each given by a pointer to its first element and its row and column strides (in
/// elements; any sign, either order: a transposed operand is just swapped strides). With
/// `beta == 0` C is only written, never read (NaN in C does not survive); with
/// `alpha == 0` or `k == 0`, A and B are not read and C becomes `beta · C`.
///
/// # Safety
/// The pointers with their strides must address valid `m x k`, `k x n` and `m x n`
/// matrices, and C must not alias A or B (or itself: no two of its elements at one address).
///
/// ```
/// // C = Aᵀ·B for a row-major 3 x 2 A (read transposed: row stride 1, column stride 2)
/// let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let b = [1.0f32, 1.0, 1.0];
/// let mut c = [0.0f32; 2];
/// // SAFETY: Aᵀ is 2 x 3 over `a`, B 3 x 1, C 2 x 1.
/// unsafe { wengert_gemm::sgemm(2, 3, 1, 1.0, a.as_ptr(), 1, 2, b.as_ptr(), 1, 1, 0.0, c.as_mut_ptr(), 1, 1) };
/// assert_eq!(c, [9.0, 12.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub unsafe fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    beta: f32,
    c: *mut f32,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: forwarded contract; the best kernel is available.
    unsafe { gemm::<f32>(&Serial, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
}

/// [`sgemm`] for `f64`.
///
/// # Safety
/// As [`sgemm`].
///
/// ```
/// let a = [2.0f64, 0.0, 0.0, 2.0];
/// let mut c = [1.0f64, 1.0, 1.0, 1.0];
/// // C = A·A + 1·C
/// unsafe { wengert_gemm::dgemm(2, 2, 2, 1.0, a.as_ptr(), 2, 1, a.as_ptr(), 2, 1, 1.0, c.as_mut_ptr(), 2, 1) };
/// assert_eq!(c, [5.0, 1.0, 1.0, 5.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub unsafe fn dgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f64,
    a: *const f64,
    rsa: isize,
    csa: isize,
    b: *const f64,
    rsb: isize,
    csb: isize,
    beta: f64,
    c: *mut f64,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: forwarded contract; the best kernel is available.
    unsafe { gemm::<f64>(&Serial, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
}

/// Runs the parts of a product split across threads: [`gemm`] cuts C into `parts()` row
/// blocks and calls `run` twice per `KC x NC` panel of B, once to pack the panel (in chunks
/// of strips, each taken by whichever part is free) and once to multiply (each part its rows,
/// `MC` at a time and its last ones in smaller pieces, packing its own A; a part that has
/// finished its rows takes the others' last pieces, so a thread slowed down by other work on
/// its core does not hold the product up).
pub trait Fork: Sync {
    /// How many parts to cut a product into (1: not split).
    fn parts(&self) -> usize;
    /// Runs `task(i)` for every `i` in `0..self.parts()`, on any threads in any order, and
    /// returns when all have returned.
    fn run(&self, task: &(dyn Fn(usize) + Sync));
    /// Called with each block of rows of C as soon as the block is final (after its last
    /// slice of k and panel of B), by the part that computed it, on its thread, while the
    /// block is still in its cache: the place for an epilogue such as adding a bias. Does
    /// nothing by default.
    fn finished(&self, rows: core::ops::Range<usize>) {
        let _ = rows;
    }
}

/// The product in one part, on the calling thread (what [`sgemm`] and [`dgemm`] use).
///
/// ```
/// use wengert_gemm::Fork;
/// assert_eq!(wengert_gemm::Serial.parts(), 1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Serial;

impl Fork for Serial {
    fn parts(&self) -> usize {
        1
    }
    fn run(&self, task: &(dyn Fn(usize) + Sync)) {
        task(0)
    }
}

/// [`sgemm`] / [`dgemm`] for either element type, its parts run by `fork`: C's rows are
/// cut into `fork.parts()` blocks of whole micro-kernel strips, which share one packed copy
/// of B (see [`Fork`]). On two cores that halves the packing of B each thread does, against
/// splitting the product into independent calls (each of which packs all of B). Zen 3, both
/// cores, the median of alternated calls in one process, seven runs: 1024 x 1024 f32 ahead in
/// all seven by 0.4-2.3 points of the FMA peak, 512 f64 in all seven by 0.5-2.4, 512 f32 by
/// -0.1 to +1.7; 1024 f64 within the noise (-2.9 to +1.5).
///
/// Taking the other parts' last blocks, against each part doing only its own (same host,
/// four runs): 1024 f32 -1.1 to +10.1 points, 1024 f64 -0.7 to +7.2, a MiniLM encoder's
/// 4096x384x384 product +0.8 to +3.0, 512 within ±0.6 (three blocks per part).
///
/// # Safety
/// As [`sgemm`].
///
/// ```
/// use wengert_gemm::{gemm, Fork};
/// /// Runs the parts on scoped threads, one each.
/// struct Threads(usize);
/// impl Fork for Threads {
///     fn parts(&self) -> usize { self.0 }
///     fn run(&self, task: &(dyn Fn(usize) + Sync)) {
///         std::thread::scope(|s| (0..self.0).for_each(|i| { s.spawn(move || task(i)); }));
///     }
/// }
/// let (m, k, n) = (40, 30, 20);
/// let a = vec![1.0f32; m * k];
/// let b = vec![2.0f32; k * n];
/// let mut c = vec![0.0f32; m * n];
/// // SAFETY: row-major m x k, k x n and m x n matrices.
/// unsafe { gemm(&Threads(3), m, k, n, 1.0, a.as_ptr(), k as isize, 1, b.as_ptr(), n as isize, 1, 0.0, c.as_mut_ptr(), n as isize, 1) };
/// assert!(c.iter().all(|&x| x == 60.0));
/// ```
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm<E: Elem>(
    fork: &dyn Fork,
    m: usize,
    k: usize,
    n: usize,
    alpha: E,
    a: *const E,
    rsa: isize,
    csa: isize,
    b: *const E,
    rsb: isize,
    csb: isize,
    beta: E,
    c: *mut E,
    rsc: isize,
    csc: isize,
) {
    // SAFETY: forwarded contract; the best kernel is available.
    unsafe { E::gemm_with(Kernel::best(), fork, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
}

/// `impl Elem` for a float type: the dispatch from a [`Kernel`] to its micro-kernel type.
macro_rules! impl_elem {
    ($t:ty, $portable:ty, $wide:ty, $avx2:ident, $avx512:ident) => {
        impl Elem for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            fn blocking(kernel: Kernel) -> Blocking {
                match kernel {
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx512 => Blocking::of::<kernel::$avx512>(),
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx2Fma => Blocking::of::<kernel::$avx2>(),
                    // (unavailable elsewhere: the shapes they would have)
                    #[cfg(not(target_arch = "x86_64"))]
                    Kernel::Avx512 => Blocking::of::<$wide>(),
                    #[cfg(not(target_arch = "x86_64"))]
                    Kernel::Avx2Fma => Blocking::of::<$portable>(),
                    Kernel::Portable => Blocking::of::<$portable>(),
                    Kernel::PortableWide => Blocking::of::<$wide>(),
                }
            }
            unsafe fn gemm_with(
                kernel: Kernel,
                fork: &dyn Fork,
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                assert!(kernel.is_available(), "gemm: the {kernel:?} kernel needs CPU features this machine lacks");
                // SAFETY: forwarded contract; the kernel's features are present.
                unsafe {
                    match kernel {
                        #[cfg(target_arch = "x86_64")]
                        Kernel::Avx512 => drive::<kernel::$avx512>(fork, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc),
                        #[cfg(target_arch = "x86_64")]
                        Kernel::Avx2Fma => drive::<kernel::$avx2>(fork, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc),
                        #[cfg(not(target_arch = "x86_64"))]
                        Kernel::Avx512 | Kernel::Avx2Fma => unreachable!(),
                        Kernel::Portable => drive::<$portable>(fork, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc),
                        Kernel::PortableWide => drive::<$wide>(fork, m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc),
                    }
                }
            }
        }
    };
}

impl_elem!(f32, kernel::PortableF32, kernel::Wide512F32, Avx2F32, Avx512F32);
impl_elem!(f64, kernel::PortableF64, kernel::Wide512F64, Avx2F64, Avx512F64);

/// 64 bytes, 64-aligned: the unit of the packing buffers, so packed strips start on cache
/// lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

thread_local! {
    /// This thread's packing buffer for blocks of A, grown as needed and kept between calls.
    static PACKED_A: Cell<Vec<Line>> = const { Cell::new(Vec::new()) };
    /// This thread's packing buffer for panels of B (shared by the parts of a split product).
    static PACKED_B: Cell<Vec<Line>> = const { Cell::new(Vec::new()) };
}

/// A buffer of at least `len` elements of `E`, growing `v` if needed.
fn room<E>(v: &mut Vec<Line>, len: usize) -> *mut E {
    let lines = (len * core::mem::size_of::<E>()).div_ceil(64);
    if v.len() < lines {
        v.resize(lines, Line([0; 64]));
    }
    v.as_mut_ptr().cast()
}

/// `C = beta · C` for an `m x n` C (zeros when `beta == 0`, without reading C).
///
/// # Safety
/// C must address a valid `m x n` matrix with strides `rsc`, `csc`.
unsafe fn scale<E: Elem>(m: usize, n: usize, beta: E, c: *mut E, rsc: isize, csc: isize) {
    for i in 0..m {
        for j in 0..n {
            // SAFETY: (i, j) is inside C.
            unsafe {
                let p = c.offset(i as isize * rsc + j as isize * csc);
                *p = if beta == E::ZERO { E::ZERO } else { beta * *p };
            }
        }
    }
}

/// A pointer the parts of a split product share (each writes only its own rows of C or
/// strips of the packed B).
#[derive(Clone, Copy)]
struct Shared<E>(*mut E);
// SAFETY: the parts touch disjoint elements through it (see `drive`).
unsafe impl<E> Sync for Shared<E> {}
impl<E> Shared<E> {
    fn get(self) -> *mut E {
        self.0
    }
}

/// A part's blocks of rows, `0..n`, taken from the front by the part and from the back by
/// the others once they have none of their own left.
struct Blocks(core::sync::atomic::AtomicU64);

impl Blocks {
    /// Blocks `0..n`: the next from the front in the high half, the end in the low half.
    fn new(n: usize) -> Blocks {
        Blocks(core::sync::atomic::AtomicU64::new(n as u64))
    }
    fn take(&self, front: bool) -> Option<usize> {
        use core::sync::atomic::Ordering;
        let mut s = self.0.load(Ordering::Relaxed);
        loop {
            let (first, end) = (s >> 32, s & 0xffff_ffff);
            if first >= end {
                return None;
            }
            let (next, got) = if front { (s + (1 << 32), first) } else { (s - 1, end - 1) };
            match self.0.compare_exchange_weak(s, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(got as usize),
                Err(now) => s = now,
            }
        }
    }
    fn take_front(&self) -> Option<usize> {
        self.take(true)
    }
    fn take_back(&self) -> Option<usize> {
        self.take(false)
    }
}

/// The blocks of the rows `rows` that one part owns, as (first row, rows): `mc` rows each,
/// and, when the product is split (`tail`), the last `mc` rows or fewer in pieces that halve
/// down to one strip of `mr` rows. The other parts take a part's blocks from the back, so a
/// part that has finished its own waits at the end of a slice of k for at most a small piece,
/// not a whole block. Every block but the last is whole strips.
///
/// Zen 3, both cores, with B's panel packed in chunks taken by whichever part is free,
/// against whole blocks and a fixed half of the panel per part (the median of alternated
/// calls, five runs of 512 and 1024, f32 and f64): ahead in 15 of the 20 pairs by up to 3.4
/// points of the peak, behind in 5 by at most 0.5; the gain is in the noisy minutes, when
/// one core is slowed by other work, and nothing in the quiet ones.
fn row_blocks(rows: core::ops::Range<usize>, mc: usize, mr: usize, tail: bool) -> Vec<(usize, usize)> {
    let mut blocks = Vec::new();
    let mut at = rows.start;
    while at < rows.end {
        let rest = rows.end - at;
        let len = if !tail || rest > mc { mc.min(rest) } else if rest <= mr { rest } else { (rest / 2).div_ceil(mr) * mr };
        blocks.push((at, len));
        at += len;
    }
    blocks
}

/// Runs `task` for each part: on this thread when there is one part, else through `fork`.
fn run_parts(fork: &dyn Fork, parts: usize, task: &(dyn Fn(usize) + Sync)) {
    if parts == 1 {
        task(0)
    } else {
        fork.run(task)
    }
}

/// The blocked loops around the micro-kernel `K` (see the crate docs), C's rows cut into
/// `fork.parts()` blocks of whole strips (fewer when C has fewer strips).
///
/// # Safety
/// As [`sgemm`]; the CPU has `K`'s features.
#[allow(clippy::too_many_arguments)]
unsafe fn drive<K: Micro>(
    fork: &dyn Fork,
    m: usize,
    k: usize,
    n: usize,
    alpha: K::E,
    a: *const K::E,
    rsa: isize,
    csa: isize,
    b: *const K::E,
    rsb: isize,
    csb: isize,
    beta: K::E,
    c: *mut K::E,
    rsc: isize,
    csc: isize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == K::E::ZERO {
        // SAFETY: C is valid.
        unsafe { scale(m, n, beta, c, rsc, csc) };
        fork.finished(0..m);
        return;
    }
    // Part i owns the rows row_bound(i)..row_bound(i + 1): whole MR strips, the strips
    // dealt out evenly.
    let strips = m.div_ceil(K::MR);
    let parts = fork.parts().clamp(1, strips);
    let row_bound = |i: usize| (strips * i / parts * K::MR).min(m);
    // k cut into equal slices of at most KC (no thin last slice), each part's rows likewise
    // into blocks of at most MC rounded up to whole strips.
    let kc_max = k.div_ceil(k.div_ceil(K::KC));
    let part_rows = strips.div_ceil(parts) * K::MR;
    let mc_max = part_rows.div_ceil(part_rows.div_ceil(K::MC)).div_ceil(K::MR) * K::MR;
    let blocks: Vec<Vec<(usize, usize)>> = (0..parts).map(|i| row_blocks(row_bound(i)..row_bound(i + 1), mc_max, K::MR, parts > 1)).collect();
    // (rounded up to whole strips: pack_b pads the last strip of a panel to NR columns)
    let nc_max = K::NC.min(n).div_ceil(K::NR) * K::NR;
    let mut bbuf = PACKED_B.take();
    let bp = Shared(room::<K::E>(&mut bbuf, nc_max * kc_max));
    let (a, b, c) = (Shared(a as *mut K::E), Shared(b as *mut K::E), Shared(c));
    for jc in (0..n).step_by(K::NC) {
        let nc = K::NC.min(n - jc);
        let nc_strips = nc.div_ceil(K::NR);
        for pc in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - pc);
            // The panel's strips, in chunks taken by whichever part is free (four per part, so
            // a part slowed by other work on its core packs less).
            let chunk = if parts == 1 { nc_strips } else { nc_strips.div_ceil(4 * parts) } * K::NR;
            let next_chunk = AtomicUsize::new(0);
            run_parts(fork, parts, &|_| loop {
                let lo = next_chunk.fetch_add(1, Ordering::Relaxed) * chunk;
                if lo >= nc {
                    break;
                }
                let hi = (lo + chunk).min(nc);
                // SAFETY: columns jc + lo..jc + hi of the slice are inside B; their strips
                // start lo·kc elements into the panel buffer, and no other part takes this chunk.
                unsafe {
                    let src = b.get().offset(pc as isize * rsb + (jc + lo) as isize * csb);
                    pack::pack_b(kc, hi - lo, src, rsb, csb, K::NR, bp.get().add(lo * kc));
                }
            });
            // the first slice applies beta, the later ones add to it
            let beta = if pc == 0 { beta } else { K::E::ONE };
            let last = jc + nc == n && pc + kc == k;
            // Each part takes its own blocks from the front, and when it has none left the
            // other parts' from the back, the smallest first.
            let queues: Vec<Blocks> = blocks.iter().map(|b| Blocks::new(b.len())).collect();
            run_parts(fork, parts, &|i| {
                let mut abuf = PACKED_A.take();
                let ap = room::<K::E>(&mut abuf, mc_max * kc);
                let block = |q: usize, j: usize| {
                    let (ic, mc) = blocks[q][j];
                    // SAFETY: every block addressed is inside A, B or C; the block's rows of C
                    // are written by whichever part took it, and by no other; the packed
                    // panel is whole and read only.
                    unsafe {
                        pack::pack_a(mc, kc, a.get().offset(ic as isize * rsa + pc as isize * csa), rsa, csa, K::MR, ap);
                        for jr in (0..nc).step_by(K::NR) {
                            let nr = K::NR.min(nc - jr);
                            let bs = bp.get().add(jr * kc);
                            for ir in (0..mc).step_by(K::MR) {
                                let mr = K::MR.min(mc - ir);
                                let cb = c.get().offset((ic + ir) as isize * rsc + (jc + jr) as isize * csc);
                                K::tile(kc, ap.add(ir * kc), bs, cb, rsc, csc, mr, nr, alpha, beta);
                            }
                        }
                    }
                    if last {
                        fork.finished(ic..ic + mc);
                    }
                };
                // (a fork of more parts than C has strips runs tasks with no rows of their own)
                if let Some(own) = queues.get(i) {
                    while let Some(j) = own.take_front() {
                        block(i, j);
                    }
                }
                for q in (i + 1..parts).chain(0..i.min(parts)) {
                    while let Some(j) = queues[q].take_back() {
                        block(q, j);
                    }
                }
                PACKED_A.set(abuf);
            });
        }
    }
    PACKED_B.set(bbuf);
}

#[cfg(test)]
mod tests {
    use super::{row_blocks, Blocks};

    #[test]
    fn row_blocks_cover_the_rows_in_strips_and_end_in_halving_pieces() {
        // unsplit: MC-row blocks, the last one short
        assert_eq!(row_blocks(10..30, 8, 2, false), [(10, 8), (18, 8), (26, 4)]);
        // split: 258 rows (43 strips of 6) in blocks of 90: two whole, then 78 rows halving
        let b = row_blocks(0..258, 90, 6, true);
        assert_eq!(b, [(0, 90), (90, 90), (180, 42), (222, 18), (240, 12), (252, 6)]);
        // the last strip of C may be short; every other block is whole strips
        let b = row_blocks(12..47, 12, 6, true);
        assert_eq!(b, [(12, 12), (24, 12), (36, 6), (42, 5)]);
        for (rows, mc, mr) in [(0..1, 6, 6), (5..5, 6, 6), (0..1000, 96, 6), (7..777, 48, 12), (3..100, 8, 8)] {
            let b = row_blocks(rows.clone(), mc, mr, true);
            assert_eq!(b.iter().map(|&(_, len)| len).sum::<usize>(), rows.len());
            assert!(b.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0 && w[1].1 <= w[0].1 && w[0].1 % mr == 0));
            assert!(b.iter().all(|&(_, len)| len > 0 && len <= mc));
        }
    }

    #[test]
    fn blocks_are_taken_once_from_either_end() {
        let q = Blocks::new(5);
        assert_eq!((q.take_front(), q.take_back(), q.take_front()), (Some(0), Some(4), Some(1)));
        assert_eq!((q.take_back(), q.take_back(), q.take_front(), q.take_back()), (Some(3), Some(2), None, None));
        assert_eq!(Blocks::new(0).take_front(), None);
        // taken from both ends at once, every block exactly once
        let q = Blocks::new(10_000);
        let taken: Vec<Vec<usize>> = std::thread::scope(|s| {
            let (q, front) = (&q, s.spawn(|| std::iter::from_fn(|| q.take_front()).collect()));
            let back: Vec<usize> = std::iter::from_fn(|| q.take_back()).collect();
            vec![front.join().unwrap(), back]
        });
        let mut all: Vec<usize> = taken.concat();
        all.sort_unstable();
        assert_eq!(all, (0..10_000).collect::<Vec<_>>());
    }
}
