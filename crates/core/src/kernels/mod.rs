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
pub mod reduce;
pub mod softmax;

use smallvec::SmallVec;

use crate::element::Element;
use crate::shape::Shape;
use crate::storage::Storage;

/// Elementwise kernels split their work across threads from this many elements up. Measured
/// on the 2-core dev machine with `benches/ops.rs`: handing a chunk to the pool costs a few
/// microseconds, which a 64K-element f32 map (~10 µs on one core) just repays.
pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// `f` applied to each element, on the thread pool when the slice is large.
#[inline]
pub(crate) fn par_map<A: Copy + Sync, C: Element>(src: &[A], f: impl Fn(A) -> C + Sync) -> Storage<C> {
    par_zip(src, src, |a, _| f(a))
}

/// `f` applied pairwise to two equally long slices, on the thread pool when they are large.
#[inline]
pub(crate) fn par_zip<A: Copy + Sync, B: Copy + Sync, C: Element>(a: &[A], b: &[B], f: impl Fn(A, B) -> C + Sync) -> Storage<C> {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    if n < PARALLEL_MIN_ELEMENTS {
        return Storage::from_exact_iter(n, a.iter().zip(b).map(|(&x, &y)| f(x, y)));
    }
    let mut out: Vec<C> = Vec::with_capacity(n);
    let parts = crate::parallel::parts_for(n, PARALLEL_MIN_ELEMENTS / 4);
    let dst = &mut out.spare_capacity_mut()[..n];
    crate::parallel::for_each_part_mut(dst, parts, 16, |start, d| {
        let (xa, xb) = (&a[start..start + d.len()], &b[start..start + d.len()]);
        d.iter_mut().zip(xa.iter().zip(xb)).for_each(|(d, (&x, &y))| {
            d.write(f(x, y));
        })
    });
    // SAFETY: the parts above cover dst = out's first n slots, and every slot was written.
    unsafe { out.set_len(n) };
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
pub(crate) fn for_each_outer<const K: usize>(
    out: &[usize],
    strides: [&[usize]; K],
    mut f: impl FnMut([usize; K]),
) {
    let n = out.len();
    let outer: usize = out.iter().product();
    if outer == 0 {
        return;
    }
    let mut idx: SmallVec<[usize; 6]> = SmallVec::from_elem(0, n);
    let mut offs = [0usize; K];
    for _ in 0..outer {
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

/// Splits a shape at `axis` into (outer, len, inner) element counts.
pub(crate) fn split_at_axis(shape: &Shape, axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}
