//! A small `fit` loop (epochs, mini-batches, validation split, a progress line per epoch,
//! optional early stopping and SVG curves; [`fit_with`] adds a learning-rate schedule per
//! step, gradient clipping and callbacks) over the same explicit tape step a user would write:
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
pub use crate::plot::plot_history;
use crate::progress::ProgressBar;

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
    /// with `verbose`, a progress bar within each epoch (steps/s, time left, running loss)
    /// on stderr, drawn only when stderr is a terminal ([`crate::progress::ProgressBar`];
    /// default `true`)
    pub progress: bool,
    /// write the loss and metric curves to this SVG file (default none)
    pub plot: Option<PathBuf>,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig { epochs: 10, batch_size: 32, validation_split: None, seed: 0, early_stopping: None, verbose: true, progress: true, plot: None }
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
///
/// ```
/// use wengert_nn::train::accuracy;
/// use wengert_core::Tensor;
/// let out = Tensor::new(vec![0.1f32, 0.9, 0.8, 0.2, 0.3, 0.7], [3, 2]); // predicts 1, 0, 1
/// let acc = accuracy::<f32>();
/// assert_eq!(acc.name, "acc");
/// assert_eq!((acc.score)(&out, &Tensor::from_slice(&[1usize, 1, 1])), 2.0 / 3.0);
/// ```
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
///
/// ```
/// use wengert_nn::prelude::*;
/// use wengert_nn::train::{accuracy, evaluate};
/// let data = wengert_nn::data::Dataset::new(Tensor::<f64>::ones([4, 2]), Tensor::from_slice(&[0usize, 1, 0, 1]))?;
/// let mut model = Linear::<f64>::new(2, 2);
/// *model.weight.value_mut() = Tensor::zeros([2, 2]);
/// *model.bias.as_mut().unwrap().value_mut() = Tensor::from_slice(&[1.0, 0.0]); // outputs [1, 0]: always class 0
/// let (loss, acc) = evaluate(&mut model, &data, &|o, y| cross_entropy(o, y), Some(accuracy()), 3)?;
/// let want = ((1.0 + (-1f64).exp()).ln() + (1.0 + 1f64.exp()).ln()) / 2.0; // mean of −ln softmax at the targets
/// assert!((loss - want).abs() < 1e-12);
/// assert_eq!(acc, Some(0.5));
/// assert!(evaluate(&mut model, &data, &|o, y| cross_entropy(o, y), None, 0).is_err());
/// # Ok::<(), wengert_nn::Error>(())
/// ```
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

/// A model's parameter values and buffers, in visiting order.
type Snapshot<T> = (Vec<Tensor<T>>, Vec<crate::module::Buffer<T>>);

/// The model's parameters and buffers, in visiting order.
fn snapshot<T: Float, M: Module<T> + ?Sized>(model: &M) -> Snapshot<T> {
    let (mut params, mut buffers) = (Vec::new(), Vec::new());
    model.visit_params("", &mut |_, p| params.push(p.value().clone()));
    model.visit_buffers("", &mut |_, b| buffers.push(b));
    (params, buffers)
}

fn restore<T: Float, M: Module<T> + ?Sized>(model: &mut M, (params, buffers): &Snapshot<T>) {
    use crate::module::{Buffer, BufferMut};
    let mut it = params.iter();
    model.visit_params_mut("", &mut |_, p| {
        if let Some(v) = it.next() {
            *p.value_mut() = v.clone();
        }
    });
    let mut it = buffers.iter();
    model.visit_buffers_mut("", &mut |_, b| match (b, it.next()) {
        (BufferMut::Float(t), Some(Buffer::Float(v))) => *t = v.clone(),
        (BufferMut::Int(t), Some(Buffer::Int(v))) => *t = v.clone(),
        _ => {}
    });
}

/// Trains `model` on `data` with `opt`, minimising `loss(outputs, targets)`.
///
/// Each step binds the parameters into a fresh tape, runs forward and backward, and lets the
/// optimizer update them; a parameter the loss does not reach is an error
/// ([`Error::NoGradient`]), not a silent no-op. [`fit_with`] adds a learning-rate schedule,
/// gradient clipping and callbacks.
///
/// ```
/// use wengert_nn::prelude::*;
/// use wengert_nn::train::accuracy;
/// // two classes, told apart by the sign of the first feature
/// let x = Tensor::new(vec![1.0f32, 0.5, 2.0, -1.0, 0.5, 0.0, -1.0, 0.5, -2.0, 1.0, -0.5, 0.0], [6, 2]);
/// let data = wengert_nn::data::Dataset::new(x, Tensor::from_slice(&[0usize, 0, 0, 1, 1, 1]))?;
/// let mut model = Linear::new(2, 2);
/// let mut opt = Sgd::new(SgdConfig { lr: 0.5, ..Default::default() });
/// let cfg = FitConfig { epochs: 30, batch_size: 3, verbose: false, ..Default::default() };
/// let h = fit(&mut model, &mut opt, &data, |o, y| cross_entropy(o, y), Some(accuracy()), &cfg)?;
/// assert_eq!(h.train_loss.len(), 30);
/// assert!(h.train_loss[29] < h.train_loss[0] / 4.0);
/// assert_eq!(wengert_nn::metrics::argmax_rows(&predict(&mut model, &data.x, 6)?), [0, 0, 0, 1, 1, 1]);
/// let zero = FitConfig { batch_size: 0, ..cfg };
/// assert!(matches!(fit(&mut model, &mut opt, &data, |o, y| cross_entropy(o, y), None, &zero), Err(wengert_nn::Error::InvalidArgument { .. })));
/// # Ok::<(), wengert_nn::Error>(())
/// ```
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
    fit_with(model, opt, data, loss, metric, cfg, FitHooks::default())
}

/// Whether [`fit_with`] goes on after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// train the next epoch
    Continue,
    /// stop now (recorded as [`History::stopped_early`])
    Stop,
}

/// One optimizer step of [`fit_with`], as its `on_step` callback sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// 0-based epoch
    pub epoch: usize,
    /// 0-based step over the whole run
    pub step: usize,
    /// the batch's loss
    pub loss: f64,
    /// the learning rate the step used
    pub lr: f64,
    /// the gradients' global L2 norm before clipping, when clipping is on
    pub grad_norm: Option<f64>,
}

/// The parts of a training run beyond the plain loop, for [`fit_with`] (all off by default):
///
/// ```
/// use wengert_nn::prelude::*;
/// use wengert_nn::train::{fit_with, Control, FitHooks};
/// let data = wengert_nn::data::Dataset::new(Tensor::<f32>::ones([8, 2]), Tensor::from_slice(&[0usize, 1, 0, 1, 0, 1, 0, 1]))?;
/// let mut model = Linear::new(2, 2);
/// let mut opt = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() });
/// let mut lrs = Vec::new();
/// let hooks = FitHooks {
///     // linear warm-up over 4 steps, then a cosine decay to 0 at step 16
///     lr_at_step: Some(Box::new(|step| {
///         let warm = 4.0;
///         let s = step as f64;
///         if s < warm { 0.1 * (s + 1.0) / warm } else { 0.05 * (1.0 + (std::f64::consts::PI * (s - warm) / 12.0).cos()) }
///     })),
///     clip_grad_norm: Some(1.0),
///     on_step: Some(Box::new(|r| lrs.push(r.lr))),
///     on_epoch: Some(Box::new(|epoch, _model| if epoch.epoch == 3 { Control::Stop } else { Control::Continue })),
/// };
/// let cfg = FitConfig { epochs: 10, batch_size: 2, verbose: false, ..Default::default() };
/// let h = fit_with(&mut model, &mut opt, &data, |o, y| cross_entropy(o, y), None, &cfg, hooks)?;
/// assert_eq!((h.train_loss.len(), h.stopped_early), (4, true));
/// assert_eq!(lrs.len(), 16);
/// assert!((lrs[0] - 0.025).abs() < 1e-12 && (lrs[3] - 0.1).abs() < 1e-12);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub struct FitHooks<'a, M: ?Sized> {
    /// The learning rate of each step (its argument: the 0-based step over the whole run),
    /// set on the optimizer before the step: warm-up, cosine decay, ... (default: the
    /// optimizer's own rate).
    pub lr_at_step: Option<Box<dyn FnMut(usize) -> f64 + 'a>>,
    /// Clip the gradients' global L2 norm to this before each step
    /// ([`crate::optim::clip_grad_norm`]; default none).
    pub clip_grad_norm: Option<f64>,
    /// Called after each optimizer step.
    #[allow(clippy::type_complexity)]
    pub on_step: Option<Box<dyn FnMut(&StepReport) + 'a>>,
    /// Called after each epoch (after validation and early stopping's bookkeeping) with the
    /// epoch's report and the model, e.g. for a metric of your own or a checkpoint;
    /// [`Control::Stop`] ends the run.
    #[allow(clippy::type_complexity)]
    pub on_epoch: Option<Box<dyn FnMut(&EpochReport<'_>, &M) -> Control + 'a>>,
}

impl<M: ?Sized> Default for FitHooks<'_, M> {
    fn default() -> Self {
        FitHooks { lr_at_step: None, clip_grad_norm: None, on_step: None, on_epoch: None }
    }
}

/// One finished epoch, as [`FitHooks::on_epoch`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct EpochReport<'h> {
    /// 0-based epoch
    pub epoch: usize,
    /// everything recorded so far, this epoch included
    pub history: &'h History,
}

/// [`fit`] with a learning-rate schedule, gradient clipping and callbacks ([`FitHooks`]).
///
/// ```
/// use wengert_nn::prelude::*;
/// use wengert_nn::train::{fit_with, FitHooks};
/// let data = wengert_nn::data::Dataset::new(Tensor::<f32>::ones([8, 2]), Tensor::from_slice(&[0usize, 1, 0, 1, 0, 1, 0, 1]))?;
/// let mut model = Linear::new(2, 2);
/// let mut opt = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() });
/// let mut steps = Vec::new();
/// let hooks = FitHooks {
///     lr_at_step: Some(Box::new(|step| 0.1 / (1 + step) as f64)), // 1/t decay
///     clip_grad_norm: Some(0.5),
///     on_step: Some(Box::new(|r| steps.push((r.step, r.lr, r.grad_norm)))),
///     ..Default::default()
/// };
/// let cfg = FitConfig { epochs: 2, batch_size: 4, verbose: false, ..Default::default() };
/// let h = fit_with(&mut model, &mut opt, &data, |o, y| cross_entropy(o, y), None, &cfg, hooks)?;
/// assert_eq!(h.train_loss.len(), 2);
/// assert_eq!(steps.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 2, 3]); // 2 epochs of 2 batches
/// assert_eq!(steps[3].1, 0.1 / 4.0);
/// assert!(steps.iter().all(|s| s.2.is_some())); // the norm before clipping, as clipping is on
/// # Ok::<(), wengert_nn::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn fit_with<T, Y, M, O, L>(
    model: &mut M,
    opt: &mut O,
    data: &Dataset<T, Y>,
    loss: L,
    metric: Option<Metric<T, Y>>,
    cfg: &FitConfig,
    mut hooks: FitHooks<'_, M>,
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
    let mut stopper = cfg.early_stopping.map(Stopper::new);
    let mut step = 0;
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        model.set_training(true);
        let label = format!("epoch {:>3}/{}", epoch + 1, cfg.epochs);
        let steps = train.len().div_ceil(cfg.batch_size);
        let bar = if cfg.verbose && cfg.progress { ProgressBar::new(label, steps) } else { ProgressBar::hidden(label, steps) };
        let mut at = Position { epoch, step: &mut step, bar };
        let (train_loss, train_metric) = train_epoch(model, opt, &train, &loss, metric, cfg.batch_size, &mut rng, &mut hooks, &mut at)?;
        at.bar.finish();
        h.train_loss.push(train_loss);
        h.train_metric.extend(train_metric);
        if let Some(v) = &val {
            let (vl, vm) = evaluate(model, v, &loss, metric, 256)?;
            h.val_loss.push(vl);
            h.val_metric.extend(vm);
        }
        if cfg.verbose {
            println!("{}  ({:.2}s)", epoch_line(&h, epoch, cfg.epochs, metric.map(|m| m.name)), t0.elapsed().as_secs_f64());
        }
        let monitored = *h.val_loss.last().unwrap_or(&train_loss);
        let stop_early = stopper.as_mut().is_some_and(|s| s.should_stop(model, epoch, monitored));
        let stop_asked = hooks.on_epoch.as_mut().is_some_and(|f| f(&EpochReport { epoch, history: &h }, model) == Control::Stop);
        if stop_early || stop_asked {
            h.stopped_early = true;
            if let Some(s) = stopper.as_ref().filter(|_| stop_early) {
                s.restore(model);
                if cfg.verbose {
                    println!("early stop: no improvement for {} epochs (best epoch {})", s.cfg.patience, s.best_epoch + 1);
                }
            }
            break;
        }
    }
    h.seconds = start.elapsed().as_secs_f64();
    if let Some(path) = &cfg.plot {
        plot_history(&h, metric.map(|m| m.name)).save(path)?;
    }
    Ok(h)
}

/// Where a run is: its epoch, its step over the whole run, and the epoch's progress bar.
struct Position<'a> {
    epoch: usize,
    step: &'a mut usize,
    bar: ProgressBar,
}

/// One pass over `train` in shuffled batches: the mean loss and (with a metric) mean score.
#[allow(clippy::too_many_arguments)]
fn train_epoch<T, Y, M, O, L>(
    model: &mut M,
    opt: &mut O,
    train: &Dataset<T, Y>,
    loss: &L,
    metric: Option<Metric<T, Y>>,
    batch_size: usize,
    rng: &mut StdRng,
    hooks: &mut FitHooks<'_, M>,
    at: &mut Position<'_>,
) -> Result<(f64, Option<f64>)>
where
    T: Float,
    Y: Element,
    M: Module<T> + ?Sized,
    O: Optimizer<T>,
    L: for<'t> Fn(Var<'t, T>, &Tensor<Y>) -> Var<'t, T>,
{
    let (mut sum, mut msum, mut count) = (0.0, 0.0, 0usize);
    for batch in train.batches(batch_size, Some(rng), false)? {
        let tape = Tape::new();
        let out = model.forward(tape.constant(batch.x.clone()));
        let l = loss(out, &batch.y);
        if let Some(m) = metric {
            msum += (m.score)(&out.value(), &batch.y) * batch.len() as f64;
        }
        let mut grads = l.backward_release();
        let batch_loss = l.item().to_f64();
        sum += batch_loss * batch.len() as f64;
        count += batch.len();
        let step = &mut *at.step;
        if let Some(lr) = hooks.lr_at_step.as_mut().map(|f| f(*step)) {
            opt.set_lr(lr);
        }
        let grad_norm = hooks.clip_grad_norm.map(|max| crate::optim::clip_grad_norm(&*model, &mut grads, max));
        opt.step(model, &grads)?;
        if let Some(f) = hooks.on_step.as_mut() {
            f(&StepReport { epoch: at.epoch, step: *step, loss: batch_loss, lr: opt.lr(), grad_norm });
        }
        *step += 1;
        at.bar.inc(1, || format!("loss {:.4}", sum / count as f64));
    }
    Ok((sum / count as f64, metric.map(|_| msum / count as f64)))
}

/// The progress line of an epoch: losses and metrics so far recorded for it.
fn epoch_line(h: &History, epoch: usize, epochs: usize, metric: Option<&str>) -> String {
    let mut line = format!("epoch {:>3}/{epochs}  loss {:.4}", epoch + 1, h.train_loss[epoch]);
    if let (Some(name), Some(m)) = (metric, h.train_metric.get(epoch)) {
        line += &format!("  {name} {m:.4}");
    }
    if let Some(vl) = h.val_loss.get(epoch) {
        line += &format!("  val_loss {vl:.4}");
    }
    if let (Some(name), Some(m)) = (metric, h.val_metric.get(epoch)) {
        line += &format!("  val_{name} {m:.4}");
    }
    line
}

/// Early stopping's state: the best monitored loss, its epoch and (to restore) the model's
/// parameters and buffers then.
struct Stopper<T: Float> {
    cfg: EarlyStopping,
    best: f64,
    best_epoch: usize,
    best_state: Option<Snapshot<T>>,
}

impl<T: Float> Stopper<T> {
    fn new(cfg: EarlyStopping) -> Self {
        Stopper { cfg, best: f64::INFINITY, best_epoch: 0, best_state: None }
    }

    /// Records the epoch; true when `patience` epochs have passed without improvement.
    fn should_stop<M: Module<T> + ?Sized>(&mut self, model: &M, epoch: usize, monitored: f64) -> bool {
        if monitored < self.best - self.cfg.min_delta {
            (self.best, self.best_epoch) = (monitored, epoch);
            if self.cfg.restore_best {
                self.best_state = Some(snapshot(model));
            }
            false
        } else {
            epoch - self.best_epoch >= self.cfg.patience
        }
    }

    fn restore<M: Module<T> + ?Sized>(&self, model: &mut M) {
        if let Some(state) = &self.best_state {
            restore(model, state);
        }
    }
}
