//! The function transforms (`vjp`, `jvp`, `jacobian`, `hessian`, `hvp`) against central
//! finite differences and against each other, over random shapes and values in f64.

#[macro_use]
mod common;
use common::cfg;

use proptest::prelude::*;
use wengert::core::functional::{hessian, hvp, jacobian, jvp, var_fn, vjp};
use wengert::core::testing::tensor_of;
use wengert::core::{Tensor, Var};

/// A vector function of two inputs mixing matmul, elementwise and reduction ops:
/// `f(x [n, k], w [k, m]) = tanh(x·w)·exp(−x·w/4) + (Σ x²)·w₀` as `[n, m]`.
fn f<'t>(v: &[Var<'t, f64>]) -> Var<'t, f64> {
    let z = v[0].matmul(v[1]);
    z.tanh() * (z * -0.25).exp() + v[0].square().sum() * v[1].narrow(0, 0, 1)
}

/// A scalar function of one input: `Σ softplus(x)·sin(x) + (Σ x)²/3`.
fn scalar<'t>(v: &[Var<'t, f64>]) -> Var<'t, f64> {
    (v[0].softplus() * v[0].sin()).sum() + v[0].sum().square() * (1.0 / 3.0)
}

/// Central differences of `f` in every input element: `∂f/∂xᵢ` flat, `[out.numel(), in.numel()]`.
fn numeric_jacobian(f: impl for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64> + Copy, inputs: &[Tensor<f64>], which: usize) -> Vec<Vec<f64>> {
    let eval = |xs: &[Tensor<f64>]| {
        let tape = wengert::core::Tape::new();
        let vs: Vec<_> = xs.iter().map(|x| tape.var(x.clone())).collect();
        f(&vs).value().to_vec()
    };
    let h = 1e-6;
    let n = inputs[which].numel();
    let cols: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            let shifted = |d: f64| {
                let mut xs = inputs.to_vec();
                xs[which].data_mut()[j] += d;
                eval(&xs)
            };
            shifted(h).iter().zip(shifted(-h)).map(|(a, b)| (a - b) / (2.0 * h)).collect()
        })
        .collect();
    let m = cols[0].len();
    (0..m).map(|i| cols.iter().map(|c| c[i]).collect()).collect()
}

fn close(a: &[f64], b: &[f64], tol: f64) -> Result<(), TestCaseError> {
    prop_assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        prop_assert!((x - y).abs() <= tol * (1.0 + y.abs()), "element {}: {} vs {}", i, x, y);
    }
    Ok(())
}

/// `[n, k]` and `[k, m]` inputs.
fn pair() -> impl Strategy<Value = (Tensor<f64>, Tensor<f64>)> {
    (1usize..4, 1usize..4, 1usize..4).prop_flat_map(|(n, k, m)| (tensor_of(vec![n, k], -1.5, 1.5), tensor_of(vec![k, m], -1.5, 1.5)))
}

proptest! {
    #![proptest_config(cfg(32))]

    #[test]
    fn jacobian_matches_finite_differences((x, w) in pair()) {
        let inputs = [x.clone(), w.clone()];
        let j = jacobian(f, &inputs);
        prop_assert_eq!(j.len(), 2);
        for which in 0..2 {
            let out = j[which].numel() / inputs[which].numel();
            prop_assert_eq!(j[which].dims()[j[which].ndim() - inputs[which].ndim()..].to_vec(), inputs[which].dims().to_vec());
            let numeric: Vec<f64> = numeric_jacobian(f, &inputs, which).concat();
            prop_assert_eq!(numeric.len(), out * inputs[which].numel());
            close(j[which].as_slice(), &numeric, 1e-6)?;
        }
    }

    #[test]
    fn vjp_and_jvp_are_the_jacobian_products((x, w) in pair(), seed in 0u64..1000) {
        let inputs = [x.clone(), w.clone()];
        let j = jacobian(f, &inputs);
        let out = [x.dims()[0], w.dims()[1]];
        let m = out[0] * out[1];
        let pseudo = |k: usize| ((seed as f64 + 1.0) * (k as f64 + 0.5)).sin();
        let v = Tensor::new((0..m).map(pseudo).collect(), out);
        let (y, vj) = vjp(f, &inputs, &v);
        let tangents: Vec<Tensor<f64>> = inputs.iter().enumerate().map(|(i, x)| Tensor::new((0..x.numel()).map(|k| pseudo(k + 7 * i + 3)).collect(), x.shape().clone())).collect();
        let (y2, jt) = jvp(f, &inputs, &tangents);
        prop_assert_eq!(y2, y);
        let mut want_jt = vec![0.0; m];
        for (which, x) in inputs.iter().enumerate() {
            let n = x.numel();
            let jm = j[which].as_slice();
            // vᵀJ
            let want_vj: Vec<f64> = (0..n).map(|c| (0..m).map(|r| v.as_slice()[r] * jm[r * n + c]).sum()).collect();
            close(vj[which].as_slice(), &want_vj, 1e-12)?;
            for (r, acc) in want_jt.iter_mut().enumerate() {
                *acc += (0..n).map(|c| jm[r * n + c] * tangents[which].as_slice()[c]).sum::<f64>();
            }
        }
        close(jt.as_slice(), &want_jt, 1e-12)?;
    }

    #[test]
    fn hessian_is_the_jacobian_of_the_gradient_and_symmetric(x in tensor_of(vec![2, 3], -2.0, 2.0), seed in 0u64..1000) {
        let h = hessian(scalar, &x);
        let n = x.numel();
        prop_assert_eq!(h.dims(), &[2, 3, 2, 3]);
        // against finite differences of the (reverse-mode) gradient
        let grad = var_fn(|v| v[0].tape().grad_graph(scalar(v), &[v[0]], None)[0]);
        let numeric: Vec<f64> = numeric_jacobian(grad, std::slice::from_ref(&x), 0).concat();
        close(h.as_slice(), &numeric, 1e-6)?;
        // and against the jacobian transform of the same gradient
        close(h.as_slice(), jacobian(grad, std::slice::from_ref(&x))[0].as_slice(), 1e-12)?;
        for i in 0..n {
            for j in 0..n {
                prop_assert!((h.as_slice()[i * n + j] - h.as_slice()[j * n + i]).abs() < 1e-12);
            }
        }
        let v = Tensor::new((0..n).map(|k| ((seed + 1) as f64 * (k as f64 + 0.25)).cos()).collect(), x.shape().clone());
        let want: Vec<f64> = (0..n).map(|r| (0..n).map(|c| h.as_slice()[r * n + c] * v.as_slice()[c]).sum()).collect();
        close(hvp(scalar, &x, &v).as_slice(), &want, 1e-12)?;
    }
}

#[test]
#[should_panic(expected = "jvp tangents")]
fn jvp_tangents_must_match_the_inputs() {
    let x = Tensor::from_slice(&[1.0, 2.0]);
    jvp(|v| v[0].sin(), &[x], &[Tensor::from_slice(&[1.0])]);
}
