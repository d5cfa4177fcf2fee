//! Fits y = w·x + b to noisy samples of y = 2x + 3 by gradient descent, with gradients from
//! the tape. Run: `cargo run --release --example linear_regression`

use rand::SeedableRng;
use wengert::nn::plot::{Chart, Style};
use wengert::prelude::*;

/// What a fit produced.
pub struct Fit {
    /// fitted slope (true value 2)
    pub w: f32,
    /// fitted intercept (true value 3)
    pub b: f32,
    /// mean squared error after each epoch
    pub losses: Vec<f32>,
    /// the data
    pub xs: Vec<f32>,
    /// the targets
    pub ys: Vec<f32>,
}

/// Generates `n` points of y = 2x + 3 + N(0, 0.5²) with x in [-2, 2) and fits them with
/// full-batch gradient descent at learning rate `lr` for `epochs` steps.
pub fn fit(n: usize, epochs: usize, lr: f32, seed: u64) -> Fit {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let x = Tensor::<f32>::uniform([n, 1], -2.0, 2.0, &mut rng);
    let noise = Tensor::<f32>::normal([n, 1], 0.0, 0.5, &mut rng);
    let y = &(&x * 2.0 + 3.0) + &noise;

    let mut w = Param::new(Tensor::zeros([1, 1]));
    let mut b = Param::new(Tensor::zeros([1]));
    let mut losses = Vec::with_capacity(epochs);
    for _ in 0..epochs {
        let tape = Tape::new();
        let (xv, yv) = (tape.constant(x.clone()), tape.constant(y.clone()));
        let pred = xv.matmul(tape.param(&w)) + tape.param(&b);
        let loss = (pred - yv).square().mean();
        let grads = loss.backward_release();
        losses.push(loss.item());
        for p in [&mut w, &mut b] {
            let g = grads.param(p).expect("both parameters are on the graph").clone();
            p.value_mut().axpy_(-lr, &g);
        }
    }
    Fit { w: w.value().item(), b: b.value().item(), losses, xs: x.to_vec(), ys: y.to_vec() }
}

#[allow(dead_code)]
fn main() {
    let f = fit(200, 200, 0.1, 42);
    for (epoch, loss) in f.losses.iter().enumerate().filter(|(e, _)| e % 20 == 0 || *e == f.losses.len() - 1) {
        println!("epoch {epoch:>3}  mse {loss:.4}");
    }
    println!("fitted y = {:.3} x + {:.3}   (true: y = 2 x + 3)", f.w, f.b);
    let path = wengert::nn::plot::output_dir().join("linear_regression.svg");
    match plot(&f).save(&path) {
        Ok(()) => println!("plot of the data and the fitted line: {}", path.display()),
        Err(e) => eprintln!("could not write the plot: {e}"),
    }
}

/// The data as points and the fitted line, as a chart.
pub fn plot(f: &Fit) -> Chart {
    let line = [-2.0f64, 2.0].map(|x| (x, f.w as f64 * x + f.b as f64));
    Chart::new("y = 2x + 3 + noise, fitted by gradient descent", "x", "y")
        .series("data", f.xs.iter().zip(&f.ys).map(|(&x, &y)| (x as f64, y as f64)), Style::Points)
        .series(&format!("fit: y = {:.2}x + {:.2}", f.w, f.b), line, Style::Line)
}
