//! Conv and pool layers: parameter and input gradients against finite differences, shapes,
//! and the CNN example's short run.

use proptest::prelude::*;
use wengert::core::{gradcheck, Tape, Tensor};
use wengert::nn::gradcheck::check_params_at;
use wengert::nn::init::manual_seed;
use wengert::nn::layers::{ConvConfig, ConvTransposeConfig};
use wengert::nn::prelude::*;

#[path = "../examples/cnn_digits.rs"]
mod cnn_digits;

fn input(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::from_fn(shape.to_vec(), |i| ((i.iter().fold(seed as usize, |a, &k| a * 31 + k) * 37) % 101) as f64 / 50.0 - 1.0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn conv_layer_gradients(seed in 0u64..1000, k in 1usize..4, stride in 1usize..3, padding in 0usize..2, groups in 1usize..3) {
        manual_seed(seed);
        let cfg = ConvConfig { stride, padding, groups, ..Default::default() };
        let x = input(&[2, 2 * groups, 5, 6], seed);
        let mut conv = Conv2d::<f64>::with_config(2 * groups, 3 * groups, k, cfg);
        check_params_at(&mut conv, &x).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradcheck(|v| conv.forward(v[0]), std::slice::from_ref(&x)).map_err(|e| TestCaseError::fail(e.to_string()))?;

        let x1 = input(&[2, 2 * groups, 7], seed);
        let mut conv1 = Conv1d::<f64>::with_config(2 * groups, groups, k, cfg);
        check_params_at(&mut conv1, &x1).map_err(|e| TestCaseError::fail(e.to_string()))?;

        let tcfg = ConvTransposeConfig { stride, padding: padding.min(k - 1), output_padding: stride - 1, groups, ..Default::default() };
        let mut up = ConvTranspose2d::<f64>::with_config(2 * groups, groups, k, tcfg);
        let xs = input(&[1, 2 * groups, 3, 4], seed);
        check_params_at(&mut up, &xs).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

#[test]
fn layer_shapes_and_names() {
    manual_seed(0);
    let model = cnn_digits::cnn();
    let names: Vec<String> = model.named_params().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias"]);
    let tape = Tape::<f32>::new();
    let y = model.forward(tape.constant(Tensor::zeros([5, 1, 8, 8])));
    assert_eq!(y.shape().dims(), &[5, 10]);
    let up = ConvTranspose2d::<f32>::with_config(3, 2, 3, ConvTransposeConfig { stride: 2, padding: 1, output_padding: 1, ..Default::default() });
    assert_eq!(up.forward(tape.constant(Tensor::zeros([1, 3, 4, 4]))).shape().dims(), &[1, 2, 8, 8]);
    let pooled = AdaptiveAvgPool2d(3, 2).forward(tape.constant(Tensor::ones([1, 2, 7, 5])));
    assert_eq!(pooled.value(), Tensor::ones([1, 2, 3, 2]));
    assert_eq!(AvgPool2d::new(2).forward(tape.constant(Tensor::ones([1, 1, 4, 4]))).shape().dims(), &[1, 1, 2, 2]);
}

#[test]
#[should_panic(expected = "wengert: conv2d: weight of shape [4, 3, 3, 3] does not fit input [1, 2, 8, 8]")]
fn conv_names_shapes_on_channel_mismatch() {
    let conv = Conv2d::<f32>::new(3, 4, 3);
    let tape = Tape::new();
    let _ = conv.forward(tape.constant(Tensor::zeros([1, 2, 8, 8])));
}

#[test]
fn cnn_digits_learns() {
    let r = cnn_digits::run(8, 2, false).unwrap();
    let l = &r.history.train_loss;
    assert!(l[l.len() - 1] < 0.5 * l[0], "loss must fall: {l:?}");
    assert!(r.test_accuracy >= 0.95, "test accuracy {}", r.test_accuracy);
}
