//! Code execution (`POST /api/v1/execute`, SPEC section 8), like Judge0 or Piston: a fresh
//! sandbox per request with the request's limits, the files written through the agent,
//! an optional compile step, the run, then the sandbox removed whatever happened.
//!
//! Status of a run: `timeout` when the wall-clock limit killed it or it used more CPU time
//! than `cpu_ms` (enforced with `RLIMIT_CPU` and measured from the cgroup), `memory_limit`
//! when the kernel killed it for memory, `output_limit` when output passed
//! `output_bytes`, `ok` on exit 0, `runtime_error` otherwise; `internal_error` when the
//! platform failed.
//!
//! A request that cannot be run at all (invalid, an unknown language, no sandbox) is a
//! [`CodeExecError`]; `routes/code_exec.rs` turns it into HTTP.

mod check;
pub mod engine;
pub mod judge0;
pub mod languages;
pub mod piston;
pub mod socket;
pub mod submissions;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::check::check;
pub use self::check::{split_words, valid_file_name};
pub use self::engine::{
    Busy, Engine, ExecuteOptions, Job, Outcome, Stage, StepLimits, StepOutcome,
};
pub use self::languages::{Language, Languages};
use crate::sandboxes::SandboxError;

/// Why a request could not be run (a run that fails is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum CodeExecError {
    /// The request breaks a rule; the sentence says which.
    #[error("{0}")]
    Invalid(String),
    #[error("The language {language:?}{} is not available on this server.", version.as_deref().map(|v| format!(" version {v:?}")).unwrap_or_default())]
    UnknownLanguage {
        language: String,
        version: Option<String>,
    },
    #[error("The execution sandbox failed")]
    Sandbox(#[from] SandboxError),
    #[error("The execution sandbox's agent failed")]
    Agent(#[from] sandlab_proto::Error),
    #[error("The language {language:?} needs the image {image:?}, which is not built on this server (`sandlab image build --languages {language}`).")]
    NotBuilt { language: String, image: String },
    #[error("The execution sandbox stopped answering.")]
    Lost,
    #[error("The execution failed: {0}.")]
    Task(String),
    #[error("{}", match .0 {
        Busy::Caller => "You have as many code executions running or waiting as one caller may; wait for one to finish.",
        Busy::Queue => "The code execution queue is full; try again in a moment.",
    })]
    Busy(Busy),
}

impl From<Busy> for CodeExecError {
    fn from(b: Busy) -> CodeExecError {
        CodeExecError::Busy(b)
    }
}

pub type Result<T> = std::result::Result<T, CodeExecError>;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    #[schema(example = "python")]
    pub language: String,
    /// A prefix of the language's version, or `*` (default: any).
    #[schema(example = "3")]
    pub version: Option<String>,
    /// The first file is the entry point.
    pub files: Vec<SourceFile>,
    #[serde(default)]
    pub stdin: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub limits: ExecuteLimits,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// A plain file name (`[A-Za-z0-9._-]`, not starting with `.`); default the language's.
    #[schema(example = "main.py")]
    pub name: Option<String>,
    #[schema(example = "print(1)")]
    pub content: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteLimits {
    /// Wall-clock time of the run step, 1..=60000 (default 5000).
    #[schema(minimum = 1, maximum = 60000)]
    pub wall_ms: Option<u64>,
    /// CPU time of the run step, 1..=60000 (default 3000).
    #[schema(minimum = 1, maximum = 60000)]
    pub cpu_ms: Option<u64>,
    /// Memory with a K/M/G suffix, 16M..4G (default 256M).
    #[schema(example = "256M")]
    pub memory: Option<String>,
    /// Wall-clock time of the compile step, 1..=120000 (default the language's, else 10000).
    #[schema(minimum = 1, maximum = 120000)]
    pub compile_wall_ms: Option<u64>,
    /// CPU time of the compile step, 1..=120000 (default the language's, else 10000).
    #[schema(minimum = 1, maximum = 120000)]
    pub compile_cpu_ms: Option<u64>,
    /// Most processes, 8..=1024 (default 64).
    #[schema(minimum = 8, maximum = 1024)]
    pub pids: Option<u32>,
    /// stdout + stderr kept per step, 1..=1048576 (default 65536).
    #[schema(minimum = 1, maximum = 1048576)]
    pub output_bytes: Option<u64>,
}

/// The outcome of one step (compile or run).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunResult {
    /// `ok`, `runtime_error`, `timeout`, `memory_limit`, `output_limit` or `internal_error`.
    #[schema(example = "ok")]
    pub status: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub wall_ms: u64,
    pub cpu_ms: u64,
    pub memory_peak_bytes: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecuteResponse {
    pub language: String,
    pub version: String,
    /// `null` for languages without a compile step.
    pub compile: Option<RunResult>,
    pub run: RunResult,
}

/// Runs a native request end to end for `owner`.
pub async fn execute(
    engine: &Arc<Engine>,
    owner: &str,
    req: ExecuteRequest,
) -> Result<ExecuteResponse> {
    let lang = engine
        .resolve(&req.language, req.version.as_deref())?
        .clone();
    let job = check(&req, lang, engine.options().network)?;
    let ticket = engine.admit(owner)?;
    let (name, version) = (job.lang.name.clone(), job.lang.version.clone());
    let has_compile = job.lang.compile.is_some();
    let out = engine.run(ticket, job, None).await?;
    let compile = out.compile.as_ref().map(RunResult::from);
    let run = match (&out.run, &compile) {
        (Some(r), _) => RunResult::from(r),
        (None, Some(c)) => RunResult::not_run(&c.status),
        (None, None) => unreachable!("a job without a compile step runs"),
    };
    debug_assert!(has_compile || compile.is_none());
    Ok(ExecuteResponse {
        language: name,
        version,
        compile,
        run,
    })
}

impl RunResult {
    /// The run step of a job whose compile step failed.
    fn not_run(compile_status: &str) -> RunResult {
        RunResult {
            status: "runtime_error".into(),
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: format!("Not run: the compile step ended with {compile_status}."),
            wall_ms: 0,
            cpu_ms: 0,
            memory_peak_bytes: 0,
        }
    }
}

impl From<&StepOutcome> for RunResult {
    fn from(o: &StepOutcome) -> RunResult {
        RunResult {
            status: o.status.as_str().into(),
            exit_code: o.exit_code,
            signal: o.signal,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            wall_ms: o.wall_ms,
            cpu_ms: o.cpu_ms,
            memory_peak_bytes: o.memory_peak_bytes,
        }
    }
}
