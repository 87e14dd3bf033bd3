//! A short CPU time slice for the daemon's latency-critical threads.
//!
//! The daemon mostly sleeps, then has a little to do at once: reap a job,
//! start the next, answer a client, fsync the log. When the jobs keep every
//! core busy, a woken thread waits for a core, and with the kernel's default
//! slice (about a millisecond and a half on a two-core machine) a running
//! job keeps its core until that slice is used up. A job slot then stays
//! empty that long after its job ended (`bench/RESULTS.md`, "End to end at
//! the floor").
//!
//! Linux 6.12 and later let a thread of the normal policy ask for a shorter
//! slice (`sched_setattr` with `sched_runtime`, no privilege needed): its
//! virtual deadline comes sooner, so when it wakes it preempts a job that
//! has run a while. It still gets no more CPU than its fair share. Threads
//! that ask for it set `SCHED_FLAG_RESET_ON_FORK` too, so the jobs, finish
//! callbacks and `sbatch` processes they start get the default slice (and,
//! if the daemon runs at a negative nice value, nice 0), as they would from
//! any shell. On older kernels the call fails or the value is ignored, and
//! nothing changes.

/// The slice asked for: the shortest the kernel allows.
const SLICE_NS: u64 = 100_000;

/// Asks for a short slice for the calling thread (see the module
/// documentation). Best effort: a kernel that refuses leaves the thread as
/// it was.
#[allow(unsafe_code)]
pub fn shorten_for_this_thread() {
    use nix::libc;
    // SAFETY: all zeros is a valid `sched_attr` (a struct of integers).
    let mut attr: libc::sched_attr = unsafe { std::mem::zeroed() };
    attr.size = u32::try_from(std::mem::size_of::<libc::sched_attr>()).unwrap_or(0);
    attr.sched_policy = u32::try_from(libc::SCHED_OTHER).unwrap_or(0);
    attr.sched_flags = SCHED_FLAG_RESET_ON_FORK;
    attr.sched_nice = current_nice();
    attr.sched_runtime = SLICE_NS;
    // SAFETY: sched_setattr reads `attr.size` bytes from the pointer, which
    // points to a live `sched_attr` of exactly that size; pid 0 is the
    // calling thread. No safe binding offers it (nix and rustix do not).
    let done =
        unsafe { libc::syscall(libc::SYS_sched_setattr, 0, std::ptr::from_mut(&mut attr), 0) };
    if done != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "the kernel keeps its default time slice for this thread"
        );
    }
}

/// `SCHED_FLAG_RESET_ON_FORK` (linux/sched.h).
const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;

/// The calling thread's nice value, which `sched_setattr` would otherwise
/// set to 0.
fn current_nice() -> i32 {
    // getpriority returns -1 both for nice -1 and for an error: clear errno
    // first to tell them apart.
    nix::errno::Errno::clear();
    // SAFETY: getpriority has no memory arguments; `who` 0 is this thread
    // (Linux keeps nice values per thread).
    #[allow(unsafe_code)]
    let nice = unsafe { nix::libc::getpriority(nix::libc::PRIO_PROCESS, 0) };
    if nice == -1 && nix::errno::Errno::last_raw() != 0 {
        return 0;
    }
    nice
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `se.slice` line of a `sched` file of /proc, in nanoseconds
    /// (kernels without it, or without the file, give `None`).
    fn slice_in(sched: &str) -> Option<u64> {
        sched
            .lines()
            .find(|l| l.starts_with("se.slice"))?
            .split(':')
            .nth(1)?
            .trim()
            .parse()
            .ok()
    }

    #[test]
    fn a_thread_gets_the_short_slice_and_what_it_starts_the_default_one() {
        std::thread::spawn(|| {
            let nice = current_nice();
            let own = || std::fs::read_to_string("/proc/thread-self/sched").ok();
            let default = own().as_deref().and_then(slice_in);
            shorten_for_this_thread();
            assert_eq!(current_nice(), nice, "the nice value is kept");
            let Some(mine) = own().as_deref().and_then(slice_in) else {
                return; // no scheduler details in /proc here
            };
            if mine != SLICE_NS {
                // A kernel without custom slices: nothing changed.
                assert_eq!(Some(mine), default);
                return;
            }
            let child = std::process::Command::new("/bin/cat")
                .arg("/proc/self/sched")
                .output()
                .expect("cat runs");
            let childs = slice_in(&String::from_utf8_lossy(&child.stdout));
            assert!(childs.is_some_and(|s| s != SLICE_NS), "{childs:?}");
        })
        .join()
        .expect("the test thread");
    }
}
