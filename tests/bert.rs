//! BERT: the pretrained all-MiniLM-L6-v2 gives sentence-transformers' embeddings, gradients
//! of the same code (1 layer, tiny width, f64) agree with finite differences, and bad
//! checkpoints are named and leave the model as it was.

// The check! macro clones each input into the slice gradcheck takes, whatever their count.
#![allow(clippy::cloned_ref_to_slice_refs)]

#[macro_use]
mod common;
use common::cfg;

use std::path::Path;

use proptest::prelude::*;
use wengert::core::testing::tensor_of;
use wengert::core::{Tape, Tensor, Var};
use wengert::nn::gradcheck::check_params;
use wengert::nn::init::manual_seed;
use wengert::nn::models::bert::{l2_normalize, mean_pool, BertConfig, BertInput, BertModel};
use wengert::nn::models::sentence::{minilm_dir, SentenceEncoder};
use wengert::nn::prelude::{Module, TransformerActivation};
use wengert::nn::serialize::{load_module, save_module};
use wengert::nn::Error;

fn tiny(layers: usize, hidden: usize, heads: usize) -> BertConfig {
    BertConfig {
        vocab_size: 11,
        hidden_size: hidden,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        intermediate_size: 2 * hidden,
        max_position_embeddings: 6,
        ..BertConfig::default()
    }
}

/// A batch `[b, l]` of ids in 1..11 (0 is the padding token, whose row has no gradient by
/// design), every sequence at least one real token long.
fn batch(b: usize, l: usize) -> impl Strategy<Value = BertInput> {
    (proptest::collection::vec(1usize..11, b * l), proptest::collection::vec(1..=l, b), proptest::collection::vec(0usize..2, b * l)).prop_map(
        move |(ids, lens, types)| BertInput {
            input_ids: Tensor::new(ids, [b, l]),
            attention_mask: Tensor::new((0..b * l).map(|i| i % l < lens[i / l]).collect(), [b, l]),
            token_type_ids: Tensor::new(types, [b, l]),
        },
    )
}

fn all_params_scrambled(model: &mut BertModel<f64>, seed: u64) {
    // LayerNorm's γ = 1, β = 0 and zero biases hide wrong gradients; give every parameter a
    // random value
    let mut state = seed;
    for (_, p) in model.named_params_mut() {
        let values = (0..p.value().numel())
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1.2
            })
            .collect();
        let v = Tensor::new(values, p.value().shape().clone());
        p.set(v).unwrap();
    }
}

proptest! {
    #![proptest_config(cfg(10))]

    /// Every parameter of a 1-layer model, through the hidden states, the pooler and the
    /// sentence pooling, in eval mode (dropout off, so each evaluation is the same function).
    #[test]
    fn bert_parameter_gradients(input in (1usize..3, 1usize..5).prop_flat_map(|(b, l)| batch(b, l)), heads in 1usize..3, act in 0usize..3, seed in any::<u64>()) {
        manual_seed(seed);
        let cfg = BertConfig { hidden_act: [TransformerActivation::Gelu, TransformerActivation::GeluTanh, TransformerActivation::Relu][act], ..tiny(1, 4, heads) };
        let mut model = BertModel::<f64>::new(&cfg);
        all_params_scrambled(&mut model, seed);
        model.eval();
        check_params(&mut model, |m, tape| {
            let h = m.last_hidden_state(tape, &input);
            let pooled = l2_normalize(mean_pool(h, &input.attention_mask));
            Var::concat(&[h.reshape([h.numel()]), m.pooler_output(h).reshape([pooled.numel()]), pooled.reshape([pooled.numel()])], 0)
        })
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    /// The gradient with respect to a layer's input, padding keys masked.
    #[test]
    fn bert_layer_input_gradient(x in tensor_of(vec![2, 3, 4], -2.0, 2.0), pad in 0usize..3, seed in any::<u64>()) {
        manual_seed(seed);
        let mut model = BertModel::<f64>::new(&tiny(1, 4, 2));
        all_params_scrambled(&mut model, seed);
        model.eval();
        let layer = &model.encoder.layer[0];
        let mask = Tensor::new((0..6).map(|i| i / 3 == 1 && i % 3 >= 3 - pad).collect(), [2, 1, 1, 3]);
        check!(|v| layer.forward_masked(v[0], Some(&mask)), x);
    }
}

/// Pads a batch differently and gets the same pooled embedding: padding is invisible.
#[test]
fn padding_does_not_change_the_embedding() {
    manual_seed(3);
    let mut model = BertModel::<f64>::new(&tiny(2, 8, 2));
    model.eval();
    let embed = |input: &BertInput| {
        let tape = Tape::new();
        l2_normalize(mean_pool(model.last_hidden_state(&tape, input), &input.attention_mask)).value()
    };
    let short = BertInput::new(Tensor::new(vec![1usize, 4, 7, 2], [1, 4]));
    let mut padded = BertInput::new(Tensor::new(vec![1usize, 4, 7, 2, 0, 0], [1, 6]));
    padded.attention_mask = Tensor::new(vec![true, true, true, true, false, false], [1, 6]);
    let (a, b) = (embed(&short), embed(&padded));
    let worst = a.as_slice().iter().zip(b.as_slice()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-14, "padding moved the embedding by {worst}");
}

/// Inference (recording off, one scratch tape per layer) gives the recorded forward's values
/// bit for bit.
#[test]
fn inference_path_equals_the_recorded_forward() {
    manual_seed(4);
    let mut model = BertModel::<f32>::new(&tiny(3, 8, 2));
    model.eval();
    let mut input = BertInput::new(Tensor::new(vec![1usize, 4, 7, 2, 5, 3, 9, 0], [2, 4]));
    input.attention_mask = Tensor::new(vec![true, true, true, true, true, true, false, false], [2, 4]);
    let tape = Tape::new();
    let recorded = model.last_hidden_state(&tape, &input).value();
    let inferred = tape.no_grad(|| model.last_hidden_state(&tape, &input).value());
    assert_eq!(recorded, inferred);
}

/// Hugging Face `BertModel`'s state_dict names, for layer 0 and the ends.
#[test]
fn parameter_names_are_hugging_faces() {
    let model = BertModel::<f32>::new(&tiny(1, 4, 2));
    let mut names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
    names.extend(model.named_buffers().into_iter().map(|(n, _)| n));
    let layer = |s: &str| format!("encoder.layer.0.{s}");
    let mut expected: Vec<String> = ["word_embeddings.weight", "position_embeddings.weight", "token_type_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias"]
        .iter()
        .map(|s| format!("embeddings.{s}"))
        .collect();
    for s in ["query", "key", "value"] {
        expected.extend([layer(&format!("attention.self.{s}.weight")), layer(&format!("attention.self.{s}.bias"))]);
    }
    for s in ["attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias"] {
        expected.push(layer(s));
    }
    for s in ["intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"] {
        expected.push(layer(s));
    }
    expected.extend(["pooler.dense.weight".into(), "pooler.dense.bias".into(), "embeddings.position_ids".into()]);
    assert_eq!(names, expected);
}

/// A saved folder loads back through `from_pretrained`, with or without a pooler; a missing
/// folder says how to fetch a model; a bad checkpoint is named and changes nothing.
#[test]
fn from_pretrained_round_trip_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"{"vocab_size": 11, "hidden_size": 4, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 8, "max_position_embeddings": 6}"#;
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    manual_seed(1);
    let model = BertModel::<f32>::new(&BertConfig::from_json(config).unwrap());
    save_module(dir.path().join("model.safetensors"), &model).unwrap();
    let loaded = BertModel::<f32>::from_pretrained(dir.path()).unwrap();
    assert!(loaded.pooler.is_some());
    let input = BertInput::new(Tensor::new(vec![1usize, 5, 9], [1, 3]));
    let out = |m: &BertModel<f32>| {
        let tape = Tape::new();
        let h = m.last_hidden_state(&tape, &input);
        (h.value(), m.pooler_output(h).value())
    };
    let mut reference = model;
    reference.eval();
    assert_eq!(out(&loaded), out(&reference));

    let without = reference.without_pooler();
    save_module(dir.path().join("model.safetensors"), &without).unwrap();
    assert!(BertModel::<f32>::from_pretrained(dir.path()).unwrap().pooler.is_none());

    match BertModel::<f32>::from_pretrained(dir.path().join("nowhere")) {
        Err(e @ Error::ModelNotFound { .. }) => assert!(e.to_string().contains("fetch_minilm.sh"), "{e}"),
        other => panic!("expected ModelNotFound, got {:?}", other.err()),
    }

    // a 6-wide checkpoint into a 4-wide model: named, and the model is unchanged
    manual_seed(2);
    let wider = BertModel::<f32>::new(&BertConfig { hidden_size: 6, ..tiny(1, 6, 2) });
    let path = dir.path().join("wider.safetensors");
    save_module(&path, &wider).unwrap();
    let mut target = BertModel::<f32>::new(&tiny(1, 4, 2));
    let before: Vec<_> = target.named_params().into_iter().map(|(n, p)| (n, p.value().clone())).collect();
    match load_module(&path, &mut target) {
        Err(Error::TensorMismatch { name, .. }) => assert_eq!(name, "embeddings.word_embeddings.weight"),
        other => panic!("expected TensorMismatch, got {other:?}"),
    }
    let after: Vec<_> = target.named_params().into_iter().map(|(n, p)| (n, p.value().clone())).collect();
    assert_eq!(before, after);
}

/// The reference values: sentence-transformers 5 / torch, f32, committed once (see the
/// file's `provenance`).
struct Reference {
    sentences: Vec<String>,
    input_ids: Vec<Vec<usize>>,
    embeddings: Vec<Vec<f64>>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/minilm_reference.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = |key: &str| -> Vec<Vec<f64>> {
        json[key].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()).collect()
    };
    Reference {
        sentences: json["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        input_ids: rows("input_ids").into_iter().map(|r| r.into_iter().map(|x| x as usize).collect()).collect(),
        embeddings: rows("embeddings"),
    }
}

/// all-MiniLM-L6-v2 through wengert gives sentence-transformers' embeddings: the same token
/// ids, cosine ≥ 0.99999 and max |Δ| ≤ 1e-4 for each sentence.
#[test]
fn minilm_matches_sentence_transformers() {
    let dir = match minilm_dir(env!("CARGO_MANIFEST_DIR")) {
        Ok(dir) => dir,
        Err(e) => {
            println!("skipped: {e}");
            return;
        }
    };
    let reference = reference();
    let encoder = SentenceEncoder::<f32>::from_dir(&dir).unwrap();
    assert!(encoder.normalizes());
    assert_eq!(encoder.max_seq_length(), 256);
    let sentences: Vec<&str> = reference.sentences.iter().map(|s| s.as_str()).collect();
    let input = encoder.tokenize(&sentences).unwrap();
    let l = input.input_ids.dims()[1];
    for (i, ids) in reference.input_ids.iter().enumerate() {
        let row = &input.input_ids.as_slice()[i * l..(i + 1) * l];
        let real: Vec<usize> = row.iter().zip(&input.attention_mask.as_slice()[i * l..(i + 1) * l]).filter(|(_, &m)| m).map(|(&t, _)| t).collect();
        assert_eq!(&real, ids, "token ids of sentence {i}");
    }
    let embeddings = encoder.embed(&sentences).unwrap();
    let h = embeddings.dims()[1];
    for (i, want) in reference.embeddings.iter().enumerate() {
        let got: Vec<f64> = embeddings.as_slice()[i * h..(i + 1) * h].iter().map(|&x| x as f64).collect();
        let dot: f64 = got.iter().zip(want).map(|(a, b)| a * b).sum();
        let norms = got.iter().map(|a| a * a).sum::<f64>().sqrt() * want.iter().map(|b| b * b).sum::<f64>().sqrt();
        let cosine = dot / norms;
        let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        println!("sentence {i}: cosine {cosine:.9}, max |Δ| {worst:.2e}");
        assert!(cosine >= 0.99999, "sentence {i}: cosine {cosine}");
        assert!(worst <= 1e-4, "sentence {i}: max abs error {worst}");
    }
}
