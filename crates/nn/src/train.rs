//! A small `fit` loop (epochs, mini-batches, validation split, a progress line per epoch,
//! optional early stopping and SVG curves) over the same explicit tape step a user would write:
//!
//! ```text
//! let tape = Tape::new();
//! let loss = loss_fn(model.forward(tape.constant(batch.x)), &batch.y);
//! let grads = loss.backward_release(); // frees activations as the sweep passes them
//! opt.step(&mut model, &grads)?;
//! ```

use std::path::PathBuf;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;
use wengert_core::{Element, Float, Tape, Tensor, Var};

use crate::data::{check_batch_size, Dataset};
use crate::error::{Error, Result};
use crate::metrics::argmax_rows;
use crate::module::Module;
use crate::optim::Optimizer;
use crate::plot::{Chart, Style};

/// Stop when the monitored loss (validation loss if there is a validation split, else the
/// training loss) has not improved by more than `min_delta` for `patience` epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyStopping {
    /// epochs without improvement before stopping (Keras' default 0 is rarely useful; 5 here)
    pub patience: usize,
    /// smallest decrease that counts as an improvement (default 0)
    pub min_delta: f64,
    /// put back the parameters of the best epoch when stopping (default `true`)
    pub restore_best: bool,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping { patience: 5, min_delta: 0.0, restore_best: true }
    }
}

/// Options of [`fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct FitConfig {
    /// passes over the training data (default 10)
    pub epochs: usize,
    /// samples per step (default 32, as Keras)
    pub batch_size: usize,
    /// fraction held out (at random) for validation each epoch (default none)
    pub validation_split: Option<f64>,
    /// seed of the shuffling and the split (default 0)
    pub seed: u64,
    /// early stopping (default off)
    pub early_stopping: Option<EarlyStopping>,
    /// print one progress line per epoch (default `true`)
    pub verbose: bool,
    /// write the loss and metric curves to this SVG file (default none)
    pub plot: Option<PathBuf>,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig { epochs: 10, batch_size: 32, validation_split: None, seed: 0, early_stopping: None, verbose: true, plot: None }
    }
}

/// A named score of a model's outputs against targets (higher is better).
pub struct Metric<T: Float, Y: Element> {
    /// shown in the progress line
    pub name: &'static str,
    /// the score of outputs `[n, ..]` against targets `[n, ..]`
    pub score: fn(&Tensor<T>, &Tensor<Y>) -> f64,
}

impl<T: Float, Y: Element> Clone for Metric<T, Y> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Float, Y: Element> Copy for Metric<T, Y> {}

/// Fraction of rows whose largest output is the target class.
pub fn accuracy<T: Float>() -> Metric<T, usize> {
    Metric {
        name: "acc",
        score: |out, y| {
            let pred = argmax_rows(out);
            pred.iter().zip(y.as_slice()).filter(|(p, t)| p == t).count() as f64 / pred.len().max(1) as f64
        },
    }
}

/// What happened during [`fit`], one entry per epoch run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// mean training loss over each epoch's batches
    pub train_loss: Vec<f64>,
    /// the metric on the training batches as they were seen (empty without a metric)
    pub train_metric: Vec<f64>,
    /// validation loss after each epoch (empty without a validation split)
    pub val_loss: Vec<f64>,
    /// validation metric after each epoch (empty without a metric and validation split)
    pub val_metric: Vec<f64>,
    /// whether early stopping ended training
    pub stopped_early: bool,
    /// wall-clock training time in seconds
    pub seconds: f64,
}

/// Outputs of `model` for inputs `x` (`[n, ..]`), computed in eval mode without recording
/// backward rules, in batches of `batch_size`. With `n = 0` the model still runs once, on the
/// empty batch, so the result has its usual trailing shape (`[0, out]` for a classifier).
///
/// `Err` ([`Error::InvalidArgument`]) if `batch_size` is 0.
///
/// ```
/// use wengert_nn::prelude::*;
/// let mut model = Sequential::<f32>::new().add(Linear::new(3, 2));
/// assert_eq!(predict(&mut model, &Tensor::zeros([5, 3]), 2)?.dims(), &[5, 2]);
/// assert_eq!(predict(&mut model, &Tensor::zeros([0, 3]), 2)?.dims(), &[0, 2]);
/// assert!(predict(&mut model, &Tensor::zeros([5, 3]), 0).is_err());
/// # Ok::<(), wengert_nn::Error>(())
/// ```
#[track_caller]
pub fn predict<T: Float, M: Module<T> + ?Sized>(model: &mut M, x: &Tensor<T>, batch_size: usize) -> Result<Tensor<T>> {
    check_batch_size("predict", batch_size)?;
    let Some(&n) = x.dims().first() else {
        return Err(Error::InvalidArgument {
            reason: format!("predict: x must be [n, ..], got a scalar {}", x.shape()),
        });
    };
    model.set_training(false);
    let mut parts = Vec::new();
    let mut start = 0;
    loop {
        let len = batch_size.min(n - start);
        let tape = Tape::new();
        let out = tape.no_grad(|| model.forward(tape.constant(x.narrow(0, start, len))).value());
        parts.push(out);
        start += len;
        if start >= n {
            break;
        }
    }
    model.set_training(true);
    Ok(if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0)
    })
}

/// Mean loss (and metric) of `model` on `data`, in eval mode, predicting in batches of
/// `batch_size`; `Err` if `batch_size` is 0.
#[track_caller]
pub fn evaluate<T, Y, M, L>(
    model: &mut M,
    data: &Dataset<T, Y>,
    loss: &L,
    metric: Option<Metric<T, Y>>,
    batch_size: usize,
) -> Result<(f64, Option<f64>)>
where
    T: Float,
    Y: Element,
    M: Module<T> + ?Sized,
    L: for<'t> Fn(Var<'t, T>, &Tensor<Y>) -> Var<'t, T>,
{
    check_batch_size("evaluate", batch_size)?;
    let out = predict(model, &data.x, batch_size)?;
    let tape = Tape::new();
    let l = tape.no_grad(|| loss(tape.constant(out.clone()), &data.y).item().to_f64());
    Ok((l, metric.map(|m| (m.score)(&out, &data.y))))
}

fn snapshot<T: Float, M: Module<T> + ?Sized>(model: &M) -> Vec<Tensor<T>> {
    let mut v = Vec::new();
    model.visit_params("", &mut |_, p| v.push(p.value().clone()));
    v
}

fn restore<T: Float, M: Module<T> + ?Sized>(model: &mut M, values: &[Tensor<T>]) {
    let mut it = values.iter();
    model.visit_params_mut("", &mut |_, p| {
        if let Some(v) = it.next() {
            *p.value_mut() = v.clone();
        }
    });
}

/// Trains `model` on `data` with `opt`, minimising `loss(outputs, targets)`.
///
/// Each step binds the parameters into a fresh tape, runs forward and backward, and lets the
/// optimizer update them; a parameter the loss does not reach is an error
/// ([`Error::NoGradient`]), not a silent no-op.
pub fn fit<T, Y, M, O, L>(
    model: &mut M,
    opt: &mut O,
    data: &Dataset<T, Y>,
    loss: L,
    metric: Option<Metric<T, Y>>,
    cfg: &FitConfig,
) -> Result<History>
where
    T: Float,
    Y: Element,
    M: Module<T> + ?Sized,
    O: Optimizer<T>,
    L: for<'t> Fn(Var<'t, T>, &Tensor<Y>) -> Var<'t, T>,
{
    check_batch_size("fit", cfg.batch_size)?;
    if data.is_empty() {
        return Err(Error::InvalidArgument { reason: "fit: empty data set".into() });
    }
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let (train, val) = match cfg.validation_split {
        Some(f) => {
            let (t, v) = data.train_test_split(f, &mut rng)?;
            (t, Some(v))
        }
        None => (data.clone(), None),
    };
    let start = Instant::now();
    let mut h = History::default();
    let (mut best, mut best_epoch, mut best_params) = (f64::INFINITY, 0, None);
    model.set_training(true);
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        let (mut sum, mut msum, mut count) = (0.0, 0.0, 0usize);
        for batch in train.batches(cfg.batch_size, Some(&mut rng), false)? {
            let tape = Tape::new();
            let out = model.forward(tape.constant(batch.x.clone()));
            let l = loss(out, &batch.y);
            if let Some(m) = metric {
                msum += (m.score)(&out.value(), &batch.y) * batch.len() as f64;
            }
            let grads = l.backward_release();
            sum += l.item().to_f64() * batch.len() as f64;
            count += batch.len();
            opt.step(model, &grads)?;
        }
        h.train_loss.push(sum / count as f64);
        let mut line = format!("epoch {:>3}/{}  loss {:.4}", epoch + 1, cfg.epochs, sum / count as f64);
        if let Some(m) = metric {
            h.train_metric.push(msum / count as f64);
            line += &format!("  {} {:.4}", m.name, msum / count as f64);
        }
        if let Some(v) = &val {
            let (vl, vm) = evaluate(model, v, &loss, metric, 256)?;
            h.val_loss.push(vl);
            line += &format!("  val_loss {vl:.4}");
            if let (Some(m), Some(s)) = (metric, vm) {
                h.val_metric.push(s);
                line += &format!("  val_{} {s:.4}", m.name);
            }
        }
        if cfg.verbose {
            println!("{line}  ({:.2}s)", t0.elapsed().as_secs_f64());
        }
        if let Some(es) = cfg.early_stopping {
            let monitored = *h.val_loss.last().unwrap_or(&h.train_loss[epoch]);
            if monitored < best - es.min_delta {
                (best, best_epoch) = (monitored, epoch);
                if es.restore_best {
                    best_params = Some(snapshot(model));
                }
            } else if epoch - best_epoch >= es.patience {
                h.stopped_early = true;
                if let Some(p) = &best_params {
                    restore(model, p);
                }
                if cfg.verbose {
                    println!("early stop: no improvement for {} epochs (best epoch {})", es.patience, best_epoch + 1);
                }
                break;
            }
        }
    }
    h.seconds = start.elapsed().as_secs_f64();
    if let Some(path) = &cfg.plot {
        plot_history(&h, metric.map(|m| m.name)).save(path)?;
    }
    Ok(h)
}

/// The loss curves (and the validation metric, if any) of a [`History`] as a chart.
pub fn plot_history(h: &History, metric_name: Option<&str>) -> Chart {
    let pts = |v: &[f64]| v.iter().enumerate().map(|(i, &y)| ((i + 1) as f64, y)).collect::<Vec<_>>();
    let mut c = Chart::new("training", "epoch", "loss / metric").series("train loss", pts(&h.train_loss), Style::Line);
    if !h.val_loss.is_empty() {
        c = c.series("val loss", pts(&h.val_loss), Style::Line);
    }
    if let (Some(name), false) = (metric_name, h.train_metric.is_empty()) {
        c = c.series(&format!("train {name}"), pts(&h.train_metric), Style::Line);
    }
    if let (Some(name), false) = (metric_name, h.val_metric.is_empty()) {
        c = c.series(&format!("val {name}"), pts(&h.val_metric), Style::Line);
    }
    c
}
