//! Elementwise kernels: unary maps, binary ops with NumPy broadcasting, comparisons.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::element::{Element, Float};
use crate::error::{OrPanic, Result};
use crate::kernels::{broadcast_strides, coalesce, for_each_outer, for_each_outer_from, par_map, par_zip, PARALLEL_MIN_ELEMENTS};
use crate::shape::Shape;
use crate::storage::Storage;
use crate::tensor::Tensor;

/// `f(a, b)` elementwise with NumPy broadcasting; `op` names the op in errors.
///
/// ```
/// use wengert_core::{kernels::elementwise::zip_broadcast, Tensor};
/// let a = Tensor::new(vec![1.0f32, 2.0], [2, 1]);
/// let b = Tensor::new(vec![10.0f32, 20.0, 30.0], [3]);
/// let c = zip_broadcast("add", &a, &b, |x, y| x + y).unwrap();
/// assert_eq!(c.dims(), &[2, 3]);
/// assert_eq!(c.to_vec(), vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
/// ```
pub fn zip_broadcast<A: Element, B: Element, C: Element>(
    op: &'static str,
    a: &Tensor<A>,
    b: &Tensor<B>,
    f: impl Fn(A, B) -> C + Sync,
) -> Result<Tensor<C>> {
    let (xa, xb) = (a.as_slice(), b.as_slice());
    if a.shape() == b.shape() {
        return Ok(Tensor::from_parts(par_zip(xa, xb, f), a.shape().clone()));
    }
    let out = Shape::broadcast(op, a.shape(), b.shape())?;
    if xb.len() == 1 && out == *a.shape() {
        let y = xb[0];
        return Ok(Tensor::from_parts(par_map(xa, move |x| f(x, y)), out));
    }
    if xa.len() == 1 && out == *b.shape() {
        let x = xa[0];
        return Ok(Tensor::from_parts(par_map(xb, move |y| f(x, y)), out));
    }
    let (sa, sb) = (broadcast_strides(a.shape(), &out), broadcast_strides(b.shape(), &out));
    let (dims, [sa, sb]) = coalesce(&out, [&sa, &sb]);
    let n = dims.len();
    let inner = dims[n - 1];
    let (ia, ib) = (sa[n - 1], sb[n - 1]);
    let total = out.numel();
    if total == 0 {
        return Ok(Tensor::from_parts(Vec::new(), out));
    }
    let parts = if total >= PARALLEL_MIN_ELEMENTS { crate::parallel::parts_for(total, PARALLEL_MIN_ELEMENTS / 4) } else { 1 };
    // SAFETY: each part is whole rows, and every row of it is written below.
    let v = unsafe { crate::parallel::collect_parts(total, parts, inner, |start, dst: &mut [std::mem::MaybeUninit<C>]| {
        let count = dst.len() / inner;
        let mut rows = dst.chunks_exact_mut(inner);
        for_each_outer_from(&dims[..n - 1], [&sa[..n - 1], &sb[..n - 1]], start / inner, count, |[oa, ob]| {
            let row = rows.next().expect("one row per outer position");
            match (ia != 0, ib != 0) {
                (true, true) => row.iter_mut().zip(&xa[oa..oa + inner]).zip(&xb[ob..ob + inner]).for_each(|((o, &x), &y)| {
                    o.write(f(x, y));
                }),
                (false, true) => {
                    let x = xa[oa];
                    row.iter_mut().zip(&xb[ob..ob + inner]).for_each(|(o, &y)| {
                        o.write(f(x, y));
                    })
                }
                (true, false) => {
                    let y = xb[ob];
                    row.iter_mut().zip(&xa[oa..oa + inner]).for_each(|(o, &x)| {
                        o.write(f(x, y));
                    })
                }
                (false, false) => {
                    let z = f(xa[oa], xb[ob]);
                    row.iter_mut().for_each(|o| {
                        o.write(z);
                    })
                }
            }
        });
    }) };
    Ok(Tensor::from_parts(v, out))
}

/// `f(a, b)` elementwise like [`zip_broadcast`], written over the buffer of an operand given
/// by value when nothing else shares it and it has the result's shape, so an op chain like
/// `&a * &b + &c` allocates once and writes the second op into memory the first just wrote
/// (measured: `&a * &b + &c` on 1M f32 takes 133 µs this way, 190 µs with a second
/// buffer). `a_owned` says which operand `owned` is.
pub(crate) fn zip_reusing<T: Float>(
    op: &'static str,
    mut owned: Tensor<T>,
    other: &Tensor<T>,
    a_owned: bool,
    f: impl Fn(T, T) -> T + Sync,
) -> Result<Tensor<T>> {
    let same = owned.shape() == other.shape() || (other.numel() == 1 && other.ndim() <= owned.ndim());
    let big = owned.numel() >= crate::kernels::PARALLEL_MIN_ELEMENTS;
    if !(same && big && owned.unique_data_mut().is_some()) {
        return if a_owned { zip_broadcast(op, &owned, other, f) } else { zip_broadcast(op, other, &owned, f) };
    }
    let xo = other.as_slice();
    let dst = owned.unique_data_mut().expect("checked unique above");
    let g = |x: T, y: T| if a_owned { f(x, y) } else { f(y, x) };
    let parts = crate::parallel::parts_for(dst.len(), crate::kernels::PARALLEL_MIN_ELEMENTS / 4);
    crate::parallel::for_each_part_mut(dst, parts, 16, |start, d| {
        if xo.len() == 1 {
            let y = xo[0];
            d.iter_mut().for_each(|x| *x = g(*x, y));
        } else {
            let len = d.len();
            d.iter_mut().zip(&xo[start..start + len]).for_each(|(x, &y)| *x = g(*x, y));
        }
    });
    Ok(owned)
}

/// Copies `x` broadcast to `shape` (NumPy rules, one direction).
///
/// ```
/// use wengert_core::{kernels::elementwise::broadcast_to, Shape, Tensor};
/// let x = Tensor::new(vec![1.0f64, 2.0], [2, 1]);
/// assert_eq!(broadcast_to(&x, &Shape::new(&[2, 3])).unwrap().to_vec(), vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
/// assert!(broadcast_to(&x, &Shape::new(&[3, 3])).is_err());
/// ```
pub fn broadcast_to<E: Element>(x: &Tensor<E>, shape: &Shape) -> Result<Tensor<E>> {
    if x.shape() == shape {
        return Ok(x.clone());
    }
    if !x.shape().broadcasts_to(shape) {
        return Err(crate::Error::shapes(
            "broadcast_to",
            &[x.shape(), shape],
            "cannot broadcast",
        ));
    }
    let src = x.as_slice();
    if src.len() == 1 {
        return Ok(Tensor::full(shape.clone(), src[0]));
    }
    let n = shape.ndim();
    let s = broadcast_strides(x.shape(), shape);
    let inner = shape[n - 1];
    let mut v = Vec::with_capacity(shape.numel());
    for_each_outer(&shape[..n - 1], [&s[..n - 1]], |[o]| {
        if s[n - 1] != 0 {
            v.extend_from_slice(&src[o..o + inner]);
        } else {
            v.extend(std::iter::repeat_n(src[o], inner));
        }
    });
    Ok(Tensor::from_parts(v, shape.clone()))
}

/// `mask ? a : b` elementwise, all three broadcast together.
///
/// ```
/// use wengert_core::{kernels::elementwise::where_, Tensor};
/// let mask = Tensor::from_slice(&[true, false, true]);
/// let (a, b) = (Tensor::from_slice(&[1.0f64, 2.0, 3.0]), Tensor::scalar(0.0f64));
/// assert_eq!(where_(&mask, &a, &b).unwrap().to_vec(), vec![1.0, 0.0, 3.0]);
/// assert!(where_(&mask, &Tensor::from_slice(&[1.0f64, 2.0]), &b).is_err());
/// ```
pub fn where_<E: Element>(mask: &Tensor<bool>, a: &Tensor<E>, b: &Tensor<E>) -> Result<Tensor<E>> {
    let s = Shape::broadcast("where", mask.shape(), a.shape())?;
    let s = Shape::broadcast("where", &s, b.shape())
        .map_err(|_| crate::Error::shapes("where", &[mask.shape(), a.shape(), b.shape()], "cannot broadcast"))?;
    // only the operands not already of the result's shape are broadcast (copied), and the
    // choice is made on bits (`Element::select`): 1M f32 took 716 µs copying all three and
    // choosing by `if`, 86 so
    fn fit<'a, X: Element>(t: &'a Tensor<X>, s: &Shape) -> Result<std::borrow::Cow<'a, Tensor<X>>> {
        Ok(if t.shape() == s { std::borrow::Cow::Borrowed(t) } else { std::borrow::Cow::Owned(broadcast_to(t, s)?) })
    }
    let (m, a, b) = (fit(mask, &s)?, fit(a, &s)?, fit(b, &s)?);
    let v = crate::kernels::par_zip3(m.as_slice(), a.as_slice(), b.as_slice(), |m, x, y| E::select(m, x, y));
    Ok(Tensor::from_parts(v, s))
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => |$x:ident| $body:expr;)*) => {
        impl<T: Float> Tensor<T> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Tensor<T> {
                    map(self, crate::kernels::PARALLEL_MIN_ELEMENTS, |$x: T| $body)
                }
            )*
        }
    };
}

/// `f` on every element, on both cores from `min_parallel` elements (a declared op's value).
#[inline]
pub(crate) fn map<T: Float>(t: &Tensor<T>, min_parallel: usize, f: impl Fn(T) -> T + Sync) -> Tensor<T> {
    Tensor::from_parts(crate::kernels::par_map_from(t.as_slice(), min_parallel, f), t.shape().clone())
}

// The Tensor-only maps; the elementwise ops with a gradient are declared once in ops/unary.rs
// (their Tensor method, Var method and rule together).
unary_methods! {
    /// -x
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// assert_eq!(Tensor::from_slice(&[1.0f64, -2.0]).neg().to_vec(), vec![-1.0, 2.0]);
    /// ```
    neg => |x| -x;
    /// -1, 0 or 1 by the sign of x (0 at 0)
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// assert_eq!(Tensor::from_slice(&[-3.0f64, 0.0, 2.0]).sign().to_vec(), vec![-1.0, 0.0, 1.0]);
    /// ```
    sign => |x| if x > T::ZERO { T::ONE } else if x < T::ZERO { -T::ONE } else { T::ZERO };
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident, $op:literal => |$x:ident, $y:ident| $body:expr;)*) => {
        impl<T: Float> Tensor<T> {
            $(
                $(#[$doc])*
                #[track_caller]
                pub fn $name(&self, other: &Tensor<T>) -> Tensor<T> {
                    zip_broadcast($op, self, other, |$x: T, $y: T| $body).or_panic()
                }
            )*
        }
    };
}

binary_methods! {
    /// a + b, broadcast
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::new(vec![1.0f64, 2.0, 3.0, 4.0], [2, 2]);
    /// assert_eq!(a.add(&Tensor::from_slice(&[10.0, 20.0])).to_vec(), vec![11.0, 22.0, 13.0, 24.0]);
    /// ```
    add, "add" => |x, y| x + y;
    /// a - b, broadcast
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::from_slice(&[5.0f64, 7.0]);
    /// assert_eq!(a.sub(&Tensor::scalar(1.0)).to_vec(), vec![4.0, 6.0]);
    /// ```
    sub, "sub" => |x, y| x - y;
    /// a * b, broadcast
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::new(vec![1.0f64, 2.0], [2, 1]);
    /// assert_eq!(a.mul(&Tensor::from_slice(&[3.0, 4.0])).to_vec(), vec![3.0, 4.0, 6.0, 8.0]);
    /// ```
    mul, "mul" => |x, y| x * y;
    /// a / b, broadcast
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f64, 3.0]);
    /// assert_eq!(a.div(&Tensor::from_slice(&[2.0, 4.0])).to_vec(), vec![0.5, 0.75]);
    /// ```
    div, "div" => |x, y| x / y;
    /// a^b, broadcast
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::from_slice(&[2.0f64, 3.0]);
    /// assert_eq!(a.pow(&Tensor::from_slice(&[3.0, 2.0])).to_vec(), vec![8.0, 9.0]);
    /// ```
    pow, "pow" => |x, y| x.powf(y);
    /// max(a, b), broadcast; NaN where either is NaN (as `torch.maximum`)
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f64, 5.0, f64::NAN]);
    /// let m = a.maximum(&Tensor::from_slice(&[3.0, 2.0, 0.0])).to_vec();
    /// assert_eq!(&m[..2], &[3.0, 5.0]);
    /// assert!(m[2].is_nan());
    /// ```
    maximum, "maximum" => |x, y| super::reduce::max_nan(x, y);
    /// min(a, b), broadcast; NaN where either is NaN
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f64, 5.0, f64::NAN]);
    /// let m = a.minimum(&Tensor::from_slice(&[3.0, 2.0, 0.0])).to_vec();
    /// assert_eq!(&m[..2], &[1.0, 2.0]);
    /// assert!(m[2].is_nan());
    /// ```
    minimum, "minimum" => |x, y| super::reduce::min_nan(x, y);
}

macro_rules! compare_methods {
    ($($(#[$doc:meta])* $name:ident, $op:literal, $cmp:tt;)*) => {
        impl<T: Float> Tensor<T> {
            $(
                $(#[$doc])*
                #[track_caller]
                pub fn $name(&self, other: &Tensor<T>) -> Tensor<bool> {
                    zip_broadcast($op, self, other, |x: T, y: T| x $cmp y).or_panic()
                }
            )*
        }
    };
}

compare_methods! {
    /// a > b as a mask, broadcast
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f64, 2.0, 3.0]);
    /// assert_eq!(a.gt(&Tensor::scalar(2.0)).to_vec(), vec![false, false, true]);
    /// ```
    gt, "gt", >;
    /// a >= b as a mask, broadcast
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f64, 2.0, 3.0]);
    /// assert_eq!(a.ge(&Tensor::scalar(2.0)).to_vec(), vec![false, true, true]);
    /// ```
    ge, "ge", >=;
    /// a < b as a mask, broadcast
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f64, 2.0, 3.0]);
    /// assert_eq!(a.lt(&Tensor::scalar(2.0)).to_vec(), vec![true, false, false]);
    /// ```
    lt, "lt", <;
    /// a <= b as a mask, broadcast
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f64, 2.0, 3.0]);
    /// assert_eq!(a.le(&Tensor::scalar(2.0)).to_vec(), vec![true, true, false]);
    /// ```
    le, "le", <=;
    /// a == b as a mask, broadcast
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let a = Tensor::from_slice(&[1.0f64, 2.0, 3.0]);
    /// assert_eq!(a.eq_elem(&Tensor::scalar(2.0)).to_vec(), vec![false, true, false]);
    /// ```
    eq_elem, "eq", ==;
}

/// `fast` on every element of `x` in a loop that vectorizes, then `exact` on the elements
/// past [`Float::FAST_TRIG_MAX`], found block by block from the block's largest |x| (the
/// check costs little; a NaN passes it, and `fast` keeps it NaN). With libm's `sinf` per
/// element, sin of 1M f32 on [-10, 10] took 4.4 ms.
pub(crate) fn trig<T: Float>(x: &Tensor<T>, fast: impl Fn(T) -> T + Sync, exact: impl Fn(T) -> T + Sync) -> Tensor<T> {
    const BLOCK: usize = 256;
    let src = x.as_slice();
    let n = src.len();
    if n <= crate::storage::INLINE {
        let v = src.iter().map(|&v| if v.abs() <= T::FAST_TRIG_MAX { fast(v) } else { exact(v) });
        return Tensor::from_parts(Storage::from_exact_iter(n, v), x.shape().clone());
    }
    let parts = crate::parallel::parts_for(n, crate::kernels::COSTLY_PARALLEL_MIN_ELEMENTS / 2);
    // SAFETY: the first loop over each block writes every slot of it.
    let v = unsafe {
        crate::parallel::collect_parts(n, parts, 16, |start, d| {
            for (s, d) in src[start..start + d.len()].chunks(BLOCK).zip(d.chunks_mut(BLOCK)) {
                s.iter().zip(d.iter_mut()).for_each(|(&v, d)| {
                    d.write(fast(v));
                });
                if s.iter().fold(T::ZERO, |m, &v| m.max(v.abs())) > T::FAST_TRIG_MAX {
                    s.iter().zip(d).filter(|(v, _)| v.abs() > T::FAST_TRIG_MAX).for_each(|(&v, d)| {
                        d.write(exact(v));
                    });
                }
            }
        })
    };
    Tensor::from_parts(v, x.shape().clone())
}

/// min(x, 0), but NaN for NaN (`Float::min` would give 0).
#[inline(always)]
pub(crate) fn non_positive<T: Float>(x: T) -> T {
    if x > T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// √(2/π) and the cubic coefficient of the tanh-form GELU.
pub(crate) const GELU_K: f64 = 0.797_884_560_802_865_4;
pub(crate) const GELU_C: f64 = 0.044_715;

/// x·Φ(x) = ½x(1 + erf(x/√2)), the exact GELU, in the order PyTorch computes it.
#[inline(always)]
pub(crate) fn gelu_exact<T: Float>(x: T) -> T {
    x * T::from_f64(0.5) * (T::ONE + crate::kernels::special::erf(x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)))
}

/// tanh(√(2/π)(x + 0.044715x³)), the inner part of the tanh-form GELU.
#[inline(always)]
pub(crate) fn gelu_tanh_inner<T: Float>(x: T) -> T {
    ((x + x * x * x * T::from_f64(GELU_C)) * T::from_f64(GELU_K)).fast_tanh()
}

/// ln(1 + y) for y in [0, 1], in a form that vectorizes: u = 1 + y rounds, ln u is taken
/// with [`Float::fast_ln`], and (y − (u − 1))/u adds back what the rounding lost (u − 1 is
/// exact here), so a tiny y still gives y. libm's `log1p` per element made softplus (and
/// with it the binary cross-entropy on logits) of 1M f32 take 4.5 ms.
#[inline(always)]
pub(crate) fn ln_1p_unit<T: Float>(y: T) -> T {
    let u = T::ONE + y;
    u.fast_ln() + (y - (u - T::ONE)) / u
}

impl<T: Float> Tensor<T> {
    /// x^p for a scalar exponent p, with `powf`'s special values (x⁰ = 1 even for NaN,
    /// (-0)^½ = +0, (-∞)^½ = +∞). The common exponents skip libm's `powf` per element (2.3
    /// ms on 1M f32): 0 and 1 are copies, 2 and 3 products (`x·x`, `x·x·x`), ½ a square
    /// root, -1 a division, -½ a square root and a division (within 1 ulp): 1M f32 in
    /// 0-150 µs. The gradient of x² is 2x¹, so `Var::powf(2)` forward and backward on 1M f32
    /// took 3.1 ms, 2.3 of them in x¹.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::from_slice(&[4.0f64, 9.0]);
    /// assert_eq!(x.powf(0.5).to_vec(), vec![2.0, 3.0]);
    /// assert_eq!(x.powf(2.0).to_vec(), vec![16.0, 81.0]);
    /// assert_eq!(Tensor::from_slice(&[f64::NAN]).powf(0.0).to_vec(), vec![1.0]);
    /// ```
    pub fn powf(&self, p: T) -> Tensor<T> {
        let is = |v: f64| p == T::from_f64(v);
        if is(0.0) {
            Tensor::ones(self.shape().clone())
        } else if is(1.0) {
            self.clone()
        } else if is(2.0) {
            self.square()
        } else if is(3.0) {
            self.par_map(|x| x * x * x)
        } else if is(0.5) {
            // + 0 turns √(-0) = -0 into +0
            self.par_map(|x| if x == T::NEG_INFINITY { T::INFINITY } else { x.sqrt() + T::ZERO })
        } else if is(-1.0) {
            self.recip()
        } else if is(-0.5) {
            self.par_map(|x| if x == T::NEG_INFINITY { T::ZERO } else { T::ONE / (x.sqrt() + T::ZERO) })
        } else {
            self.par_map(move |x| x.powf(p))
        }
    }

    /// x for x > 0, `slope`·x otherwise.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::from_slice(&[-2.0f64, 0.0, 3.0]);
    /// assert_eq!(x.leaky_relu(0.5).to_vec(), vec![-1.0, 0.0, 3.0]);
    /// ```
    pub fn leaky_relu(&self, slope: T) -> Tensor<T> {
        self.par_map(move |x| if x > T::ZERO { x } else { x * slope })
    }

    /// x for x > 0, α(eˣ − 1) otherwise (the exponential taken of min(x, 0), so the branch
    /// not taken cannot overflow; NaN stays NaN).
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let y = Tensor::from_slice(&[-1.0f64, 2.0, -1000.0]).elu(1.0).to_vec();
    /// assert!((y[0] - (-1.0f64).exp_m1()).abs() < 1e-9);
    /// assert_eq!((y[1], y[2]), (2.0, -1.0));
    /// ```
    pub fn elu(&self, alpha: T) -> Tensor<T> {
        self.par_map(move |x| if x > T::ZERO { x } else { (non_positive(x).fast_exp() - T::ONE) * alpha })
    }

    /// x clamped to `[lo, hi]`.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let x = Tensor::from_slice(&[-2.0f64, 0.5, 3.0]);
    /// assert_eq!(x.clamp(0.0, 1.0).to_vec(), vec![0.0, 0.5, 1.0]);
    /// ```
    pub fn clamp(&self, lo: T, hi: T) -> Tensor<T> {
        self.par_map(move |x| if x < lo { lo } else if x > hi { hi } else { x })
    }

    /// x + c
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// assert_eq!(Tensor::from_slice(&[1.0f64, 2.0]).add_scalar(0.5).to_vec(), vec![1.5, 2.5]);
    /// ```
    pub fn add_scalar(&self, c: T) -> Tensor<T> {
        self.par_map(move |x| x + c)
    }

    /// x * c
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// assert_eq!(Tensor::from_slice(&[1.0f64, -2.0]).mul_scalar(3.0).to_vec(), vec![3.0, -6.0]);
    /// ```
    pub fn mul_scalar(&self, c: T) -> Tensor<T> {
        self.par_map(move |x| x * c)
    }

    /// `self += alpha * other` in place (same shape), copying the storage first only if shared.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let mut a = Tensor::from_slice(&[1.0f64, 2.0]);
    /// a.axpy_(2.0, &Tensor::from_slice(&[10.0, 20.0]));
    /// assert_eq!(a.to_vec(), vec![21.0, 42.0]);
    /// ```
    #[track_caller]
    pub fn axpy_(&mut self, alpha: T, other: &Tensor<T>) {
        if self.shape() != other.shape() {
            panic!(
                "wengert: axpy_: shapes differ: {} and {}",
                self.shape(),
                other.shape()
            );
        }
        self.data_mut()
            .iter_mut()
            .zip(other.as_slice())
            .for_each(|(a, &b)| *a += alpha * b);
    }

    /// `mask ? self : other`, broadcast.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let mask = Tensor::from_slice(&[true, false]);
    /// let y = Tensor::where_(&mask, &Tensor::from_slice(&[1.0f64, 2.0]), &Tensor::scalar(-1.0));
    /// assert_eq!(y.to_vec(), vec![1.0, -1.0]);
    /// ```
    #[track_caller]
    pub fn where_(mask: &Tensor<bool>, a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
        where_(mask, a, b).or_panic()
    }

    /// This tensor broadcast to `shape` (a copy).
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// let y = Tensor::from_slice(&[1.0f64, 2.0]).broadcast_to([2, 2]);
    /// assert_eq!(y.dims(), &[2, 2]);
    /// assert_eq!(y.to_vec(), vec![1.0, 2.0, 1.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Tensor<T> {
        broadcast_to(self, &shape.into()).or_panic()
    }
}

macro_rules! tensor_operators {
    ($($trait:ident, $method:ident, $call:ident, $scalar:expr, $binary:expr;)*) => {$(
        impl<T: Float> $trait<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                Tensor::$call(self, rhs)
            }
        }
        impl<T: Float> $trait<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                zip_reusing(stringify!($method), self, &rhs, true, $binary).or_panic()
            }
        }
        impl<T: Float> $trait<&Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                zip_reusing(stringify!($method), self, rhs, true, $binary).or_panic()
            }
        }
        impl<T: Float> $trait<Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                zip_reusing(stringify!($method), rhs, self, false, $binary).or_panic()
            }
        }
        impl<T: Float> $trait<T> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: T) -> Tensor<T> {
                <&Tensor<T> as $trait<T>>::$method(&self, rhs)
            }
        }
        impl<T: Float> $trait<T> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: T) -> Tensor<T> {
                let f: fn(T, T) -> T = $scalar;
                self.par_map(move |x| f(x, rhs))
            }
        }
    )*};
}

tensor_operators! {
    Add, add, add, |x, c| x + c, |x: T, y: T| x + y;
    Sub, sub, sub, |x, c| x - c, |x: T, y: T| x - y;
    Mul, mul, mul, |x, c| x * c, |x: T, y: T| x * y;
    Div, div, div, |x, c| x / c, |x: T, y: T| x / y;
}

impl<T: Float> Neg for Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(&self)
    }
}
impl<T: Float> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// softplus in f32 (its e^-|x| and ln(1 + y) vectorized) against f64 from x = -86.9 (below,
    /// e^x flushes to 0 as `Float::fast_exp` documents) and around 0, and the cube as a
    /// product: both within 2.5e-7 relative (about 2 ulp).
    #[test]
    fn softplus_and_cube_are_accurate_in_f32() {
        let xs: Vec<f32> = (0..13_000).map(|i| -86.9 + i as f32 * 0.0137).chain((0..2000).map(|i| (i as f32 - 1000.0) * 1e-6)).collect();
        let x = Tensor::new(xs.clone(), [xs.len()]);
        let got = x.softplus();
        let mut worst = 0.0f64;
        for (&v, &g) in xs.iter().zip(got.as_slice()) {
            let v = v as f64;
            let want = v.max(0.0) + (-v.abs()).exp().ln_1p();
            worst = worst.max((g as f64 - want).abs() / want);
        }
        assert!(worst < 2.5e-7, "softplus: worst relative error {worst}");
        let cube = x.powf(3.0);
        for (&v, &g) in xs.iter().zip(cube.as_slice()) {
            let want = (v as f64).powi(3);
            assert!((g as f64 - want).abs() <= 2.5e-7 * want.abs(), "{v}^3 = {g}");
        }
        assert_eq!(Tensor::<f32>::from_slice(&[f32::INFINITY, f32::NEG_INFINITY, 0.0]).softplus().to_vec(), vec![f32::INFINITY, 0.0, 2f32.ln()]);
    }

    /// sin and cos of f32 tensors: the vectorized path within half an ulp of f64 (so equal to
    /// f64's result rounded, but for the rare near-halfway case), libm's past
    /// `FAST_TRIG_MAX` (a few such values inside one block of ordinary ones, and a tensor
    /// small enough to be held inline), on one thread and split across threads.
    #[test]
    fn sin_and_cos_take_libm_past_the_fast_range() {
        let max = f32::FAST_TRIG_MAX;
        for n in [3usize, 700, 40_000] {
            let mut xs: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.37).collect();
            for (k, big) in [max * 1.5, -max * 4.0, 1e30, max].into_iter().enumerate() {
                xs[(k * 97 + 1) % n] = big;
            }
            let x = Tensor::new(xs.clone(), [n]);
            for (got, f, f64f) in [(x.sin(), f32::sin as fn(f32) -> f32, f64::sin as fn(f64) -> f64), (x.cos(), f32::cos, f64::cos)] {
                for (&v, &g) in xs.iter().zip(got.as_slice()) {
                    if v.abs() > max {
                        assert_eq!(g, f(v), "libm's result past the fast range, at {v}");
                    } else {
                        let want = f64f(v as f64);
                        let ulp = (want as f32).abs().max(f32::MIN_POSITIVE);
                        let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
                        assert!((g as f64 - want).abs() <= 0.5001 * ulp, "{v}: {g} against {want}");
                    }
                }
            }
        }
        let specials = Tensor::<f32>::from_slice(&[-0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        let (s, c) = (specials.sin().to_vec(), specials.cos().to_vec());
        assert!(s[0] == 0.0 && s[0].is_sign_negative() && c[0] == 1.0);
        assert!(s[1..].iter().chain(&c[1..]).all(|v| v.is_nan()));
    }

    /// Broadcast pairs large enough to split across threads, with dims that coalesce and
    /// dims that do not, against element-by-element indexing.
    #[test]
    fn large_broadcasts_match_indexing() {
        let x = Tensor::<f64>::from_fn([3, 200, 130], |i| (i[0] * 7 + i[1] * 3 + i[2]) as f64);
        for other in [vec![200, 1], vec![3, 1, 130], vec![130], vec![3, 200, 1], vec![1, 1, 1]] {
            let y = Tensor::<f64>::from_fn(other.clone(), |i| i.iter().sum::<usize>() as f64 * 0.5 + 1.0);
            let got = &x * &y;
            let off = 3 - other.len();
            let want = Tensor::<f64>::from_fn([3, 200, 130], |i| {
                let j: Vec<usize> = other.iter().enumerate().map(|(d, &len)| if len == 1 { 0 } else { i[d + off] }).collect();
                x.get(i) * y.get(&j)
            });
            assert_eq!(got.to_vec(), want.to_vec(), "[3, 200, 130] * {other:?}");
            let got = &y - &x;
            assert_eq!(got.to_vec(), (&(&x * -1.0) + &y).to_vec(), "{other:?} - [3, 200, 130]");
        }
    }

    #[test]
    fn owned_operands_are_overwritten_only_when_unshared() {
        let n = crate::kernels::PARALLEL_MIN_ELEMENTS + 3;
        let a = Tensor::<f64>::from_fn([n], |i| i[0] as f64);
        let b = Tensor::<f64>::from_fn([n], |i| 1.0 + (i[0] % 7) as f64);
        let want: Vec<f64> = (0..n).map(|i| i as f64 - (1.0 + (i % 7) as f64)).collect();
        // unshared temporaries on either side: computed in place, same result
        assert_eq!((&a * 1.0 - &b).to_vec(), want);
        assert_eq!((&a - &b * 1.0).to_vec(), want);
        assert_eq!((&a * 1.0 - &b * 1.0).to_vec(), want);
        // a shared owned operand (its clone lives on) is not written
        let kept = a.clone();
        let diff = a.clone() - &b;
        assert_eq!(diff.to_vec(), want);
        assert_eq!(kept.to_vec(), a.to_vec());
        // a one-element operand broadcasts; one that would change the shape does not reuse
        let two = Tensor::<f64>::new(vec![2.0], [1]);
        assert_eq!((&b * 1.0 / &two).to_vec(), b.to_vec().iter().map(|x| x / 2.0).collect::<Vec<_>>());
        assert_eq!((&b * 1.0 / Tensor::new(vec![2.0], [1, 1])).dims(), &[1, n]);
    }

    #[test]
    fn broadcast_both_directions() {
        let col = Tensor::new(vec![1.0f64, 2.0], [2, 1]);
        let row = Tensor::new(vec![10.0f64, 20.0, 30.0], [1, 3]);
        assert_eq!((&col + &row).to_vec(), vec![11., 21., 31., 12., 22., 32.]);
        assert_eq!((&row - &col).to_vec(), vec![9., 19., 29., 8., 18., 28.]);
        let m = Tensor::new(vec![1.0f64, 2., 3., 4., 5., 6.], [2, 3]);
        assert_eq!(m.mul(&Tensor::from_slice(&[1., 0., -1.])).to_vec(), vec![1., 0., -3., 4., 0., -6.]);
        let b3 = Tensor::<f64>::ones([2, 1, 3]);
        assert_eq!((&b3 * &Tensor::new(vec![1., 2.], [2, 1])).dims(), &[2, 2, 3]);
    }

    #[test]
    #[should_panic(expected = "wengert: mul: cannot broadcast: shapes [2, 3] and [2]")]
    fn mismatch_names_op_and_shapes() {
        let _ = Tensor::<f32>::zeros([2, 3]).mul(&Tensor::zeros([2]));
    }

    /// The exponents `powf` computes without libm against libm, in f32 and f64, on ordinary
    /// values and the special ones: the same class of result (NaN, ±∞, ±0) and within an ulp.
    #[test]
    fn powf_shortcuts_match_libm() {
        fn check<T: Float>(ulp: f64) {
            let vals = [0.0, -0.0, 1.0, -1.0, 2.5, -3.0, 1e-30, 7e12, 0.3, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
            let x = Tensor::<T>::from_fn([vals.len()], |i| T::from_f64(vals[i[0]]));
            for p in [0.0, 1.0, 2.0, 3.0, 0.5, -1.0, -0.5] {
                for (&v, &g) in x.as_slice().iter().zip(x.powf(T::from_f64(p)).as_slice()) {
                    let (g, want) = (g.to_f64(), v.powf(T::from_f64(p)).to_f64());
                    let ok = if want.is_nan() {
                        g.is_nan()
                    } else if want == 0.0 || want.is_infinite() {
                        g == want && g.is_sign_negative() == want.is_sign_negative()
                    } else {
                        (g - want).abs() <= ulp * want.abs()
                    };
                    assert!(ok, "{v}^{p} = {g}, libm {want}");
                }
            }
        }
        check::<f32>(f32::EPSILON as f64);
        check::<f64>(f64::EPSILON);
    }

    /// `where_` with every operand of the result's shape (split across threads) and with a
    /// broadcast mask and a scalar, against indexing.
    #[test]
    fn where_matches_indexing() {
        let a = Tensor::<f64>::from_fn([300, 400], |i| (i[0] * 400 + i[1]) as f64);
        let b = Tensor::<f64>::from_fn([300, 400], |i| -((i[0] + i[1]) as f64));
        let full = Tensor::from_fn([300, 400], |i| (i[0] * 7 + i[1] * 3) % 5 == 0);
        let rows = Tensor::from_fn([300, 1], |i| i[0] % 3 == 0);
        for (mask, other) in [(&full, b.clone()), (&rows, Tensor::scalar(0.5))] {
            let got = Tensor::where_(mask, &a, &other);
            for i in 0..300 {
                for j in 0..400 {
                    let m = mask.get(&[i, j.min(mask.dims()[1] - 1)]);
                    let want = if m { a.get(&[i, j]) } else if other.numel() == 1 { 0.5 } else { other.get(&[i, j]) };
                    assert_eq!(got.get(&[i, j]), want, "at {i}, {j}");
                }
            }
        }
    }

    /// maximum, minimum and relu propagate NaN from either side (as PyTorch does), on a
    /// small tensor and on one large enough to split across threads.
    #[test]
    fn max_min_relu_propagate_nan() {
        let nan = f64::NAN;
        let a = Tensor::from_slice(&[nan, 1.0, -0.0, 2.0]);
        let b = Tensor::from_slice(&[1.0, nan, 0.0, 3.0]);
        for (got, want) in [(a.maximum(&b), [nan, nan, -0.0, 3.0]), (a.minimum(&b), [nan, nan, -0.0, 2.0])] {
            assert_eq!(got.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.map(f64::to_bits).to_vec());
        }
        assert!(a.relu().get(&[0]).is_nan() && a.relu().get(&[1]) == 1.0);
        let n = crate::kernels::PARALLEL_MIN_ELEMENTS * 3 + 5;
        let x = Tensor::<f32>::from_fn([n], |i| if i[0] % 97 == 3 { f32::NAN } else { i[0] as f32 - 50.0 });
        let y = Tensor::<f32>::from_fn([n], |i| if i[0] % 89 == 4 { f32::NAN } else { 25.0 - i[0] as f32 });
        let (mx, mn, r) = (x.maximum(&y).to_vec(), x.minimum(&y).to_vec(), x.relu().to_vec());
        for (k, (&u, &v)) in x.as_slice().iter().zip(y.as_slice()).enumerate() {
            if u.is_nan() || v.is_nan() {
                assert!(mx[k].is_nan() && mn[k].is_nan(), "at {k}: max {}, min {} of {u}, {v}", mx[k], mn[k]);
            } else {
                assert_eq!((mx[k], mn[k]), (u.max(v), u.min(v)), "at {k}");
            }
            let want = if u.is_nan() { u } else { u.max(0.0) };
            assert_eq!(r[k].to_bits(), want.to_bits(), "relu at {k}");
        }
    }

    #[test]
    fn unary_values() {
        let x = Tensor::new(vec![-1.0f64, 0.0, 2.0], [3]);
        assert_eq!(x.relu().to_vec(), vec![0.0, 0.0, 2.0]);
        assert_eq!(x.clamp(-0.5, 1.0).to_vec(), vec![-0.5, 0.0, 1.0]);
        assert_eq!(x.sigmoid().get(&[1]), 0.5);
        assert!((Tensor::from_slice(&[-800.0f64]).sigmoid().item()).abs() < 1e-300);
        assert_eq!(x.powf(2.0).to_vec(), vec![1.0, 0.0, 4.0]);
        let e = Tensor::from_slice(&[-1.0f64, 0.0, 2.0, 1e300, f64::NAN]);
        assert_eq!(e.leaky_relu(0.1).to_vec()[..4], [-0.1, 0.0, 2.0, 1e300]);
        assert_eq!(e.elu(2.0).to_vec()[..4], [2.0 * ((-1f64).exp() - 1.0), 0.0, 2.0, 1e300]);
        assert!(e.leaky_relu(0.1).to_vec()[4].is_nan() && e.elu(2.0).to_vec()[4].is_nan());
        let m = x.gt(&Tensor::scalar(0.0));
        assert_eq!(m.to_vec(), vec![false, false, true]);
        assert_eq!(Tensor::where_(&m, &x, &Tensor::scalar(7.0)).to_vec(), vec![7.0, 7.0, 2.0]);
    }

    #[test]
    fn broadcast_to_copies() {
        let x = Tensor::new(vec![1.0f32, 2.0], [2, 1]);
        assert_eq!(x.broadcast_to([2, 3]).to_vec(), vec![1., 1., 1., 2., 2., 2.]);
        assert!(broadcast_to(&x, &Shape::new(&[3, 3])).is_err());
    }
}
