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
        let cfg = ConvConfig { groups, ..ConvConfig::default().with_stride(stride).with_padding(padding) };
        let x = input(&[2, 2 * groups, 5, 6], seed);
        let mut conv = Conv2d::<f64>::with_config(2 * groups, 3 * groups, k, cfg);
        check_params_at(&mut conv, &x).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradcheck(|v| conv.forward(v[0]), std::slice::from_ref(&x)).map_err(|e| TestCaseError::fail(e.to_string()))?;

        let x1 = input(&[2, 2 * groups, 7], seed);
        let mut conv1 = Conv1d::<f64>::with_config(2 * groups, groups, k, cfg);
        check_params_at(&mut conv1, &x1).map_err(|e| TestCaseError::fail(e.to_string()))?;

        let tcfg = ConvTransposeConfig { groups, ..ConvTransposeConfig::default().with_stride(stride).with_padding(padding.min(k - 1)).with_output_padding(stride - 1) };
        let mut up = ConvTranspose2d::<f64>::with_config(2 * groups, groups, k, tcfg);
        let xs = input(&[1, 2 * groups, 3, 4], seed);
        check_params_at(&mut up, &xs).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// PyTorch's tuple arguments: a different kernel, stride, padding and dilation per axis,
    /// for Conv2d, ConvTranspose2d and both pools.
    #[test]
    fn rectangular_layer_gradients(seed in 0u64..1000, kh in 1usize..4, kw in 1usize..4, sh in 1usize..3, sw in 1usize..3, ph in 0usize..2, pw in 0usize..2, dw in 1usize..3) {
        manual_seed(seed);
        let cfg = ConvConfig::default().with_stride((sh, sw)).with_padding((ph, pw)).with_dilation((1, dw));
        let x = input(&[2, 2, 6, 7], seed);
        let mut conv = Conv2d::<f64>::with_config(2, 3, (kh, kw), cfg);
        prop_assert_eq!(conv.weight.value().dims(), &[3, 2, kh, kw]);
        check_params_at(&mut conv, &x).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradcheck(|v| conv.forward(v[0]), std::slice::from_ref(&x)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let tcfg = ConvTransposeConfig::default().with_stride((sh, sw)).with_padding((ph.min(kh - 1), pw.min(kw - 1)));
        let mut up = ConvTranspose2d::<f64>::with_config(2, 1, (kh, kw), tcfg);
        check_params_at(&mut up, &input(&[1, 2, 3, 4], seed)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let pad = (ph.min(kh / 2), pw.min(kw / 2));
        let max = MaxPool2d::new((kh, kw)).with_stride((sh, sw)).with_padding(pad);
        let avg = AvgPool2d::new((kh, kw)).with_stride((sh, sw)).with_padding(pad);
        gradcheck(|v| Module::<f64>::forward(&max, v[0]), std::slice::from_ref(&x)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradcheck(|v| Module::<f64>::forward(&avg, v[0]), std::slice::from_ref(&x)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

/// PyTorch's pooling written out as its CPU kernel does it: output size with `ceil_mode`
/// (rounded up, then one less if the last window would start in the right padding), each
/// window clipped to the padded input for its divisor (`count_include_pad`) and to the input
/// for its elements.
fn reference_pool(x: &Tensor<f64>, k: (usize, usize), s: (usize, usize), p: (usize, usize), ceil: bool, include_pad: bool, max: bool) -> Tensor<f64> {
    let (n, c, h, w) = (x.dims()[0], x.dims()[1], x.dims()[2], x.dims()[3]);
    let out_len = |len: usize, k: usize, s: usize, p: usize| {
        let span = len + 2 * p - k;
        let mut out = if ceil { span.div_ceil(s) + 1 } else { span / s + 1 };
        if ceil && (out - 1) * s >= len + p {
            out -= 1;
        }
        out
    };
    let (oh, ow) = (out_len(h, k.0, s.0, p.0), out_len(w, k.1, s.1, p.1));
    Tensor::from_fn([n, c, oh, ow], |i| {
        let (hs, ws) = ((i[2] * s.0) as isize - p.0 as isize, (i[3] * s.1) as isize - p.1 as isize);
        let (he, we) = ((hs + k.0 as isize).min((h + p.0) as isize), (ws + k.1 as isize).min((w + p.1) as isize));
        let pool_size = ((he - hs) * (we - ws)) as f64;
        let (hs, ws, he, we) = (hs.max(0) as usize, ws.max(0) as usize, he.min(h as isize) as usize, we.min(w as isize) as usize);
        let cells = (hs..he).flat_map(|r| (ws..we).map(move |q| (r, q)));
        if max {
            cells.map(|(r, q)| x.get(&[i[0], i[1], r, q])).fold(f64::NEG_INFINITY, f64::max)
        } else {
            let sum: f64 = cells.map(|(r, q)| x.get(&[i[0], i[1], r, q])).sum();
            sum / if include_pad { pool_size } else { ((he - hs) * (we - ws)) as f64 }
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// `ceil_mode` and `count_include_pad = false` agree with PyTorch's kernel written out,
    /// and their gradients with finite differences.
    #[test]
    fn pool_ceil_mode_and_count_include_pad(seed in 0u64..1000, h in 1usize..7, w in 1usize..7, kh in 1usize..4, kw in 1usize..4, sh in 1usize..4, sw in 1usize..4, ceil in any::<bool>(), include_pad in any::<bool>()) {
        let (ph, pw) = ((seed as usize) % (kh / 2 + 1), (seed as usize / 3) % (kw / 2 + 1));
        prop_assume!(h + 2 * ph >= kh && w + 2 * pw >= kw);
        let x = input(&[1, 2, h, w], seed);
        let avg = AvgPool2d::new((kh, kw)).with_stride((sh, sw)).with_padding((ph, pw)).with_ceil_mode(ceil).with_count_include_pad(include_pad);
        let max = MaxPool2d::new((kh, kw)).with_stride((sh, sw)).with_padding((ph, pw)).with_ceil_mode(ceil);
        let tape = Tape::new();
        for (layer, want) in [
            (Module::<f64>::forward(&avg, tape.constant(x.clone())).value(), reference_pool(&x, (kh, kw), (sh, sw), (ph, pw), ceil, include_pad, false)),
            (Module::<f64>::forward(&max, tape.constant(x.clone())).value(), reference_pool(&x, (kh, kw), (sh, sw), (ph, pw), ceil, include_pad, true)),
        ] {
            prop_assert_eq!(layer.dims(), want.dims());
            for (a, b) in layer.as_slice().iter().zip(want.as_slice()) {
                prop_assert!((a - b).abs() < 1e-12, "{} vs {}", a, b);
            }
        }
        gradcheck(|v| Module::<f64>::forward(&avg, v[0]), std::slice::from_ref(&x)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradcheck(|v| Module::<f64>::forward(&max, v[0]), std::slice::from_ref(&x)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

/// Hand-computed: a 1x2 kernel of ones with stride (1, 2) sums adjacent pairs; a (2, 1) max
/// pool takes the larger of each vertical pair; the output sizes follow PyTorch's formula per
/// axis.
#[test]
fn rectangular_values_by_hand() {
    let tape = Tape::<f64>::new();
    let x = Tensor::new((1..=12).map(f64::from).collect(), [1, 1, 3, 4]);
    let mut conv = Conv2d::<f64>::with_config(1, 1, (1, 2), ConvConfig { bias: false, ..ConvConfig::default().with_stride((1, 2)) });
    conv.weight.set(Tensor::ones([1, 1, 1, 2])).unwrap();
    let y = conv.forward(tape.constant(x.clone())).value();
    assert_eq!(y.dims(), &[1, 1, 3, 2]);
    assert_eq!(y.to_vec(), [3.0, 7.0, 11.0, 15.0, 19.0, 23.0]);
    let pooled = Module::<f64>::forward(&MaxPool2d::new((2, 1)).with_stride((1, 1)), tape.constant(x.clone())).value();
    assert_eq!(pooled.dims(), &[1, 1, 2, 4]);
    assert_eq!(pooled.to_vec(), [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    let avg = Module::<f64>::forward(&AvgPool2d::new((3, 2)), tape.constant(x)).value();
    assert_eq!(avg.to_vec(), [(1.0 + 2.0 + 5.0 + 6.0 + 9.0 + 10.0) / 6.0, (3.0 + 4.0 + 7.0 + 8.0 + 11.0 + 12.0) / 6.0]);
}

#[test]
#[should_panic(expected = "wengert: Conv1d: stride Size2(1, 2) must be one size for a 1-D layer")]
fn conv1d_rejects_two_sizes() {
    let _ = Conv1d::<f32>::with_config(1, 1, 3, ConvConfig::default().with_stride((1, 2)));
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
    let up = ConvTranspose2d::<f32>::with_config(3, 2, 3, ConvTransposeConfig::default().with_stride(2).with_padding(1).with_output_padding(1));
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
