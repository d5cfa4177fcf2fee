//! Proptest strategies for random tensors, so users can property-test their own models the way
//! wengert tests its ops (enable the `proptest` feature).
//!
//! ```
//! use proptest::prelude::*;
//! use wengert_core::{gradcheck::gradcheck, testing};
//!
//! proptest!(ProptestConfig::with_cases(8), |(x in testing::tensor(3, 4))| {
//!     gradcheck(|v| v[0].tanh().sum(), &[x]).unwrap();
//! });
//! ```

use proptest::collection::vec;
use proptest::prelude::*;

use crate::tensor::Tensor;

/// A shape of 1 to `max_ndim` dims, each of length 1 to `max_dim`.
///
/// ```
/// use proptest::prelude::*;
/// use wengert_core::testing;
/// proptest!(ProptestConfig::with_cases(16), |(s in testing::shape(3, 4))| {
///     prop_assert!((1..=3).contains(&s.len()));
///     prop_assert!(s.iter().all(|d| (1..=4).contains(d)));
/// });
/// ```
pub fn shape(max_ndim: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    vec(1..=max_dim, 1..=max_ndim.max(1))
}

/// An f64 tensor of exactly `shape` with elements uniform in `[lo, hi)`.
///
/// ```
/// use proptest::prelude::*;
/// use wengert_core::testing;
/// proptest!(ProptestConfig::with_cases(16), |(x in testing::tensor_of(vec![2, 3], 0.5, 1.0))| {
///     prop_assert_eq!(x.dims(), &[2, 3]);
///     prop_assert!(x.to_vec().iter().all(|v| (0.5..1.0).contains(v)));
/// });
/// ```
pub fn tensor_of(shape: Vec<usize>, lo: f64, hi: f64) -> impl Strategy<Value = Tensor<f64>> {
    let n = shape.iter().product::<usize>();
    vec(lo..hi, n).prop_map(move |v| Tensor::new(v, shape.clone()))
}

/// An f64 tensor of random shape (see [`shape`]) with elements in `[-2, 2)`.
///
/// ```
/// use proptest::prelude::*;
/// use wengert_core::testing;
/// proptest!(ProptestConfig::with_cases(16), |(x in testing::tensor(2, 5))| {
///     prop_assert!(x.ndim() <= 2 && x.dims().iter().all(|&d| d <= 5));
///     prop_assert!(x.to_vec().iter().all(|v| (-2.0..2.0).contains(v)));
/// });
/// ```
pub fn tensor(max_ndim: usize, max_dim: usize) -> impl Strategy<Value = Tensor<f64>> {
    shape(max_ndim, max_dim).prop_flat_map(|s| tensor_of(s, -2.0, 2.0))
}

/// An f64 tensor of random shape with elements in `[lo, hi)` (e.g. positive for `ln`).
///
/// ```
/// use proptest::prelude::*;
/// use wengert_core::testing;
/// use wengert_core::gradcheck::gradcheck;
/// proptest!(ProptestConfig::with_cases(8), |(x in testing::tensor_in(2, 3, 0.1, 3.0))| {
///     prop_assert!(x.to_vec().iter().all(|&v| v >= 0.1)); // ln is defined everywhere
///     gradcheck(|v| v[0].ln().sum(), &[x]).unwrap();
/// });
/// ```
pub fn tensor_in(max_ndim: usize, max_dim: usize, lo: f64, hi: f64) -> impl Strategy<Value = Tensor<f64>> {
    shape(max_ndim, max_dim).prop_flat_map(move |s| tensor_of(s, lo, hi))
}

/// Two shapes that broadcast together: a full shape, then each operand drops some leading
/// dims and sets some dims to 1, so broadcasting happens in both directions.
///
/// ```
/// use proptest::prelude::*;
/// use wengert_core::testing;
/// use wengert_core::Shape;
/// proptest!(ProptestConfig::with_cases(16), |((a, b) in testing::broadcast_shapes(3, 4))| {
///     let out = Shape::broadcast("add", &Shape::new(&a), &Shape::new(&b)).unwrap();
///     prop_assert!(out.ndim() == a.len().max(b.len()));
/// });
/// ```
pub fn broadcast_shapes(max_ndim: usize, max_dim: usize) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    shape(max_ndim, max_dim).prop_flat_map(|full| {
        let n = full.len();
        let side = move |full: Vec<usize>| {
            (0..=n, vec(any::<bool>(), n)).prop_map(move |(drop, ones)| {
                full.iter()
                    .zip(&ones)
                    .skip(drop.min(n.saturating_sub(1)))
                    .map(|(&d, &one)| if one { 1 } else { d })
                    .collect::<Vec<usize>>()
            })
        };
        (side(full.clone()), side(full))
    })
}

/// Two f64 tensors whose shapes broadcast together (see [`broadcast_shapes`]).
///
/// ```
/// use proptest::prelude::*;
/// use wengert_core::testing;
/// use wengert_core::{gradcheck::gradcheck, Tape};
/// proptest!(ProptestConfig::with_cases(8), |((a, b) in testing::broadcast_pair(3, 3))| {
///     let tape = Tape::new();
///     let (x, y) = (tape.constant(a.clone()), tape.constant(b.clone()));
///     prop_assert_eq!((x * y).value(), (y * x).value()); // broadcasting product commutes
///     gradcheck(|v| (v[0] * v[1]).sum(), &[a, b]).unwrap();
/// });
/// ```
pub fn broadcast_pair(max_ndim: usize, max_dim: usize) -> impl Strategy<Value = (Tensor<f64>, Tensor<f64>)> {
    broadcast_shapes(max_ndim, max_dim).prop_flat_map(|(a, b)| (tensor_of(a, -2.0, 2.0), tensor_of(b, -2.0, 2.0)))
}
