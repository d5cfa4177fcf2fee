//! A register-tiled product that reads its operands where they lie, for products whose B is
//! small enough to stay in cache: no packing, no copies, no allocation.
//!
//! `C = op(A)·B` with B row-major `[k, n]` and A read through its strides (row-major,
//! column-major, or any other). C is built in tiles of 4 rows x 32 columns: for each step
//! along k, two registers of B's row meet four broadcast elements of A's column in eight
//! independent multiply-adds. `matrixmultiply` packs both operands into panels first,
//! which is most of its time on products this small. Measured on one thread (f32, this
//! machine's FMA peak is about 118 GFLOP/s per core), tiles against `matrixmultiply`:
//!
//! | product (m x k x n, op(A)) | tiles | matrixmultiply |
//! |---|---|---|
//! | 32x64x128, A (an MLP's forward) | 4.5-4.8 µs (108-116 GFLOP/s) | 6.0-6.2 µs |
//! | 128x32x64, Aᵀ (its weight gradient) | 4.6-4.9 µs | 5.1-5.6 µs |
//! | 10x32x128, Aᵀ | 0.8-1.0 µs | 2.0-2.5 µs |
//! | 128x128x128, A | 37.5-39.4 µs | 44-48 µs |
//! | 256x256x256, A | 315 µs | 336 µs |
//! | 128x256x784, A (B of 784 KB) | 823 µs | 490 µs |
//!
//! The last row is why B must fit in [`MAX_B_BYTES`]: a B that spills to L3 is read again
//! for every four rows of C, and packing wins. Against the packed GEMM of `wengert-gemm`
//! (which replaced `matrixmultiply`) on a Zen 3 core the bound is 128 KB: 256x256x256 on
//! both cores took 325-328 µs in the tiles and 202-205 µs packed (`benches/gemm.rs`).

use crate::element::Float;
use std::mem::MaybeUninit;

/// One register's worth of lanes (16 f32 = one AVX-512 register).
const W: usize = 16;
/// Rows of C per tile.
pub(super) const ROWS: usize = 4;

/// Products whose B (`k x n` elements of `T`) is at most this big use the tiles; measured
/// above: from 256 KB (256x256 f32) up, packing wins.
pub(super) const MAX_B_BYTES: usize = 128 << 10;

/// Whether a product with this `k x n` B is one for the tiles: B fits [`MAX_B_BYTES`] and
/// C's rows are at least one register wide (narrower ones would be mostly padding).
pub(super) fn fits<T>(k: usize, n: usize) -> bool {
    n >= W && k * n * std::mem::size_of::<T>() <= MAX_B_BYTES
}

/// What the tiles start from: zero, or a bias per row or per column of C.
#[derive(Clone, Copy)]
pub(super) enum Init<'a, T> {
    /// `c[i, j] = Σ ...`
    Zero,
    /// `c[i, j] = bias[(row0 + i) % period] + Σ ...`, the row index taken over every row of
    /// a tall batch of products `period` rows each.
    RowBias(&'a [T], usize),
    /// `c[i, j] = bias[j] + Σ ...`
    ColBias(&'a [T]),
}

/// Writes rows `row0..row0 + c.len() / n` of `C = op(A)·B` into `c` (those rows, row-major,
/// rows of `n`). `A` is `m x k` read as `a[i·rsa + kk·csa]`, row-major (`csa == 1`) or
/// column-major (`rsa == 1`); `B` is row-major `[k, n]`.
///
/// # Panics
/// If an operand is too short for the shapes (bounds are checked once per tile, not per
/// element).
#[allow(clippy::too_many_arguments)]
pub(super) fn tile_gemm<T: Float>(
    a: &[T],
    (rsa, csa): (usize, usize),
    b: &[T],
    c: &mut [MaybeUninit<T>],
    row0: usize,
    k: usize,
    n: usize,
    init: Init<'_, T>,
) {
    assert!(k > 0 && n >= W && b.len() >= k * n && c.len().is_multiple_of(n), "tile_gemm: {k}x{n} B, {} slots of C", c.len());
    let b = &b[..k * n];
    for (block, c) in c.chunks_mut(ROWS * n).enumerate() {
        let i = row0 + block * ROWS;
        if c.len() == ROWS * n {
            rows_block::<T, ROWS>(a, (rsa, csa), b, c, i, k, n, init);
        } else {
            // the last 1-3 rows: a pair, then one (a single row's two accumulators would
            // wait on each other's multiply-adds)
            let (pair, one) = c.split_at_mut(c.len() / (2 * n) * 2 * n);
            if !pair.is_empty() {
                rows_block::<T, 2>(a, (rsa, csa), b, pair, i, k, n, init);
            }
            if !one.is_empty() {
                rows_block::<T, 1>(a, (rsa, csa), b, one, i + pair.len() / n, k, n, init);
            }
        }
    }
}

/// Rows `i..i+R` of C, with A's elements fetched in the form its layout allows: a row-major
/// A as R row slices, a column-major A as one R-element slice per step along k.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn rows_block<T: Float, const R: usize>(
    a: &[T],
    (rsa, csa): (usize, usize),
    b: &[T],
    c: &mut [MaybeUninit<T>],
    i: usize,
    k: usize,
    n: usize,
    init: Init<'_, T>,
) {
    if csa == 1 {
        let rows: [&[T]; R] = std::array::from_fn(|r| &a[(i + r) * rsa..][..k]);
        columns::<T, R>(|kk| std::array::from_fn(|r| rows[r][kk]), b, c, i, n, init);
    } else {
        debug_assert_eq!(rsa, 1, "A is row-major or column-major");
        let a = &a[i..i + (k - 1) * csa + R];
        columns::<T, R>(|kk| a[kk * csa..][..R].try_into().expect("R elements"), b, c, i, n, init);
    }
}

/// Every column tile of rows `i..i+R`: 32 columns at a time, then 16, then (if `n` is not
/// a multiple of 16) the last 16 columns again, overlapping the tile before it; the
/// overlapped elements are computed the same way twice and written with the same values.
/// The two loops are written out: folded into one function generic over the tile's width,
/// LLVM kept the accumulators in memory and the digits MLP's products ran 15-20x slower.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn columns<T: Float, const R: usize>(
    a_at: impl Fn(usize) -> [T; R],
    b: &[T],
    c: &mut [MaybeUninit<T>],
    i: usize,
    n: usize,
    init: Init<'_, T>,
) {
    // the bias each tile starts from, fetched once per tile (no closures: an out-of-line
    // call per tile was a third of the time of a 128x32x64 product)
    let row_bias: [T; R] = match init {
        Init::RowBias(bias, period) => std::array::from_fn(|r| bias[(i + r) % period]),
        _ => [T::ZERO; R],
    };
    let col_bias = |j: usize| -> [T; W] {
        match init {
            Init::ColBias(bias) => bias[j..j + W].try_into().expect("W columns"),
            _ => [T::ZERO; W],
        }
    };
    let mut j = 0;
    while j + 2 * W <= n {
        let mut acc = [[[T::ZERO; W]; 2]; R];
        let (c0, c1) = (col_bias(j), col_bias(j + W));
        for r in 0..R {
            acc[r] = [add_splat(c0, row_bias[r]), add_splat(c1, row_bias[r])];
        }
        for (kk, brow) in b.chunks_exact(n).enumerate() {
            let b0: [T; W] = brow[j..j + W].try_into().expect("W columns");
            let b1: [T; W] = brow[j + W..j + 2 * W].try_into().expect("W columns");
            acc = fma_step(acc, a_at(kk), [b0, b1]);
        }
        for r in 0..R {
            store(&mut c[r * n + j..r * n + j + 2 * W], acc[r]);
        }
        j += 2 * W;
    }
    while j < n {
        let j0 = j.min(n - W);
        let mut acc = [[[T::ZERO; W]; 1]; R];
        let c0 = col_bias(j0);
        for r in 0..R {
            acc[r] = [add_splat(c0, row_bias[r])];
        }
        for (kk, brow) in b.chunks_exact(n).enumerate() {
            acc = fma_step(acc, a_at(kk), [brow[j0..j0 + W].try_into().expect("W columns")]);
        }
        for r in 0..R {
            store(&mut c[r * n + j0..r * n + j0 + W], acc[r]);
        }
        j = j0 + W;
    }
}

/// `v + s`, lane by lane.
#[inline(always)]
fn add_splat<T: Float>(v: [T; W], s: T) -> [T; W] {
    v.map(|x| x + s)
}

/// `acc[r][v] += a[r]·b[v]`, lane by lane: `R·V` independent register updates.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn fma_step<T: Float, const R: usize, const V: usize>(mut acc: [[[T; W]; V]; R], a: [T; R], b: [[T; W]; V]) -> [[[T; W]; V]; R] {
    for r in 0..R {
        for v in 0..V {
            for t in 0..W {
                acc[r][v][t] = a[r].mul_add_fast(b[v][t], acc[r][v][t]);
            }
        }
    }
    acc
}

/// Writes the registers of one row of a tile. The registers are copied out by index: with
/// references into `acc`, or `acc.into_iter()` (an iterator over an array in memory), LLVM
/// kept the accumulators on the stack and stored them on every step along k (36 GFLOP/s
/// instead of 110).
#[inline(always)]
#[allow(clippy::needless_range_loop)]
fn store<T: Float, const V: usize>(dst: &mut [MaybeUninit<T>], acc: [[T; W]; V]) {
    let dst = &mut dst[..V * W];
    for v in 0..V {
        for t in 0..W {
            dst[v * W + t].write(acc[v][t]);
        }
    }
}
