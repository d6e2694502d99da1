//! Piston v2 compatibility: `GET /api/v2/runtimes` and `POST /api/v2/execute` shaped as
//! Piston answers them, so Piston's clients work unchanged. Requests become [`Job`]s of
//! the one engine; only the shapes differ.
//!
//! Piston's semantics kept: times in milliseconds, `-1` meaning "the default" for memory,
//! `version` matched as a version range (`*`, `3`, `3.x`, exact), file `encoding` of
//! `utf8`, `base64` or `hex`, `compile` present only for compiled languages, errors as
//! `{"message": ...}` with status 400. `compile_memory_limit` bounds the compile step's
//! address space (`RLIMIT_AS`, as Piston's `prlimit --as` did); `run_memory_limit` is
//! the sandbox's memory (cgroup), like every other API here.

use std::time::Duration;

use base64::Engine as _;
use sandlab_core::ByteSize;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::check::{check_files, check_memory, DEFAULT_COMPILE_MS};
use super::engine::{Job, Outcome, StepLimits, StepOutcome, DEFAULT_MEMORY, DEFAULT_PIDS};
use super::{CodeExecError, Language, Result};
use crate::run_status::RunStatus;

/// Output kept per step (stdout and stderr together).
const OUTPUT: usize = 64 << 10;

/// A Piston runtime.
#[derive(Debug, Serialize, ToSchema)]
pub struct PistonRuntime {
    pub language: String,
    pub version: String,
    pub aliases: Vec<String>,
}

impl From<&Language> for PistonRuntime {
    fn from(l: &Language) -> PistonRuntime {
        PistonRuntime {
            language: l.name.clone(),
            version: l.version.clone(),
            aliases: l.aliases.clone(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PistonFile {
    pub name: Option<String>,
    pub content: String,
    /// `utf8` (default), `base64` or `hex`.
    pub encoding: Option<String>,
}

/// Piston's execute request (unknown keys are ignored, as Piston does).
#[derive(Debug, Deserialize, ToSchema)]
pub struct PistonRequest {
    pub language: Option<String>,
    pub version: Option<String>,
    pub files: Option<Vec<PistonFile>>,
    #[serde(default)]
    pub stdin: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    pub compile_timeout: Option<i64>,
    pub run_timeout: Option<i64>,
    pub compile_cpu_time: Option<i64>,
    pub run_cpu_time: Option<i64>,
    pub compile_memory_limit: Option<i64>,
    pub run_memory_limit: Option<i64>,
}

/// One stage's result, as Piston reports it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PistonStage {
    pub stdout: String,
    pub stderr: String,
    /// stdout and stderr interleaved as they came.
    pub output: String,
    pub code: Option<i32>,
    /// The signal's name (`SIGKILL`) when one ended it.
    pub signal: Option<String>,
    pub message: Option<String>,
    /// `RE`, `SG`, `TO`, `OL` or `XX` when it did not end well.
    pub status: Option<String>,
    pub cpu_time: u64,
    pub wall_time: u64,
    pub memory: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PistonResponse {
    pub language: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compile: Option<PistonStage>,
    pub run: PistonStage,
}

fn invalid(msg: impl Into<String>) -> CodeExecError {
    CodeExecError::Invalid(msg.into())
}

fn decode(f: &PistonFile) -> Result<Vec<u8>> {
    match f.encoding.as_deref().unwrap_or("utf8") {
        "utf8" => Ok(f.content.clone().into_bytes()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(f.content.trim())
            .map_err(|_| invalid("A file's content is not valid base64.")),
        "hex" => {
            hex::decode(f.content.trim()).map_err(|_| invalid("A file's content is not valid hex."))
        }
        other => Err(invalid(format!(
            "The file encoding {other:?} is not one of utf8, base64, hex."
        ))),
    }
}

/// A time in ms: `None` or negative means `default`; else 1..=`max`.
fn millis(v: Option<i64>, default: u64, max: u64, key: &str) -> Result<u64> {
    match v {
        None => Ok(default),
        Some(n) if n < 0 => Ok(default),
        Some(n) if (1..=max as i64).contains(&n) => Ok(n as u64),
        Some(_) => Err(invalid(format!(
            "{key} cannot exceed the configured limit of {max}"
        ))),
    }
}

/// The language and version a request names, checked as Piston does.
pub fn language_of(req: &PistonRequest) -> Result<(&str, &str)> {
    let language = req
        .language
        .as_deref()
        .ok_or_else(|| invalid("language is required as a string"))?;
    let version = req
        .version
        .as_deref()
        .ok_or_else(|| invalid("version is required as a string"))?;
    Ok((language, version))
}

/// Checks a Piston request into a job for `lang`.
pub fn job(req: PistonRequest, lang: Language, network: bool) -> Result<Job> {
    let files = req
        .files
        .as_ref()
        .ok_or_else(|| invalid("files is required as an array"))?;
    let files = files
        .iter()
        .map(|f| Ok((f.name.clone().filter(|n| !n.is_empty()), decode(f)?)))
        .collect::<Result<Vec<_>>>()?;
    let stdin = req.stdin.unwrap_or_default().into_bytes();
    let args = req.args.unwrap_or_default();
    let files = check_files(files, &stdin, &args, &lang)?;
    let compile_default = lang.compile_wall_ms.unwrap_or(DEFAULT_COMPILE_MS);
    let compile_wall = millis(
        req.compile_timeout,
        compile_default,
        120_000,
        "compile_timeout",
    )?;
    let compile_cpu = millis(
        req.compile_cpu_time,
        lang.compile_cpu_ms.unwrap_or(DEFAULT_COMPILE_MS),
        120_000,
        "compile_cpu_time",
    )?;
    let run_wall = millis(req.run_timeout, 3000, 60_000, "run_timeout")?;
    let run_cpu = millis(req.run_cpu_time, run_wall, 60_000, "run_cpu_time")?;
    let memory = match req.run_memory_limit {
        None => DEFAULT_MEMORY,
        Some(n) if n < 0 => DEFAULT_MEMORY,
        Some(n) => {
            let m = ByteSize(n as u64);
            check_memory(m, "run_memory_limit")?;
            m
        }
    };
    let mut compile = StepLimits::new(Duration::from_millis(compile_wall), compile_cpu, OUTPUT);
    if let Some(n) = req.compile_memory_limit.filter(|n| *n >= 0) {
        check_memory(ByteSize(n as u64), "compile_memory_limit")?;
        compile.address_space = Some(n as u64);
    }
    Ok(Job {
        lang,
        files,
        stdin,
        args,
        compile_options: Vec::new(),
        compile,
        run: StepLimits::new(Duration::from_millis(run_wall), run_cpu, OUTPUT),
        memory,
        pids: DEFAULT_PIDS,
        network,
        runs: 1,
    })
}

/// A signal's name as Piston reports it.
fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("SIG{sig}"),
    };
    name.to_owned()
}

/// Piston's form of one step.
pub fn stage(o: &StepOutcome) -> PistonStage {
    let (status, message) = match o.status {
        RunStatus::Ok => (None, None),
        RunStatus::Timeout => (Some("TO"), Some("Time limit exceeded".to_owned())),
        RunStatus::MemoryLimit => (Some("SG"), Some("Memory limit exceeded".to_owned())),
        RunStatus::OutputLimit => (Some("OL"), Some("Output limit exceeded".to_owned())),
        RunStatus::RuntimeError => match (o.signal, o.exit_code) {
            (Some(s), _) => (Some("SG"), Some(format!("Killed by {}", signal_name(s)))),
            (None, c) => (
                Some("RE"),
                Some(format!("Exited with error status {}", c.unwrap_or(-1))),
            ),
        },
    };
    PistonStage {
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        output: String::from_utf8_lossy(&o.output).into_owned(),
        code: o.exit_code,
        signal: o.signal.map(signal_name),
        message,
        status: status.map(str::to_owned),
        cpu_time: o.cpu_ms,
        wall_time: o.wall_ms,
        memory: o.memory_peak_bytes,
    }
}

/// Piston's form of a job's outcome: a run that did not happen (compile failed) is
/// empty with no code, as Piston reports it.
pub fn response(lang: &Language, out: &Outcome) -> PistonResponse {
    let run = match &out.run {
        Some(r) => stage(r),
        None => PistonStage {
            stdout: String::new(),
            stderr: String::new(),
            output: String::new(),
            code: None,
            signal: None,
            message: Some("Not run: the compile stage failed".into()),
            status: None,
            cpu_time: 0,
            wall_time: 0,
            memory: 0,
        },
    };
    PistonResponse {
        language: lang.name.clone(),
        version: lang.version.clone(),
        compile: out.compile.as_ref().map(stage),
        run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang() -> Language {
        toml::from_str(
            "name='c'\nversion='12.2.0'\nimage='i'\nfile='main.c'\ncompile=['cc']\nrun=['./a']\n",
        )
        .unwrap()
    }

    fn req(body: &str) -> PistonRequest {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn defaults_and_minus_one_mean_the_default() {
        let j = job(
            req(r#"{"language":"c","version":"*","files":[{"content":"x"}],"run_memory_limit":-1,"compile_memory_limit":-1,"args":["1"]}"#),
            lang(),
            false,
        )
        .unwrap();
        assert_eq!(j.memory, DEFAULT_MEMORY);
        assert_eq!(j.files[0].0, "main.c");
        assert_eq!(j.compile.address_space, None);
        assert_eq!(j.run.wall, Duration::from_secs(3));
        assert_eq!(j.args, ["1"]);
    }

    #[test]
    fn encodings_and_bounds() {
        let j = job(
            req(r#"{"files":[{"name":"a.c","content":"aGk=","encoding":"base64"},{"name":"b","content":"6869","encoding":"hex"}],"compile_memory_limit":100000000}"#),
            lang(),
            false,
        )
        .unwrap();
        assert_eq!(j.files[0].1, b"hi");
        assert_eq!(j.files[1].1, b"hi");
        assert_eq!(j.compile.address_space, Some(100_000_000));
        for bad in [
            r#"{"files":[{"content":"x","encoding":"rot13"}]}"#,
            r#"{"files":[{"content":"!!","encoding":"base64"}]}"#,
            r#"{"files":[{"content":"x"}],"run_timeout":9999999}"#,
            r#"{"files":[{"content":"x"}],"run_memory_limit":5}"#,
            r#"{"files":[{"name":"../x","content":"x"}]}"#,
            r#"{}"#,
        ] {
            assert!(job(req(bad), lang(), false).is_err(), "{bad}");
        }
    }
}
