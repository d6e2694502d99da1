//! Errors of the runtime crate.

use std::path::PathBuf;

use sandlab_core::SandboxId;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Sandbox {0} does not exist")]
    NotFound(SandboxId),
    #[error(transparent)]
    Limits(#[from] sandlab_core::LimitsError),
    #[error(transparent)]
    Image(#[from] sandlab_image::Error),
    #[error(transparent)]
    Agent(#[from] sandlab_proto::Error),
    #[error("No usable OCI runtime: {0}")]
    NoRuntime(String),
    #[error("{what} failed with {status}: {stderr}")]
    Command {
        what: String,
        status: String,
        stderr: String,
    },
    #[error("Could not run {what}")]
    Spawn {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Host(String),
    #[error(
        "The agent binary was not found; build it with scripts/build-agent.sh or set SANDLAB_AGENT"
    )]
    NoAgent,
    #[error("The egress address pool is exhausted")]
    PoolExhausted,
    /// The record or lease store failed; the cause is kept typed.
    #[error(transparent)]
    Store(#[from] sandlab_core::StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("No driver named {0:?} is configured")]
    UnknownDriver(String),
    #[error("No sandbox driver is configured")]
    NoDriver,
    #[error("The lease {0:?} passed to another process while this one worked under it")]
    LeaseLost(String),
    #[error("Timed out after {0:?} waiting for {1}")]
    Timeout(std::time::Duration, &'static str),
    /// The platform a driver runs sandboxes on refused or failed to start this one (a
    /// Pod the cluster could not start); the message is one sentence saying why.
    #[error("{0}")]
    StartFailed(String),
    /// Another process changed the object first (a pool claim that lost its race).
    #[error("{0}")]
    Conflict(String),
    /// The platform a driver runs sandboxes on cannot be reached now (an API server down).
    #[error("{0}")]
    Unavailable(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
