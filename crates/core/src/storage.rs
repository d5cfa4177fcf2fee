//! Where a tensor's elements live: up to [`INLINE`] of them in the tensor itself, more in one
//! heap buffer shared by clones and copied on write.
//!
//! Scalars (losses, sums, means, the constants of a chain rule) are most of the values a tape
//! records, and a heap buffer costs two allocations (the `Arc` and its `Vec`) plus two frees.
//! Measured on `benches/tape.rs`, inline storage took a 1-element op recorded and
//! differentiated from 195 to 155 ns, and recorded only from 70 to 37 ns.

use std::sync::Arc;

use crate::element::Element;

/// Tensors with at most this many elements hold them inline.
pub const INLINE: usize = 4;

#[derive(Clone)]
pub(crate) enum Storage<E: Element> {
    /// `data[..len]` are the elements.
    Inline { len: u8, data: [E; INLINE] },
    Shared(Arc<Vec<E>>),
}

impl<E: Element> Storage<E> {
    #[inline]
    pub(crate) fn as_slice(&self) -> &[E] {
        match self {
            Storage::Inline { len, data } => &data[..*len as usize],
            Storage::Shared(v) => v,
        }
    }

    /// Inline storage holding a copy of `s` (at most [`INLINE`] elements).
    #[inline]
    pub(crate) fn inline(s: &[E]) -> Self {
        let mut data = [E::default(); INLINE];
        data[..s.len()].copy_from_slice(s);
        Storage::Inline { len: s.len() as u8, data }
    }

    /// The `n` values of `iter` (which yields exactly `n`), inline when they fit.
    #[inline]
    pub(crate) fn from_exact_iter(n: usize, iter: impl Iterator<Item = E>) -> Self {
        if n <= INLINE {
            let mut data = [E::default(); INLINE];
            let mut iter = iter;
            if n == 1 {
                // A scalar, the commonest tiny tensor, gets a plain store: the zip below is
                // vectorized with masked stores, which the CPU cannot forward to the next
                // read of the value (a stall of ~20 cycles per op on the tape bench).
                data[0] = iter.next().unwrap_or_default();
            } else {
                data.iter_mut().zip(iter).for_each(|(d, x)| *d = x);
            }
            Storage::Inline { len: n as u8, data }
        } else {
            Storage::Shared(Arc::new(iter.collect()))
        }
    }

    /// Mutable elements, copying a shared buffer first.
    #[inline]
    pub(crate) fn make_mut(&mut self) -> &mut [E] {
        match self {
            Storage::Inline { len, data } => &mut data[..*len as usize],
            Storage::Shared(v) => Arc::make_mut(v).as_mut_slice(),
        }
    }

    /// Mutable elements if no other tensor shares them.
    #[inline]
    pub(crate) fn unique_mut(&mut self) -> Option<&mut [E]> {
        match self {
            Storage::Inline { len, data } => Some(&mut data[..*len as usize]),
            Storage::Shared(v) => Arc::get_mut(v).map(|v| v.as_mut_slice()),
        }
    }

    /// The elements as a `Vec`, without a copy when a heap buffer is not shared.
    pub(crate) fn into_vec(self) -> Vec<E> {
        match self {
            Storage::Inline { .. } => self.as_slice().to_vec(),
            Storage::Shared(v) => Arc::try_unwrap(v).unwrap_or_else(|shared| shared.as_ref().clone()),
        }
    }

    /// Whether both are one shared heap buffer (inline elements are never shared).
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Storage::Shared(a), Storage::Shared(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl<E: Element> From<Vec<E>> for Storage<E> {
    #[inline]
    fn from(v: Vec<E>) -> Self {
        if v.len() <= INLINE {
            Storage::inline(&v)
        } else {
            Storage::Shared(Arc::new(v))
        }
    }
}
