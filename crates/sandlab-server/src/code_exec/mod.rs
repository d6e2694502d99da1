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
pub mod languages;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sandlab_core::{ByteSize, Limits, NetworkMode, SandboxId};
use sandlab_proto::{AgentClient, ExecRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use self::check::valid_file_name;
use self::check::{check, Checked};
pub use self::languages::{Language, Languages};
use crate::run_status::{HostView, RunStatus};
use crate::sandboxes::{NewSandbox, SandboxError, Sandboxes};

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
    /// Wall-clock time per step, 1..=60000 (default 5000).
    #[schema(minimum = 1, maximum = 60000)]
    pub wall_ms: Option<u64>,
    /// CPU time per step, 1..=60000 (default 3000).
    #[schema(minimum = 1, maximum = 60000)]
    pub cpu_ms: Option<u64>,
    /// Memory with a K/M/G suffix, 16M..4G (default 256M).
    #[schema(example = "256M")]
    pub memory: Option<String>,
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

/// How the server runs code.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    /// Whether execution sandboxes get egress (`server.execute_network`, default off).
    pub network: bool,
    /// Where the files go inside the sandbox.
    pub workdir: String,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        ExecuteOptions {
            network: false,
            workdir: "/code".into(),
        }
    }
}

/// `template` with `{file}` replaced and `{args}` expanded.
fn command(template: &[String], file: &str, args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for part in template {
        if part == "{args}" {
            out.extend(args.iter().cloned());
        } else {
            out.push(part.replace("{file}", file));
        }
    }
    out
}

/// Runs one request end to end.
pub async fn execute(
    sandboxes: &Arc<Sandboxes>,
    langs: &Languages,
    owner: &str,
    quota: u64,
    opts: &ExecuteOptions,
    req: ExecuteRequest,
) -> Result<ExecuteResponse> {
    let lang = langs
        .find(&req.language, req.version.as_deref())
        .ok_or_else(|| CodeExecError::UnknownLanguage {
            language: req.language.clone(),
            version: req.version.clone(),
        })?
        .clone();
    let (files, limits) = check(&req, &lang)?;
    let steps = if lang.compile.is_some() { 2 } else { 1 };
    let sandbox_limits = Limits {
        memory: limits.memory,
        cpus: 1.0,
        pids: limits.pids,
        disk: ByteSize::mib(256),
        network: if opts.network {
            NetworkMode::Egress
        } else {
            NetworkMode::None
        },
        profile: Default::default(),
    };
    let rec = sandboxes
        .create(NewSandbox {
            image: lang.image.clone(),
            limits: sandbox_limits,
            ttl: limits.wall * steps + Duration::from_secs(60),
            owner: owner.to_owned(),
            quota,
            hostname: Some(crate::sandboxes::API_HOSTNAME.to_owned()),
            playground: None,
        })
        .await?;
    let result = run_in(
        sandboxes,
        &rec.id,
        &lang,
        &req,
        &files,
        limits,
        &opts.workdir,
    )
    .await;
    if let Err(e) = sandboxes.remove_detached(&rec.id).await {
        tracing::warn!(sandbox.id = %rec.id, error = %sandlab_core::error_chain(&e), "could not remove an execution sandbox");
    }
    let (compile, run) = result?;
    Ok(ExecuteResponse {
        language: lang.name,
        version: lang.version,
        compile,
        run,
    })
}

async fn run_in(
    sandboxes: &Sandboxes,
    id: &SandboxId,
    lang: &Language,
    req: &ExecuteRequest,
    files: &[(String, Vec<u8>)],
    limits: Checked,
    workdir: &str,
) -> Result<(Option<RunResult>, RunResult)> {
    let agent = sandboxes.agent(id).await?;
    agent.mkdir(workdir, true).await?;
    for (name, content) in files {
        agent
            .write_file(&format!("{workdir}/{name}"), content, 0o644, false)
            .await?;
    }
    let entry = &files[0].0;
    let compile = match &lang.compile {
        Some(c) => Some(
            step(
                sandboxes,
                id,
                &agent,
                command(c, entry, &[]),
                None,
                limits,
                workdir,
            )
            .await?,
        ),
        None => None,
    };
    if let Some(c) = compile.as_ref().filter(|c| c.status != "ok") {
        let skipped = RunResult {
            status: "runtime_error".into(),
            exit_code: None,
            signal: None,
            stdout: String::new(),
            stderr: format!("Not run: the compile step ended with {}.", c.status),
            wall_ms: 0,
            cpu_ms: 0,
            memory_peak_bytes: 0,
        };
        return Ok((compile, skipped));
    }
    let argv = command(&lang.run, entry, &req.args);
    let stdin = Some(req.stdin.as_bytes().to_vec());
    let run = step(sandboxes, id, &agent, argv, stdin, limits, workdir).await?;
    Ok((compile, run))
}

/// Runs `argv` under the limits and classifies the outcome.
async fn step(
    sandboxes: &Sandboxes,
    id: &SandboxId,
    agent: &AgentClient,
    argv: Vec<String>,
    stdin: Option<Vec<u8>>,
    limits: Checked,
    workdir: &str,
) -> Result<RunResult> {
    let manager = sandboxes.manager();
    let before = manager.stats(id).await.unwrap_or_default();
    // RLIMIT_CPU counts whole seconds: round up, and judge the exact figure from the cgroup.
    let cpu_secs = limits.cpu_ms.div_ceil(1000).max(1);
    let mut wrapped = vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        format!("ulimit -t {cpu_secs}; exec \"$@\""),
        "sh".to_owned(),
    ];
    wrapped.extend(argv);
    let req = ExecRequest {
        argv: wrapped,
        cwd: Some(workdir.into()),
        timeout: Some(limits.wall),
        stdin: stdin.is_some(),
        ..ExecRequest::default()
    };
    let started = Instant::now();
    let out = agent.exec_collect(req, stdin, limits.output).await?;
    let wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let after = manager.stats(id).await.unwrap_or_default();
    let cpu_ms = after.cpu_usage_ns.saturating_sub(before.cpu_usage_ns) / 1_000_000;
    let status = RunStatus::of(
        &out,
        HostView {
            oom_killed: after.oom_kills > before.oom_kills,
            cpu_exceeded: cpu_ms > limits.cpu_ms,
        },
    )
    .as_str();
    metrics::counter!(crate::metrics::EXECUTE, "status" => status).increment(1);
    Ok(RunResult {
        status: status.into(),
        exit_code: out.exit.code,
        signal: out.exit.signal,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        wall_ms,
        cpu_ms,
        memory_peak_bytes: after.memory_peak_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_expand() {
        let t = vec![
            "python3".to_owned(),
            "{file}".to_owned(),
            "{args}".to_owned(),
        ];
        assert_eq!(
            command(&t, "a.py", &["x".into(), "y z".into()]),
            ["python3", "a.py", "x", "y z"]
        );
        assert_eq!(command(&t, "a.py", &[]), ["python3", "a.py"]);
    }
}
