//! Inverted dropout.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wengert_core::{Float, Param, Tensor, Var};

use crate::init::next_seed;
use crate::module::Module;

/// During training, zeroes each element with probability `p` and scales the rest by
/// 1/(1-p), so the expected value is unchanged; in eval mode it is the identity.
pub struct Dropout {
    p: f64,
    training: bool,
    rng: RefCell<StdRng>,
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)`, seeded from the per-thread generator.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut drop = Dropout::new(0.5);
    /// let tape = Tape::<f64>::new();
    /// let y = drop.forward(tape.constant(Tensor::ones([1000]))).value().to_vec();
    /// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0)); // kept elements scaled by 1/(1 − p)
    /// let kept = y.iter().filter(|&&v| v == 2.0).count();
    /// assert!((400..600).contains(&kept));
    /// Module::<f64>::eval(&mut drop);
    /// assert_eq!(drop.forward(tape.constant(Tensor::ones([3]))).value().to_vec(), [1.0; 3]); // identity in eval mode
    /// assert!(std::panic::catch_unwind(|| Dropout::new(1.0)).is_err());
    /// ```
    #[track_caller]
    pub fn new(p: f64) -> Self {
        if !(0.0..1.0).contains(&p) {
            panic!("wengert: Dropout: p must be in [0, 1), got {p}");
        }
        let seed = next_seed();
        Dropout { p, training: true, rng: RefCell::new(StdRng::seed_from_u64(seed)) }
    }
}

/// An inverted-dropout mask of `shape`: each entry 0 with probability `p`, else 1/(1-p).
///
/// One draw from `rng` (through [`Tape::replayable_seed`](wengert_core::Tape::replayable_seed),
/// so a checkpointed block's recompute gets the same mask) seeds a SplitMix64 stream whose i-th output decides entry i: the
/// stream's state after i + 1 steps is seed + (i+1)·γ, so every entry is computed on its own
/// (a multiply-xorshift hash of its index) in a loop that vectorizes and splits across
/// threads, with the statistics of SplitMix64 (it passes BigCrush). Entry i is dropped when
/// the output's top 53 bits, as a fraction of 2⁵³, fall below `p`. A draw per entry from
/// `rng` (ChaCha12) took 11.8 ms for 1M entries.
pub(crate) fn dropout_mask<T: Float>(tape: &wengert_core::Tape<T>, shape: &wengert_core::Shape, p: f64, rng: &mut StdRng) -> Tensor<T> {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;
    let seed: u64 = tape.replayable_seed(|| rng.gen());
    let keep = T::from_f64(1.0 / (1.0 - p));
    let threshold = (p * (1u64 << 53) as f64) as u64;
    let entry = move |i: usize| {
        let mut z = seed.wrapping_add((i as u64).wrapping_add(1).wrapping_mul(GAMMA));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z >> 11 < threshold {
            T::ZERO
        } else {
            keep
        }
    };
    let mut mask = Tensor::zeros(shape.clone());
    let n = mask.numel();
    let parts = wengert_core::parallel::parts_for(n, wengert_core::kernels::COSTLY_PARALLEL_MIN_ELEMENTS);
    wengert_core::parallel::for_each_part_mut(mask.data_mut(), parts, 1, |start, part| {
        part.iter_mut().enumerate().for_each(|(i, m)| *m = entry(start + i));
    });
    mask
}

impl<T: Float> Module<T> for Dropout {
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        if !self.training || self.p == 0.0 {
            return x;
        }
        let mask = dropout_mask(x.tape(), &x.shape(), self.p, &mut self.rng.borrow_mut());
        x * x.tape().constant(mask)
    }
    fn visit_params<'a>(&'a self, _: &str, _: &mut dyn FnMut(String, &'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(String, &'a mut Param<T>)) {}
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mask drops a fraction p of 1M entries (within 5 standard deviations), pairs of
    /// neighbours as often as independence predicts, keeps the rest at exactly 1/(1-p), comes
    /// out the same from the same generator state and differently from the next draw.
    #[test]
    fn masks_drop_p_independently() {
        let n = 1 << 20;
        let shape = wengert_core::Shape::new(&[1024, 1024]);
        let tape = wengert_core::Tape::<f64>::new();
        for p in [0.1, 0.5, 0.9] {
            let mut rng = StdRng::seed_from_u64(7);
            let m: Tensor<f64> = dropout_mask(&tape, &shape, p, &mut rng);
            let dropped: Vec<bool> = m.as_slice().iter().map(|&v| v == 0.0).collect();
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            let count = dropped.iter().filter(|&&d| d).count() as f64;
            assert!((count - n as f64 * p).abs() < 5.0 * sd, "p {p}: {count} of {n} dropped");
            let pairs = dropped.windows(2).filter(|w| w[0] && w[1]).count() as f64;
            let want = (n - 1) as f64 * p * p;
            assert!((pairs - want).abs() < 5.0 * (want * (1.0 - p * p)).sqrt() * 2.0, "p {p}: {pairs} neighbouring pairs, {want} expected");
            assert!(m.as_slice().iter().all(|&v| v == 0.0 || v == 1.0 / (1.0 - p)));
            let again: Tensor<f64> = dropout_mask(&tape, &shape, p, &mut StdRng::seed_from_u64(7));
            assert_eq!(again, m);
            let next: Tensor<f64> = dropout_mask(&tape, &shape, p, &mut rng);
            assert_ne!(next, m);
        }
    }
}
