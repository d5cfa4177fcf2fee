//! `#[derive(Module)]`: names from the fields (modules, lists, options, renames, own
//! parameters, buffers, skips), training mode reaching every child, save/load and the
//! optimizer through the generated visitors, gradients checked, and models that move across
//! threads.

use wengert::core::{Param, Tape, Tensor, Var};
use wengert::nn::gradcheck::check_params_at;
use wengert::nn::init::manual_seed;
use wengert::nn::prelude::*;
use wengert::nn::serialize::{load_module, save_module};

/// A residual MLP over any float type, with every kind of field the derive knows.
#[derive(Module)]
struct ResidualMlp<T: Float> {
    input: Linear<T>,
    blocks: Vec<Linear<T>>,
    norm: Option<LayerNorm<T>>,
    #[module(rename = "LayerNorm")]
    final_norm: LayerNorm<T>,
    dropout: Dropout,
    /// a learned output scale of its own
    scale: Param<T>,
    /// a float buffer and a counter, saved and loaded with the parameters
    #[module(buffer)]
    running_mean: Tensor<T>,
    #[module(buffer)]
    calls: Tensor<i64>,
    #[module(skip)]
    #[allow(dead_code)]
    description: String,
}

impl<T: Float> ResidualMlp<T> {
    fn new(width: usize, blocks: usize, norm: bool) -> Self {
        ResidualMlp {
            input: Linear::new(3, width),
            blocks: (0..blocks).map(|_| Linear::new(width, width)).collect(),
            norm: norm.then(|| LayerNorm::new(width)),
            final_norm: LayerNorm::new(width),
            dropout: Dropout::new(0.5),
            scale: Param::new(Tensor::full([1], T::from_f64(0.7))),
            running_mean: Tensor::zeros([width]),
            calls: Tensor::new(vec![0], [1]),
            description: "not state".into(),
        }
    }

    fn forward<'t>(&self, x: Var<'t, T>) -> Var<'t, T> {
        let mut h = self.input.forward(x).tanh();
        for block in &self.blocks {
            h = h + block.forward(h).tanh();
        }
        if let Some(norm) = &self.norm {
            h = norm.forward(h);
        }
        let h = self.dropout.forward(self.final_norm.forward(h));
        h * x.tape().param(&self.scale)
    }
}

/// No type parameter: the element type is f32.
#[derive(Module)]
struct Small {
    layer: Linear,
}

impl Small {
    fn forward<'t>(&self, x: Var<'t, f32>) -> Var<'t, f32> {
        self.layer.forward(x).relu()
    }
}

/// No type parameter, f64 by the attribute.
#[derive(Module)]
#[module(float = f64)]
struct SmallF64 {
    layer: Linear<f64>,
}

impl SmallF64 {
    fn forward<'t>(&self, x: Var<'t, f64>) -> Var<'t, f64> {
        self.layer.forward(x).sigmoid()
    }
}

fn names<M: Module<f32>>(m: &M) -> (Vec<String>, Vec<String>) {
    (m.named_params().into_iter().map(|(n, _)| n).collect(), m.named_buffers().into_iter().map(|(n, _)| n).collect())
}

#[test]
fn names_come_from_the_fields() {
    let model = ResidualMlp::<f32>::new(4, 2, true);
    let (params, buffers) = names(&model);
    let expected = [
        "input.weight", "input.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "norm.weight", "norm.bias",
        "LayerNorm.weight", "LayerNorm.bias", "scale",
    ];
    assert_eq!(params, expected);
    assert_eq!(buffers, ["running_mean", "calls"]);
    let without_norm = ResidualMlp::<f32>::new(4, 0, false);
    assert_eq!(names(&without_norm).0, ["input.weight", "input.bias", "LayerNorm.weight", "LayerNorm.bias", "scale"]);
    assert_eq!(names(&Small { layer: Linear::new(2, 2) }).0, ["layer.weight", "layer.bias"]);
    let f64_model = SmallF64 { layer: Linear::new(2, 1) };
    assert_eq!(f64_model.named_params().len(), 2);
    assert_eq!(f64_model.num_params(), 3);
}

#[test]
fn derived_models_nest_and_train_mode_reaches_every_child() {
    manual_seed(0);
    // dropout in training, identity in eval: set_training reaches the Dropout field
    let mut model = ResidualMlp::<f32>::new(8, 1, false);
    let tape = Tape::new();
    let x = tape.constant(Tensor::ones([64, 3]));
    // training: dropout zeroes about half the outputs
    let zeros = |y: &Tensor<f32>| y.as_slice().iter().filter(|&&v| v == 0.0).count();
    assert!(zeros(&Module::forward(&model, x).value()) > 100);
    model.eval();
    assert_eq!(zeros(&Module::forward(&model, x).value()), 0, "eval mode must reach the Dropout field");
    let stack = Sequential::new().add(model).add(Linear::new(8, 2));
    assert_eq!(stack.named_params()[0].0, "0.input.weight");
    assert_eq!(stack.named_buffers().into_iter().map(|(n, _)| n).collect::<Vec<_>>(), ["0.running_mean", "0.calls"]);
}

#[test]
fn save_load_and_optimizer_use_the_generated_visitors() {
    manual_seed(1);
    let mut model = ResidualMlp::<f32>::new(4, 2, true);
    model.eval();
    model.running_mean = Tensor::new(vec![1.0, 2.0, 3.0, 4.0], [4]);
    model.calls = Tensor::new(vec![17], [1]);
    let x = Tensor::from_fn([5, 3], |i| (i[0] * 3 + i[1]) as f32 / 7.0 - 1.0);
    let y = Tensor::new(vec![0usize, 1, 2, 3, 0], [5]);
    let mut opt = Adam::new(AdamConfig::default());
    for _ in 0..3 {
        let tape = Tape::new();
        let loss = cross_entropy(Module::forward(&model, tape.constant(x.clone())), &y);
        let grads = loss.backward();
        opt.step(&mut model, &grads).unwrap(); // every parameter, `scale` included, has a gradient
    }
    assert_ne!(model.scale.value().as_slice()[0], 0.7, "the optimizer reached the struct's own parameter");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    save_module(&path, &model).unwrap();
    manual_seed(2);
    let mut other = ResidualMlp::<f32>::new(4, 2, true);
    other.eval();
    load_module(&path, &mut other).unwrap();
    assert_eq!(other.running_mean, model.running_mean);
    assert_eq!(other.calls.as_slice(), [17]);
    let out = |m: &ResidualMlp<f32>| {
        let tape = Tape::new();
        Module::forward(m, tape.constant(x.clone())).value()
    };
    assert_eq!(out(&other), out(&model));
}

#[test]
fn gradients_of_a_derived_model_match_finite_differences() {
    manual_seed(3);
    let mut model = ResidualMlp::<f64>::new(3, 2, true);
    model.eval();
    check_params_at(&mut model, &Tensor::from_fn([4, 3], |i| (i[0] as f64 - 1.5) * 0.4 + i[1] as f64 * 0.3)).unwrap();
}

#[test]
fn models_move_to_another_thread() {
    manual_seed(4);
    let mut model = Sequential::<f32>::new().add(Small { layer: Linear::new(3, 4) }).add(Dropout::new(0.1)).add(Linear::new(4, 2));
    model.eval();
    let trained = std::thread::spawn(move || {
        let mut opt = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() });
        let tape = Tape::new();
        let loss = cross_entropy(model.forward(tape.constant(Tensor::ones([2, 3]))), &Tensor::new(vec![0usize, 1], [2]));
        let grads = loss.backward();
        opt.step(&mut model, &grads).unwrap();
        model
    })
    .join()
    .unwrap();
    assert_eq!(trained.num_params(), 4 * 3 + 4 + 2 * 4 + 2);
}
