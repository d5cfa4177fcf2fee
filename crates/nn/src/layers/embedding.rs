//! A lookup table of learned vectors.

use rand::Rng;
use wengert_core::{Float, Param, Tape, Tensor, Var};

use crate::init::{with_rng, Init};
use crate::module::Module;

/// Row `i` of a `[num_embeddings, dim]` table for each index `i`; initialised N(0, 1) as in
/// PyTorch. Gradients of repeated indices accumulate (through `index_select`'s backward).
/// With a padding index ([`Embedding::with_padding_idx`], PyTorch's `padding_idx`) that row
/// starts at zero and never receives a gradient, though lookups still return it.
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
    /// The row that gets no gradient (default none).
    pub padding_idx: Option<usize>,
}

impl<T: Float> Embedding<T> {
    /// A table of `num` vectors of length `dim`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let emb = Embedding::<f64>::new(1000, 10);
    /// assert_eq!(emb.weight.value().dims(), &[1000, 10]);
    /// assert_eq!(emb.padding_idx, None);
    /// let w = emb.weight.value().to_vec(); // N(0, 1): sample mean near 0, variance near 1
    /// let mean = w.iter().sum::<f64>() / w.len() as f64;
    /// let var = w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / w.len() as f64;
    /// assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.1);
    /// ```
    pub fn new(num: usize, dim: usize) -> Self {
        with_rng(|rng| Self::with_init(num, dim, Init::Normal(0.0, 1.0), rng))
    }

    /// A table with an explicit initialiser and generator.
    ///
    /// ```
    /// use rand::{rngs::StdRng, SeedableRng};
    /// use wengert_nn::{init::Init, prelude::*};
    /// let emb = Embedding::<f32>::with_init(3, 2, Init::Constant(0.5), &mut StdRng::seed_from_u64(0));
    /// assert_eq!(emb.weight.value().to_vec(), [0.5; 6]);
    /// let a = Embedding::<f32>::with_init(3, 2, Init::Uniform(-1.0, 1.0), &mut StdRng::seed_from_u64(9));
    /// let b = Embedding::<f32>::with_init(3, 2, Init::Uniform(-1.0, 1.0), &mut StdRng::seed_from_u64(9));
    /// assert_eq!(a.weight.value(), b.weight.value()); // the generator decides
    /// ```
    pub fn with_init(num: usize, dim: usize, init: Init, rng: &mut impl Rng) -> Self {
        Embedding { weight: Param::new(init.tensor([num, dim], rng)), padding_idx: None }
    }

    /// Makes row `idx` the padding row: set to zeros now, returned by lookups as it is, and
    /// given no gradient (so no optimizer moves it), as PyTorch's `padding_idx`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let emb = Embedding::<f64>::new(5, 3).with_padding_idx(0);
    /// let tape = Tape::new();
    /// let table = tape.param(&emb.weight);
    /// let v = emb.lookup(&tape, &Tensor::new(vec![0usize, 2, 0], [3]));
    /// assert_eq!(v.value().to_vec()[..3], [0.0; 3]);
    /// let g = v.sum().backward();
    /// assert_eq!(g.wrt(table).to_vec()[..3], [0.0; 3]); // row 0: no gradient
    /// assert_eq!(g.wrt(table).to_vec()[6..9], [1.0; 3]); // row 2: one lookup
    /// ```
    #[track_caller]
    pub fn with_padding_idx(mut self, idx: usize) -> Self {
        let (num, dim) = (self.weight.value().dims()[0], self.weight.value().dims()[1]);
        if idx >= num {
            panic!("wengert: Embedding({num}, {dim}): padding_idx {idx} is not below {num}");
        }
        let mut w = self.weight.value().clone();
        w.data_mut()[idx * dim..(idx + 1) * dim].iter_mut().for_each(|v| *v = T::ZERO);
        self.weight.set(w).expect("same shape");
        self.padding_idx = Some(idx);
        self
    }

    /// The vectors for `ids` of any shape: result shape `ids.shape + [dim]`.
    ///
    /// ```
    /// use wengert_nn::{init::Init, prelude::*};
    /// use rand::{rngs::StdRng, SeedableRng};
    /// let mut emb = Embedding::<f64>::with_init(3, 2, Init::Zeros, &mut StdRng::seed_from_u64(0));
    /// emb.weight.set(Tensor::new(vec![0.0, 1.0, 10.0, 11.0, 20.0, 21.0], [3, 2])).unwrap();
    /// let tape = Tape::new();
    /// let v = emb.lookup(&tape, &Tensor::new(vec![2usize, 0, 2, 1], [2, 2])); // ids [2, 2] -> [2, 2, 2]
    /// assert_eq!(v.shape().dims(), &[2, 2, 2]);
    /// assert_eq!(v.value().to_vec(), [20.0, 21.0, 0.0, 1.0, 20.0, 21.0, 10.0, 11.0]);
    /// let g = v.sum().backward().param(&emb.weight).unwrap().to_vec();
    /// assert_eq!(g, [1.0, 1.0, 1.0, 1.0, 2.0, 2.0]); // row 2 looked up twice: its gradients add up
    /// ```
    #[track_caller]
    pub fn lookup<'t>(&self, tape: &'t Tape<T>, ids: &Tensor<usize>) -> Var<'t, T> {
        let dim = self.weight.value().dims()[1];
        let mut shape = ids.dims().to_vec();
        shape.push(dim);
        let rows = tape.param(&self.weight).index_select(0, ids.as_slice());
        let rows = match self.padding_idx {
            // padding lookups keep their value but pass no gradient: rows·keep + value·(1 − keep)
            Some(pad) if ids.as_slice().contains(&pad) => {
                let keep = |i: usize| if i == pad { T::ZERO } else { T::ONE };
                let keep = Tensor::new(ids.as_slice().iter().map(|&i| keep(i)).collect(), [ids.numel(), 1]);
                let mut held = rows.value();
                for (row, &i) in held.data_mut().chunks_exact_mut(dim.max(1)).zip(ids.as_slice()) {
                    if i != pad {
                        row.iter_mut().for_each(|v| *v = T::ZERO);
                    }
                }
                rows * tape.constant(keep) + tape.constant(held)
            }
            _ => rows,
        };
        rows.reshape(shape)
    }
}

/// Float values read as indices (token ids, class ids) for the modules that take them as a
/// float tensor; a value that is negative or not whole panics naming `op`, never truncated.
#[track_caller]
pub(crate) fn indices_of<T: Float>(op: &str, x: &Tensor<T>) -> Tensor<usize> {
    if let Some(&bad) = x.as_slice().iter().find(|f| f.to_f64() < 0.0 || f.to_f64().fract() != 0.0) {
        panic!("wengert: {op}: index {} is not a whole non-negative number", bad.to_f64());
    }
    x.map(|f| f.to_f64() as usize)
}

impl<T: Float> Module<T> for Embedding<T> {
    /// Reads `x`'s values as indices (they must be whole numbers).
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.lookup(x.tape(), &indices_of("Embedding", &x.value()))
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        f(format!("{prefix}weight"), &self.weight);
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        f(format!("{prefix}weight"), &mut self.weight);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With a padding index, lookups return the stored row (even a loaded non-zero one) and
    /// every gradient equals the plain table's except the padding row's, which is zero.
    #[test]
    fn padding_row_is_returned_but_gets_no_gradient() {
        let mut plain = Embedding::<f64>::new(6, 3);
        let w = Tensor::from_fn([6, 3], |i| (i[0] * 3 + i[1]) as f64 * 0.1 - 0.4);
        plain.weight.set(w.clone()).unwrap();
        let mut padded = Embedding::<f64>::new(6, 3).with_padding_idx(4);
        assert_eq!(padded.weight.value().to_vec()[12..15], [0.0; 3]);
        padded.weight.set(w).unwrap(); // a checkpoint whose padding row is not zero
        let ids = Tensor::new(vec![4usize, 1, 4, 5, 0, 1], [2, 3]);
        let (ta, tb) = (Tape::new(), Tape::new());
        let (a, b) = (plain.lookup(&ta, &ids), padded.lookup(&tb, &ids));
        assert_eq!(a.value(), b.value());
        let probe = Tensor::from_fn([2, 3, 3], |i| 1.0 + (i[0] * 9 + i[1] * 3 + i[2]) as f64);
        let ga = (a * ta.constant(probe.clone())).sum().backward().wrt(ta.param(&plain.weight)).to_vec();
        let gb = (b * tb.constant(probe)).sum().backward().wrt(tb.param(&padded.weight)).to_vec();
        for row in 0..6 {
            let (ra, rb) = (&ga[row * 3..row * 3 + 3], &gb[row * 3..row * 3 + 3]);
            if row == 4 {
                assert!(ra.iter().all(|&g| g != 0.0) && rb == [0.0; 3], "{ra:?} {rb:?}");
            } else {
                assert_eq!(ra, rb, "row {row}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "Embedding(6, 3): padding_idx 6 is not below 6")]
    fn padding_index_must_be_a_row() {
        let _ = Embedding::<f32>::new(6, 3).with_padding_idx(6);
    }

    #[test]
    fn float_indices_are_read_whole_or_rejected() {
        let ids = indices_of("op", &Tensor::from_slice(&[0.0f32, 3.0, 7.0]));
        assert_eq!(ids.as_slice(), [0, 3, 7]);
        for bad in [2.5f64, -1.0, f64::NAN] {
            let err = std::panic::catch_unwind(|| indices_of("BERT", &Tensor::from_slice(&[1.0, bad]))).unwrap_err();
            let msg = err.downcast_ref::<String>().unwrap();
            assert!(msg.starts_with("wengert: BERT: index") && msg.ends_with("is not a whole non-negative number"), "{msg}");
        }
    }
}
