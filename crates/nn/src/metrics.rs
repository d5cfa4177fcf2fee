//! Classification metrics: accuracy, confusion matrix, per-class and averaged
//! precision / recall / F1, a classification report, ROC and precision-recall curves with their
//! areas, and log loss. Definitions follow scikit-learn's (`sklearn.metrics`), including its
//! handling of ties and of 0/0 (taken as 0, like `zero_division=0`).
//!
//! ```
//! use wengert_nn::metrics::{accuracy, ClassificationReport, ConfusionMatrix};
//!
//! let target = [0, 0, 1, 1, 2, 2];
//! let pred = [0, 1, 1, 1, 2, 0];
//! assert_eq!(accuracy(&pred, &target)?, 4.0 / 6.0);
//! let cm = ConfusionMatrix::new(&pred, &target, 3)?;
//! assert_eq!(cm.recall(0), 0.5);
//! println!("{cm}\n\n{}", ClassificationReport::from_confusion(&cm));
//! # Ok::<(), wengert_nn::Error>(())
//! ```

use std::fmt;

use wengert_core::{Float, Tensor};

use crate::error::{Error, Result};

/// Probabilities are clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]` before the logarithm in
/// [`log_loss`] and [`log_loss_multiclass`], so a confident wrong answer costs at most
/// `-ln(1e-15) ≈ 34.5` instead of infinity (scikit-learn's long-standing default `eps`).
pub const LOG_LOSS_EPS: f64 = 1e-15;

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidArgument { reason: reason.into() }
}

/// `num / den`, or 0 when `den == 0` (scikit-learn's `zero_division=0`).
fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

fn check_lengths(op: &str, a: (&str, usize), b: (&str, usize)) -> Result<()> {
    if a.1 != b.1 {
        return Err(invalid(format!(
            "{op}: {} has {} entries but {} has {}",
            a.0, a.1, b.0, b.1
        )));
    }
    if a.1 == 0 {
        return Err(invalid(format!("{op}: no samples")));
    }
    Ok(())
}

/// The fraction of positions where `pred[i] == target[i]`: `Σ_i [pred_i = target_i] / n`.
///
/// `Err` if the slices have different lengths (naming both) or are empty.
///
/// ```
/// assert_eq!(wengert_nn::metrics::accuracy(&[0, 1, 2, 1], &[0, 2, 2, 1])?, 0.75);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn accuracy(pred: &[usize], target: &[usize]) -> Result<f64> {
    check_lengths("accuracy", ("pred", pred.len()), ("target", target.len()))?;
    let hits = pred.iter().zip(target).filter(|(p, t)| p == t).count();
    Ok(hits as f64 / pred.len() as f64)
}

/// The index of the largest entry of each row: for scores `[n, k]` (logits or probabilities),
/// `out[i] = argmax_c scores[i, c]`, length `n`. Ties go to the lowest index and a NaN counts
/// as the largest value (like NumPy's `argmax`), so a diverged model shows up as wrong
/// predictions. Higher-rank tensors are taken as rows along the last axis; a 0-d tensor as one
/// row of one entry.
///
/// # Panics
/// If the last axis has length 0 (there is no largest entry).
///
/// ```
/// use wengert_core::Tensor;
/// let logits = Tensor::new(vec![0.1f32, 2.0, -1.0, 3.0, 0.0, 3.0], [2, 3]);
/// assert_eq!(wengert_nn::metrics::argmax_rows(&logits), vec![1, 0]);
/// ```
#[track_caller]
pub fn argmax_rows<T: Float>(scores: &Tensor<T>) -> Vec<usize> {
    let k = scores.dims().last().copied().unwrap_or(1);
    if k == 0 {
        panic!(
            "wengert: argmax_rows: scores of shape {} have no entries per row",
            scores.shape()
        );
    }
    scores
        .as_slice()
        .chunks_exact(k)
        .map(|row| {
            // the max first, then where it is: a running (index, value) fold branches on
            // every entry, unpredictably (0.7 µs of a digits training step's 30)
            let max = row.iter().fold(T::NEG_INFINITY, |a, &v| if v > a { v } else { a });
            let nan = row.iter().position(|v| v.is_nan());
            nan.or_else(|| row.iter().position(|&v| v == max)).unwrap_or(0)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Confusion matrix and per-class scores
// ---------------------------------------------------------------------------------------------

/// Counts of (true class, predicted class) pairs: `counts[t][p]` samples of class `t` were
/// predicted as `p`; `num_classes x num_classes`.
///
/// For class `c`: true positives `TP = counts[c][c]`, false positives `FP = Σ_{t≠c} counts[t][c]`
/// (column), false negatives `FN = Σ_{p≠c} counts[c][p]` (row). Every ratio that would be 0/0
/// is 0 (scikit-learn's `zero_division=0`).
///
/// ```
/// use wengert_nn::metrics::ConfusionMatrix;
///
/// let cm = ConfusionMatrix::new(&[0, 1, 1, 1], &[0, 0, 1, 1], 2)?;
/// assert_eq!(cm.counts, vec![vec![1, 1], vec![0, 2]]);
/// assert_eq!((cm.precision(1), cm.recall(1), cm.f1(1)), (2.0 / 3.0, 1.0, 0.8));
/// assert_eq!(cm.to_string(), "true\\pred  0  1\n        0  1  1\n        1  0  2");
/// # Ok::<(), wengert_nn::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    /// `counts[true][pred]`.
    pub counts: Vec<Vec<usize>>,
    /// Number of classes `k` (rows and columns of `counts`).
    pub num_classes: usize,
}

impl ConfusionMatrix {
    /// Tallies predictions against targets for classes `0..num_classes`. `Err` if the slices
    /// differ in length (naming both) or a label is `>= num_classes` (naming its position).
    /// Empty slices give an all-zero matrix.
    ///
    /// ```
    /// use wengert_nn::metrics::ConfusionMatrix;
    /// // true classes 0, 0, 1, 1, 1 predicted as 0, 1, 1, 1, 0
    /// let cm = ConfusionMatrix::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 1], 2)?;
    /// assert_eq!(cm.counts, vec![vec![1, 1], vec![1, 2]]);
    /// assert!(ConfusionMatrix::new(&[0, 2], &[0, 1], 2).is_err()); // 2 is not a class
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn new(pred: &[usize], target: &[usize], num_classes: usize) -> Result<Self> {
        const OP: &str = "ConfusionMatrix::new";
        if pred.len() != target.len() {
            return Err(invalid(format!(
                "{OP}: pred has {} entries but target has {}",
                pred.len(),
                target.len()
            )));
        }
        let mut counts = vec![vec![0; num_classes]; num_classes];
        for (i, (&p, &t)) in pred.iter().zip(target).enumerate() {
            if p >= num_classes || t >= num_classes {
                let (name, v) = if t >= num_classes { ("target", t) } else { ("pred", p) };
                return Err(invalid(format!(
                    "{OP}: {name}[{i}] = {v} is not below num_classes = {num_classes}"
                )));
            }
            counts[t][p] += 1;
        }
        Ok(ConfusionMatrix { counts, num_classes })
    }

    /// Number of samples tallied: `Σ_t Σ_p counts[t][p]`.
    ///
    /// ```
    /// use wengert_nn::metrics::ConfusionMatrix;
    /// // true classes 0, 0, 1, 1, 1 predicted as 0, 1, 1, 1, 0
    /// let cm = ConfusionMatrix::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 1], 2)?;
    /// assert_eq!(cm.total(), 5);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// Fraction correct: `Σ_c counts[c][c] / total` (0 for an empty matrix).
    ///
    /// ```
    /// use wengert_nn::metrics::ConfusionMatrix;
    /// // true classes 0, 0, 1, 1, 1 predicted as 0, 1, 1, 1, 0
    /// let cm = ConfusionMatrix::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 1], 2)?;
    /// assert_eq!(cm.accuracy(), 0.6);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn accuracy(&self) -> f64 {
        let correct: usize = (0..self.num_classes).map(|c| self.counts[c][c]).sum();
        ratio(correct as f64, self.total() as f64)
    }

    /// Samples whose true class is `c`: `Σ_p counts[c][p]` (the row sum).
    ///
    /// # Panics
    /// If `c >= num_classes` (as do the other per-class methods).
    ///
    /// ```
    /// use wengert_nn::metrics::ConfusionMatrix;
    /// // true classes 0, 0, 1, 1, 1 predicted as 0, 1, 1, 1, 0
    /// let cm = ConfusionMatrix::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 1], 2)?;
    /// assert_eq!((cm.support(0), cm.support(1)), (2, 3));
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn support(&self, c: usize) -> usize {
        self.counts[c].iter().sum()
    }

    /// Samples predicted as `c`: `Σ_t counts[t][c]` (the column sum).
    ///
    /// ```
    /// use wengert_nn::metrics::ConfusionMatrix;
    /// // true classes 0, 0, 1, 1, 1 predicted as 0, 1, 1, 1, 0
    /// let cm = ConfusionMatrix::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 1], 2)?;
    /// assert_eq!((cm.predicted(0), cm.predicted(1)), (2, 3));
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn predicted(&self, c: usize) -> usize {
        self.counts.iter().map(|row| row[c]).sum()
    }

    /// `TP / (TP + FP)`: of the samples predicted as `c`, the fraction that are `c`.
    ///
    /// ```
    /// use wengert_nn::metrics::ConfusionMatrix;
    /// // true classes 0, 0, 1, 1, 1 predicted as 0, 1, 1, 1, 0
    /// let cm = ConfusionMatrix::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 1], 2)?;
    /// assert_eq!(cm.precision(1), 2.0 / 3.0);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn precision(&self, c: usize) -> f64 {
        ratio(self.counts[c][c] as f64, self.predicted(c) as f64)
    }

    /// `TP / (TP + FN)`: of the samples of class `c`, the fraction predicted as `c`.
    ///
    /// ```
    /// use wengert_nn::metrics::ConfusionMatrix;
    /// // true classes 0, 0, 1, 1, 1 predicted as 0, 1, 1, 1, 0
    /// let cm = ConfusionMatrix::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 1], 2)?;
    /// assert_eq!(cm.recall(0), 0.5);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn recall(&self, c: usize) -> f64 {
        ratio(self.counts[c][c] as f64, self.support(c) as f64)
    }

    /// The harmonic mean of precision and recall, computed as `2 TP / (2 TP + FP + FN)` (equal
    /// to `2 P R / (P + R)` whenever that is defined, and 0 when `TP = 0`).
    ///
    /// ```
    /// use wengert_nn::metrics::ConfusionMatrix;
    /// // true classes 0, 0, 1, 1, 1 predicted as 0, 1, 1, 1, 0
    /// let cm = ConfusionMatrix::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 1], 2)?;
    /// assert_eq!(cm.f1(1), 2.0 / 3.0); // 2·2 / (2·2 + 1 + 1)
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn f1(&self, c: usize) -> f64 {
        let tp = self.counts[c][c];
        let den = self.support(c) + self.predicted(c); // (TP + FN) + (TP + FP)
        ratio(2.0 * tp as f64, den as f64)
    }

    /// The classes that occur among the targets or the predictions: the ones scikit-learn
    /// reports and averages over by default.
    fn present(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.num_classes).filter(|&c| self.support(c) + self.predicted(c) > 0)
    }

    fn scores(&self, c: usize) -> ClassScores {
        ClassScores {
            precision: self.precision(c),
            recall: self.recall(c),
            f1: self.f1(c),
            support: self.support(c),
        }
    }
}

/// Width of the decimal form of `n`.
fn digits(n: usize) -> usize {
    n.to_string().len()
}

impl fmt::Display for ConfusionMatrix {
    /// A table with true classes down the side and predicted classes across the top:
    ///
    /// ```text
    /// true\pred  0  1
    ///         0  1  1
    ///         1  0  2
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CORNER: &str = "true\\pred";
        let k = self.num_classes;
        let max_count = self.counts.iter().flatten().copied().max().unwrap_or(0);
        let label_w = CORNER.len().max(digits(k.saturating_sub(1)));
        let cell_w = digits(max_count).max(digits(k.saturating_sub(1)));
        write!(f, "{CORNER:>label_w$}")?;
        for c in 0..k {
            write!(f, "  {c:>cell_w$}")?;
        }
        for (t, row) in self.counts.iter().enumerate() {
            write!(f, "\n{t:>label_w$}")?;
            for n in row {
                write!(f, "  {n:>cell_w$}")?;
            }
        }
        Ok(())
    }
}

/// How per-class scores are combined into one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Average {
    /// The unweighted mean over the classes that occur among targets or predictions:
    /// `(1/|C|) Σ_c score_c`. Every class counts the same, however rare.
    Macro,
    /// Scores from the pooled counts: `P = Σ TP / Σ (TP + FP)`, `R = Σ TP / Σ (TP + FN)`; for
    /// single-label data both equal the accuracy, and so does F1.
    Micro,
    /// The mean weighted by support: `Σ_c support_c score_c / Σ_c support_c`. Weighted recall
    /// equals the accuracy.
    Weighted,
}

/// `(precision, recall, f1)` of a confusion matrix combined with `avg` (see [`Average`]);
/// all zeros for an empty matrix.
///
/// ```
/// use wengert_nn::metrics::{precision_recall_f1, Average, ConfusionMatrix};
///
/// // Class 0: P = 1/2, R = 1/1, F1 = 2/3. Class 1: P = 0/0 := 0, R = 0/1, F1 = 0.
/// let cm = ConfusionMatrix::new(&[0, 0], &[0, 1], 2)?;
/// let (p, r, f1) = precision_recall_f1(&cm, Average::Macro);
/// assert_eq!((p, r), (0.25, 0.5));
/// assert!((f1 - 1.0 / 3.0).abs() < 1e-15);
/// assert_eq!(precision_recall_f1(&cm, Average::Micro), (0.5, 0.5, 0.5));
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn precision_recall_f1(cm: &ConfusionMatrix, avg: Average) -> (f64, f64, f64) {
    let s = average(cm, avg);
    (s.precision, s.recall, s.f1)
}

fn average(cm: &ConfusionMatrix, avg: Average) -> ClassScores {
    let total = cm.total();
    let (p, r, f1) = match avg {
        Average::Macro => {
            let (sum, count) = cm.present().fold(((0.0, 0.0, 0.0), 0usize), |(s, n), c| {
                ((s.0 + cm.precision(c), s.1 + cm.recall(c), s.2 + cm.f1(c)), n + 1)
            });
            let n = count as f64;
            (ratio(sum.0, n), ratio(sum.1, n), ratio(sum.2, n))
        }
        Average::Micro => {
            let (tp, pred, sup) = cm.present().fold((0, 0, 0), |(tp, pr, su), c| {
                (tp + cm.counts[c][c], pr + cm.predicted(c), su + cm.support(c))
            });
            let (tp, pred, sup) = (tp as f64, pred as f64, sup as f64);
            (ratio(tp, pred), ratio(tp, sup), ratio(2.0 * tp, pred + sup))
        }
        Average::Weighted => {
            let sum = cm.present().fold((0.0, 0.0, 0.0), |s, c| {
                let w = cm.support(c) as f64;
                (s.0 + w * cm.precision(c), s.1 + w * cm.recall(c), s.2 + w * cm.f1(c))
            });
            let w = total as f64;
            (ratio(sum.0, w), ratio(sum.1, w), ratio(sum.2, w))
        }
    };
    ClassScores {
        precision: p,
        recall: r,
        f1,
        support: total,
    }
}

/// Precision, recall, F1 and support of one class or one average.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassScores {
    /// `TP / (TP + FP)` (0 when nothing was predicted as the class).
    pub precision: f64,
    /// `TP / (TP + FN)` (0 when the class has no samples).
    pub recall: f64,
    /// `2 TP / (2 TP + FP + FN)`.
    pub f1: f64,
    /// Number of samples of the class (for an average: of all classes).
    pub support: usize,
}

/// Per-class and averaged scores of a confusion matrix, printed like scikit-learn's
/// `classification_report` (two decimals by default; `{:.4}` gives four).
///
/// Lists the classes that occur among the targets or the predictions, as scikit-learn does
/// without `labels=`; the averages are over the same classes.
///
/// ```
/// use wengert_nn::metrics::{ClassificationReport, ConfusionMatrix};
///
/// let cm = ConfusionMatrix::new(&[0, 1, 1, 1], &[0, 0, 1, 1], 2)?;
/// let report = ClassificationReport::from_confusion(&cm);
/// assert_eq!(report.macro_avg.recall, 0.75); // (1/2 + 2/2) / 2
/// let expected = "              precision    recall  f1-score   support
///
///            0       1.00      0.50      0.67         2
///            1       0.67      1.00      0.80         2
///
///     accuracy                           0.75         4
///    macro avg       0.83      0.75      0.73         4
///    micro avg       0.75      0.75      0.75         4
/// weighted avg       0.83      0.75      0.73         4";
/// assert_eq!(report.to_string(), expected);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ClassificationReport {
    /// `(class, scores)` for each class present among targets or predictions, in class order.
    pub classes: Vec<(usize, ClassScores)>,
    /// Fraction correct.
    pub accuracy: f64,
    /// [`Average::Macro`] of the classes.
    pub macro_avg: ClassScores,
    /// [`Average::Micro`] (equal to the accuracy for single-label data).
    pub micro_avg: ClassScores,
    /// [`Average::Weighted`] by support.
    pub weighted_avg: ClassScores,
}

impl ClassificationReport {
    /// All the scores of `cm`.
    ///
    /// ```
    /// use wengert_nn::metrics::{ClassificationReport, ConfusionMatrix};
    /// let cm = ConfusionMatrix::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 1], 2)?;
    /// let report = ClassificationReport::from_confusion(&cm);
    /// assert_eq!(report.classes.len(), 2);
    /// assert_eq!(report.micro_avg.f1, 0.6); // the accuracy, for single-label data
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn from_confusion(cm: &ConfusionMatrix) -> Self {
        ClassificationReport {
            classes: cm.present().map(|c| (c, cm.scores(c))).collect(),
            accuracy: cm.accuracy(),
            macro_avg: average(cm, Average::Macro),
            micro_avg: average(cm, Average::Micro),
            weighted_avg: average(cm, Average::Weighted),
        }
    }
}

impl fmt::Display for ClassificationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LAST: &str = "weighted avg";
        let prec = f.precision().unwrap_or(2);
        let w = self
            .classes
            .iter()
            .map(|(c, _)| digits(*c))
            .max()
            .unwrap_or(0)
            .max(LAST.len());
        let row = |f: &mut fmt::Formatter<'_>, name: &str, s: &ClassScores| {
            write!(
                f,
                "\n{name:>w$}  {:>9.prec$} {:>9.prec$} {:>9.prec$} {:>9}",
                s.precision, s.recall, s.f1, s.support
            )
        };
        writeln!(f, "{:w$}  {:>9} {:>9} {:>9} {:>9}", "", "precision", "recall", "f1-score", "support")?;
        for (c, s) in &self.classes {
            row(f, &c.to_string(), s)?;
        }
        writeln!(f)?;
        write!(
            f,
            "\n{:>w$}  {:>9} {:>9} {:>9.prec$} {:>9}",
            "accuracy", "", "", self.accuracy, self.macro_avg.support
        )?;
        row(f, "macro avg", &self.macro_avg)?;
        row(f, "micro avg", &self.micro_avg)?;
        row(f, LAST, &self.weighted_avg)
    }
}

// ---------------------------------------------------------------------------------------------
// Binary scores: ROC, precision-recall, log loss
// ---------------------------------------------------------------------------------------------

/// A curve traced by sweeping a decision threshold over binary scores: point `i` is
/// `(x[i], y[i])` for the rule "positive iff score >= `thresholds[i]`". Thresholds run from
/// `+inf` (nothing predicted positive) down to the smallest score (everything positive), one
/// point per distinct score. All three vectors have the same length.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// FPR for [`roc_curve`], recall for [`precision_recall_curve`]; non-decreasing.
    pub x: Vec<f64>,
    /// TPR for [`roc_curve`], precision for [`precision_recall_curve`].
    pub y: Vec<f64>,
    /// Decision thresholds, strictly decreasing, starting at `+inf`.
    pub thresholds: Vec<f64>,
}

/// Cumulative (false positive, true positive) counts at each distinct score, highest score
/// first: entry `i` counts the samples with `score >= thresholds[i]`. Tied scores share one
/// entry, so a tie never splits into an optimistic or pessimistic order.
struct Counts {
    fps: Vec<usize>,
    tps: Vec<usize>,
    thresholds: Vec<f64>,
}

impl Counts {
    fn new(op: &str, scores: &[f64], labels: &[bool]) -> Result<Self> {
        check_lengths(op, ("scores", scores.len()), ("labels", labels.len()))?;
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(invalid(format!("{op}: scores[{i}] is {}; scores must be finite", scores[i])));
        }
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        let mut out = Counts {
            fps: Vec::new(),
            tps: Vec::new(),
            thresholds: Vec::new(),
        };
        let (mut tp, mut fp) = (0, 0);
        for (k, &i) in order.iter().enumerate() {
            if labels[i] {
                tp += 1;
            } else {
                fp += 1;
            }
            // Close a point only after the last of a run of equal scores.
            if order.get(k + 1).is_none_or(|&j| scores[j] != scores[i]) {
                out.fps.push(fp);
                out.tps.push(tp);
                out.thresholds.push(scores[i]);
            }
        }
        Ok(out)
    }

    /// (positives, negatives) in the data.
    fn totals(&self) -> (usize, usize) {
        (self.tps.last().copied().unwrap_or(0), self.fps.last().copied().unwrap_or(0))
    }
}

/// The receiver operating characteristic: `x` = false positive rate `FP / N`, `y` = true
/// positive rate `TP / P` at each threshold, where "positive" means `score >= threshold`
/// (`labels[i] == true` marks the positive class).
///
/// Scikit-learn's `roc_curve` with `drop_intermediate=False`: the curve starts at `(0, 0)` with
/// threshold `+inf`, then has one point per distinct score, highest first, so tied scores form a
/// single (possibly diagonal) step. `Err` if the lengths differ, there are no samples, a score is
/// NaN or infinite, or only one class is present (then FPR or TPR is 0/0).
///
/// ```
/// use wengert_nn::metrics::roc_curve;
///
/// let c = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true])?;
/// assert_eq!(c.x, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
/// assert_eq!(c.y, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
/// assert_eq!(c.thresholds, vec![f64::INFINITY, 0.8, 0.4, 0.35, 0.1]);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Result<Curve> {
    roc("roc_curve", scores, labels)
}

fn roc(op: &str, scores: &[f64], labels: &[bool]) -> Result<Curve> {
    let counts = Counts::new(op, scores, labels)?;
    let (pos, neg) = counts.totals();
    if pos == 0 || neg == 0 {
        return Err(invalid(format!(
            "{op}: needs both classes, got {pos} positive and {neg} negative labels"
        )));
    }
    let rate = |v: &[usize], total: usize| -> Vec<f64> {
        std::iter::once(0.0).chain(v.iter().map(|&c| c as f64 / total as f64)).collect()
    };
    Ok(Curve {
        x: rate(&counts.fps, neg),
        y: rate(&counts.tps, pos),
        thresholds: std::iter::once(f64::INFINITY).chain(counts.thresholds).collect(),
    })
}

/// Area under the ROC curve by the trapezoid rule: `Σ_i (x_i - x_{i-1}) (y_i + y_{i-1}) / 2`
/// over [`roc_curve`]. Equals the probability that a random positive scores above a random
/// negative, ties counting one half. `Err` as for [`roc_curve`], in particular when only one
/// class is present.
///
/// ```
/// // Pairs (positive, negative): 0.35 > 0.1, 0.35 < 0.4, 0.8 > both: 3 of 4.
/// let auc = wengert_nn::metrics::roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true])?;
/// assert_eq!(auc, 0.75);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    let c = roc("roc_auc", scores, labels)?;
    Ok(c.x
        .windows(2)
        .zip(c.y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) / 2.0)
        .sum())
}

/// The precision-recall curve: `x` = recall `TP / P`, `y` = precision `TP / (TP + FP)` at each
/// threshold ("positive" means `score >= threshold`).
///
/// Scikit-learn's `precision_recall_curve` in the orientation of [`roc_curve`]: its arrays
/// reversed, so thresholds decrease and recall rises, and its final `(recall 0, precision 1)`
/// point comes first with threshold `+inf`. Tied scores form one point. `Err` if the lengths
/// differ, there are no samples, a score is not finite, or no label is positive (recall 0/0).
///
/// ```
/// use wengert_nn::metrics::precision_recall_curve;
///
/// let c = precision_recall_curve(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true])?;
/// assert_eq!(c.x, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
/// assert_eq!(c.y, vec![1.0, 1.0, 0.5, 2.0 / 3.0, 0.5]);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn precision_recall_curve(scores: &[f64], labels: &[bool]) -> Result<Curve> {
    pr("precision_recall_curve", scores, labels)
}

fn pr(op: &str, scores: &[f64], labels: &[bool]) -> Result<Curve> {
    let counts = Counts::new(op, scores, labels)?;
    let (pos, _) = counts.totals();
    if pos == 0 {
        return Err(invalid(format!("{op}: no positive labels, so recall is undefined")));
    }
    let pairs = counts.tps.iter().zip(&counts.fps);
    Ok(Curve {
        x: std::iter::once(0.0).chain(counts.tps.iter().map(|&tp| tp as f64 / pos as f64)).collect(),
        y: std::iter::once(1.0).chain(pairs.map(|(&tp, &fp)| tp as f64 / (tp + fp) as f64)).collect(),
        thresholds: std::iter::once(f64::INFINITY).chain(counts.thresholds).collect(),
    })
}

/// Average precision, scikit-learn's step-function area under the precision-recall curve:
/// `AP = Σ_n (R_n - R_{n-1}) P_n` over the thresholds of [`precision_recall_curve`] (recall
/// rising from `R_0 = 0`). No interpolation between points, unlike a trapezoid, which would
/// be optimistic. `Err` as for [`precision_recall_curve`].
///
/// ```
/// // Sorted by score: 0.8 (+), 0.4 (-), 0.35 (+), 0.1 (-). Recall steps to 1/2 at precision 1
/// // and to 1 at precision 2/3: AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
/// let ap = wengert_nn::metrics::average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true])?;
/// assert!((ap - 5.0 / 6.0).abs() < 1e-12);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Result<f64> {
    let c = pr("average_precision", scores, labels)?;
    Ok(c.x.windows(2).zip(&c.y[1..]).map(|(r, &p)| (r[1] - r[0]) * p).sum())
}

/// `Err` naming the first value outside `[0, 1]` (or NaN).
fn check_probabilities(op: &str, probs: impl IntoIterator<Item = (usize, f64)>) -> Result<()> {
    match probs.into_iter().find(|(_, p)| !(0.0..=1.0).contains(p)) {
        Some((i, p)) => Err(invalid(format!(
            "{op}: probability #{i} is {p}, outside [0, 1] (pass probabilities, not logits)"
        ))),
        None => Ok(()),
    }
}

/// `-ln` of a probability clipped to `[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]`.
fn neg_ln_clipped(p: f64) -> f64 {
    -p.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln()
}

/// Binary cross-entropy of predicted probabilities of the positive class:
/// `-(1/n) Σ_i [y_i ln p_i + (1 - y_i) ln(1 - p_i)]`, each `p_i` first clipped to
/// `[1e-15, 1 - 1e-15]` ([`LOG_LOSS_EPS`]). `Err` if the lengths differ, there are no samples,
/// or a probability is outside `[0, 1]` or NaN.
///
/// ```
/// // -(ln 0.9 + ln(1 - 0.2)) / 2
/// let l = wengert_nn::metrics::log_loss(&[0.9, 0.2], &[true, false])?;
/// assert!((l - 0.164252033486018).abs() < 1e-12);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn log_loss(probs: &[f64], labels: &[bool]) -> Result<f64> {
    const OP: &str = "log_loss";
    check_lengths(OP, ("probs", probs.len()), ("labels", labels.len()))?;
    check_probabilities(OP, probs.iter().copied().enumerate())?;
    let total: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &y)| neg_ln_clipped(if y { p } else { 1.0 - p }))
        .sum();
    Ok(total / probs.len() as f64)
}

/// Multiclass cross-entropy of predicted class probabilities `probs: [n, k]` (rows of a
/// softmax) against labels `[n]`: `-(1/n) Σ_i ln p[i, labels_i]`, each probability clipped to
/// `[1e-15, 1 - 1e-15]` ([`LOG_LOSS_EPS`]). Rows are used as given, not renormalised.
/// `Err` if `probs` is not `[labels.len(), k]` with `n, k > 0`, a label is `>= k`, or a
/// probability is outside `[0, 1]` or NaN.
///
/// ```
/// use wengert_core::Tensor;
/// // -(ln 0.7 + ln 0.8) / 2
/// let p = Tensor::new(vec![0.7f32, 0.2, 0.1, 0.1, 0.1, 0.8], [2, 3]);
/// let l = wengert_nn::metrics::log_loss_multiclass(&p, &[0, 2])?;
/// assert!((l - 0.289909255).abs() < 1e-7);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn log_loss_multiclass<T: Float>(probs: &Tensor<T>, labels: &[usize]) -> Result<f64> {
    const OP: &str = "log_loss_multiclass";
    let k = match *probs.dims() {
        [n, k] if n == labels.len() && n > 0 && k > 0 => k,
        _ => {
            return Err(invalid(format!(
                "{OP}: probs has shape {} but {} labels were given; need [n, k] with n = labels, \
                 n > 0 and k > 0",
                probs.shape(),
                labels.len()
            )))
        }
    };
    if let Some((i, &c)) = labels.iter().enumerate().find(|&(_, &c)| c >= k) {
        return Err(invalid(format!("{OP}: labels[{i}] = {c} is not below the {k} classes of probs")));
    }
    check_probabilities(OP, probs.as_slice().iter().map(|p| p.to_f64()).enumerate())?;
    let total: f64 = probs
        .as_slice()
        .chunks_exact(k)
        .zip(labels)
        .map(|(row, &c)| neg_ln_clipped(row[c].to_f64()))
        .sum();
    Ok(total / labels.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    fn assert_all_close(a: &[f64], b: &[f64]) {
        assert!(a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| close(x, y)), "{a:?} vs {b:?}");
    }

    #[test]
    fn accuracy_and_its_errors() {
        // Positions 0, 2, 3 agree: 3/4.
        assert_eq!(accuracy(&[0, 1, 2, 1], &[0, 2, 2, 1]).unwrap(), 0.75);
        let msg = accuracy(&[0, 1], &[0, 1, 2]).unwrap_err().to_string();
        assert_eq!(msg, "accuracy: pred has 2 entries but target has 3");
        assert!(accuracy(&[], &[]).is_err());
    }

    #[test]
    fn argmax_rows_ties_and_nan() {
        // Row 0: max 0.7 at 1. Row 1: tie 3 = 3 -> first. Row 2: NaN wins, like NumPy.
        let t = Tensor::new(vec![0.1f64, 0.7, 0.2, 3.0, -1.0, 3.0, 1.0, f64::NAN, 5.0], [3, 3]);
        assert_eq!(argmax_rows(&t), vec![1, 0, 1]);
        assert_eq!(argmax_rows(&Tensor::<f32>::zeros([0, 4])), Vec::<usize>::new());
        assert_eq!(argmax_rows(&Tensor::scalar(2.0f32)), vec![0]);
        let inf = f32::INFINITY;
        assert_eq!(argmax_rows(&Tensor::new(vec![-inf, -inf, -inf, 1.0, inf, inf], [2, 3])), vec![0, 1]);
    }

    /// The 3-class example worked by hand. Rows true, columns predicted:
    ///
    /// ```text
    ///          p0 p1 p2 | support
    /// true 0:   2  1  0 |   3
    /// true 1:   1  2  1 |   4
    /// true 2:   0  0  3 |   3
    /// predicted 3  3  4 |  10, trace 7
    /// ```
    fn three_class() -> ConfusionMatrix {
        let target = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2];
        let pred = [0, 0, 1, 0, 1, 1, 2, 2, 2, 2];
        ConfusionMatrix::new(&pred, &target, 3).unwrap()
    }

    #[test]
    fn confusion_matrix_per_class_by_hand() {
        let cm = three_class();
        assert_eq!(cm.counts, vec![vec![2, 1, 0], vec![1, 2, 1], vec![0, 0, 3]]);
        assert_eq!((cm.total(), cm.accuracy()), (10, 0.7));
        // precision = diagonal / column sum: 2/3, 2/3, 3/4.
        // recall = diagonal / row sum: 2/3, 2/4, 3/3.
        // f1 = 2TP / (2TP + FP + FN): 4/(4+1+1), 4/(4+1+2), 6/(6+1+0).
        let want = [(2.0 / 3.0, 2.0 / 3.0, 4.0 / 6.0, 3), (2.0 / 3.0, 0.5, 4.0 / 7.0, 4), (0.75, 1.0, 6.0 / 7.0, 3)];
        for (c, &(p, r, f1, s)) in want.iter().enumerate() {
            assert!(close(cm.precision(c), p) && close(cm.recall(c), r) && close(cm.f1(c), f1), "class {c}");
            assert_eq!(cm.support(c), s);
            // F1 is also the harmonic mean 2PR/(P+R).
            assert!(close(cm.f1(c), 2.0 * p * r / (p + r)));
        }
    }

    #[test]
    fn averages_by_hand() {
        let cm = three_class();
        // Macro: P = (2/3 + 2/3 + 3/4)/3 = 25/36, R = (2/3 + 1/2 + 1)/3 = 13/18,
        //        F1 = (2/3 + 4/7 + 6/7)/3 = (14 + 12 + 18)/63 = 44/63.
        let (p, r, f) = precision_recall_f1(&cm, Average::Macro);
        assert!(close(p, 25.0 / 36.0) && close(r, 13.0 / 18.0) && close(f, 44.0 / 63.0), "{p} {r} {f}");
        // Micro: pooled TP = 7 of 10 predicted and 10 true: all 0.7.
        let (p, r, f) = precision_recall_f1(&cm, Average::Micro);
        assert!(close(p, 0.7) && close(r, 0.7) && close(f, 0.7), "{p} {r} {f}");
        // Weighted by support 3, 4, 3:
        //   P = (3·2/3 + 4·2/3 + 3·3/4)/10 = (2 + 8/3 + 9/4)/10 = 83/120,
        //   R = (2 + 2 + 3)/10 = 0.7,
        //   F1 = (3·2/3 + 4·4/7 + 3·6/7)/10 = (14 + 16 + 18)/70 = 24/35.
        let (p, r, f) = precision_recall_f1(&cm, Average::Weighted);
        assert!(close(p, 83.0 / 120.0) && close(r, 0.7) && close(f, 24.0 / 35.0), "{p} {r} {f}");
    }

    #[test]
    fn zero_division_and_absent_classes() {
        // target [0, 1], pred [0, 0], 3 classes. Class 1 is never predicted: P = 0/0 := 0,
        // R = 0/1, F1 = 0. Class 2 occurs nowhere and is left out of the averages.
        // Class 0: P = 1/2, R = 1, F1 = 2/(2+1+0) = 2/3.
        let cm = ConfusionMatrix::new(&[0, 0], &[0, 1], 3).unwrap();
        assert_eq!((cm.precision(1), cm.recall(1), cm.f1(1)), (0.0, 0.0, 0.0));
        assert_eq!((cm.precision(2), cm.recall(2), cm.f1(2), cm.support(2)), (0.0, 0.0, 0.0, 0));
        let (p, r, f) = precision_recall_f1(&cm, Average::Macro);
        assert!(close(p, 0.25) && close(r, 0.5) && close(f, 1.0 / 3.0));
        // Weighted by support 1, 1: the same as macro here.
        let (p, r, f) = precision_recall_f1(&cm, Average::Weighted);
        assert!(close(p, 0.25) && close(r, 0.5) && close(f, 1.0 / 3.0));
        let report = ClassificationReport::from_confusion(&cm);
        assert_eq!(report.classes.iter().map(|(c, _)| *c).collect::<Vec<_>>(), vec![0, 1]);
        // An empty matrix: every score is 0, nothing panics.
        let empty = ConfusionMatrix::new(&[], &[], 2).unwrap();
        assert_eq!(empty.accuracy(), 0.0);
        assert_eq!(precision_recall_f1(&empty, Average::Macro), (0.0, 0.0, 0.0));
        assert_eq!(precision_recall_f1(&empty, Average::Weighted), (0.0, 0.0, 0.0));
        assert!(ClassificationReport::from_confusion(&empty).to_string().contains("accuracy"));
    }

    #[test]
    fn confusion_matrix_errors() {
        let msg = ConfusionMatrix::new(&[0, 1], &[0], 2).unwrap_err().to_string();
        assert_eq!(msg, "ConfusionMatrix::new: pred has 2 entries but target has 1");
        let msg = ConfusionMatrix::new(&[0, 2], &[0, 1], 2).unwrap_err().to_string();
        assert_eq!(msg, "ConfusionMatrix::new: pred[1] = 2 is not below num_classes = 2");
        let msg = ConfusionMatrix::new(&[0, 1], &[5, 1], 2).unwrap_err().to_string();
        assert_eq!(msg, "ConfusionMatrix::new: target[0] = 5 is not below num_classes = 2");
    }

    #[test]
    fn confusion_matrix_display_is_aligned() {
        let cm = three_class();
        assert_eq!(cm.to_string(), "true\\pred  0  1  2\n        0  2  1  0\n        1  1  2  1\n        2  0  0  3");
        // Wider counts widen every cell: 12 samples of class 0 all right, 10 classes.
        let pred = [vec![0; 12], vec![9]].concat();
        let cm = ConfusionMatrix::new(&pred, &pred, 10).unwrap();
        let text = cm.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[0], "true\\pred   0   1   2   3   4   5   6   7   8   9");
        assert_eq!(lines[1], "        0  12   0   0   0   0   0   0   0   0   0");
        assert!(lines.iter().all(|l| l.len() == lines[0].len()));
    }

    #[test]
    fn report_display_like_scikit_learn() {
        // Per-class rows from confusion_matrix_per_class_by_hand, averages from averages_by_hand:
        // 2/3 = 0.67, 4/7 = 0.57, 6/7 = 0.86, 25/36 = 0.69, 13/18 = 0.72, 44/63 = 0.70,
        // 83/120 = 0.69, 24/35 = 0.69.
        let report = ClassificationReport::from_confusion(&three_class());
        let expected = "              precision    recall  f1-score   support

           0       0.67      0.67      0.67         3
           1       0.67      0.50      0.57         4
           2       0.75      1.00      0.86         3

    accuracy                           0.70        10
   macro avg       0.69      0.72      0.70        10
   micro avg       0.70      0.70      0.70        10
weighted avg       0.69      0.70      0.69        10";
        assert_eq!(report.to_string(), expected);
        // Precision from the formatter: 25/36 = 0.6944.
        assert!(format!("{report:.4}").contains("   macro avg     0.6944    0.7222    0.6984        10"));
        assert_eq!(report.classes[1].1.support, 4);
        assert_eq!(report.weighted_avg.support, 10);
    }

    const SCORES: [f64; 4] = [0.1, 0.4, 0.35, 0.8];
    const LABELS: [bool; 4] = [false, false, true, true];

    #[test]
    fn roc_by_hand() {
        // Sorted by score: 0.8 (+), 0.4 (-), 0.35 (+), 0.1 (-); P = N = 2.
        // Cumulative TP 1,1,2,2 and FP 0,1,1,2 give TPR .5,.5,1,1 and FPR 0,.5,.5,1 after (0,0).
        let c = roc_curve(&SCORES, &LABELS).unwrap();
        assert_eq!(c.x, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(c.y, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_eq!(c.thresholds, vec![f64::INFINITY, 0.8, 0.4, 0.35, 0.1]);
        // Trapezoids: 0 + 0.5·(0.5+0.5)/2 + 0 + 0.5·(1+1)/2 = 0.25 + 0.5 = 0.75.
        assert_eq!(roc_auc(&SCORES, &LABELS).unwrap(), 0.75);
        // Perfect and reversed rankings.
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &[true, true, false, false]).unwrap(), 1.0);
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &[true, true, false, false]).unwrap(), 0.0);
    }

    #[test]
    fn roc_ties_form_one_diagonal_step() {
        // Scores 0.8 (+), 0.5 (+), 0.5 (-), 0.2 (-): the tied pair is one threshold, so the
        // curve goes (0,0) -> (0,.5) -> (.5,1) -> (1,1), whatever order the tie is sorted in.
        // AUC = 0.5·(0.5+1)/2 + 0.5·(1+1)/2 = 0.375 + 0.5 = 0.875
        //     = P(pos > neg) with ties as 1/2: (1 + 1 + 0.5 + 1)/4.
        let scores = [0.5, 0.5, 0.2, 0.8];
        for labels in [[true, false, false, true], [false, true, false, true]] {
            let c = roc_curve(&scores, &labels).unwrap();
            assert_eq!(c.x, vec![0.0, 0.0, 0.5, 1.0]);
            assert_eq!(c.y, vec![0.0, 0.5, 1.0, 1.0]);
            assert_eq!(c.thresholds, vec![f64::INFINITY, 0.8, 0.5, 0.2]);
            assert_eq!(roc_auc(&scores, &labels).unwrap(), 0.875);
        }
        // All scores equal: one diagonal from (0,0) to (1,1), AUC 1/2. 0.0 and -0.0 are a tie.
        assert_eq!(roc_auc(&[0.0, -0.0, 0.0], &[true, false, false]).unwrap(), 0.5);
        assert_eq!(roc_curve(&[0.0, -0.0, 0.0], &[true, false, false]).unwrap().x.len(), 2);
    }

    #[test]
    fn precision_recall_by_hand() {
        // Same sort as roc_by_hand: precision TP/(TP+FP) = 1/1, 1/2, 2/3, 2/4;
        // recall TP/2 = .5, .5, 1, 1; plus the (0, 1) point at +inf.
        let c = precision_recall_curve(&SCORES, &LABELS).unwrap();
        assert_eq!(c.x, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_all_close(&c.y, &[1.0, 1.0, 0.5, 2.0 / 3.0, 0.5]);
        assert_eq!(c.thresholds, vec![f64::INFINITY, 0.8, 0.4, 0.35, 0.1]);
        // AP = Σ ΔR·P = 0.5·1 + 0·0.5 + 0.5·2/3 + 0·0.5 = 5/6 = 0.8333...
        assert!(close(average_precision(&SCORES, &LABELS).unwrap(), 5.0 / 6.0));
        // (A trapezoid would give 0.5·1 + 0 + 0.5·(0.5 + 2/3)/2 + 0 = 0.7917, not AP.)
        // Ties: 0.8 (+), {0.5 (+), 0.5 (-)}, 0.2 (-): precision 1, 2/3, 2/4 at recall .5, 1, 1.
        // AP = 0.5·1 + 0.5·2/3 = 5/6 as well.
        let c = precision_recall_curve(&[0.5, 0.5, 0.2, 0.8], &[true, false, false, true]).unwrap();
        assert_eq!(c.x, vec![0.0, 0.5, 1.0, 1.0]);
        assert_all_close(&c.y, &[1.0, 1.0, 2.0 / 3.0, 0.5]);
        assert!(close(average_precision(&[0.5, 0.5, 0.2, 0.8], &[true, false, false, true]).unwrap(), 5.0 / 6.0));
        // Only positives is fine for PR: precision 1 everywhere, AP = 1.
        assert_eq!(average_precision(&[0.3, 0.7], &[true, true]).unwrap(), 1.0);
    }

    #[test]
    fn binary_curve_errors() {
        let msg = roc_auc(&[0.1, 0.2], &[true, true]).unwrap_err().to_string();
        assert_eq!(msg, "roc_auc: needs both classes, got 2 positive and 0 negative labels");
        assert!(roc_curve(&[0.1, 0.2], &[false, false]).is_err());
        let msg = roc_auc(&[0.1], &[true, false]).unwrap_err().to_string();
        assert_eq!(msg, "roc_auc: scores has 1 entries but labels has 2");
        assert!(roc_auc(&[], &[]).is_err());
        let msg = roc_curve(&[0.1, f64::NAN], &[true, false]).unwrap_err().to_string();
        assert_eq!(msg, "roc_curve: scores[1] is NaN; scores must be finite");
        let msg = average_precision(&[0.1, 0.2], &[false, false]).unwrap_err().to_string();
        assert_eq!(msg, "average_precision: no positive labels, so recall is undefined");
        assert!(precision_recall_curve(&[0.1], &[]).is_err());
    }

    #[test]
    fn log_loss_by_hand() {
        // -(ln 0.9 + ln 0.8)/2 = (0.105360516 + 0.223143551)/2 = 0.164252033.
        assert!(close(log_loss(&[0.9, 0.2], &[true, false]).unwrap(), -(0.9f64.ln() + 0.8f64.ln()) / 2.0));
        // Clipping: p = 1 for a negative costs -ln(1e-15) = 34.538776...; p = 0 for a negative
        // costs -ln(1 - 1e-15) ≈ 1e-15.
        assert!(close(log_loss(&[1.0], &[false]).unwrap(), 15.0 * 10f64.ln()));
        assert!(log_loss(&[0.0], &[false]).unwrap() < 1.1e-15);
        let msg = log_loss(&[0.5, 1.5], &[true, false]).unwrap_err().to_string();
        assert_eq!(msg, "log_loss: probability #1 is 1.5, outside [0, 1] (pass probabilities, not logits)");
        assert!(log_loss(&[f64::NAN], &[true]).is_err());
        assert!(log_loss(&[0.5], &[true, false]).is_err());
        assert!(log_loss(&[], &[]).is_err());
    }

    #[test]
    fn log_loss_multiclass_by_hand() {
        // Rows [.7 .2 .1] label 0, [.1 .1 .8] label 2: -(ln 0.7 + ln 0.8)/2 = 0.289909255.
        let p = Tensor::new(vec![0.7f64, 0.2, 0.1, 0.1, 0.1, 0.8], [2, 3]);
        assert!(close(log_loss_multiclass(&p, &[0, 2]).unwrap(), -(0.7f64.ln() + 0.8f64.ln()) / 2.0));
        // Binary as two columns [1-p, p] agrees with log_loss.
        let two = Tensor::new(vec![0.1f64, 0.9, 0.8, 0.2], [2, 2]);
        assert!(close(log_loss_multiclass(&two, &[1, 0]).unwrap(), log_loss(&[0.9, 0.2], &[true, false]).unwrap()));
        // A zero probability on the true class is clipped: -ln(1e-15).
        let z = Tensor::new(vec![1.0f64, 0.0], [1, 2]);
        assert!(close(log_loss_multiclass(&z, &[1]).unwrap(), 15.0 * 10f64.ln()));
        let msg = log_loss_multiclass(&p, &[0, 3]).unwrap_err().to_string();
        assert_eq!(msg, "log_loss_multiclass: labels[1] = 3 is not below the 3 classes of probs");
        assert!(log_loss_multiclass(&p, &[0]).unwrap_err().to_string().contains("shape [2, 3] but 1 labels"));
        assert!(log_loss_multiclass(&Tensor::<f32>::zeros([6]), &[0; 6]).is_err());
        let neg = Tensor::new(vec![-0.5f32, 1.5], [1, 2]);
        assert!(log_loss_multiclass(&neg, &[0]).unwrap_err().to_string().contains("#0 is -0.5"));
    }
}
