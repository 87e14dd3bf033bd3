//! Activity reporting: what the activity log tells of each event, and the
//! metrics that move with it, side by side.
//!
//! The activity of a batch is worked out when its events are applied (from
//! the state they leave) and told when the batch's group is released — so
//! the log and the metrics follow what was made durable, never what was
//! attempted (see [`super::commit`]). [`Reporter::tell`] sends one activity
//! to both the activity log ([`Pal`]) and the metrics, neither inside the
//! other.

use std::sync::Arc;
use std::time::Duration;

use mayfly_protocol::{Activity, JobId, JobState};

use crate::core::{Core, Event, StopReason};
use crate::metrics::Metrics;
use crate::pal::Pal;

/// How much of a command the activity log tells (`JobSubmitted`); `status`
/// shows it whole.
const COMMAND_CHARS_TOLD: usize = 1024;

/// The activity log and the metrics, told together.
#[derive(Debug, Default)]
pub struct Reporter {
    /// The activity log.
    pub pal: Pal,
    /// The metrics the activity moves, if the daemon keeps any.
    metrics: Option<Arc<Metrics>>,
}

impl Reporter {
    /// Moves `metrics` with every activity from now on.
    pub fn set_metrics(&mut self, metrics: Arc<Metrics>) {
        self.metrics = Some(metrics);
    }

    /// The metrics, if the daemon keeps any.
    pub fn metrics(&self) -> Option<&Metrics> {
        self.metrics.as_deref()
    }

    /// Tells one activity: to the metrics it moves, and to the log.
    pub fn tell(&mut self, activity: Activity) {
        if let Some(m) = &self.metrics {
            count(m, &activity);
        }
        self.pal.emit(activity);
    }
}

/// Updates the metrics an activity moves.
fn count(m: &Metrics, activity: &Activity) {
    match activity {
        Activity::JobSubmitted { queue, .. } => m.job_submitted(queue),
        Activity::JobStarted {
            queue, waited_ms, ..
        } => m.job_started(queue, Duration::from_millis(*waited_ms)),
        Activity::JobFinished {
            queue,
            state,
            ran_ms,
            usage,
            ..
        } => m.job_finished(queue, *state, ran_ms.map(Duration::from_millis), *usage),
        Activity::CallbackFinished { result, .. } => m.callback_finished(result),
        Activity::SystemTaskStart { name, .. } => m.system_task_up(name, true),
        Activity::SystemTaskExit { name, .. } => m.system_task_up(name, false),
        _ => {}
    }
}

/// What the activity log tells of job `id` reaching `state`, as the core
/// now shows the job (`None` for a state told elsewhere: running is told at
/// spawn, with the pid).
pub fn of_transition(core: &Core, id: JobId, state: JobState) -> Option<Activity> {
    // Borrowed: a submit passes through here twice (waiting, queued), and
    // copying the whole job each time for a few fields is waste.
    let info = core.job_view(id)?;
    Some(match state {
        JobState::Running => return None,
        JobState::Waiting if info.attempts > 0 => Activity::JobRetrying {
            id,
            attempt: info.attempts,
            retry_at: info.retry_at,
            exit_code: info.exit_code,
            signal: info.signal,
        },
        JobState::Waiting => Activity::JobWaiting { id },
        JobState::Queued => Activity::JobQueued { id },
        _ => Activity::JobFinished {
            id,
            ran_ms: info
                .started_at
                .zip(info.finished_at)
                .map(|(start, end)| end.millis_since(start)),
            queue: info.queue.to_owned(),
            state: info.state,
            exit_code: info.exit_code,
            signal: info.signal,
            reason: info.reason.map(str::to_owned),
            usage: info.usage,
        },
    })
}

/// What the activity log tells of an event beyond the state changes it
/// causes (those are [`of_transition`]'s).
pub fn of_event(event: &Event) -> Option<Activity> {
    Some(match event {
        Event::Frozen { id, by, .. } => Activity::JobFrozen { id: *id, by: *by },
        Event::Thawed { id, .. } => Activity::JobThawed { id: *id },
        Event::Submitted { id, spec, .. } => Activity::JobSubmitted {
            id: *id,
            queue: spec.queue.clone(),
            priority: spec.priority,
            command: crate::core::shorten(&spec.command.to_string(), COMMAND_CHARS_TOLD)
                .into_owned(),
        },
        Event::StopRequested {
            id,
            reason,
            grace_ms,
            ..
        } => Activity::JobStopRequested {
            id: *id,
            reason: match reason {
                StopReason::Cancel => "cancel".into(),
                StopReason::Shutdown => "shutdown".into(),
                StopReason::Timeout => "timeout".into(),
            },
            grace_ms: *grace_ms,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use mayfly_protocol::{Command, JobSpec, Timestamp};

    use super::*;
    use crate::core::CoreConfig;

    #[test]
    fn a_submit_tells_the_job_and_the_state_it_lands_in() {
        let mut core = Core::new(CoreConfig::default());
        let spec = JobSpec::new(Command::Shell("true".into()), "/", "default", 50);
        let event = core.decide_submit(Timestamp(1), spec).unwrap();
        core.apply(&event).unwrap();
        let told = of_event(&event).expect("a submit is told");
        assert!(matches!(told, Activity::JobSubmitted { ref command, .. } if command == "true"));
        let transitions = core.take_transitions();
        assert_eq!(transitions, vec![(JobId(1), JobState::Queued)]);
        assert_eq!(
            of_transition(&core, JobId(1), JobState::Queued),
            Some(Activity::JobQueued { id: JobId(1) })
        );
        assert_eq!(of_transition(&core, JobId(1), JobState::Running), None);
        assert_eq!(of_transition(&core, JobId(9), JobState::Queued), None);
    }
}
