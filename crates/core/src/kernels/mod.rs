//! Plain tensor math: fast loops, no tape, no autodiff.
//!
//! Each family adds its methods to [`Tensor`](crate::Tensor) (panicking at the caller on bad
//! input, with a message naming the op and the shapes) and exposes `Result`-returning functions
//! for code that wants to handle the error. The tape ops in [`crate::ops`] call these.
//!
//! Loops are written as iterator chains over contiguous slices (`zip`, `chunks_exact`) so the
//! compiler vectorizes them; an indexed loop with bounds checks runs several times slower.

pub mod conv;
pub mod elementwise;
pub mod index;
pub mod matmul;
pub mod norm;
pub mod reduce;
pub mod softmax;
pub mod special;

use smallvec::SmallVec;

use crate::element::Element;
use crate::shape::Shape;
use crate::storage::Storage;

/// Cheap elementwise kernels (add, mul, relu: a few instructions per element, bound by
/// memory) split their work across threads from this many elements up. Measured on the
/// 2-core machine: handing out a job costs 0.14 µs, but below 64K f32 both halves stream
/// from one core's L2 about as fast as one core streams the whole (a 32K-element product
/// took 3.9 µs on one thread and 4.2 on two).
pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// Elementwise kernels that compute per element (exp, sigmoid, tanh, ln: tens of
/// instructions) split from this many elements up: `exp` on 16K f32 took 4.4 µs on one
/// thread and 3.0-3.6 on two, on 32K 10.9 against 7.2 (at 8K two threads do not pay).
pub const COSTLY_PARALLEL_MIN_ELEMENTS: usize = 1 << 14;

/// `f` applied to each element, on the thread pool when the slice is large. Closures should
/// capture scalars by value (`move`): see [`Tensor::par_map`](crate::Tensor::par_map). (An
/// out-of-line loop taking the output as `&mut` made that unnecessary, but inlined into
/// every op it made the tape's 1-element ops 8-10% slower.)
#[inline]
pub(crate) fn par_map<A: Copy + Sync, C: Element>(src: &[A], f: impl Fn(A) -> C + Sync) -> Storage<C> {
    par_zip(src, src, |a, _| f(a))
}

/// `f` applied to each element, on the thread pool from `min_parallel` elements up.
#[inline]
pub(crate) fn par_map_from<A: Copy + Sync, C: Element>(src: &[A], min_parallel: usize, f: impl Fn(A) -> C + Sync) -> Storage<C> {
    par_zip_from(src, src, min_parallel, |a, _| f(a))
}

/// `f` applied pairwise to two equally long slices, on the thread pool when they are large.
#[inline]
pub(crate) fn par_zip<A: Copy + Sync, B: Copy + Sync, C: Element>(a: &[A], b: &[B], f: impl Fn(A, B) -> C + Sync) -> Storage<C> {
    par_zip_from(a, b, PARALLEL_MIN_ELEMENTS, f)
}

/// [`par_zip`] on the thread pool from `min_parallel` elements up.
#[inline]
pub(crate) fn par_zip_from<A: Copy + Sync, B: Copy + Sync, C: Element>(
    a: &[A],
    b: &[B],
    min_parallel: usize,
    f: impl Fn(A, B) -> C + Sync,
) -> Storage<C> {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    if n < min_parallel.max(2) {
        return Storage::from_exact_iter(n, a.iter().zip(b).map(|(&x, &y)| f(x, y)));
    }
    let parts = crate::parallel::parts_for(n, min_parallel / 2);
    // SAFETY: each part writes every one of its slots.
    let out = unsafe {
        crate::parallel::collect_parts(n, parts, 16, |start, d| {
            let (xa, xb) = (&a[start..start + d.len()], &b[start..start + d.len()]);
            d.iter_mut().zip(xa.iter().zip(xb)).for_each(|(d, (&x, &y))| {
                d.write(f(x, y));
            })
        })
    };
    out.into()
}

/// `f` applied to three equally long slices element by element, on the thread pool when they
/// are large.
pub(crate) fn par_zip3<A: Copy + Sync, B: Copy + Sync, C: Copy + Sync, D: Element>(
    a: &[A],
    b: &[B],
    c: &[C],
    f: impl Fn(A, B, C) -> D + Sync,
) -> Storage<D> {
    debug_assert!(a.len() == b.len() && b.len() == c.len());
    let n = a.len();
    if n < PARALLEL_MIN_ELEMENTS {
        return Storage::from_exact_iter(n, a.iter().zip(b).zip(c).map(|((&x, &y), &z)| f(x, y, z)));
    }
    let parts = crate::parallel::parts_for(n, PARALLEL_MIN_ELEMENTS / 4);
    // SAFETY: each part writes every one of its slots.
    let out = unsafe {
        crate::parallel::collect_parts(n, parts, 16, |start, d| {
            let r = start..start + d.len();
            d.iter_mut().zip(&a[r.clone()]).zip(b[r.clone()].iter().zip(&c[r])).for_each(|((o, &x), (&y, &z))| {
                o.write(f(x, y, z));
            });
        })
    };
    out.into()
}

/// Strides of `shape` seen as broadcast to `out` (0 on broadcast dims), aligned to `out`.
pub(crate) fn broadcast_strides(shape: &Shape, out: &Shape) -> SmallVec<[usize; 6]> {
    let off = out.ndim() - shape.ndim();
    let own = shape.strides();
    (0..out.ndim())
        .map(|i| {
            if i < off || shape[i - off] == 1 {
                0
            } else {
                own[i - off]
            }
        })
        .collect()
}

/// Walks the outer dims of `out` (all but the last `inner_dims`) in row-major order, calling
/// `f(offsets)` with each operand's element offset at the start of that inner block.
pub(crate) fn for_each_outer<const K: usize>(out: &[usize], strides: [&[usize]; K], f: impl FnMut([usize; K])) {
    let outer: usize = out.iter().product();
    for_each_outer_from(out, strides, 0, outer, f);
}

/// Like [`for_each_outer`] for the `count` positions from flat position `start` on.
pub(crate) fn for_each_outer_from<const K: usize>(
    out: &[usize],
    strides: [&[usize]; K],
    start: usize,
    count: usize,
    mut f: impl FnMut([usize; K]),
) {
    let n = out.len();
    if count == 0 || out.contains(&0) {
        return;
    }
    let mut idx: SmallVec<[usize; 6]> = SmallVec::from_elem(0, n);
    let mut offs = [0usize; K];
    let mut rest = start;
    for d in (0..n).rev() {
        idx[d] = rest % out[d];
        rest /= out[d];
        for (o, s) in offs.iter_mut().zip(strides.iter()) {
            *o += s[d] * idx[d];
        }
    }
    for _ in 0..count {
        f(offs);
        for d in (0..n).rev() {
            idx[d] += 1;
            for (o, s) in offs.iter_mut().zip(strides.iter()) {
                *o += s[d];
            }
            if idx[d] < out[d] {
                break;
            }
            for (o, s) in offs.iter_mut().zip(strides.iter()) {
                *o -= s[d] * out[d];
            }
            idx[d] = 0;
        }
    }
}

/// Merges neighbouring dims that every operand walks as one (each operand's stride on the
/// outer dim is its stride on the inner one times the inner length: contiguous, or 0 for
/// both), so `[32, 32, 26, 26] + [32, 1, 1]` loops over rows of 676, not of 26.
pub(crate) fn coalesce<const K: usize>(dims: &[usize], strides: [&[usize]; K]) -> (SmallVec<[usize; 6]>, [SmallVec<[usize; 6]>; K]) {
    let mut d: SmallVec<[usize; 6]> = SmallVec::new();
    let mut s: [SmallVec<[usize; 6]>; K] = std::array::from_fn(|_| SmallVec::new());
    for i in 0..dims.len() {
        if let Some(&last) = d.last() {
            if dims[i] == 1 {
                continue;
            }
            let j = d.len() - 1;
            if last == 1 || (0..K).all(|k| s[k][j] == strides[k][i] * dims[i]) {
                d[j] = if last == 1 { dims[i] } else { last * dims[i] };
                for k in 0..K {
                    s[k][j] = strides[k][i];
                }
                continue;
            }
        }
        d.push(dims[i]);
        for k in 0..K {
            s[k].push(strides[k][i]);
        }
    }
    if d.is_empty() {
        d.push(1);
        for sk in s.iter_mut() {
            sk.push(0);
        }
    }
    (d, s)
}

/// Splits a shape at `axis` into (outer, len, inner) element counts.
pub(crate) fn split_at_axis(shape: &Shape, axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}
