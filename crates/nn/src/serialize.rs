//! Named tensors to and from **safetensors** files, the format PyTorch reads with
//! `safetensors.torch.load_file` and writes with `safetensors.torch.save_file`.
//!
//! A safetensors file is an 8-byte little-endian header length, a JSON header naming every
//! tensor with its dtype, shape and byte range (plus an optional `__metadata__` map of strings),
//! then the raw little-endian row-major data. `f32` tensors are stored as `F32`, `f64` as `F64`.
//! The header and its checks come from the official `safetensors` crate.
//!
//! * [`save`] writes atomically: a temporary file in the target's directory, flushed and synced,
//!   then renamed over the target. A failed save leaves the old file as it was.
//! * [`load`] reads every tensor; [`load_matching`] reads exactly the tensors a model expects,
//!   checking names, shapes and dtypes before it returns anything.
//! * A truncated or corrupt file is an [`Error::Format`], never a panic.
//!
//! ```
//! use wengert_core::Tensor;
//! use wengert_nn::serialize;
//!
//! let path = std::env::temp_dir().join(format!("wengert-doc-module-{}.safetensors", std::process::id()));
//! let w = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]);
//! let b = Tensor::new(vec![0.5f32, -0.5], [2]);
//! serialize::save(&path, [("fc.weight", &w), ("fc.bias", &b)])?;
//!
//! let loaded = serialize::load::<f32>(&path)?;
//! assert_eq!(loaded["fc.weight"].dims(), &[2, 3]);
//! assert_eq!(loaded["fc.bias"].to_vec(), vec![0.5, -0.5]);
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), wengert_nn::Error>(())
//! ```


use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensorError, SafeTensors, View};
use wengert_core::{Float, Shape, Tensor};

use crate::error::{Error, Result};
use crate::module::{Buffer, BufferMut};

/// The header key safetensors reserves for the string-to-string metadata map.
const METADATA_KEY: &str = "__metadata__";

/// The metadata [`save`] writes: `transformers` and other PyTorch tooling refuse safetensors
/// weights whose `format` is not one they know, and `pt` is PyTorch's.
const DEFAULT_FORMAT: (&str, &str) = ("format", "pt");

/// Makes temporary file names unique within this process (the pid makes them unique across).
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Saves named tensors to a safetensors file with the metadata `{"format": "pt"}`.
///
/// `f32` tensors are stored as `F32`, `f64` as `F64`, little-endian, row-major, each with its
/// own shape (a 0-d tensor has shape `[]`). The order of `tensors` does not matter: the file
/// lays them out by the format's own rule.
///
/// The write is atomic: the bytes go to a temporary file `.<name>.tmp-<pid>-<n>` in the
/// target's directory, which is flushed, synced to disk and renamed over `path`; on any error
/// the temporary file is removed and an existing file at `path` is left untouched. Missing
/// parent directories are created.
///
/// Errors: [`Error::InvalidArgument`] for a name given twice or the reserved name
/// `__metadata__`; [`Error::Io`] when a directory or the file cannot be written.
///
/// ```
/// use wengert_core::Tensor;
/// use wengert_nn::serialize;
///
/// let path = std::env::temp_dir().join(format!("wengert-doc-save-{}.safetensors", std::process::id()));
/// let w = Tensor::new(vec![1.0f64, 2.0, 3.0], [3]);
/// serialize::save(&path, [("w", &w)])?;
/// assert_eq!(serialize::read_metadata(&path)?["format"], "pt");
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn save<'a, T: Float>(
    path: impl AsRef<Path>,
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor<T>)>,
) -> Result<()> {
    let metadata = BTreeMap::from([(DEFAULT_FORMAT.0.to_string(), DEFAULT_FORMAT.1.to_string())]);
    save_with_metadata(path, tensors, &metadata)
}

/// [`save`] with your own `__metadata__` map, written exactly as given (an empty map writes
/// none). Include `"format": "pt"` if PyTorch tooling such as `transformers` will read the file.
///
/// ```
/// use std::collections::BTreeMap;
/// use wengert_core::Tensor;
/// use wengert_nn::serialize;
///
/// let path = std::env::temp_dir().join(format!("wengert-doc-savemeta-{}.safetensors", std::process::id()));
/// let meta = BTreeMap::from([
///     ("format".to_string(), "pt".to_string()),
///     ("epoch".to_string(), "12".to_string()),
/// ]);
/// serialize::save_with_metadata(&path, [("w", &Tensor::scalar(2.5f32))], &meta)?;
/// assert_eq!(serialize::read_metadata(&path)?, meta);
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn save_with_metadata<'a, T: Float>(
    path: impl AsRef<Path>,
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor<T>)>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let dtype = dtype_of::<T>()?;
    let entries = tensors
        .into_iter()
        .map(|(name, tensor)| Ok((name, Encoder::new(tensor, dtype)?)))
        .collect::<Result<Vec<_>>>()?;
    write_entries(path, entries, metadata)
}

/// Checks the names (none twice, none reserved), encodes and writes atomically.
fn write_entries(path: &Path, entries: Vec<(&str, Encoder<'_>)>, metadata: &BTreeMap<String, String>) -> Result<()> {
    let mut seen = BTreeSet::new();
    for (name, _) in &entries {
        if *name == METADATA_KEY {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "{}: `{METADATA_KEY}` is reserved by safetensors and cannot name a tensor",
                    path.display()
                ),
            });
        }
        if !seen.insert(*name) {
            return Err(Error::InvalidArgument {
                reason: format!("{}: tensor name `{name}` is given twice", path.display()),
            });
        }
    }
    let info: Option<HashMap<String, String>> = if metadata.is_empty() {
        None
    } else {
        Some(metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    };
    let bytes = safetensors::serialize(entries, info).map_err(|e| Error::InvalidArgument {
        reason: format!("{}: cannot encode the tensors as safetensors: {e}", path.display()),
    })?;
    write_atomically(path, &bytes)
}

/// Loads every tensor of a safetensors file, by name.
///
/// Errors: [`Error::Io`] when the file cannot be read; [`Error::Format`] (with safetensors'
/// reason) when it is truncated or corrupt; [`Error::TensorMismatch`] when a tensor's dtype is
/// not `T`'s (e.g. "dtype F64 in the file, f32 expected"), reporting the first such name in
/// sorted order.
///
/// ```
/// use wengert_core::Tensor;
/// use wengert_nn::serialize;
///
/// let path = std::env::temp_dir().join(format!("wengert-doc-load-{}.safetensors", std::process::id()));
/// let t = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 1, 2]);
/// serialize::save(&path, [("t", &t)])?;
/// let loaded = serialize::load::<f32>(&path)?;
/// assert_eq!(loaded["t"].to_vec(), t.to_vec());
/// assert_eq!(loaded["t"].dims(), &[2, 1, 2]);
/// assert!(serialize::load::<f64>(&path).is_err()); // stored as F32
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn load<T: Float>(path: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor<T>>> {
    let path = path.as_ref();
    load_from_bytes(&read_bytes(path)?, path)
}

/// [`load`] from the bytes of a safetensors file already in memory (a download, an archive
/// member, a memory map); `source` names them in errors as the path does. The same checks run:
/// a truncated or corrupt buffer, a header naming a tensor twice, or data of another dtype is
/// an error, never a panic.
///
/// ```
/// use wengert_nn::serialize;
///
/// let header = br#"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
/// let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
/// bytes.extend_from_slice(header);
/// bytes.extend(1.5f32.to_le_bytes().into_iter().chain((-2.0f32).to_le_bytes()));
/// let tensors = serialize::load_from_bytes::<f32>(&bytes, "<memory>")?;
/// assert_eq!(tensors["t"].to_vec(), vec![1.5, -2.0]);
///
/// let err = serialize::load_from_bytes::<f32>(&bytes[..bytes.len() - 1], "<memory>").unwrap_err();
/// assert!(err.to_string().starts_with("<memory>"), "{err}");
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn load_from_bytes<T: Float>(bytes: &[u8], source: impl AsRef<Path>) -> Result<BTreeMap<String, Tensor<T>>> {
    let path = source.as_ref();
    let dtype = dtype_of::<T>()?;
    let file = parse(path, bytes)?;
    let views: BTreeMap<String, TensorView<'_>> = file.tensors().into_iter().collect();
    for (name, view) in &views {
        if view.dtype() != dtype {
            let shape = Shape::new(view.shape());
            return Err(dtype_mismatch::<T>(name, shape.clone(), shape, view.dtype()));
        }
    }
    views
        .into_iter()
        .map(|(name, view)| {
            let tensor = decode(path, &name, &view)?;
            Ok((name, tensor))
        })
        .collect()
}

/// Loads exactly the tensors named in `expected`, in its order, checking each shape.
///
/// Everything is checked before anything is returned, and the first error wins in a fixed
/// order: a name of `expected` absent from the file ([`Error::MissingTensor`]); then, in the
/// order of `expected`, a shape that differs ([`Error::TensorMismatch`], reason
/// "shape differs") or a dtype that is not `T`'s; then a tensor in the file that `expected`
/// does not name ([`Error::UnexpectedTensor`], first in sorted order). A name listed twice in
/// `expected` is an [`Error::InvalidArgument`]; unreadable or corrupt files give [`Error::Io`]
/// and [`Error::Format`] as in [`load`].
///
/// ```
/// use wengert_core::{Shape, Tensor};
/// use wengert_nn::{serialize, Error};
///
/// let path = std::env::temp_dir().join(format!("wengert-doc-match-{}.safetensors", std::process::id()));
/// let w = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
/// let b = Tensor::new(vec![0.0f32, 1.0], [2]);
/// serialize::save(&path, [("w", &w), ("b", &b)])?;
///
/// let want = [("w".to_string(), Shape::new(&[2, 2])), ("b".to_string(), Shape::new(&[2]))];
/// let got = serialize::load_matching::<f32>(&path, &want)?;
/// assert_eq!(got[0].to_vec(), w.to_vec());
/// assert_eq!(got[1].to_vec(), b.to_vec());
///
/// let wrong = [("w".to_string(), Shape::new(&[4])), ("b".to_string(), Shape::new(&[2]))];
/// let err = serialize::load_matching::<f32>(&path, &wrong).unwrap_err();
/// assert!(matches!(err, Error::TensorMismatch { ref name, .. } if name == "w"));
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn load_matching<T: Float>(path: impl AsRef<Path>, expected: &[(String, Shape)]) -> Result<Vec<Tensor<T>>> {
    let path = path.as_ref();
    let want = Want::Float(dtype_of::<T>()?);
    let slots: Vec<Slot> = expected.iter().map(|(name, shape)| (name.clone(), shape.clone(), want)).collect();
    let buffer = read_bytes(path)?;
    let file = parse(path, &buffer)?;
    let views: BTreeMap<String, TensorView<'_>> = file.tensors().into_iter().collect();
    let found = check_views::<T>(path, &views, &slots)?;
    expected.iter().zip(found).map(|((name, _), view)| decode(path, name, view)).collect()
}

/// What a slot of a model takes from a file: a float tensor of one dtype, or an integer one.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    Float(Dtype),
    /// Any integer or bool dtype, read as `i64` (PyTorch stores counters as `I64`).
    Int,
}

/// A tensor a model expects: its name, its shape and what it takes.
type Slot = (String, Shape, Want);

/// The views filling `slots`, in their order, after every check of [`load_matching`]: no name
/// twice, none missing, each shape and dtype right, nothing left over.
fn check_views<'v, 'b, T: Float>(
    path: &Path,
    views: &'v BTreeMap<String, TensorView<'b>>,
    slots: &[Slot],
) -> Result<Vec<&'v TensorView<'b>>> {
    let mut wanted = BTreeSet::new();
    for (name, _, _) in slots {
        if !wanted.insert(name.as_str()) {
            return Err(Error::InvalidArgument {
                reason: format!("{}: tensor `{name}` is expected twice", path.display()),
            });
        }
    }
    if let Some((name, _, _)) = slots.iter().find(|(name, _, _)| !views.contains_key(name)) {
        return Err(Error::MissingTensor { name: name.clone() });
    }
    let mut found = Vec::with_capacity(slots.len());
    for (name, shape, want) in slots {
        let view = &views[name];
        let found_shape = || Box::new(Shape::new(view.shape()));
        if view.shape() != shape.dims() {
            return Err(Error::TensorMismatch {
                name: name.clone(),
                expected: Box::new(shape.clone()),
                found: found_shape(),
                reason: "shape differs".to_string(),
            });
        }
        match want {
            Want::Float(dtype) if view.dtype() != *dtype => {
                return Err(dtype_mismatch::<T>(name, shape.clone(), Shape::new(view.shape()), view.dtype()))
            }
            Want::Int if int_reader(view.dtype()).is_none() => {
                return Err(Error::TensorMismatch {
                    name: name.clone(),
                    expected: Box::new(shape.clone()),
                    found: found_shape(),
                    reason: format!("dtype {} in the file, an integer expected", view.dtype()),
                })
            }
            _ => {}
        }
        found.push(view);
    }
    if let Some(name) = views.keys().find(|name| !wanted.contains(name.as_str())) {
        return Err(Error::UnexpectedTensor { name: name.clone() });
    }
    Ok(found)
}

/// How to read one little-endian value of an integer or bool dtype as `i64`; `None` for
/// float dtypes and for `U64` (whose values may not fit).
fn int_reader(dtype: Dtype) -> Option<fn(&[u8]) -> i64> {
    Some(match dtype {
        Dtype::I64 => |b| i64::from_le_bytes(b.try_into().expect("8 bytes")),
        Dtype::I32 => |b| i64::from(i32::from_le_bytes(b.try_into().expect("4 bytes"))),
        Dtype::U32 => |b| i64::from(u32::from_le_bytes(b.try_into().expect("4 bytes"))),
        Dtype::I16 => |b| i64::from(i16::from_le_bytes(b.try_into().expect("2 bytes"))),
        Dtype::U16 => |b| i64::from(u16::from_le_bytes(b.try_into().expect("2 bytes"))),
        Dtype::I8 => |b| i64::from(b[0] as i8),
        Dtype::U8 | Dtype::BOOL => |b| i64::from(b[0]),
        _ => return None,
    })
}

/// An `i64` tensor from a view whose dtype [`int_reader`] reads.
fn decode_int(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Tensor<i64>> {
    let read = int_reader(view.dtype()).ok_or_else(|| Error::Format {
        path: path.to_path_buf(),
        reason: format!("tensor `{name}`: dtype {} is not an integer", view.dtype()),
    })?;
    let width = view.dtype().bitsize() / 8;
    let values: Vec<i64> = view.data().chunks_exact(width).map(read).collect();
    Tensor::from_vec(values, Shape::new(view.shape())).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        reason: format!("tensor `{name}`: {e}"),
    })
}

/// A tensor of any dtype [`load_all`] reads and [`save_all`] writes, each in its own element
/// type: what a PyTorch `state_dict` holds besides floats (`int64` counters and position ids,
/// `int32` indices, `uint8` images, `bool` masks).
#[derive(Clone, Debug, PartialEq)]
pub enum AnyTensor {
    /// `F32`
    F32(Tensor<f32>),
    /// `F64`
    F64(Tensor<f64>),
    /// `I64` (torch's `long`)
    I64(Tensor<i64>),
    /// `I32`
    I32(Tensor<i32>),
    /// `U8`
    U8(Tensor<u8>),
    /// `BOOL` (one byte each, 0 or 1)
    Bool(Tensor<bool>),
}

impl AnyTensor {
    /// The shape.
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// use wengert_nn::serialize::AnyTensor;
    ///
    /// let image = AnyTensor::U8(Tensor::new(vec![0u8, 128, 255, 64, 32, 16], [2, 3]));
    /// assert_eq!(image.dims(), &[2, 3]);
    /// ```
    pub fn dims(&self) -> &[usize] {
        match self {
            AnyTensor::F32(t) => t.dims(),
            AnyTensor::F64(t) => t.dims(),
            AnyTensor::I64(t) => t.dims(),
            AnyTensor::I32(t) => t.dims(),
            AnyTensor::U8(t) => t.dims(),
            AnyTensor::Bool(t) => t.dims(),
        }
    }

    /// The safetensors dtype name (`"F32"`, `"I64"`, `"BOOL"`, ...).
    ///
    /// ```
    /// use wengert_core::Tensor;
    /// use wengert_nn::serialize::AnyTensor;
    ///
    /// assert_eq!(AnyTensor::I64(Tensor::new(vec![7i64], [1])).dtype(), "I64");
    /// assert_eq!(AnyTensor::Bool(Tensor::new(vec![true, false], [2])).dtype(), "BOOL");
    /// ```
    pub fn dtype(&self) -> &'static str {
        match self {
            AnyTensor::F32(_) => "F32",
            AnyTensor::F64(_) => "F64",
            AnyTensor::I64(_) => "I64",
            AnyTensor::I32(_) => "I32",
            AnyTensor::U8(_) => "U8",
            AnyTensor::Bool(_) => "BOOL",
        }
    }
}

/// Every tensor of a safetensors file in its own dtype (F32, F64, I64, I32, U8, BOOL), for
/// files that mix floats and integers, as PyTorch state dicts do. Another dtype (F16, BF16,
/// ...) is an [`Error::Format`] naming the tensor and dtype; so is a BOOL byte other than 0
/// or 1. Checked like [`load`].
///
/// ```
/// use wengert_core::Tensor;
/// use wengert_nn::serialize::{load_all, save_all, AnyTensor};
/// let path = std::env::temp_dir().join(format!("wengert-doc-any-{}.safetensors", std::process::id()));
/// let ids = AnyTensor::I32(Tensor::new(vec![3, -1, 7], [3]));
/// let mask = AnyTensor::Bool(Tensor::new(vec![true, false], [2]));
/// save_all(&path, [("ids", &ids), ("mask", &mask)])?;
/// let back = load_all(&path)?;
/// assert_eq!((&back["ids"], &back["mask"]), (&ids, &mask));
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn load_all(path: impl AsRef<Path>) -> Result<BTreeMap<String, AnyTensor>> {
    let path = path.as_ref();
    load_all_from_bytes(&read_bytes(path)?, path)
}

/// [`load_all`] from bytes in memory; `source` names them in errors.
///
/// ```
/// use wengert_core::Tensor;
/// use wengert_nn::serialize::{load_all_from_bytes, save_all, AnyTensor};
///
/// let path = std::env::temp_dir().join(format!("wengert-doc-any-bytes-{}.safetensors", std::process::id()));
/// let steps = AnyTensor::I64(Tensor::new(vec![42i64], [1]));
/// save_all(&path, [("steps", &steps)])?;
/// let bytes = std::fs::read(&path).unwrap();
/// assert_eq!(load_all_from_bytes(&bytes, "<memory>")?["steps"], steps);
/// assert!(load_all_from_bytes(&bytes[..bytes.len() - 1], "<memory>").is_err());
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn load_all_from_bytes(bytes: &[u8], source: impl AsRef<Path>) -> Result<BTreeMap<String, AnyTensor>> {
    let path = source.as_ref();
    let file = parse(path, bytes)?;
    let mut out = BTreeMap::new();
    for (name, view) in file.tensors() {
        let corrupt = |reason: String| Error::Format { path: path.to_path_buf(), reason: format!("tensor `{name}`: {reason}") };
        let data = view.data();
        let width = (view.dtype().bitsize() / 8).max(1);
        if data.len() % width != 0 {
            return Err(corrupt(format!("{} bytes is not a whole number of {} values", data.len(), view.dtype())));
        }
        let shape = Shape::new(view.shape());
        let tensor = match view.dtype() {
            Dtype::F32 => Tensor::from_vec(from_le(data, f32::from_le_bytes), shape).map(AnyTensor::F32),
            Dtype::F64 => Tensor::from_vec(from_le(data, f64::from_le_bytes), shape).map(AnyTensor::F64),
            Dtype::I64 => Tensor::from_vec(from_le(data, i64::from_le_bytes), shape).map(AnyTensor::I64),
            Dtype::I32 => Tensor::from_vec(from_le(data, i32::from_le_bytes), shape).map(AnyTensor::I32),
            Dtype::U8 => Tensor::from_vec(data.to_vec(), shape).map(AnyTensor::U8),
            Dtype::BOOL => {
                if let Some(bad) = data.iter().find(|&&b| b > 1) {
                    return Err(corrupt(format!("the BOOL byte {bad} is neither 0 nor 1")));
                }
                Tensor::from_vec(data.iter().map(|&b| b == 1).collect(), shape).map(AnyTensor::Bool)
            }
            other => return Err(corrupt(format!("dtype {other} is not supported (F32, F64, I64, I32, U8, BOOL)"))),
        };
        let tensor = tensor.map_err(|e| corrupt(e.to_string()))?;
        out.insert(name, tensor);
    }
    Ok(out)
}

/// Writes tensors of any of [`AnyTensor`]'s dtypes, each as its own dtype, atomically like
/// [`save`] (a temporary file, then a rename), with the same name checks.
///
/// ```
/// use wengert_core::Tensor;
/// use wengert_nn::serialize::{self, AnyTensor};
///
/// let path = std::env::temp_dir().join(format!("wengert-doc-save-all-{}.safetensors", std::process::id()));
/// let w = AnyTensor::F32(Tensor::new(vec![0.5f32, 1.5], [2]));
/// let steps = AnyTensor::I64(Tensor::new(vec![3i64], [1]));
/// serialize::save_all(&path, [("w", &w), ("steps", &steps)])?;
/// assert_eq!(serialize::tensor_names(&path)?, ["steps", "w"]);
/// assert_eq!(serialize::load_all(&path)?["steps"].dtype(), "I64");
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn save_all<'a>(path: impl AsRef<Path>, tensors: impl IntoIterator<Item = (&'a str, &'a AnyTensor)>) -> Result<()> {
    let entries: Vec<(&str, Encoder<'_>)> = tensors.into_iter().map(|(name, t)| (name, Encoder::any(t))).collect();
    let metadata = BTreeMap::from([(DEFAULT_FORMAT.0.to_string(), DEFAULT_FORMAT.1.to_string())]);
    write_entries(path.as_ref(), entries, &metadata)
}

/// Reads the `__metadata__` map of a safetensors file (empty when the file has none).
///
/// The whole file is checked, so a truncated or corrupt file is an [`Error::Format`] here too.
///
/// ```
/// use wengert_core::Tensor;
/// use wengert_nn::serialize;
///
/// let path = std::env::temp_dir().join(format!("wengert-doc-meta-{}.safetensors", std::process::id()));
/// serialize::save(&path, [("x", &Tensor::new(vec![1.0f32], [1]))])?;
/// let meta = serialize::read_metadata(&path)?;
/// assert_eq!(meta.get("format").map(String::as_str), Some("pt"));
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn read_metadata(path: impl AsRef<Path>) -> Result<BTreeMap<String, String>> {
    let path = path.as_ref();
    let buffer = read_bytes(path)?;
    let (_, metadata) = SafeTensors::read_metadata(&buffer).map_err(|e| format_error(path, e))?;
    Ok(metadata
        .metadata()
        .as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default())
}

/// The names of the tensors in a safetensors file, sorted, reading only the
/// header (not the data): what a loader checks before it builds a model, such as whether a
/// checkpoint has a pooler. A header that names a tensor twice is an [`Error::Format`], as
/// in [`load`].
///
/// ```
/// use wengert_nn::prelude::*;
/// let path = std::env::temp_dir().join("wengert-doc-tensor-names.safetensors");
/// wengert_nn::serialize::save_module(&path, &Linear::<f32>::new(2, 3)).unwrap();
/// assert_eq!(wengert_nn::serialize::tensor_names(&path).unwrap(), ["bias", "weight"]);
/// ```
pub fn tensor_names(path: impl AsRef<Path>) -> Result<Vec<String>> {
    use std::io::Read;
    let path = path.as_ref();
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let mut file = fs::File::open(path).map_err(io)?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| Error::Format { path: path.to_path_buf(), reason: "shorter than the 8-byte header length".into() })?;
    let len = u64::from_le_bytes(len);
    let size = file.metadata().map_err(io)?.len();
    if len > size.saturating_sub(8) || len > 100_000_000 {
        return Err(Error::Format { path: path.to_path_buf(), reason: format!("the header length {len} does not fit the file of {size} bytes") });
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).map_err(io)?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| Error::Format { path: path.to_path_buf(), reason: format!("the header is not a JSON object: {e}") })?;
    if let Some(name) = repeated_key(&header) {
        return Err(Error::Format { path: path.to_path_buf(), reason: format!("the header names {name:?} more than once") });
    }
    let mut names: Vec<String> = map.into_iter().map(|(name, _)| name).filter(|n| n != "__metadata__").collect();
    names.sort();
    Ok(names)
}

/// The safetensors dtype that stores `T` exactly.
fn dtype_of<T: Float>() -> Result<Dtype> {
    let id = TypeId::of::<T>();
    if id == TypeId::of::<f32>() {
        Ok(Dtype::F32)
    } else if id == TypeId::of::<f64>() {
        Ok(Dtype::F64)
    } else {
        Err(Error::InvalidArgument {
            reason: format!("element type {} has no safetensors dtype (f32 and f64 do)", T::NAME),
        })
    }
}

fn dtype_mismatch<T: Float>(name: &str, expected: Shape, found: Shape, dtype: Dtype) -> Error {
    Error::TensorMismatch {
        name: name.to_string(),
        expected: Box::new(expected),
        found: Box::new(found),
        reason: match dtype {
            Dtype::F32 | Dtype::F64 => format!("dtype {dtype} in the file, {} expected", T::NAME),
            _ => format!("dtype {dtype} in the file, {} expected (serialize::load_all reads every dtype)", T::NAME),
        },
    }
}

fn format_error(path: &Path, e: SafeTensorError) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn parse<'b>(path: &Path, buffer: &'b [u8]) -> Result<SafeTensors<'b>> {
    let file = SafeTensors::deserialize(buffer).map_err(|e| format_error(path, e))?;
    // safetensors has checked the length prefix and that the header is a JSON object
    let n = u64::from_le_bytes(buffer[..8].try_into().expect("8 bytes")) as usize;
    if let Some(name) = repeated_key(&buffer[8..8 + n]) {
        return Err(Error::Format {
            path: path.to_path_buf(),
            reason: format!("the header names {name:?} more than once"),
        });
    }
    Ok(file)
}

/// The first key of a JSON object that appears twice (compared after unescaping), if any.
fn repeated_key(header: &[u8]) -> Option<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(key);
            }
            Ok(keys)
        }
    }
    let mut keys = serde_json::Deserializer::from_slice(header).deserialize_map(Keys).ok()?;
    keys.sort_unstable();
    keys.windows(2).find(|w| w[0] == w[1]).map(|w| w[0].clone())
}

/// A tensor's elements in the file's byte order, as the concrete float type they are.
enum Elements<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    I64(&'a [i64]),
    I32(&'a [i32]),
    U8(&'a [u8]),
    Bool(&'a [bool]),
}

/// One tensor handed to safetensors: it encodes its bytes only when they are written, so a save
/// holds one copy of the file in memory, not two.
struct Encoder<'a> {
    shape: &'a [usize],
    elements: Elements<'a>,
}

impl<'a> Encoder<'a> {
    fn new<T: Float>(tensor: &'a Tensor<T>, dtype: Dtype) -> Result<Self> {
        let any: &dyn Any = tensor;
        let elements = match dtype {
            Dtype::F32 => any.downcast_ref::<Tensor<f32>>().map(|t| Elements::F32(t.as_slice())),
            Dtype::F64 => any.downcast_ref::<Tensor<f64>>().map(|t| Elements::F64(t.as_slice())),
            _ => None,
        };
        let elements = elements.ok_or_else(|| Error::InvalidArgument {
            reason: format!("element type {} cannot be stored as {dtype}", T::NAME),
        })?;
        Ok(Encoder {
            shape: tensor.dims(),
            elements,
        })
    }

    /// An integer tensor, stored as `I64`.
    fn int(tensor: &'a Tensor<i64>) -> Self {
        Encoder {
            shape: tensor.dims(),
            elements: Elements::I64(tensor.as_slice()),
        }
    }

    /// A tensor of any supported dtype, stored as that dtype.
    fn any(tensor: &'a AnyTensor) -> Self {
        let elements = match tensor {
            AnyTensor::F32(t) => Elements::F32(t.as_slice()),
            AnyTensor::F64(t) => Elements::F64(t.as_slice()),
            AnyTensor::I64(t) => Elements::I64(t.as_slice()),
            AnyTensor::I32(t) => Elements::I32(t.as_slice()),
            AnyTensor::U8(t) => Elements::U8(t.as_slice()),
            AnyTensor::Bool(t) => Elements::Bool(t.as_slice()),
        };
        Encoder { shape: tensor.dims(), elements }
    }
}

impl View for Encoder<'_> {
    fn dtype(&self) -> Dtype {
        match self.elements {
            Elements::F32(_) => Dtype::F32,
            Elements::F64(_) => Dtype::F64,
            Elements::I64(_) => Dtype::I64,
            Elements::I32(_) => Dtype::I32,
            Elements::U8(_) => Dtype::U8,
            Elements::Bool(_) => Dtype::BOOL,
        }
    }

    fn shape(&self) -> &[usize] {
        self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let bytes: Vec<u8> = match self.elements {
            Elements::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Elements::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Elements::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Elements::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Elements::U8(v) => return Cow::Borrowed(v),
            Elements::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        };
        Cow::Owned(bytes)
    }

    fn data_len(&self) -> usize {
        match self.elements {
            Elements::F32(v) => std::mem::size_of_val(v),
            Elements::F64(v) => std::mem::size_of_val(v),
            Elements::I64(v) => std::mem::size_of_val(v),
            Elements::I32(v) => std::mem::size_of_val(v),
            Elements::U8(v) => v.len(),
            Elements::Bool(v) => v.len(),
        }
    }
}

/// Little-endian values of `N` bytes each, copied out so the buffer's alignment never matters.
fn from_le<const N: usize, F>(bytes: &[u8], f: impl Fn([u8; N]) -> F) -> Vec<F> {
    bytes
        .chunks_exact(N)
        .map(|chunk| {
            let mut word = [0u8; N];
            word.copy_from_slice(chunk);
            f(word)
        })
        .collect()
}

/// A tensor of `T` from a view whose dtype was checked to be `T`'s.
fn decode<T: Float>(path: &Path, name: &str, view: &TensorView<'_>) -> Result<Tensor<T>> {
    let corrupt = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason: format!("tensor `{name}`: {reason}"),
    };
    let width = view.dtype().bitsize() / 8;
    let bytes = view.data();
    if width == 0 || bytes.len() % width != 0 {
        return Err(corrupt(format!(
            "{} bytes is not a whole number of {} values",
            bytes.len(),
            view.dtype()
        )));
    }
    let values: Box<dyn Any> = match view.dtype() {
        Dtype::F32 => Box::new(from_le(bytes, f32::from_le_bytes)),
        Dtype::F64 => Box::new(from_le(bytes, f64::from_le_bytes)),
        other => {
            return Err(dtype_mismatch::<T>(
                name,
                Shape::new(view.shape()),
                Shape::new(view.shape()),
                other,
            ))
        }
    };
    let values = values
        .downcast::<Vec<T>>()
        .map_err(|_| dtype_mismatch::<T>(name, Shape::new(view.shape()), Shape::new(view.shape()), view.dtype()))?;
    Tensor::from_vec(*values, Shape::new(view.shape())).map_err(|e| corrupt(e.to_string()))
}

/// Writes `bytes` to `path` through a synced temporary file `.<name>.tmp-<pid>-<n>` in the same
/// directory and a rename, creating missing parent directories; on failure the temporary file
/// is removed. Temporary files of the same name left by a process that died mid-save (killed,
/// or its machine lost power) are removed first (see [`remove_stale_temp_files`]).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_error = |at: &Path| {
        let at = at.to_path_buf();
        move |source| Error::Io { path: at, source }
    };
    let Some(file_name) = path.file_name() else {
        return Err(Error::InvalidArgument {
            reason: format!("{}: not a file path", path.display()),
        });
    };
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    remove_stale_temp_files(dir, file_name);

    let mut tmp_name = OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp: PathBuf = dir.join(tmp_name);
    // `create_new` never clobbers a file someone else owns; only a file we created is removed.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.flush())
        .and_then(|()| file.sync_all())
        .map_err(io_error(&tmp));
    drop(file);
    let renamed = written.and_then(|()| fs::rename(&tmp, path).map_err(io_error(path)));
    if let Err(e) = renamed {
        // Best effort: the error that matters is the one being returned.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable where directories can be synced; a failure here cannot
    // undo the (already visible) save, so it is not reported.
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes `.<file_name>.tmp-<pid>-<n>` files in `dir` whose process is gone: a save killed
/// between creating its temporary file and the rename leaves one behind. A file of a live
/// process (another save to the same path, in this process or another) is left alone. Where
/// processes cannot be looked up (no `/proc`), a file counts as stale after an hour. Best
/// effort: a directory that cannot be listed or a file that cannot be removed is skipped.
fn remove_stale_temp_files(dir: &Path, file_name: &std::ffi::OsStr) {
    let Some(name) = file_name.to_str() else {
        return;
    };
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let proc_fs = Path::new("/proc/self").exists();
    for entry in entries.flatten() {
        let entry_name = entry.file_name();
        let Some(rest) = entry_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('-') else {
            continue;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !digits(n) || pid == std::process::id() {
            continue;
        }
        let stale = if proc_fs {
            !Path::new("/proc").join(pid.to_string()).exists()
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600)
        };
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Saves a model's state — its named parameters (`"0.weight"`, ...) and buffers
/// (`"1.running_mean"`, `"1.num_batches_tracked"`, ...) — to a safetensors file that PyTorch's
/// `safetensors.torch.load_file` reads and `load_state_dict(strict=True)` takes for the same
/// model. Float tensors are stored with `T`'s dtype, integer buffers as `I64`; written
/// atomically like [`save`].
///
/// ```
/// use wengert_nn::prelude::*;
/// let model = Sequential::<f32>::new().add(Linear::new(2, 3)).add(BatchNorm1d::new(3));
/// let path = std::env::temp_dir().join("wengert-doc-save-module.safetensors");
/// wengert_nn::serialize::save_module(&path, &model).unwrap();
/// let mut other = Sequential::<f32>::new().add(Linear::new(2, 3)).add(BatchNorm1d::new(3));
/// wengert_nn::serialize::load_module(&path, &mut other).unwrap();
/// assert_eq!(other.named_params()[0].1.value(), model.named_params()[0].1.value());
/// assert_eq!(other.named_buffers(), model.named_buffers());
/// ```
pub fn save_module<T: Float, M: crate::Module<T> + ?Sized>(path: impl AsRef<Path>, model: &M) -> Result<()> {
    let path = path.as_ref();
    let dtype = dtype_of::<T>()?;
    let mut params: Vec<(String, Tensor<T>)> = Vec::new();
    model.visit_params("", &mut |name, p| params.push((name, p.value().clone())));
    let mut buffers: Vec<(String, Buffer<T>)> = Vec::new();
    model.visit_buffers("", &mut |name, b| buffers.push((name, b)));
    let mut entries = Vec::with_capacity(params.len() + buffers.len());
    for (name, t) in &params {
        entries.push((name.as_str(), Encoder::new(t, dtype)?));
    }
    for (name, b) in &buffers {
        let encoder = match b {
            Buffer::Float(t) => Encoder::new(t, dtype)?,
            Buffer::Int(t) => Encoder::int(t),
        };
        entries.push((name.as_str(), encoder));
    }
    let metadata = BTreeMap::from([(DEFAULT_FORMAT.0.to_string(), DEFAULT_FORMAT.1.to_string())]);
    write_entries(path, entries, &metadata)
}

/// Loads a model's state (parameters and buffers, as [`save_module`] names them) from a
/// safetensors file, such as one PyTorch's `safetensors.torch.save_file(model.state_dict())`
/// wrote. Every parameter and buffer must be present with its shape; float tensors must have
/// `T`'s dtype, integer buffers may have any integer dtype (`I64` in PyTorch); the file must
/// hold nothing else. Everything is checked before anything changes: on an error the model is
/// as it was and the error names the tensor ([`Error::MissingTensor`],
/// [`Error::UnexpectedTensor`], [`Error::TensorMismatch`]).
///
/// ```
/// use wengert_nn::prelude::*;
///
/// let path = std::env::temp_dir().join(format!("wengert-doc-load-module-{}.safetensors", std::process::id()));
/// let model = Linear::<f32>::new(2, 3);
/// wengert_nn::serialize::save_module(&path, &model)?;
/// let mut copy = Linear::<f32>::new(2, 3);
/// wengert_nn::serialize::load_module(&path, &mut copy)?;
/// assert_eq!(copy.named_params()[0].1.value(), model.named_params()[0].1.value());
/// assert!(wengert_nn::serialize::load_module(path.with_extension("missing"), &mut copy).is_err());
/// # std::fs::remove_file(&path).unwrap();
/// # Ok::<(), wengert_nn::Error>(())
/// ```
pub fn load_module<T: Float, M: crate::Module<T> + ?Sized>(path: impl AsRef<Path>, model: &mut M) -> Result<()> {
    let path = path.as_ref();
    let dtype = dtype_of::<T>()?;
    let mut slots: Vec<Slot> = Vec::new();
    model.visit_params("", &mut |name, p| slots.push((name, p.value().shape().clone(), Want::Float(dtype))));
    model.visit_buffers("", &mut |name, b| {
        let want = match b {
            Buffer::Float(_) => Want::Float(dtype),
            Buffer::Int(_) => Want::Int,
        };
        slots.push((name, Shape::new(b.dims()), want));
    });
    let buffer = read_bytes(path)?;
    let file = parse(path, &buffer)?;
    let views: BTreeMap<String, TensorView<'_>> = file.tensors().into_iter().collect();
    let found = check_views::<T>(path, &views, &slots)?;
    let mut floats: HashMap<String, Tensor<T>> = HashMap::new();
    let mut ints: HashMap<String, Tensor<i64>> = HashMap::new();
    for ((name, _, want), view) in slots.into_iter().zip(found) {
        match want {
            Want::Float(_) => {
                let t = decode(path, &name, view)?;
                floats.insert(name, t);
            }
            Want::Int => {
                let t = decode_int(path, &name, view)?;
                ints.insert(name, t);
            }
        }
    }
    let mut result = Ok(());
    model.visit_params_mut("", &mut |name, p| {
        if let Some(v) = floats.remove(&name) {
            if let Err(e) = p.set(v) {
                result = Err(Error::InvalidArgument { reason: format!("{name}: {e}") });
            }
        }
    });
    model.visit_buffers_mut("", &mut |name, b| match b {
        BufferMut::Float(t) => *t = floats.remove(&name).expect("checked above"),
        BufferMut::Int(t) => *t = ints.remove(&name).expect("checked above"),
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn no_temp_files(dir: &Path) {
        let names = names_in(dir);
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "temp files left: {names:?}");
    }

    fn shapes(list: &[(&str, &[usize])]) -> Vec<(String, Shape)> {
        list.iter().map(|(n, d)| (n.to_string(), Shape::new(d))).collect()
    }

    /// A file with `w: [2, 2]` and `b: [2]`, both f32.
    fn two_tensor_file(dir: &Path) -> PathBuf {
        let path = dir.join("m.safetensors");
        let w = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]);
        let b = Tensor::new(vec![5.0f32, 6.0], [2]);
        save(&path, [("w", &w), ("b", &b)]).unwrap();
        path
    }

    fn round_trip<T: Float>() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let scalar = Tensor::scalar(T::from_f64(-2.75));
        let cube = Tensor::<T>::from_fn([2, 3, 4], |ix| {
            T::from_f64((ix[0] * 100 + ix[1] * 10 + ix[2]) as f64 / 7.0)
        });
        let odd = Tensor::new(
            vec![
                T::from_f64(1e-30),
                T::INFINITY,
                T::NEG_INFINITY,
                T::from_f64(-0.0),
                T::EPSILON,
            ],
            [5],
        );
        let empty = Tensor::<T>::zeros([0, 3]);
        save(
            &path,
            [
                ("layer.0.scalar", &scalar),
                ("cube", &cube),
                ("odd", &odd),
                ("empty", &empty),
            ],
        )
        .unwrap();

        let loaded = load::<T>(&path).unwrap();
        assert_eq!(loaded.len(), 4);
        for (name, original) in [
            ("layer.0.scalar", &scalar),
            ("cube", &cube),
            ("odd", &odd),
            ("empty", &empty),
        ] {
            let got = &loaded[name];
            assert_eq!(got.shape(), original.shape(), "{name}");
            assert_eq!(got.as_slice(), original.as_slice(), "{name}");
        }
        assert_eq!(loaded["layer.0.scalar"].ndim(), 0);
        assert!(loaded["odd"].as_slice()[3].to_f64().is_sign_negative());
    }

    #[test]
    fn round_trip_f32() {
        round_trip::<f32>();
    }

    #[test]
    fn round_trip_f64() {
        round_trip::<f64>();
    }

    #[test]
    fn nan_bits_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nan.safetensors");
        let nan = f32::from_bits(0x7fc0_1234);
        save(&path, [("x", &Tensor::new(vec![nan, 1.0], [2]))]).unwrap();
        let got = load::<f32>(&path).unwrap();
        assert_eq!(got["x"].as_slice()[0].to_bits(), 0x7fc0_1234);
    }

    #[test]
    fn file_is_standard_safetensors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("std.safetensors");
        let t = Tensor::new(vec![1.5f32, -2.0, 0.25, 8.0, 3.0, -1.0], [2, 3]);
        save(&path, [("weight", &t)]).unwrap();

        let bytes = fs::read(&path).unwrap();
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[..8]);
        let n = u64::from_le_bytes(len) as usize;
        assert_eq!(n % 8, 0, "the header is padded to 8 bytes");
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(header.starts_with('{'), "{header}");
        assert!(header.contains(r#""weight":{"#), "{header}");
        assert!(header.contains(r#""dtype":"F32""#), "{header}");
        assert!(header.contains(r#""shape":[2,3]"#), "{header}");
        assert!(header.contains(r#""data_offsets":[0,24]"#), "{header}");
        assert!(header.contains(r#""__metadata__":{"format":"pt"}"#), "{header}");

        let data = &bytes[8 + n..];
        let expected: Vec<u8> = t.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(data, expected.as_slice());
    }

    #[test]
    fn header_of_f64_and_scalar() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.safetensors");
        save(&path, [("s", &Tensor::scalar(3.0f64))]).unwrap();
        let bytes = fs::read(&path).unwrap();
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[..8]);
        let n = u64::from_le_bytes(len) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
        assert!(header.contains(r#""dtype":"F64""#), "{header}");
        assert!(header.contains(r#""shape":[]"#), "{header}");
        assert_eq!(&bytes[8 + n..], 3.0f64.to_le_bytes().as_slice());
    }

    #[test]
    fn truncated_file_is_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = two_tensor_file(dir.path());
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        for err in [
            load::<f32>(&path).unwrap_err(),
            load_matching::<f32>(&path, &shapes(&[("w", &[2, 2]), ("b", &[2])])).unwrap_err(),
            read_metadata(&path).unwrap_err(),
        ] {
            match err {
                Error::Format { path: p, reason } => {
                    assert_eq!(p, path);
                    assert!(!reason.is_empty());
                }
                other => panic!("expected Format, got {other:?}"),
            }
        }
        // Cut inside the header too.
        fs::write(&path, &bytes[..20]).unwrap();
        assert!(matches!(load::<f32>(&path), Err(Error::Format { path: p, .. }) if p == path));
        fs::write(&path, &bytes[..5]).unwrap();
        assert!(matches!(load::<f32>(&path), Err(Error::Format { path: p, .. }) if p == path));
    }

    #[test]
    fn garbage_file_is_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.safetensors");
        fs::write(&path, b"this is certainly not a safetensors file, just text").unwrap();
        let err = load::<f32>(&path).unwrap_err();
        assert!(matches!(&err, Error::Format { path: p, .. } if *p == path), "{err:?}");
        assert!(err.to_string().contains("garbage.safetensors"), "{err}");

        // A plausible length followed by bytes that are not JSON.
        let mut bytes = 16u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{not json at all");
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(load::<f64>(&path), Err(Error::Format { path: p, .. }) if p == path));

        fs::write(&path, b"").unwrap();
        assert!(matches!(load::<f64>(&path), Err(Error::Format { path: p, .. }) if p == path));
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.safetensors");
        assert!(matches!(load::<f32>(&path), Err(Error::Io { path: p, .. }) if p == path));
    }

    #[test]
    fn load_matching_returns_tensors_in_expected_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = two_tensor_file(dir.path());
        let got = load_matching::<f32>(&path, &shapes(&[("w", &[2, 2]), ("b", &[2])])).unwrap();
        assert_eq!(got[0].to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(got[0].dims(), &[2, 2]);
        assert_eq!(got[1].to_vec(), vec![5.0, 6.0]);
        let got = load_matching::<f32>(&path, &shapes(&[("b", &[2]), ("w", &[2, 2])])).unwrap();
        assert_eq!(got[0].to_vec(), vec![5.0, 6.0]);
    }

    #[test]
    fn load_matching_missing_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = two_tensor_file(dir.path());
        let err = load_matching::<f32>(&path, &shapes(&[("w", &[2, 2]), ("b", &[2]), ("gamma", &[2])])).unwrap_err();
        assert!(
            matches!(&err, Error::MissingTensor { name } if name == "gamma"),
            "{err:?}"
        );
    }

    #[test]
    fn load_matching_unexpected_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let path = two_tensor_file(dir.path());
        let err = load_matching::<f32>(&path, &shapes(&[("w", &[2, 2])])).unwrap_err();
        assert!(
            matches!(&err, Error::UnexpectedTensor { name } if name == "b"),
            "{err:?}"
        );
    }

    #[test]
    fn load_matching_wrong_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = two_tensor_file(dir.path());
        let err = load_matching::<f32>(&path, &shapes(&[("w", &[4]), ("b", &[2])])).unwrap_err();
        match err {
            Error::TensorMismatch {
                name,
                expected,
                found,
                reason,
            } => {
                assert_eq!(name, "w");
                assert_eq!(*expected, Shape::new(&[4]));
                assert_eq!(*found, Shape::new(&[2, 2]));
                assert_eq!(reason, "shape differs");
            }
            other => panic!("expected TensorMismatch, got {other:?}"),
        }
    }

    #[test]
    fn load_matching_error_order_is_missing_then_shape_then_unexpected() {
        let dir = tempfile::tempdir().unwrap();
        let path = two_tensor_file(dir.path());
        // Wrong shape for `w`, `x` missing, `b` unexpected: missing wins.
        let err = load_matching::<f32>(&path, &shapes(&[("w", &[3]), ("x", &[1])])).unwrap_err();
        assert!(matches!(&err, Error::MissingTensor { name } if name == "x"), "{err:?}");
        // Wrong shape for `w`, `b` unexpected: the shape wins.
        let err = load_matching::<f32>(&path, &shapes(&[("w", &[3])])).unwrap_err();
        assert!(
            matches!(&err, Error::TensorMismatch { name, .. } if name == "w"),
            "{err:?}"
        );
        // A name expected twice is the caller's mistake.
        let err = load_matching::<f32>(&path, &shapes(&[("w", &[2, 2]), ("w", &[2, 2])])).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    }

    /// A header that names a tensor twice (even once escaped) is a format error for every
    /// loader; before, the last entry won silently.
    #[test]
    fn repeated_names_in_a_header_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let entry = r#"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#;
        for (i, second) in ["a", r"\u0061"].into_iter().enumerate() {
            let header = format!(r#"{{"a":{entry},"{second}":{entry}}}"#);
            let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
            bytes.extend(header.as_bytes());
            bytes.extend(1.5f32.to_le_bytes());
            let path = dir.path().join(format!("dup{i}.safetensors"));
            fs::write(&path, &bytes).unwrap();
            for err in [
                load::<f32>(&path).unwrap_err(),
                load_matching::<f32>(&path, &shapes(&[("a", &[1])])).unwrap_err(),
                tensor_names(&path).unwrap_err(),
            ] {
                assert!(
                    matches!(&err, Error::Format { reason, .. } if reason == "the header names \"a\" more than once"),
                    "{err:?}"
                );
            }
        }
        let path = dir.path().join("one.safetensors");
        save(
            &path,
            [
                ("a", &Tensor::from_slice(&[1.5f32])),
                ("b", &Tensor::from_slice(&[2.5f32])),
            ],
        )
        .unwrap();
        assert_eq!(load::<f32>(&path).unwrap().len(), 2);
    }

    #[test]
    fn wrong_dtype_is_tensor_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f64.safetensors");
        save(&path, [("w", &Tensor::new(vec![1.0f64, 2.0], [2]))]).unwrap();

        match load::<f32>(&path).unwrap_err() {
            Error::TensorMismatch {
                name, reason, found, ..
            } => {
                assert_eq!(name, "w");
                assert_eq!(reason, "dtype F64 in the file, f32 expected");
                assert_eq!(*found, Shape::new(&[2]));
            }
            other => panic!("expected TensorMismatch, got {other:?}"),
        }
        let err = load_matching::<f32>(&path, &shapes(&[("w", &[2])])).unwrap_err();
        assert!(
            matches!(&err, Error::TensorMismatch { name, reason, .. } if name == "w" && reason.starts_with("dtype F64")),
            "{err:?}"
        );
    }

    #[test]
    fn duplicate_or_reserved_names_are_rejected_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dup.safetensors");
        let t = Tensor::new(vec![1.0f32], [1]);
        let err = save(&path, [("a", &t), ("a", &t)]).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { reason } if reason.contains("`a`")),
            "{err:?}"
        );
        let err = save(&path, [("__metadata__", &t)]).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        assert!(names_in(dir.path()).is_empty());
    }

    #[test]
    fn failed_save_keeps_the_old_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = two_tensor_file(dir.path());
        let old = fs::read(&path).unwrap();
        let t = Tensor::new(vec![9.0f32; 3], [3]);

        // Invalid input: nothing is written.
        assert!(save(&path, [("w", &t), ("w", &t)]).is_err());
        assert_eq!(fs::read(&path).unwrap(), old);

        // The target is a directory holding a file: the rename fails after the temp was written.
        let target = dir.path().join("occupied");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("keep.txt"), b"old").unwrap();
        let err = save(&target, [("w", &t)]).unwrap_err();
        assert!(matches!(&err, Error::Io { path: p, .. } if *p == target), "{err:?}");
        assert_eq!(fs::read(target.join("keep.txt")).unwrap(), b"old");

        // The parent is a file, so the directory cannot be created.
        let err = save(path.join("inner.safetensors"), [("w", &t)]).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");

        assert_eq!(fs::read(&path).unwrap(), old);
        assert_eq!(load::<f32>(&path).unwrap()["w"].to_vec(), vec![1.0, 2.0, 3.0, 4.0]);
        no_temp_files(dir.path());
    }

    /// A temporary file left by a process that died mid-save (here a pid above the kernel's
    /// maximum, so never alive) is removed by the next save to the same path; one of a live
    /// process, one of another target and an unrelated file are kept.
    #[test]
    fn next_save_removes_stale_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let stale = ".m.safetensors.tmp-4294967295-0";
        let live = format!(".m.safetensors.tmp-{}-7", std::process::id());
        let live_other = ".m.safetensors.tmp-1-3"; // pid 1 (init) is always running
        let other_target = ".n.safetensors.tmp-4294967295-0";
        for name in [
            stale,
            &live,
            live_other,
            other_target,
            "m.safetensors.tmp-4294967295-0-notes",
        ] {
            fs::write(dir.path().join(name), b"half a file").unwrap();
        }
        save(&path, [("t", &Tensor::from_slice(&[1.0f32]))]).unwrap();
        let names = names_in(dir.path());
        assert!(!names.contains(&stale.to_string()), "{names:?}");
        for kept in [
            live.as_str(),
            live_other,
            other_target,
            "m.safetensors.tmp-4294967295-0-notes",
            "m.safetensors",
        ] {
            assert!(
                names.contains(&kept.to_string()),
                "{kept} removed: {names:?}"
            );
        }
    }

    #[test]
    fn successful_save_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = two_tensor_file(dir.path());
        no_temp_files(dir.path());
        save(&path, [("z", &Tensor::new(vec![7.0f32], [1]))]).unwrap();
        assert_eq!(names_in(dir.path()), vec!["m.safetensors".to_string()]);
        let loaded = load::<f32>(&path).unwrap();
        assert_eq!(loaded.keys().collect::<Vec<_>>(), vec!["z"]);
    }

    #[test]
    fn save_creates_parent_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("b").join("w.safetensors");
        save(&path, [("x", &Tensor::new(vec![1.0f64, 2.0], [1, 2]))]).unwrap();
        assert_eq!(load::<f64>(&path).unwrap()["x"].dims(), &[1, 2]);
        no_temp_files(&dir.path().join("a").join("b"));
    }

    #[test]
    fn metadata_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.safetensors");
        let t = Tensor::new(vec![1.0f32, 2.0], [2]);

        save(&path, [("t", &t)]).unwrap();
        assert_eq!(
            read_metadata(&path).unwrap(),
            BTreeMap::from([("format".to_string(), "pt".to_string())])
        );

        let meta = BTreeMap::from([
            ("format".to_string(), "pt".to_string()),
            ("note".to_string(), "quotes \" and \\ survive".to_string()),
        ]);
        save_with_metadata(&path, [("t", &t)], &meta).unwrap();
        assert_eq!(read_metadata(&path).unwrap(), meta);

        save_with_metadata(&path, [("t", &t)], &BTreeMap::new()).unwrap();
        assert!(read_metadata(&path).unwrap().is_empty());
        assert_eq!(load::<f32>(&path).unwrap()["t"].to_vec(), vec![1.0, 2.0]);
    }

    #[test]
    fn empty_save_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.safetensors");
        save::<f32>(&path, []).unwrap();
        assert!(load::<f32>(&path).unwrap().is_empty());
        assert!(load_matching::<f32>(&path, &[]).unwrap().is_empty());
    }
}
