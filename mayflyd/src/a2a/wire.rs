//! The A2A 1.0 wire types this daemon reads and writes, in the JSON the
//! protocol's JSON-RPC binding uses (ProtoJSON of the specification's
//! `a2a.proto`: camelCase fields, enums as their `SCREAMING_SNAKE` names,
//! timestamps as RFC 3339 text).
//!
//! Written here rather than taken from a crate. There is no official Rust
//! SDK; the community crates that follow 1.0 (`a2a-lf` at 0.4, for one)
//! change their API from one minor release to the next, bring `chrono`,
//! `uuid` and `base64` along for a dozen structs, and make fields required
//! that ProtoJSON leaves out when empty (a task's `contextId`, a message's
//! `role`), so a conforming agent's answer could fail to parse. Here every
//! field is optional on the way in (`#[serde(default)]`: a missing field is
//! its empty value, as ProtoJSON means it) and unknown fields are ignored,
//! as the specification asks; what a field must hold is checked where it is
//! used, with an error that names it. The end-to-end tests hold these types
//! to the official Python SDK, in both directions.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version this daemon speaks (the `A2A-Version` header, the
/// agent card's interface).
pub const PROTOCOL_VERSION: &str = "1.0";

/// The header that carries the protocol version of a request.
pub const VERSION_HEADER: &str = "a2a-version";

/// A task's state (`TaskState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TaskState {
    /// Accepted, not yet running.
    #[serde(rename = "TASK_STATE_SUBMITTED")]
    Submitted,
    /// Running.
    #[serde(rename = "TASK_STATE_WORKING")]
    Working,
    /// Ended well.
    #[serde(rename = "TASK_STATE_COMPLETED")]
    Completed,
    /// Ended badly.
    #[serde(rename = "TASK_STATE_FAILED")]
    Failed,
    /// Cancelled.
    #[serde(rename = "TASK_STATE_CANCELED")]
    Canceled,
    /// Waits for the client.
    #[serde(rename = "TASK_STATE_INPUT_REQUIRED")]
    InputRequired,
    /// The agent would not do it.
    #[serde(rename = "TASK_STATE_REJECTED")]
    Rejected,
    /// Waits for the client's credentials.
    #[serde(rename = "TASK_STATE_AUTH_REQUIRED")]
    AuthRequired,
    /// Not set (or a name this daemon does not know).
    #[default]
    #[serde(rename = "TASK_STATE_UNSPECIFIED", other)]
    Unspecified,
}

impl TaskState {
    /// True for the states a task never leaves.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::Canceled | TaskState::Rejected
        )
    }

    /// True for the states where the agent waits for the client: a
    /// blocking `SendMessage` answers in them too.
    pub fn is_interrupted(self) -> bool {
        matches!(self, TaskState::InputRequired | TaskState::AuthRequired)
    }

    /// The state's wire name.
    pub fn name(self) -> &'static str {
        match self {
            TaskState::Unspecified => "TASK_STATE_UNSPECIFIED",
            TaskState::Submitted => "TASK_STATE_SUBMITTED",
            TaskState::Working => "TASK_STATE_WORKING",
            TaskState::Completed => "TASK_STATE_COMPLETED",
            TaskState::Failed => "TASK_STATE_FAILED",
            TaskState::Canceled => "TASK_STATE_CANCELED",
            TaskState::InputRequired => "TASK_STATE_INPUT_REQUIRED",
            TaskState::Rejected => "TASK_STATE_REJECTED",
            TaskState::AuthRequired => "TASK_STATE_AUTH_REQUIRED",
        }
    }
}

/// Who sent a message (`Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Role {
    /// The client.
    #[serde(rename = "ROLE_USER")]
    User,
    /// The agent.
    #[serde(rename = "ROLE_AGENT")]
    Agent,
    /// Not set (or a name this daemon does not know).
    #[default]
    #[serde(rename = "ROLE_UNSPECIFIED", other)]
    Unspecified,
}

/// One piece of a message or an artifact (`Part`): exactly one of `text`,
/// `raw`, `url` and `data` is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Part {
    /// Text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Bytes, base64 (not read by this daemon).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// A link to the content (not read by this daemon).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Structured data: any JSON value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Extra fields for extensions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// A file name for the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The content's media type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

impl Part {
    /// A text part of media type `text/plain`.
    pub fn text(text: String) -> Self {
        Self {
            text: Some(text),
            media_type: Some("text/plain".into()),
            ..Self::default()
        }
    }

    /// A data part of media type `application/json`.
    pub fn data(data: Value) -> Self {
        Self {
            data: Some(data),
            media_type: Some("application/json".into()),
            ..Self::default()
        }
    }
}

/// A message (`Message`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Message {
    /// The sender's id for it.
    pub message_id: String,
    /// The conversation it belongs to.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub context_id: String,
    /// The task it continues.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    /// Who sent it.
    pub role: Role,
    /// What it says.
    pub parts: Vec<Part>,
    /// Extra fields for extensions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// Where a task stands (`TaskStatus`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskStatus {
    /// The state.
    pub state: TaskState,
    /// A word from the agent about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// When the task reached it (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// Something a task produced (`Artifact`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Artifact {
    /// Its id within the task.
    pub artifact_id: String,
    /// Its name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// What it is.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Its content.
    pub parts: Vec<Part>,
    /// Extra fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// A task (`Task`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Task {
    /// Its id.
    pub id: String,
    /// The conversation it belongs to.
    pub context_id: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// What it produced (left out when there is nothing to say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<Artifact>>,
    /// Extra fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// A status change, in a stream or a push notification
/// (`TaskStatusUpdateEvent`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskStatusUpdateEvent {
    /// The task.
    pub task_id: String,
    /// Its conversation.
    pub context_id: String,
    /// Its new status.
    pub status: TaskStatus,
}

/// An artifact, in a stream (`TaskArtifactUpdateEvent`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskArtifactUpdateEvent {
    /// The task.
    pub task_id: String,
    /// Its conversation.
    pub context_id: String,
    /// The artifact.
    pub artifact: Artifact,
    /// True when it adds to an artifact sent before.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub append: bool,
    /// True for the artifact's last piece.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub last_chunk: bool,
}

/// One item of a stream, and a push notification's body (`StreamResponse`):
/// exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StreamResponse {
    /// The task as it stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// A message (this daemon sends none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// A status change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_update: Option<TaskStatusUpdateEvent>,
    /// An artifact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_update: Option<TaskArtifactUpdateEvent>,
}

impl StreamResponse {
    /// The whole task.
    pub fn task(task: Task) -> Self {
        Self {
            task: Some(task),
            ..Self::default()
        }
    }

    /// A status change.
    pub fn status(event: TaskStatusUpdateEvent) -> Self {
        Self {
            status_update: Some(event),
            ..Self::default()
        }
    }

    /// An artifact.
    pub fn artifact(event: TaskArtifactUpdateEvent) -> Self {
        Self {
            artifact_update: Some(event),
            ..Self::default()
        }
    }
}

/// How a webhook authenticates the agent (`AuthenticationInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AuthenticationInfo {
    /// The HTTP scheme (`Bearer`, `Basic`, ...).
    pub scheme: String,
    /// What follows the scheme in the `Authorization` header.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credentials: String,
}

/// Where a task's push notifications go (`TaskPushNotificationConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskPushNotificationConfig {
    /// The tenant (unused here).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tenant: String,
    /// The configuration's id within its task.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The task.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub task_id: String,
    /// The webhook.
    pub url: String,
    /// Sent back in `X-A2A-Notification-Token`, for the webhook to check.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// Sent in `Authorization`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication: Option<AuthenticationInfo>,
}

/// How `SendMessage` should behave (`SendMessageConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SendMessageConfiguration {
    /// Media types the client takes (not used: the outputs are fixed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted_output_modes: Vec<String>,
    /// A webhook for the new task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_push_notification_config: Option<TaskPushNotificationConfig>,
    /// How much history to return (this daemon keeps none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_length: Option<i64>,
    /// Answer at once instead of when the task ends.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub return_immediately: bool,
}

/// The parameters of `SendMessage` and `SendStreamingMessage`
/// (`SendMessageRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SendMessageRequest {
    /// The message.
    pub message: Option<Message>,
    /// How to behave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<SendMessageConfiguration>,
    /// Extra fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// The answer to `SendMessage` (`SendMessageResponse`): a task (this
/// daemon never answers with a bare message).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SendMessageResponse {
    /// The task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// A message, from agents that answer with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

/// The parameters of `GetTask`, `CancelTask` and `SubscribeToTask`: a task
/// id (and, for `GetTask`, a history length, ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskIdParams {
    /// The task.
    pub id: String,
    /// How much history to return (this daemon keeps none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_length: Option<i64>,
}

/// The parameters of `ListTasks` (`ListTasksRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListTasksRequest {
    /// Only the tasks of this conversation.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub context_id: String,
    /// Only the tasks in this state.
    #[serde(skip_serializing_if = "is_unspecified")]
    pub status: TaskState,
    /// Tasks per page (1 to 100; 50 when left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
    /// Where the previous page stopped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub page_token: String,
    /// How much history to return (this daemon keeps none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_length: Option<i64>,
    /// Only tasks whose status changed at or after this time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_timestamp_after: Option<String>,
    /// Include each task's artifacts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_artifacts: Option<bool>,
}

/// True for [`TaskState::Unspecified`] (a filter left out).
fn is_unspecified(state: &TaskState) -> bool {
    *state == TaskState::Unspecified
}

/// The answer to `ListTasks` (`ListTasksResponse`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListTasksResponse {
    /// One page of tasks, the most recently changed first.
    pub tasks: Vec<Task>,
    /// Where the next page starts; empty on the last page.
    pub next_page_token: String,
    /// The page size used.
    pub page_size: i64,
    /// How many tasks pass the filters, over all pages.
    pub total_size: i64,
}

/// The parameters of `GetTaskPushNotificationConfig`,
/// `DeleteTaskPushNotificationConfig` and
/// `ListTaskPushNotificationConfigs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PushConfigParams {
    /// The task.
    pub task_id: String,
    /// The configuration (not for the listing).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
}

/// The answer to `ListTaskPushNotificationConfigs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListPushConfigsResponse {
    /// Every configuration of the task.
    pub configs: Vec<TaskPushNotificationConfig>,
    /// Always empty: one page holds them all.
    pub next_page_token: String,
}

/// The part of an agent card the executor reads: whether the agent
/// streams.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CardCapabilities {
    /// What the agent can do.
    pub capabilities: Capabilities,
}

/// An agent card's `capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Capabilities {
    /// `SendStreamingMessage` and `SubscribeToTask` work.
    pub streaming: bool,
    /// Push notifications work.
    pub push_notifications: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_task_prints_as_protojson() {
        let task = Task {
            id: "7".into(),
            context_id: "7".into(),
            status: TaskStatus {
                state: TaskState::Completed,
                message: None,
                timestamp: Some("2026-01-02T03:04:05.678Z".into()),
            },
            artifacts: Some(vec![Artifact {
                artifact_id: "stdout".into(),
                name: "stdout".into(),
                parts: vec![Part::text("hi\n".into())],
                ..Artifact::default()
            }]),
            metadata: None,
        };
        assert_eq!(
            serde_json::to_value(&task).unwrap(),
            json!({
                "id": "7",
                "contextId": "7",
                "status": {"state": "TASK_STATE_COMPLETED", "timestamp": "2026-01-02T03:04:05.678Z"},
                "artifacts": [{
                    "artifactId": "stdout",
                    "name": "stdout",
                    "parts": [{"text": "hi\n", "mediaType": "text/plain"}]
                }]
            })
        );
    }

    #[test]
    fn missing_fields_are_empty_and_unknown_ones_ignored() {
        let task: Task = serde_json::from_value(json!({
            "id": "x",
            "status": {"state": "TASK_STATE_WORKING"},
            "someFutureField": 1
        }))
        .unwrap();
        assert_eq!(task.context_id, "");
        assert_eq!(task.status.state, TaskState::Working);
        let state: TaskState = serde_json::from_value(json!("TASK_STATE_FROM_THE_FUTURE")).unwrap();
        assert_eq!(state, TaskState::Unspecified);
        let request: SendMessageRequest = serde_json::from_value(json!({
            "message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"data": {"command": "true"}}]},
            "configuration": {"returnImmediately": true}
        }))
        .unwrap();
        let message = request.message.unwrap();
        assert_eq!(message.parts[0].data, Some(json!({"command": "true"})));
        assert!(request.configuration.unwrap().return_immediately);
    }

    #[test]
    fn a_stream_item_holds_one_field() {
        let item = StreamResponse::status(TaskStatusUpdateEvent {
            task_id: "1".into(),
            context_id: "1".into(),
            status: TaskStatus {
                state: TaskState::Working,
                ..TaskStatus::default()
            },
        });
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            json!({"statusUpdate": {"taskId": "1", "contextId": "1", "status": {"state": "TASK_STATE_WORKING"}}})
        );
    }
}
