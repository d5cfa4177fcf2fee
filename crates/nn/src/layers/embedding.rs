//! A lookup table of learned vectors.

use rand::Rng;
use wengert_core::{Float, Param, Tape, Tensor, Var};

use crate::init::{with_rng, Init};
use crate::module::Module;

/// Row `i` of a `[num_embeddings, dim]` table for each index `i`; initialised N(0, 1) as in
/// PyTorch. Gradients of repeated indices accumulate (through `index_select`'s backward).
///
/// ```
/// use wengert_nn::prelude::*;
/// let emb = Embedding::<f32>::new(10, 4);
/// let tape = Tape::new();
/// let v = emb.lookup(&tape, &Tensor::new(vec![1usize, 7, 1], [3]));
/// assert_eq!(v.shape().dims(), &[3, 4]);
/// ```
pub struct Embedding<T: Float = f32> {
    /// `[num_embeddings, dim]`
    pub weight: Param<T>,
}

impl<T: Float> Embedding<T> {
    /// A table of `num` vectors of length `dim`.
    pub fn new(num: usize, dim: usize) -> Self {
        with_rng(|rng| Self::with_init(num, dim, Init::Normal(0.0, 1.0), rng))
    }

    /// A table with an explicit initialiser and generator.
    pub fn with_init(num: usize, dim: usize, init: Init, rng: &mut impl Rng) -> Self {
        Embedding { weight: Param::new(init.tensor([num, dim], rng)) }
    }

    /// The vectors for `ids` of any shape: result shape `ids.shape + [dim]`.
    #[track_caller]
    pub fn lookup<'t>(&self, tape: &'t Tape<T>, ids: &Tensor<usize>) -> Var<'t, T> {
        let dim = self.weight.value().dims()[1];
        let mut shape = ids.dims().to_vec();
        shape.push(dim);
        tape.param(&self.weight).index_select(0, ids.as_slice()).reshape(shape)
    }
}

impl<T: Float> Module<T> for Embedding<T> {
    /// Reads `x`'s values as indices (they must be whole numbers).
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let v = x.value();
        let ids = v.map(|f| {
            let i = f.to_f64();
            if i < 0.0 || i.fract() != 0.0 {
                panic!("wengert: Embedding: index {i} is not a whole non-negative number");
            }
            i as usize
        });
        self.lookup(x.tape(), &ids)
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        f(format!("{prefix}weight"), &self.weight);
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        f(format!("{prefix}weight"), &mut self.weight);
    }
}
