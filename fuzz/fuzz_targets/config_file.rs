//! Fuzz target `config_file`: the checks of [`mayfly_fuzz::config_file`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mayfly_fuzz::config_file::run(data));
