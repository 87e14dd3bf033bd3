//! What `sbatch` is given for one attempt: its arguments, the environment
//! it passes on, and the small batch script that runs the job's command.
//! Pure functions, tested without Slurm; the executor runs them.
//!
//! The job's command never goes through a shell's quoting. Each argument
//! is an argument of the batch script, and `sbatch` hands those over as
//! they are — but for one: it drops an argument that is exactly `:` (its
//! separator of heterogeneous jobs), wherever it stands. So every argument
//! goes behind one `=`, which the script takes off again.
//!
//! The environment is the one the client captured, not the daemon's: it
//! goes to `sbatch --export-file` on its standard input (one `NAME=value`
//! after another, each ended by a NUL byte, so any value passes), and
//! `--export=ALL` then adds nothing of `sbatch`'s own environment but the
//! `SLURM_*` variables.

use std::ffi::OsString;
use std::path::Path;

use mayfly_protocol::{Command, JobId, JobSpec, LogStream};

use super::parse::{job_comment, job_name};
use crate::exec::log_path;

/// The batch script every Mayfly job runs as: its first argument is the
/// working directory the job must run in, the rest its command, each
/// behind one `=`. Slurm falls back to `/tmp` when it cannot enter the
/// directory `--chdir` names; the script refuses to run there instead.
pub const LAUNCHER: &str = r#"#!/bin/sh
# Written by mayflyd: runs one Mayfly job under Slurm (docs/slurm.md).
# $1 is the job's working directory, the rest its command; each argument
# comes behind one "=" (sbatch would drop an argument that is just ":").
if ! [ . -ef "${1#=}" ]; then
    echo "mayfly: cannot run in ${1#=}: no such directory on $(uname -n)" >&2
    exit 1
fi
shift
for __mayfly_arg do
    shift
    set -- "$@" "${__mayfly_arg#=}"
done
unset __mayfly_arg
exec "$@"
"#;

/// `sbatch` options that the queue's extra arguments may not give: Mayfly
/// sets them itself (the job's name, output, directory, environment), or
/// they would make a submission Mayfly cannot follow (an array, a wait, a
/// test run, a wrapped command).
const RESERVED_LONG: &[&str] = &[
    "array",
    "chdir",
    "comment",
    "error",
    "export",
    "export-file",
    "input",
    "job-name",
    "open-mode",
    "output",
    "parsable",
    "test-only",
    "wait",
    "wrap",
];

/// The short forms of [`RESERVED_LONG`].
const RESERVED_SHORT: &[char] = &['a', 'D', 'e', 'i', 'J', 'o', 'W'];

/// Checks a queue's extra `sbatch` arguments; the error names the first
/// one Mayfly cannot allow and says why.
pub fn check_args(args: &[String]) -> Result<(), String> {
    for arg in args {
        let reserved = if let Some(long) = arg.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or_default();
            // sbatch takes any unambiguous prefix of a long option.
            name.len() >= 3 && RESERVED_LONG.iter().any(|r| r.starts_with(name))
        } else if let Some(short) = arg.strip_prefix('-') {
            short
                .chars()
                .next()
                .is_some_and(|c| RESERVED_SHORT.contains(&c))
        } else {
            false
        };
        if reserved {
            return Err(format!(
                "--slurm-arg {arg:?}: Mayfly sets the job's name, comment, output and error \
                 files, working directory and environment itself, and cannot follow arrays, \
                 --wait, --test-only or --wrap; leave it out"
            ));
        }
        if arg.contains('\0') {
            return Err("--slurm-arg: an argument holds a NUL byte".into());
        }
    }
    Ok(())
}

/// `--time` for a job with a timeout of `timeout_ms`: whole minutes (what
/// Slurm keeps), rounded up, so that Slurm's limit never comes before
/// Mayfly's own.
pub fn time_limit(timeout_ms: u64) -> String {
    let minutes = timeout_ms.div_ceil(60_000).max(1);
    format!("--time={minutes}")
}

/// What one attempt's submission needs besides the job's spec.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The job.
    pub id: JobId,
    /// Which attempt, from 1.
    pub attempt: u32,
    /// The queue's partition, if it names one.
    pub partition: Option<&'a str>,
    /// The queue's extra `sbatch` arguments.
    pub extra: &'a [String],
    /// Where job output files live (absolute: Slurm opens them on the node).
    pub logs_dir: &'a Path,
    /// The batch script ([`LAUNCHER`]), written under the state dir.
    pub launcher: &'a Path,
}

/// The arguments of `sbatch` for `spec`: the job's timeout, the queue's
/// partition and extra arguments (which may override the timeout's
/// `--time`), then what Mayfly relies on, then the script and the job's
/// directory and command.
pub fn sbatch_args(spec: &JobSpec, at: &Attempt<'_>) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--parsable".into()];
    if let Some(ms) = spec.timeout_ms {
        args.push(time_limit(ms).into());
    }
    if let Some(p) = at.partition {
        args.push(format!("--partition={p}").into());
    }
    args.extend(at.extra.iter().map(OsString::from));
    let file = |stream| {
        let mut arg = OsString::from(match stream {
            LogStream::Stdout => "--output=",
            LogStream::Stderr => "--error=",
        });
        arg.push(log_path(at.logs_dir, at.id, stream));
        arg
    };
    args.extend([
        format!("--job-name={}", job_name(at.id)).into(),
        format!("--comment={}", job_comment(at.id, at.attempt)).into(),
        file(LogStream::Stdout),
        file(LogStream::Stderr),
        "--open-mode=append".into(),
        format!("--chdir={}", spec.cwd).into(),
        "--export=ALL".into(),
        "--export-file=/dev/stdin".into(),
        at.launcher.as_os_str().to_owned(),
        format!("={}", spec.cwd).into(),
    ]);
    let argv: Vec<&str> = match &spec.command {
        Command::Argv(argv) => argv.iter().map(String::as_str).collect(),
        Command::Shell(script) => vec!["/bin/sh", "-c", script],
    };
    args.extend(argv.into_iter().map(|a| OsString::from(format!("={a}"))));
    args
}

/// The job's environment for `--export-file`: its captured variables, then
/// `MAYFLY_JOB_ID` and `MAYFLY_SOCKET`, each `NAME=value` ended by a NUL.
/// A name that is empty or holds `=` cannot be passed and is left out.
pub fn env_file(spec: &JobSpec, id: JobId, socket: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    let mut put = |name: &str, value: &[u8]| {
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value);
        out.push(0);
    };
    for (name, value) in &spec.env {
        if name.is_empty()
            || name.contains('=')
            || name == "MAYFLY_JOB_ID"
            || name == "MAYFLY_SOCKET"
        {
            continue;
        }
        put(name, value.as_bytes());
    }
    put("MAYFLY_JOB_ID", id.to_string().as_bytes());
    put("MAYFLY_SOCKET", socket.as_os_str().as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attempt of job 7 with a partition and one extra argument.
    fn attempt<'a>(extra: &'a [String], logs: &'a Path, launcher: &'a Path) -> Attempt<'a> {
        Attempt {
            id: JobId(7),
            attempt: 2,
            partition: Some("batch"),
            extra,
            logs_dir: logs,
            launcher,
        }
    }

    #[test]
    fn sbatch_gets_the_job_s_arguments_each_behind_one_equals_sign() {
        let argv: Vec<String> = ["prog", ":", "", "--x", "a b", "=y", "$HOME"]
            .map(String::from)
            .to_vec();
        let mut spec = JobSpec::new(Command::Argv(argv.try_into().unwrap()), "/w d", "hpc", 50);
        spec.timeout_ms = Some(61_000);
        let extra = vec!["--mem=1G".to_string()];
        let (logs, launcher) = (Path::new("/s/logs"), Path::new("/s/slurm/launch"));
        let args = sbatch_args(&spec, &attempt(&extra, logs, launcher));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "--parsable",
                "--time=2",
                "--partition=batch",
                "--mem=1G",
                "--job-name=mayfly-7",
                "--comment=mayfly job 7 attempt 2",
                "--output=/s/logs/7.out",
                "--error=/s/logs/7.err",
                "--open-mode=append",
                "--chdir=/w d",
                "--export=ALL",
                "--export-file=/dev/stdin",
                "/s/slurm/launch",
                "=/w d",
                "=prog",
                "=:",
                "=",
                "=--x",
                "=a b",
                "==y",
                "=$HOME",
            ]
        );
        let shell = JobSpec::new(Command::Shell("echo $x | wc".into()), "/w", "hpc", 50);
        let args = sbatch_args(&shell, &attempt(&[], logs, launcher));
        let tail: Vec<&str> = args[args.len() - 3..]
            .iter()
            .map(|a| a.to_str().unwrap())
            .collect();
        assert_eq!(tail, ["=/bin/sh", "=-c", "=echo $x | wc"]);
        assert!(
            !args
                .iter()
                .any(|a| a.to_str().unwrap().starts_with("--time"))
        );
    }

    #[test]
    fn the_launcher_runs_every_argument_as_it_was_given_in_the_named_directory() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("launch");
        std::fs::write(&script, LAUNCHER).unwrap();
        let run = |cwd: &Path, args: &[&str]| {
            std::process::Command::new("/bin/sh")
                .arg(&script)
                .args(args)
                .current_dir(cwd)
                .output()
                .unwrap()
        };
        let cwd = dir.path().to_str().unwrap();
        let out = run(
            dir.path(),
            &[
                &format!("={cwd}"),
                "=printf",
                "=[%s]",
                "=:",
                "=",
                "=a b",
                "==x",
                "=--",
            ],
        );
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "[:][][a b][=x][--]");
        // Not in the directory it names: refuses, saying so.
        let out = run(Path::new("/"), &[&format!("={cwd}"), "=true"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cannot run in"),
            "{out:?}"
        );
    }

    #[test]
    fn the_environment_file_holds_any_value_and_mayfly_s_own_variables_last() {
        let mut spec = JobSpec::new(
            Command::Argv(mayfly_protocol::Argv::new("true", [])),
            "/",
            "hpc",
            50,
        );
        spec.env = vec![
            ("A".into(), "x,y=z\nnext".into()),
            ("MAYFLY_JOB_ID".into(), "spoof".into()),
            ("BAD=NAME".into(), "v".into()),
            (String::new(), "v".into()),
        ];
        let file = env_file(&spec, JobId(9), Path::new("/run/m.sock"));
        assert_eq!(
            file,
            b"A=x,y=z\nnext\0MAYFLY_JOB_ID=9\0MAYFLY_SOCKET=/run/m.sock\0".to_vec()
        );
    }

    #[test]
    fn reserved_sbatch_options_are_refused_in_any_spelling() {
        for bad in [
            "--job-name=x",
            "--job",
            "-J",
            "-Jx",
            "--output=/x",
            "-o",
            "--array=1-3",
            "--wrap=true",
            "--export=NONE",
            "--export-file=/x",
            "--chdir=/",
            "--wait",
            "--test-only",
            "--comment=x",
            "--parsable",
        ] {
            assert!(check_args(&[bad.to_string()]).is_err(), "{bad}");
        }
        let good: Vec<String> = [
            "--mem=1G",
            "--time=10",
            "-t",
            "5",
            "--qos=low",
            "--wait-all-nodes=1",
            "--account=x",
            "-N",
            "2",
            "--exclusive",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(check_args(&good), Ok(()));
    }

    #[test]
    fn time_limits_are_whole_minutes_rounded_up() {
        assert_eq!(time_limit(1), "--time=1");
        assert_eq!(time_limit(60_000), "--time=1");
        assert_eq!(time_limit(60_001), "--time=2");
        assert_eq!(time_limit(3_600_000), "--time=60");
    }
}
