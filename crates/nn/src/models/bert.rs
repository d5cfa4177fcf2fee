//! BERT (Devlin et al., 2018) as Hugging Face `transformers`' `BertModel`: the same
//! structure, the same parameter names (`encoder.layer.0.attention.self.query.weight`), the
//! same arithmetic, so a checkpoint's `model.safetensors` loads by its own tensor names and
//! gives the same activations.
//!
//! ```text
//! h₀ = LayerNorm(word[ids] + type[type_ids] + position[0..L])          (then dropout)
//! for each layer:  a = LayerNorm(h + dropout(Wₒ·SelfAttention(h)))     (post-norm)
//!                  h = LayerNorm(a + dropout(W₂·act(W₁·a)))
//! pooler:          tanh(W_p·h[:, 0])                                   (the [CLS] token)
//! ```
//!
//! `SelfAttention(h)` is `softmax(q·kᵀ/√d + M)·v` per head, with `M = −∞` on padding keys
//! (Hugging Face adds the dtype's most negative number instead; both give weight 0 to a
//! padding key, and a sequence always has its `[CLS]` token to attend to).
//! [`mean_pool`] and [`l2_normalize`] are sentence-transformers' pooling and normalisation.

use std::cell::RefCell;
use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;
use wengert_core::{Float, Param, Tape, Tensor, Var};

use crate::error::{Error, Result};
use crate::init::{next_seed, with_rng, Init};
use crate::layers::{attention_heads, Dropout, Embedding, LayerNorm, LayerNormConfig, Linear, LinearConfig, TransformerActivation};
use crate::module::{visit_children, Buffer, BufferMut, Module};

/// The hyperparameters of a BERT model, named as the fields of Hugging Face's `config.json`.
/// The default is Hugging Face's `BertConfig()` (bert-base-uncased).
#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    /// Number of token ids (default 30522).
    pub vocab_size: usize,
    /// Width H of every hidden state (default 768).
    pub hidden_size: usize,
    /// Number of encoder layers (default 12).
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size` (default 12).
    pub num_attention_heads: usize,
    /// Width of the feed-forward block (default 3072).
    pub intermediate_size: usize,
    /// Feed-forward activation: `"gelu"` is exact GELU, `"gelu_new"`/`"gelu_pytorch_tanh"` the
    /// tanh form, `"relu"` ReLU (default exact GELU).
    pub hidden_act: TransformerActivation,
    /// Dropout on embeddings and after each block, in training (default 0.1).
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention weights, in training (default 0.1).
    pub attention_probs_dropout_prob: f64,
    /// Longest sequence (rows of the position table; default 512).
    pub max_position_embeddings: usize,
    /// Number of token types (segments; default 2).
    pub type_vocab_size: usize,
    /// Standard deviation of the normal initialisation (default 0.02).
    pub initializer_range: f64,
    /// ε of every LayerNorm (default 1e-12).
    pub layer_norm_eps: f64,
    /// The padding token id, whose embedding gets no gradient (default 0).
    pub pad_token_id: usize,
}

impl Default for BertConfig {
    fn default() -> Self {
        BertConfig {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: TransformerActivation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
        }
    }
}

impl BertConfig {
    /// Reads a Hugging Face `config.json`; missing fields take the defaults. Rejects what this
    /// implementation does not do (relative position embeddings, another activation, a
    /// `hidden_size` the heads do not divide), naming the field.
    ///
    /// ```
    /// use wengert_nn::models::bert::BertConfig;
    /// let cfg = BertConfig::from_json(r#"{"hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536}"#).unwrap();
    /// assert_eq!((cfg.hidden_size, cfg.num_hidden_layers, cfg.layer_norm_eps), (384, 6, 1e-12));
    /// assert!(BertConfig::from_json(r#"{"hidden_act": "swish"}"#).is_err());
    /// ```
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let obj = json.as_object().ok_or("the config is not a JSON object")?;
        let mut cfg = BertConfig::default();
        let count = |key: &str, into: &mut usize| -> std::result::Result<(), String> {
            if let Some(v) = obj.get(key) {
                *into = v.as_u64().ok_or(format!("`{key}` must be a whole number, got {v}"))? as usize;
            }
            Ok(())
        };
        count("vocab_size", &mut cfg.vocab_size)?;
        count("hidden_size", &mut cfg.hidden_size)?;
        count("num_hidden_layers", &mut cfg.num_hidden_layers)?;
        count("num_attention_heads", &mut cfg.num_attention_heads)?;
        count("intermediate_size", &mut cfg.intermediate_size)?;
        count("max_position_embeddings", &mut cfg.max_position_embeddings)?;
        count("type_vocab_size", &mut cfg.type_vocab_size)?;
        count("pad_token_id", &mut cfg.pad_token_id)?;
        let real = |key: &str, into: &mut f64| -> std::result::Result<(), String> {
            if let Some(v) = obj.get(key) {
                *into = v.as_f64().ok_or(format!("`{key}` must be a number, got {v}"))?;
            }
            Ok(())
        };
        real("hidden_dropout_prob", &mut cfg.hidden_dropout_prob)?;
        real("attention_probs_dropout_prob", &mut cfg.attention_probs_dropout_prob)?;
        real("initializer_range", &mut cfg.initializer_range)?;
        real("layer_norm_eps", &mut cfg.layer_norm_eps)?;
        if let Some(act) = obj.get("hidden_act") {
            cfg.hidden_act = match act.as_str() {
                Some("gelu") => TransformerActivation::Gelu,
                Some("gelu_new" | "gelu_pytorch_tanh") => TransformerActivation::GeluTanh,
                Some("relu") => TransformerActivation::Relu,
                _ => return Err(format!("`hidden_act` {act} is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)")),
            };
        }
        if let Some(kind) = obj.get("position_embedding_type") {
            if kind.as_str() != Some("absolute") {
                return Err(format!("`position_embedding_type` {kind} is not supported (only \"absolute\")"));
            }
        }
        cfg.check()?;
        Ok(cfg)
    }

    /// [`BertConfig::from_json`] of a file.
    ///
    /// ```
    /// use wengert_nn::models::bert::BertConfig;
    /// let path = std::env::temp_dir().join(format!("wengert-doc-bert-config-{}.json", std::process::id()));
    /// std::fs::write(&path, r#"{"hidden_size": 384, "num_attention_heads": 12}"#).unwrap();
    /// assert_eq!(BertConfig::from_file(&path).unwrap().hidden_size, 384);
    /// std::fs::write(&path, r#"{"hidden_size": 384, "num_attention_heads": 5}"#).unwrap(); // 5 heads do not divide 384
    /// assert!(matches!(BertConfig::from_file(&path), Err(wengert_nn::Error::InvalidArgument { .. })));
    /// assert!(matches!(BertConfig::from_file(path.with_extension("missing")), Err(wengert_nn::Error::Io { .. })));
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        BertConfig::from_json(&text).map_err(|reason| Error::InvalidArgument { reason: format!("{}: {reason}", path.display()) })
    }

    fn check(&self) -> std::result::Result<(), String> {
        let (h, n) = (self.hidden_size, self.num_attention_heads);
        if n == 0 || h % n != 0 {
            return Err(format!("`hidden_size` {h} must be divisible by `num_attention_heads` {n}"));
        }
        for (name, p) in [("hidden_dropout_prob", self.hidden_dropout_prob), ("attention_probs_dropout_prob", self.attention_probs_dropout_prob)] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("`{name}` must be in [0, 1), got {p}"));
            }
        }
        if self.pad_token_id >= self.vocab_size {
            return Err(format!("`pad_token_id` {} is not below `vocab_size` {}", self.pad_token_id, self.vocab_size));
        }
        Ok(())
    }
}

/// A batch of tokenized sequences, padded to one length L: what [`BertModel`] reads.
#[derive(Clone, Debug, PartialEq)]
pub struct BertInput {
    /// `[B, L]` token ids.
    pub input_ids: Tensor<usize>,
    /// `[B, L]`: `true` for a real token, `false` for padding (Hugging Face's 1 and 0).
    pub attention_mask: Tensor<bool>,
    /// `[B, L]` segment ids (0 for single sentences).
    pub token_type_ids: Tensor<usize>,
}

impl BertInput {
    /// Sequences without padding, all of segment 0.
    ///
    /// ```
    /// use wengert_nn::models::bert::BertInput;
    /// let input = BertInput::new(wengert_core::Tensor::new(vec![101usize, 7592, 102], [1, 3]));
    /// assert!(input.attention_mask.as_slice().iter().all(|&m| m));
    /// ```
    pub fn new(input_ids: Tensor<usize>) -> Self {
        let shape = input_ids.shape().clone();
        BertInput { attention_mask: Tensor::full(shape.clone(), true), token_type_ids: Tensor::full(shape, 0), input_ids }
    }

    /// Batch size B and length L; panics naming the shapes when the three are not one `[B, L]`.
    ///
    /// ```
    /// use wengert_nn::models::bert::BertInput;
    /// use wengert_core::Tensor;
    /// let mut input = BertInput::new(Tensor::new(vec![101usize, 7592, 102, 101, 2088, 102], [2, 3]));
    /// assert_eq!(input.dims(), (2, 3));
    /// input.attention_mask = Tensor::full([2, 2], true); // no longer [2, 3]
    /// assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| input.dims())).is_err());
    /// ```
    #[track_caller]
    pub fn dims(&self) -> (usize, usize) {
        let s = self.input_ids.shape();
        if s.ndim() != 2 || self.attention_mask.shape() != s || self.token_type_ids.shape() != s {
            panic!(
                "wengert: BertInput: input_ids {}, attention_mask {} and token_type_ids {} must all be one [B, L]",
                s,
                self.attention_mask.shape(),
                self.token_type_ids.shape()
            );
        }
        (s[0], s[1])
    }

    /// The padding keys as an attention mask broadcastable to the scores `[B, h, L, L]`
    /// (`true` = may not attend), or `None` when nothing is padding.
    fn padding_keys(&self) -> Option<Tensor<bool>> {
        let (b, l) = self.dims();
        let mask = self.attention_mask.as_slice();
        mask.iter().any(|&m| !m).then(|| Tensor::new(mask.iter().map(|&m| !m).collect(), [b, 1, 1, l]))
    }
}

fn normal_linear<T: Float>(cfg: &BertConfig, inputs: usize, outputs: usize) -> Linear<T> {
    let init = LinearConfig { bias: true, weight_init: Init::Normal(0.0, cfg.initializer_range), bias_init: Some(Init::Zeros) };
    with_rng(|rng| Linear::with_config(inputs, outputs, init, rng))
}

fn normal_embedding<T: Float>(cfg: &BertConfig, num: usize) -> Embedding<T> {
    with_rng(|rng| Embedding::with_init(num, cfg.hidden_size, Init::Normal(0.0, cfg.initializer_range), rng))
}

fn layer_norm<T: Float>(cfg: &BertConfig) -> LayerNorm<T> {
    LayerNorm::with_config(cfg.hidden_size, LayerNormConfig { eps: cfg.layer_norm_eps, affine: true })
}

// ---------------------------------------------------------------- embeddings

/// `LayerNorm(word[ids] + type[type_ids] + position[0..L])`, then dropout (`embeddings.*`).
/// `position_ids` is the buffer Hugging Face saves beside the tables (`[1, max_positions]`,
/// 0, 1, 2, ...).
pub struct BertEmbeddings<T: Float = f32> {
    /// `[vocab_size, H]`, the padding token's row gets no gradient
    pub word_embeddings: Embedding<T>,
    /// `[max_position_embeddings, H]`
    pub position_embeddings: Embedding<T>,
    /// `[type_vocab_size, H]`
    pub token_type_embeddings: Embedding<T>,
    /// named `LayerNorm` as in Hugging Face
    pub layer_norm: LayerNorm<T>,
    /// after the norm
    pub dropout: Dropout,
    /// `[1, max_position_embeddings]`, the position of each column
    pub position_ids: Tensor<i64>,
}

impl<T: Float> BertEmbeddings<T> {
    /// Initialised as Hugging Face's: N(0, initializer_range²) tables, the padding row zero.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertEmbeddings};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let emb = BertEmbeddings::<f32>::new(&cfg);
    /// assert_eq!(emb.word_embeddings.weight.value().dims(), &[20, 4]);
    /// assert_eq!(emb.position_embeddings.weight.value().dims(), &[8, 4]);
    /// assert!(emb.word_embeddings.weight.value().to_vec()[..4].iter().all(|&w| w == 0.0)); // pad_token_id 0
    /// assert_eq!(emb.position_ids.to_vec(), [0, 1, 2, 3, 4, 5, 6, 7]);
    /// ```
    pub fn new(cfg: &BertConfig) -> Self {
        let max = cfg.max_position_embeddings;
        BertEmbeddings {
            word_embeddings: normal_embedding(cfg, cfg.vocab_size).with_padding_idx(cfg.pad_token_id),
            position_embeddings: normal_embedding(cfg, max),
            token_type_embeddings: normal_embedding(cfg, cfg.type_vocab_size),
            layer_norm: layer_norm(cfg),
            dropout: Dropout::new(cfg.hidden_dropout_prob),
            position_ids: Tensor::new((0..max as i64).collect(), [1, max]),
        }
    }

    /// The embedded batch `[B, L, H]`. Panics naming the id and the table when an id is out
    /// of range or the sequence is longer than the position table.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertEmbeddings, BertInput};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let mut emb = BertEmbeddings::<f32>::new(&cfg);
    /// emb.eval();
    /// let tape = Tape::new();
    /// let h = emb.forward_input(&tape, &BertInput::new(Tensor::new(vec![1usize, 5, 9, 2, 3, 4], [2, 3])));
    /// assert_eq!(h.shape().dims(), &[2, 3, 4]);
    /// let row = &h.value().to_vec()[..4]; // LayerNorm: each token's state has mean 0 (γ = 1, β = 0)
    /// assert!(row.iter().sum::<f32>().abs() < 1e-5);
    /// let too_long = BertInput::new(Tensor::new(vec![1usize; 9], [1, 9])); // 9 tokens, 8 positions
    /// assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| { emb.forward_input(&tape, &too_long); })).is_err());
    /// ```
    #[track_caller]
    pub fn forward_input<'t>(&self, tape: &'t Tape<T>, input: &BertInput) -> Var<'t, T> {
        let (_, l) = input.dims();
        let tables = [("input_ids", &self.word_embeddings, &input.input_ids), ("token_type_ids", &self.token_type_embeddings, &input.token_type_ids)];
        for (what, table, ids) in tables {
            let num = table.weight.value().dims()[0];
            if let Some(bad) = ids.as_slice().iter().find(|&&i| i >= num) {
                panic!("wengert: BertEmbeddings: {what} holds {bad}, not below the table's {num} rows");
            }
        }
        let positions = self.position_ids.dims()[1];
        if l > positions {
            panic!("wengert: BertEmbeddings: a sequence of {l} tokens is longer than the {positions} positions");
        }
        let position_ids: Vec<usize> = self.position_ids.as_slice()[..l].iter().map(|&p| p as usize).collect();
        let words = self.word_embeddings.lookup(tape, &input.input_ids);
        let types = self.token_type_embeddings.lookup(tape, &input.token_type_ids);
        let position = self.position_embeddings.lookup(tape, &Tensor::new(position_ids, [l]));
        self.dropout.forward(self.layer_norm.forward(words + types + position))
    }
}

impl<T: Float> Module<T> for BertEmbeddings<T> {
    /// Reads `x [B, L]` as token ids (whole numbers), no padding, segment 0.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_input(x.tape(), &BertInput::new(ids_of(&x)))
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        self.word_embeddings.visit_params(&format!("{prefix}word_embeddings."), f);
        self.position_embeddings.visit_params(&format!("{prefix}position_embeddings."), f);
        self.token_type_embeddings.visit_params(&format!("{prefix}token_type_embeddings."), f);
        self.layer_norm.visit_params(&format!("{prefix}LayerNorm."), f);
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        self.word_embeddings.visit_params_mut(&format!("{prefix}word_embeddings."), f);
        self.position_embeddings.visit_params_mut(&format!("{prefix}position_embeddings."), f);
        self.token_type_embeddings.visit_params_mut(&format!("{prefix}token_type_embeddings."), f);
        self.layer_norm.visit_params_mut(&format!("{prefix}LayerNorm."), f);
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, Buffer<T>)) {
        f(format!("{prefix}position_ids"), Buffer::Int(self.position_ids.clone()));
    }
    fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, BufferMut<'_, T>)) {
        f(format!("{prefix}position_ids"), BufferMut::Int(&mut self.position_ids));
    }
    fn set_training(&mut self, training: bool) {
        Module::<T>::set_training(&mut self.dropout, training);
    }
}

/// `x`'s values as token ids `[B, L]` (for the `Module::forward` entry points).
#[track_caller]
pub(crate) fn ids_of<T: Float>(x: &Var<'_, T>) -> Tensor<usize> {
    crate::layers::embedding::indices_of("BERT", &x.value())
}

// ---------------------------------------------------------------- one layer

/// The attention of one layer: `query`, `key`, `value` projections and the per-head
/// `softmax(q·kᵀ/√d + M)·v` (`attention.self.*`).
pub struct BertSelfAttention<T: Float = f32> {
    /// `H -> H`
    pub query: Linear<T>,
    /// `H -> H`
    pub key: Linear<T>,
    /// `H -> H`
    pub value: Linear<T>,
    num_heads: usize,
    dropout_p: f64,
    dropout_rng: RefCell<StdRng>,
    training: bool,
}

impl<T: Float> BertSelfAttention<T> {
    /// Initialised as Hugging Face's.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertSelfAttention};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let attn = BertSelfAttention::<f32>::new(&cfg);
    /// assert_eq!((attn.query.in_features(), attn.query.out_features()), (4, 4));
    /// assert!(attn.key.bias.as_ref().unwrap().value().to_vec().iter().all(|&b| b == 0.0));
    /// assert_eq!(attn.num_params(), 3 * (4 * 4 + 4));
    /// ```
    pub fn new(cfg: &BertConfig) -> Self {
        let h = cfg.hidden_size;
        BertSelfAttention {
            query: normal_linear(cfg, h, h),
            key: normal_linear(cfg, h, h),
            value: normal_linear(cfg, h, h),
            num_heads: cfg.num_attention_heads,
            dropout_p: cfg.attention_probs_dropout_prob,
            dropout_rng: RefCell::new(StdRng::seed_from_u64(next_seed())),
            training: true,
        }
    }

    /// `x [B, L, H]` -> `[B, L, H]`, heads concatenated; `padding` as [`BertInput`] makes it.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertSelfAttention};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let mut attn = BertSelfAttention::<f64>::new(&cfg);
    /// attn.eval();
    /// let tape = Tape::new();
    /// let x = tape.constant(Tensor::new((0..12).map(|i| i as f64 / 10.0).collect(), [1, 3, 4]));
    /// let padding = Tensor::new(vec![false, false, true], [1, 1, 1, 3]); // the third token is padding
    /// let y = attn.forward_masked(x, Some(&padding));
    /// assert_eq!(y.shape().dims(), &[1, 3, 4]);
    /// // a padding key gets weight 0: changing its state does not change the output
    /// let x2 = tape.constant(Tensor::new((0..12).map(|i| if i >= 8 { 5.0 } else { i as f64 / 10.0 }).collect(), [1, 3, 4]));
    /// let y2 = attn.forward_masked(x2, Some(&padding));
    /// let (a, b) = (y.value().to_vec(), y2.value().to_vec());
    /// assert!(a[..8].iter().zip(&b[..8]).all(|(p, q)| (p - q).abs() < 1e-12));
    /// ```
    #[track_caller]
    pub fn forward_masked<'t>(&self, x: Var<'t, T>, padding: Option<&Tensor<bool>>) -> Var<'t, T> {
        let s = x.shape();
        let width = self.query.in_features();
        if s.ndim() != 3 || s[2] != width {
            panic!("wengert: BertSelfAttention(H = {width}): input of shape {s} must be [B, L, {width}]");
        }
        let (b, l, h) = (s[0], s[1], self.num_heads);
        let heads = |y: Var<'t, T>| y.reshape([b, l, h, width / h]).permute(&[0, 2, 1, 3]);
        let (q, k, v) = (heads(self.query.forward(x)), heads(self.key.forward(x)), heads(self.value.forward(x)));
        let dropout = (self.dropout_p > 0.0 && self.training).then_some((self.dropout_p, &self.dropout_rng));
        let (context, _) = attention_heads(q, k, v, padding, dropout, false);
        context.permute(&[0, 2, 1, 3]).reshape([b, l, width])
    }
}

impl<T: Float> Module<T> for BertSelfAttention<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_masked(x, None)
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        self.query.visit_params(&format!("{prefix}query."), f);
        self.key.visit_params(&format!("{prefix}key."), f);
        self.value.visit_params(&format!("{prefix}value."), f);
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        self.query.visit_params_mut(&format!("{prefix}query."), f);
        self.key.visit_params_mut(&format!("{prefix}key."), f);
        self.value.visit_params_mut(&format!("{prefix}value."), f);
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
}

/// `LayerNorm(residual + dropout(dense(x)))`: the end of both blocks (`attention.output.*`
/// and `output.*`).
pub struct BertResidualOutput<T: Float = f32> {
    /// back to width H
    pub dense: Linear<T>,
    /// named `LayerNorm` as in Hugging Face
    pub layer_norm: LayerNorm<T>,
    /// on the block's output before the sum
    pub dropout: Dropout,
}

impl<T: Float> BertResidualOutput<T> {
    /// `inputs -> H`, initialised as Hugging Face's.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertResidualOutput};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let out = BertResidualOutput::<f32>::new(&cfg, cfg.intermediate_size); // the feed-forward block's end: 8 -> 4
    /// assert_eq!((out.dense.in_features(), out.dense.out_features()), (8, 4));
    /// assert_eq!(out.named_params().iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["dense.weight", "dense.bias", "LayerNorm.weight", "LayerNorm.bias"]);
    /// ```
    pub fn new(cfg: &BertConfig, inputs: usize) -> Self {
        BertResidualOutput { dense: normal_linear(cfg, inputs, cfg.hidden_size), layer_norm: layer_norm(cfg), dropout: Dropout::new(cfg.hidden_dropout_prob) }
    }

    /// `LayerNorm(residual + dropout(dense(x)))`.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertResidualOutput};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let mut out = BertResidualOutput::<f64>::new(&cfg, 8);
    /// out.eval();
    /// let tape = Tape::new();
    /// let x = tape.constant(Tensor::ones([2, 3, 8]));
    /// let residual = tape.var(Tensor::new((0..24).map(|i| i as f64).collect(), [2, 3, 4]));
    /// let y = out.forward_residual(x, residual);
    /// assert_eq!(y.shape().dims(), &[2, 3, 4]);
    /// let row = &y.value().to_vec()[..4]; // normalised over H: mean 0, variance 1 (γ = 1, β = 0)
    /// assert!(row.iter().sum::<f64>().abs() < 1e-9);
    /// assert!((row.iter().map(|v| v * v).sum::<f64>() / 4.0 - 1.0).abs() < 1e-6);
    /// ```
    #[track_caller]
    pub fn forward_residual<'t>(&self, x: Var<'t, T>, residual: Var<'t, T>) -> Var<'t, T> {
        self.layer_norm.forward(self.dropout.forward(self.dense.forward(x)) + residual)
    }
}

impl<T: Float> Module<T> for BertResidualOutput<T> {
    /// `LayerNorm(x + dropout(dense(x)))` (needs `inputs = H`).
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_residual(x, x)
    }
    visit_children!("dense" => dense, "LayerNorm" => layer_norm, "dropout" => dropout);
}

/// Self-attention and its output block (`attention.*`).
pub struct BertAttention<T: Float = f32> {
    /// named `self` as in Hugging Face
    pub self_attention: BertSelfAttention<T>,
    /// `LayerNorm(x + dropout(dense(attention)))`
    pub output: BertResidualOutput<T>,
}

impl<T: Float> Module<T> for BertAttention<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.output.forward_residual(self.self_attention.forward(x), x)
    }
    visit_children!("self" => self_attention, "output" => output);
}

/// `act(dense(x))`, the first half of the feed-forward block (`intermediate.*`).
pub struct BertIntermediate<T: Float = f32> {
    /// `H -> intermediate_size`
    pub dense: Linear<T>,
    activation: TransformerActivation,
}

impl<T: Float> Module<T> for BertIntermediate<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let h = self.dense.forward(x);
        match self.activation {
            TransformerActivation::Gelu => h.gelu(),
            TransformerActivation::GeluTanh => h.gelu_tanh(),
            TransformerActivation::Relu => h.relu(),
        }
    }
    visit_children!("dense" => dense);
}

/// One encoder layer (`encoder.layer.N.*`): attention block, then feed-forward block, each
/// post-norm with its residual.
pub struct BertLayer<T: Float = f32> {
    /// the attention block
    pub attention: BertAttention<T>,
    /// `act(W₁·a)`
    pub intermediate: BertIntermediate<T>,
    /// `LayerNorm(a + dropout(W₂·…))`
    pub output: BertResidualOutput<T>,
}

impl<T: Float> BertLayer<T> {
    /// Initialised as Hugging Face's.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertLayer};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let layer = BertLayer::<f32>::new(&cfg);
    /// assert_eq!(layer.named_params()[0].0, "attention.self.query.weight");
    /// assert_eq!(layer.intermediate.dense.out_features(), 8);
    /// // q, k, v, attention output: 4·(4·4 + 4); LayerNorms 2·(2·4); W₁ 4·8 + 8; W₂ 8·4 + 4
    /// assert_eq!(layer.num_params(), 80 + 16 + 40 + 36);
    /// ```
    pub fn new(cfg: &BertConfig) -> Self {
        BertLayer {
            attention: BertAttention { self_attention: BertSelfAttention::new(cfg), output: BertResidualOutput::new(cfg, cfg.hidden_size) },
            intermediate: BertIntermediate { dense: normal_linear(cfg, cfg.hidden_size, cfg.intermediate_size), activation: cfg.hidden_act },
            output: BertResidualOutput::new(cfg, cfg.intermediate_size),
        }
    }

    /// `x [B, L, H]` -> `[B, L, H]` with padding keys masked.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertLayer};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let mut layer = BertLayer::<f64>::new(&cfg);
    /// layer.eval();
    /// let tape = Tape::new();
    /// let x = tape.var(Tensor::new((0..24).map(|i| (i as f64).sin()).collect(), [2, 3, 4]));
    /// let padding = Tensor::new(vec![false, false, false, false, true, true], [2, 1, 1, 3]);
    /// let y = layer.forward_masked(x, Some(&padding));
    /// assert_eq!(y.shape().dims(), &[2, 3, 4]);
    /// assert_eq!(y.sum().backward().wrt(x).shape().dims(), &[2, 3, 4]);
    /// ```
    #[track_caller]
    pub fn forward_masked<'t>(&self, x: Var<'t, T>, padding: Option<&Tensor<bool>>) -> Var<'t, T> {
        let a = self.attention.output.forward_residual(self.attention.self_attention.forward_masked(x, padding), x);
        self.output.forward_residual(self.intermediate.forward(a), a)
    }
}

impl<T: Float> Module<T> for BertLayer<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.forward_masked(x, None)
    }
    visit_children!("attention" => attention, "intermediate" => intermediate, "output" => output);
}

/// `tanh(dense(h[:, 0]))`: the `[CLS]` token's state through one layer (`pooler.*`).
pub struct BertPooler<T: Float = f32> {
    /// `H -> H`
    pub dense: Linear<T>,
}

impl<T: Float> Module<T> for BertPooler<T> {
    /// `h [B, L, H]` -> `[B, H]`.
    #[track_caller]
    fn forward<'t>(&self, h: Var<'t, T>) -> Var<'t, T> {
        self.dense.forward(h.narrow(1, 0, 1).squeeze(1)).tanh()
    }
    visit_children!("dense" => dense);
}

// ---------------------------------------------------------------- the model

/// The encoder's layers (`encoder.layer.N.*`).
pub struct BertEncoder<T: Float = f32> {
    /// in order
    pub layer: Vec<BertLayer<T>>,
}

impl<T: Float> Module<T> for BertEncoder<T> {
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.layer.iter().fold(x, |h, layer| layer.forward(h))
    }
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        for (i, l) in self.layer.iter().enumerate() {
            l.visit_params(&format!("{prefix}layer.{i}."), f);
        }
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        for (i, l) in self.layer.iter_mut().enumerate() {
            l.visit_params_mut(&format!("{prefix}layer.{i}."), f);
        }
    }
    fn set_training(&mut self, training: bool) {
        self.layer.iter_mut().for_each(|l| l.set_training(training));
    }
}

/// BERT: embeddings, `num_hidden_layers` post-norm encoder layers and (optionally) the pooler,
/// with Hugging Face `BertModel`'s parameter names, so its `model.safetensors` loads as it is
/// ([`BertModel::from_pretrained`]).
///
/// ```
/// use wengert_nn::models::bert::{BertConfig, BertInput, BertModel};
/// use wengert_nn::prelude::*;
/// let cfg = BertConfig { vocab_size: 50, hidden_size: 8, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 16, max_position_embeddings: 16, ..BertConfig::default() };
/// let mut bert = BertModel::<f32>::new(&cfg);
/// bert.eval();
/// let tape = Tape::new();
/// let input = BertInput::new(Tensor::new(vec![1usize, 5, 9, 2, 3, 4], [2, 3]));
/// let h = bert.last_hidden_state(&tape, &input);
/// assert_eq!(h.shape().dims(), &[2, 3, 8]);
/// assert_eq!(bert.named_params()[0].0, "embeddings.word_embeddings.weight");
/// ```
pub struct BertModel<T: Float = f32> {
    /// `embeddings.*`
    pub embeddings: BertEmbeddings<T>,
    /// `encoder.layer.N.*`
    pub encoder: BertEncoder<T>,
    /// `pooler.*`; `None` for a model saved without it
    pub pooler: Option<BertPooler<T>>,
    config: BertConfig,
}

impl<T: Float> BertModel<T> {
    /// A model with a pooler, initialised as Hugging Face's (from the per-thread generator,
    /// [`crate::init::manual_seed`] makes it repeatable). Panics on an invalid config.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertModel};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// wengert_nn::init::manual_seed(7);
    /// let a = BertModel::<f32>::new(&cfg);
    /// wengert_nn::init::manual_seed(7);
    /// let b = BertModel::<f32>::new(&cfg);
    /// assert_eq!(a.named_params()[0].1.value(), b.named_params()[0].1.value()); // same seed, same weights
    /// assert!(a.pooler.is_some());
    /// let bad = BertConfig { num_attention_heads: 3, ..cfg }; // 3 does not divide 4
    /// assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| BertModel::<f32>::new(&bad))).is_err());
    /// ```
    #[track_caller]
    pub fn new(cfg: &BertConfig) -> Self {
        if let Err(reason) = cfg.check() {
            panic!("wengert: BertModel: {reason}");
        }
        BertModel {
            embeddings: BertEmbeddings::new(cfg),
            encoder: BertEncoder { layer: (0..cfg.num_hidden_layers).map(|_| BertLayer::new(cfg)).collect() },
            pooler: Some(BertPooler { dense: normal_linear(cfg, cfg.hidden_size, cfg.hidden_size) }),
            config: cfg.clone(),
        }
    }

    /// The model without its pooler (Hugging Face's `add_pooling_layer=False`).
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertModel};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let full = BertModel::<f32>::new(&cfg).num_params();
    /// let bare = BertModel::<f32>::new(&cfg).without_pooler();
    /// assert!(bare.pooler.is_none());
    /// assert_eq!(full - bare.num_params(), 4 * 4 + 4); // the pooler's dense layer
    /// assert!(bare.named_params().iter().all(|(n, _)| !n.starts_with("pooler.")));
    /// ```
    pub fn without_pooler(mut self) -> Self {
        self.pooler = None;
        self
    }

    /// Its hyperparameters.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertModel};
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let bert = BertModel::<f32>::new(&cfg);
    /// assert_eq!(bert.config(), &cfg);
    /// assert_eq!(bert.config().layer_norm_eps, 1e-12);
    /// ```
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Loads a Hugging Face model folder: `config.json` and `model.safetensors` (names as
    /// `BertModel` saves them, with or without the pooler, whose presence the file decides).
    /// The file's dtype must be `T`'s (F32 for `f32`). Errors: [`Error::ModelNotFound`] when
    /// the folder or a file is missing, and `load_module`'s naming errors for a missing,
    /// extra or mis-shaped tensor. The model comes back in eval mode, as
    /// `from_pretrained` returns it.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertModel};
    /// use wengert_nn::prelude::*;
    /// // a model folder as Hugging Face saves one: config.json and model.safetensors
    /// let dir = std::env::temp_dir().join(format!("wengert-doc-bert-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("config.json"), r#"{"vocab_size": 20, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 8}"#).unwrap();
    /// let cfg = BertConfig::from_file(dir.join("config.json"))?;
    /// let saved = BertModel::<f32>::new(&cfg).without_pooler();
    /// wengert_nn::serialize::save_module(dir.join("model.safetensors"), &saved)?;
    /// let bert = BertModel::<f32>::from_pretrained(&dir)?;
    /// assert!(bert.pooler.is_none()); // the file decides
    /// assert_eq!(bert.named_params()[0].1.value(), saved.named_params()[0].1.value());
    /// let missing = BertModel::<f32>::from_pretrained(dir.join("nowhere"));
    /// assert!(matches!(missing, Err(wengert_nn::Error::ModelNotFound { .. })));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn from_pretrained(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let hint = "give the folder of a Hugging Face BERT model (config.json, model.safetensors); scripts/fetch_minilm.sh fetches all-MiniLM-L6-v2";
        let [config, weights] = ["config.json", "model.safetensors"].map(|f| dir.join(f));
        for path in [dir, &config, &weights] {
            if !path.exists() {
                return Err(Error::ModelNotFound { path: path.to_path_buf(), hint: hint.into() });
            }
        }
        let cfg = BertConfig::from_file(&config)?;
        let has_pooler = crate::serialize::tensor_names(&weights)?.iter().any(|n| n.starts_with("pooler."));
        let model = BertModel::new(&cfg);
        let mut model = if has_pooler { model } else { model.without_pooler() };
        crate::serialize::load_module(&weights, &mut model)?;
        model.eval();
        Ok(model)
    }

    /// The last layer's hidden states `[B, L, H]`.
    ///
    /// With recording off ([`Tape::no_grad`], inference) each layer runs on a scratch tape
    /// that is dropped before the next layer starts, so its activations are freed as PyTorch
    /// frees them under `inference_mode` and only one layer's are held at a time (a tape keeps
    /// every value until it is dropped; the whole 6-layer MiniLM at 32x128 tokens would hold
    /// about 1.2 GB). The result is the same tensor either way.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertInput, BertModel};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let mut bert = BertModel::<f64>::new(&cfg);
    /// bert.eval();
    /// let mut input = BertInput::new(Tensor::new(vec![1usize, 5, 9, 2, 3, 0], [2, 3]));
    /// input.attention_mask = Tensor::new(vec![true, true, true, true, true, false], [2, 3]); // the last token is padding
    /// let tape = Tape::new();
    /// let recorded = bert.last_hidden_state(&tape, &input);
    /// let inference = tape.no_grad(|| bert.last_hidden_state(&tape, &input));
    /// assert_eq!(recorded.shape().dims(), &[2, 3, 4]);
    /// assert_eq!(recorded.value(), inference.value());
    /// ```
    #[track_caller]
    pub fn last_hidden_state<'t>(&self, tape: &'t Tape<T>, input: &BertInput) -> Var<'t, T> {
        let padding = input.padding_keys();
        if !tape.is_grad_enabled() {
            let scratch = Tape::new();
            let mut h = scratch.no_grad(|| self.embeddings.forward_input(&scratch, input).value());
            for layer in &self.encoder.layer {
                let scratch = Tape::new();
                h = scratch.no_grad(|| layer.forward_masked(scratch.constant(h), padding.as_ref()).value());
            }
            return tape.constant(h);
        }
        let h = self.embeddings.forward_input(tape, input);
        self.encoder.layer.iter().fold(h, |h, layer| layer.forward_masked(h, padding.as_ref()))
    }

    /// The pooler's output `[B, H]` for hidden states `h`; panics when the model has none.
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertInput, BertModel};
    /// use wengert_nn::prelude::*;
    /// let cfg = BertConfig { vocab_size: 20, hidden_size: 4, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 8, max_position_embeddings: 8, ..BertConfig::default() };
    /// let mut bert = BertModel::<f32>::new(&cfg);
    /// bert.eval();
    /// let tape = Tape::new();
    /// let h = bert.last_hidden_state(&tape, &BertInput::new(Tensor::new(vec![1usize, 5, 9, 2, 3, 4], [2, 3])));
    /// let pooled = bert.pooler_output(h);
    /// assert_eq!(pooled.shape().dims(), &[2, 4]);
    /// assert!(pooled.value().to_vec().iter().all(|v| v.abs() < 1.0)); // tanh
    /// let bare = bert.without_pooler();
    /// assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| bare.pooler_output(h))).is_err());
    /// ```
    #[track_caller]
    pub fn pooler_output<'t>(&self, h: Var<'t, T>) -> Var<'t, T> {
        match &self.pooler {
            Some(p) => p.forward(h),
            None => panic!("wengert: BertModel: this model has no pooler"),
        }
    }
}

impl<T: Float> Module<T> for BertModel<T> {
    /// Reads `x [B, L]` as token ids (no padding, segment 0): the last hidden states.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.last_hidden_state(x.tape(), &BertInput::new(ids_of(&x)))
    }
    visit_children!("embeddings" => embeddings, "encoder" => encoder, "pooler" => pooler [optional]);
}

/// Mean of the real tokens' states (sentence-transformers' mean pooling):
/// `Σ_l h[b, l]·m[b, l] / max(Σ_l m[b, l], 1e-9)`, `h [B, L, H]`, `mask [B, L]` -> `[B, H]`.
///
/// ```
/// use wengert_nn::models::bert::mean_pool;
/// use wengert_nn::prelude::*;
/// let tape = Tape::new();
/// let h = tape.constant(Tensor::new(vec![1.0, 2.0, 3.0, 4.0, 9.0, 9.0], [1, 3, 2]));
/// let mask = Tensor::new(vec![true, true, false], [1, 3]);
/// assert_eq!(mean_pool(h, &mask).value().to_vec(), [2.0, 3.0]);
/// ```
#[track_caller]
pub fn mean_pool<'t, T: Float>(h: Var<'t, T>, mask: &Tensor<bool>) -> Var<'t, T> {
    let s = h.shape();
    if s.ndim() != 3 || mask.dims() != &s[..2] {
        panic!("wengert: mean_pool: hidden states {s} must be [B, L, H] for a mask [B, L], got mask {}", mask.shape());
    }
    let m = Tensor::new(mask.as_slice().iter().map(|&k| if k { T::ONE } else { T::ZERO }).collect(), [s[0], s[1], 1]);
    let counts = m.sum_axes(&[1], false).map(|c| c.max(T::from_f64(1e-9)));
    (h * h.tape().constant(m)).sum_axes(&[1], false) / h.tape().constant(counts)
}

/// `x / max(‖x‖₂, 1e-12)` along the last axis (PyTorch's `F.normalize(x, dim=-1)`).
///
/// ```
/// use wengert_nn::models::bert::l2_normalize;
/// use wengert_nn::prelude::*;
/// let tape = Tape::new();
/// let y = l2_normalize(tape.constant(Tensor::new(vec![3.0, 4.0], [1, 2])));
/// assert_eq!(y.value().to_vec(), [0.6, 0.8]);
/// ```
pub fn l2_normalize<'t, T: Float>(x: Var<'t, T>) -> Var<'t, T> {
    let norm = x.square().sum_axes(&[-1], true).sqrt();
    x / norm.clamp(T::from_f64(1e-12), T::INFINITY)
}
