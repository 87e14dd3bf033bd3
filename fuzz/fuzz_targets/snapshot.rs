//! Fuzz target `snapshot`: the checks of [`mayfly_fuzz::snapshot`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mayfly_fuzz::snapshot::run(data));
