//! Data sets: a [`Dataset`] of samples along axis 0, CSV loading (plain text or gzip), the two
//! shipped data sets, random and stratified splits, mini-batches, feature scaling and one-hot
//! encoding.
//!
//! Nothing here panics on a bad file: every file problem is an [`Error::Parse`] naming the file,
//! the 1-based line and what is wrong with it (an [`Error::Io`] when the file cannot be read).
//!
//! ```
//! use rand::SeedableRng;
//! use wengert_nn::data::{load_digits, repo_data_path, Standardizer};
//!
//! let digits = load_digits(repo_data_path("digits.csv.gz"))?;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let (train, test) = digits.stratified_split(0.2, &mut rng)?;
//! // Fit the scaling on the training data only, then apply it to both parts.
//! let (scaler, x_train) = Standardizer::fit_transform(&train.x)?;
//! let x_test = scaler.transform(&test.x)?;
//! assert_eq!(x_train.dims()[1], 64);
//! assert_eq!(x_test.dims(), &[test.len(), 64]);
//! for batch in train.batches(128, Some(&mut rng), false)? {
//!     assert!(batch.len() <= 128);
//! }
//! # Ok::<(), wengert_nn::Error>(())
//! ```

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use rand::seq::SliceRandom;
use rand::Rng;
use wengert_core::{Element, Float, Tensor};

use crate::error::{Error, Result};

/// The first two bytes of every gzip stream (RFC 1952, ID1 and ID2).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Largest integer an `f64` holds exactly (2^53); a class label in a CSV file must not exceed it.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// Pixels per digits image (8 x 8).
const DIGITS_PIXELS: usize = 64;
/// Largest digits pixel value (the UCI images count set pixels in 4 x 4 blocks: 0..=16).
const DIGITS_MAX_PIXEL: f64 = 16.0;
/// Digit classes 0..=9.
const DIGITS_CLASSES: usize = 10;
/// Real-valued features per breast-cancer sample.
const BREAST_CANCER_FEATURES: usize = 30;
/// Breast-cancer classes: 0 = malignant, 1 = benign.
const BREAST_CANCER_CLASSES: usize = 2;

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidArgument { reason: reason.into() }
}

/// `Err` naming `op` unless `batch_size` is at least 1 (a batch of 0 samples never advances).
pub(crate) fn check_batch_size(op: &str, batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(invalid(format!("{op}: batch_size must be at least 1, got 0")));
    }
    Ok(())
}

fn parse_error(path: &Path, line: usize, reason: impl Into<String>) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Dataset
// ---------------------------------------------------------------------------------------------

/// A supervised data set: features `x` and targets `y`, one sample per index of axis 0.
///
/// `x` is `[n, d]` (or `[n, ...]`, e.g. `[n, 1, 8, 8]` images) and `y` is `[n]` (class labels,
/// the default `Y = usize`) or `[n, k]` (one-hot or regression targets). Sample `i` is
/// `(x[i, ..], y[i, ..])`. [`Dataset::new`] checks that both have the same `n`.
///
/// ```
/// use wengert_core::Tensor;
/// use wengert_nn::data::Dataset;
///
/// let x = Tensor::new(vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0], [3, 2]);
/// let y = Tensor::new(vec![1usize, 0, 1], [3]);
/// let ds = Dataset::new(x, y)?;
/// assert_eq!((ds.len(), ds.num_features(), ds.num_classes()), (3, 2, 2));
/// let sizes: Vec<usize> = ds.batches(2, None::<&mut rand::rngs::StdRng>, false)?.map(|b| b.len()).collect();
/// assert_eq!(sizes, vec![2, 1]);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T: Float = f32, Y: Element = usize> {
    /// Features, `[n, ...]`.
    pub x: Tensor<T>,
    /// Targets, `[n]` or `[n, k]`.
    pub y: Tensor<Y>,
}

impl<T: Float, Y: Element> Dataset<T, Y> {
    /// Pairs features `[n, ...]` with targets `[n, ...]`; `Err` (naming both shapes) unless both
    /// have at least one axis and the same length `n` along axis 0.
    ///
    /// ```
    /// use wengert_nn::data::Dataset;
    /// use wengert_nn::prelude::Tensor;
    /// // 4 samples of 3 features, labels 0, 2, 2, 1
    /// let data = Dataset::new(Tensor::<f32>::zeros([4, 3]), Tensor::from_slice(&[0usize, 2, 2, 1]))?;
    /// assert_eq!(data.len(), 4);
    /// assert!(Dataset::new(Tensor::<f32>::zeros([4, 3]), Tensor::from_slice(&[0usize, 1])).is_err());
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn new(x: Tensor<T>, y: Tensor<Y>) -> Result<Self> {
        match (x.dims().first(), y.dims().first()) {
            (Some(nx), Some(ny)) if nx == ny => Ok(Dataset { x, y }),
            _ => Err(invalid(format!(
                "Dataset::new: x has shape {} and y has shape {}: both need the same number of \
                 samples along axis 0",
                x.shape(),
                y.shape()
            ))),
        }
    }

    /// Number of samples `n` (length of axis 0).
    ///
    /// ```
    /// use wengert_nn::data::Dataset;
    /// use wengert_nn::prelude::Tensor;
    /// // 4 samples of 3 features, labels 0, 2, 2, 1
    /// let data = Dataset::new(Tensor::<f32>::zeros([4, 3]), Tensor::from_slice(&[0usize, 2, 2, 1]))?;
    /// assert_eq!(data.len(), 4);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.x.dims().first().copied().unwrap_or(0)
    }

    /// Whether there are no samples.
    ///
    /// ```
    /// use wengert_nn::data::Dataset;
    /// use wengert_nn::prelude::Tensor;
    /// // 4 samples of 3 features, labels 0, 2, 2, 1
    /// let data = Dataset::new(Tensor::<f32>::zeros([4, 3]), Tensor::from_slice(&[0usize, 2, 2, 1]))?;
    /// assert!(!data.is_empty());
    /// assert!(data.subset(&[]).is_empty());
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Features per sample: the product of `x`'s dimensions after the first (`d` for `[n, d]`,
    /// `c * h * w` for `[n, c, h, w]`).
    ///
    /// ```
    /// use wengert_nn::data::Dataset;
    /// use wengert_nn::prelude::Tensor;
    /// // 4 samples of 3 features, labels 0, 2, 2, 1
    /// let data = Dataset::new(Tensor::<f32>::zeros([4, 3]), Tensor::from_slice(&[0usize, 2, 2, 1]))?;
    /// assert_eq!(data.num_features(), 3);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn num_features(&self) -> usize {
        self.x.dims().iter().skip(1).product()
    }

    /// The samples at `indices`, in that order (repeats allowed): `x[indices, ..]` and
    /// `y[indices, ..]`, each via `index_select` on axis 0.
    ///
    /// # Panics
    /// If an index is `>= self.len()` (the message names the index and the shape).
    ///
    /// ```
    /// use wengert_nn::data::Dataset;
    /// use wengert_nn::prelude::Tensor;
    /// // 4 samples of 3 features, labels 0, 2, 2, 1
    /// let data = Dataset::new(Tensor::<f32>::zeros([4, 3]), Tensor::from_slice(&[0usize, 2, 2, 1]))?;
    /// let picked = data.subset(&[3, 1, 1]);
    /// assert_eq!(picked.y.to_vec(), vec![1, 2, 2]);
    /// assert_eq!(picked.x.dims(), &[3, 3]);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    #[track_caller]
    pub fn subset(&self, indices: &[usize]) -> Self {
        Dataset {
            x: self.x.index_select(0, indices),
            y: self.y.index_select(0, indices),
        }
    }

    /// Mini-batches of `batch_size` samples covering the data set once (one epoch).
    ///
    /// With `shuffle = Some(rng)` the sample order is a uniformly random permutation drawn with
    /// `rng` (Fisher–Yates, via [`SliceRandom::shuffle`]), so a seeded rng gives reproducible
    /// epochs; with `None` the batches are `0..b`, `b..2b`, ... in order (write
    /// `None::<&mut StdRng>`, as the rng type cannot be inferred from `None`). The last batch
    /// holds the `n % batch_size` leftover samples, unless `drop_last` drops it. The iterator
    /// yields `ceil(n / b)` batches (`floor(n / b)` with `drop_last`).
    ///
    /// `Err` ([`Error::InvalidArgument`]) if `batch_size == 0`.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::Dataset;
    ///
    /// let ds = Dataset::new(Tensor::<f32>::zeros([10, 3]), Tensor::from_slice(&[0usize; 10]))?;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    /// let batches: Vec<_> = ds.batches(4, Some(&mut rng), true)?.collect();
    /// assert_eq!(batches.len(), 2); // 10 = 4 + 4 + 2, and the 2 are dropped
    /// assert_eq!(batches[0].x.dims(), &[4, 3]);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn batches<R: Rng + ?Sized>(
        &self,
        batch_size: usize,
        shuffle: Option<&mut R>,
        drop_last: bool,
    ) -> Result<Batches<'_, T, Y>> {
        check_batch_size("Dataset::batches", batch_size)?;
        let n = self.len();
        let mut order: Vec<usize> = (0..n).collect();
        if let Some(rng) = shuffle {
            order.shuffle(rng);
        }
        let end = if drop_last { n - n % batch_size } else { n };
        Ok(Batches {
            data: self,
            order,
            batch_size,
            next: 0,
            end,
        })
    }

    /// A random split into `(train, test)`: a uniformly random permutation drawn with `rng`, the
    /// first `ceil(test_fraction * n)` samples of which form the test set (as scikit-learn's
    /// `train_test_split` rounds).
    ///
    /// `Err` if `test_fraction` is not strictly between 0 and 1, or if either part would be
    /// empty.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::Dataset;
    ///
    /// let ds = Dataset::new(Tensor::<f32>::zeros([10, 2]), Tensor::from_slice(&[0usize; 10]))?;
    /// let (train, test) = ds.train_test_split(0.25, &mut rand::rngs::StdRng::seed_from_u64(0))?;
    /// assert_eq!((train.len(), test.len()), (7, 3)); // ceil(0.25 * 10) = 3
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn train_test_split<R: Rng + ?Sized>(&self, test_fraction: f64, rng: &mut R) -> Result<(Self, Self)> {
        const OP: &str = "Dataset::train_test_split";
        check_fraction(OP, test_fraction)?;
        let n = self.len();
        // The small guard keeps e.g. 0.3 * 10 = 3.0000000000000004 from rounding up to 4.
        let n_test = (test_fraction * n as f64 - 1e-9).ceil().max(0.0) as usize;
        check_split_sizes(OP, test_fraction, n, n - n_test.min(n), n_test)?;
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        let (test, train) = order.split_at(n_test);
        Ok((self.subset(train), self.subset(test)))
    }
}

impl<T: Float> Dataset<T, usize> {
    /// Number of classes: the largest label plus one (0 when there are no samples).
    ///
    /// ```
    /// use wengert_nn::data::Dataset;
    /// use wengert_nn::prelude::Tensor;
    /// // 4 samples of 3 features, labels 0, 2, 2, 1
    /// let data = Dataset::new(Tensor::<f32>::zeros([4, 3]), Tensor::from_slice(&[0usize, 2, 2, 1]))?;
    /// assert_eq!(data.num_classes(), 3);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn num_classes(&self) -> usize {
        self.y.as_slice().iter().max().map_or(0, |&m| m + 1)
    }

    /// Samples per class: entry `c` counts the labels equal to `c` (length
    /// [`Dataset::num_classes`]).
    ///
    /// ```
    /// use wengert_nn::data::Dataset;
    /// use wengert_nn::prelude::Tensor;
    /// // 4 samples of 3 features, labels 0, 2, 2, 1
    /// let data = Dataset::new(Tensor::<f32>::zeros([4, 3]), Tensor::from_slice(&[0usize, 2, 2, 1]))?;
    /// assert_eq!(data.class_counts(), vec![1, 1, 2]);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        self.y.as_slice().iter().for_each(|&c| counts[c] += 1);
        counts
    }

    /// A stratified random split into `(train, test)` that keeps the class proportions: of the
    /// `m_c` samples of class `c`, a random `round(test_fraction * m_c)` (halves rounded up) go to
    /// the test set and the rest to the training set; both parts are then shuffled so classes
    /// are interleaved. Like scikit-learn's `StratifiedShuffleSplit`, except that the test size
    /// is the sum of the per-class rounded counts (so it may differ by a sample or two from
    /// `ceil(test_fraction * n)`).
    ///
    /// `Err` if `y` is not `[n]`, `test_fraction` is not strictly between 0 and 1, or either part
    /// would be empty.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::Dataset;
    ///
    /// let labels = [0usize, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
    /// let ds = Dataset::new(Tensor::<f32>::zeros([15, 1]), Tensor::from_slice(&labels))?;
    /// let (train, test) = ds.stratified_split(0.2, &mut rand::rngs::StdRng::seed_from_u64(0))?;
    /// assert_eq!(test.class_counts(), vec![2, 1]); // round(0.2 * 10), round(0.2 * 5)
    /// assert_eq!(train.class_counts(), vec![8, 4]);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn stratified_split<R: Rng + ?Sized>(&self, test_fraction: f64, rng: &mut R) -> Result<(Self, Self)> {
        const OP: &str = "Dataset::stratified_split";
        check_fraction(OP, test_fraction)?;
        if self.y.ndim() != 1 {
            return Err(invalid(format!(
                "{OP}: y must hold one class label per sample, shape [n], got {}",
                self.y.shape()
            )));
        }
        let labels = self.y.as_slice();
        // Indices grouped by class (a stable sort, so the result depends only on the rng).
        let mut by_class: Vec<usize> = (0..labels.len()).collect();
        by_class.sort_by_key(|&i| labels[i]);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for members in by_class.chunk_by_mut(|&a, &b| labels[a] == labels[b]) {
            members.shuffle(rng);
            let n_test = ((test_fraction * members.len() as f64).round() as usize).min(members.len());
            test.extend_from_slice(&members[..n_test]);
            train.extend_from_slice(&members[n_test..]);
        }
        check_split_sizes(OP, test_fraction, labels.len(), train.len(), test.len())?;
        train.shuffle(rng);
        test.shuffle(rng);
        Ok((self.subset(&train), self.subset(&test)))
    }
}

fn check_fraction(op: &str, test_fraction: f64) -> Result<()> {
    if test_fraction > 0.0 && test_fraction < 1.0 {
        Ok(())
    } else {
        Err(invalid(format!(
            "{op}: test_fraction must be strictly between 0 and 1, got {test_fraction}"
        )))
    }
}

fn check_split_sizes(op: &str, test_fraction: f64, n: usize, n_train: usize, n_test: usize) -> Result<()> {
    if n_train == 0 || n_test == 0 {
        Err(invalid(format!(
            "{op}: test_fraction {test_fraction} of {n} samples gives {n_train} training and \
             {n_test} test samples; both parts need at least one"
        )))
    } else {
        Ok(())
    }
}

/// The iterator returned by [`Dataset::batches`]: each item is a [`Dataset`] of at most
/// `batch_size` samples, in the (possibly shuffled) epoch order.
#[derive(Clone, Debug)]
pub struct Batches<'a, T: Float, Y: Element> {
    data: &'a Dataset<T, Y>,
    order: Vec<usize>,
    batch_size: usize,
    /// Position in `order` where the next batch starts.
    next: usize,
    /// Number of samples of `order` served this epoch (`n`, or `n` rounded down to whole batches).
    end: usize,
}

impl<T: Float, Y: Element> Iterator for Batches<'_, T, Y> {
    type Item = Dataset<T, Y>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let stop = (self.next + self.batch_size).min(self.end);
        let batch = self.data.subset(&self.order[self.next..stop]);
        self.next = stop;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.end - self.next).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl<T: Float, Y: Element> ExactSizeIterator for Batches<'_, T, Y> {}
impl<T: Float, Y: Element> FusedIterator for Batches<'_, T, Y> {}

// ---------------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------------

/// Largest number of classes a labeled file may hold when [`CsvOptions::num_classes`] is not
/// given: labels must be below 2²⁴ (16,777,216, past the largest extreme-classification sets),
/// so a stray large number in the label column is an error, not a multi-gigabyte allocation in
/// [`Dataset::class_counts`] or a one-hot encoding.
pub const MAX_CLASSES: usize = 1 << 24;

/// How to read a CSV file. `Default`: no header lines, comma-separated, labels below
/// [`MAX_CLASSES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// Lines skipped at the top of the file (headers), whatever they hold. Default 0.
    pub skip_header_lines: usize,
    /// The ASCII byte between fields (`b','`, `b'\t'`, `b';'`, ...). Default `b','`.
    pub delimiter: u8,
    /// For labeled files: the number of classes, so every label must be below it. Default
    /// `None`: labels must be below [`MAX_CLASSES`].
    pub num_classes: Option<usize>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            skip_header_lines: 0,
            delimiter: b',',
            num_classes: None,
        }
    }
}

/// Reads a CSV file of numbers into rows: `rows[i][j]` is field `j` of data row `i`.
///
/// The file is plain UTF-8 text or gzip (recognised by its magic bytes `1f 8b`, whatever the
/// file name). After `opts.skip_header_lines` lines, every line is a data row of fields split
/// at `opts.delimiter`; fields may be padded with spaces, and `\r\n` line ends are fine.
/// Data rows start on line `opts.skip_header_lines + 1`, so row `i` is line
/// `skip_header_lines + 1 + i`.
///
/// Errors ([`Error::Parse`] with the file and 1-based line unless noted):
/// * the file cannot be opened or read: [`Error::Io`];
/// * a field that is empty, not a number, or not finite (`nan`, `inf`), quoting the field;
/// * a row with another number of fields than the first data row (naming both counts);
/// * a blank line followed by more data (blank lines are allowed only at the end);
/// * truncated or corrupt gzip data, or text that is not UTF-8;
/// * a non-ASCII delimiter: [`Error::InvalidArgument`].
///
/// ```
/// use wengert_nn::data::{read_csv, CsvOptions};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("points.csv");
/// std::fs::write(&path, "x,y\n1, 2.5\n-3,4e1\n\n").unwrap();
/// let opts = CsvOptions { skip_header_lines: 1, ..CsvOptions::default() };
/// assert_eq!(read_csv(&path, &opts)?, vec![vec![1.0, 2.5], vec![-3.0, 40.0]]);
///
/// std::fs::write(&path, "x,y\n1,2\n3,oops\n").unwrap();
/// let err = read_csv(&path, &opts).unwrap_err().to_string();
/// assert!(err.ends_with("points.csv:3: column 2: \"oops\" is not a number"), "{err}");
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn read_csv(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<Vec<Vec<f64>>> {
    let path = path.as_ref();
    let file = open_file(path)?;
    read_csv_from(file, path, opts)
}

/// [`read_csv`] from any reader (an in-memory buffer, a network stream, a decompressor);
/// `source` names it in errors as the path does (`"<memory>"`, a URL, ...).
///
/// ```
/// use wengert_nn::data::{read_csv_from, CsvOptions};
///
/// let rows = read_csv_from(&b"1,2\n3,4\n"[..], "<memory>", &CsvOptions::default())?;
/// assert_eq!(rows, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
/// let err = read_csv_from(&b"1,2\n3\n"[..], "<memory>", &CsvOptions::default()).unwrap_err();
/// assert!(err.to_string().contains("<memory>:2: expected 2 columns"), "{err}");
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn read_csv_from(reader: impl Read, source: impl AsRef<Path>, opts: &CsvOptions) -> Result<Vec<Vec<f64>>> {
    let path = source.as_ref();
    if !opts.delimiter.is_ascii() {
        return Err(invalid(format!(
            "read_csv: the delimiter must be an ASCII byte, got 0x{:02x}",
            opts.delimiter
        )));
    }
    let delimiter = char::from(opts.delimiter);
    let (mut reader, gzip) = maybe_gzip(reader, path)?;
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0;
    let mut first_blank: Option<usize> = None;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| read_error(path, line + 1, gzip, e))?;
        if read == 0 {
            break;
        }
        line += 1;
        if line <= opts.skip_header_lines {
            continue;
        }
        let text = std::str::from_utf8(&buf).map_err(|e| {
            parse_error(
                path,
                line,
                format!("not UTF-8 text (bad byte at column {})", e.valid_up_to() + 1),
            )
        })?;
        let text = text.trim_end_matches(['\n', '\r']);
        let text = if line == 1 { text.trim_start_matches('\u{feff}') } else { text };
        if text.trim().is_empty() {
            first_blank.get_or_insert(line);
            continue;
        }
        if let Some(blank) = first_blank {
            return Err(parse_error(
                path,
                blank,
                format!(
                    "blank line inside the data (line {line} has another row); \
                     blank lines are allowed only at the end"
                ),
            ));
        }
        let row = text
            .split(delimiter)
            .enumerate()
            .map(|(j, field)| parse_field(field, j + 1))
            .collect::<std::result::Result<Vec<f64>, String>>()
            .map_err(|reason| parse_error(path, line, reason))?;
        if let Some(first) = rows.first() {
            if first.len() != row.len() {
                return Err(parse_error(
                    path,
                    line,
                    format!(
                        "expected {} columns (as in the first data row, line {}) but found {}",
                        first.len(),
                        opts.skip_header_lines + 1,
                        row.len()
                    ),
                ));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// An I/O failure on `path` as an [`Error::Io`].
fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(io_error(path))
}

/// `reader` for line reading, through a gzip decoder when it starts with the gzip magic.
fn maybe_gzip<'r>(reader: impl Read + 'r, path: &Path) -> Result<(Box<dyn BufRead + 'r>, bool)> {
    let mut reader = BufReader::new(reader);
    let gzip = reader.fill_buf().map_err(io_error(path))?.starts_with(&GZIP_MAGIC);
    Ok(if gzip {
        (Box::new(BufReader::new(MultiGzDecoder::new(reader))), true)
    } else {
        (Box::new(reader), false)
    })
}

/// A failed read: bad gzip data is a [`Error::Parse`] at the line being read, anything else an
/// [`Error::Io`].
fn read_error(path: &Path, line: usize, gzip: bool, e: io::Error) -> Error {
    use io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    if gzip && matches!(e.kind(), UnexpectedEof | InvalidData | InvalidInput) {
        parse_error(path, line, format!("truncated or corrupt gzip data: {e}"))
    } else {
        Error::Io {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

fn parse_field(field: &str, column: usize) -> std::result::Result<f64, String> {
    let field = field.trim();
    if field.is_empty() {
        return Err(format!("column {column} is empty"));
    }
    match field.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("column {column}: {field:?} is not a finite number")),
        Err(_) => Err(format!("column {column}: {field:?} is not a number")),
    }
}

/// Reads a labeled CSV file: the last column is an integer class label, the others features.
///
/// Gives `x: [n, d]` (converted to `T`) and `y: [n]` for `n` data rows of `d + 1` columns. The
/// file is read with [`read_csv`] (so plain or gzip), and every error it reports applies.
/// Besides, `Err` (naming the file and line) when there are no data rows, a row has fewer than
/// two columns, a label is not a non-negative integer or not below `opts.num_classes` (by
/// default [`MAX_CLASSES`]), or a feature overflows `T`.
///
/// ```
/// use wengert_nn::data::{load_labeled_csv, CsvOptions};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("tiny.csv");
/// std::fs::write(&path, "0.5,1.5,1\n2.5,3.5,0\n").unwrap();
/// let ds = load_labeled_csv::<f64>(&path, &CsvOptions::default())?;
/// assert_eq!(ds.x.dims(), &[2, 2]);
/// assert_eq!(ds.y.to_vec(), vec![1, 0]);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn load_labeled_csv<T: Float>(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<Dataset<T, usize>> {
    let path = path.as_ref();
    labeled_from_csv_rows(path, read_csv(path, opts)?, opts)
}

/// [`load_labeled_csv`] from any reader; `source` names it in errors.
///
/// ```
/// use wengert_nn::data::{load_labeled_csv_from, CsvOptions};
///
/// let opts = CsvOptions { num_classes: Some(2), ..CsvOptions::default() };
/// let ds = load_labeled_csv_from::<f32>(&b"0.5,1\n1.5,0\n"[..], "<memory>", &opts)?;
/// assert_eq!(ds.y.to_vec(), vec![1, 0]);
/// let err = load_labeled_csv_from::<f32>(&b"0.5,2\n"[..], "<memory>", &opts).unwrap_err();
/// assert!(err.to_string().contains("<memory>:1: the label 2 is not below num_classes = 2"), "{err}");
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn load_labeled_csv_from<T: Float>(
    reader: impl Read,
    source: impl AsRef<Path>,
    opts: &CsvOptions,
) -> Result<Dataset<T, usize>> {
    let path = source.as_ref();
    labeled_from_csv_rows(path, read_csv_from(reader, path, opts)?, opts)
}

/// The labeled dataset of CSV rows, labels bounded by `opts.num_classes` or [`MAX_CLASSES`].
fn labeled_from_csv_rows<T: Float>(path: &Path, rows: Vec<Vec<f64>>, opts: &CsvOptions) -> Result<Dataset<T, usize>> {
    let classes = opts.num_classes.unwrap_or(MAX_CLASSES);
    labeled_from_rows(path, &rows, opts.skip_header_lines + 1, |_, label| match opts.num_classes {
        _ if label < classes => Ok(()),
        Some(k) => Err(format!("the label {label} is not below num_classes = {k}")),
        None => Err(format!(
            "the label {label} is not below {MAX_CLASSES} (data::MAX_CLASSES); \
             set CsvOptions::num_classes for more classes"
        )),
    })
}

/// Splits rows (the first on line `first_line`) into features and an integer label, running
/// `check(features, label)` on each row.
fn labeled_from_rows<T: Float>(
    path: &Path,
    rows: &[Vec<f64>],
    first_line: usize,
    check: impl Fn(&[f64], usize) -> std::result::Result<(), String>,
) -> Result<Dataset<T, usize>> {
    let Some(first) = rows.first() else {
        return Err(parse_error(path, first_line, "no data rows"));
    };
    if first.len() < 2 {
        return Err(parse_error(
            path,
            first_line,
            format!(
                "found {} column; a labeled row needs at least one feature and the label",
                first.len()
            ),
        ));
    }
    let (n, d) = (rows.len(), first.len() - 1);
    let mut x: Vec<T> = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for (line, row) in (first_line..).zip(rows) {
        let at_line = |reason| parse_error(path, line, reason);
        let (features, label) = match row.split_last() {
            Some((&label, features)) if features.len() == d => (features, label),
            _ => return Err(at_line(format!("expected {} columns but found {}", d + 1, row.len()))),
        };
        let label = if label >= 0.0 && label.fract() == 0.0 && label <= MAX_EXACT_INT {
            label as usize
        } else {
            return Err(at_line(format!(
                "the label (column {}) must be a non-negative integer, found {label}",
                d + 1
            )));
        };
        check(features, label).map_err(at_line)?;
        let start = x.len();
        x.extend(features.iter().map(|&v| T::from_f64(v)));
        if let Some(j) = x[start..].iter().position(|v| !v.is_finite()) {
            return Err(at_line(format!(
                "column {}: {:?} does not fit in {}",
                j + 1,
                features[j],
                T::NAME
            )));
        }
        y.push(label);
    }
    Ok(Dataset {
        x: Tensor::new(x, [n, d]),
        y: Tensor::new(y, [n]),
    })
}

/// `Err` at the first data line unless the rows have `expected` columns.
fn check_columns(path: &Path, rows: &[Vec<f64>], first_line: usize, expected: usize, what: &str) -> Result<()> {
    match rows.first() {
        Some(row) if row.len() != expected => Err(parse_error(
            path,
            first_line,
            format!("expected {expected} columns ({what}) but found {}", row.len()),
        )),
        _ => Ok(()),
    }
}

/// The directory of the workspace's shipped data sets joined with `file`:
/// `<workspace>/data/<file>`, found from this crate's manifest directory at compile time.
///
/// ```
/// let path = wengert_nn::data::repo_data_path("breast_cancer.csv");
/// assert!(path.ends_with("data/breast_cancer.csv"));
/// assert!(path.exists());
/// ```
pub fn repo_data_path(file: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/")).join(file)
}

/// Loads the handwritten-digits data set (UCI optical digits, as shipped with scikit-learn):
/// `x: [n, 64]` pixel values 0..=16 of 8 x 8 images in row-major order, `y: [n]` digits 0..=9.
///
/// The shipped `data/digits.csv.gz` ([`repo_data_path`]`("digits.csv.gz")`) has no header and
/// 1797 rows of 65 comma-separated integers. Besides the [`load_labeled_csv`] errors, `Err`
/// (naming the file and line) when a row does not have 65 columns, a pixel is outside 0..=16
/// or a label is not a digit. The pixels are left unscaled: divide by 16 or fit a scaler.
///
/// ```
/// use wengert_nn::data::{load_digits, repo_data_path};
///
/// let digits = load_digits(repo_data_path("digits.csv.gz"))?;
/// assert_eq!(digits.x.dims(), &[1797, 64]);
/// assert_eq!(digits.num_classes(), 10);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn load_digits(path: impl AsRef<Path>) -> Result<Dataset<f32, usize>> {
    let path = path.as_ref();
    let rows = read_csv(path, &CsvOptions::default())?;
    check_columns(path, &rows, 1, DIGITS_PIXELS + 1, "64 pixel values and the label")?;
    labeled_from_rows(path, &rows, 1, |pixels, label| {
        if label >= DIGITS_CLASSES {
            return Err(format!("the label must be a digit 0..=9, found {label}"));
        }
        match pixels.iter().position(|p| !(0.0..=DIGITS_MAX_PIXEL).contains(p)) {
            Some(j) => Err(format!(
                "column {}: pixel value {} is outside 0..=16",
                j + 1,
                pixels[j]
            )),
            None => Ok(()),
        }
    })
}

/// Loads the Breast Cancer Wisconsin (Diagnostic) data set, as shipped with scikit-learn:
/// `x: [n, 30]` real features (unscaled: they range from about 1e-3 to 4e3, so standardize
/// them), `y: [n]` with 0 = malignant, 1 = benign.
///
/// The shipped `data/breast_cancer.csv` ([`repo_data_path`]`("breast_cancer.csv")`) starts with
/// the header `569,30,malignant,benign` (sample count, feature count, class names), then 569
/// rows of 30 features and the label (212 malignant, 357 benign). Besides the
/// [`load_labeled_csv`] errors, `Err` (naming the file and line) when the header is not of that
/// form, the rows do not have 31 columns, a label is not 0 or 1, or the number of rows differs
/// from the header's count (a truncated file).
///
/// ```
/// use wengert_nn::data::{load_breast_cancer, repo_data_path};
///
/// let bc = load_breast_cancer(repo_data_path("breast_cancer.csv"))?;
/// assert_eq!(bc.x.dims(), &[569, 30]);
/// assert_eq!(bc.class_counts(), vec![212, 357]);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn load_breast_cancer(path: impl AsRef<Path>) -> Result<Dataset<f32, usize>> {
    let path = path.as_ref();
    let header = read_first_line(path)?;
    let announced = parse_header_counts(&header).ok_or_else(|| {
        parse_error(
            path,
            1,
            format!(
                "expected the header `n_samples,n_features,class names...` \
                 (like `569,30,malignant,benign`), found {header:?}"
            ),
        )
    })?;
    let (n_announced, d_announced) = announced;
    if d_announced != BREAST_CANCER_FEATURES {
        return Err(parse_error(
            path,
            1,
            format!("the header announces {d_announced} features; this data set has {BREAST_CANCER_FEATURES}"),
        ));
    }
    let opts = CsvOptions {
        skip_header_lines: 1,
        ..CsvOptions::default()
    };
    let rows = read_csv(path, &opts)?;
    check_columns(path, &rows, 2, BREAST_CANCER_FEATURES + 1, "30 features and the label")?;
    let ds = labeled_from_rows(path, &rows, 2, |_, label| {
        if label < BREAST_CANCER_CLASSES {
            Ok(())
        } else {
            Err(format!("the label must be 0 (malignant) or 1 (benign), found {label}"))
        }
    })?;
    if ds.len() != n_announced {
        return Err(parse_error(
            path,
            ds.len() + 2,
            format!(
                "the header (line 1) announces {n_announced} samples but the file has {} (truncated?)",
                ds.len()
            ),
        ));
    }
    Ok(ds)
}

/// The first line of a (plain or gzip) text file, without its line end (empty for an empty file).
fn read_first_line(path: &Path) -> Result<String> {
    let file = open_file(path)?;
    let (mut reader, gzip) = maybe_gzip(file, path)?;
    let mut buf = Vec::new();
    reader
        .read_until(b'\n', &mut buf)
        .map_err(|e| read_error(path, 1, gzip, e))?;
    Ok(String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string())
}

/// `(n_samples, n_features)` from a header `n,d,...`.
fn parse_header_counts(header: &str) -> Option<(usize, usize)> {
    let mut fields = header.split(',').map(str::trim);
    let n = fields.next()?.parse().ok()?;
    let d = fields.next()?.parse().ok()?;
    Some((n, d))
}

// ---------------------------------------------------------------------------------------------
// Scaling and encoding
// ---------------------------------------------------------------------------------------------

/// `(n, d)` of a matrix `[n, d]`, else `Err` naming the op and shape.
fn matrix_dims<T: Float>(op: &str, x: &Tensor<T>) -> Result<(usize, usize)> {
    match *x.dims() {
        [n, d] => Ok((n, d)),
        _ => Err(invalid(format!("{op}: x must be a matrix [n, d], got shape {}", x.shape()))),
    }
}

/// Checks a matrix to fit a scaler on: at least one row, all values finite.
fn fit_dims<T: Float>(op: &str, x: &Tensor<T>) -> Result<(usize, usize)> {
    let (n, d) = matrix_dims(op, x)?;
    if n == 0 {
        return Err(invalid(format!("{op}: x has shape {}: need at least one row to fit", x.shape())));
    }
    if let Some(i) = x.as_slice().iter().position(|v| !v.is_finite()) {
        return Err(invalid(format!(
            "{op}: x[{}, {}] is {}: cannot fit on non-finite values",
            i / d,
            i % d,
            x.as_slice()[i]
        )));
    }
    Ok((n, d))
}

/// Checks that `x` is `[n, d]` with `d` the number of columns a scaler was fitted on.
fn transform_dims<T: Float>(op: &str, x: &Tensor<T>, fitted: usize) -> Result<(usize, usize)> {
    let (n, d) = matrix_dims(op, x)?;
    if d != fitted {
        return Err(invalid(format!(
            "{op}: x has shape {} but the scaler was fitted on {fitted} columns",
            x.shape()
        )));
    }
    Ok((n, d))
}

/// Per-column minimum and maximum of a non-empty row-major `[n, d]` slice, `d > 0`.
fn column_min_max<T: Float>(data: &[T], d: usize) -> (Vec<T>, Vec<T>) {
    let mut lo = data[..d].to_vec();
    let mut hi = lo.clone();
    for row in data.chunks_exact(d).skip(1) {
        for ((l, h), &v) in lo.iter_mut().zip(hi.iter_mut()).zip(row) {
            *l = l.min(v);
            *h = h.max(v);
        }
    }
    (lo, hi)
}

/// `out[i, j] = f(x[i, j], a[j], b[j])` for a row-major `[n, d]` matrix `x`.
fn map_columns<T: Float>(x: &Tensor<T>, a: &[T], b: &[T], f: impl Fn(T, T, T) -> T) -> Tensor<T> {
    let mut out = x.to_vec();
    if let Some(d) = std::num::NonZeroUsize::new(a.len()) {
        for row in out.chunks_exact_mut(d.get()) {
            for ((v, &a), &b) in row.iter_mut().zip(a).zip(b) {
                *v = f(*v, a, b);
            }
        }
    }
    Tensor::new(out, x.shape().clone())
}

fn check_fitted(op: &str, a: &Tensor<impl Float>, b: &Tensor<impl Float>, names: (&str, &str)) -> Result<usize> {
    if a.ndim() == 1 && a.dims() == b.dims() {
        Ok(a.numel())
    } else {
        Err(invalid(format!(
            "{op}: {} has shape {} and {} has shape {}; both must be the same [d]",
            names.0,
            a.shape(),
            names.1,
            b.shape()
        )))
    }
}

/// Standardization per column: `z[i, j] = (x[i, j] - mean[j]) / std[j]`, with `mean` and the
/// population standard deviation `std[j] = sqrt(Σ_i (x[i, j] - mean[j])² / n)` fitted over the
/// rows of a training matrix `[n, d]` (like scikit-learn's `StandardScaler`).
///
/// A constant (zero-variance) column gets `std = 1` and `mean` = its value, so it maps to
/// exactly 0. Fit on the training data only, then transform training, validation and test data
/// with the same statistics. Both fields are `[d]`.
///
/// ```
/// use wengert_core::Tensor;
/// use wengert_nn::data::Standardizer;
///
/// // Column 0 is 1, 3: mean 2, population std 1. Column 1 is constant.
/// let x = Tensor::new(vec![1.0f64, 5.0, 3.0, 5.0], [2, 2]);
/// let (scaler, z) = Standardizer::fit_transform(&x)?;
/// assert_eq!(z.to_vec(), vec![-1.0, 0.0, 1.0, 0.0]);
/// assert_eq!(scaler.transform(&Tensor::new(vec![4.0, 7.0], [1, 2]))?.to_vec(), vec![2.0, 2.0]);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer<T: Float = f32> {
    /// Column means, `[d]`.
    pub mean: Tensor<T>,
    /// Column population standard deviations, `[d]` (1 for constant columns).
    pub std: Tensor<T>,
}

impl<T: Float> Standardizer<T> {
    /// Fits the column means and standard deviations of `x: [n, d]` (accumulated in `f64`).
    /// `Err` if `x` is not a matrix, has no rows, or holds a NaN or infinity.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::Standardizer;
    ///
    /// let scaler = Standardizer::fit(&Tensor::new(vec![1.0f64, 10.0, 3.0, 10.0], [2, 2]))?;
    /// assert_eq!((scaler.mean.to_vec(), scaler.std.to_vec()), (vec![2.0, 10.0], vec![1.0, 1.0]));
    /// assert!(Standardizer::fit(&Tensor::new(vec![1.0f64, 2.0], [2])).is_err()); // not a matrix
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn fit(x: &Tensor<T>) -> Result<Self> {
        let (n, d) = fit_dims("Standardizer::fit", x)?;
        if d == 0 {
            return Ok(Standardizer {
                mean: Tensor::zeros([0]),
                std: Tensor::ones([0]),
            });
        }
        let data = x.as_slice();
        let mut sum = vec![0.0f64; d];
        for row in data.chunks_exact(d) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v.to_f64();
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        let mut sq = vec![0.0f64; d];
        for row in data.chunks_exact(d) {
            for ((s, &v), &m) in sq.iter_mut().zip(row).zip(&mean) {
                let c = v.to_f64() - m;
                *s += c * c;
            }
        }
        let (lo, hi) = column_min_max(data, d);
        let (mean, std): (Vec<T>, Vec<T>) = mean
            .iter()
            .zip(&sq)
            .zip(lo.iter().zip(&hi))
            .map(|((&m, &s), (&lo, &hi))| {
                let std = T::from_f64((s / n as f64).sqrt());
                if lo == hi || std == T::ZERO {
                    (if lo == hi { lo } else { T::from_f64(m) }, T::ONE)
                } else {
                    (T::from_f64(m), std)
                }
            })
            .unzip();
        Ok(Standardizer {
            mean: Tensor::new(mean, [d]),
            std: Tensor::new(std, [d]),
        })
    }

    /// `(x - mean) / std` per column, for any `x: [m, d]` with the fitted `d`; `Err` otherwise.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::Standardizer;
    ///
    /// let scaler = Standardizer::fit(&Tensor::new(vec![1.0f64, 3.0], [2, 1]))?; // mean 2, std 1
    /// assert_eq!(scaler.transform(&Tensor::new(vec![5.0, 2.0], [2, 1]))?.to_vec(), vec![3.0, 0.0]);
    /// assert!(scaler.transform(&Tensor::new(vec![5.0, 2.0], [1, 2])).is_err()); // fitted on 1 column
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn transform(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let d = check_fitted("Standardizer::transform", &self.mean, &self.std, ("mean", "std"))?;
        transform_dims("Standardizer::transform", x, d)?;
        Ok(map_columns(x, self.mean.as_slice(), self.std.as_slice(), |v, m, s| (v - m) / s))
    }

    /// The inverse map `z * std + mean` per column (`z: [m, d]`); `Err` on a column-count mismatch.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::Standardizer;
    ///
    /// let x = Tensor::new(vec![1.0f64, 4.0, 3.0, 8.0], [2, 2]);
    /// let (scaler, z) = Standardizer::fit_transform(&x)?;
    /// assert_eq!(scaler.inverse_transform(&z)?.to_vec(), x.to_vec());
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn inverse_transform(&self, z: &Tensor<T>) -> Result<Tensor<T>> {
        let d = check_fitted("Standardizer::inverse_transform", &self.mean, &self.std, ("mean", "std"))?;
        transform_dims("Standardizer::inverse_transform", z, d)?;
        Ok(map_columns(z, self.mean.as_slice(), self.std.as_slice(), |v, m, s| v * s + m))
    }

    /// [`Standardizer::fit`] on `x`, then [`Standardizer::transform`] of `x`.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::Standardizer;
    ///
    /// let (scaler, z) = Standardizer::fit_transform(&Tensor::new(vec![1.0f32, 3.0], [2, 1]))?;
    /// assert_eq!((scaler.mean.to_vec(), z.to_vec()), (vec![2.0], vec![-1.0, 1.0]));
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn fit_transform(x: &Tensor<T>) -> Result<(Self, Tensor<T>)> {
        let scaler = Self::fit(x)?;
        let z = scaler.transform(x)?;
        Ok((scaler, z))
    }
}

/// Min-max scaling per column: `z[i, j] = (x[i, j] - min[j]) / (max[j] - min[j])`, with `min`
/// and `max` fitted over the rows of a training matrix `[n, d]`, so training data lands in
/// `[0, 1]` (like scikit-learn's `MinMaxScaler`). New data may fall outside `[0, 1]`.
///
/// A constant column (`max == min`) is divided by 1 instead, so on the training data it maps
/// to 0. Both fields are `[d]`.
///
/// ```
/// use wengert_core::Tensor;
/// use wengert_nn::data::MinMaxScaler;
///
/// let x = Tensor::new(vec![0.0f32, 10.0, 4.0, 20.0, 2.0, 30.0], [3, 2]);
/// let (_, z) = MinMaxScaler::fit_transform(&x)?;
/// assert_eq!(z.to_vec(), vec![0.0, 0.0, 1.0, 0.5, 0.5, 1.0]);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MinMaxScaler<T: Float = f32> {
    /// Column minima, `[d]`.
    pub min: Tensor<T>,
    /// Column maxima, `[d]`.
    pub max: Tensor<T>,
}

impl<T: Float> MinMaxScaler<T> {
    /// Fits the column minima and maxima of `x: [n, d]`. `Err` if `x` is not a matrix, has no
    /// rows, or holds a NaN or infinity.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::MinMaxScaler;
    ///
    /// let scaler = MinMaxScaler::fit(&Tensor::new(vec![0.0f32, 5.0, 4.0, 1.0], [2, 2]))?;
    /// assert_eq!((scaler.min.to_vec(), scaler.max.to_vec()), (vec![0.0, 1.0], vec![4.0, 5.0]));
    /// assert!(MinMaxScaler::fit(&Tensor::new(vec![f32::NAN, 1.0], [2, 1])).is_err());
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn fit(x: &Tensor<T>) -> Result<Self> {
        let (_, d) = fit_dims("MinMaxScaler::fit", x)?;
        let (min, max) = if d == 0 {
            (Vec::new(), Vec::new())
        } else {
            column_min_max(x.as_slice(), d)
        };
        Ok(MinMaxScaler {
            min: Tensor::new(min, [d]),
            max: Tensor::new(max, [d]),
        })
    }

    /// The divisor per column: `max - min`, or 1 for a constant column.
    fn ranges(&self) -> Vec<T> {
        self.min
            .as_slice()
            .iter()
            .zip(self.max.as_slice())
            .map(|(&lo, &hi)| if hi > lo { hi - lo } else { T::ONE })
            .collect()
    }

    /// `(x - min) / (max - min)` per column, for any `x: [m, d]` with the fitted `d`; `Err`
    /// otherwise.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::MinMaxScaler;
    ///
    /// let scaler = MinMaxScaler::fit(&Tensor::new(vec![0.0f32, 4.0], [2, 1]))?;
    /// assert_eq!(scaler.transform(&Tensor::new(vec![2.0, 8.0], [2, 1]))?.to_vec(), vec![0.5, 2.0]); // new data may leave [0, 1]
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn transform(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        let d = check_fitted("MinMaxScaler::transform", &self.min, &self.max, ("min", "max"))?;
        transform_dims("MinMaxScaler::transform", x, d)?;
        Ok(map_columns(x, self.min.as_slice(), &self.ranges(), |v, lo, r| (v - lo) / r))
    }

    /// The inverse map `z * (max - min) + min` per column; `Err` on a column-count mismatch.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::MinMaxScaler;
    ///
    /// let scaler = MinMaxScaler::fit(&Tensor::new(vec![0.0f32, 4.0], [2, 1]))?;
    /// assert_eq!(scaler.inverse_transform(&Tensor::new(vec![0.25, 1.0], [2, 1]))?.to_vec(), vec![1.0, 4.0]);
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn inverse_transform(&self, z: &Tensor<T>) -> Result<Tensor<T>> {
        let d = check_fitted("MinMaxScaler::inverse_transform", &self.min, &self.max, ("min", "max"))?;
        transform_dims("MinMaxScaler::inverse_transform", z, d)?;
        Ok(map_columns(z, self.min.as_slice(), &self.ranges(), |v, lo, r| v * r + lo))
    }

    /// [`MinMaxScaler::fit`] on `x`, then [`MinMaxScaler::transform`] of `x`.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// use wengert_nn::data::MinMaxScaler;
    ///
    /// let (scaler, z) = MinMaxScaler::fit_transform(&Tensor::new(vec![2.0f64, 4.0, 6.0], [3, 1]))?;
    /// assert_eq!((scaler.min.to_vec(), z.to_vec()), (vec![2.0], vec![0.0, 0.5, 1.0]));
    /// # Ok::<(), wengert_nn::Error>(())
    /// ```
    pub fn fit_transform(x: &Tensor<T>) -> Result<(Self, Tensor<T>)> {
        let scaler = Self::fit(x)?;
        let z = scaler.transform(x)?;
        Ok((scaler, z))
    }
}

/// One-hot encoding: `out[i, c] = 1` if `labels[i] == c`, else 0; shape `[n, num_classes]`.
/// `Err` if a label is `>= num_classes` (naming its position).
///
/// ```
/// use wengert_nn::data::one_hot;
///
/// let t = one_hot::<f32>(&[2, 0], 3)?;
/// assert_eq!(t.dims(), &[2, 3]);
/// assert_eq!(t.to_vec(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn one_hot<T: Float>(labels: &[usize], num_classes: usize) -> Result<Tensor<T>> {
    if let Some((i, &c)) = labels.iter().enumerate().find(|&(_, &c)| c >= num_classes) {
        return Err(invalid(format!(
            "one_hot: labels[{i}] = {c} is not below num_classes = {num_classes}"
        )));
    }
    let mut out = vec![T::ZERO; labels.len() * num_classes];
    if num_classes > 0 {
        for (row, &c) in out.chunks_exact_mut(num_classes).zip(labels) {
            row[c] = T::ONE;
        }
    }
    Ok(Tensor::new(out, [labels.len(), num_classes]))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    /// Writes `text` to `name` in a fresh temp dir (kept alive by the returned guard).
    fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    fn gzip(text: &str) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap()
    }

    /// The `(line, reason)` of a Parse error; fails the test on any other result.
    fn parse_err<V: std::fmt::Debug>(r: Result<V>) -> (usize, String) {
        match r {
            Err(Error::Parse { line, reason, .. }) => (line, reason),
            other => panic!("expected a Parse error, got {other:?}"),
        }
    }

    /// x[i] = [2i, 2i + 1], y[i] = labels[i]: every row remembers its sample index.
    fn indexed(labels: &[usize]) -> Dataset<f64> {
        let n = labels.len();
        let x = Tensor::from_fn([n, 2], |ix| (2 * ix[0] + ix[1]) as f64);
        Dataset::new(x, Tensor::from_slice(labels)).unwrap()
    }

    /// The original sample index of each row of a subset of `indexed`.
    fn origin(ds: &Dataset<f64>) -> Vec<usize> {
        ds.x.as_slice().chunks_exact(2).map(|r| (r[0] / 2.0) as usize).collect()
    }

    // ---- Dataset ----------------------------------------------------------------------------

    #[test]
    fn new_checks_sample_counts_and_names_shapes() {
        let err = Dataset::new(Tensor::<f32>::zeros([3, 2]), Tensor::from_slice(&[0usize; 4])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("[3, 2]") && msg.contains("[4]"), "{msg}");
        assert!(Dataset::new(Tensor::<f32>::scalar(1.0), Tensor::scalar(0usize)).is_err());
        // [4, 2, 3] images: 2 * 3 = 6 features each; one-hot targets [4, 5].
        let ds = Dataset::new(Tensor::<f32>::zeros([4, 2, 3]), Tensor::<f32>::zeros([4, 5])).unwrap();
        assert_eq!((ds.len(), ds.num_features(), ds.is_empty()), (4, 6, false));
    }

    #[test]
    fn subset_keeps_rows_and_labels_together() {
        // x rows [0,1], [2,3], [4,5]; picking samples 2, 0, 2 gives those rows in that order.
        let ds = indexed(&[10, 11, 12]);
        let s = ds.subset(&[2, 0, 2]);
        assert_eq!(s.x.to_vec(), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
        assert_eq!(s.y.to_vec(), vec![12, 10, 12]);
        assert_eq!((ds.num_classes(), s.class_counts()[12]), (13, 2));
    }

    #[test]
    fn batches_in_order_and_drop_last() {
        // n = 5, batch 2: [0,1], [2,3], [4]; drop_last leaves out [4].
        let ds = indexed(&[0, 1, 2, 3, 4]);
        let it = ds.batches(2, None::<&mut StdRng>, false).unwrap();
        assert_eq!(it.len(), 3);
        let ys: Vec<Vec<usize>> = it.map(|b| b.y.to_vec()).collect();
        assert_eq!(ys, vec![vec![0, 1], vec![2, 3], vec![4]]);
        let ys: Vec<Vec<usize>> = ds.batches(2, None::<&mut StdRng>, true).unwrap().map(|b| b.y.to_vec()).collect();
        assert_eq!(ys, vec![vec![0, 1], vec![2, 3]]);
        // A batch larger than the set: one batch, or none with drop_last.
        assert_eq!(ds.batches(8, None::<&mut StdRng>, false).unwrap().count(), 1);
        assert_eq!(ds.batches(8, None::<&mut StdRng>, true).unwrap().count(), 0);
    }

    #[test]
    fn shuffled_batches_are_a_reproducible_permutation() {
        let labels: Vec<usize> = (0..20).collect();
        let ds = indexed(&labels);
        let epoch = |seed| -> Vec<usize> {
            let mut rng = StdRng::seed_from_u64(seed);
            ds.batches(6, Some(&mut rng), false)
                .unwrap()
                .flat_map(|b| {
                    // Rows and labels stay paired: label i sits with row i.
                    assert_eq!(origin(&b), b.y.to_vec());
                    b.y.to_vec()
                })
                .collect()
        };
        let a = epoch(3);
        assert_eq!(a, epoch(3));
        assert_ne!(a, labels, "a shuffled epoch of 20 equal to the identity (chance 1/20!)");
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, labels);
    }

    #[test]
    fn zero_batch_size_is_an_error() {
        let e = indexed(&[0]).batches(0, None::<&mut StdRng>, false).err().unwrap();
        assert!(matches!(&e, Error::InvalidArgument { reason } if reason.contains("batch_size must be at least 1")), "{e}");
    }

    #[test]
    fn train_test_split_sizes_and_disjointness() {
        // n = 10, fraction 0.25: ceil(2.5) = 3 test samples, 7 training.
        let ds = indexed(&[0; 10]);
        let (train, test) = ds.train_test_split(0.25, &mut StdRng::seed_from_u64(0)).unwrap();
        assert_eq!((train.len(), test.len()), (7, 3));
        let mut all = origin(&train);
        all.extend(origin(&test));
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        // 0.3 * 10 is 3.0000000000000004 in floating point: still 3 test samples.
        let (_, test) = ds.train_test_split(0.3, &mut StdRng::seed_from_u64(0)).unwrap();
        assert_eq!(test.len(), 3);
        let mut rng = StdRng::seed_from_u64(0);
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            let msg = ds.train_test_split(bad, &mut rng).unwrap_err().to_string();
            assert!(msg.contains("strictly between 0 and 1"), "{msg}");
        }
        // One sample cannot be split: ceil(0.5 * 1) = 1 test, 0 training.
        let msg = indexed(&[0]).train_test_split(0.5, &mut rng).unwrap_err().to_string();
        assert!(msg.contains("0 training and 1 test"), "{msg}");
    }

    #[test]
    fn stratified_split_rounds_per_class() {
        // Class counts 10, 5, 3 at fraction 0.2: test gets round(2.0) = 2, round(1.0) = 1,
        // round(0.6) = 1; train keeps 8, 4, 2.
        let labels: Vec<usize> = [vec![0; 10], vec![1; 5], vec![2; 3]].concat();
        let ds = indexed(&labels);
        let (train, test) = ds.stratified_split(0.2, &mut StdRng::seed_from_u64(5)).unwrap();
        assert_eq!(test.class_counts(), vec![2, 1, 1]);
        assert_eq!(train.class_counts(), vec![8, 4, 2]);
        // Rows keep their labels, and the parts are disjoint and cover everything.
        for part in [&train, &test] {
            let y: Vec<usize> = origin(part).iter().map(|&i| labels[i]).collect();
            assert_eq!(y, part.y.to_vec());
        }
        let mut all = origin(&train);
        all.extend(origin(&test));
        all.sort_unstable();
        assert_eq!(all, (0..18).collect::<Vec<_>>());
        // Same seed, same split.
        assert_eq!(ds.stratified_split(0.2, &mut StdRng::seed_from_u64(5)).unwrap().1, test);
        // Errors: labels that are not [n], a fraction leaving the test set empty
        // (round(0.1 * 2) = 0 for each class), a bad fraction.
        let two_d = Dataset::new(Tensor::<f32>::zeros([2, 1]), Tensor::new(vec![0usize, 1], [2, 1])).unwrap();
        assert!(two_d.stratified_split(0.5, &mut StdRng::seed_from_u64(0)).is_err());
        let small = indexed(&[0, 0, 1, 1]);
        assert!(small.stratified_split(0.1, &mut StdRng::seed_from_u64(0)).is_err());
        assert!(small.stratified_split(1.5, &mut StdRng::seed_from_u64(0)).is_err());
    }

    // ---- CSV --------------------------------------------------------------------------------

    #[test]
    fn read_csv_plain_with_header_spaces_crlf_and_trailing_blanks() {
        let (_d, path) = temp_file("a.csv", b"a,b,c\r\n1, 2 ,3.5\r\n-4,5e-1,6\r\n\r\n  \n");
        let opts = CsvOptions {
            skip_header_lines: 1,
            ..CsvOptions::default()
        };
        let rows = read_csv(&path, &opts).unwrap();
        assert_eq!(rows, vec![vec![1.0, 2.0, 3.5], vec![-4.0, 0.5, 6.0]]);
        let (_d, path) = temp_file("t.tsv", b"1\t2\n3\t4\n");
        let tab = CsvOptions {
            delimiter: b'\t',
            ..CsvOptions::default()
        };
        assert_eq!(read_csv(&path, &tab).unwrap(), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!(matches!(
            read_csv(&path, &CsvOptions { delimiter: 0xe9, ..tab }),
            Err(Error::InvalidArgument { .. })
        ));
        // An empty file has no rows (not an error for read_csv).
        let (_d, path) = temp_file("empty.csv", b"");
        assert!(read_csv(&path, &CsvOptions::default()).unwrap().is_empty());
    }

    #[test]
    fn read_csv_gzip_by_magic_bytes() {
        let text = "1,2\n3,4\n";
        // Named .gz or not, gzip data is recognised by its first bytes 1f 8b.
        for name in ["a.csv.gz", "a.csv"] {
            let (_d, path) = temp_file(name, &gzip(text));
            assert_eq!(read_csv(&path, &CsvOptions::default()).unwrap(), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        }
    }

    #[test]
    fn read_csv_errors_name_file_line_and_problem() {
        let opts = CsvOptions {
            skip_header_lines: 1,
            ..CsvOptions::default()
        };
        // Line 1 header, line 2 has 3 columns, line 3 only 2.
        let (_d, path) = temp_file("bad.csv", b"h\n1,2,3\n4,5\n");
        let err = read_csv(&path, &opts).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:3: expected 3 columns (as in the first data row, line 2) but found 2",
                path.display()
            )
        );
        let (_d, path) = temp_file("nan.csv", b"h\n1,2\n3,abc\n");
        assert_eq!(parse_err(read_csv(&path, &opts)), (3, "column 2: \"abc\" is not a number".into()));
        let (_d, path) = temp_file("empty_field.csv", b"h\n1,,2\n");
        assert_eq!(parse_err(read_csv(&path, &opts)), (2, "column 2 is empty".into()));
        let (_d, path) = temp_file("inf.csv", b"h\nNaN,1\n");
        assert_eq!(parse_err(read_csv(&path, &opts)), (2, "column 1: \"NaN\" is not a finite number".into()));
        // A blank line 3 with data after it on line 4.
        let (_d, path) = temp_file("gap.csv", b"h\n1,2\n\n3,4\n");
        let (line, reason) = parse_err(read_csv(&path, &opts));
        assert_eq!(line, 3);
        assert!(reason.contains("blank line inside the data (line 4"), "{reason}");
        let (_d, path) = temp_file("latin1.csv", b"h\n1,\xe9\n");
        let (line, reason) = parse_err(read_csv(&path, &opts));
        assert_eq!((line, reason.as_str()), (2, "not UTF-8 text (bad byte at column 3)"));
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.csv");
        let err = read_csv(&path, &CsvOptions::default()).unwrap_err();
        assert!(matches!(&err, Error::Io { path: p, .. } if *p == path), "{err:?}");
        assert!(err.to_string().starts_with(&path.display().to_string()));
        assert!(matches!(load_digits(&path), Err(Error::Io { .. })));
        assert!(matches!(load_breast_cancer(&path), Err(Error::Io { .. })));
    }

    #[test]
    fn truncated_gzip_is_a_parse_error() {
        // 200 rows, compressed; dropping the last 20 bytes cuts into the deflate stream and
        // removes the CRC/size trailer, so the decoder must hit an unexpected end.
        let text: String = (0..200).map(|i| format!("{i},{}\n", i * 7 % 13)).collect();
        let gz = gzip(&text);
        let (_d, path) = temp_file("cut.csv.gz", &gz[..gz.len() - 20]);
        let (line, reason) = parse_err(read_csv(&path, &CsvOptions::default()));
        assert!(reason.starts_with("truncated or corrupt gzip data"), "{reason}");
        assert!((1..=201).contains(&line), "line {line}");
        // Only the 8-byte trailer missing: the data decodes but the stream is still incomplete.
        let (_d, path) = temp_file("no_trailer.csv.gz", &gz[..gz.len() - 8]);
        let (_, reason) = parse_err(read_csv(&path, &CsvOptions::default()));
        assert!(reason.starts_with("truncated or corrupt gzip data"), "{reason}");
    }

    #[test]
    fn labeled_csv_splits_features_and_label() {
        let (_d, path) = temp_file("l.csv", b"0.5,1,2\n1.5,2,0\n2.5,3,1\n");
        let ds = load_labeled_csv::<f32>(&path, &CsvOptions::default()).unwrap();
        assert_eq!(ds.x.dims(), &[3, 2]);
        assert_eq!(ds.x.to_vec(), vec![0.5, 1.0, 1.5, 2.0, 2.5, 3.0]);
        assert_eq!(ds.y.to_vec(), vec![2, 0, 1]);
        assert_eq!(ds.num_classes(), 3);
    }

    #[test]
    fn labeled_csv_errors() {
        let opts = CsvOptions::default();
        let (_d, path) = temp_file("frac.csv", b"1,0\n2,1.5\n");
        let (line, reason) = parse_err(load_labeled_csv::<f32>(&path, &opts));
        assert_eq!(line, 2);
        assert!(reason.contains("must be a non-negative integer, found 1.5"), "{reason}");
        let (_d, path) = temp_file("neg.csv", b"1,-1\n");
        assert_eq!(parse_err(load_labeled_csv::<f32>(&path, &opts)).0, 1);
        let (_d, path) = temp_file("one_col.csv", b"1\n2\n");
        assert!(parse_err(load_labeled_csv::<f32>(&path, &opts)).1.contains("at least one feature"));
        let (_d, path) = temp_file("none.csv", b"header only\n");
        let opts1 = CsvOptions {
            skip_header_lines: 1,
            ..opts
        };
        assert_eq!(parse_err(load_labeled_csv::<f32>(&path, &opts1)), (2, "no data rows".into()));
        // 1e300 is a fine f64 but overflows f32.
        let (_d, path) = temp_file("big.csv", b"1,0\n1e300,0\n");
        assert_eq!(parse_err(load_labeled_csv::<f32>(&path, &opts)), (2, "column 1: 1e300 does not fit in f32".into()));
        assert!(load_labeled_csv::<f64>(&path, &opts).is_ok());
    }

    /// A huge label (here 2^53, exact in f64) is an error at its line, not a counter per
    /// class up to it (which aborted the process in `class_counts`); a declared class count
    /// bounds the labels exactly.
    #[test]
    fn labels_are_bounded() {
        let (_d, path) = temp_file("huge.csv", b"1,0\n2,9007199254740992\n");
        let (line, reason) = parse_err(load_labeled_csv::<f32>(&path, &CsvOptions::default()));
        assert_eq!(line, 2);
        assert!(reason.contains("9007199254740992 is not below 16777216"), "{reason}");
        let (_d, path) = temp_file("three.csv", b"1,0\n2,2\n3,3\n");
        let opts = CsvOptions { num_classes: Some(3), ..CsvOptions::default() };
        assert_eq!(parse_err(load_labeled_csv::<f32>(&path, &opts)), (3, "the label 3 is not below num_classes = 3".into()));
        let opts = CsvOptions { num_classes: Some(4), ..CsvOptions::default() };
        assert_eq!(load_labeled_csv::<f32>(&path, &opts).unwrap().class_counts(), vec![1, 0, 1, 1]);
        let (_d, path) = temp_file("edge.csv", format!("1,{}\n", MAX_CLASSES - 1).as_bytes());
        assert!(load_labeled_csv::<f32>(&path, &CsvOptions::default()).is_ok());
    }

    #[test]
    fn shipped_digits() {
        let ds = load_digits(repo_data_path("digits.csv.gz")).unwrap();
        assert_eq!(ds.x.dims(), &[1797, 64]);
        assert_eq!(ds.y.dims(), &[1797]);
        assert_eq!(ds.num_classes(), 10);
        // Counts per digit in the UCI test set shipped with scikit-learn; they sum to 1797.
        assert_eq!(ds.class_counts(), vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
        // First line of the file: 0,0,5,13,9,1,0,0, ... ,0 (label 0).
        assert_eq!(&ds.x.as_slice()[..8], &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]);
        assert_eq!(ds.y.as_slice()[0], 0);
        assert!(ds.x.as_slice().iter().all(|&p| (0.0..=16.0).contains(&p)));
        assert_eq!(ds.x.as_slice().iter().copied().fold(0.0, f32::max), 16.0);
    }

    #[test]
    fn digits_validation() {
        let row = |pixel: &str, label: &str| format!("{}{pixel},{label}\n", "0,".repeat(63));
        let (_d, path) = temp_file("d.csv", format!("{}{}", row("16", "9"), row("17", "1")).as_bytes());
        assert_eq!(parse_err(load_digits(&path)), (2, "column 64: pixel value 17 is outside 0..=16".into()));
        let (_d, path) = temp_file("d.csv", row("0", "10").as_bytes());
        assert_eq!(parse_err(load_digits(&path)), (1, "the label must be a digit 0..=9, found 10".into()));
        let (_d, path) = temp_file("d.csv", b"1,2,3\n");
        assert_eq!(
            parse_err(load_digits(&path)),
            (1, "expected 65 columns (64 pixel values and the label) but found 3".into())
        );
    }

    #[test]
    fn shipped_breast_cancer() {
        let ds = load_breast_cancer(repo_data_path("breast_cancer.csv")).unwrap();
        assert_eq!(ds.x.dims(), &[569, 30]);
        assert_eq!(ds.class_counts(), vec![212, 357]);
        // Line 2 of the file starts 17.99,10.38 and ends with label 0 (malignant).
        assert_eq!(&ds.x.as_slice()[..2], &[17.99, 10.38]);
        assert_eq!(ds.y.as_slice()[0], 0);
    }

    #[test]
    fn breast_cancer_validation() {
        let row = |label: &str| format!("{}{label}\n", "1.5,".repeat(30));
        // Header says 3 rows, file has 2: the error points just past the last row (line 4).
        let (_d, path) = temp_file("bc.csv", format!("3,30,malignant,benign\n{}{}", row("0"), row("1")).as_bytes());
        let (line, reason) = parse_err(load_breast_cancer(&path));
        assert_eq!(line, 4);
        assert!(reason.contains("announces 3 samples but the file has 2"), "{reason}");
        let (_d, path) = temp_file("bc.csv", format!("1,30,m,b\n{}", row("2")).as_bytes());
        assert_eq!(parse_err(load_breast_cancer(&path)).0, 2);
        let (_d, path) = temp_file("bc.csv", format!("mean radius,mean texture\n{}", row("0")).as_bytes());
        assert_eq!(parse_err(load_breast_cancer(&path)).0, 1);
        let (_d, path) = temp_file("bc.csv", b"1,4,m,b\n1,2,3,4,0\n");
        assert!(parse_err(load_breast_cancer(&path)).1.contains("announces 4 features"));
        let (_d, path) = temp_file("bc.csv", format!("1,30,m,b\n{}", row("1")).as_bytes());
        assert_eq!(load_breast_cancer(&path).unwrap().len(), 1);
    }

    // ---- scaling and one-hot ------------------------------------------------------------------

    fn assert_close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn standardizer_by_hand() {
        // Columns (1,2,3), (10,10,10), (0,0,6).
        // col 0: mean 2, var (1 + 0 + 1)/3 = 2/3, z = ∓1/sqrt(2/3) = ∓sqrt(1.5), 0.
        // col 1: constant, maps to 0 with std 1.
        // col 2: mean 2, deviations -2,-2,4, var (4 + 4 + 16)/3 = 8, std 2√2,
        //        z = -1/√2, -1/√2, √2.
        let x = Tensor::new(vec![1.0, 10.0, 0.0, 2.0, 10.0, 0.0, 3.0, 10.0, 6.0], [3, 3]);
        let (s, z) = Standardizer::<f64>::fit_transform(&x).unwrap();
        assert_close(s.mean.as_slice(), &[2.0, 10.0, 2.0]);
        assert_close(s.std.as_slice(), &[(2.0f64 / 3.0).sqrt(), 1.0, 8.0f64.sqrt()]);
        let (r15, r2) = (1.5f64.sqrt(), 2.0f64.sqrt());
        assert_close(z.as_slice(), &[-r15, 0.0, -1.0 / r2, 0.0, 0.0, -1.0 / r2, r15, 0.0, r2]);
        assert_close(s.inverse_transform(&z).unwrap().as_slice(), x.as_slice());
        // New data with the training statistics: (5 - 2)/sqrt(2/3), 12 - 10, (2 - 2)/(2√2).
        let z2 = s.transform(&Tensor::new(vec![5.0, 12.0, 2.0], [1, 3])).unwrap();
        assert_close(z2.as_slice(), &[3.0 / (2.0f64 / 3.0).sqrt(), 2.0, 0.0]);
    }

    #[test]
    fn standardizer_constant_column_is_exactly_zero() {
        // 0.1 is not exact in binary, so the mean of three 0.1f32 in f64 need not equal 0.1f32;
        // the constant column must still map to exactly 0.
        let x = Tensor::new(vec![0.1f32, 1.0, 0.1, 2.0, 0.1, 3.0], [3, 2]);
        let (s, z) = Standardizer::fit_transform(&x).unwrap();
        assert_eq!(s.std.to_vec()[0], 1.0);
        assert_eq!([z.as_slice()[0], z.as_slice()[2], z.as_slice()[4]], [0.0; 3]);
    }

    #[test]
    fn scaler_errors() {
        let msg = Standardizer::fit(&Tensor::<f32>::zeros([4])).unwrap_err().to_string();
        assert!(msg.contains("matrix [n, d], got shape [4]"), "{msg}");
        assert!(Standardizer::fit(&Tensor::<f32>::zeros([0, 3])).is_err());
        let msg = Standardizer::fit(&Tensor::new(vec![1.0f32, f32::NAN], [1, 2])).unwrap_err().to_string();
        assert!(msg.contains("x[0, 1] is NaN"), "{msg}");
        let s = Standardizer::fit(&Tensor::<f32>::ones([2, 3])).unwrap();
        let msg = s.transform(&Tensor::zeros([2, 4])).unwrap_err().to_string();
        assert!(msg.contains("shape [2, 4] but the scaler was fitted on 3 columns"), "{msg}");
        let m = MinMaxScaler::fit(&Tensor::<f32>::ones([2, 3])).unwrap();
        assert!(m.transform(&Tensor::zeros([1, 2])).is_err());
        assert!(MinMaxScaler::fit(&Tensor::new(vec![f32::INFINITY], [1, 1])).is_err());
        // Zero columns are fine: nothing to scale.
        let (_, z) = Standardizer::fit_transform(&Tensor::<f32>::zeros([2, 0])).unwrap();
        assert_eq!(z.dims(), &[2, 0]);
    }

    #[test]
    fn min_max_by_hand() {
        // col 0: 1, 3, 2 -> min 1, range 2 -> 0, 1, 0.5. col 1: constant 5 -> 0.
        let x = Tensor::new(vec![1.0f64, 5.0, 3.0, 5.0, 2.0, 5.0], [3, 2]);
        let (m, z) = MinMaxScaler::fit_transform(&x).unwrap();
        assert_eq!((m.min.to_vec(), m.max.to_vec()), (vec![1.0, 5.0], vec![3.0, 5.0]));
        assert_eq!(z.to_vec(), vec![0.0, 0.0, 1.0, 0.0, 0.5, 0.0]);
        // New data: (5 - 1)/2 = 2 (outside [0, 1] is allowed); constant column 7 - 5 = 2.
        assert_eq!(m.transform(&Tensor::new(vec![5.0, 7.0], [1, 2])).unwrap().to_vec(), vec![2.0, 2.0]);
        assert_eq!(m.inverse_transform(&z).unwrap(), x);
    }

    #[test]
    fn one_hot_by_hand() {
        let t = one_hot::<f64>(&[1, 0, 1], 2).unwrap();
        assert_eq!(t.dims(), &[3, 2]);
        assert_eq!(t.to_vec(), vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0]);
        let msg = one_hot::<f32>(&[0, 3], 3).unwrap_err().to_string();
        assert_eq!(msg, "one_hot: labels[1] = 3 is not below num_classes = 3");
        assert_eq!(one_hot::<f32>(&[], 0).unwrap().dims(), &[0, 0]);
        assert!(one_hot::<f32>(&[0], 0).is_err());
    }
}
