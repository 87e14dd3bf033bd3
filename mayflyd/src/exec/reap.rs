//! Waiting for a job's process to end, and learning what it used.
//!
//! The standard library and tokio reap a child with `waitpid`, which tells
//! how it ended but not what it used. `wait4` tells both: the CPU time of
//! the process and of every descendant it waited for, and the peak resident
//! memory of the largest of them. Descendants that outlive the job's
//! process, or that it never waited for, are not counted: that would take a
//! cgroup per job.
//!
//! The wait itself is a pidfd (Linux 5.3 and later), which becomes readable
//! when the process exits, so no thread blocks per running job; only then
//! is the process reaped, by [`wait`] alone. The caller holds the child as a
//! `std::process::Child`, which never reaps on its own, so no one else can
//! take the exit status (or, after the pid is reused, another job's).

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use mayfly_protocol::Usage;
use nix::libc;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Waits for the child `pid` of this process to exit, reaps it, and says
/// how it ended and what it used.
#[allow(unsafe_code)]
pub async fn wait(pid: u32) -> io::Result<(ExitStatus, Usage)> {
    let raw = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap_or(0))
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    match rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::NONBLOCK) {
        Ok(fd) => {
            // SAFETY: an `OwnedFd` is open until it is dropped and always
            // gives the same descriptor; the `AsyncFd` owns it from here.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
            loop {
                let mut ready = fd.readable().await?;
                if let Some(done) = wait4(pid, true)? {
                    return Ok(done);
                }
                ready.clear_ready();
            }
        }
        // No pidfd (an old kernel, a seccomp filter): a blocking thread
        // waits instead.
        Err(_) => tokio::task::spawn_blocking(move || wait4(pid, false))
            .await
            .map_err(io::Error::other)?
            .and_then(|done| done.ok_or_else(|| io::Error::other("wait4 returned no status"))),
    }
}

/// `wait4(pid)`: `None` when `nohang` and it has not exited yet.
#[allow(unsafe_code)]
fn wait4(pid: u32, nohang: bool) -> io::Result<Option<(ExitStatus, Usage)>> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a struct of integers, for which all zeros is a
    // valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes one c_int through the first pointer and one
        // rusage through the second; both point to live, writable locals of
        // those types for the whole call. No safe binding offers the rusage
        // (nix and rustix wrap waitpid and waitid only).
        let reaped = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        match reaped {
            0 => return Ok(None),
            -1 => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
            _ => break,
        }
    }
    Ok(Some((ExitStatus::from_raw(status), usage_of(&usage))))
}

/// The figures of a `rusage`.
fn usage_of(usage: &libc::rusage) -> Usage {
    Usage {
        cpu_user_ms: millis(&usage.ru_utime),
        cpu_sys_ms: millis(&usage.ru_stime),
        // Linux counts it in KiB.
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
    }
}

/// A `timeval` in whole milliseconds.
fn millis(tv: &libc::timeval) -> u64 {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u64::try_from(tv.tv_usec).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(micros / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that burns CPU and touches memory is reaped with its exit
    /// status and figures that show both.
    #[tokio::test]
    #[allow(clippy::zombie_processes)] // `wait` reaps it, not `Child::wait`.
    async fn a_child_is_reaped_with_what_it_used() {
        // 64 MiB touched by a shell's own arithmetic loop would be slow;
        // `head -c | tail -c` holds the bytes in tail's memory.
        let child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; head -c 67108864 /dev/zero | tail -c 67108864 >/dev/null; exit 3")
            .spawn()
            .expect("sh starts");
        let (status, usage) = wait(child.id()).await.expect("reaped");
        assert_eq!(status.code(), Some(3));
        assert!(usage.cpu_user_ms + usage.cpu_sys_ms >= 50, "{usage:?}");
        assert!(usage.max_rss_kib >= 60_000, "{usage:?}");
        // Reaped: there is nothing left to wait for.
        assert!(wait4(child.id(), true).is_err());
    }
}
