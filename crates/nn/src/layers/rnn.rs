//! Recurrent layers: the Elman RNN, the LSTM and the GRU, multi-layer and batch-first, with
//! PyTorch's equations, gate order, parameter names and initialisation.
//!
//! All three run the same way. For each layer the input projection `x·W_ihᵀ` of every time
//! step is one matmul (`[seq·batch, in]` times `[G·H, in]`ᵀ, `G` gates of width `H`), so the
//! loop over time only adds `h·W_hhᵀ` and the elementwise cell. Gates are split with
//! [`Var::narrow`] on the last axis and the steps gathered with [`Var::stack`]; every gradient
//! comes from the tape.
//!
//! | layer | gates (order of the rows of `weight_ih_l{k}`) | PyTorch |
//! |---|---|---|
//! | [`Rnn`] | 1 | `nn.RNN(batch_first=True)` |
//! | [`Lstm`] | 4: i, f, g, o | `nn.LSTM(batch_first=True)` |
//! | [`Gru`] | 3: r, z, n | `nn.GRU(batch_first=True)` |
//!
//! With `bidirectional` (PyTorch's option of the same name) each layer also runs in reverse
//! time with weights of its own (`weight_ih_l{k}_reverse`, ...): outputs are `[batch, seq, 2H]`
//! (the forward states, then the reverse ones) and states `[num_layers·2, batch, H]` (layer 0
//! forward, layer 0 reverse, layer 1 forward, ...); layers above the first read `2H` features.
//! Below, `D` is 2 for a bidirectional stack and 1 otherwise. `dropout` zeroes each layer's
//! outputs but the last with that probability, in training mode only.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wengert_core::{Float, Param, Tensor, Transpose, Var};

use crate::init::{with_rng, Init};
use crate::module::Module;

/// The activation of an Elman [`Rnn`] (PyTorch's `nonlinearity`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Nonlinearity {
    /// tanh (PyTorch's default `'tanh'`)
    #[default]
    Tanh,
    /// max(·, 0) (`'relu'`)
    Relu,
}

impl Nonlinearity {
    fn apply<'t, T: Float>(self, x: Var<'t, T>) -> Var<'t, T> {
        match self {
            Nonlinearity::Tanh => x.tanh(),
            Nonlinearity::Relu => x.relu(),
        }
    }
}

/// Options for [`Rnn`], defaults as PyTorch's `nn.RNN`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RnnConfig {
    /// Stacked layers; layer `k > 0` reads the hidden states of layer `k - 1` (default 1).
    pub num_layers: usize,
    /// Use the biases `b_ih` and `b_hh` (default `true`).
    pub bias: bool,
    /// The activation (default [`Nonlinearity::Tanh`]).
    pub nonlinearity: Nonlinearity,
    /// A second, reverse-time direction per layer, outputs concatenated (default `false`).
    pub bidirectional: bool,
    /// Dropout on each layer's outputs except the last, in training, in `[0, 1)` (default 0).
    pub dropout: f64,
}

impl Default for RnnConfig {
    fn default() -> Self {
        RnnConfig { num_layers: 1, bias: true, nonlinearity: Nonlinearity::Tanh, bidirectional: false, dropout: 0.0 }
    }
}

/// Options for [`Lstm`], defaults as PyTorch's `nn.LSTM`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmConfig {
    /// Stacked layers (default 1).
    pub num_layers: usize,
    /// Use the biases `b_ih` and `b_hh` (default `true`).
    pub bias: bool,
    /// A second, reverse-time direction per layer, outputs concatenated (default `false`).
    pub bidirectional: bool,
    /// Dropout on each layer's outputs except the last, in training, in `[0, 1)` (default 0).
    pub dropout: f64,
}

impl Default for LstmConfig {
    fn default() -> Self {
        LstmConfig { num_layers: 1, bias: true, bidirectional: false, dropout: 0.0 }
    }
}

/// Options for [`Gru`], defaults as PyTorch's `nn.GRU`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GruConfig {
    /// Stacked layers (default 1).
    pub num_layers: usize,
    /// Use the biases `b_ih` and `b_hh` (default `true`).
    pub bias: bool,
    /// A second, reverse-time direction per layer, outputs concatenated (default `false`).
    pub bidirectional: bool,
    /// Dropout on each layer's outputs except the last, in training, in `[0, 1)` (default 0).
    pub dropout: f64,
}

impl Default for GruConfig {
    fn default() -> Self {
        GruConfig { num_layers: 1, bias: true, bidirectional: false, dropout: 0.0 }
    }
}

/// The parameters of one layer of a recurrent stack, for `G` gates of width `H`
/// (`G` = 1 for [`Rnn`], 4 for [`Lstm`], 3 for [`Gru`]), stacked gate by gate in PyTorch's
/// order. Layer `k` of a stack names them `weight_ih_l{k}`, `weight_hh_l{k}`, `bias_ih_l{k}`,
/// `bias_hh_l{k}`, as PyTorch's `state_dict` does.
pub struct RecurrentWeights<T: Float = f32> {
    /// `[G·H, in]`, where `in` is the input size for layer 0 and `H` above it.
    pub weight_ih: Param<T>,
    /// `[G·H, H]`
    pub weight_hh: Param<T>,
    /// `[G·H]` (absent with `bias: false`)
    pub bias_ih: Option<Param<T>>,
    /// `[G·H]` (absent with `bias: false`)
    pub bias_hh: Option<Param<T>>,
}

impl<T: Float> RecurrentWeights<T> {
    /// Draws the four tensors in PyTorch's order, each U(-1/√H, 1/√H).
    fn new(gates: usize, input: usize, hidden: usize, bias: bool, rng: &mut impl Rng) -> Self {
        let k = 1.0 / (hidden as f64).sqrt();
        let init = Init::Uniform(-k, k);
        let weight_ih = Param::new(init.tensor([gates * hidden, input], rng));
        let weight_hh = Param::new(init.tensor([gates * hidden, hidden], rng));
        let bias_ih = bias.then(|| Param::new(init.tensor([gates * hidden], rng)));
        let bias_hh = bias.then(|| Param::new(init.tensor([gates * hidden], rng)));
        RecurrentWeights { weight_ih, weight_hh, bias_ih, bias_hh }
    }

    /// `k` is `"{layer}"` or `"{layer}_reverse"`, as PyTorch's suffixes.
    fn visit<'a>(&'a self, prefix: &str, k: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        f(format!("{prefix}weight_ih_l{k}"), &self.weight_ih);
        f(format!("{prefix}weight_hh_l{k}"), &self.weight_hh);
        if let Some(b) = &self.bias_ih {
            f(format!("{prefix}bias_ih_l{k}"), b);
        }
        if let Some(b) = &self.bias_hh {
            f(format!("{prefix}bias_hh_l{k}"), b);
        }
    }

    fn visit_mut<'a>(&'a mut self, prefix: &str, k: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        f(format!("{prefix}weight_ih_l{k}"), &mut self.weight_ih);
        f(format!("{prefix}weight_hh_l{k}"), &mut self.weight_hh);
        if let Some(b) = &mut self.bias_ih {
            f(format!("{prefix}bias_ih_l{k}"), b);
        }
        if let Some(b) = &mut self.bias_hh {
            f(format!("{prefix}bias_hh_l{k}"), b);
        }
    }
}

/// Which recurrence a stack runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Rnn(Nonlinearity),
    Lstm,
    Gru,
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Rnn(_) => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cell::Rnn(_) => "Rnn",
            Cell::Lstm => "Lstm",
            Cell::Gru => "Gru",
        }
    }
}

/// Directions and inter-layer dropout of a stack (PyTorch's `bidirectional`, `dropout`).
struct StackOptions {
    /// 1, or 2 when bidirectional
    directions: usize,
    dropout: f64,
    /// draws the dropout masks (seeded from the constructor's generator)
    rng: RefCell<StdRng>,
    training: bool,
}

impl StackOptions {
    #[track_caller]
    fn new(cell: Cell, bidirectional: bool, dropout: f64, rng: &mut impl Rng) -> Self {
        if !(0.0..1.0).contains(&dropout) {
            panic!("wengert: {}: dropout must be in [0, 1), got {dropout}", cell.name());
        }
        StackOptions { directions: if bidirectional { 2 } else { 1 }, dropout, rng: RefCell::new(StdRng::seed_from_u64(rng.gen())), training: true }
    }

    /// The dropout between layers, when it applies (training, p > 0).
    fn active_dropout(&self) -> Option<(f64, &RefCell<StdRng>)> {
        (self.training && self.dropout > 0.0).then_some((self.dropout, &self.rng))
    }
}

/// Builds `num_layers` layers of `cell`, each with `directions` weight sets (layer k direction
/// d at index k·directions + d; above layer 0 the input is the directions' outputs side by
/// side), panicking (as PyTorch raises) on a zero size.
#[track_caller]
fn build<T: Float>(cell: Cell, input: usize, hidden: usize, num_layers: usize, directions: usize, bias: bool, rng: &mut impl Rng) -> Vec<RecurrentWeights<T>> {
    if hidden == 0 || num_layers == 0 {
        panic!(
            "wengert: {}(input {input}, hidden {hidden}): hidden_size and num_layers must be at least 1 (got num_layers {num_layers})",
            cell.name()
        );
    }
    (0..num_layers * directions)
        .map(|i| RecurrentWeights::new(cell.gates(), if i < directions { input } else { directions * hidden }, hidden, bias, rng))
        .collect()
}

/// `(input_size, hidden_size)` of a stack.
fn sizes<T: Float>(cell: Cell, layers: &[RecurrentWeights<T>]) -> (usize, usize) {
    let first = layers.first().unwrap_or_else(|| panic!("wengert: {}: has no layers", cell.name()));
    (first.weight_ih.value().dims()[1], first.weight_hh.value().dims()[1])
}

/// Runs a stack over `x [batch, seq, in]` from the initial states `h0` (and `c0` for the LSTM),
/// each `[num_layers·D, batch, H]` (zeros when `None`; D = 2 directions when bidirectional).
/// Returns the last layer's hidden states `[batch, seq, D·H]` (the reverse direction's in the
/// second half), `h_n [num_layers·D, batch, H]` and, for the LSTM, `c_n`, in PyTorch's order
/// (layer 0 forward, layer 0 reverse, layer 1 forward, ...).
#[track_caller]
fn run<'t, T: Float>(
    cell: Cell,
    layers: &[RecurrentWeights<T>],
    opts: &StackOptions,
    x: Var<'t, T>,
    h0: Option<Var<'t, T>>,
    c0: Option<Var<'t, T>>,
) -> (Var<'t, T>, Var<'t, T>, Option<Var<'t, T>>) {
    let (input_size, hs) = sizes(cell, layers);
    let name = || format!("wengert: {}(input {input_size}, hidden {hs})", cell.name());
    let shape = x.shape();
    let (b, s) = match shape.dims() {
        &[b, s, i] if i == input_size => (b, s),
        _ => panic!("{}: input of shape {shape} must be [batch, seq, {input_size}]", name()),
    };
    if s == 0 {
        panic!("{}: input of shape {shape} has no time steps", name());
    }
    let dirs = opts.directions;
    let (num_layers, states) = (layers.len() / dirs, layers.len());
    for (what, state) in [("h0", h0), ("c0", c0)] {
        if let Some(v) = state {
            let got = v.shape();
            if got.dims() != [states, b, hs] {
                let rows = if dirs == 2 { "num_layers·2" } else { "num_layers" };
                panic!("{}: {what} of shape {got} must be [{rows}, batch, hidden] = [{states}, {b}, {hs}]", name());
            }
        }
    }

    let tape = x.tape();
    let zeros = || tape.constant(Tensor::zeros([b, hs]));
    let initial = |state: Option<Var<'t, T>>, k: usize| match state {
        Some(v) => v.narrow(0, k, 1).reshape([b, hs]),
        None => zeros(),
    };
    // Time-major rows: row t·b + j of `input` is sample j at step t, so a step is a
    // contiguous block of rows.
    let mut input = x.permute(&[1, 0, 2]).reshape([s * b, input_size]);
    let (mut h_n, mut c_n) = (Vec::with_capacity(states), Vec::with_capacity(states));
    let mut output = None;
    for k in 0..num_layers {
        let mut per_direction: Vec<Vec<Var<'t, T>>> = Vec::with_capacity(dirs);
        for d in 0..dirs {
            let index = k * dirs + d;
            let layer = &layers[index];
            let w_ih = tape.param(&layer.weight_ih);
            let w_hh = tape.param(&layer.weight_hh);
            let b_ih = layer.bias_ih.as_ref().map(|p| tape.param(p));
            let b_hh = layer.bias_hh.as_ref().map(|p| tape.param(p));
            // x·W_ihᵀ for all steps at once, plus the biases that sit outside the cell's products
            // (both for RNN and LSTM; only b_ih for the GRU, whose b_hn is scaled by r).
            let xw = input.matmul_t(w_ih, Transpose::NT);
            let outside = match cell {
                Cell::Gru => b_ih,
                _ => [b_ih, b_hh].into_iter().flatten().reduce(|a, c| a + c),
            };
            let xw = outside.map_or(xw, |bias| xw + bias);

            let mut h = initial(h0, index);
            let mut c = initial(c0, index);
            let mut steps = Vec::with_capacity(s);
            // the reverse direction reads the steps last to first
            let order: Box<dyn Iterator<Item = usize>> = if d == 0 { Box::new(0..s) } else { Box::new((0..s).rev()) };
            for t in order {
                let xt = xw.narrow(0, t * b, b); // [b, G·H]
                let hw = h.matmul_t(w_hh, Transpose::NT); // [b, G·H]
                match cell {
                    Cell::Rnn(act) => h = act.apply(xt + hw),
                    Cell::Lstm => {
                        let pre = xt + hw;
                        let gate = |g: usize| pre.narrow(1, g * hs, hs);
                        let (i, f, g, o) = (gate(0).sigmoid(), gate(1).sigmoid(), gate(2).tanh(), gate(3).sigmoid());
                        c = f * c + i * g;
                        h = o * c.tanh();
                    }
                    Cell::Gru => {
                        let hw = b_hh.map_or(hw, |bias| hw + bias);
                        let rz = (xt.narrow(1, 0, 2 * hs) + hw.narrow(1, 0, 2 * hs)).sigmoid();
                        let (r, z) = (rz.narrow(1, 0, hs), rz.narrow(1, hs, hs));
                        let n = (xt.narrow(1, 2 * hs, hs) + r * hw.narrow(1, 2 * hs, hs)).tanh();
                        // (1 - z)·n + z·h, written with one product fewer
                        h = n + z * (h - n);
                    }
                }
                steps.push(h);
            }
            if d == 1 {
                steps.reverse(); // back in time order
            }
            h_n.push(h);
            c_n.push(c);
            per_direction.push(steps);
        }
        // step t of the layer's output: the directions' states side by side, [b, D·H]
        let steps: Vec<Var<'t, T>> = if dirs == 1 {
            per_direction.remove(0)
        } else {
            (0..s).map(|t| Var::concat(&[per_direction[0][t], per_direction[1][t]], 1)).collect()
        };
        if k + 1 < num_layers {
            input = Var::concat(&steps, 0); // [s·b, D·H], time-major again
            if let Some((p, rng)) = opts.active_dropout() {
                let mask = crate::layers::dropout::dropout_mask(tape, &input.shape(), p, &mut rng.borrow_mut());
                input = input * tape.constant(mask);
            }
        } else {
            output = Some(Var::stack(&steps, 1)); // [b, s, D·H]
        }
    }
    let output = output.expect("a stack has at least one layer");
    let c_n = (cell == Cell::Lstm).then(|| Var::stack(&c_n, 0));
    (output, Var::stack(&h_n, 0), c_n)
}

/// PyTorch's suffix of weight set `i`: `"{layer}"`, or `"{layer}_reverse"` for the reverse direction.
fn suffix(i: usize, directions: usize) -> String {
    let k = i / directions;
    if i % directions == 1 {
        format!("{k}_reverse")
    } else {
        k.to_string()
    }
}

fn visit_layers<'a, T: Float>(layers: &'a [RecurrentWeights<T>], directions: usize, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
    for (i, l) in layers.iter().enumerate() {
        l.visit(prefix, &suffix(i, directions), f);
    }
}

fn visit_layers_mut<'a, T: Float>(layers: &'a mut [RecurrentWeights<T>], directions: usize, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
    for (i, l) in layers.iter_mut().enumerate() {
        l.visit_mut(prefix, &suffix(i, directions), f);
    }
}

// ---------------------------------------------------------------- Elman RNN

/// Elman recurrent network (PyTorch `nn.RNN` with `batch_first=True`). For each layer and
/// step t:
///
/// `hₜ = act(xₜ·W_ihᵀ + b_ih + hₜ₋₁·W_hhᵀ + b_hh)`, `act` = tanh or ReLU,
///
/// where `xₜ` is the input at step t for layer 0 and the previous layer's `hₜ` above it.
/// Input `[batch, seq, input_size]`; [`Rnn::forward_seq`] returns the last layer's `hₜ` for
/// all steps, `[batch, seq, H]`, and the final state of every layer, `h_n [num_layers·D, batch, H]`.
/// Parameters per layer k: `weight_ih_l{k} [H, in]`, `weight_hh_l{k} [H, H]`,
/// `bias_ih_l{k} [H]`, `bias_hh_l{k} [H]`, all U(-1/√H, 1/√H) as in PyTorch.
///
/// ```
/// use wengert_nn::prelude::*;
/// let rnn = Rnn::<f32>::new(3, 8);
/// let tape = Tape::new();
/// let (out, h_n) = rnn.forward_seq(tape.constant(Tensor::ones([2, 5, 3])), None);
/// assert_eq!(out.shape().dims(), &[2, 5, 8]);
/// assert_eq!(h_n.shape().dims(), &[1, 2, 8]);
/// ```
pub struct Rnn<T: Float = f32> {
    /// One weight set per layer and direction, bottom first (layer k, direction d at k·D + d).
    pub layers: Vec<RecurrentWeights<T>>,
    /// The activation.
    pub nonlinearity: Nonlinearity,
    opts: StackOptions,
}

impl<T: Float> Rnn<T> {
    /// One tanh layer with PyTorch's initialisation, drawn from the per-thread generator
    /// ([`crate::init::manual_seed`] makes it repeatable).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let m = Rnn::<f32>::new(3, 8);
    /// assert_eq!((m.input_size(), m.hidden_size(), m.num_layers(), m.bidirectional()), (3, 8, 1, false));
    /// assert_eq!(m.num_params(), 8 * 3 + 8 * 8 + 2 * 8); // weight_ih, weight_hh, bias_ih, bias_hh
    /// ```
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        with_rng(|rng| Self::with_config(input_size, hidden_size, RnnConfig::default(), rng))
    }

    /// A stack with explicit options and generator. Panics if `hidden_size` or
    /// `cfg.num_layers` is 0.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let cfg = RnnConfig { num_layers: 2, nonlinearity: Nonlinearity::Relu, bidirectional: true, ..Default::default() };
    /// let m = Rnn::<f32>::with_config(3, 8, cfg, &mut rng);
    /// assert_eq!(m.layers.len(), 4); // 2 layers x 2 directions
    /// assert_eq!(m.named_params()[4].0, "weight_ih_l0_reverse"); // after layer 0's 4 forward tensors
    /// assert_eq!(m.layers[2].weight_ih.value().dims(), &[8, 16]); // layer 1 reads both directions
    /// ```
    #[track_caller]
    pub fn with_config(input_size: usize, hidden_size: usize, cfg: RnnConfig, rng: &mut impl Rng) -> Self {
        let cell = Cell::Rnn(cfg.nonlinearity);
        let opts = StackOptions::new(cell, cfg.bidirectional, cfg.dropout, rng);
        let layers = build(cell, input_size, hidden_size, cfg.num_layers, opts.directions, cfg.bias, rng);
        Rnn { layers, nonlinearity: cfg.nonlinearity, opts }
    }

    /// Features per input step.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(Rnn::<f32>::new(3, 8).input_size(), 3);
    /// ```
    pub fn input_size(&self) -> usize {
        sizes(Cell::Rnn(self.nonlinearity), &self.layers).0
    }

    /// Width H of the hidden state.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(Rnn::<f32>::new(3, 8).hidden_size(), 8);
    /// ```
    pub fn hidden_size(&self) -> usize {
        sizes(Cell::Rnn(self.nonlinearity), &self.layers).1
    }

    /// Stacked layers.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let m = Rnn::<f32>::with_config(3, 8, RnnConfig { num_layers: 3, bidirectional: true, ..Default::default() }, &mut rng);
    /// assert_eq!((m.num_layers(), m.layers.len()), (3, 6));
    /// ```
    pub fn num_layers(&self) -> usize {
        self.layers.len() / self.opts.directions
    }

    /// Whether each layer also runs in reverse time (output width 2H).
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let m = Rnn::<f32>::with_config(3, 8, RnnConfig { bidirectional: true, ..Default::default() }, &mut rng);
    /// assert!(m.bidirectional());
    /// let tape = Tape::new();
    /// let (out, h_n) = m.forward_seq(tape.constant(Tensor::ones([2, 5, 3])), None);
    /// assert_eq!((out.shape().dims(), h_n.shape().dims()), (&[2, 5, 16][..], &[2, 2, 8][..]));
    /// ```
    pub fn bidirectional(&self) -> bool {
        self.opts.directions == 2
    }

    /// Runs the whole sequence `x [batch, seq, input_size]` from `h0 [num_layers·D, batch, H]`
    /// (zeros if `None`). Returns `(output [batch, seq, D·H], h_n [num_layers·D, batch, H])`: the
    /// last layer's state at every step, and every layer's state after the last step.
    ///
    /// Panics, naming the layer and both shapes, if `x` or `h0` has the wrong shape.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let m = Rnn::<f64>::new(3, 8);
    /// let tape = Tape::new();
    /// let h0 = tape.constant(Tensor::zeros([1, 2, 8]));
    /// let (out, h_n) = m.forward_seq(tape.constant(Tensor::ones([2, 5, 3])), Some(h0));
    /// assert_eq!((out.shape().dims(), h_n.shape().dims()), (&[2, 5, 8][..], &[1, 2, 8][..]));
    /// assert_eq!(h_n.value().reshape([2, 8]), out.value().narrow(1, 4, 1).reshape([2, 8])); // h_n is the last step
    /// ```
    #[track_caller]
    pub fn forward_seq<'t>(&self, x: Var<'t, T>, h0: Option<Var<'t, T>>) -> (Var<'t, T>, Var<'t, T>) {
        let (out, h_n, _) = run(Cell::Rnn(self.nonlinearity), &self.layers, &self.opts, x, h0, None);
        (out, h_n)
    }
}

impl<T: Float> Module<T> for Rnn<T> {
    /// The output of [`Rnn::forward_seq`] from a zero state: `[batch, seq, H]`.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_seq(x, None).0
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        visit_layers(&self.layers, self.opts.directions, prefix, f)
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        visit_layers_mut(&mut self.layers, self.opts.directions, prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        self.opts.training = training;
    }
}

// ---------------------------------------------------------------- LSTM

/// Long short-term memory (PyTorch `nn.LSTM` with `batch_first=True`). For each layer and
/// step t, with σ the logistic sigmoid and ⊙ the elementwise product:
///
/// ```text
/// iₜ = σ(xₜ·W_iiᵀ + b_ii + hₜ₋₁·W_hiᵀ + b_hi)        input gate
/// fₜ = σ(xₜ·W_ifᵀ + b_if + hₜ₋₁·W_hfᵀ + b_hf)        forget gate
/// gₜ = tanh(xₜ·W_igᵀ + b_ig + hₜ₋₁·W_hgᵀ + b_hg)     cell candidate
/// oₜ = σ(xₜ·W_ioᵀ + b_io + hₜ₋₁·W_hoᵀ + b_ho)        output gate
/// cₜ = fₜ ⊙ cₜ₋₁ + iₜ ⊙ gₜ
/// hₜ = oₜ ⊙ tanh(cₜ)
/// ```
///
/// The four gate matrices are stacked in that order (i, f, g, o) into
/// `weight_ih_l{k} = [W_ii; W_if; W_ig; W_io]` of shape `[4H, in]`, and likewise
/// `weight_hh_l{k} [4H, H]`, `bias_ih_l{k} [4H]`, `bias_hh_l{k} [4H]`; all U(-1/√H, 1/√H).
/// Input `[batch, seq, input_size]`; [`Lstm::forward_seq`] returns the last layer's `hₜ` for all
/// steps, `[batch, seq, H]`, and `(h_n, c_n)`, each `[num_layers·D, batch, H]`.
///
/// ```
/// use rand::SeedableRng;
/// use wengert_nn::prelude::*;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let lstm = Lstm::<f32>::with_config(3, 8, LstmConfig { num_layers: 2, ..Default::default() }, &mut rng);
/// let tape = Tape::new();
/// let (out, (h_n, c_n)) = lstm.forward_seq(tape.constant(Tensor::ones([4, 6, 3])), None);
/// assert_eq!(out.shape().dims(), &[4, 6, 8]);
/// assert_eq!((h_n.shape().dims(), c_n.shape().dims()), (&[2, 4, 8][..], &[2, 4, 8][..]));
/// assert_eq!(lstm.named_params()[4].0, "weight_ih_l1");
/// assert_eq!(lstm.named_params()[4].1.value().dims(), &[32, 8]);
/// ```
pub struct Lstm<T: Float = f32> {
    /// One weight set per layer and direction, bottom first (layer k, direction d at k·D + d).
    pub layers: Vec<RecurrentWeights<T>>,
    opts: StackOptions,
}

impl<T: Float> Lstm<T> {
    /// One layer with PyTorch's initialisation, drawn from the per-thread generator
    /// ([`crate::init::manual_seed`] makes it repeatable).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let m = Lstm::<f32>::new(3, 8);
    /// assert_eq!((m.input_size(), m.hidden_size(), m.num_layers(), m.bidirectional()), (3, 8, 1, false));
    /// assert_eq!(m.num_params(), 32 * 3 + 32 * 8 + 2 * 32); // weight_ih, weight_hh, bias_ih, bias_hh
    /// ```
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        with_rng(|rng| Self::with_config(input_size, hidden_size, LstmConfig::default(), rng))
    }

    /// A stack with explicit options and generator. Panics if `hidden_size` or
    /// `cfg.num_layers` is 0.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let cfg = LstmConfig { num_layers: 2, bidirectional: true, ..Default::default() };
    /// let m = Lstm::<f32>::with_config(3, 8, cfg, &mut rng);
    /// assert_eq!(m.layers.len(), 4); // 2 layers x 2 directions
    /// assert_eq!(m.named_params()[4].0, "weight_ih_l0_reverse"); // after layer 0's 4 forward tensors
    /// assert_eq!(m.layers[2].weight_ih.value().dims(), &[32, 16]); // layer 1 reads both directions
    /// ```
    #[track_caller]
    pub fn with_config(input_size: usize, hidden_size: usize, cfg: LstmConfig, rng: &mut impl Rng) -> Self {
        let opts = StackOptions::new(Cell::Lstm, cfg.bidirectional, cfg.dropout, rng);
        let layers = build(Cell::Lstm, input_size, hidden_size, cfg.num_layers, opts.directions, cfg.bias, rng);
        Lstm { layers, opts }
    }

    /// Features per input step.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(Lstm::<f32>::new(3, 8).input_size(), 3);
    /// ```
    pub fn input_size(&self) -> usize {
        sizes(Cell::Lstm, &self.layers).0
    }

    /// Width H of the hidden and cell states.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(Lstm::<f32>::new(3, 8).hidden_size(), 8);
    /// ```
    pub fn hidden_size(&self) -> usize {
        sizes(Cell::Lstm, &self.layers).1
    }

    /// Stacked layers.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let m = Lstm::<f32>::with_config(3, 8, LstmConfig { num_layers: 3, bidirectional: true, ..Default::default() }, &mut rng);
    /// assert_eq!((m.num_layers(), m.layers.len()), (3, 6));
    /// ```
    pub fn num_layers(&self) -> usize {
        self.layers.len() / self.opts.directions
    }

    /// Whether each layer also runs in reverse time (output width 2H).
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let m = Lstm::<f32>::with_config(3, 8, LstmConfig { bidirectional: true, ..Default::default() }, &mut rng);
    /// assert!(m.bidirectional());
    /// let tape = Tape::new();
    /// let (out, (h_n, _)) = m.forward_seq(tape.constant(Tensor::ones([2, 5, 3])), None);
    /// assert_eq!((out.shape().dims(), h_n.shape().dims()), (&[2, 5, 16][..], &[2, 2, 8][..]));
    /// ```
    pub fn bidirectional(&self) -> bool {
        self.opts.directions == 2
    }

    /// Runs the whole sequence `x [batch, seq, input_size]` from `state = (h0, c0)`, each
    /// `[num_layers·D, batch, H]` (zeros if `None`). Returns `(output [batch, seq, D·H], (h_n, c_n))`
    /// with `h_n` and `c_n` `[num_layers·D, batch, H]`: the last layer's `hₜ` at every step, and
    /// every layer's states after the last step.
    ///
    /// Panics, naming the layer and both shapes, if `x`, `h0` or `c0` has the wrong shape.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let m = Lstm::<f64>::new(3, 8);
    /// let tape = Tape::new();
    /// let (h0, c0) = (tape.constant(Tensor::zeros([1, 2, 8])), tape.constant(Tensor::zeros([1, 2, 8])));
    /// let (out, (h_n, c_n)) = m.forward_seq(tape.constant(Tensor::ones([2, 5, 3])), Some((h0, c0)));
    /// assert_eq!((out.shape().dims(), c_n.shape().dims()), (&[2, 5, 8][..], &[1, 2, 8][..]));
    /// assert_eq!(h_n.value().reshape([2, 8]), out.value().narrow(1, 4, 1).reshape([2, 8])); // h_n is the last step
    /// ```
    #[track_caller]
    #[allow(clippy::type_complexity)]
    pub fn forward_seq<'t>(&self, x: Var<'t, T>, state: Option<(Var<'t, T>, Var<'t, T>)>) -> (Var<'t, T>, (Var<'t, T>, Var<'t, T>)) {
        let (h0, c0) = state.unzip();
        let (out, h_n, c_n) = run(Cell::Lstm, &self.layers, &self.opts, x, h0, c0);
        (out, (h_n, c_n.expect("the LSTM has a cell state")))
    }
}

impl<T: Float> Module<T> for Lstm<T> {
    /// The output of [`Lstm::forward_seq`] from zero states: `[batch, seq, H]`.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_seq(x, None).0
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        visit_layers(&self.layers, self.opts.directions, prefix, f)
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        visit_layers_mut(&mut self.layers, self.opts.directions, prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        self.opts.training = training;
    }
}

// ---------------------------------------------------------------- GRU

/// Gated recurrent unit (PyTorch `nn.GRU` with `batch_first=True`). For each layer and step t:
///
/// ```text
/// rₜ = σ(xₜ·W_irᵀ + b_ir + hₜ₋₁·W_hrᵀ + b_hr)            reset gate
/// zₜ = σ(xₜ·W_izᵀ + b_iz + hₜ₋₁·W_hzᵀ + b_hz)            update gate
/// nₜ = tanh(xₜ·W_inᵀ + b_in + rₜ ⊙ (hₜ₋₁·W_hnᵀ + b_hn))  candidate
/// hₜ = (1 − zₜ) ⊙ nₜ + zₜ ⊙ hₜ₋₁
/// ```
///
/// The reset gate scales `hₜ₋₁·W_hnᵀ + b_hn` after the product, as PyTorch (and cuDNN) do.
/// The gate matrices are stacked in the order r, z, n: `weight_ih_l{k} [3H, in]`,
/// `weight_hh_l{k} [3H, H]`, `bias_ih_l{k} [3H]`, `bias_hh_l{k} [3H]`; all U(-1/√H, 1/√H).
/// Input `[batch, seq, input_size]`; [`Gru::forward_seq`] returns the last layer's `hₜ` for all
/// steps, `[batch, seq, H]`, and `h_n [num_layers·D, batch, H]`.
///
/// ```
/// use wengert_nn::prelude::*;
/// let gru = Gru::<f64>::new(2, 4);
/// let tape = Tape::new();
/// let h0 = tape.var(Tensor::zeros([1, 3, 4]));
/// let (out, h_n) = gru.forward_seq(tape.constant(Tensor::ones([3, 7, 2])), Some(h0));
/// assert_eq!(out.shape().dims(), &[3, 7, 4]);
/// // h_n of the last layer is the output's last step
/// assert_eq!(h_n.value().reshape([3, 4]), out.value().narrow(1, 6, 1).reshape([3, 4]));
/// ```
pub struct Gru<T: Float = f32> {
    /// One weight set per layer and direction, bottom first (layer k, direction d at k·D + d).
    pub layers: Vec<RecurrentWeights<T>>,
    opts: StackOptions,
}

impl<T: Float> Gru<T> {
    /// One layer with PyTorch's initialisation, drawn from the per-thread generator
    /// ([`crate::init::manual_seed`] makes it repeatable).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let m = Gru::<f32>::new(2, 4);
    /// assert_eq!((m.input_size(), m.hidden_size(), m.num_layers(), m.bidirectional()), (2, 4, 1, false));
    /// assert_eq!(m.num_params(), 12 * 2 + 12 * 4 + 2 * 12); // weight_ih, weight_hh, bias_ih, bias_hh
    /// ```
    #[track_caller]
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        with_rng(|rng| Self::with_config(input_size, hidden_size, GruConfig::default(), rng))
    }

    /// A stack with explicit options and generator. Panics if `hidden_size` or
    /// `cfg.num_layers` is 0.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let cfg = GruConfig { num_layers: 2, bidirectional: true, ..Default::default() };
    /// let m = Gru::<f32>::with_config(2, 4, cfg, &mut rng);
    /// assert_eq!(m.layers.len(), 4); // 2 layers x 2 directions
    /// assert_eq!(m.named_params()[4].0, "weight_ih_l0_reverse"); // after layer 0's 4 forward tensors
    /// assert_eq!(m.layers[2].weight_ih.value().dims(), &[12, 8]); // layer 1 reads both directions
    /// ```
    #[track_caller]
    pub fn with_config(input_size: usize, hidden_size: usize, cfg: GruConfig, rng: &mut impl Rng) -> Self {
        let opts = StackOptions::new(Cell::Gru, cfg.bidirectional, cfg.dropout, rng);
        let layers = build(Cell::Gru, input_size, hidden_size, cfg.num_layers, opts.directions, cfg.bias, rng);
        Gru { layers, opts }
    }

    /// Features per input step.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(Gru::<f32>::new(2, 4).input_size(), 2);
    /// ```
    pub fn input_size(&self) -> usize {
        sizes(Cell::Gru, &self.layers).0
    }

    /// Width H of the hidden state.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(Gru::<f32>::new(2, 4).hidden_size(), 4);
    /// ```
    pub fn hidden_size(&self) -> usize {
        sizes(Cell::Gru, &self.layers).1
    }

    /// Stacked layers.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let m = Gru::<f32>::with_config(2, 4, GruConfig { num_layers: 3, bidirectional: true, ..Default::default() }, &mut rng);
    /// assert_eq!((m.num_layers(), m.layers.len()), (3, 6));
    /// ```
    pub fn num_layers(&self) -> usize {
        self.layers.len() / self.opts.directions
    }

    /// Whether each layer also runs in reverse time (output width 2H).
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let m = Gru::<f32>::with_config(2, 4, GruConfig { bidirectional: true, ..Default::default() }, &mut rng);
    /// assert!(m.bidirectional());
    /// let tape = Tape::new();
    /// let (out, h_n) = m.forward_seq(tape.constant(Tensor::ones([2, 5, 2])), None);
    /// assert_eq!((out.shape().dims(), h_n.shape().dims()), (&[2, 5, 8][..], &[2, 2, 4][..]));
    /// ```
    pub fn bidirectional(&self) -> bool {
        self.opts.directions == 2
    }

    /// Runs the whole sequence `x [batch, seq, input_size]` from `h0 [num_layers·D, batch, H]`
    /// (zeros if `None`). Returns `(output [batch, seq, D·H], h_n [num_layers·D, batch, H])`.
    ///
    /// Panics, naming the layer and both shapes, if `x` or `h0` has the wrong shape.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let m = Gru::<f64>::new(2, 4);
    /// let tape = Tape::new();
    /// let h0 = tape.constant(Tensor::zeros([1, 2, 4]));
    /// let (out, h_n) = m.forward_seq(tape.constant(Tensor::ones([2, 5, 2])), Some(h0));
    /// assert_eq!((out.shape().dims(), h_n.shape().dims()), (&[2, 5, 4][..], &[1, 2, 4][..]));
    /// assert_eq!(h_n.value().reshape([2, 4]), out.value().narrow(1, 4, 1).reshape([2, 4])); // h_n is the last step
    /// ```
    #[track_caller]
    pub fn forward_seq<'t>(&self, x: Var<'t, T>, h0: Option<Var<'t, T>>) -> (Var<'t, T>, Var<'t, T>) {
        let (out, h_n, _) = run(Cell::Gru, &self.layers, &self.opts, x, h0, None);
        (out, h_n)
    }
}

impl<T: Float> Module<T> for Gru<T> {
    /// The output of [`Gru::forward_seq`] from a zero state: `[batch, seq, H]`.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_seq(x, None).0
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        visit_layers(&self.layers, self.opts.directions, prefix, f)
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        visit_layers_mut(&mut self.layers, self.opts.directions, prefix, f)
    }
    fn set_training(&mut self, training: bool) {
        self.opts.training = training;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use wengert_core::Tape;

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    /// One step of each cell written out with plain tensors, row by row, for comparison.
    fn reference_step(cell: Cell, l: &RecurrentWeights<f64>, x: &[f64], h: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let hs = h.len();
        let affine = |w: &Tensor<f64>, b: &Option<Param<f64>>, v: &[f64]| -> Vec<f64> {
            (0..w.dims()[0])
                .map(|r| {
                    let dot: f64 = (0..v.len()).map(|j| w.as_slice()[r * v.len() + j] * v[j]).sum();
                    dot + b.as_ref().map_or(0.0, |b| b.value().as_slice()[r])
                })
                .collect()
        };
        let (xi, hh) = (affine(l.weight_ih.value(), &l.bias_ih, x), affine(l.weight_hh.value(), &l.bias_hh, h));
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        match cell {
            Cell::Rnn(Nonlinearity::Tanh) => ((0..hs).map(|j| (xi[j] + hh[j]).tanh()).collect(), vec![]),
            Cell::Rnn(Nonlinearity::Relu) => ((0..hs).map(|j| (xi[j] + hh[j]).max(0.0)).collect(), vec![]),
            Cell::Lstm => {
                let pre = |g: usize, j: usize| xi[g * hs + j] + hh[g * hs + j];
                let c2: Vec<f64> = (0..hs).map(|j| sig(pre(1, j)) * c[j] + sig(pre(0, j)) * pre(2, j).tanh()).collect();
                ((0..hs).map(|j| sig(pre(3, j)) * c2[j].tanh()).collect(), c2)
            }
            Cell::Gru => {
                let h2 = (0..hs)
                    .map(|j| {
                        let r = sig(xi[j] + hh[j]);
                        let z = sig(xi[hs + j] + hh[hs + j]);
                        let n = (xi[2 * hs + j] + r * hh[2 * hs + j]).tanh();
                        (1.0 - z) * n + z * h[j]
                    })
                    .collect();
                (h2, vec![])
            }
        }
    }

    /// The batched, one-matmul-per-layer path agrees with a step-by-step loop per sample.
    #[test]
    fn stacks_match_a_per_sample_loop() {
        let (b, s, input, hs, nl) = (3, 4, 2, 5, 2);
        let x = Tensor::<f64>::uniform([b, s, input], -1.0, 1.0, &mut rng());
        for cell in [Cell::Rnn(Nonlinearity::Tanh), Cell::Rnn(Nonlinearity::Relu), Cell::Lstm, Cell::Gru] {
            let layers = build::<f64>(cell, input, hs, nl, 1, true, &mut rng());
            let opts = StackOptions::new(cell, false, 0.0, &mut rng());
            let tape = Tape::new();
            let (out, h_n, c_n) = run(cell, &layers, &opts, tape.constant(x.clone()), None, None);
            let (out, h_n) = (out.value(), h_n.value());
            for j in 0..b {
                let mut state: Vec<(Vec<f64>, Vec<f64>)> = vec![(vec![0.0; hs], vec![0.0; hs]); nl];
                for t in 0..s {
                    let mut v: Vec<f64> = (0..input).map(|i| x.as_slice()[(j * s + t) * input + i]).collect();
                    for (k, l) in layers.iter().enumerate() {
                        state[k] = reference_step(cell, l, &v, &state[k].0, &state[k].1);
                        v = state[k].0.clone();
                    }
                    for (u, want) in v.iter().enumerate() {
                        let got = out.as_slice()[(j * s + t) * hs + u];
                        assert!((got - want).abs() < 1e-12, "{cell:?}: out[{j}, {t}, {u}] = {got}, want {want}");
                    }
                }
                let row = |t: &Tensor<f64>, k: usize| t.as_slice()[(k * b + j) * hs..(k * b + j + 1) * hs].to_vec();
                for (k, (h, c)) in state.iter().enumerate() {
                    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
                    assert!(close(&row(&h_n, k), h), "{cell:?}: h_n of layer {k}, sample {j}");
                    if let Some(c_n) = &c_n {
                        assert!(close(&row(&c_n.value(), k), c), "{cell:?}: c_n of layer {k}, sample {j}");
                    }
                }
            }
        }
    }

    #[test]
    fn init_is_uniform_within_one_over_sqrt_hidden() {
        let lstm = Lstm::<f64>::with_config(3, 16, LstmConfig { num_layers: 2, ..Default::default() }, &mut rng());
        let mut max = 0.0f64;
        lstm.visit_params("", &mut |_, p| max = p.value().as_slice().iter().fold(max, |m, v| m.max(v.abs())));
        assert!(max <= 0.25 && max > 0.24, "{max}");
        let names: Vec<_> = lstm.named_params().into_iter().map(|(n, p)| (n, p.value().dims().to_vec())).collect();
        assert_eq!(names[0], ("weight_ih_l0".to_string(), vec![64, 3]));
        assert_eq!(names[7], ("bias_hh_l1".to_string(), vec![64]));
        let gru = Gru::<f32>::with_config(3, 4, GruConfig { num_layers: 1, bias: false, ..Default::default() }, &mut rng());
        assert_eq!(gru.named_params().len(), 2);
        assert_eq!((gru.input_size(), gru.hidden_size(), gru.num_layers()), (3, 4, 1));
    }

    #[test]
    #[should_panic(expected = "wengert: Gru(input 2, hidden 3): h0 of shape [1, 4, 3] must be [num_layers, batch, hidden] = [1, 5, 3]")]
    fn bad_state_names_shapes() {
        let gru = Gru::<f32>::new(2, 3);
        let tape = Tape::new();
        let _ = gru.forward_seq(tape.constant(Tensor::zeros([5, 2, 2])), Some(tape.constant(Tensor::zeros([1, 4, 3]))));
    }
}
