//! Losses and regularisation penalties, composed of tape ops.
//!
//! Regression losses take the target as a `Var` (usually `tape.constant(..)`); classification
//! losses take class indices as a `Tensor<usize>`. `Reduction` picks mean (the default, as in
//! PyTorch), sum, or the per-element losses.

use wengert_core::{Float, Tape, Tensor, Var};

use crate::module::Module;

/// How per-element losses are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// the mean (default)
    #[default]
    Mean,
    /// the sum
    Sum,
    /// no reduction: one loss per element (per sample for classification losses)
    None,
}

impl Reduction {
    /// Applies this reduction to per-element losses.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let tape = Tape::<f64>::new();
    /// let losses = tape.constant(Tensor::from_slice(&[1.0, 3.0]));
    /// assert_eq!(Reduction::Mean.apply(losses).item(), 2.0);
    /// assert_eq!(Reduction::Sum.apply(losses).item(), 4.0);
    /// assert_eq!(Reduction::None.apply(losses).value().dims(), &[2]);
    /// ```
    pub fn apply<'t, T: Float>(self, losses: Var<'t, T>) -> Var<'t, T> {
        match self {
            Reduction::Mean => losses.mean(),
            Reduction::Sum => losses.sum(),
            Reduction::None => losses,
        }
    }
}

#[track_caller]
fn same_shape<T: Float>(op: &str, a: &Var<'_, T>, b: &Var<'_, T>) {
    if a.shape() != b.shape() {
        panic!("wengert: {op}: prediction shape {} and target shape {} differ", a.shape(), b.shape());
    }
}

/// Mean squared error: reduce((pred - target)²).
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let p = tape.var(Tensor::from_slice(&[1.0, 2.0]));
/// let t = tape.constant(Tensor::from_slice(&[0.0, 4.0]));
/// assert_eq!(mse_loss(p, t, Reduction::Mean).item(), 2.5);
/// ```
#[track_caller]
pub fn mse_loss<'t, T: Float>(pred: Var<'t, T>, target: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
    same_shape("mse_loss", &pred, &target);
    reduction.apply((pred - target).square())
}

/// Mean absolute error: reduce(|pred - target|).
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let p = tape.var(Tensor::from_slice(&[1.0, 2.0]));
/// let t = tape.constant(Tensor::from_slice(&[0.0, 5.0]));
/// assert_eq!(l1_loss(p, t, Reduction::Mean).item(), 2.0);
/// ```
#[track_caller]
pub fn l1_loss<'t, T: Float>(pred: Var<'t, T>, target: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
    same_shape("l1_loss", &pred, &target);
    reduction.apply((pred - target).abs())
}

/// Huber loss with threshold δ: ½d² where |d| ≤ δ, δ(|d| - ½δ) elsewhere (d = pred - target).
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let p = tape.var(Tensor::from_slice(&[0.5, 3.0]));
/// let t = tape.constant(Tensor::from_slice(&[0.0, 0.0]));
/// // ½·0.5² = 0.125 inside δ = 1, 1·(3 - ½) = 2.5 outside
/// assert_eq!(huber_loss(p, t, 1.0, Reduction::Sum).item(), 2.625);
/// ```
#[track_caller]
pub fn huber_loss<'t, T: Float>(pred: Var<'t, T>, target: Var<'t, T>, delta: f64, reduction: Reduction) -> Var<'t, T> {
    same_shape("huber_loss", &pred, &target);
    // with a = |d| and m = min(a, δ), ½d² and δ(a - ½δ) are both m·(a - ½m): five
    // elementwise ops and no mask, instead of a mask, both branches and a `where_` (on 1M
    // f32 both took 2.7-3.7 ms forward and backward: one pass over memory per op dominates)
    let a = (pred - target).abs();
    let m = a.clamp(T::ZERO, T::from_f64(delta));
    reduction.apply(m * (a - m * 0.5))
}

/// Smooth L1 with threshold β (PyTorch's `smooth_l1_loss`): Huber(δ = β) / β.
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let p = tape.var(Tensor::from_slice(&[0.5, 3.0]));
/// let t = tape.constant(Tensor::from_slice(&[0.0, 0.0]));
/// // Huber with δ = 2 over 2: (½·0.25 + 2·(3 - 1)) / 2
/// assert_eq!(smooth_l1_loss(p, t, 2.0, Reduction::Sum).item(), 2.0625);
/// ```
#[track_caller]
pub fn smooth_l1_loss<'t, T: Float>(pred: Var<'t, T>, target: Var<'t, T>, beta: f64, reduction: Reduction) -> Var<'t, T> {
    huber_loss(pred, target, beta, reduction) * (1.0 / beta)
}

/// Binary cross-entropy of probabilities p against 0/1 targets y:
/// -(y ln p + (1-y) ln(1-p)), logs clamped at -100 as PyTorch does.
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let p = tape.var(Tensor::from_slice(&[0.5, 0.9]));
/// let y = tape.constant(Tensor::from_slice(&[1.0, 0.0]));
/// let want = -(0.5f64.ln() + 0.1f64.ln()) / 2.0;
/// assert!((binary_cross_entropy(p, y, Reduction::Mean).item() - want).abs() < 1e-12);
/// ```
#[track_caller]
pub fn binary_cross_entropy<'t, T: Float>(p: Var<'t, T>, y: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
    same_shape("binary_cross_entropy", &p, &y);
    let floor = T::from_f64(-100.0);
    let lp = p.ln().clamp(floor, T::INFINITY);
    let lq = (1.0 - p).ln().clamp(floor, T::INFINITY);
    reduction.apply(-(y * lp + (1.0 - y) * lq))
}

/// Binary cross-entropy on logits x: softplus(x) - x·y, which equals
/// -(y ln σ(x) + (1-y) ln(1-σ(x))) without overflow for large |x|; gradient σ(x) - y.
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::from_slice(&[0.0, 100.0]));
/// let y = tape.constant(Tensor::from_slice(&[1.0, 1.0]));
/// // ln 2 at 0, no overflow at 100 (the loss there is e⁻¹⁰⁰, about 0)
/// assert!((bce_with_logits(x, y, Reduction::Sum).item() - 2f64.ln()).abs() < 1e-12);
/// ```
#[track_caller]
pub fn bce_with_logits<'t, T: Float>(logits: Var<'t, T>, y: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
    same_shape("bce_with_logits", &logits, &y);
    reduction.apply(logits.softplus() - logits * y)
}

/// Binary cross-entropy on logits with options, as PyTorch's `nn.BCEWithLogitsLoss`:
/// element loss wₑ·[p·y·softplus(−x) + (1 − y)·softplus(x)] (= −wₑ[p·y·ln σ(x) + (1 − y)·ln(1 − σ(x))]),
/// computed as wₑ·[(1 − y)·x + (1 + (p − 1)·y)·softplus(−x)] so large |x| never overflow.
/// `weight` (w) broadcasts against the input, `pos_weight` (p, the weight of positives)
/// against its last axis, as in PyTorch.
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let x = tape.var(Tensor::new(vec![0.0, 0.0], [1, 2]));
/// let y = tape.constant(Tensor::new(vec![1.0, 0.0], [1, 2]));
/// let bce = BceWithLogitsLoss { pos_weight: Some(Tensor::from_slice(&[3.0, 3.0])), ..Default::default() };
/// // positives weigh 3: (3·ln 2 + ln 2) / 2
/// assert!((bce.loss(x, y).item() - 2.0 * 2f64.ln()).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, Default)]
pub struct BceWithLogitsLoss<T: Float = f32> {
    /// mean (default), sum or per element
    pub reduction: Reduction,
    /// per-element weights, broadcast against the input (default none: all 1)
    pub weight: Option<Tensor<T>>,
    /// weights of the positive term, broadcast against the input's last axis (default none: 1)
    pub pos_weight: Option<Tensor<T>>,
}

impl<T: Float> BceWithLogitsLoss<T> {
    /// The loss of logits against 0/1 (or soft) targets of the same shape.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_slice(&[0.0, 2.0]));
    /// let y = tape.constant(Tensor::from_slice(&[1.0, 0.0]));
    /// let loss = BceWithLogitsLoss::default().loss(x, y); // mean of softplus(x) − x·y
    /// assert!((loss.item() - (2f64.ln() + (1.0 + 2f64.exp()).ln()) / 2.0).abs() < 1e-12);
    /// let g = loss.backward().wrt(x).to_vec(); // (σ(x) − y) / n
    /// let sigmoid2 = 1.0 / (1.0 + (-2f64).exp());
    /// assert!((g[0] + 0.25).abs() < 1e-12 && (g[1] - sigmoid2 / 2.0).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn loss<'t>(&self, logits: Var<'t, T>, y: Var<'t, T>) -> Var<'t, T> {
        same_shape("bce_with_logits", &logits, &y);
        let tape = logits.tape();
        let per = match &self.pos_weight {
            None => logits.softplus() - logits * y,
            Some(p) => {
                let last = logits.shape().dims().last().copied().unwrap_or(1);
                if p.numel() != 1 && p.dims() != [last] {
                    panic!("wengert: bce_with_logits: pos_weight has shape {}, expected [{last}] for input {}", p.shape(), logits.shape());
                }
                let p = tape.constant(p.clone());
                (1.0 - y) * logits + ((p - 1.0) * y + 1.0) * (-logits).softplus()
            }
        };
        self.reduction.apply(weighted("bce_with_logits", per, self.weight.as_ref()))
    }
}

/// Binary cross-entropy of probabilities with per-element weights, as PyTorch's `nn.BCELoss`:
/// wₑ·[−(y ln p + (1 − y) ln(1 − p))], logs clamped at −100.
#[derive(Clone, Debug, Default)]
pub struct BceLoss<T: Float = f32> {
    /// mean (default), sum or per element
    pub reduction: Reduction,
    /// per-element weights, broadcast against the input (default none: all 1)
    pub weight: Option<Tensor<T>>,
}

impl<T: Float> BceLoss<T> {
    /// The loss of probabilities against targets of the same shape.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let tape = Tape::<f64>::new();
    /// let p = tape.var(Tensor::from_slice(&[0.5, 0.9, 0.0]));
    /// let y = tape.constant(Tensor::from_slice(&[1.0, 1.0, 1.0]));
    /// let bce = BceLoss { reduction: Reduction::None, weight: Some(Tensor::from_slice(&[2.0, 1.0, 1.0])) };
    /// let per = bce.loss(p, y).value().to_vec();
    /// assert!((per[0] - 2.0 * 2f64.ln()).abs() < 1e-12); // weighted 2
    /// assert!((per[1] + 0.9f64.ln()).abs() < 1e-12);
    /// assert_eq!(per[2], 100.0); // −ln 0 clamped at 100, as PyTorch
    /// ```
    #[track_caller]
    pub fn loss<'t>(&self, p: Var<'t, T>, y: Var<'t, T>) -> Var<'t, T> {
        let per = binary_cross_entropy(p, y, Reduction::None);
        self.reduction.apply(weighted("binary_cross_entropy", per, self.weight.as_ref()))
    }
}

/// `per · weight` (broadcast), checking the weight broadcasts to `per`'s shape.
#[track_caller]
fn weighted<'t, T: Float>(op: &str, per: Var<'t, T>, weight: Option<&Tensor<T>>) -> Var<'t, T> {
    let Some(w) = weight else { return per };
    let shape = per.shape();
    let fits = w.ndim() <= shape.ndim()
        && w.dims().iter().rev().zip(shape.dims().iter().rev()).all(|(&a, &b)| a == b || a == 1);
    if !fits {
        panic!("wengert: {op}: weight of shape {} does not broadcast to the input's {shape}", w.shape());
    }
    per * per.tape().constant(w.clone())
}

/// Checks `scores: [n, C]` against `targets: [n]`, each below C unless it is `ignore`.
#[track_caller]
fn check_targets<T: Float>(op: &str, scores: &Var<'_, T>, targets: &Tensor<usize>, ignore: Option<usize>) -> (usize, usize) {
    let s = scores.shape();
    if s.ndim() != 2 || targets.ndim() != 1 || targets.dims()[0] != s[0] {
        panic!("wengert: {op}: scores must be [n, classes] and targets [n]; got {} and {}", s, targets.shape());
    }
    if let Some(&bad) = targets.as_slice().iter().find(|&&t| t >= s[1] && Some(t) != ignore) {
        panic!("wengert: {op}: target class {bad} is out of range for {} classes (scores {s})", s[1]);
    }
    (s[0], s[1])
}

/// Negative log-likelihood of log-probabilities `[n, C]` at class indices `[n]`:
/// reduce(-logp[i, yᵢ]). [`NllLoss`] adds class weights and `ignore_index`.
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let logp = tape.var(Tensor::new(vec![-1.0, -2.0, -3.0, -4.0], [2, 2]));
/// let y = Tensor::new(vec![1usize, 0], [2]);
/// let loss = nll_loss(logp, &y, Reduction::Mean);
/// assert_eq!(loss.item(), (2.0 + 3.0) / 2.0);
/// assert_eq!(loss.backward().wrt(logp).to_vec(), [0.0, -0.5, -0.5, 0.0]); // −1/n at each target
/// assert_eq!(nll_loss(logp, &y, Reduction::None).value().to_vec(), [2.0, 3.0]);
/// assert_eq!(nll_loss(logp, &y, Reduction::Sum).item(), 5.0);
/// ```
#[track_caller]
pub fn nll_loss<'t, T: Float>(logp: Var<'t, T>, targets: &Tensor<usize>, reduction: Reduction) -> Var<'t, T> {
    NllLoss { reduction, ..Default::default() }.loss(logp, targets)
}

/// Negative log-likelihood with options, as PyTorch's `nn.NLLLoss`: sample i's loss is
/// -w_{yᵢ}·logp[i, yᵢ] (0 when yᵢ is `ignore_index`), and the mean divides by the sum of
/// w_{yᵢ} over the samples kept.
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let logp = tape.var(Tensor::new(vec![-1.0, -2.0, -3.0, -4.0], [2, 2]));
/// let nll = NllLoss { weight: Some(Tensor::from_slice(&[1.0, 3.0])), ..Default::default() };
/// let y = Tensor::new(vec![1usize, 0], [2]);
/// assert!((nll.loss(logp, &y).item() - (3.0 * 2.0 + 1.0 * 3.0) / 4.0).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, Default)]
pub struct NllLoss<T: Float = f32> {
    /// mean (default), sum or per sample
    pub reduction: Reduction,
    /// per-class weights `[C]` (default none: all 1)
    pub weight: Option<Tensor<T>>,
    /// a target value whose samples are skipped (default none); it may lie outside 0..C
    pub ignore_index: Option<usize>,
}

impl<T: Float> NllLoss<T> {
    /// The loss of log-probabilities `[n, C]` against class indices `[n]`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let tape = Tape::<f64>::new();
    /// let logp = tape.var(Tensor::new(vec![-1.0, -2.0, -3.0, -4.0], [2, 2]));
    /// let nll = NllLoss { ignore_index: Some(7), ..Default::default() };
    /// let loss = nll.loss(logp, &Tensor::new(vec![1usize, 7], [2])); // sample 1 is skipped
    /// assert_eq!(loss.item(), 2.0); // the mean over the one sample kept
    /// assert_eq!(loss.backward().wrt(logp).to_vec(), [0.0, -1.0, 0.0, 0.0]);
    /// let out_of_range = Tensor::new(vec![2usize, 0], [2]); // class 2 of 2 classes
    /// assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| { nll.loss(logp, &out_of_range); })).is_err());
    /// ```
    #[track_caller]
    pub fn loss<'t>(&self, logp: Var<'t, T>, targets: &Tensor<usize>) -> Var<'t, T> {
        let (n, c) = check_targets("nll_loss", &logp, targets, self.ignore_index);
        let picked = PickedLogp::new("nll_loss", logp, targets, self.weight.as_ref(), self.ignore_index, n, c);
        picked.reduce(-picked.weighted, self.reduction)
    }
}

/// logp[i, yᵢ] weighted per sample by sᵢ = w_{yᵢ} (1 without weights, 0 for ignored
/// samples), the part NLL and cross-entropy share.
struct PickedLogp<'t, T: Float> {
    /// sᵢ·logp[i, yᵢ], `[n]`
    weighted: Var<'t, T>,
    /// 1 for kept samples, 0 for ignored ones, `[n]`
    kept: Tensor<T>,
    /// Σ sᵢ, the denominator of a weighted or ignoring mean
    total: T,
    /// whether the mean divides by `total` rather than n
    weighted_mean: bool,
}

impl<'t, T: Float> PickedLogp<'t, T> {
    #[track_caller]
    fn new(op: &str, logp: Var<'t, T>, targets: &Tensor<usize>, weight: Option<&Tensor<T>>, ignore: Option<usize>, n: usize, c: usize) -> Self {
        if let Some(w) = weight {
            if w.dims() != [c] {
                panic!("wengert: {op}: class weights have shape {}, expected [{c}]", w.shape());
            }
        }
        let kept = |t: usize| Some(t) != ignore;
        // ignored samples read class 0 and are weighted 0
        let safe: Vec<usize> = targets.as_slice().iter().map(|&t| if kept(t) { t } else { 0 }).collect();
        let picked = logp.gather(1, &Tensor::new(safe, [n, 1])).reshape([n]);
        let s: Vec<T> = targets
            .as_slice()
            .iter()
            .map(|&t| match (weight, kept(t)) {
                (_, false) => T::ZERO,
                (Some(w), true) => w.as_slice()[t],
                (None, true) => T::ONE,
            })
            .collect();
        let s = Tensor::new(s, [n]);
        let total = s.sum().item();
        let mask = targets.as_slice().iter().map(|&t| if kept(t) { T::ONE } else { T::ZERO }).collect();
        PickedLogp {
            weighted: picked * logp.tape().constant(s),
            kept: Tensor::new(mask, [n]),
            total,
            weighted_mean: weight.is_some() || ignore.is_some(),
        }
    }

    /// Reduces per-sample losses, a mean dividing by Σ sᵢ when weighted or ignoring.
    fn reduce(&self, per_sample: Var<'t, T>, reduction: Reduction) -> Var<'t, T> {
        match reduction {
            Reduction::Mean if self.weighted_mean => per_sample.sum() * (T::ONE / self.total).to_f64(),
            r => r.apply(per_sample),
        }
    }
}

/// Cross-entropy from logits with options, as PyTorch's `nn.CrossEntropyLoss`.
///
/// With class weights w and label smoothing ε, sample i's loss is
/// (1-ε)·(-w_{yᵢ} ln pᵢ,yᵢ) + ε·(-Σ_c w_c ln pᵢ,c)/C, and the mean divides by Σᵢ w_{yᵢ}.
/// Samples whose target is `ignore_index` have loss 0 and are left out of that sum (so a
/// mean over only ignored samples is NaN, as in PyTorch).
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let logits = tape.var(Tensor::new(vec![0.0, 0.0, 5.0, -5.0], [2, 2]));
/// let ce = CrossEntropyLoss { ignore_index: Some(99), ..Default::default() };
/// let loss = ce.loss(logits, &Tensor::new(vec![0usize, 99], [2])); // padding, as torch's -100
/// assert!((loss.item() - 2f64.ln()).abs() < 1e-12);
/// assert_eq!(loss.backward().wrt(logits).to_vec()[2..], [0.0, 0.0]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct CrossEntropyLoss<T: Float = f32> {
    /// mean (default), sum or per sample
    pub reduction: Reduction,
    /// ε in [0, 1) (default 0)
    pub label_smoothing: f64,
    /// per-class weights `[C]` (default none: all 1)
    pub weight: Option<Tensor<T>>,
    /// a target value whose samples are skipped (PyTorch's `ignore_index`, whose default -100
    /// is this `None`); it may lie outside 0..C (default none)
    pub ignore_index: Option<usize>,
}

impl<T: Float> CrossEntropyLoss<T> {
    /// The loss of logits `[n, C]` against class indices `[n]`.
    ///
    /// ```
    /// use wengert_nn::prelude::*;
    /// let tape = Tape::<f64>::new();
    /// let logits = tape.var(Tensor::new(vec![3f64.ln(), 0.0], [1, 2])); // softmax: [0.75, 0.25]
    /// let y = Tensor::new(vec![0usize], [1]);
    /// let loss = CrossEntropyLoss::default().loss(logits, &y);
    /// assert!((loss.item() + 0.75f64.ln()).abs() < 1e-12);
    /// let g = loss.backward().wrt(logits).to_vec(); // softmax − one-hot
    /// assert!((g[0] + 0.25).abs() < 1e-12 && (g[1] - 0.25).abs() < 1e-12);
    /// let smoothed = CrossEntropyLoss { label_smoothing: 0.2, ..Default::default() }.loss(logits, &y);
    /// let want = 0.8 * -0.75f64.ln() + 0.2 * -(0.75f64.ln() + 0.25f64.ln()) / 2.0;
    /// assert!((smoothed.item() - want).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn loss<'t>(&self, logits: Var<'t, T>, targets: &Tensor<usize>) -> Var<'t, T> {
        let ignore = self.ignore_index;
        let (n, c) = check_targets("cross_entropy", &logits, targets, ignore);
        if self.weight.is_none() && self.label_smoothing == 0.0 && ignore.is_none() {
            // the plain loss as one fused op (one pass each way, no [n, C] log-probabilities)
            return self.reduction.apply(logits.cross_entropy_rows(targets));
        }
        let tape = logits.tape();
        let logp = logits.log_softmax(1);
        let eps = self.label_smoothing;
        let picked = PickedLogp::new("cross_entropy", logp, targets, self.weight.as_ref(), ignore, n, c);
        let smooth = (eps > 0.0).then(|| {
            let rows = match &self.weight {
                Some(w) => (logp * tape.constant(w.clone())).sum_axes(&[1], false),
                None => logp.sum_axes(&[1], false),
            };
            -(rows * tape.constant(picked.kept.clone())) * (1.0 / c as f64)
        });
        let nll = -picked.weighted;
        let per_sample = match smooth {
            Some(s) => nll * (1.0 - eps) + s * eps,
            None => nll,
        };
        picked.reduce(per_sample, self.reduction)
    }
}

/// Mean cross-entropy of logits `[n, C]` at class indices `[n]`: -mean(log_softmax(x)[i, yᵢ]).
///
/// ```
/// use wengert_nn::prelude::*;
/// let tape = Tape::<f64>::new();
/// let logits = tape.var(Tensor::new(vec![0.0, 0.0, 0.0, 0.0], [2, 2]));
/// let loss = cross_entropy(logits, &Tensor::new(vec![0usize, 1], [2]));
/// assert!((loss.item() - 2f64.ln()).abs() < 1e-12);
/// ```
#[track_caller]
pub fn cross_entropy<'t, T: Float>(logits: Var<'t, T>, targets: &Tensor<usize>) -> Var<'t, T> {
    CrossEntropyLoss::default().loss(logits, targets)
}

/// L1 penalty Σ|p| over the model's trainable parameters, bound on `tape`
/// (add `λ·l1_penalty(..)` to a loss for L1 regularisation).
///
/// ```
/// use wengert_nn::prelude::*;
/// let mut layer = Linear::<f64>::new(2, 1);
/// layer.weight.set(Tensor::new(vec![1.0, -2.0], [1, 2])).unwrap();
/// layer.bias.as_mut().unwrap().set(Tensor::from_slice(&[0.5])).unwrap();
/// let tape = Tape::new();
/// assert_eq!(l1_penalty(&layer, &tape).item(), 3.5);
/// ```
pub fn l1_penalty<'t, T: Float, M: Module<T> + ?Sized>(model: &M, tape: &'t Tape<T>) -> Var<'t, T> {
    penalty(model, tape, |p| p.abs().sum())
}

/// L2 penalty Σp² over the model's trainable parameters, bound on `tape`
/// (add `λ·l2_penalty(..)` to a loss; its gradient is 2λp).
///
/// ```
/// use wengert_nn::prelude::*;
/// let mut layer = Linear::<f64>::new(2, 1);
/// layer.weight.set(Tensor::new(vec![1.0, -2.0], [1, 2])).unwrap();
/// layer.bias.as_mut().unwrap().set(Tensor::from_slice(&[0.5])).unwrap();
/// let tape = Tape::new();
/// assert_eq!(l2_penalty(&layer, &tape).item(), 5.25);
/// ```
pub fn l2_penalty<'t, T: Float, M: Module<T> + ?Sized>(model: &M, tape: &'t Tape<T>) -> Var<'t, T> {
    penalty(model, tape, |p| p.square().sum())
}

fn penalty<'t, T: Float, M: Module<T> + ?Sized>(model: &M, tape: &'t Tape<T>, f: impl Fn(Var<'t, T>) -> Var<'t, T>) -> Var<'t, T> {
    let mut total = tape.scalar(T::ZERO);
    model.visit_params("", &mut |_, p| {
        if p.is_trainable() {
            total = total + f(tape.param(p));
        }
    });
    total
}
