//! Shapes, axes and NumPy broadcasting.

use std::fmt;
use std::ops::Deref;

use smallvec::SmallVec;

use crate::error::{Error, Result};

/// Dimensions of a tensor, outermost first (row-major). Up to 6 dims live inline.
#[derive(Eq, Default)]
pub struct Shape(pub(crate) SmallVec<[usize; 6]>);

impl std::hash::Hash for Shape {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_slice().hash(state);
    }
}

impl PartialEq for Shape {
    /// Dim by dim, inline: slice equality calls libc `memcmp`, which was 14% of the tape's
    /// time for shapes of a few words.
    #[inline]
    fn eq(&self, other: &Shape) -> bool {
        let (a, b) = (self.0.as_slice(), other.0.as_slice());
        if a.len() != b.len() {
            return false;
        }
        for i in 0..a.len() {
            if a[i] != b[i] {
                return false;
            }
        }
        true
    }
}

impl Clone for Shape {
    /// A bulk copy of the dims (SmallVec's generic `clone` pushes them one by one, which
    /// showed up at 12% of the tape's instruction count).
    #[inline]
    fn clone(&self) -> Self {
        Shape(SmallVec::from_slice(&self.0))
    }
}

impl Shape {
    /// A shape from its dimensions.
    ///
    /// ```
    /// let s = wengert_core::Shape::new(&[2, 3]);
    /// assert_eq!(s.numel(), 6);
    /// ```
    pub fn new(dims: &[usize]) -> Self {
        Shape(SmallVec::from_slice(dims))
    }

    /// The shape of a scalar: no dimensions, one element.
    ///
    /// ```
    /// use wengert_core::Shape;
    /// assert_eq!(Shape::scalar().ndim(), 0);
    /// assert_eq!(Shape::scalar().numel(), 1);
    /// ```
    pub fn scalar() -> Self {
        Shape(SmallVec::new())
    }

    /// Number of elements: the product of the dimensions (1 for a scalar).
    ///
    /// # Panics
    /// If the product overflows `usize` (no such tensor can exist); [`Shape::checked_numel`]
    /// is the fallible form, and [`Tensor::from_vec`](crate::Tensor::from_vec) uses it.
    ///
    /// ```
    /// use wengert_core::Shape;
    /// assert_eq!(Shape::new(&[2, 3, 4]).numel(), 24);
    /// assert_eq!(Shape::new(&[2, 0]).numel(), 0);
    /// ```
    #[inline]
    #[track_caller]
    pub fn numel(&self) -> usize {
        match self.checked_numel() {
            Some(n) => n,
            None => panic!("wengert: shape {self} has more elements than usize holds"),
        }
    }

    /// Number of elements, or `None` if the product of the dimensions overflows `usize`.
    ///
    /// ```
    /// use wengert_core::Shape;
    /// assert_eq!(Shape::new(&[2, 3]).checked_numel(), Some(6));
    /// assert_eq!(Shape::new(&[1 << 32, 1 << 32]).checked_numel(), None);
    /// assert_eq!(Shape::new(&[0, usize::MAX, 2]).checked_numel(), None); // 0 does not hide it
    /// ```
    #[inline]
    pub fn checked_numel(&self) -> Option<usize> {
        // a zero dim makes the product 0, but a shape whose other dims overflow is still no
        // shape (its strides would wrap), so those are multiplied regardless
        let (mut nonzero, mut empty) = (1usize, false);
        for &d in self.0.iter() {
            if d == 0 {
                empty = true;
            } else {
                nonzero = nonzero.checked_mul(d)?;
            }
        }
        Some(if empty { 0 } else { nonzero })
    }

    /// Number of dimensions.
    ///
    /// ```
    /// use wengert_core::Shape;
    /// assert_eq!(Shape::new(&[2, 3, 4]).ndim(), 3);
    /// assert_eq!(Shape::scalar().ndim(), 0);
    /// ```
    pub fn ndim(&self) -> usize {
        self.0.len()
    }

    /// The dimensions as a slice.
    ///
    /// ```
    /// use wengert_core::Shape;
    /// assert_eq!(Shape::new(&[2, 3]).dims(), &[2, 3]);
    /// assert!(Shape::scalar().dims().is_empty());
    /// ```
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// The multi-index of the element at row-major position `flat`.
    ///
    /// ```
    /// assert_eq!(wengert_core::Shape::new(&[2, 3]).unravel(4), vec![1, 1]);
    /// ```
    pub fn unravel(&self, mut flat: usize) -> Vec<usize> {
        let mut ix = vec![0; self.ndim()];
        for (i, &d) in ix.iter_mut().zip(self.0.iter()).rev() {
            *i = flat % d;
            flat /= d;
        }
        ix
    }

    /// Row-major (C-contiguous) strides in elements.
    ///
    /// ```
    /// use wengert_core::Shape;
    /// assert_eq!(Shape::new(&[2, 3, 4]).strides().as_slice(), &[12, 4, 1]);
    /// assert!(Shape::scalar().strides().is_empty());
    /// ```
    pub fn strides(&self) -> SmallVec<[usize; 6]> {
        let mut strides: SmallVec<[usize; 6]> = SmallVec::from_elem(0, self.0.len());
        let mut acc = 1;
        for (s, d) in strides.iter_mut().zip(self.0.iter()).rev() {
            *s = acc;
            acc *= *d;
        }
        strides
    }

    /// Resolves a possibly negative axis (`-1` is the last) against this shape.
    ///
    /// ```
    /// use wengert_core::Shape;
    /// let s = Shape::new(&[2, 3, 4]);
    /// assert_eq!(s.axis("op", -1).unwrap(), 2);
    /// assert!(s.axis("op", 3).is_err());
    /// ```
    pub fn axis(&self, op: &'static str, axis: isize) -> Result<usize> {
        let n = self.ndim() as isize;
        let a = if axis < 0 { axis + n } else { axis };
        if a < 0 || a >= n {
            return Err(Error::BadAxis {
                op,
                axis,
                shape: self.clone(),
            });
        }
        Ok(a as usize)
    }

    /// Resolves a list of axes; rejects repeats. An empty list means "all axes".
    ///
    /// ```
    /// use wengert_core::Shape;
    /// let s = Shape::new(&[2, 3, 4]);
    /// assert_eq!(s.axes("op", &[-1, 0]).unwrap().as_slice(), &[0, 2]);
    /// assert_eq!(s.axes("op", &[]).unwrap().as_slice(), &[0, 1, 2]);
    /// assert!(s.axes("op", &[1, -2]).is_err());
    /// ```
    pub fn axes(&self, op: &'static str, axes: &[isize]) -> Result<SmallVec<[usize; 6]>> {
        if axes.is_empty() {
            return Ok((0..self.ndim()).collect());
        }
        let mut out: SmallVec<[usize; 6]> = SmallVec::new();
        for &a in axes {
            let a = self.axis(op, a)?;
            if out.contains(&a) {
                return Err(Error::invalid(
                    op,
                    format!("axis {a} is listed twice in {axes:?} for shape {self}"),
                ));
            }
            out.push(a);
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The shape after reducing `axes` (sorted, unique): kept as 1 or removed.
    ///
    /// ```
    /// use wengert_core::Shape;
    /// let s = Shape::new(&[2, 3, 4]);
    /// assert_eq!(s.reduced(&[1], true).dims(), &[2, 1, 4]);
    /// assert_eq!(s.reduced(&[0, 2], false).dims(), &[3]);
    /// ```
    pub fn reduced(&self, axes: &[usize], keepdim: bool) -> Shape {
        let mut out = SmallVec::new();
        for (i, &d) in self.0.iter().enumerate() {
            if axes.contains(&i) {
                if keepdim {
                    out.push(1);
                }
            } else {
                out.push(d);
            }
        }
        Shape(out)
    }

    /// The NumPy broadcast of two shapes: align at the right, each pair of dims must be equal
    /// or contain a 1.
    ///
    /// ```
    /// use wengert_core::Shape;
    /// let s = Shape::broadcast("add", &Shape::new(&[3, 1]), &Shape::new(&[4])).unwrap();
    /// assert_eq!(s, Shape::new(&[3, 4]));
    /// ```
    pub fn broadcast(op: &'static str, a: &Shape, b: &Shape) -> Result<Shape> {
        let n = a.ndim().max(b.ndim());
        let mut out: SmallVec<[usize; 6]> = SmallVec::from_elem(0, n);
        for i in 0..n {
            let da = if i < n - a.ndim() { 1 } else { a.0[i - (n - a.ndim())] };
            let db = if i < n - b.ndim() { 1 } else { b.0[i - (n - b.ndim())] };
            out[i] = if da == db || db == 1 {
                da
            } else if da == 1 {
                db
            } else {
                return Err(Error::shapes(op, &[a, b], "cannot broadcast"));
            };
        }
        Ok(Shape(out))
    }

    /// Whether this shape broadcasts to `target` (NumPy rules, one direction).
    ///
    /// ```
    /// use wengert_core::Shape;
    /// assert!(Shape::new(&[3]).broadcasts_to(&Shape::new(&[2, 3])));
    /// assert!(Shape::new(&[2, 1]).broadcasts_to(&Shape::new(&[2, 3])));
    /// assert!(!Shape::new(&[2]).broadcasts_to(&Shape::new(&[2, 3])));
    /// ```
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        if self.ndim() > target.ndim() {
            return false;
        }
        let off = target.ndim() - self.ndim();
        self.0
            .iter()
            .zip(&target.0[off..])
            .all(|(&d, &t)| d == t || d == 1)
    }
}

impl Deref for Shape {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Self {
        Shape::new(d)
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Self {
        Shape::new(&d)
    }
}
impl<const N: usize> From<&[usize; N]> for Shape {
    fn from(d: &[usize; N]) -> Self {
        Shape::new(d)
    }
}
impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Self {
        Shape::new(&d)
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}
impl From<&Vec<usize>> for Shape {
    fn from(d: &Vec<usize>) -> Self {
        Shape::new(d)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        let b = |x: &[usize], y: &[usize]| Shape::broadcast("t", &Shape::new(x), &Shape::new(y));
        assert_eq!(b(&[2, 3], &[3]).unwrap(), Shape::new(&[2, 3]));
        assert_eq!(b(&[2, 1, 4], &[3, 1]).unwrap(), Shape::new(&[2, 3, 4]));
        assert_eq!(b(&[], &[5]).unwrap(), Shape::new(&[5]));
        let e = b(&[2, 3], &[4]).unwrap_err().to_string();
        assert_eq!(e, "t: cannot broadcast: shapes [2, 3] and [4]");
    }

    #[test]
    fn axes_resolve_negative_and_reject_bad() {
        let s = Shape::new(&[2, 3, 4]);
        assert_eq!(s.axis("op", -1).unwrap(), 2);
        assert_eq!(
            s.axis("sum", 3).unwrap_err().to_string(),
            "sum: axis 3 is out of range for shape [2, 3, 4] (3 dims)"
        );
        assert!(s.axes("sum", &[0, -3]).is_err());
        assert_eq!(s.strides().as_slice(), &[12, 4, 1]);
    }
}
