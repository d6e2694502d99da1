//! The one HTTP error type: `{"error": {"code": "snake_case", "message": "sentence"}}`.
//!
//! 4xx messages are written for the caller and safe to show; a 5xx answers an opaque
//! sentence and the cause is logged once, here.
//!
//! Domain services return their own errors ([`SandboxError`], [`LabSessionError`],
//! [`CodeExecError`], the store's, the runtime's and the agent protocol's); the `From`
//! impls below are the one place they become status codes, error codes and sentences.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::code_exec::CodeExecError;
use crate::lab_sessions::LabSessionError;
use crate::sandboxes::SandboxError;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The error body of every failed request.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable `snake_case` code.
    #[schema(example = "not_found")]
    pub code: String,
    /// One sentence for a person.
    #[schema(example = "The sandbox does not exist.")]
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("The {what} does not exist."),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_many(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A 500 whose cause is logged here and not shown to the caller.
    pub fn internal(context: &str, cause: &dyn std::error::Error) -> ApiError {
        tracing::error!(error = %chain(cause), "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            INTERNAL_MESSAGE,
        )
    }
}

pub use sandlab_core::error_chain as chain;

/// Ends a sentence with a full stop when it has none.
pub fn sentence(s: impl Into<String>) -> String {
    let mut s = s.into();
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    s
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

// ----- domain errors: what a caller is told about each
//
// Each `answer_*` function says what the caller may see, without logging; `None` means
// the server is at fault (500). The `From` impls log what must be logged, once.

const INTERNAL_MESSAGE: &str = "The server failed to handle the request; the cause is in its log.";

fn answer_store(e: &sandlab_store::Error) -> Option<ApiError> {
    use sandlab_store::Error as E;
    Some(match e {
        E::NotFound(what) => ApiError::not_found(what),
        E::Conflict(m) => ApiError::conflict(sentence(m.clone())),
        E::Invalid(m) => ApiError::bad_request("invalid", sentence(m.clone())),
        E::LastAdmin => ApiError::conflict(sentence(e.to_string())),
        E::Full(_) => {
            tracing::error!(error = %chain(e), "the database's disk is full");
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "disk_full",
                "The server's disk is full, so nothing can be saved; try again later.",
            )
        }
        E::Unavailable(_) => {
            tracing::error!(error = %chain(e), "the database cannot be written");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "The server cannot save anything right now; try again later.",
            )
        }
        _ => return None,
    })
}

fn answer_records(e: &sandlab_core::StoreError) -> Option<ApiError> {
    answer_store(e.source.downcast_ref::<sandlab_store::Error>()?)
}

fn answer_runtime(e: &sandlab_runtime::Error) -> Option<ApiError> {
    use sandlab_runtime::Error as E;
    Some(match e {
        E::NotFound(_) => ApiError::not_found("sandbox"),
        E::Limits(l) => ApiError::bad_request("invalid_limits", sentence(l.to_string())),
        E::Image(sandlab_image::Error::NotFound(name)) => {
            match crate::image_builds::state(name) {
                Some(crate::image_builds::BuildState::Building) => ApiError::unavailable(
                    format!("The image \"{name}\" is being built from its recipe for its first use; try again in a minute or two."),
                ),
                Some(crate::image_builds::BuildState::Failed(why)) => ApiError::unavailable(
                    format!("The image \"{name}\" could not be built from its recipe ({}); an operator can run `sandlab image build {name}`.", why.trim_end_matches('.')),
                ),
                None => ApiError::bad_request(
                    "unknown_image",
                    format!("The image \"{name}\" does not exist on this server."),
                ),
            }
        }
        E::Image(sandlab_image::Error::InvalidName(name)) => ApiError::bad_request(
            "invalid_image",
            format!("The image name \"{name}\" is invalid."),
        ),
        E::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) =>
        {
            ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "disk_full",
                "The server's disk for sandboxes is full; try again when other sandboxes have ended.",
            )
        }
        E::PoolExhausted => ApiError::unavailable(
            "The server has no free network addresses for another sandbox with egress.",
        ),
        E::Agent(a) => return answer_proto(a),
        E::Store(s) => return answer_records(s),
        E::Invalid(m) => ApiError::bad_request("invalid", sentence(m.clone())),
        E::StartFailed(m) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "start_failed", sentence(m.clone()))
        }
        E::Conflict(m) => ApiError::conflict(sentence(m.clone())),
        E::Unavailable(m) => ApiError::unavailable(sentence(m.clone())),
        E::UnknownDriver(name) => ApiError::bad_request(
            "unknown_driver",
            format!("No sandbox driver named \"{name}\" is configured on this server."),
        ),
        _ => return None,
    })
}

fn answer_proto(e: &sandlab_proto::Error) -> Option<ApiError> {
    use sandlab_proto::{Error as E, ErrorCode as C};
    Some(match e {
        E::Agent { code, message } => {
            let (status, code) = match code {
                C::NotFound => (StatusCode::NOT_FOUND, "not_found"),
                C::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
                C::IsADirectory => (StatusCode::BAD_REQUEST, "is_a_directory"),
                C::NotADirectory => (StatusCode::BAD_REQUEST, "not_a_directory"),
                C::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
                C::InvalidRequest => (StatusCode::BAD_REQUEST, "invalid"),
                C::UnknownUser => (StatusCode::BAD_REQUEST, "unknown_user"),
                C::SpawnFailed => (StatusCode::BAD_REQUEST, "spawn_failed"),
                C::TooManyStreams => (StatusCode::TOO_MANY_REQUESTS, "too_many_streams"),
                C::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
                C::DirectoryNotEmpty => (StatusCode::CONFLICT, "directory_not_empty"),
                C::NameTooLong => (StatusCode::BAD_REQUEST, "name_too_long"),
                C::Busy => (StatusCode::CONFLICT, "busy"),
                C::NoSpace => (StatusCode::INSUFFICIENT_STORAGE, "sandbox_disk_full"),
                C::ArgumentsTooLong => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
                _ => return None,
            };
            ApiError::new(status, code, sentence(message.clone()))
        }
        E::InvalidRequest(v) => ApiError::bad_request("invalid", sentence(v.to_string())),
        E::RequestTooLarge(m) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "The request to the sandbox is too large: {}",
                sentence(m.to_string())
            ),
        ),
        E::ResponseTooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            sentence(e.to_string()),
        ),
        E::Connect { .. }
        | E::ConnectTcp { .. }
        | E::Unauthorized
        | E::Timeout(_)
        | E::ConnectionClosed { .. } => ApiError::new(
            StatusCode::BAD_GATEWAY,
            UNREACHABLE,
            "The sandbox does not answer; it may have stopped.",
        ),
        _ => return None,
    })
}

const UNREACHABLE: &str = "sandbox_unreachable";

fn answer_sandbox(e: &SandboxError) -> Option<ApiError> {
    use SandboxError as E;
    match e {
        E::QuotaExceeded { .. } => Some(ApiError::too_many("quota_exceeded", e.to_string())),
        E::OrgFull { .. } => Some(ApiError::too_many("org_quota_exceeded", e.to_string())),
        E::NotRunning(_) => Some(ApiError::conflict(e.to_string())),
        E::OverHost { .. } => Some(ApiError::bad_request("over_host", e.to_string())),
        E::NoRoom(r) if r.is_disk() => Some(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "disk_full",
            e.to_string(),
        )),
        E::NoRoom(_) => Some(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "host_full",
            e.to_string(),
        )),
        E::Runtime(r) => answer_runtime(r),
        E::Store(s) => answer_store(s),
        E::Records(s) => answer_records(s),
        E::Task(..) => None,
    }
}

/// `answer` when there is one, logging an unreachable agent; else a logged 500.
fn answer_or_log(answer: Option<ApiError>, context: &str, e: &dyn std::error::Error) -> ApiError {
    match answer {
        Some(a) if a.code == UNREACHABLE => {
            tracing::warn!(error = %chain(e), "sandbox agent unreachable");
            a
        }
        Some(a) => a,
        None => ApiError::internal(context, e),
    }
}

impl SandboxError {
    /// What a user may be shown about this error (the API's message for it), for text
    /// that is stored and shown later, such as a lab session's failure reason. Logs
    /// nothing: the error itself still goes to the caller, which logs it.
    pub fn public_message(&self) -> String {
        answer_sandbox(self).map_or_else(|| INTERNAL_MESSAGE.to_owned(), |a| a.message)
    }
}

impl From<crate::caps::TooManyStreams> for ApiError {
    fn from(e: crate::caps::TooManyStreams) -> ApiError {
        ApiError::too_many("too_many_streams", e.to_string())
    }
}

impl From<crate::admission::OverLimit> for ApiError {
    fn from(e: crate::admission::OverLimit) -> ApiError {
        ApiError::bad_request("over_limit", e.to_string())
    }
}

impl From<sandlab_store::Error> for ApiError {
    fn from(e: sandlab_store::Error) -> ApiError {
        answer_or_log(answer_store(&e), "store failure", &e)
    }
}

impl From<sandlab_core::StoreError> for ApiError {
    fn from(e: sandlab_core::StoreError) -> ApiError {
        answer_or_log(answer_records(&e), "store failure", &e)
    }
}

impl From<sandlab_runtime::Error> for ApiError {
    fn from(e: sandlab_runtime::Error) -> ApiError {
        answer_or_log(answer_runtime(&e), "runtime failure", &e)
    }
}

impl From<sandlab_proto::Error> for ApiError {
    fn from(e: sandlab_proto::Error) -> ApiError {
        answer_or_log(answer_proto(&e), "agent failure", &e)
    }
}

impl From<SandboxError> for ApiError {
    fn from(e: SandboxError) -> ApiError {
        let context = match &e {
            SandboxError::Runtime(_) => "runtime failure",
            SandboxError::Task("create", _) => "the create task failed",
            SandboxError::Task(..) => "the remove task failed",
            _ => "store failure",
        };
        answer_or_log(answer_sandbox(&e), context, &e)
    }
}

impl From<LabSessionError> for ApiError {
    fn from(e: LabSessionError) -> ApiError {
        match e {
            LabSessionError::NodeStart { source, .. } | LabSessionError::Sandbox(source) => {
                source.into()
            }
            LabSessionError::Store(s) => s.into(),
            LabSessionError::UnknownSandbox(_) => ApiError::not_found("sandbox"),
            e @ LabSessionError::NoAnswer => ApiError::unavailable(e.to_string()),
            LabSessionError::Refused(why) => ApiError::conflict(why),
        }
    }
}

impl From<CodeExecError> for ApiError {
    fn from(e: CodeExecError) -> ApiError {
        match e {
            CodeExecError::Invalid(m) => ApiError::bad_request("invalid", m),
            CodeExecError::UnknownLanguage { .. } => {
                ApiError::bad_request("unknown_language", e.to_string())
            }
            CodeExecError::NotBuilt { .. } => {
                ApiError::bad_request("language_not_built", e.to_string())
            }
            CodeExecError::Busy(crate::code_exec::Busy::Caller) => {
                ApiError::too_many("rate_limited", e.to_string())
            }
            CodeExecError::Busy(crate::code_exec::Busy::Queue) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", e.to_string())
            }
            CodeExecError::Lost => {
                ApiError::new(StatusCode::BAD_GATEWAY, "agent_lost", e.to_string())
            }
            CodeExecError::Task(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
            CodeExecError::Sandbox(s) => s.into(),
            CodeExecError::Agent(a) => a.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let status = r.status();
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                status,
                "body_too_large",
                "The request body is larger than this route accepts.",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                status,
                "unsupported_media_type",
                "The request body must be JSON with `Content-Type: application/json`.",
            ),
            _ => ApiError::bad_request(
                "invalid_json",
                sentence(format!("The request body is not valid: {}", r.body_text())),
            ),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad_request(
            "invalid_query",
            sentence(format!("The query string is not valid: {}", r.body_text())),
        )
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> ApiError {
        ApiError::bad_request(
            "invalid_path",
            sentence(format!("The URL path is not valid: {}", r.body_text())),
        )
    }
}
