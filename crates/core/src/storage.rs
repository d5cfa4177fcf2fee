//! Where a tensor's elements live: up to [`INLINE`] of them in the tensor itself, more in one
//! heap buffer shared by clones and copied on write.
//!
//! Scalars (losses, sums, means, the constants of a chain rule) are most of the values a tape
//! records, and a heap buffer costs two allocations (the `Arc` and its `Vec`) plus two frees.
//! Measured on `benches/tape.rs`, inline storage took a 1-element op recorded and
//! differentiated from 195 to 155 ns, and recorded only from 70 to 37 ns.
//!
//! A large tensor of one repeated value made by broadcasting a scalar (the gradient that
//! `sum` and `mean` send back to their input) is held as that value and a length, and only
//! filled in if something reads its elements: an elementwise op meeting it reads it as the
//! scalar it is ([`Storage::uniform`]). On a conv step ending in `relu().sum()` that saves
//! writing a 2.8 MB buffer of ones and reading it back in ReLU's backward.

use std::sync::{Arc, OnceLock};

use crate::element::Element;

/// Tensors with at most this many elements hold them inline.
pub const INLINE: usize = 4;

#[derive(Clone)]
pub(crate) enum Storage<E: Element> {
    /// `data[..len]` are the elements.
    Inline { len: u8, data: [E; INLINE] },
    Shared(Arc<Vec<E>>),
    /// `len` copies of `value`, filled into a buffer on the first read of the elements.
    Uniform(Arc<Uniform<E>>),
}

pub(crate) struct Uniform<E> {
    value: E,
    len: usize,
    filled: OnceLock<Vec<E>>,
}

impl<E: Element> Uniform<E> {
    /// The elements, filled in on the first call (kept out of line: the other storages'
    /// `as_slice` is on the tape's hot path).
    #[cold]
    #[inline(never)]
    fn elements(&self) -> &[E] {
        self.filled.get_or_init(|| filled(self.len, self.value))
    }
}

/// `n` copies of `value`, written by all threads for a large `n`.
pub(crate) fn filled<E: Element>(n: usize, value: E) -> Vec<E> {
    let parts = crate::parallel::parts_for(n, crate::kernels::PARALLEL_MIN_ELEMENTS / 2);
    // SAFETY: each part writes every one of its slots.
    unsafe {
        crate::parallel::collect_parts(n, parts, 16, |_, d| {
            d.iter_mut().for_each(|x| {
                x.write(value);
            })
        })
    }
}

impl<E: Element> Storage<E> {
    #[inline]
    pub(crate) fn as_slice(&self) -> &[E] {
        match self {
            Storage::Inline { len, data } => &data[..*len as usize],
            Storage::Shared(v) => v,
            Storage::Uniform(u) => u.elements(),
        }
    }

    /// The number of elements (without filling in a uniform storage).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Storage::Inline { len, .. } => *len as usize,
            Storage::Shared(v) => v.len(),
            Storage::Uniform(u) => u.len,
        }
    }

    /// `len` copies of `value`, not written out until read.
    pub(crate) fn lazy_uniform(len: usize, value: E) -> Self {
        Storage::Uniform(Arc::new(Uniform { value, len, filled: OnceLock::new() }))
    }

    /// The one value of a storage made by [`Storage::lazy_uniform`] (whether or not it has
    /// been filled in since); `None` for any other storage.
    #[inline]
    pub(crate) fn uniform(&self) -> Option<E> {
        match self {
            Storage::Uniform(u) => Some(u.value),
            _ => None,
        }
    }

    /// Turns a uniform storage into an ordinary buffer (kept unshared if it was).
    fn materialize(&mut self) {
        if let Storage::Uniform(u) = self {
            let v = match Arc::try_unwrap(u.clone()) {
                Ok(mut own) => own.filled.take().unwrap_or_else(|| filled(own.len, own.value)),
                Err(shared) => shared.filled.get().cloned().unwrap_or_else(|| filled(shared.len, shared.value)),
            };
            *self = Storage::Shared(Arc::new(v));
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
        self.materialize();
        match self {
            Storage::Inline { len, data } => &mut data[..*len as usize],
            Storage::Shared(v) => Arc::make_mut(v).as_mut_slice(),
            Storage::Uniform(_) => unreachable!("materialized above"),
        }
    }

    /// Mutable elements if no other tensor shares them.
    #[inline]
    pub(crate) fn unique_mut(&mut self) -> Option<&mut [E]> {
        if let Storage::Uniform(u) = self {
            if Arc::strong_count(u) > 1 {
                return None;
            }
            self.materialize();
        }
        match self {
            Storage::Inline { len, data } => Some(&mut data[..*len as usize]),
            Storage::Shared(v) => Arc::get_mut(v).map(|v| v.as_mut_slice()),
            Storage::Uniform(_) => unreachable!("materialized above"),
        }
    }

    /// The elements as a `Vec`, without a copy when a heap buffer is not shared.
    pub(crate) fn into_vec(self) -> Vec<E> {
        match self {
            Storage::Inline { .. } => self.as_slice().to_vec(),
            Storage::Shared(v) => Arc::try_unwrap(v).unwrap_or_else(|shared| shared.as_ref().clone()),
            mut uniform @ Storage::Uniform(_) => {
                uniform.materialize();
                uniform.into_vec()
            }
        }
    }

    /// Whether both are one shared heap buffer (inline elements are never shared).
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Storage::Shared(a), Storage::Shared(b)) => Arc::ptr_eq(a, b),
            (Storage::Uniform(a), Storage::Uniform(b)) => Arc::ptr_eq(a, b),
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
