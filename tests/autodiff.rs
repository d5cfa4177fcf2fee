//! The tape as a whole: higher-order gradients against analytic answers, anomaly mode,
//! error messages that point at the caller, `to_dot`, custom ops.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use wengert::core::function::{Context, Function, InputGrads};
use wengert::core::{gradcheck, gradgradcheck, Tape, Tensor, Var};

/// Runs `f`, expecting a panic; returns its message and the file:line the panic points at.
fn panic_of(f: impl FnOnce()) -> (String, String) {
    static LOCK: Mutex<()> = Mutex::new(());
    static WHERE: Mutex<String> = Mutex::new(String::new());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let prev = panic::take_hook();
    panic::set_hook(Box::new(|info| {
        if let Some(l) = info.location() {
            *WHERE.lock().unwrap_or_else(|e| e.into_inner()) = format!("{}:{}", l.file(), l.line());
        }
    }));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(prev);
    let err = r.expect_err("expected a panic");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    let at = WHERE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (msg, at)
}

#[test]
fn full_hessian_of_quadratic_form_matches_analytic() {
    // f(x) = ½ xᵀAx + bᵀx  =>  ∇f = ½(A + Aᵀ)x + b,  H = ½(A + Aᵀ)
    let n = 4;
    let a = Tensor::<f64>::from_fn([n, n], |i| ((i[0] * 5 + i[1] * 3) % 7) as f64 - 3.0);
    let b = Tensor::<f64>::from_fn([n], |i| i[0] as f64 * 0.5 - 1.0);
    let x0 = Tensor::<f64>::from_fn([n], |i| 0.3 * i[0] as f64 - 0.4);
    let tape = Tape::new();
    let x = tape.var(x0.clone());
    let (av, bv) = (tape.constant(a.clone()), tape.constant(b.clone()));
    let f = x.matmul(av.matmul(x)) * 0.5 + bv.matmul(x);
    let g = tape.grad_graph(f, &[x], None)[0];
    let sym = (&a + &a.t()) * 0.5;
    assert!(g.value().allclose(&(&sym.matmul(&x0) + &b), 1e-12, 1e-12));
    let rows: Vec<Tensor<f64>> = (0..n).map(|i| tape.grad(g.narrow(0, i, 1).sum(), &[x]).remove(0)).collect();
    let h = Tensor::stack(&rows.iter().collect::<Vec<_>>(), 0);
    assert!(h.allclose(&sym, 1e-12, 1e-12), "H = {h}");
}

#[test]
fn hessian_vector_product_of_rosenbrock() {
    // f = (1-x)² + 100(y-x²)²
    // H = [[2 - 400(y - 3x²), -400x], [-400x, 200]]
    let (x0, y0) = (0.7, -0.2);
    let tape = Tape::<f64>::new();
    let p = tape.var(Tensor::from_slice(&[x0, y0]));
    let (x, y) = (p.narrow(0, 0, 1), p.narrow(0, 1, 1));
    let f = ((1.0 - x).square() + (y - x.square()).square() * 100.0).sum();
    let g = tape.grad_graph(f, &[p], None)[0];
    let v = Tensor::from_slice(&[0.3, -1.1]);
    let hv = tape.grad((g * tape.constant(v.clone())).sum(), &[p]).remove(0);
    let h = [[2.0 - 400.0 * (y0 - 3.0 * x0 * x0), -400.0 * x0], [-400.0 * x0, 200.0]];
    let expect = [h[0][0] * 0.3 + h[0][1] * -1.1, h[1][0] * 0.3 + h[1][1] * -1.1];
    assert!(hv.allclose(&Tensor::from_slice(&expect), 1e-10, 1e-10), "Hv = {hv}");
}

#[test]
fn third_derivative_through_three_nested_create_graphs() {
    // d³/dx³ sin(x) = -cos(x)
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::scalar(0.9));
    let d1 = tape.grad_graph(x.sin(), &[x], None)[0];
    let d2 = tape.grad_graph(d1, &[x], None)[0];
    let d3 = tape.grad(d2, &[x]).remove(0);
    assert!((d3.item() + 0.9f64.cos()).abs() < 1e-14);
}

#[test]
fn first_order_backward_records_nothing_and_frees_its_scratch() {
    let tape = Tape::<f64>::new();
    let w = tape.var(Tensor::ones([3, 3]));
    let x = tape.constant(Tensor::ones([2, 3]));
    let loss = x.matmul(w).tanh().log_softmax(-1).sum();
    let before = tape.len();
    let _ = loss.backward();
    assert_eq!(tape.len(), before);
    // a create-graph backward does record
    let _ = tape.grad_graph(loss, &[w], None);
    assert!(tape.len() > before);
}

#[test]
fn anomaly_mode_names_the_first_bad_forward_op_and_its_location() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(Tensor::from_slice(&[1.0, -1.0]));
    let (msg, _) = panic_of(|| {
        let _ = x.ln();
    });
    assert!(msg.contains("anomaly: ln produced NaN in its forward value"), "{msg}");
    assert!(msg.contains("tests/autodiff.rs:"), "{msg}");
}

#[test]
fn anomaly_mode_names_the_backward_rule_that_made_inf() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(Tensor::from_slice(&[0.0, 4.0]));
    let y = x.sqrt().sum(); // forward is finite; d√x/dx = 1/(2√x) is infinite at 0
    let (msg, _) = panic_of(|| {
        let _ = y.backward();
    });
    assert!(msg.contains("backward of sqrt"), "{msg}");
    assert!(msg.contains("tests/autodiff.rs:"), "{msg}");
}

#[test]
fn shape_errors_name_op_shapes_and_callers_line() {
    let tape = Tape::<f32>::new();
    let a = tape.var(Tensor::zeros([2, 3]));
    let b = tape.var(Tensor::zeros([4, 5]));
    let line = line!() + 1;
    let (msg, at) = panic_of(|| { let _ = a.matmul(b); });
    assert_eq!(msg, "wengert: matmul: inner dimensions differ (3 vs 4): shapes [2, 3] and [4, 5]");
    assert_eq!(at, format!("tests/autodiff.rs:{line}"));
    let line = line!() + 1;
    let (msg, at) = panic_of(|| { let _ = a.sum_axes(&[2], false); });
    assert_eq!(msg, "wengert: sum: axis 2 is out of range for shape [2, 3] (2 dims)");
    assert_eq!(at, format!("tests/autodiff.rs:{line}"));
    let (msg, _) = panic_of(|| { let _ = a.index_select(0, &[5]); });
    assert_eq!(msg, "wengert: index_select: index 5 is out of range for an axis of length 2 (shape [2, 3])");
    let (msg, _) = panic_of(|| { let _ = a * b; });
    assert_eq!(msg, "wengert: mul: cannot broadcast: shapes [2, 3] and [4, 5]");
}

#[test]
fn to_dot_shows_ops_shapes_and_grad_flow() {
    let tape = Tape::<f32>::new();
    let w = tape.var(Tensor::ones([3, 2]));
    let x = tape.constant(Tensor::ones([4, 3]));
    let _loss = x.matmul(w).relu().mean();
    let dot = tape.to_dot();
    assert!(dot.contains("#2 matmul\\n[4, 2]"), "{dot}");
    assert!(dot.contains("n0 -> n2;") && dot.contains("n1 -> n2;"), "{dot}");
    assert!(dot.contains("fillcolor=palegreen") && dot.contains("fillcolor=lightgrey"), "{dot}");
    assert!(dot.contains("autodiff.rs:"), "{dot}");
}

/// y = x³ with its backward written with Var ops, so it is twice differentiable.
struct Cube;
impl Function<f64> for Cube {
    fn name(&self) -> &'static str {
        "cube"
    }
    fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> {
        x[0].map(|v| v * v * v)
    }
    fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> {
        [Some(g * ctx.input(0).square() * 3.0)].into_iter().collect()
    }
}

/// y = x³ with a backward computed by plain tensor math: first order only.
struct CubeOnce;
impl Function<f64> for CubeOnce {
    fn name(&self) -> &'static str {
        "cube_once"
    }
    fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> {
        x[0].map(|v| v * v * v)
    }
    fn backward<'t>(&self, ctx: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> {
        let d = g.value().mul(&ctx.input(0).value().square().mul_scalar(3.0));
        [Some(ctx.once_differentiable("cube_once_backward", d, &[g, ctx.input(0)]))].into_iter().collect()
    }
}

#[test]
fn custom_ops_pass_gradcheck_and_gradgradcheck() {
    let x = Tensor::from_slice(&[0.5, -1.5, 2.0]);
    gradcheck(|v| Var::apply(Cube, &[v[0]]), std::slice::from_ref(&x)).unwrap();
    gradgradcheck(|v| Var::apply(Cube, &[v[0]]), std::slice::from_ref(&x)).unwrap();
    gradcheck(|v| Var::apply(CubeOnce, &[v[0]]), std::slice::from_ref(&x)).unwrap();
    let (msg, _) = panic_of(|| {
        let _ = gradgradcheck(|v| Var::apply(CubeOnce, &[v[0]]), std::slice::from_ref(&x));
    });
    assert!(msg.contains("cube_once_backward is once-differentiable"), "{msg}");
}

#[test]
fn custom_op_with_wrong_gradient_shape_is_reported() {
    struct Bad;
    impl Function<f64> for Bad {
        fn name(&self) -> &'static str {
            "bad"
        }
        fn forward(&self, x: &[&Tensor<f64>]) -> Tensor<f64> {
            x[0].clone()
        }
        fn backward<'t>(&self, _: &Context<'t, f64>, g: Var<'t, f64>) -> InputGrads<'t, f64> {
            [Some(g.sum())].into_iter().collect()
        }
    }
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::ones([2]));
    let y = Var::apply(Bad, &[x]).sum();
    let (msg, _) = panic_of(|| {
        let _ = y.backward();
    });
    assert!(msg.contains("backward of bad") && msg.contains("gradient of shape [] for input 0 of shape [2]"), "{msg}");
}

#[test]
fn f32_and_f64_tapes_agree() {
    let data = Tensor::<f64>::from_fn([3, 4], |i| (i[0] * 4 + i[1]) as f64 * 0.1 - 0.5);
    let grad = |t: &Tensor<f64>| -> Vec<f64> {
        let tape = Tape::<f32>::new();
        let x = tape.var(t.to_dtype::<f32>());
        let g = x.tanh().softmax(-1).square().sum().backward().wrt(x);
        g.as_slice().iter().map(|&v| v as f64).collect()
    };
    let tape = Tape::<f64>::new();
    let x = tape.var(data.clone());
    let g64 = x.tanh().softmax(-1).square().sum().backward().wrt(x);
    assert!(Tensor::new(grad(&data), [3, 4]).allclose(&g64, 1e-4, 1e-6));
}
