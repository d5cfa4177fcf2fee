//! Short runs of the examples, asserting what they learn.

#[path = "../examples/linear_regression.rs"]
mod linear_regression;

#[path = "../examples/custom_op.rs"]
mod custom_op;

use wengert::prelude::*;

#[test]
fn linear_regression_recovers_slope_and_intercept() {
    let f = linear_regression::fit(200, 150, 0.1, 7);
    assert_eq!((f.xs.len(), f.ys.len()), (200, 200));
    let svg = linear_regression::plot(&f).to_svg();
    assert_eq!(svg.matches("<circle").count(), 200);
    assert!(f.losses.windows(2).all(|w| w[1] <= w[0] + 1e-6), "loss must fall every epoch");
    assert!((f.w - 2.0).abs() < 0.1, "w = {}", f.w);
    assert!((f.b - 3.0).abs() < 0.1, "b = {}", f.b);
    // final MSE close to the noise variance 0.25
    let last = *f.losses.last().unwrap();
    assert!((0.15..0.35).contains(&last), "mse {last}");
}

#[test]
fn custom_log_cosh_is_correct_and_twice_differentiable() {
    let x = [Tensor::<f64>::from_slice(&[-3.0, -0.5, 0.0, 0.8, 4.0])];
    gradcheck(|v| custom_op::log_cosh(v[0]), &x).unwrap();
    gradgradcheck(|v| custom_op::log_cosh(v[0]), &x).unwrap();
    let tape = Tape::<f32>::new();
    let v = custom_op::log_cosh(tape.var(Tensor::from_slice(&[0.5f32, 100.0, -100.0]))).value().to_vec();
    assert!((v[0] - 0.5f32.cosh().ln()).abs() < 1e-6);
    // no overflow of cosh(100): ln cosh x = |x| - ln 2 for large |x|
    assert!((v[1] - (100.0 - std::f32::consts::LN_2)).abs() < 1e-4 && v[1] == v[2]);
    // the f32 forward (fast_exp and fast_ln) against f64, to within f32 rounding of its terms
    let xs: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) * 0.01).collect();
    let got = custom_op::log_cosh(tape.var(Tensor::new(xs.clone(), [xs.len()]))).value().to_vec();
    for (&x, &g) in xs.iter().zip(&got) {
        let want = (x as f64).cosh().ln();
        assert!((g as f64 - want).abs() < 2e-7 + 2e-7 * want, "log_cosh({x}) = {g}, want {want}");
    }
}

#[path = "../examples/mlp_digits.rs"]
mod mlp_digits;

#[path = "../examples/breast_cancer.rs"]
mod breast_cancer;

#[test]
fn mlp_digits_learns_saves_and_reloads() {
    let r = mlp_digits::run(8, 1, false).unwrap();
    let l = &r.history.train_loss;
    assert!(l[l.len() - 1] < 0.5 * l[0], "loss must fall: {l:?}");
    assert!(r.test_accuracy >= 0.95, "test accuracy {}", r.test_accuracy);
    assert_eq!(r.confusion.total(), 359);
    assert!(r.reload_matches, "reloaded weights must predict the same");
}

#[test]
fn breast_cancer_models_classify_well() {
    let scores = breast_cancer::run(15, 0, false).unwrap();
    for s in &scores {
        assert!(s.losses[s.losses.len() - 1] < s.losses[0], "{}: loss must fall", s.name);
        assert!(s.accuracy >= 0.94, "{}: accuracy {}", s.name, s.accuracy);
        assert!(s.roc_auc >= 0.98, "{}: ROC-AUC {}", s.name, s.roc_auc);
        assert!(s.f1 >= 0.94, "{}: F1 {}", s.name, s.f1);
    }
}

#[path = "../examples/finetune_minilm.rs"]
mod finetune_minilm;

/// Three epochs of fine-tuning the pretrained MiniLM on the shipped reviews: the loss falls,
/// every layer gets a gradient, and held-out accuracy beats the untrained head. Skipped, saying
/// so, when scripts/fetch_minilm.sh has not fetched the model.
#[test]
fn finetune_minilm_learns_through_every_layer() {
    if let Err(e) = wengert::nn::models::sentence::minilm_dir(env!("CARGO_MANIFEST_DIR")) {
        println!("skipped: {e}");
        return;
    }
    let r = finetune_minilm::run(3, 0, false).unwrap();
    let l = &r.epoch_losses;
    assert!(l[l.len() - 1] < 0.7 * l[0], "loss must fall: {l:?}");
    assert_eq!(r.first_step_layer_grads.len(), 6);
    assert!(r.first_step_layer_grads.iter().all(|&g| g > 1e-6), "every layer learns: {:?}", r.first_step_layer_grads);
    assert!(r.accuracy_after >= 0.8, "held-out accuracy {} (before {})", r.accuracy_after, r.accuracy_before);
}
