//! Errors of the host-side client.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::frame::FrameError;
use crate::messages::{ErrorCode, MessageError};
use crate::validate::ValidationError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a call on [`crate::AgentClient`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Could not connect to the agent socket {path}.")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("Could not connect to the agent at {addr}.")]
    ConnectTcp {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("Timed out after {0:?} waiting for the agent.")]
    Timeout(Duration),
    #[error(
        "The agent speaks protocol {agent:#x}, which is incompatible with this host's {host:#x}."
    )]
    ProtocolMismatch { agent: u32, host: u32 },
    #[error("The agent refused the connection: its token is missing or wrong.")]
    Unauthorized,
    #[error("The connection to the agent is closed.")]
    ConnectionClosed {
        #[source]
        cause: Option<Arc<CloseCause>>,
    },
    #[error("The agent refused the request ({code:?}): {message}")]
    Agent { code: ErrorCode, message: String },
    #[error("The request is invalid.")]
    InvalidRequest(#[source] ValidationError),
    #[error("The request is too large to send.")]
    RequestTooLarge(#[source] MessageError),
    #[error("The stream has already ended.")]
    StreamClosed,
    #[error("The exec was started without stdin.")]
    NoStdin,
    #[error("The agent's answer exceeds the limit of {limit}.")]
    ResponseTooLarge { limit: u64 },
}

impl Error {
    /// The agent's error code, when the agent refused the request.
    pub fn agent_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Agent { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn closed(cause: Option<Arc<CloseCause>>) -> Error {
        Error::ConnectionClosed { cause }
    }
}

impl From<ValidationError> for Error {
    fn from(e: ValidationError) -> Error {
        Error::InvalidRequest(e)
    }
}

/// Why a connection to the agent was closed.
#[derive(Debug, thiserror::Error)]
pub enum CloseCause {
    #[error("The agent closed the connection.")]
    Eof,
    #[error("Reading from the agent failed.")]
    Read(#[source] io::Error),
    #[error("Writing to the agent failed.")]
    Write(#[source] io::Error),
    #[error("The agent sent a malformed frame.")]
    Frame(#[source] FrameError),
    #[error("The agent sent a malformed message.")]
    Message(#[source] MessageError),
    #[error("{0}")]
    Violation(&'static str),
    #[error("The client was dropped.")]
    Dropped,
}
