//! Fuzzes the safetensors loader: see `wengert_fuzz::check_safetensors`.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| wengert_fuzz::check_safetensors(bytes));
