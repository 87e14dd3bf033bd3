//! Fuzz target `frame`: the checks of [`mayfly_fuzz::frame`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mayfly_fuzz::frame::run(data));
