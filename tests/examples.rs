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
    assert!(f.losses.windows(2).all(|w| w[1] <= w[0] + 1e-6), "loss must fall every epoch");
    assert!((f.w - 2.0).abs() < 0.1, "w = {}", f.w);
    assert!((f.b - 3.0).abs() < 0.1, "b = {}", f.b);
    // final MSE close to the noise variance 0.25
    let last = *f.losses.last().unwrap();
    assert!((0.15..0.35).contains(&last), "mse {last}");
}

#[test]
fn custom_softplus_is_correct_and_twice_differentiable() {
    let x = [Tensor::<f64>::from_slice(&[-3.0, -0.5, 0.0, 0.8, 4.0])];
    gradcheck(|v| custom_op::softplus(v[0]), &x).unwrap();
    gradgradcheck(|v| custom_op::softplus(v[0]), &x).unwrap();
    let tape = Tape::<f32>::new();
    let big = tape.var(Tensor::from_slice(&[100.0f32, -100.0]));
    let v = custom_op::softplus(big).value().to_vec();
    assert_eq!(v[0], 100.0); // no overflow of e^100
    assert!(v[1] > 0.0 && v[1] < 1e-40, "{}", v[1]); // ln(1 + e^-100) ≈ 3.7e-44
}
