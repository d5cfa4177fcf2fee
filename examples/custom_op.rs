//! A user-defined differentiable op: softplus(x) = ln(1 + eˣ), whose derivative is σ(x).
//! Its backward is written with `Var` ops, so it is twice differentiable; gradcheck and
//! gradgradcheck prove both orders against finite differences.
//! Run: `cargo run --example custom_op`

use wengert::core::function::{Context, Function, InputGrads};
use wengert::prelude::*;

/// softplus(x) = ln(1 + eˣ), computed without overflow: max(x, 0) + ln(1 + e^-|x|).
pub struct Softplus;

impl<T: Float> Function<T> for Softplus {
    fn name(&self) -> &'static str {
        "softplus"
    }

    fn forward(&self, x: &[&Tensor<T>]) -> Tensor<T> {
        x[0].map(|v| v.max(T::ZERO) + (-v.abs()).exp().ln_1p())
    }

    /// d softplus / dx = σ(x)
    fn backward<'t>(&self, ctx: &Context<'t, T>, grad: Var<'t, T>) -> InputGrads<'t, T> {
        [Some(grad * ctx.input(0).sigmoid())].into_iter().collect()
    }
}

/// softplus as a `Var` method-like function.
pub fn softplus<'t, T: Float>(x: Var<'t, T>) -> Var<'t, T> {
    Var::apply(Softplus, &[x])
}

#[allow(dead_code)]
fn main() {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_slice(&[-30.0, -1.0, 0.0, 1.0, 30.0]));
    let y = softplus(x);
    println!("x           = {}", x.value());
    println!("softplus(x) = {}", y.value());
    println!("d/dx        = {}", y.sum().backward().wrt(x));

    let inputs = [Tensor::from_slice(&[-2.0, -0.3, 0.4, 1.7])];
    gradcheck(|v| softplus(v[0]), &inputs).expect("first-order gradient matches finite differences");
    gradgradcheck(|v| softplus(v[0]), &inputs).expect("second-order gradient matches finite differences");
    println!("gradcheck and gradgradcheck passed");
}
