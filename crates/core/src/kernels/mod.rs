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

use crate::shape::Shape;

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
