//! The checks behind Mayfly's fuzz targets, one module per decoder, and the
//! builders of their seed corpora.
//!
//! Each target in `fuzz_targets/` is one line that hands libFuzzer's bytes
//! to a module's `run`. The checks live here, in a library, so that they
//! are plain functions: the seed generator (`examples/gen_corpus.rs`) and
//! any regression replay can call them without libFuzzer.
//!
//! What every `run` asserts: the decoder returns (an error is fine) and does
//! not panic; where a value can be encoded, `decode(encode(x)) == x`, for
//! values decoded from the fuzz bytes and for values built from them with
//! [`arbitrary`]. A failed assertion panics, which libFuzzer reports as a
//! crash and saves the input under `fuzz/artifacts/TARGET/`.

pub mod config_file;
pub mod frame;
pub mod handshake;
pub mod json_line;
pub mod seeds;
pub mod snapshot;
pub mod wal_record;

use arbitrary::{Arbitrary, Unstructured};

/// Builds a `T` from the fuzz bytes, or `None` when they run out first:
/// the structured half of a target reads the same bytes as its raw half,
/// so every input exercises both.
pub fn structured<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}
