//! Parameter initialisers: Xavier/Glorot and Kaiming/He (uniform and normal), seeded.
//!
//! Layers built without an explicit RNG draw from a per-thread generator that
//! [`manual_seed`] resets (like `torch.manual_seed`), so a seeded program is reproducible.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::SeedableRng;
use wengert_core::{Float, Shape, Tensor};

thread_local! {
    static RNG: RefCell<StdRng> = RefCell::new(StdRng::seed_from_u64(0x5eed));
}

thread_local! {
    static SEEDS: std::cell::Cell<u64> = const { std::cell::Cell::new(0x5eed) };
}

/// Reseeds the generator layers use when built without an explicit RNG.
///
/// ```
/// use wengert_nn::{init::manual_seed, prelude::*};
/// manual_seed(42);
/// let a = Linear::<f32>::new(3, 2);
/// manual_seed(42);
/// let b = Linear::<f32>::new(3, 2);
/// assert_eq!(a.weight.value(), b.weight.value()); // the same seed, the same weights
/// assert_ne!(Linear::<f32>::new(3, 2).weight.value(), a.weight.value()); // the generator moved on
/// ```
pub fn manual_seed(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = StdRng::seed_from_u64(seed));
    SEEDS.with(|s| s.set(seed));
}

/// A fresh seed for a layer's own generator (dropout masks), from a per-thread splitmix64
/// sequence that [`manual_seed`] resets. Unlike [`with_rng`] it may be called anywhere,
/// including inside a `with_rng` closure.
///
/// ```
/// use wengert_nn::init::{manual_seed, next_seed, with_rng};
/// manual_seed(1);
/// let (s1, s2) = (next_seed(), next_seed());
/// assert_ne!(s1, s2);
/// manual_seed(1);
/// assert_eq!(with_rng(|_| next_seed()), s1); // reset by manual_seed; fine inside with_rng
/// ```
pub fn next_seed() -> u64 {
    SEEDS.with(|s| {
        let z = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(z);
        let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// Runs `f` with the per-thread generator.
///
/// ```
/// use rand::Rng;
/// use wengert_nn::init::{manual_seed, with_rng};
/// manual_seed(3);
/// let a: f64 = with_rng(|rng| rng.gen());
/// manual_seed(3);
/// let b: f64 = with_rng(|rng| rng.gen());
/// assert_eq!(a, b);
/// assert!((0.0..1.0).contains(&a));
/// ```
pub fn with_rng<R>(f: impl FnOnce(&mut StdRng) -> R) -> R {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// (fan_in, fan_out) of a weight shaped like PyTorch's: `[out, in, k...]`; a 1-D shape has
/// fan_in = fan_out = its length.
///
/// ```
/// use wengert_core::Shape;
/// use wengert_nn::init::fans;
/// assert_eq!(fans(&Shape::new(&[16, 8])), (8, 16)); // Linear weight [out, in]
/// assert_eq!(fans(&Shape::new(&[16, 3, 5, 5])), (3 * 25, 16 * 25)); // Conv2d weight [out, in, kh, kw]
/// assert_eq!(fans(&Shape::new(&[7])), (7, 7));
/// ```
pub fn fans(shape: &Shape) -> (usize, usize) {
    match shape.dims() {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp, rest @ ..] => {
            let receptive: usize = rest.iter().product();
            (inp * receptive, out * receptive)
        }
    }
}

/// Which fan Kaiming scaling keeps the variance of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FanMode {
    /// preserve the forward pass's variance (default)
    #[default]
    FanIn,
    /// preserve the backward pass's variance
    FanOut,
}

/// How to fill a parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// all zeros
    Zeros,
    /// all ones
    Ones,
    /// a constant
    Constant(f64),
    /// U(low, high)
    Uniform(f64, f64),
    /// N(mean, std²)
    Normal(f64, f64),
    /// Glorot: U(-a, a) with a = gain·√(6 / (fan_in + fan_out))
    XavierUniform {
        /// gain (1 for linear/sigmoid, 5/3 for tanh)
        gain: f64,
    },
    /// Glorot: N(0, σ²) with σ = gain·√(2 / (fan_in + fan_out))
    XavierNormal {
        /// gain
        gain: f64,
    },
    /// He: U(-b, b) with b = gain·√(3 / fan), gain = √(2 / (1 + a²)) for leaky-ReLU slope `a`
    KaimingUniform {
        /// negative slope of the following leaky ReLU (0 for ReLU; √5 gives PyTorch's Linear default)
        a: f64,
        /// which fan
        mode: FanMode,
    },
    /// He: N(0, σ²) with σ = gain / √fan
    KaimingNormal {
        /// negative slope of the following leaky ReLU (0 for ReLU)
        a: f64,
        /// which fan
        mode: FanMode,
    },
}

impl Init {
    /// PyTorch's default for `nn.Linear` / `nn.Conv*` weights: Kaiming-uniform with a = √5,
    /// i.e. U(-1/√fan_in, 1/√fan_in).
    pub const PYTORCH_DEFAULT: Init = Init::KaimingUniform { a: 2.23606797749979, mode: FanMode::FanIn };

    /// A tensor of `shape` drawn from this distribution.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::init::Init;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    /// let w = Init::XavierUniform { gain: 1.0 }.tensor::<f32>([20, 30], &mut rng);
    /// let bound = (6.0f32 / 50.0).sqrt();
    /// assert!(w.as_slice().iter().all(|v| v.abs() <= bound));
    /// ```
    pub fn tensor<T: Float>(&self, shape: impl Into<Shape>, rng: &mut impl rand::Rng) -> Tensor<T> {
        let shape = shape.into();
        let (fan_in, fan_out) = fans(&shape);
        let f = |x: f64| T::from_f64(x);
        let kaiming_fan = |mode: FanMode| match mode {
            FanMode::FanIn => fan_in,
            FanMode::FanOut => fan_out,
        } as f64;
        match *self {
            Init::Zeros => Tensor::zeros(shape),
            Init::Ones => Tensor::ones(shape),
            Init::Constant(c) => Tensor::full(shape, f(c)),
            Init::Uniform(lo, hi) => Tensor::uniform(shape, f(lo), f(hi), rng),
            Init::Normal(m, s) => Tensor::normal(shape, f(m), f(s), rng),
            Init::XavierUniform { gain } => {
                let a = gain * (6.0 / (fan_in + fan_out) as f64).sqrt();
                Tensor::uniform(shape, f(-a), f(a), rng)
            }
            Init::XavierNormal { gain } => {
                let s = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
                Tensor::normal(shape, T::ZERO, f(s), rng)
            }
            Init::KaimingUniform { a, mode } => {
                let gain = (2.0 / (1.0 + a * a)).sqrt();
                let b = gain * (3.0 / kaiming_fan(mode)).sqrt();
                Tensor::uniform(shape, f(-b), f(b), rng)
            }
            Init::KaimingNormal { a, mode } => {
                let gain = (2.0 / (1.0 + a * a)).sqrt();
                Tensor::normal(shape, T::ZERO, f(gain / kaiming_fan(mode).sqrt()), rng)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_default_bound_is_one_over_sqrt_fan_in() {
        let mut rng = StdRng::seed_from_u64(3);
        let w = Init::PYTORCH_DEFAULT.tensor::<f64>([64, 100], &mut rng);
        let max = w.as_slice().iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(max <= 0.1 && max > 0.09, "{max}");
        assert_eq!(fans(&Shape::new(&[8, 3, 5, 5])), (75, 200));
    }

    #[test]
    fn kaiming_normal_has_he_variance() {
        let mut rng = StdRng::seed_from_u64(4);
        let w = Init::KaimingNormal { a: 0.0, mode: FanMode::FanIn }.tensor::<f64>([400, 50], &mut rng);
        let var = w.as_slice().iter().map(|v| v * v).sum::<f64>() / w.numel() as f64;
        assert!((var - 2.0 / 50.0).abs() < 0.003, "{var}");
    }

    #[test]
    fn manual_seed_makes_draws_repeatable() {
        manual_seed(9);
        let a: Tensor<f32> = with_rng(|r| Init::Normal(0.0, 1.0).tensor([5], r));
        manual_seed(9);
        let b: Tensor<f32> = with_rng(|r| Init::Normal(0.0, 1.0).tensor([5], r));
        assert_eq!(a, b);
    }
}
