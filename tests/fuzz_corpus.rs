//! The fuzz targets' checks (`fuzz/src/lib.rs`) over their seed corpus, on stable, on every
//! `cargo test`: each seed and each crash input added after a fix loads or fails with a typed
//! error. The fuzzing itself runs with `fuzz/run.sh` (nightly).

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

/// Every file of `fuzz/corpus/{target}`, by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn safetensors_seeds() {
    let seeds = corpus("safetensors");
    assert!(seeds.len() >= 8, "{} seeds", seeds.len());
    for (name, bytes) in &seeds {
        checks::check_safetensors(bytes);
        let loaded = wengert_nn::serialize::load_from_bytes::<f32>(bytes, name);
        match name.as_str() {
            "one_f32" | "two_f32_meta" | "empty_tensor" | "no_tensors" => assert!(loaded.is_ok(), "{name}: {loaded:?}"),
            "duplicate_name" => {
                let e = loaded.unwrap_err().to_string();
                assert!(e.contains("the header names \"a\" more than once"), "{e}");
            }
            "truncated" | "one_f64" | "int64_buffer" | "bf16_f16" => assert!(loaded.is_err(), "{name}"),
            _ => {} // a crash input added after its fix: the check above is its test
        }
    }
}

#[test]
fn csv_seeds() {
    let seeds = corpus("csv");
    assert!(seeds.len() >= 10, "{} seeds", seeds.len());
    for (name, bytes) in &seeds {
        checks::check_csv(bytes);
        let opts = wengert_nn::data::CsvOptions::default();
        let rows = wengert_nn::data::read_csv_from(&bytes[1..], name, &opts);
        match name.as_str() {
            "plain" | "exponents_padding" | "bom" | "gzip" | "huge_label" => assert!(rows.is_ok(), "{name}: {rows:?}"),
            "bad_field" | "ragged" | "gzip_truncated" => assert!(rows.is_err(), "{name}"),
            _ => {}
        }
    }
    let huge = &corpus("csv").into_iter().find(|(n, _)| n == "huge_label").unwrap().1[1..];
    let e = wengert_nn::data::load_labeled_csv_from::<f32>(huge, "huge_label", &Default::default()).unwrap_err();
    assert!(e.to_string().starts_with("huge_label:1: the label 9007199254740992 is not below"), "{e}");
}
