//! Fuzzes the CSV readers: see `wengert_fuzz::check_csv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| wengert_fuzz::check_csv(bytes));
