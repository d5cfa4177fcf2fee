//! What the fuzz targets check, shared with the stable test `tests/fuzz_corpus.rs` that runs
//! the seed corpus (and any crash committed to it) on every `cargo test`.
//!
//! Each check feeds arbitrary bytes to a loader: it must return a value or a typed error,
//! never panic, abort or hang, and what it returns must be consistent.

use wengert_nn::data::{load_labeled_csv_from, read_csv_from, CsvOptions, MAX_CLASSES};
use wengert_nn::serialize::{load_all_from_bytes, load_from_bytes};
use wengert_nn::prelude::Float;

/// The safetensors loaders: as f32, as f64, and every dtype in its own (`load_all`), which
/// must agree with the float loads where both succeed.
pub fn check_safetensors(bytes: &[u8]) {
    check_safetensors_as::<f32>(bytes);
    check_safetensors_as::<f64>(bytes);
    if let Ok(all) = load_all_from_bytes(bytes, "<fuzz>") {
        for t in all.values() {
            assert!(t.dims().iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_some());
        }
        if let Ok(floats) = load_from_bytes::<f32>(bytes, "<fuzz>") {
            for name in floats.keys() {
                assert_eq!(all.get(name).map(|a| a.dtype()), Some("F32"), "{name}");
            }
        }
    }
}

fn check_safetensors_as<T: Float>(bytes: &[u8]) {
    if let Ok(tensors) = load_from_bytes::<T>(bytes, "<fuzz>") {
        for t in tensors.values() {
            assert_eq!(t.to_vec().len(), t.numel());
        }
    }
}

/// The CSV readers, plain or gzip. The first byte picks the options, so header skipping,
/// other delimiters and declared class counts are explored too: bits 0-1 the header lines,
/// bits 2-3 the delimiter (`,` `;` tab space), bit 4 whether `num_classes` is given, bits 5-7
/// its value minus one.
pub fn check_csv(bytes: &[u8]) {
    let (opts, text) = match bytes.split_first() {
        Some((&b, rest)) => (
            CsvOptions {
                skip_header_lines: usize::from(b & 3),
                delimiter: [b',', b';', b'\t', b' '][usize::from((b >> 2) & 3)],
                num_classes: (b & 16 != 0).then_some(usize::from(b >> 5) + 1),
            },
            rest,
        ),
        None => (CsvOptions::default(), bytes),
    };
    if let Ok(rows) = read_csv_from(text, "<fuzz>", &opts) {
        assert!(rows.iter().all(|r| r.len() == rows[0].len() && r.iter().all(|v| v.is_finite())));
    }
    if let Ok(ds) = load_labeled_csv_from::<f32>(text, "<fuzz>", &opts) {
        let bound = opts.num_classes.unwrap_or(MAX_CLASSES);
        assert!(ds.y.as_slice().iter().all(|&c| c < bound));
        if opts.num_classes.is_some() {
            assert_eq!(ds.class_counts().iter().sum::<usize>(), ds.len());
        }
    }
}
