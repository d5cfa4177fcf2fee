use wengert::nn::models::bert::{BertConfig, BertInput, BertModel};
use wengert::prelude::*;
fn main() {
    let cfg = BertConfig { hidden_size: 384, num_hidden_layers: 6, num_attention_heads: 12, intermediate_size: 1536, ..BertConfig::default() };
    let mut model = BertModel::<f32>::new(&cfg).without_pooler();
    model.eval();
    let ids = Tensor::from_fn([32, 128], |i| 1000 + (i[0] * 7919 + i[1] * 104729) % 28000);
    let input = BertInput::new(ids);
    let bwd = std::env::args().nth(1).is_some();
    for _ in 0..std::env::var("N").map(|s| s.parse().unwrap()).unwrap_or(6) {
        let t = std::time::Instant::now();
        let tape = Tape::new();
        if bwd {
            let h = model.last_hidden_state(&tape, &input);
            let g = h.square().mean().backward_release();
            std::hint::black_box(g);
        } else {
            tape.no_grad(|| std::hint::black_box(model.last_hidden_state(&tape, &input).value()));
        }
        println!("{:.3} s", t.elapsed().as_secs_f64());
    }
}
