//! Matrix multiplication: register tiles that read both operands in place when B fits in
//! cache (`tile`), a dot-product kernel for narrow A·Bᵀ, and the packed GEMM of
//! `wengert-gemm` (AVX-512, AVX2+FMA or portable micro-kernels chosen at run time, over
//! arbitrary strides) for the rest; products above a size are split across threads by rows
//! (or columns) of C.


use crate::element::Float;
use crate::error::{Error, OrPanic, Result};
use crate::kernels::{broadcast_strides, for_each_outer};
use crate::shape::Shape;
use crate::tensor::Tensor;
use smallvec::SmallVec;
use std::mem::MaybeUninit;

mod tile;

/// Which operands are used transposed in [`matmul_t`]: `C = op(A) · op(B)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Transpose {
    /// use Aᵀ (A stored as `[.., k, m]`)
    pub a: bool,
    /// use Bᵀ (B stored as `[.., n, k]`)
    pub b: bool,
}

impl Transpose {
    /// Neither operand transposed.
    pub const NN: Transpose = Transpose { a: false, b: false };
    /// `A · Bᵀ`
    pub const NT: Transpose = Transpose { a: false, b: true };
    /// `Aᵀ · B`
    pub const TN: Transpose = Transpose { a: true, b: false };
    /// `Aᵀ · Bᵀ`
    pub const TT: Transpose = Transpose { a: true, b: true };
}

/// `op(A) · op(B)` for operands of 2 or more dims; leading (batch) dims broadcast.
///
/// Shapes: `op(A)` is `[.., m, k]`, `op(B)` is `[.., k, n]`, the result `[batch.., m, n]`.
///
/// ```
/// use wengert_core::{kernels::matmul::{matmul_t, Transpose}, Tensor};
/// let a = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
/// let b = Tensor::<f32>::eye(2);
/// assert_eq!(matmul_t(&a, &b, Transpose::TN).unwrap().to_vec(), vec![1.0, 3.0, 2.0, 4.0]);
/// ```
pub fn matmul_t<T: Float>(a: &Tensor<T>, b: &Tensor<T>, t: Transpose) -> Result<Tensor<T>> {
    matmul_impl(a, b, t, None)
}

/// `op(A) · op(B) + bias` as [`matmul_t`], with `bias` of shape `[m, 1]` (one value per row
/// of each product, as a conv's bias over `weight · columns`) or `[n]` (one per column, as a
/// linear layer's `x · Wᵀ + b`). The bias is added to each block of C right after the block
/// is computed, while it is in cache, instead of in a second pass over C.
///
/// ```
/// use wengert_core::{kernels::matmul::{matmul_t_bias, Transpose}, Tensor};
/// let a = Tensor::<f32>::eye(2);
/// let b = Tensor::new(vec![1.0, 2.0, 3.0, 4.0], [2, 2]);
/// let rows = Tensor::new(vec![10.0, 20.0], [2, 1]);
/// assert_eq!(matmul_t_bias(&a, &b, Transpose::NN, &rows).unwrap().to_vec(), vec![11.0, 12.0, 23.0, 24.0]);
/// let cols = Tensor::from_slice(&[10.0, 20.0]);
/// assert_eq!(matmul_t_bias(&a, &b, Transpose::NN, &cols).unwrap().to_vec(), vec![11.0, 22.0, 13.0, 24.0]);
/// ```
pub fn matmul_t_bias<T: Float>(a: &Tensor<T>, b: &Tensor<T>, t: Transpose, bias: &Tensor<T>) -> Result<Tensor<T>> {
    matmul_impl(a, b, t, Some(bias))
}

/// What is added to a block of C once it is computed: a per-row or a per-column bias.
#[derive(Clone, Copy)]
enum Epilogue<'a, T> {
    /// `c[i, j] += bias[i]`, i the row within its `m x n` product
    RowBias(&'a [T]),
    /// `c[i, j] += bias[j]`
    ColBias(&'a [T]),
}

impl<T: Float> Epilogue<'_, T> {
    /// Adds the bias to rows `row0..` of C (rows of `n`, products `m` rows tall), columns
    /// `cols` of each.
    ///
    /// # Safety
    /// `c` must point at row `row0`, column 0 of a row-major C with rows of `n`, holding
    /// `rows` written rows, not aliased during the call.
    unsafe fn apply(&self, c: *mut T, row0: usize, rows: usize, m: usize, n: usize, cols: std::ops::Range<usize>) {
        for r in 0..rows {
            // SAFETY: row r of the block lies inside C (caller's contract).
            let row = unsafe { std::slice::from_raw_parts_mut(c.add(r * n + cols.start), cols.len()) };
            match *self {
                Epilogue::RowBias(b) => {
                    let v = b[(row0 + r) % m];
                    row.iter_mut().for_each(|x| *x += v);
                }
                Epilogue::ColBias(b) => row.iter_mut().zip(&b[cols.clone()]).for_each(|(x, &v)| *x += v),
            }
        }
    }
}

/// The product, with `bias` (if any) checked against the product's `m` and `n` and added by
/// an [`Epilogue`].
fn matmul_impl<T: Float>(a: &Tensor<T>, b: &Tensor<T>, t: Transpose, bias: Option<&Tensor<T>>) -> Result<Tensor<T>> {
    if a.ndim() < 2 || b.ndim() < 2 {
        return Err(Error::shapes(
            "matmul",
            &[a.shape(), b.shape()],
            "operands need at least 2 dims here (use Tensor::matmul for vectors)",
        ));
    }
    let (ra, rb) = (a.ndim(), b.ndim());
    let (m, ka) = if t.a { (a.dims()[ra - 1], a.dims()[ra - 2]) } else { (a.dims()[ra - 2], a.dims()[ra - 1]) };
    let (kb, n) = if t.b { (b.dims()[rb - 1], b.dims()[rb - 2]) } else { (b.dims()[rb - 2], b.dims()[rb - 1]) };
    if ka != kb {
        return Err(Error::shapes(
            "matmul",
            &[a.shape(), b.shape()],
            format!("inner dimensions differ ({ka} vs {kb})"),
        ));
    }
    let k = ka;
    let epilogue = match bias.map(|x| (x, x.dims())) {
        None => None,
        Some((x, &[len])) if len == n => Some(Epilogue::ColBias(x.as_slice())),
        Some((x, &[len, 1])) if len == m => Some(Epilogue::RowBias(x.as_slice())),
        Some((x, _)) => {
            return Err(Error::shapes(
                "matmul_bias",
                &[a.shape(), b.shape(), x.shape()],
                format!("the bias must be [{n}] (per column) or [{m}, 1] (per row)"),
            ))
        }
    };
    let batch_a = Shape::new(&a.dims()[..ra - 2]);
    let batch_b = Shape::new(&b.dims()[..rb - 2]);
    let batch = Shape::broadcast("matmul", &batch_a, &batch_b)
        .map_err(|_| Error::shapes("matmul", &[a.shape(), b.shape()], "batch dimensions do not broadcast"))?;
    let mut out_dims: SmallVec<[usize; 6]> = batch.iter().copied().collect();
    out_dims.extend([m, n]);
    let out_shape = Shape::new(&out_dims);
    let total = out_shape.numel();
    if total == 0 {
        return Ok(Tensor::from_parts(Vec::new(), out_shape));
    }
    if k == 0 {
        let mut z = Tensor::zeros(out_shape);
        if let Some(e) = epilogue {
            // SAFETY: z holds total / n whole rows of n.
            unsafe { e.apply(z.data_mut().as_mut_ptr(), 0, total / n, m, n, 0..n) };
        }
        return Ok(z);
    }
    // Every kernel below writes all of its block of C (gemm with β = 0 never reads C), so the
    // output is not zeroed first (a 2.8 MB memset was 9% of a conv training step).
    let mut buf: Vec<T> = Vec::with_capacity(total);
    let out = &mut buf.spare_capacity_mut()[..total];
    // Strides of the stored matrices, and of op(A), op(B) as the gemm sees them.
    let (a_rows, a_cols) = (a.dims()[ra - 2], a.dims()[ra - 1]);
    let (b_rows, b_cols) = (b.dims()[rb - 2], b.dims()[rb - 1]);
    let (rsa, csa) = if t.a { (1, a_cols as isize) } else { (a_cols as isize, 1) };
    let (rsb, csb) = if t.b { (1, b_cols as isize) } else { (b_cols as isize, 1) };

    // A batch of row-major A against one shared B is a single tall gemm.
    if !t.a && batch_b.numel() == 1 && batch.numel() > 1 && batch == batch_a {
        let rows = batch.numel() * m;
        let (pa, pb, pc) = (a.as_slice().as_ptr(), b.as_slice().as_ptr(), out.as_mut_ptr().cast::<T>());
        // SAFETY: A is [rows, k] contiguous, B is k x n with the given strides, C is [rows, n].
        unsafe { gemm_split(rows, k, n, pa, rsa, csa, pb, rsb, csb, pc, epilogue.map(|e| (e, m))) };
        // SAFETY: the gemm wrote all rows x n elements.
        unsafe { buf.set_len(total) };
        return Ok(Tensor::from_parts(buf, out_shape));
    }
    let mat_a = a_rows * a_cols;
    let mat_b = b_rows * b_cols;
    let sa: SmallVec<[usize; 6]> = broadcast_strides(&batch_a, &batch).iter().map(|s| s * mat_a).collect();
    let sb: SmallVec<[usize; 6]> = broadcast_strides(&batch_b, &batch).iter().map(|s| s * mat_b).collect();
    // (no allocation for a single product, the common case)
    let mut offsets: SmallVec<[(usize, usize); 1]> = SmallVec::with_capacity(batch.numel());
    for_each_outer(&batch, [&sa, &sb], |[oa, ob]| offsets.push((oa, ob)));
    let (xa, xb) = (a.as_slice(), b.as_slice());
    let one = |c: &mut [MaybeUninit<T>], (oa, ob): (usize, usize)| {
        let (ma, mb) = (&xa[oa..oa + mat_a], &xb[ob..ob + mat_b]);
        let pc = c.as_mut_ptr().cast::<T>();
        let narrow = !t.a && t.b && n <= SKINNY;
        let single = 2 * m * n * k < PARALLEL_GEMM_FLOPS;
        let vector_tiles = crate::kernels::index::transposes_in_vector_tiles::<T>();
        // A·Bᵀ as its transpose, Cᵀ = B·Aᵀ: B's rows broadcast against rows of Aᵀ (A copied
        // transposed) in the register tiles, and Cᵀ copied back. For a narrow B (a
        // classifier's last layer), which the tiles cannot take as it is: the digits MLP's
        // 32x128 · (10x128)ᵀ 1.86 -> 1.57 µs against the dot products, 128x256 · (10x256)ᵀ
        // 12.7-13.1 -> 12.3 µs. Otherwise when A and C are smaller to copy than B: its
        // 32x64 · (128x64)ᵀ 6.2-6.4 -> 5.7-5.9 µs against copying B.
        let transposed_product = !t.a && t.b && (n <= SKINNY || m * (k + n) < n * k);
        if transposed_product && single && m >= 32 && tile::fits::<T>(k, m) && vector_tiles {
            let at = transposed(ma, m, k);
            let init = match epilogue {
                None => tile::Init::Zero,
                Some(Epilogue::ColBias(bias)) => tile::Init::RowBias(bias, n),
                Some(Epilogue::RowBias(bias)) => tile::Init::ColBias(bias),
            };
            let mut ct: Vec<T> = Vec::with_capacity(n * m);
            tile::tile_gemm(mb, (k, 1), &at, &mut ct.spare_capacity_mut()[..n * m], 0, k, m, init);
            // SAFETY: the tiles wrote all n x m elements.
            unsafe { ct.set_len(n * m) };
            crate::kernels::index::transpose_into(&ct, n, m, c);
            return;
        } else if narrow {
            dots_kernel(ma, mb, c, m, k, n);
        } else {
            // The register tiles need a row-major B, and the packed GEMM packs a row-major A
            // and a column-major B one gathered element at a time: a product small enough for
            // one thread copies a transposed B (and, for the GEMM, a row-major A of at least
            // 16 rows) transposed first, in vector tiles. Measured on f32 products of 0.1-1
            // MFLOP (with matrixmultiply, which packs the same way): the digits MLP's x·Wᵀ,
            // 32x64 · (128x64)ᵀ, 8.5 µs straight, 6.6 with the copies, 6.3 with the copy and the tiles (and 5.7-5.9 as
            // the transposed product above). Without vector tiles (f64) the copies cost more
            // than they save (5-20% slower), so none is made.
            let single = vector_tiles && single;
            let at = (single && !t.a && m >= 16 && k > 1 && !tile::fits::<T>(k, n)).then(|| transposed(ma, m, k));
            let bt = (single && t.b && n > 1 && k > 1).then(|| transposed(mb, n, k));
            let (pa, rsa, csa) = at.as_ref().map_or((ma.as_ptr(), rsa, csa), |v| (v.as_ptr(), 1, m as isize));
            let (pb, rsb, csb) = bt.as_ref().map_or((mb.as_ptr(), rsb, csb), |v| (v.as_ptr(), n as isize, 1));
            // SAFETY: pa/pb address whole m x k and k x n matrices with these strides (the
            // stored ones, or their transposed copies), c is this product's m x n block,
            // disjoint from every other; the gemm adds the bias.
            unsafe { gemm_split(m, k, n, pa, rsa, csa, pb, rsb, csb, pc, epilogue.map(|e| (e, m))) };
            return;
        }
        if let Some(e) = epilogue {
            // SAFETY: the kernel above wrote this m x n block.
            unsafe { e.apply(pc, 0, m, m, n, 0..n) };
        }
    };
    let flops = 2 * m * n * k * offsets.len();
    if offsets.len() > 1 && flops >= PARALLEL_BATCH_FLOPS {
        let parts = offsets.len().min(crate::runtime::num_threads());
        crate::parallel::for_each_part_mut(out, parts, m * n, |start, part| {
            let first = start / (m * n).max(1);
            part.chunks_mut(m * n).zip(&offsets[first..]).for_each(|(c, &o)| one(c, o))
        });
    } else {
        out.chunks_mut(m * n).zip(offsets).for_each(|(c, o)| one(c, o));
    }
    // SAFETY: the products' blocks cover all `total` elements and each kernel writes its block.
    unsafe { buf.set_len(total) };
    Ok(Tensor::from_parts(buf, out_shape))
}

/// The row-major `rows x cols` matrix `x`, transposed (`cols x rows`).
fn transposed<T: Float>(x: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(rows * cols);
    crate::kernels::index::transpose_into(x, rows, cols, &mut v.spare_capacity_mut()[..rows * cols]);
    // SAFETY: transpose_into wrote all rows x cols elements.
    unsafe { v.set_len(rows * cols) };
    v
}

/// A single product is split across threads from this many FLOPs up (measured: a 128x64x64
/// product, 1 MFLOP, takes about 6 µs on one core, enough to repay the hand-off).
const PARALLEL_GEMM_FLOPS: usize = 1 << 20;

/// `C = op(A)·op(B)` into a row-major `m x n` C (overwritten), with `A` and `B` given by
/// pointer and strides; large products are cut into row blocks of C, one per thread, in one
/// packed GEMM call (`wengert_gemm::gemm`, whose row blocks share one packed copy of B), or,
/// when C is too short, into column blocks, each a single-threaded call. Batches of products
/// reach here from inside their own tasks, and then run whole on their thread.
///
/// # Safety
/// The pointers and strides must address valid `m x k`, `k x n` and `m x n` matrices, and C
/// must not alias A or B.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_split<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    rsb: isize,
    csb: isize,
    c: *mut T,
    epilogue: Option<(Epilogue<'_, T>, usize)>,
) {
    /// Row and column blocks are cut at multiples of this (the micro-kernel's tile edge).
    const TILE: usize = 16;
    let threads = crate::runtime::num_threads();
    let parts = if 2 * m * n * k >= PARALLEL_GEMM_FLOPS { threads } else { 1 };
    // Each block packs all of the operand it does not split: split the longer side of C.
    let by_rows = if m >= n { m >= parts * TILE || n < parts * TILE } else { n < parts * TILE };
    if csb == 1 && rsb == n as isize && (csa == 1 || rsa == 1) && (by_rows || parts == 1) && tile::fits::<T>(k, n) {
        let init = match epilogue {
            None => tile::Init::Zero,
            Some((Epilogue::RowBias(bias), period)) => tile::Init::RowBias(bias, period),
            Some((Epilogue::ColBias(bias), _)) => tile::Init::ColBias(bias),
        };
        // SAFETY: the caller's A spans (m-1)·rsa + (k-1)·csa + 1 elements from `a` (both
        // strides are positive here: matmul_impl passes 1 or a row length), B is a row-major
        // k x n, C a row-major m x n that aliases neither.
        let (a, b, c) = unsafe {
            let a_len = (m - 1) * rsa as usize + (k - 1) * csa as usize + 1;
            (
                std::slice::from_raw_parts(a, a_len),
                std::slice::from_raw_parts(b, k * n),
                std::slice::from_raw_parts_mut(c.cast::<MaybeUninit<T>>(), m * n),
            )
        };
        let strides = (rsa as usize, csa as usize);
        crate::parallel::for_each_part_mut(c, parts, tile::ROWS * n, |start, part| {
            tile::tile_gemm(a, strides, b, part, start / n, k, n, init)
        });
        return;
    }
    let len = if by_rows { m } else { n };
    let parts = parts.min(len.div_ceil(TILE)).max(1);
    let bound = |i: usize| (len.div_ceil(TILE) * i / parts * TILE).min(len);
    use crate::parallel::SendPtr;
    if by_rows {
        // One call whose row blocks run on the pool and share one packed copy of B (a call
        // per block had each thread pack all of B), the bias added to each block of rows as
        // it is finished, while it is in cache.
        let fork = PoolFork { parts, c: SendPtr(c), n, epilogue };
        // SAFETY: the caller's matrices are valid; C is a row-major m x n.
        unsafe { T::gemm(&fork, m, k, n, T::ONE, a, rsa, csa, b, rsb, csb, T::ZERO, c, n as isize, 1) };
        return;
    }
    let (a, b, c) = (SendPtr(a as *mut T), SendPtr(b as *mut T), SendPtr(c));
    crate::parallel::for_each_task(parts, |i| {
        let (lo, hi) = (bound(i), bound(i + 1));
        // SAFETY: the caller's matrices are valid; block i reads columns lo..hi of op(B) and
        // writes only its own disjoint block of C.
        unsafe {
            let (pb, pc) = (b.get().offset(lo as isize * csb), c.get().add(lo));
            T::gemm(&wengert_gemm::Serial, m, k, hi - lo, T::ONE, a.get(), rsa, csa, pb, rsb, csb, T::ZERO, pc, n as isize, 1);
            if let Some((e, rows_per_product)) = epilogue {
                e.apply(c.get(), 0, m, rows_per_product, n, lo..hi);
            }
        }
    });
}

/// The pool as a [`wengert_gemm::Fork`] for a product into the row-major C at `c` (rows of
/// `n`): its row blocks one task each, and the epilogue (with the rows per product of a
/// batch) on each block of rows as it is finished.
struct PoolFork<'a, T> {
    parts: usize,
    c: crate::parallel::SendPtr<T>,
    n: usize,
    epilogue: Option<(Epilogue<'a, T>, usize)>,
}

impl<T: Float> wengert_gemm::Fork for PoolFork<'_, T> {
    fn parts(&self) -> usize {
        self.parts
    }
    fn run(&self, task: &(dyn Fn(usize) + Sync)) {
        crate::parallel::for_each_task(self.parts, task)
    }
    fn finished(&self, rows: std::ops::Range<usize>) {
        if let Some((e, rows_per_product)) = self.epilogue {
            // SAFETY: the gemm has written these rows of C, and no other part touches them.
            unsafe { e.apply(self.c.get().add(rows.start * self.n), rows.start, rows.len(), rows_per_product, self.n, 0..self.n) };
        }
    }
}

/// Products A·Bᵀ with an output this narrow use [`dots_kernel`], which makes up to eight dot
/// products per pass over the rows it reads. On the conv weight gradient (32x676 · (9x676)ᵀ
/// per sample, 32 samples) it took 100 µs, against 226 µs making four per pass over one row
/// of A (both in one run), and 0.56 ms (measured earlier) with `matrixmultiply`, whose
/// packing costs more than the arithmetic here; an MLP's [128, 256] · ([10, 256])ᵀ takes 12
/// µs against 25. (The conv's summed weight gradient now has its own kernel,
/// [`matmul_nt_with_row_sums`], and f32 products of at least 32 rows small enough for one
/// thread go through the register tiles as Cᵀ = B·Aᵀ.)
pub(crate) const SKINNY: usize = 16;

/// A batch of products whose total work reaches this many FLOPs is split across threads
/// (one product per task); smaller batches are not worth the hand-off.
const PARALLEL_BATCH_FLOPS: usize = 1 << 20;

/// C = A·Bᵀ for row-major A `[m, k]` and B `[n, k]`: each element is a dot product of two
/// contiguous rows. Groups of four rows of B are met two rows of A at a time (eight dot
/// products per pass, [`dot2x4_lanes`]); each of the last `n mod 4` rows of B meets four
/// rows of A at a time ([`dot4_lanes`] with the roles swapped), so no work is padded.
fn dots_kernel<T: Float>(a: &[T], b: &[T], c: &mut [MaybeUninit<T>], m: usize, k: usize, n: usize) {
    use crate::kernels::reduce::{dot2x4_lanes, dot4_lanes};
    let brow = |j: usize| &b[j * k..(j + 1) * k];
    let arow = |i: usize| &a[i * k..(i + 1) * k];
    let mut put = |i: usize, j: usize, v: T| {
        c[i * n + j].write(v);
    };
    let quads = n / 4 * 4;
    for j in (0..quads).step_by(4) {
        let bq = [brow(j), brow(j + 1), brow(j + 2), brow(j + 3)];
        for i in (0..m / 2 * 2).step_by(2) {
            let d = dot2x4_lanes([arow(i), arow(i + 1)], bq);
            (0..2).for_each(|r| (0..4).for_each(|q| put(i + r, j + q, d[r][q])));
        }
        if m % 2 == 1 {
            let d = dot4_lanes(arow(m - 1), bq);
            (0..4).for_each(|q| put(m - 1, j + q, d[q]));
        }
    }
    for j in quads..n {
        for i in (0..m).step_by(4) {
            // the last group of rows of A repeats its last row and drops the extra results
            let rows = [0, 1, 2, 3].map(|r| arow((i + r).min(m - 1)));
            let d = dot4_lanes(brow(j), rows);
            (0..4.min(m - i)).for_each(|r| put(i + r, j, d[r]));
        }
    }
}

/// A conv's weight and bias gradients from one pass over the output gradient: for `g`
/// `[batch, m, l]` and `b` `[batch, k, l]` (row-major), returns `Σ_s g_s·b_sᵀ` as `[m, k]`
/// and the row sums `Σ_s Σ_j g_s[i, j]` as `[m]`, in one pass over `g`. Every thread keeps
/// its samples' dot products and row sums as registers of lane-wise partial sums, which it
/// adds to in blocks of four rows of `g` against three rows of `b` (the row sums taken along
/// with the first three), and the registers are folded to scalars once at the end, not once
/// per sample. Measured on a conv's 32 samples of 32x676 · (9x676)ᵀ, both threads: 100 µs,
/// against 130 µs with a dot-product kernel folding each sample's dot products and a
/// separate row-sum pass per sample (one run, alternated).
///
/// ```
/// use wengert_core::{kernels::matmul::matmul_nt_with_row_sums, Tensor};
/// let g = Tensor::<f32>::ones([2, 3, 4]);
/// let b = Tensor::<f32>::ones([2, 5, 4]);
/// let (dw, rows) = matmul_nt_with_row_sums(&g, &b).unwrap();
/// assert_eq!((dw.dims(), dw.get(&[2, 4])), (&[3, 5][..], 8.0));
/// assert_eq!(rows.to_vec(), vec![8.0; 3]);
/// ```
pub fn matmul_nt_with_row_sums<T: Float>(g: &Tensor<T>, b: &Tensor<T>) -> Result<(Tensor<T>, Tensor<T>)> {
    let (batch, m, l, k) = match (g.dims(), b.dims()) {
        (&[bg, m, l], &[bb, k, lb]) if bg == bb && l == lb => (bg, m, l, k),
        _ => {
            return Err(Error::shapes(
                "matmul_nt_with_row_sums",
                &[g.shape(), b.shape()],
                "expected [batch, m, l] and [batch, k, l]",
            ))
        }
    };
    use crate::kernels::reduce::{add_dots_lanes, add_lanes, sum_register, Lanes};
    if batch * m * l == 0 {
        return Ok((Tensor::zeros([m, k]), Tensor::zeros([m])));
    }
    // Each thread keeps lane-wise partial sums for its samples; they are added and folded
    // to scalars once at the end.
    let width = m * k + m;
    let threads = if 2 * m * k * l * batch >= PARALLEL_BATCH_FLOPS { crate::runtime::num_threads().min(batch) } else { 1 };
    let mut parts: Vec<Lanes<T>> = vec![[T::ZERO; _]; threads * width];
    let (xg, xb) = (g.as_slice(), b.as_slice());
    crate::parallel::for_each_part_mut(&mut parts, threads, width, |start, acc| {
        let part = start / width;
        for s in batch * part / threads..batch * (part + 1) / threads {
            add_dots_lanes(&xg[s * m * l..(s + 1) * m * l], &xb[s * k * l..(s + 1) * k * l], acc, m, l, k);
        }
    });
    let (first, rest) = parts.split_at_mut(width);
    for part in rest.chunks_exact(width) {
        first.iter_mut().zip(part).for_each(|(t, &p)| *t = add_lanes(*t, p));
    }
    let mut total: Vec<T> = first.iter().map(|&v| sum_register(v)).collect();
    let sums = total.split_off(m * k);
    Ok((Tensor::from_parts(total, Shape::new(&[m, k])), Tensor::from_parts(sums, Shape::new(&[m]))))
}

/// NumPy `matmul` semantics: a 1-D left operand is a row vector, a 1-D right operand a column
/// vector, and the added dim is removed from the result.
///
/// ```
/// use wengert_core::{kernels::matmul::matmul, Tensor};
/// let a = Tensor::new(vec![1.0f64, 2.0, 3.0, 4.0], [2, 2]);
/// let v = Tensor::from_slice(&[1.0, 1.0]);
/// assert_eq!(matmul(&a, &a).unwrap().to_vec(), [7.0, 10.0, 15.0, 22.0]);
/// assert_eq!(matmul(&a, &v).unwrap().dims(), &[2]); // a column vector: [2, 1] with the 1 removed
/// assert_eq!(matmul(&v, &a).unwrap().to_vec(), [4.0, 6.0]); // a row vector
/// assert!(matmul(&a, &Tensor::zeros([3, 2])).is_err());
/// ```
pub fn matmul<T: Float>(a: &Tensor<T>, b: &Tensor<T>) -> Result<Tensor<T>> {
    if a.ndim() == 0 || b.ndim() == 0 {
        return Err(Error::shapes("matmul", &[a.shape(), b.shape()], "operands must have at least 1 dim"));
    }
    let a2 = if a.ndim() == 1 { a.try_reshape([1, a.numel()])? } else { a.clone() };
    let b2 = if b.ndim() == 1 { b.try_reshape([b.numel(), 1])? } else { b.clone() };
    let c = matmul_t(&a2, &b2, Transpose::NN).map_err(|e| match e {
        Error::ShapeMismatch { op, reason, .. } => Error::ShapeMismatch {
            op,
            reason,
            shapes: vec![a.shape().clone(), b.shape().clone()],
        },
        e => e,
    })?;
    let mut dims = c.dims().to_vec();
    if b.ndim() == 1 {
        dims.pop();
    }
    if a.ndim() == 1 {
        dims.remove(dims.len() - usize::from(b.ndim() != 1) - 1);
    }
    c.try_reshape(dims)
}

impl<T: Float> Tensor<T> {
    /// Matrix product with NumPy semantics (vectors, matrices, broadcast batches).
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::new(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]);
    /// let v = Tensor::from_slice(&[1.0, 0.0, -1.0]);
    /// assert_eq!(a.matmul(&v).to_vec(), vec![-2.0, -2.0]);
    /// ```
    #[track_caller]
    pub fn matmul(&self, other: &Tensor<T>) -> Tensor<T> {
        matmul(self, other).or_panic()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &Tensor<f64>, b: &Tensor<f64>) -> Vec<f64> {
        let (m, k, n) = (a.dims()[0], a.dims()[1], b.dims()[1]);
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] += a.get(&[i, p]) * b.get(&[p, j]);
                }
            }
        }
        c
    }

    /// Shapes that reach each kernel: the register tiles (B small enough, short and long
    /// inner dimensions), the dot-product kernel (A·Bᵀ with n <= 16, rows long enough for
    /// every tail of the lane loop), the packed GEMM (a B too big for the tiles, C too
    /// narrow), row/column splits across threads, and batches against a shared operand.
    #[test]
    fn every_kernel_path_matches_naive() {
        let val = |i: &[usize]| ((i.iter().enumerate().map(|(d, &x)| (d + 3) * x).sum::<usize>() % 13) as f64 - 6.0) * 0.25;
        for &(m, k, n) in &[(5, 9, 150), (7, 3, 64), (4, 16, 200), (3, 676, 9), (6, 40, 3), (2, 70, 16), (1, 1, 65), (130, 40, 70), (20, 300, 600)] {
            let a = Tensor::<f64>::from_fn([m, k], val);
            let b = Tensor::<f64>::from_fn([k, n], |i| val(&[i[1], i[0] + 1]));
            let want = naive(&a, &b);
            let at = Tensor::from_fn([k, m], |i| a.get(&[i[1], i[0]]));
            let bt = Tensor::from_fn([n, k], |i| b.get(&[i[1], i[0]]));
            for (x, y, t) in [(&a, &b, Transpose::NN), (&at, &b, Transpose::TN), (&a, &bt, Transpose::NT), (&at, &bt, Transpose::TT)] {
                let got = matmul_t(x, y, t).unwrap().to_vec();
                let worst = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max);
                assert!(worst < 1e-9, "{m}x{k}x{n} {t:?}: off by {worst}");
            }
            // a batch of 3 against the shared A (conv's weight · columns)
            let bb = Tensor::<f64>::from_fn([3, k, n], |i| val(&[i[2], i[1] + i[0]]));
            let got = a.matmul(&bb);
            for s in 0..3 {
                let bs = Tensor::from_fn([k, n], |i| bb.get(&[s, i[0], i[1]]));
                assert_eq!(got.index_select(0, &[s]).to_vec(), naive(&a, &bs), "batch {s} of {m}x{k}x{n}");
            }
        }
    }

    /// The fused bias (per row or per column) on every kernel path, single and batched
    /// (including the tall single-gemm path and the row/column splits), equals the product
    /// plus the bias added afterwards.
    #[test]
    fn bias_epilogue_on_every_path() {
        let val = |i: &[usize]| ((i.iter().enumerate().map(|(d, &x)| (d + 2) * x).sum::<usize>() % 11) as f64 - 5.0) * 0.5;
        for &(m, k, n) in &[(5, 9, 150), (3, 676, 9), (130, 40, 70), (20, 300, 600), (40, 3, 20), (2, 0, 3)] {
            for batch in [None, Some(3)] {
                let a = Tensor::<f64>::from_fn([m, k], val);
                let bt = Tensor::<f64>::from_fn([n, k], val);
                let b = Tensor::<f64>::from_fn([k, n], val);
                let bb = batch.map(|s| Tensor::<f64>::from_fn([s, k, n], val));
                let ab = batch.map(|s| Tensor::<f64>::from_fn([s, m, k], val));
                let rows = Tensor::<f64>::from_fn([m, 1], |i| i[0] as f64 * 0.25 + 1.0);
                let cols = Tensor::<f64>::from_fn([n], |i| 2.0 - i[0] as f64 * 0.125);
                let cases: Vec<(&Tensor<f64>, &Tensor<f64>, Transpose)> = match (&ab, &bb) {
                    (Some(ab), Some(bb)) => vec![(&a, bb, Transpose::NN), (ab, &b, Transpose::NN), (ab, &bt, Transpose::NT)],
                    _ => vec![(&a, &b, Transpose::NN), (&a, &bt, Transpose::NT)],
                };
                for (x, y, t) in cases {
                    let plain = matmul_t(x, y, t).unwrap();
                    for bias in [&rows, &cols] {
                        let want = plain.add(bias);
                        let got = matmul_t_bias(x, y, t, bias).unwrap();
                        assert!(got.allclose(&want, 1e-12, 1e-9), "{m}x{k}x{n} batch {batch:?} {t:?} bias {:?}", bias.shape());
                    }
                }
            }
        }
        let err = matmul_t_bias(&Tensor::<f32>::zeros([2, 3]), &Tensor::zeros([3, 4]), Transpose::NN, &Tensor::zeros([3])).unwrap_err();
        assert!(err.to_string().contains("the bias must be [4] (per column) or [2, 1] (per row)"), "{err}");
    }

    /// The register tiles (products whose B fits in cache): rows in blocks of four and the
    /// last 1-3 as a pair and a single row, columns in 32s, a 16 and an overlapping last 16, a row-major and a
    /// column-major A (and, in f32, a transposed B copied row-major first), no bias, a bias
    /// per row or per column, a product split across threads by rows, and a tall batch
    /// against a shared B whose per-row bias repeats every m rows.
    #[test]
    fn register_tiles_match_naive() {
        fn case<T: Float>(m: usize, k: usize, n: usize, tol: f64) {
            let val = |i: &[usize]| T::from_f64(((i[0] * 7 + i[1] * 3) % 11) as f64 * 0.25 - 1.0);
            let (a, b) = (Tensor::<T>::from_fn([m, k], val), Tensor::<T>::from_fn([k, n], |i| val(&[i[1], i[0]])));
            let want = Tensor::new(naive(&a.map(|x| x.to_f64()), &b.map(|x| x.to_f64())), [m, n]);
            let rows = Tensor::<T>::from_fn([m, 1], |i| T::from_f64(i[0] as f64 * 0.5 - 3.0));
            let cols = Tensor::<T>::from_fn([n], |i| T::from_f64(2.0 - i[0] as f64 * 0.125));
            let f64s = |t: &Tensor<T>| t.map(|x| x.to_f64());
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let x = if ta { a.t() } else { a.clone() };
                let y = if tb { b.t() } else { b.clone() };
                let t = Transpose { a: ta, b: tb };
                let got = f64s(&matmul_t(&x, &y, t).unwrap());
                assert!(got.allclose(&want, tol, tol), "{m}x{k}x{n} {t:?}");
                for bias in [&rows, &cols] {
                    let got = f64s(&matmul_t_bias(&x, &y, t, bias).unwrap());
                    assert!(got.allclose(&want.add(&f64s(bias)), tol, tol), "{m}x{k}x{n} {t:?} bias {:?}", bias.shape());
                }
            }
            let batch = Tensor::<T>::from_fn([3, m, k], |i| val(&[i[1] + i[0], i[2]]));
            let got = f64s(&matmul_t_bias(&batch, &b, Transpose::NN, &rows).unwrap());
            for s in 0..3 {
                let want = Tensor::new(naive(&f64s(&batch.index_select(0, &[s]).reshape([m, k])), &f64s(&b)), [m, n]).add(&f64s(&rows));
                assert!(got.index_select(0, &[s]).reshape([m, n]).allclose(&want, tol, tol), "batch {s} of {m}x{k}x{n}");
            }
        }
        // 200x40x70 is 1.1 MFLOP: split across threads
        for &(m, k, n) in &[(1, 1, 16), (3, 5, 17), (5, 7, 31), (6, 9, 32), (7, 20, 33), (9, 3, 48), (4, 64, 128), (130, 40, 70), (200, 40, 70)] {
            assert!(tile::fits::<f64>(k, n));
            case::<f32>(m, k, n, 1e-4);
            case::<f64>(m, k, n, 1e-12);
        }
        // f32 A·Bᵀ computed as (B·Aᵀ)ᵀ in the tiles: B with at most 16 rows, or more rows
        // than A and C are worth copying instead; and C one row too short for it
        for &(m, k, n) in &[(32, 128, 10), (37, 5, 1), (64, 3, 16), (35, 20, 7), (31, 20, 7), (32, 64, 128), (33, 64, 100)] {
            case::<f32>(m, k, n, 1e-4);
        }
    }

    #[test]
    fn weight_and_bias_gradients_in_one_pass() {
        let val = |i: &[usize]| ((i.iter().enumerate().map(|(d, &x)| (d + 3) * x).sum::<usize>() % 13) as f64 - 6.0) * 0.25;
        // rows of g in blocks of 4 and single rows, of b in blocks of 3 and single rows, rows
        // with a tail after whole registers, rows shorter than one register, no rows of b
        let shapes = [(3, 5, 9, 150), (1, 2, 1, 17), (4, 32, 16, 676), (2, 3, 4, 0), (2, 7, 2, 7), (3, 5, 0, 20), (2, 9, 10, 33), (33, 4, 3, 64)];
        for &(batch, m, k, l) in &shapes {
            let g = Tensor::<f64>::from_fn([batch, m, l], val);
            let b = Tensor::<f64>::from_fn([batch, k, l], |i| val(&[i[1], i[2], i[0]]));
            let (dw, rows) = matmul_nt_with_row_sums(&g, &b).unwrap();
            let want_dw = matmul_t(&g, &b, Transpose::NT).unwrap().sum_axes(&[0], false);
            let want_rows = g.sum_axes(&[0, 2], false);
            assert!(dw.allclose(&want_dw, 1e-12, 1e-9), "{batch}x{m}x{k}x{l}");
            assert!(rows.allclose(&want_rows, 1e-12, 1e-9), "{batch}x{m}x{k}x{l}");
        }
        assert!(matmul_nt_with_row_sums(&Tensor::<f32>::zeros([2, 3, 4]), &Tensor::zeros([3, 5, 4])).is_err());
    }

    /// A row's last partial register is read as its last whole one with the lanes already
    /// counted masked off: an infinity in those lanes must not turn into 0·∞ = NaN.
    #[test]
    fn row_tails_do_not_count_overlapped_lanes_twice() {
        let l = 20;
        let g = Tensor::<f32>::ones([1, 4, l]);
        let b = Tensor::<f32>::from_fn([1, 3, l], |i| if i[1] == 1 && i[2] == 5 { f32::INFINITY } else { 1.0 });
        let (dw, rows) = matmul_nt_with_row_sums(&g, &b).unwrap();
        for i in 0..4 {
            assert_eq!([dw.get(&[i, 0]), dw.get(&[i, 1]), dw.get(&[i, 2])], [l as f32, f32::INFINITY, l as f32]);
        }
        assert_eq!(rows.to_vec(), vec![l as f32; 4]);
    }

    #[test]
    fn matches_naive_and_transposes() {
        let a = Tensor::<f64>::from_fn([3, 4], |i| (i[0] * 4 + i[1]) as f64 - 5.0);
        let b = Tensor::<f64>::from_fn([4, 2], |i| (i[0] as f64) * 0.5 - i[1] as f64);
        let c = a.matmul(&b);
        assert_eq!(c.to_vec(), naive(&a, &b));
        let at = Tensor::from_fn([4, 3], |i| a.get(&[i[1], i[0]]));
        let bt = Tensor::from_fn([2, 4], |i| b.get(&[i[1], i[0]]));
        assert_eq!(matmul_t(&at, &b, Transpose::TN).unwrap().to_vec(), c.to_vec());
        assert_eq!(matmul_t(&a, &bt, Transpose::NT).unwrap().to_vec(), c.to_vec());
        assert_eq!(matmul_t(&at, &bt, Transpose::TT).unwrap().to_vec(), c.to_vec());
    }

    /// f32 products small enough for one thread copy a row-major A (16 rows or more) and a
    /// column-major B transposed before the gemm: every transpose combination, with and
    /// without a bias, against the naive product (f64, which makes no copies, alike).
    #[test]
    fn transposed_operand_copies_match_naive() {
        fn case<T: Float>(m: usize, k: usize, n: usize, tol: f64) {
            let val = |i: &[usize]| T::from_f64(((i[0] * 7 + i[1] * 3) % 11) as f64 * 0.25 - 1.0);
            let (a, b) = (Tensor::<T>::from_fn([m, k], val), Tensor::<T>::from_fn([k, n], val));
            let want = Tensor::new(naive(&a.map(|x| x.to_f64()), &b.map(|x| x.to_f64())), [m, n]);
            let cols = Tensor::<T>::from_fn([n], |i| T::from_f64(i[0] as f64 * 0.5));
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let x = if ta { a.t() } else { a.clone() };
                let y = if tb { b.t() } else { b.clone() };
                let got = matmul_t(&x, &y, Transpose { a: ta, b: tb }).unwrap().map(|v| v.to_f64());
                assert!(got.allclose(&want, tol, tol), "{m}x{k}x{n} ta {ta} tb {tb}");
                let got = matmul_t_bias(&x, &y, Transpose { a: ta, b: tb }, &cols).unwrap().map(|v| v.to_f64());
                assert!(got.allclose(&want.add(&cols.map(|v| v.to_f64())), tol, tol), "{m}x{k}x{n} ta {ta} tb {tb} with bias");
            }
        }
        for &(m, k, n) in &[(16, 9, 13), (33, 20, 17), (64, 64, 64), (1, 5, 7), (40, 2, 30)] {
            case::<f32>(m, k, n, 1e-4);
            case::<f64>(m, k, n, 1e-12);
        }
    }

    #[test]
    fn batched_broadcast_and_vectors() {
        let a = Tensor::<f64>::from_fn([2, 1, 2, 3], |i| (i[0] + i[2] * 3 + i[3]) as f64);
        let b = Tensor::<f64>::from_fn([4, 3, 2], |i| (i[0] + i[1] + 2 * i[2]) as f64);
        let c = a.matmul(&b);
        assert_eq!(c.dims(), &[2, 4, 2, 2]);
        let a1 = Tensor::from_fn([2, 3], |i| a.get(&[1, 0, i[0], i[1]]));
        let b1 = Tensor::from_fn([3, 2], |i| b.get(&[3, i[0], i[1]]));
        let c1 = Tensor::from_fn([2, 2], |i| c.get(&[1, 3, i[0], i[1]]));
        assert_eq!(c1.to_vec(), naive(&a1, &b1));
        let v = Tensor::from_slice(&[1.0, 2.0, 3.0]);
        assert_eq!(v.matmul(&v).dims(), &[] as &[usize]);
        assert_eq!(v.matmul(&v).item(), 14.0);
        assert_eq!(v.matmul(&b).dims(), &[4, 2]);
        // a batch against one shared matrix takes the single-gemm path
        let x = Tensor::<f64>::from_fn([3, 2, 3], |i| (i[0] * 6 + i[1] * 3 + i[2]) as f64);
        let w = Tensor::<f64>::from_fn([3, 2], |i| (i[0] as f64) - (i[1] as f64));
        let y = x.matmul(&w);
        let x2 = Tensor::from_fn([2, 3], |i| x.get(&[2, i[0], i[1]]));
        assert_eq!(Tensor::from_fn([2, 2], |i| y.get(&[2, i[0], i[1]])).to_vec(), naive(&x2, &w));
    }

    #[test]
    #[should_panic(expected = "wengert: matmul: inner dimensions differ (3 vs 4): shapes [2, 3] and [4, 5]")]
    fn inner_mismatch_names_shapes() {
        Tensor::<f32>::zeros([2, 3]).matmul(&Tensor::zeros([4, 5]));
    }
}
