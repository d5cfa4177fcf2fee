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
    #[track_caller]
    pub fn new(p: f64) -> Self {
        if !(0.0..1.0).contains(&p) {
            panic!("wengert: Dropout: p must be in [0, 1), got {p}");
        }
        let seed = next_seed();
        Dropout { p, training: true, rng: RefCell::new(StdRng::seed_from_u64(seed)) }
    }
}

impl<T: Float> Module<T> for Dropout {
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        if !self.training || self.p == 0.0 {
            return x;
        }
        let keep = T::from_f64(1.0 / (1.0 - self.p));
        let mut rng = self.rng.borrow_mut();
        let n = x.numel();
        let mask: Vec<T> = (0..n).map(|_| if rng.gen::<f64>() < self.p { T::ZERO } else { keep }).collect();
        x * x.tape().constant(Tensor::new(mask, x.shape()))
    }
    fn visit_params<'a>(&'a self, _: &str, _: &mut dyn FnMut(String, &'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(String, &'a mut Param<T>)) {}
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}
