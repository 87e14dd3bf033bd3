//! Fuzz target `wal_record`: the checks of [`mayfly_fuzz::wal_record`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mayfly_fuzz::wal_record::run(data));
