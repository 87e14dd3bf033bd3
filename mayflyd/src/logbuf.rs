//! Log lines written in batches: the writer behind `tracing` for stderr.
//!
//! The driver logs a few lines per job (the activity log: submitted,
//! queued, started, finished), and a line is one `write(2)` when it goes
//! straight to stderr. Inside [`batch`], lines logged by the calling thread
//! are collected and written together when the closure returns, so a batch
//! of client commands costs one write however many lines it logged. Lines
//! from anywhere else are written at once, after whatever is collected, so
//! the order of lines is kept.
//!
//! Lines collected by a batch are only in memory until it ends; the driver
//! runs one batch per loop turn (microseconds to one `--quantum`), so a
//! crash loses at most that turn's lines, never a line of an earlier turn.

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::Mutex;

use tracing_subscriber::fmt::MakeWriter;

/// Lines collected by the batch running on some thread, not yet written.
static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Above this, collected lines are written even before the batch ends.
const FLUSH_AT: usize = 64 * 1024;

thread_local! {
    /// True on a thread inside [`batch`].
    static BATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, collecting the lines it logs on this thread; writes them in
/// one go when it returns (or unwinds). Nested calls join the outer batch.
pub fn batch<R>(f: impl FnOnce() -> R) -> R {
    if BATCHING.get() {
        return f();
    }
    /// Ends the batch on drop, so a panic inside `f` still writes its lines.
    struct End;
    impl Drop for End {
        fn drop(&mut self) {
            BATCHING.set(false);
            flush();
        }
    }
    BATCHING.set(true);
    let _end = End;
    f()
}

/// Writes whatever batches have collected.
pub fn flush() {
    let mut pending = lock();
    write_out(&mut pending, &[]);
}

/// The pending lines, even if a thread panicked while holding them (they
/// are plain bytes; the worst case is a torn line).
fn lock() -> std::sync::MutexGuard<'static, Vec<u8>> {
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `pending` and then `line` to stderr in one call, and empties
/// `pending`. Errors are dropped: there is nowhere left to report them.
fn write_out(pending: &mut Vec<u8>, line: &[u8]) {
    if pending.is_empty() && line.is_empty() {
        return;
    }
    let mut stderr = io::stderr().lock();
    if pending.is_empty() {
        let _ = stderr.write_all(line);
    } else {
        pending.extend_from_slice(line);
        let _ = stderr.write_all(pending);
        pending.clear();
        // A burst should not pin its buffer for the life of the process.
        pending.shrink_to(FLUSH_AT);
    }
}

/// The [`MakeWriter`] to give `tracing_subscriber::fmt`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchedStderr;

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { line: Vec::new() }
    }
}

/// One formatted event: `tracing_subscriber` writes it in pieces, and it
/// goes out (or into the batch) whole when the writer is dropped.
#[derive(Debug)]
pub struct LineWriter {
    /// The event's bytes so far.
    line: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let mut pending = lock();
        if BATCHING.get() && pending.len() + self.line.len() <= FLUSH_AT {
            pending.extend_from_slice(&self.line);
        } else {
            write_out(&mut pending, &self.line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inside a batch lines wait; `flush` (as the batch's end does) writes
    /// them; outside a batch a line first pushes out what waits.
    #[test]
    fn lines_wait_for_the_end_of_the_batch() {
        // The buffer is process-wide: this is the only test touching it.
        batch(|| {
            let mut w = BatchedStderr.make_writer();
            w.write_all(b"one\n").unwrap();
            drop(w);
            assert!(lock().ends_with(b"one\n"), "collected, not written");
            // Nested batches join the outer one.
            batch(|| {
                let mut w = BatchedStderr.make_writer();
                w.write_all(b"two\n").unwrap();
            });
            assert!(lock().ends_with(b"one\ntwo\n"));
        });
        assert!(lock().is_empty(), "written when the batch ended");

        let caught = std::panic::catch_unwind(|| {
            batch(|| {
                let mut w = BatchedStderr.make_writer();
                w.write_all(b"before a panic\n").unwrap();
                drop(w);
                panic!("inside a batch");
            })
        });
        assert!(caught.is_err());
        assert!(lock().is_empty(), "a panic still ends the batch");
        assert!(!BATCHING.get());

        let mut w = BatchedStderr.make_writer();
        w.write_all(b"direct\n").unwrap();
        drop(w);
        assert!(lock().is_empty());
    }
}
