//! Fuzz target `json_line`: the checks of [`mayfly_fuzz::json_line`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mayfly_fuzz::json_line::run(data));
