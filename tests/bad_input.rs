//! Bad input gives a clear error at the caller, never a hang, an abort or a silent result.
//! Each case here once misbehaved (issue 16); the loaders' own cases live next to them in
//! `wengert-nn` (`data`, `serialize`), the kernels' in `wengert-core`.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

use wengert::nn::prelude::*;
use wengert::nn::train::evaluate;

thread_local! {
    /// Where the last panic on this thread happened, and its message.
    static LAST_PANIC: RefCell<Option<(String, u32, String)>> = const { RefCell::new(None) };
}

/// Runs `f`, which must panic, and returns the panic's file, line and message. The hook
/// records per thread, so tests running in parallel do not see each other's panics.
fn panic_site(f: impl FnOnce()) -> (String, u32, String) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let (file, line) = info
                .location()
                .map_or((String::new(), 0), |l| (l.file().to_string(), l.line()));
            LAST_PANIC.with(|p| *p.borrow_mut() = Some((file, line, msg)));
            previous(info);
        }));
    });
    assert!(
        panic::catch_unwind(AssertUnwindSafe(f)).is_err(),
        "expected a panic"
    );
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .expect("the hook saw the panic")
}

/// Panics name the caller's file and line, not a line inside the library.
#[test]
fn panics_point_at_the_caller() {
    let here = file!();

    let linear = Linear::<f32>::new(3, 2);
    let tape = Tape::<f32>::new();
    let x = tape.constant(Tensor::zeros([4, 5]));
    let (file, line, msg) = panic_site(|| {
        linear.forward(x);
    });
    assert_eq!((file.as_str(), line), (here, line!() - 2), "{msg}");
    assert!(
        msg.contains("Linear(3 -> 2): input of shape [4, 5] must end in 3"),
        "{msg}"
    );

    let model = Sequential::<f32>::new().add(Linear::new(3, 2));
    let (file, line, msg) = panic_site(|| {
        model.forward(x);
    });
    assert_eq!((file.as_str(), line), (here, line!() - 2), "{msg}");

    let (a, b) = (Tape::<f64>::new(), Tape::<f64>::new());
    let (u, v) = (a.var(Tensor::ones([2])), b.var(Tensor::ones([2])));
    const TWO_TAPES: &str = "operands are recorded on different tapes";
    let (file, line, msg) = panic_site(|| {
        let _ = u + v;
    });
    assert_eq!((file.as_str(), line), (here, line!() - 2), "{msg}");
    assert!(msg.contains(TWO_TAPES), "{msg}");
    let (file, line, msg) = panic_site(|| {
        let _ = u.matmul(v);
    });
    assert_eq!((file.as_str(), line), (here, line!() - 2), "{msg}");
    assert!(msg.contains(TWO_TAPES), "{msg}");
    let (file, line, msg) = panic_site(|| {
        let _ = Var::concat(&[u, v], 0);
    });
    assert_eq!((file.as_str(), line), (here, line!() - 2), "{msg}");
    assert!(msg.contains(TWO_TAPES), "{msg}");

    let (file, line, msg) = panic_site(|| {
        let _ = Var::<f64>::concat(&[], 0);
    });
    assert_eq!((file.as_str(), line), (here, line!() - 2), "{msg}");
    assert!(msg.contains("concat: no tensors given"), "{msg}");
    let (file, line, _) = panic_site(|| drop(Tensor::<f32>::concat(&[], 0)));
    assert_eq!((file.as_str(), line), (here, line!() - 1));
}

/// A shape whose element count overflows is an error naming it (it wrapped to 0 and was
/// accepted with no elements); constructors that cannot return one panic saying so.
#[test]
fn overflowing_shapes_are_rejected() {
    let e = Tensor::<f32>::from_vec(vec![], [1 << 32, 1 << 32])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("[4294967296, 4294967296]") && e.contains("more elements than usize holds"),
        "{e}"
    );
    assert!(Tensor::<f32>::from_vec(vec![], [0, usize::MAX, 2]).is_err());
    assert!(Tensor::<f32>::zeros([3, 0])
        .try_reshape([0, 1 << 62, 8])
        .is_err());
    let (_, _, msg) = panic_site(|| drop(Tensor::<f32>::zeros([1 << 40, 1 << 40])));
    assert!(msg.contains("more elements than usize holds"), "{msg}");
}

/// Batch size 0 is an error wherever a batch size is taken (predict looped forever on it),
/// and predicting 0 rows gives the model's output shape with 0 rows.
#[test]
fn batch_size_zero_and_empty_inputs() {
    let mut model = Sequential::<f32>::new()
        .add(Linear::new(3, 4))
        .add(ReLU)
        .add(Linear::new(4, 2));
    let x = Tensor::<f32>::zeros([5, 3]);
    let e = predict(&mut model, &x, 0).unwrap_err();
    assert!(
        e.to_string()
            .contains("predict: batch_size must be at least 1"),
        "{e}"
    );
    let data =
        wengert::nn::data::Dataset::new(x.clone(), Tensor::from_slice(&[0usize, 1, 0, 1, 0]))
            .unwrap();
    let e = evaluate(&mut model, &data, &|o, y| cross_entropy(o, y), None, 0).unwrap_err();
    assert!(
        e.to_string()
            .contains("evaluate: batch_size must be at least 1"),
        "{e}"
    );
    let e = data
        .batches(0, None::<&mut rand::rngs::StdRng>, false)
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .contains("Dataset::batches: batch_size must be at least 1"),
        "{e}"
    );
    let mut opt = Sgd::new(SgdConfig::default());
    let cfg = FitConfig {
        batch_size: 0,
        verbose: false,
        ..Default::default()
    };
    let e = fit(
        &mut model,
        &mut opt,
        &data,
        |o, y| cross_entropy(o, y),
        None,
        &cfg,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("fit: batch_size must be at least 1"),
        "{e}"
    );

    assert_eq!(
        predict(&mut model, &Tensor::zeros([0, 3]), 4)
            .unwrap()
            .dims(),
        &[0, 2]
    );
    let out = predict(&mut model, &x, 2).unwrap();
    assert_eq!(out.dims(), &[5, 2]);
    assert_eq!(out, predict(&mut model, &x, 64).unwrap());
}
