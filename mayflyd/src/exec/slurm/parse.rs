//! Reading what Slurm's commands print: `squeue` rows, `scontrol show
//! config`, lines of the job completion log, and what a finished Slurm
//! job's state and exit code mean for a Mayfly job. No I/O here: the unit
//! tests feed it text as the real commands print it (Slurm 22.05).

use mayfly_protocol::{JobId, JobState};

use crate::core::ExitOutcome;

/// The fields `squeue` prints for each job, in this order, each followed by
/// `|` (`--Format`, `-O`): a width left empty prints the whole value. The
/// output path comes last, so a `|` in it cannot shift the others.
pub const SQUEUE_FORMAT: &str = "JobID:|,Name:|,State:|,Reason:|,exit_code:|,Comment:|,STDOUT:|";

/// One job as `squeue` printed it ([`SQUEUE_FORMAT`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Slurm's job id.
    pub slurm_id: String,
    /// Its name (`mayfly-ID` for Mayfly's jobs).
    pub name: String,
    /// Its state, e.g. `RUNNING`, `COMPLETED`, `TIMEOUT`.
    pub state: String,
    /// Why it is in that state (`None`, `NonZeroExitCode`, …).
    pub reason: String,
    /// Its wait status as `wait(2)` gives it (exit code `3` is `768`), if
    /// printed as a number.
    pub exit_status: Option<i32>,
    /// Its comment (Mayfly's says which job and attempt it is).
    pub comment: String,
    /// Where its standard output goes.
    pub stdout: String,
}

/// Parses `squeue -h -O SQUEUE_FORMAT` output; lines that do not have the
/// fields are skipped.
pub fn squeue_rows(text: &str) -> Vec<Row> {
    text.lines().filter_map(squeue_row).collect()
}

/// One line of [`squeue_rows`].
fn squeue_row(line: &str) -> Option<Row> {
    let mut fields = line.splitn(7, '|');
    let mut next = || fields.next().map(str::trim);
    let slurm_id = next()?.to_owned();
    let name = next()?.to_owned();
    let state = next()?.to_owned();
    let reason = next()?.to_owned();
    let exit_status = next()?.parse().ok();
    let comment = next()?.to_owned();
    // The rest is the path, and the `|` that ends it.
    let stdout = next()?;
    let stdout = stdout.strip_suffix('|').unwrap_or(stdout).to_owned();
    if slurm_id.is_empty() || !slurm_id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Row {
        slurm_id,
        name,
        state,
        reason,
        exit_status,
        comment,
        stdout,
    })
}

/// The name Mayfly gives the Slurm job of Mayfly job `id`.
pub fn job_name(id: JobId) -> String {
    format!("mayfly-{id}")
}

/// The comment Mayfly gives the Slurm job of attempt `attempt` of job `id`:
/// after a crash, it tells that attempt from an earlier one of the same job.
pub fn job_comment(id: JobId, attempt: u32) -> String {
    format!("mayfly job {id} attempt {attempt}")
}

/// How a Slurm job in `state` with wait status `exit_status` ended, for
/// Mayfly; `None` while it has not (pending, running, suspended, still
/// completing, requeued).
pub fn outcome(state: &str, reason: &str, exit_status: Option<i32>) -> Option<ExitOutcome> {
    let (code, signal) = split_wait_status(exit_status.unwrap_or(0));
    let ended = |state: JobState, why: String| ExitOutcome::Ended {
        state,
        exit_code: code,
        signal,
        reason: why,
    };
    // A state may carry a `+` suffix (`CANCELLED+`) in some outputs.
    let state = state.trim_end_matches('+');
    Some(match state {
        "COMPLETED" => plain_exit(code, signal),
        "FAILED" if code.is_some_and(|c| c != 0) || signal.is_some() => plain_exit(code, signal),
        "FAILED" => ended(
            JobState::Failed,
            format!("Slurm says the job FAILED ({reason})"),
        ),
        "TIMEOUT" => ended(
            JobState::TimedOut,
            "Slurm stopped it at its time limit (TIMEOUT)".into(),
        ),
        "DEADLINE" => ended(
            JobState::TimedOut,
            "Slurm stopped it at its deadline (DEADLINE)".into(),
        ),
        "CANCELLED" => ended(JobState::Cancelled, "cancelled in Slurm (CANCELLED)".into()),
        "NODE_FAIL" | "BOOT_FAIL" | "OUT_OF_MEMORY" | "PREEMPTED" | "REVOKED" | "SPECIAL_EXIT" => {
            ended(
                JobState::Failed,
                format!("Slurm ended it: {state} ({reason})"),
            )
        }
        _ => return None,
    })
}

/// An exit the way a local process's reads: its code, or the signal that
/// killed it.
fn plain_exit(code: Option<i32>, signal: Option<i32>) -> ExitOutcome {
    match (signal, code) {
        (Some(sig), _) => ExitOutcome::Signal(sig),
        (None, code) => ExitOutcome::Code(code.unwrap_or(0)),
    }
}

/// A wait status as `(exit code, signal)`: one of them, as `wait(2)`
/// encodes it (`exit 3` is 768, SIGKILL is 9).
fn split_wait_status(status: i32) -> (Option<i32>, Option<i32>) {
    let signal = status & 0x7f;
    if signal == 0 {
        (Some((status >> 8) & 0xff), None)
    } else {
        (None, Some(signal))
    }
}

/// `code:signal` as `scontrol` and the job completion log print an exit
/// code, as a wait status.
fn wait_status_of(text: &str) -> Option<i32> {
    let (code, signal) = text.split_once(':')?;
    let code: i32 = code.parse().ok()?;
    let signal: i32 = signal.parse().ok()?;
    Some(if signal != 0 {
        signal & 0x7f
    } else {
        (code & 0xff) << 8
    })
}

/// What Mayfly needs of `scontrol show config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The job completion log, when the cluster keeps one as a text file
    /// (`JobCompType=jobcomp/filetxt`).
    pub jobcomp_file: Option<String>,
    /// The uid Slurm's controller runs as (`SlurmUser`), who may suspend
    /// and resume jobs.
    pub slurm_uid: Option<u32>,
}

/// Parses `scontrol show config` (`Key = value` lines).
pub fn cluster_config(text: &str) -> ClusterConfig {
    let mut comp_type = None;
    let mut comp_loc = None;
    let mut slurm_uid = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "JobCompType" => comp_type = Some(value.to_owned()),
            "JobCompLoc" => comp_loc = Some(value.to_owned()),
            // `root(0)`
            "SlurmUser" => {
                slurm_uid = value
                    .split_once('(')
                    .and_then(|(_, uid)| uid.strip_suffix(')'))
                    .and_then(|uid| uid.parse().ok());
            }
            _ => {}
        }
    }
    ClusterConfig {
        jobcomp_file: comp_loc
            .filter(|_| comp_type.as_deref() == Some("jobcomp/filetxt"))
            .filter(|loc| loc.starts_with('/')),
        slurm_uid,
    }
}

/// A job as the job completion log tells its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// Its final state.
    pub state: String,
    /// Its wait status.
    pub exit_status: Option<i32>,
}

/// The end of Slurm job `slurm_id` named `name` in the job completion log
/// `text` (`jobcomp/filetxt`: one line per finished job), if it has one.
/// Its values are not escaped, so a line is read only where nothing a user
/// chose comes before: it must begin `JobId=N `, its `Name=` and
/// `JobState=` come before any free text (the working directory), and the
/// exit code is the last `ExitCode=`. The last matching line wins: after a
/// cluster restart, Slurm ids start again at 1.
pub fn jobcomp_end(text: &str, slurm_id: &str, name: &str) -> Option<Completed> {
    let prefix = format!("JobId={slurm_id} ");
    text.lines()
        .rev()
        .filter_map(|line| line.strip_prefix(&prefix))
        .find_map(|rest| {
            let field = |key: &str| {
                let at = rest.find(key)? + key.len();
                rest[at..].split(' ').next()
            };
            (field(" Name=")? == name).then_some(())?;
            let state = field(" JobState=")?.to_owned();
            let exit = rest
                .rfind(" ExitCode=")
                .map(|at| &rest[at + " ExitCode=".len()..])
                .and_then(|v| v.split(' ').next())
                .and_then(wait_status_of);
            Some(Completed {
                state,
                exit_status: exit,
            })
        })
}

/// The Slurm job id `sbatch --parsable` printed (`ID` or `ID;cluster`).
pub fn sbatch_id(stdout: &str) -> Option<String> {
    let line = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `squeue -h -t all -O SQUEUE_FORMAT` printed for a finished, a
    /// failed, a cancelled and a running job, and one whose output path
    /// holds a `|`.
    const SQUEUE: &str = "\
4|mayfly-3|FAILED|NonZeroExitCode|768|mayfly job 3 attempt 1|/tmp/s/logs/3.out|
5|mayfly-4|CANCELLED|None|15|mayfly job 4 attempt 2|/tmp/s/logs/4.out|
6|mayfly-5|RUNNING|None|0|(null)|/tmp/a|b/5.out|
7|mayfly-6|COMPLETED|None|0|mayfly job 6 attempt 1|/tmp/s/logs/6.out|
8|t-kill|FAILED|JobLaunchFailure|9|(null)|/dev/null|
";

    #[test]
    fn squeue_rows_keep_every_field_and_a_path_with_a_bar() {
        let rows = squeue_rows(SQUEUE);
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[0],
            Row {
                slurm_id: "4".into(),
                name: "mayfly-3".into(),
                state: "FAILED".into(),
                reason: "NonZeroExitCode".into(),
                exit_status: Some(768),
                comment: "mayfly job 3 attempt 1".into(),
                stdout: "/tmp/s/logs/3.out".into(),
            }
        );
        assert_eq!(rows[2].stdout, "/tmp/a|b/5.out");
        assert!(squeue_rows("slurm_load_jobs error: Invalid job id specified\n").is_empty());
        assert!(squeue_rows("x|y|z\n").is_empty());
    }

    #[test]
    fn slurm_states_map_to_mayfly_outcomes() {
        let of = |row: &Row| outcome(&row.state, &row.reason, row.exit_status);
        let rows = squeue_rows(SQUEUE);
        assert_eq!(of(&rows[0]), Some(ExitOutcome::Code(3)));
        assert!(matches!(
            of(&rows[1]),
            Some(ExitOutcome::Ended {
                state: JobState::Cancelled,
                signal: Some(15),
                ..
            })
        ));
        assert_eq!(of(&rows[2]), None, "running");
        assert_eq!(of(&rows[3]), Some(ExitOutcome::Code(0)));
        assert_eq!(of(&rows[4]), Some(ExitOutcome::Signal(9)));
        for live in [
            "PENDING",
            "RUNNING",
            "SUSPENDED",
            "COMPLETING",
            "CONFIGURING",
            "REQUEUED",
            "RESIZING",
            "SIGNALING",
            "STAGE_OUT",
        ] {
            assert_eq!(outcome(live, "None", Some(0)), None, "{live}");
        }
        assert!(matches!(
            outcome("TIMEOUT", "TimeLimit", Some(15)),
            Some(ExitOutcome::Ended {
                state: JobState::TimedOut,
                ..
            })
        ));
        match outcome("NODE_FAIL", "NodeDown", Some(0)) {
            Some(ExitOutcome::Ended { state, reason, .. }) => {
                assert_eq!(state, JobState::Failed);
                assert!(reason.contains("NODE_FAIL"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // FAILED with neither code nor signal says why in the reason.
        assert!(matches!(
            outcome("FAILED", "JobLaunchFailure", Some(0)),
            Some(ExitOutcome::Ended {
                state: JobState::Failed,
                ..
            })
        ));
        assert!(outcome("CANCELLED+", "None", None).is_some());
    }

    #[test]
    fn the_job_completion_log_is_read_from_anchored_fields_and_the_last_line_wins() {
        let log = "\
JobId=2 UserId=root(0) GroupId=root(0) Name=mayfly-1 JobState=COMPLETED Partition=debug TimeLimit=UNLIMITED StartTime=2026-12-04T10:12:35 EndTime=2026-12-04T10:12:36 NodeList=vm NodeCnt=1 ProcCnt=1 WorkDir=/tmp/sx ReservationName= Tres=cpu=1 Account= QOS= WcKey= Cluster=unknown SubmitTime=2026-12-04T10:12:34 EligibleTime=2026-12-04T10:12:34 DerivedExitCode=0:0 ExitCode=0:0 
JobId=4 UserId=root(0) GroupId=root(0) Name=mayfly-3 JobState=FAILED Partition=debug WorkDir=/tmp/x Name=mayfly-9 ExitCode=9:0 DerivedExitCode=0:0 ExitCode=3:0 
JobId=20 UserId=root(0) GroupId=root(0) Name=mayfly-3 JobState=COMPLETED Partition=debug DerivedExitCode=0:0 ExitCode=0:0 
JobId=2 UserId=root(0) GroupId=root(0) Name=other JobState=CANCELLED Partition=debug DerivedExitCode=0:0 ExitCode=0:15 
JobId=4 UserId=root(0) GroupId=root(0) Name=mayfly-3 JobState=TIMEOUT Partition=debug DerivedExitCode=0:0 ExitCode=0:1 
";
        assert_eq!(
            jobcomp_end(log, "2", "mayfly-1"),
            Some(Completed {
                state: "COMPLETED".into(),
                exit_status: Some(0)
            })
        );
        // The last line of job 4 named mayfly-3.
        assert_eq!(
            jobcomp_end(log, "4", "mayfly-3"),
            Some(Completed {
                state: "TIMEOUT".into(),
                exit_status: Some(1)
            })
        );
        let first_only = log.lines().nth(1).unwrap();
        let end = jobcomp_end(first_only, "4", "mayfly-3").unwrap();
        assert_eq!(end.exit_status, Some(3 << 8), "the last ExitCode=");
        // A name in the working directory does not count.
        assert_eq!(jobcomp_end(first_only, "4", "mayfly-9"), None);
        assert_eq!(jobcomp_end(log, "2", "mayfly-2"), None);
        assert_eq!(jobcomp_end(log, "3", "mayfly-3"), None);
        assert_eq!(
            outcome(
                "COMPLETED",
                "",
                jobcomp_end(log, "20", "mayfly-3").unwrap().exit_status
            ),
            Some(ExitOutcome::Code(0))
        );
    }

    #[test]
    fn cluster_config_finds_the_completion_log_and_the_slurm_user() {
        let text = "Configuration data as of 2026-12-04T10:13:20\n\
                    JobCompHost             = localhost\n\
                    JobCompLoc              = /tmp/mayfly-slurm/jobcomp.log\n\
                    JobCompType             = jobcomp/filetxt\n\
                    SlurmUser               = slurm(64030)\n";
        assert_eq!(
            cluster_config(text),
            ClusterConfig {
                jobcomp_file: Some("/tmp/mayfly-slurm/jobcomp.log".into()),
                slurm_uid: Some(64030),
            }
        );
        let elsewhere = "JobCompLoc = /var/log/x\nJobCompType = jobcomp/elasticsearch\n";
        assert_eq!(cluster_config(elsewhere).jobcomp_file, None);
    }

    #[test]
    fn sbatch_prints_the_id_alone_or_with_the_cluster() {
        assert_eq!(sbatch_id("42\n").as_deref(), Some("42"));
        assert_eq!(sbatch_id("42;mayfly\n").as_deref(), Some("42"));
        assert_eq!(sbatch_id("Submitted batch job 42\n"), None);
        assert_eq!(sbatch_id(""), None);
    }

    #[test]
    fn wait_statuses_split_into_a_code_or_a_signal() {
        assert_eq!(split_wait_status(768), (Some(3), None));
        assert_eq!(split_wait_status(9), (None, Some(9)));
        assert_eq!(split_wait_status(0), (Some(0), None));
        assert_eq!(wait_status_of("3:0"), Some(768));
        assert_eq!(wait_status_of("0:9"), Some(9));
        assert_eq!(wait_status_of("x"), None);
    }
}
