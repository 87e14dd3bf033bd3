//! Checks of what clients send, before anything is decided: the fields of
//! a spec, queue names, lists of ids, and the limits on what one job may
//! hold. Also how errors and the activity log quote a client's text (a
//! little of it, never all).

use mayfly_protocol::{JobId, JobSpec, MAX_USER_PRIORITY, MIN_USER_PRIORITY, SpecExt};

use super::{Core, CoreError};

/// Checks a queue name: 1–64 printable characters.
pub(super) fn validate_queue_name(name: &str) -> Result<(), CoreError> {
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(CoreError::BadRequest(format!(
            "invalid queue name {}: use 1-64 printable characters",
            excerpt(name)
        )));
    }
    Ok(())
}

/// How much of a client's text an error message or a log line quotes.
const EXCERPT_CHARS: usize = 64;

/// `text` quoted for an error message or a log line: whole if short, else
/// its start and its length, so a 10 MB name never makes a 10 MB message.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// `text` cut to at most `max_chars` characters, the cut marked with the
/// whole text's length: what the activity log shows of a command, so a
/// 10 MB command line never makes a 10 MB log line.
pub fn shorten(text: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => std::borrow::Cow::Borrowed(text),
        Some((cut, _)) => {
            std::borrow::Cow::Owned(format!("{}… ({} bytes)", &text[..cut], text.len()))
        }
    }
}

/// Checks label keys: non-empty and printable (a newline in a key would
/// break every table and every `key=value` listing).
pub(super) fn validate_labels(labels: &[(String, String)]) -> Result<(), CoreError> {
    for (key, _) in labels {
        if key.is_empty() || key.chars().any(char::is_control) {
            return Err(CoreError::BadRequest(format!(
                "label key {} is not valid: use printable characters, at least one",
                excerpt(key)
            )));
        }
    }
    Ok(())
}

/// The bytes a job's command and environment take when its program is
/// started: each word and each `KEY=VALUE` with its terminating NUL, as the
/// kernel counts them against its limit on a new program's arguments.
pub(super) fn job_bytes(spec: &JobSpec) -> u64 {
    let words: usize = match &spec.command {
        mayfly_protocol::Command::Argv(argv) => argv.iter().map(|w| w.len() + 1).sum(),
        mayfly_protocol::Command::Shell(line) => line.len() + 1,
    };
    let env: usize = spec.env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    // The finish callback starts with the same environment.
    let callback = spec.on_finish().map_or(0, |line| line.len() + 1);
    u64::try_from(words + env + callback).unwrap_or(u64::MAX)
}

/// Refuses a list of job ids that names a job more than once: `restart 1 1`
/// would make two copies, and a status request repeating one id a million
/// times would answer with a million copies of the job.
pub fn refuse_duplicates(ids: &[JobId]) -> Result<(), CoreError> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    match ids.iter().find(|id| !seen.insert(**id)) {
        Some(id) => Err(CoreError::BadRequest(format!(
            "job {id} is named more than once; name each job once"
        ))),
        None => Ok(()),
    }
}

/// The refusal of a priority outside the user range.
pub(super) fn priority_error(priority: u8) -> CoreError {
    CoreError::BadRequest(format!(
        "priority {priority} is out of range: user jobs take {MIN_USER_PRIORITY}-{MAX_USER_PRIORITY} (lower runs first; 0 is reserved for system tasks)"
    ))
}

impl Core {
    /// Checks the fields of one spec.
    pub(super) fn validate_spec(&self, spec: &JobSpec) -> Result<(), CoreError> {
        if !(MIN_USER_PRIORITY..=MAX_USER_PRIORITY).contains(&spec.priority) {
            return Err(priority_error(spec.priority));
        }
        match &spec.command {
            mayfly_protocol::Command::Argv(argv) if argv.program().is_empty() => {
                return Err(CoreError::BadRequest(
                    "empty command: give the program to run after `--`".into(),
                ));
            }
            mayfly_protocol::Command::Shell(s) if s.trim().is_empty() => {
                return Err(CoreError::BadRequest(
                    "empty shell command: give the command string after `--`".into(),
                ));
            }
            _ => {}
        }
        match &spec.command {
            mayfly_protocol::Command::Argv(argv) => {
                if let Some(n) = argv.iter().position(|word| word.contains('\0')) {
                    return Err(CoreError::BadRequest(format!(
                        "word {} of the command contains a NUL byte, which no program can be given",
                        n + 1
                    )));
                }
            }
            mayfly_protocol::Command::Shell(line) if line.contains('\0') => {
                return Err(CoreError::BadRequest(
                    "the shell command contains a NUL byte, which sh cannot be given".into(),
                ));
            }
            mayfly_protocol::Command::Shell(_) => {}
        }
        validate_queue_name(&spec.queue)?;
        if !spec.cwd.starts_with('/') || spec.cwd.contains('\0') {
            return Err(CoreError::BadRequest(format!(
                "working directory {} is not an absolute path",
                excerpt(&spec.cwd)
            )));
        }
        for (key, value) in &spec.env {
            if key.is_empty() || key.contains(['=', '\0']) {
                return Err(CoreError::BadRequest(format!(
                    "environment variable name {} is not valid: it must be non-empty, without '=' or NUL",
                    excerpt(key)
                )));
            }
            if value.contains('\0') {
                return Err(CoreError::BadRequest(format!(
                    "environment variable {} has a NUL byte in its value, which no program can be given",
                    excerpt(key)
                )));
            }
        }
        validate_labels(&spec.labels)?;
        let mut kinds = Vec::with_capacity(spec.ext.len());
        for ext in &spec.ext {
            if kinds.contains(&ext.kind()) {
                return Err(CoreError::BadRequest(format!(
                    "the job sets {} twice; set it once",
                    ext.kind()
                )));
            }
            kinds.push(ext.kind());
            if let SpecExt::OnFinish(line) = ext {
                if line.trim().is_empty() {
                    return Err(CoreError::BadRequest(
                        "the finish callback is empty; give a shell command to run when the job ends"
                            .into(),
                    ));
                }
                if line.contains('\0') {
                    return Err(CoreError::BadRequest(
                        "the finish callback has a NUL byte, which no shell can be given".into(),
                    ));
                }
            }
        }
        let bytes = job_bytes(spec);
        if bytes > self.config.max_job_bytes {
            return Err(CoreError::Limit(format!(
                "the job's command and environment take {bytes} bytes, more than the {} \
                 (--max-job-bytes) a job may; pass large data in a file instead",
                mayfly_protocol::format_size(self.config.max_job_bytes)
            )));
        }
        if spec.timeout_ms == Some(0) {
            return Err(CoreError::BadRequest(
                "a timeout of 0 would stop the job at once; give a positive duration".into(),
            ));
        }
        Ok(())
    }
}
