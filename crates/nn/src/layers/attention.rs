//! Attention and transformer building blocks: multi-head attention, positional encodings and
//! the transformer encoder layer, all batch-first (`[B, L, E]`) and named like PyTorch's.
//!
//! Every one is composed of core ops (the attention itself is
//! [`Var::scaled_dot_product_attention`]), so all gradients come from the tape.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wengert_core::kernels::elementwise::zip_broadcast;
use wengert_core::{Float, Param, Shape, Tensor, Transpose, Var};

use crate::activation::gelu;
use crate::init::{with_rng, Init};
use crate::layers::{Dropout, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use crate::module::Module;

// ---------------------------------------------------------------- multi-head attention

/// Options for [`MultiheadAttention`], defaults as PyTorch's `nn.MultiheadAttention`
/// (which has no default head count: build with [`MultiheadAttentionConfig::new`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiheadAttentionConfig {
    /// Number of heads h; the embedding size E must be divisible by it.
    pub num_heads: usize,
    /// Dropout probability on the attention weights during training, in `[0, 1)` (default 0).
    pub dropout: f64,
    /// Biases on the input and output projections (default `true`).
    pub bias: bool,
    /// Feature size of the keys (PyTorch's `kdim`; default `None`: E).
    pub kdim: Option<usize>,
    /// Feature size of the values (PyTorch's `vdim`; default `None`: E).
    pub vdim: Option<usize>,
}

impl MultiheadAttentionConfig {
    /// `num_heads` heads, no dropout, with biases.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = MultiheadAttentionConfig::new(4);
    /// assert_eq!((cfg.num_heads, cfg.dropout, cfg.bias, cfg.kdim, cfg.vdim), (4, 0.0, true, None, None));
    /// ```
    pub fn new(num_heads: usize) -> Self {
        MultiheadAttentionConfig { num_heads, dropout: 0.0, bias: true, kdim: None, vdim: None }
    }
}

/// Multi-head attention (PyTorch `nn.MultiheadAttention` with `batch_first=True`):
///
/// `MHA(q, k, v) = concat(head₁, …, head_h)·W_Oᵀ + b_O`,
/// `headᵢ = softmax(q W_Qᵢᵀ (k W_Kᵢᵀ)ᵀ / √(E/h) + M) · v W_Vᵢᵀ` (plus the input biases),
///
/// where `[W_Q; W_K; W_V]` is `in_proj_weight [3E, E]` and each head uses an `E/h`-wide slice.
/// Inputs `q [B, Lq, E]`, `k` and `v` `[B, Lk, E]` (or unbatched `[L, E]`), output `[B, Lq, E]`.
/// Parameters, in PyTorch's `state_dict` order and names: `in_proj_weight [3E, E]`
/// (Xavier-uniform), `in_proj_bias [3E]` (zeros), `out_proj.weight [E, E]` (PyTorch's Linear
/// default) and `out_proj.bias [E]` (zeros). With keys or values of another size
/// ([`MultiheadAttentionConfig::kdim`]/`vdim`, as PyTorch's) the projections are separate:
/// `q_proj_weight [E, E]`, `k_proj_weight [E, kdim]`, `v_proj_weight [E, vdim]` (each
/// Xavier-uniform) in place of `in_proj_weight`, named and ordered as PyTorch's. When q, k and v
/// are the same `Var` (self-attention) the three projections are one matmul.
///
/// ```
/// use wengert_nn::prelude::*;
/// let mha = MultiheadAttention::<f32>::new(8, 2);          // E = 8, two heads of 4
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::ones([3, 5, 8]));           // [B, L, E]
/// assert_eq!(mha.forward(x).shape().dims(), &[3, 5, 8]);
/// let names: Vec<_> = mha.named_params().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]);
/// ```
pub struct MultiheadAttention<T: Float = f32> {
    /// `[3E, E]`: the query, key and value projections stacked; `None` when keys or values
    /// have their own size (then the three below are used)
    pub in_proj_weight: Option<Param<T>>,
    /// `[E, E]`, only with `kdim`/`vdim`
    pub q_proj_weight: Option<Param<T>>,
    /// `[E, kdim]`, only with `kdim`/`vdim`
    pub k_proj_weight: Option<Param<T>>,
    /// `[E, vdim]`, only with `kdim`/`vdim`
    pub v_proj_weight: Option<Param<T>>,
    /// `[3E]`; `None` without bias
    pub in_proj_bias: Option<Param<T>>,
    /// the output projection `E -> E`
    pub out_proj: Linear<T>,
    num_heads: usize,
    dropout_p: f64,
    /// draws the attention-dropout masks (seeded from the constructor's generator)
    dropout_rng: RefCell<StdRng>,
    training: bool,
}

impl<T: Float> MultiheadAttention<T> {
    /// Embedding size `embed_dim`, `num_heads` heads, other options default; initialised from the
    /// per-thread generator ([`crate::init::manual_seed`] makes it repeatable).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mha = MultiheadAttention::<f32>::new(8, 2);
    /// assert_eq!((mha.embed_dim(), mha.num_heads()), (8, 2));
    /// assert_eq!(mha.num_params(), 3 * 8 * 8 + 3 * 8 + 8 * 8 + 8); // in_proj_{weight,bias}, out_proj.{weight,bias}
    /// ```
    #[track_caller]
    pub fn new(embed_dim: usize, num_heads: usize) -> Self {
        with_rng(|rng| Self::with_config(embed_dim, MultiheadAttentionConfig::new(num_heads), rng))
    }

    /// With explicit options and generator. Panics when `embed_dim` is not divisible by the
    /// head count or the dropout probability is outside `[0, 1)`.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let cfg = MultiheadAttentionConfig { kdim: Some(3), vdim: Some(5), ..MultiheadAttentionConfig::new(2) };
    /// let mha = MultiheadAttention::<f32>::with_config(8, cfg, &mut rng);
    /// let tape = Tape::new();
    /// let (q, k, v) = (tape.constant(Tensor::ones([2, 4, 8])), tape.constant(Tensor::ones([2, 6, 3])), tape.constant(Tensor::ones([2, 6, 5])));
    /// assert_eq!(mha.forward_qkv(q, k, v, None, None).shape().dims(), &[2, 4, 8]);
    /// ```
    #[track_caller]
    pub fn with_config(embed_dim: usize, cfg: MultiheadAttentionConfig, rng: &mut impl Rng) -> Self {
        let (e, h) = (embed_dim, cfg.num_heads);
        if h == 0 || e % h != 0 {
            panic!("wengert: MultiheadAttention: embed_dim {e} must be divisible by num_heads {h}");
        }
        if !(0.0..1.0).contains(&cfg.dropout) {
            panic!("wengert: MultiheadAttention: dropout must be in [0, 1), got {}", cfg.dropout);
        }
        let (kdim, vdim) = (cfg.kdim.unwrap_or(e), cfg.vdim.unwrap_or(e));
        let xavier = |shape: [usize; 2], rng: &mut _| Param::new(Init::XavierUniform { gain: 1.0 }.tensor(shape, rng));
        let (in_proj_weight, separate) = if kdim == e && vdim == e {
            (Some(xavier([3 * e, e], rng)), None)
        } else {
            (None, Some([xavier([e, e], rng), xavier([e, kdim], rng), xavier([e, vdim], rng)]))
        };
        let [q_proj_weight, k_proj_weight, v_proj_weight] = match separate {
            Some([q, k, v]) => [Some(q), Some(k), Some(v)],
            None => [None, None, None],
        };
        let in_proj_bias = cfg.bias.then(|| Param::new(Tensor::zeros([3 * e])));
        let out_cfg = LinearConfig { bias: cfg.bias, bias_init: Some(Init::Zeros), ..Default::default() };
        let out_proj = Linear::with_config(e, e, out_cfg, rng);
        let dropout_rng = RefCell::new(StdRng::seed_from_u64(rng.gen()));
        MultiheadAttention {
            in_proj_weight,
            q_proj_weight,
            k_proj_weight,
            v_proj_weight,
            in_proj_bias,
            out_proj,
            num_heads: h,
            dropout_p: cfg.dropout,
            dropout_rng,
            training: true,
        }
    }

    /// Embedding size E.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(MultiheadAttention::<f32>::new(8, 2).embed_dim(), 8);
    /// ```
    pub fn embed_dim(&self) -> usize {
        self.out_proj.in_features()
    }

    /// Feature sizes of keys and values (`kdim`, `vdim`; both E unless configured).
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// assert_eq!(MultiheadAttention::<f32>::new(8, 2).kv_dims(), (8, 8));
    /// let cfg = MultiheadAttentionConfig { kdim: Some(3), vdim: Some(5), ..MultiheadAttentionConfig::new(2) };
    /// assert_eq!(MultiheadAttention::<f32>::with_config(8, cfg, &mut rng).kv_dims(), (3, 5));
    /// ```
    pub fn kv_dims(&self) -> (usize, usize) {
        match (&self.k_proj_weight, &self.v_proj_weight) {
            (Some(k), Some(v)) => (k.value().dims()[1], v.value().dims()[1]),
            _ => (self.embed_dim(), self.embed_dim()),
        }
    }

    /// Number of heads h.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// assert_eq!(MultiheadAttention::<f32>::new(8, 2).num_heads(), 2);
    /// ```
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }

    /// Attention of queries `q` over keys `k` with values `v` (self-attention when all three are
    /// the same `Var`, cross-attention otherwise).
    ///
    /// Shapes: `q [B, Lq, E]`, `k`, `v [B, Lk, E]` -> `[B, Lq, E]` (or all unbatched, `[L, E]`).
    /// `attn_mask` (`true` = may not attend) is `[Lq, Lk]`, PyTorch's per-head `[B·h, Lq, Lk]`,
    /// or anything broadcastable to `[B, h, Lq, Lk]`; `key_padding_mask` is `[B, Lk]` (`[Lk]`
    /// unbatched), `true` marking padding keys that no query may attend to. The two are
    /// combined with OR; every query must keep at least one visible key (else its row is NaN,
    /// as in PyTorch).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mha = MultiheadAttention::<f64>::new(4, 2);
    /// let tape = Tape::new();
    /// let q = tape.constant(Tensor::ones([2, 3, 4]));
    /// let kv = tape.constant(Tensor::from_fn([2, 5, 4], |i| i[1] as f64));
    /// let pad = Tensor::from_fn([2, 5], |i| i[1] >= 3); // keys 3 and 4 of each sample are padding
    /// assert_eq!(mha.forward_qkv(q, kv, kv, None, Some(&pad)).shape().dims(), &[2, 3, 4]);
    /// ```
    #[track_caller]
    pub fn forward_qkv<'t>(
        &self,
        q: Var<'t, T>,
        k: Var<'t, T>,
        v: Var<'t, T>,
        attn_mask: Option<&Tensor<bool>>,
        key_padding_mask: Option<&Tensor<bool>>,
    ) -> Var<'t, T> {
        self.attend(q, k, v, attn_mask, key_padding_mask, None).0
    }

    /// [`Self::forward_qkv`] that also returns the attention weights (PyTorch's
    /// `need_weights=True`): softmax(q·kᵀ/√d + mask) per head, after dropout as in PyTorch,
    /// `[B, Lq, Lk]` averaged over the heads when `average` (PyTorch's default
    /// `average_attn_weights=True`), else `[B, h, Lq, Lk]`; without the batch axis for
    /// unbatched inputs. The weights are on the tape, so a loss may use them.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mha = MultiheadAttention::<f64>::new(4, 2);
    /// let tape = Tape::new();
    /// let x = tape.constant(Tensor::from_fn([1, 3, 4], |i| (i[1] * 4 + i[2]) as f64 / 10.0));
    /// let (out, w) = mha.forward_qkv_with_weights(x, x, x, None, None, true);
    /// assert_eq!((out.shape().dims(), w.shape().dims()), (&[1, 3, 4][..], &[1, 3, 3][..]));
    /// let row: f64 = w.value().as_slice()[..3].iter().sum();
    /// assert!((row - 1.0).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn forward_qkv_with_weights<'t>(
        &self,
        q: Var<'t, T>,
        k: Var<'t, T>,
        v: Var<'t, T>,
        attn_mask: Option<&Tensor<bool>>,
        key_padding_mask: Option<&Tensor<bool>>,
        average: bool,
    ) -> (Var<'t, T>, Var<'t, T>) {
        let (out, weights) = self.attend(q, k, v, attn_mask, key_padding_mask, Some(average));
        (out, weights.expect("asked for"))
    }

    /// The attention; with `weights = Some(average)` also its weights (see
    /// [`Self::forward_qkv_with_weights`]).
    #[track_caller]
    fn attend<'t>(
        &self,
        q: Var<'t, T>,
        k: Var<'t, T>,
        v: Var<'t, T>,
        attn_mask: Option<&Tensor<bool>>,
        key_padding_mask: Option<&Tensor<bool>>,
        weights: Option<bool>,
    ) -> (Var<'t, T>, Option<Var<'t, T>>) {
        let (e, h) = (self.embed_dim(), self.num_heads);
        let (kd, vd) = self.kv_dims();
        let (sq, sk, sv) = (q.shape(), k.shape(), v.shape());
        let unbatched = sq.ndim() == 2;
        // each test only runs once the ranks are known to be right
        let ok = [&sq, &sk, &sv].iter().all(|s| s.ndim() == if unbatched { 2 } else { 3 })
            && (unbatched || (sq[0] == sk[0] && sk[0] == sv[0]))
            && [(&sq, e), (&sk, kd), (&sv, vd)].iter().all(|(s, d)| s[s.ndim() - 1] == *d)
            && sk[sk.ndim() - 2] == sv[sv.ndim() - 2];
        if !ok {
            panic!(
                "wengert: MultiheadAttention(E = {e}, heads = {h}): q, k, v must be [B, Lq, {e}], [B, Lk, {kd}], [B, Lk, {vd}] (or unbatched [L, ..]), got {sq}, {sk}, {sv}"
            );
        }
        let self_attention = q.id() == k.id() && k.id() == v.id();
        let (q, k, v) = if unbatched { (q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0)) } else { (q, k, v) };
        let (b, lq, lk) = (q.shape()[0], q.shape()[1], k.shape()[1]);
        let mask = self.combined_mask(attn_mask, key_padding_mask, unbatched, [b, h, lq, lk]);

        let tape = q.tape();
        let bias = self.in_proj_bias.as_ref().map(|p| tape.param(p));
        let with_bias = |y: Var<'t, T>, i: usize| bias.map_or(y, |bias| y + bias.narrow(0, i * e, e));
        let (qp, kp, vp) = if let (Some(wq), Some(wk), Some(wv)) = (&self.q_proj_weight, &self.k_proj_weight, &self.v_proj_weight) {
            let project = |x: Var<'t, T>, w: &Param<T>, i: usize| with_bias(x.matmul_t(tape.param(w), Transpose::NT), i);
            (project(q, wq, 0), project(k, wk, 1), project(v, wv, 2))
        } else {
            let w = tape.param(self.in_proj_weight.as_ref().expect("packed when not separate"));
            self.packed_projections(q, k, v, w, bias, self_attention)
        };
        // [B, L, E] -> [B, h, L, E/h]
        let heads = |x: Var<'t, T>, l: usize| x.reshape([b, l, h, e / h]).permute(&[0, 2, 1, 3]);
        let (qh, kh, vh) = (heads(qp, lq), heads(kp, lk), heads(vp, lk));
        let dropout = (self.dropout_p > 0.0 && self.training).then_some((self.dropout_p, &self.dropout_rng));
        let (attended, probs) = attention_heads(qh, kh, vh, mask.as_ref(), dropout, weights.is_some());
        let merged = attended.permute(&[0, 2, 1, 3]).reshape([b, lq, e]);
        let out = self.out_proj.forward(merged);
        let unbatch = |x: Var<'t, T>| if unbatched { x.squeeze(0) } else { x };
        let weights = weights.zip(probs).map(|(average, p)| unbatch(if average { p.mean_axes(&[1], false) } else { p }));
        (unbatch(out), weights)
    }

    /// q, k, v through the stacked `in_proj_weight` `w` `[3E, E]`: one `[B, L, 3E]` product split
    /// in three for self-attention, three products of its slices otherwise.
    #[allow(clippy::type_complexity)]
    fn packed_projections<'t>(
        &self,
        q: Var<'t, T>,
        k: Var<'t, T>,
        v: Var<'t, T>,
        w: Var<'t, T>,
        bias: Option<Var<'t, T>>,
        self_attention: bool,
    ) -> (Var<'t, T>, Var<'t, T>, Var<'t, T>) {
        let e = self.embed_dim();
        if self_attention {
            let qkv = q.matmul_t(w, Transpose::NT);
            let qkv = bias.map_or(qkv, |bias| qkv + bias);
            (qkv.narrow(-1, 0, e), qkv.narrow(-1, e, e), qkv.narrow(-1, 2 * e, e))
        } else {
            let project = |x: Var<'t, T>, i: usize| {
                let y = x.matmul_t(w.narrow(0, i * e, e), Transpose::NT);
                bias.map_or(y, |bias| y + bias.narrow(0, i * e, e))
            };
            (project(q, 0), project(k, 1), project(v, 2))
        }
    }

    /// The attention mask and key padding mask as one mask broadcastable to `[B, h, Lq, Lk]`.
    #[track_caller]
    fn combined_mask(
        &self,
        attn_mask: Option<&Tensor<bool>>,
        key_padding_mask: Option<&Tensor<bool>>,
        unbatched: bool,
        [b, h, lq, lk]: [usize; 4],
    ) -> Option<Tensor<bool>> {
        let e = self.embed_dim();
        let full = Shape::new(&[b, h, lq, lk]);
        let attn = attn_mask.map(|m| {
            let m = if m.ndim() == 3 && m.dims()[0] == b * h && b * h > 1 { m.reshape([b, h, lq, lk]) } else { m.clone() };
            if !m.shape().broadcasts_to(&full) {
                panic!(
                    "wengert: MultiheadAttention(E = {e}, heads = {h}): attn_mask of shape {} must be [{lq}, {lk}], [{}, {lq}, {lk}] or broadcast to {full}",
                    m.shape(),
                    b * h
                );
            }
            m
        });
        let pad = key_padding_mask.map(|m| {
            let expected: &[usize] = if unbatched { &[lk] } else { &[b, lk] };
            if m.dims() != expected {
                panic!(
                    "wengert: MultiheadAttention(E = {e}, heads = {h}): key_padding_mask of shape {} must be {}",
                    m.shape(),
                    Shape::new(expected)
                );
            }
            m.reshape([b, 1, 1, lk])
        });
        match (attn, pad) {
            (Some(a), Some(p)) => Some(zip_broadcast("or", &a, &p, |x, y| x || y).expect("both masks broadcast to [B, h, Lq, Lk]")),
            (a, p) => a.or(p),
        }
    }
}

/// `softmax(q·kᵀ/√d + M)·v` over heads `q [.., Lq, d]`, `k`, `v [.., Lk, d]`, `M = −∞` where
/// `mask` is `true`; with `dropout = Some((p, rng))` inverted dropout on the weights before
/// `·v` (PyTorch's attention dropout). Without dropout and weights it is the fused
/// [`Var::scaled_dot_product_attention`]; otherwise the weights are explicit and returned when
/// `want_weights`. Shared by [`MultiheadAttention`] and BERT's self-attention.
pub(crate) fn attention_heads<'t, T: Float>(
    qh: Var<'t, T>,
    kh: Var<'t, T>,
    vh: Var<'t, T>,
    mask: Option<&Tensor<bool>>,
    dropout: Option<(f64, &RefCell<StdRng>)>,
    want_weights: bool,
) -> (Var<'t, T>, Option<Var<'t, T>>) {
    if dropout.is_none() && !want_weights {
        return (qh.scaled_dot_product_attention(kh, vh, mask), None);
    }
    let tape = qh.tape();
    let d = qh.shape()[qh.ndim() - 1];
    let scores = (qh * (1.0 / (d.max(1) as f64).sqrt())).matmul_t(kh, Transpose::NT);
    let scores = match mask {
        Some(m) => Var::where_(m, tape.scalar(T::NEG_INFINITY), scores),
        None => scores,
    };
    let probs = scores.softmax(-1);
    let probs = match dropout {
        // inverted dropout: zero with probability p, scale the rest by 1/(1-p)
        Some((p, rng)) => probs * tape.constant(crate::layers::dropout::dropout_mask(tape, &probs.shape(), p, &mut rng.borrow_mut())),
        None => probs,
    };
    (probs.matmul(vh), want_weights.then_some(probs))
}

impl<T: Float> Module<T> for MultiheadAttention<T> {
    /// Self-attention of `x` `[B, L, E]` without masks.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_qkv(x, x, x, None, None)
    }
    /// PyTorch's order: `in_proj_weight` or `q/k/v_proj_weight`, `in_proj_bias`, `out_proj.*`.
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        let weights = [("in_proj_weight", &self.in_proj_weight), ("q_proj_weight", &self.q_proj_weight), ("k_proj_weight", &self.k_proj_weight), ("v_proj_weight", &self.v_proj_weight), ("in_proj_bias", &self.in_proj_bias)];
        for (name, p) in weights {
            if let Some(p) = p {
                f(format!("{prefix}{name}"), p);
            }
        }
        self.out_proj.visit_params(&format!("{prefix}out_proj."), f);
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        let weights = [
            ("in_proj_weight", &mut self.in_proj_weight),
            ("q_proj_weight", &mut self.q_proj_weight),
            ("k_proj_weight", &mut self.k_proj_weight),
            ("v_proj_weight", &mut self.v_proj_weight),
            ("in_proj_bias", &mut self.in_proj_bias),
        ];
        for (name, p) in weights {
            if let Some(p) = p {
                f(format!("{prefix}{name}"), p);
            }
        }
        self.out_proj.visit_params_mut(&format!("{prefix}out_proj."), f);
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

// ---------------------------------------------------------------- positional encodings

/// Checks `x` is `[.., L, dim]` with `L <= max_len` and returns L.
#[track_caller]
fn positions<T: Float>(layer: &str, x: &Var<'_, T>, max_len: usize, dim: usize) -> usize {
    let s = x.shape();
    let ok = s.ndim() >= 2 && s[s.ndim() - 1] == dim && s[s.ndim() - 2] <= max_len;
    if !ok {
        panic!("wengert: {layer}(max_len = {max_len}, dim = {dim}): input of shape {s} must be [.., L, {dim}] with L <= {max_len}");
    }
    s[s.ndim() - 2]
}

/// The fixed sinusoidal position table of *Attention Is All You Need* added to the input:
///
/// `PE[p, 2i] = sin(p / 10000^(2i/E))`, `PE[p, 2i+1] = cos(p / 10000^(2i/E))`,
///
/// `y = x + PE[..L]` for `x [.., L, E]` with `L <= max_len`. No parameters; the gradient
/// passes through unchanged.
///
/// ```
/// use wengert_nn::prelude::*;
/// let pe = SinusoidalPositionalEncoding::<f64>::new(16, 4);
/// let tape = Tape::new();
/// let y = pe.forward(tape.constant(Tensor::zeros([2, 3, 4]))).value();
/// // position 1, columns 0 and 1: sin(1), cos(1)
/// assert_eq!((y.get(&[0, 1, 0]), y.get(&[0, 1, 1])), (1f64.sin(), 1f64.cos()));
/// ```
pub struct SinusoidalPositionalEncoding<T: Float = f32> {
    table: Tensor<T>,
}

impl<T: Float> SinusoidalPositionalEncoding<T> {
    /// The table for positions `0..max_len` of `dim`-wide embeddings (odd `dim` allowed: the
    /// last column is a sine).
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pe = SinusoidalPositionalEncoding::<f64>::new(8, 5);
    /// assert_eq!(pe.table().dims(), &[8, 5]);
    /// // odd dim: the last column is a sine, sin(p / 10000^(4/5))
    /// assert_eq!(pe.table().get(&[1, 4]), (1.0 / 10000f64.powf(4.0 / 5.0)).sin());
    /// ```
    pub fn new(max_len: usize, dim: usize) -> Self {
        let table = Tensor::from_fn([max_len, dim], |ix| {
            let (p, j) = (ix[0] as f64, ix[1]);
            let angle = p / 10000f64.powf((j - j % 2) as f64 / dim as f64);
            T::from_f64(if j % 2 == 0 { angle.sin() } else { angle.cos() })
        });
        SinusoidalPositionalEncoding { table }
    }

    /// The table `[max_len, dim]`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pe = SinusoidalPositionalEncoding::<f32>::new(10, 6);
    /// assert_eq!(pe.table().dims(), &[10, 6]);
    /// assert_eq!(pe.table().to_vec()[..6], [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]); // position 0: sin 0, cos 0, ...
    /// ```
    pub fn table(&self) -> &Tensor<T> {
        &self.table
    }
}

impl<T: Float> Module<T> for SinusoidalPositionalEncoding<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let (max_len, dim) = (self.table.dims()[0], self.table.dims()[1]);
        let l = positions("SinusoidalPositionalEncoding", &x, max_len, dim);
        x + x.tape().constant(self.table.narrow(0, 0, l))
    }
    fn visit_params<'a>(&'a self, _: &str, _: &mut dyn FnMut(String, &'a Param<T>)) {}
    fn visit_params_mut<'a>(&'a mut self, _: &str, _: &mut dyn FnMut(String, &'a mut Param<T>)) {}
}

/// A learned position table `weight [max_len, E]` added to the input: `y = x + W[..L]` for
/// `x [.., L, E]` (what GPT-2 and BERT use, written `nn.Embedding(max_len, E)` in PyTorch).
/// Initialised N(0, 1) like `nn.Embedding`; the gradient of row p sums over the batch.
///
/// ```
/// use wengert_nn::prelude::*;
/// let pe = LearnedPositionalEncoding::<f32>::new(10, 4);
/// let tape = Tape::new();
/// assert_eq!(pe.forward(tape.constant(Tensor::zeros([2, 3, 4]))).shape().dims(), &[2, 3, 4]);
/// assert_eq!(pe.named_params()[0].0, "weight");
/// ```
pub struct LearnedPositionalEncoding<T: Float = f32> {
    /// `[max_len, E]`
    pub weight: Param<T>,
}

impl<T: Float> LearnedPositionalEncoding<T> {
    /// A table for `max_len` positions of `dim`-wide embeddings, N(0, 1) from the per-thread
    /// generator.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let pe = LearnedPositionalEncoding::<f32>::new(10, 4);
    /// assert_eq!(pe.weight.value().dims(), &[10, 4]);
    /// assert_eq!(pe.num_params(), 40);
    /// ```
    pub fn new(max_len: usize, dim: usize) -> Self {
        with_rng(|rng| Self::with_init(max_len, dim, Init::Normal(0.0, 1.0), rng))
    }

    /// With an explicit initialiser and generator (e.g. `Init::Normal(0.0, 0.02)` as GPT-2).
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_nn::prelude::*;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let pe = LearnedPositionalEncoding::<f64>::with_init(10, 4, wengert_nn::init::Init::Zeros, &mut rng);
    /// let tape = Tape::new();
    /// let y = pe.forward(tape.constant(Tensor::ones([2, 3, 4])));
    /// assert_eq!(y.value().to_vec(), vec![1.0; 24]); // a zero table adds nothing
    /// ```
    pub fn with_init(max_len: usize, dim: usize, init: Init, rng: &mut impl Rng) -> Self {
        LearnedPositionalEncoding { weight: Param::new(init.tensor([max_len, dim], rng)) }
    }
}

impl<T: Float> Module<T> for LearnedPositionalEncoding<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let d = self.weight.value().dims();
        let l = positions("LearnedPositionalEncoding", &x, d[0], d[1]);
        x + x.tape().param(&self.weight).narrow(0, 0, l)
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        f(format!("{prefix}weight"), &self.weight);
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        f(format!("{prefix}weight"), &mut self.weight);
    }
}

// ---------------------------------------------------------------- transformer encoder layer

/// The feed-forward activation of a [`TransformerEncoderLayer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TransformerActivation {
    /// max(x, 0) (PyTorch's default)
    #[default]
    Relu,
    /// GELU, exact erf form ([`crate::activation::gelu`]), PyTorch's `activation="gelu"`
    Gelu,
    /// GELU, tanh form ([`crate::activation::Approximate::Tanh`])
    GeluTanh,
}

/// Options for [`TransformerEncoderLayer`], defaults as PyTorch's `nn.TransformerEncoderLayer`
/// (build with [`TransformerEncoderLayerConfig::new`]: `d_model` and `nhead` have no default).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerEncoderLayerConfig {
    /// Embedding size E.
    pub d_model: usize,
    /// Attention heads; must divide `d_model`.
    pub nhead: usize,
    /// Hidden size of the feed-forward block (default 2048).
    pub dim_feedforward: usize,
    /// Dropout after attention, inside and after the feed-forward block, and on the attention
    /// weights, in `[0, 1)` (default 0.1). Off in eval mode.
    pub dropout: f64,
    /// Feed-forward activation (default [`TransformerActivation::Relu`]).
    pub activation: TransformerActivation,
    /// Normalise before each block (pre-norm) instead of after the residual sum (default
    /// `false`: post-norm, as the original transformer).
    pub norm_first: bool,
    /// ε of both layer norms (default 1e-5).
    pub layer_norm_eps: f64,
}

impl TransformerEncoderLayerConfig {
    /// `d_model` and `nhead` with PyTorch's defaults for the rest.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = TransformerEncoderLayerConfig::new(16, 4);
    /// assert_eq!((cfg.dim_feedforward, cfg.dropout, cfg.activation), (2048, 0.1, TransformerActivation::Relu));
    /// assert_eq!((cfg.norm_first, cfg.layer_norm_eps), (false, 1e-5));
    /// ```
    pub fn new(d_model: usize, nhead: usize) -> Self {
        TransformerEncoderLayerConfig {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: TransformerActivation::Relu,
            norm_first: false,
            layer_norm_eps: 1e-5,
        }
    }
}

/// One transformer encoder block (PyTorch `nn.TransformerEncoderLayer`, `batch_first=True`),
/// on `x [B, L, E]` (or unbatched `[L, E]`), output of the same shape:
///
/// post-norm (default): `x ← norm1(x + SA(x))`, `x ← norm2(x + FF(x))`;
/// pre-norm (`norm_first`): `x ← x + SA(norm1(x))`, `x ← x + FF(norm2(x))`;
///
/// with `SA(x) = dropout1(self_attn(x, x, x))` and
/// `FF(x) = dropout2(linear2(dropout(act(linear1(x)))))`. Parameter names follow PyTorch:
/// `self_attn.in_proj_weight`, `self_attn.in_proj_bias`, `self_attn.out_proj.{weight,bias}`,
/// `linear1.{weight,bias}`, `linear2.{weight,bias}`, `norm1.{weight,bias}`, `norm2.{weight,bias}`.
///
/// ```
/// use wengert_nn::prelude::*;
/// let cfg = TransformerEncoderLayerConfig { dim_feedforward: 32, dropout: 0.0, ..TransformerEncoderLayerConfig::new(16, 4) };
/// let layer = TransformerEncoderLayer::<f32>::with_config(cfg);
/// let tape = Tape::new();
/// let x = tape.constant(Tensor::ones([2, 7, 16]));
/// let mask = Tensor::causal_mask(7);                       // each position sees only the past
/// assert_eq!(layer.forward_masked(x, Some(&mask), None).shape().dims(), &[2, 7, 16]);
/// assert_eq!(layer.named_params().len(), 12);
/// ```
pub struct TransformerEncoderLayer<T: Float = f32> {
    /// the self-attention block
    pub self_attn: MultiheadAttention<T>,
    /// `E -> dim_feedforward`
    pub linear1: Linear<T>,
    /// inside the feed-forward block
    pub dropout: Dropout,
    /// `dim_feedforward -> E`
    pub linear2: Linear<T>,
    /// norm around the attention block
    pub norm1: LayerNorm<T>,
    /// norm around the feed-forward block
    pub norm2: LayerNorm<T>,
    /// after the attention block
    pub dropout1: Dropout,
    /// after the feed-forward block
    pub dropout2: Dropout,
    activation: TransformerActivation,
    norm_first: bool,
}

impl<T: Float> TransformerEncoderLayer<T> {
    /// `d_model`, `nhead` and PyTorch's defaults (feed-forward 2048, dropout 0.1, ReLU,
    /// post-norm), initialised from the per-thread generator.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let mut layer = TransformerEncoderLayer::<f32>::new(16, 4);
    /// assert_eq!(layer.linear1.out_features(), 2048);
    /// layer.eval(); // dropout off
    /// let tape = Tape::new();
    /// assert_eq!(layer.forward(tape.constant(Tensor::ones([2, 5, 16]))).shape().dims(), &[2, 5, 16]);
    /// ```
    #[track_caller]
    pub fn new(d_model: usize, nhead: usize) -> Self {
        Self::with_config(TransformerEncoderLayerConfig::new(d_model, nhead))
    }

    /// With explicit options, initialised from the per-thread generator (seed it with
    /// [`crate::init::manual_seed`]). Panics when `nhead` does not divide `d_model` or the
    /// dropout probability is outside `[0, 1)`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = TransformerEncoderLayerConfig { dim_feedforward: 32, norm_first: true, ..TransformerEncoderLayerConfig::new(8, 2) };
    /// let cfg = TransformerEncoderLayerConfig { activation: TransformerActivation::Gelu, ..cfg }; // pre-norm, GELU
    /// let layer = TransformerEncoderLayer::<f32>::with_config(cfg);
    /// assert_eq!(layer.linear2.in_features(), 32);
    /// let tape = Tape::new();
    /// assert_eq!(layer.forward(tape.constant(Tensor::ones([5, 8]))).shape().dims(), &[5, 8]); // unbatched [L, E]
    /// ```
    #[track_caller]
    pub fn with_config(cfg: TransformerEncoderLayerConfig) -> Self {
        let attn_cfg = MultiheadAttentionConfig { num_heads: cfg.nhead, dropout: cfg.dropout, ..MultiheadAttentionConfig::new(cfg.nhead) };
        let self_attn = with_rng(|rng| MultiheadAttention::with_config(cfg.d_model, attn_cfg, rng));
        let norm = LayerNormConfig { eps: cfg.layer_norm_eps, affine: true };
        TransformerEncoderLayer {
            self_attn,
            linear1: Linear::new(cfg.d_model, cfg.dim_feedforward),
            dropout: Dropout::new(cfg.dropout),
            linear2: Linear::new(cfg.dim_feedforward, cfg.d_model),
            norm1: LayerNorm::with_config(cfg.d_model, norm),
            norm2: LayerNorm::with_config(cfg.d_model, norm),
            dropout1: Dropout::new(cfg.dropout),
            dropout2: Dropout::new(cfg.dropout),
            activation: cfg.activation,
            norm_first: cfg.norm_first,
        }
    }

    /// The block with masks: `attn_mask` (`[L, L]`, `true` = may not attend, e.g.
    /// [`Tensor::causal_mask`]) and `key_padding_mask` (`[B, L]`, `true` = padding), as in
    /// [`MultiheadAttention::forward_qkv`].
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let cfg = TransformerEncoderLayerConfig { dim_feedforward: 16, dropout: 0.0, ..TransformerEncoderLayerConfig::new(8, 2) };
    /// let layer = TransformerEncoderLayer::<f64>::with_config(cfg);
    /// let tape = Tape::new();
    /// let pad = Tensor::from_fn([2, 4], |i| i[1] == 3); // the last position of each sequence is padding
    /// let y = layer.forward_masked(tape.constant(Tensor::ones([2, 4, 8])), Some(&Tensor::causal_mask(4)), Some(&pad));
    /// assert_eq!(y.shape().dims(), &[2, 4, 8]);
    /// ```
    #[track_caller]
    pub fn forward_masked<'t>(&self, x: Var<'t, T>, attn_mask: Option<&Tensor<bool>>, key_padding_mask: Option<&Tensor<bool>>) -> Var<'t, T> {
        let sa = |x: Var<'t, T>| self.dropout1.forward(self.self_attn.forward_qkv(x, x, x, attn_mask, key_padding_mask));
        if self.norm_first {
            let x = x + sa(self.norm1.forward(x));
            x + self.feed_forward(self.norm2.forward(x))
        } else {
            let x = self.norm1.forward(x + sa(x));
            self.norm2.forward(x + self.feed_forward(x))
        }
    }

    fn feed_forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let h = self.linear1.forward(x);
        let h = match self.activation {
            TransformerActivation::Relu => h.relu(),
            TransformerActivation::Gelu => gelu(h),
            TransformerActivation::GeluTanh => h.gelu_tanh(),
        };
        self.dropout2.forward(self.linear2.forward(self.dropout.forward(h)))
    }
}

impl<T: Float> Module<T> for TransformerEncoderLayer<T> {
    /// The block without masks.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_masked(x, None, None)
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        self.self_attn.visit_params(&format!("{prefix}self_attn."), f);
        self.linear1.visit_params(&format!("{prefix}linear1."), f);
        self.linear2.visit_params(&format!("{prefix}linear2."), f);
        self.norm1.visit_params(&format!("{prefix}norm1."), f);
        self.norm2.visit_params(&format!("{prefix}norm2."), f);
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        self.self_attn.visit_params_mut(&format!("{prefix}self_attn."), f);
        self.linear1.visit_params_mut(&format!("{prefix}linear1."), f);
        self.linear2.visit_params_mut(&format!("{prefix}linear2."), f);
        self.norm1.visit_params_mut(&format!("{prefix}norm1."), f);
        self.norm2.visit_params_mut(&format!("{prefix}norm2."), f);
    }
    fn set_training(&mut self, training: bool) {
        self.self_attn.set_training(training);
        for d in [&mut self.dropout, &mut self.dropout1, &mut self.dropout2] {
            Module::<T>::set_training(d, training);
        }
    }
}
