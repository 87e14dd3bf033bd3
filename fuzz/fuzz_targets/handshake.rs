//! Fuzz target `handshake`: the checks of [`mayfly_fuzz::handshake`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mayfly_fuzz::handshake::run(data));
