//! Judge0 CE compatibility: submissions, languages with Judge0 CE's ids, statuses with
//! the same ids and meanings, `config_info` and `about`, shaped as Judge0 1.13 answers
//! them so its clients work unchanged. A submission is stored before it runs (the store's
//! `submissions`), runs on the one engine, and its result is stored when it ends; a
//! restart runs again every submission that had not ended.
//!
//! What this server does not offer says so in `config_info` and is refused with 422 when
//! asked for: `additional_files` (zip archives), `callback_url`, per-process time and
//! memory limits. `cpu_time_limit` plus `cpu_extra_time` is the CPU time a run may use
//! before it is killed and judged "Time Limit Exceeded"; `memory_limit` is the sandbox's
//! memory (its cgroup), raised to the language's least where it has one (JVMs).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use sandlab_core::ByteSize;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::check::{check_files, check_memory, check_pids, split_words, DEFAULT_COMPILE_MS};
use super::engine::{Job, Outcome, StepLimits, DEFAULT_MEMORY, DEFAULT_PIDS};
use super::{Language, Languages};
use crate::run_status::RunStatus;

/// The Judge0 version whose API this is (clients key language tables on it).
pub const VERSION: &str = "1.13.1";
/// Output kept per step, as Judge0's default `max_file_size` of stdout.
const OUTPUT: usize = 1 << 20;
/// Most submissions in one batch.
pub const MAX_BATCH: usize = 20;
/// Longest source, stdin and expected output, in bytes.
const MAX_TEXT: usize = 1 << 20;
/// Most wall-clock seconds all runs of one submission may take together.
const MAX_TOTAL_WALL: f64 = 120.0;
/// Most submissions, and bytes of them, one owner may have stored; past either a new one
/// is refused until old ones are deleted or expire.
pub const MAX_STORED: u64 = 10_000;
pub const MAX_STORED_BYTES: u64 = 256 << 20;

/// Defaults and maxima, reported by `/config_info`.
pub const CPU_TIME_LIMIT: f64 = 5.0;
pub const MAX_CPU_TIME_LIMIT: f64 = 60.0;
pub const CPU_EXTRA_TIME: f64 = 1.0;
pub const MAX_CPU_EXTRA_TIME: f64 = 5.0;
pub const WALL_TIME_LIMIT: f64 = 10.0;
pub const MAX_WALL_TIME_LIMIT: f64 = 60.0;
pub const STACK_LIMIT: u64 = 64_000;
pub const MAX_STACK_LIMIT: u64 = 128_000;
pub const MAX_FILE_SIZE: u64 = 1024;
pub const MAX_MAX_FILE_SIZE: u64 = 4096;
pub const MAX_NUMBER_OF_RUNS: u32 = 20;

/// Judge0's statuses, by id.
pub const STATUSES: &[(u8, &str)] = &[
    (1, "In Queue"),
    (2, "Processing"),
    (3, "Accepted"),
    (4, "Wrong Answer"),
    (5, "Time Limit Exceeded"),
    (6, "Compilation Error"),
    (7, "Runtime Error (SIGSEGV)"),
    (8, "Runtime Error (SIGXFSZ)"),
    (9, "Runtime Error (SIGFPE)"),
    (10, "Runtime Error (SIGABRT)"),
    (11, "Runtime Error (NZEC)"),
    (12, "Runtime Error (Other)"),
    (13, "Internal Error"),
    (14, "Exec Format Error"),
];

pub fn status_json(id: u8) -> Value {
    let description = STATUSES
        .iter()
        .find(|(i, _)| *i == id)
        .map_or("Unknown", |(_, d)| d);
    serde_json::json!({ "id": id, "description": description })
}

/// A submission as a client sends it (after base64 decoding when asked).
#[derive(Debug, Default, Deserialize)]
pub struct SubmissionBody {
    pub source_code: Option<String>,
    pub language_id: Option<Value>,
    pub compiler_options: Option<String>,
    pub command_line_arguments: Option<String>,
    pub stdin: Option<String>,
    pub expected_output: Option<String>,
    pub cpu_time_limit: Option<Value>,
    pub cpu_extra_time: Option<Value>,
    pub wall_time_limit: Option<Value>,
    pub memory_limit: Option<Value>,
    pub stack_limit: Option<Value>,
    pub max_processes_and_or_threads: Option<Value>,
    pub enable_per_process_and_thread_time_limit: Option<bool>,
    pub enable_per_process_and_thread_memory_limit: Option<bool>,
    pub max_file_size: Option<Value>,
    pub redirect_stderr_to_stdout: Option<bool>,
    pub enable_network: Option<bool>,
    pub number_of_runs: Option<Value>,
    pub additional_files: Option<String>,
    pub callback_url: Option<String>,
}

/// A submission checked, as stored (text fields base64, so any bytes survive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub language_id: u32,
    pub source_code: String,
    pub stdin: String,
    pub expected_output: Option<String>,
    pub compiler_options: Option<String>,
    pub command_line_arguments: Option<String>,
    pub cpu_time_limit: f64,
    pub cpu_extra_time: f64,
    pub wall_time_limit: f64,
    /// KiB, as Judge0 counts.
    pub memory_limit: u64,
    pub stack_limit: u64,
    pub max_processes_and_or_threads: u32,
    pub max_file_size: u64,
    pub redirect_stderr_to_stdout: bool,
    pub enable_network: bool,
    pub number_of_runs: u32,
}

/// A finished submission's result, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredResult {
    pub status_id: u8,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub compile_output: Option<String>,
    pub message: Option<String>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
    pub time: Option<f64>,
    pub wall_time: Option<f64>,
    /// KiB.
    pub memory: Option<u64>,
}

/// Field errors, as Judge0 answers 422: `{"field": ["what is wrong"]}`.
pub type FieldErrors = BTreeMap<&'static str, Vec<String>>;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes base64 as Judge0 clients send it (line breaks allowed).
pub fn unb64(s: &str) -> Option<Vec<u8>> {
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

fn number(v: &Option<Value>) -> Result<Option<f64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| "is not a number".to_owned()),
        Some(_) => Err("is not a number".to_owned()),
    }
}

/// Checks a body into what is stored; `base64` says whether its text fields are base64.
pub fn check(
    body: SubmissionBody,
    base64: bool,
    langs: &Languages,
    network_allowed: bool,
) -> Result<Stored, FieldErrors> {
    let mut errors = FieldErrors::new();
    let text = |key: &'static str, v: Option<String>, errors: &mut FieldErrors| -> Option<String> {
        let v = v?;
        if !base64 {
            return Some(b64(v.as_bytes()));
        }
        match unb64(&v) {
            Some(bytes) => Some(b64(&bytes)),
            None => {
                errors
                    .entry(key)
                    .or_default()
                    .push("is not valid base64".into());
                None
            }
        }
    };
    let source_code = text("source_code", body.source_code, &mut errors);
    let stdin = text("stdin", body.stdin, &mut errors);
    let expected_output = text("expected_output", body.expected_output, &mut errors);
    let num = |key: &'static str,
               v: &Option<Value>,
               default: f64,
               min: f64,
               max: f64,
               errors: &mut FieldErrors|
     -> f64 {
        match number(v) {
            Ok(None) => default,
            Ok(Some(n)) if n >= min && n <= max => n,
            Ok(Some(_)) => {
                errors.entry(key).or_default().push(format!(
                    "must be greater than or equal to {min} and less than or equal to {max}"
                ));
                default
            }
            Err(e) => {
                errors.entry(key).or_default().push(e);
                default
            }
        }
    };
    let language_id = num(
        "language_id",
        &body.language_id,
        0.0,
        0.0,
        f64::from(u32::MAX),
        &mut errors,
    );
    if language_id.fract() != 0.0 {
        errors
            .entry("language_id")
            .or_default()
            .push("must be an integer".into());
    }
    let language_id = language_id as u32;
    if body.language_id.is_none() {
        errors
            .entry("language_id")
            .or_default()
            .push("can't be blank".into());
    } else if !errors.contains_key("language_id") && langs.by_judge0(language_id).is_none() {
        errors
            .entry("language_id")
            .or_default()
            .push(format!("language with id {language_id} doesn't exist"));
    }
    if source_code.as_deref().is_none_or(str::is_empty) {
        errors
            .entry("source_code")
            .or_default()
            .push("can't be blank".into());
    }
    let cpu_time_limit = num(
        "cpu_time_limit",
        &body.cpu_time_limit,
        CPU_TIME_LIMIT,
        0.001,
        MAX_CPU_TIME_LIMIT,
        &mut errors,
    );
    let cpu_extra_time = num(
        "cpu_extra_time",
        &body.cpu_extra_time,
        CPU_EXTRA_TIME,
        0.0,
        MAX_CPU_EXTRA_TIME,
        &mut errors,
    );
    let wall_time_limit = num(
        "wall_time_limit",
        &body.wall_time_limit,
        WALL_TIME_LIMIT,
        0.001,
        MAX_WALL_TIME_LIMIT,
        &mut errors,
    );
    let memory_limit = num(
        "memory_limit",
        &body.memory_limit,
        (DEFAULT_MEMORY.0 >> 10) as f64,
        16_384.0,
        4_194_304.0,
        &mut errors,
    ) as u64;
    let stack_limit = num(
        "stack_limit",
        &body.stack_limit,
        STACK_LIMIT as f64,
        64.0,
        MAX_STACK_LIMIT as f64,
        &mut errors,
    ) as u64;
    let max_processes = num(
        "max_processes_and_or_threads",
        &body.max_processes_and_or_threads,
        f64::from(DEFAULT_PIDS),
        8.0,
        1024.0,
        &mut errors,
    ) as u32;
    let max_file_size = num(
        "max_file_size",
        &body.max_file_size,
        MAX_FILE_SIZE as f64,
        1.0,
        MAX_MAX_FILE_SIZE as f64,
        &mut errors,
    ) as u64;
    let number_of_runs = num(
        "number_of_runs",
        &body.number_of_runs,
        1.0,
        1.0,
        f64::from(MAX_NUMBER_OF_RUNS),
        &mut errors,
    ) as u32;
    for (key, text) in [
        ("source_code", &source_code),
        ("stdin", &stdin),
        ("expected_output", &expected_output),
    ] {
        // Stored as base64: three bytes in four characters.
        if text.as_ref().is_some_and(|t| t.len() / 4 * 3 > MAX_TEXT) {
            errors
                .entry(key)
                .or_default()
                .push("is longer than 1 MiB".into());
        }
    }
    if f64::from(number_of_runs) * wall_time_limit > MAX_TOTAL_WALL {
        errors.entry("number_of_runs").or_default().push(format!(
            "times wall_time_limit must be at most {MAX_TOTAL_WALL} seconds"
        ));
    }
    for (key, on) in [
        (
            "enable_per_process_and_thread_time_limit",
            body.enable_per_process_and_thread_time_limit,
        ),
        (
            "enable_per_process_and_thread_memory_limit",
            body.enable_per_process_and_thread_memory_limit,
        ),
    ] {
        if on == Some(true) {
            errors
                .entry(key)
                .or_default()
                .push("this option cannot be enabled".into());
        }
    }
    if body.enable_network == Some(true) && !network_allowed {
        errors
            .entry("enable_network")
            .or_default()
            .push("this option cannot be enabled".into());
    }
    if body
        .additional_files
        .as_deref()
        .is_some_and(|f| !f.is_empty())
    {
        errors
            .entry("additional_files")
            .or_default()
            .push("additional files are not enabled on this server".into());
    }
    if body.callback_url.as_deref().is_some_and(|u| !u.is_empty()) {
        errors
            .entry("callback_url")
            .or_default()
            .push("callbacks are not enabled on this server".into());
    }
    for (key, v) in [
        ("compiler_options", &body.compiler_options),
        ("command_line_arguments", &body.command_line_arguments),
    ] {
        match v.as_deref().map(split_words) {
            Some(None) => {
                errors
                    .entry(key)
                    .or_default()
                    .push("has an unclosed quote".into());
            }
            Some(Some(w))
                if w.len() > 64
                    || v.as_ref()
                        .is_some_and(|s| s.len() > 512 || s.contains('\0')) =>
            {
                errors
                    .entry(key)
                    .or_default()
                    .push("is too long (at most 512 characters and 64 words)".into());
            }
            _ => {}
        }
    }
    if let Some(opts) = body.compiler_options.as_deref().and_then(split_words) {
        if opts.iter().any(|o| {
            !o.starts_with('-')
                || !o
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_=+.,:/".contains(&b))
        }) {
            errors.entry("compiler_options").or_default().push(
                "may only hold options (words starting with '-' of letters, digits and -_=+.,:/)"
                    .into(),
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Stored {
        language_id,
        source_code: source_code.unwrap_or_default(),
        stdin: stdin.unwrap_or_default(),
        expected_output,
        compiler_options: body.compiler_options.filter(|s| !s.trim().is_empty()),
        command_line_arguments: body.command_line_arguments.filter(|s| !s.trim().is_empty()),
        cpu_time_limit,
        cpu_extra_time,
        wall_time_limit,
        memory_limit,
        stack_limit,
        max_processes_and_or_threads: max_processes,
        max_file_size,
        redirect_stderr_to_stdout: body.redirect_stderr_to_stdout.unwrap_or(false),
        enable_network: body.enable_network.unwrap_or(false),
        number_of_runs,
    })
}

/// The job a stored submission runs, or why it cannot (the language left the server).
pub fn job(s: &Stored, langs: &Languages) -> Result<Job, String> {
    let lang: Language = langs.by_judge0(s.language_id).cloned().ok_or_else(|| {
        format!(
            "The language with id {} is no longer offered.",
            s.language_id
        )
    })?;
    let source = unb64(&s.source_code).unwrap_or_default();
    let stdin = unb64(&s.stdin).unwrap_or_default();
    let args = s
        .command_line_arguments
        .as_deref()
        .and_then(split_words)
        .unwrap_or_default();
    let files =
        check_files(vec![(None, source)], &stdin, &args, &lang).map_err(|e| e.to_string())?;
    let memory = ByteSize(s.memory_limit << 10);
    check_memory(memory, "memory_limit").map_err(|e| e.to_string())?;
    check_pids(
        s.max_processes_and_or_threads,
        "max_processes_and_or_threads",
    )
    .map_err(|e| e.to_string())?;
    let compile = StepLimits::new(
        Duration::from_millis(lang.compile_wall_ms.unwrap_or(DEFAULT_COMPILE_MS)),
        lang.compile_cpu_ms.unwrap_or(DEFAULT_COMPILE_MS),
        OUTPUT,
    );
    let mut run = StepLimits::new(
        Duration::from_secs_f64(s.wall_time_limit),
        ((s.cpu_time_limit + s.cpu_extra_time) * 1000.0).ceil() as u64,
        OUTPUT,
    );
    run.stack = Some(s.stack_limit << 10);
    run.file_size = Some(s.max_file_size << 10);
    Ok(Job {
        lang,
        files,
        stdin,
        args,
        compile_options: s
            .compiler_options
            .as_deref()
            .and_then(split_words)
            .unwrap_or_default(),
        compile,
        run,
        memory,
        pids: s.max_processes_and_or_threads,
        network: s.enable_network,
        runs: s.number_of_runs,
    })
}

/// Judge0's verdict on a job's outcome.
pub fn result(s: &Stored, out: &Outcome) -> StoredResult {
    let mut r = StoredResult::default();
    if let Some(c) = &out.compile {
        r.compile_output = (!c.output.is_empty()).then(|| b64(&c.output));
        if c.status != RunStatus::Ok {
            r.status_id = 6;
            r.message = Some(match c.status {
                RunStatus::Timeout => "Compilation time limit exceeded.".into(),
                RunStatus::MemoryLimit => "Compilation memory limit exceeded.".into(),
                _ => format!(
                    "Compilation failed{}.",
                    c.exit_code
                        .map(|x| format!(" with exit code {x}"))
                        .unwrap_or_default()
                ),
            });
            r.time = Some(c.cpu_ms as f64 / 1000.0);
            r.wall_time = Some(c.wall_ms as f64 / 1000.0);
            r.memory = Some(c.memory_peak_bytes >> 10);
            return r;
        }
    }
    let Some(run) = &out.run else {
        r.status_id = 13;
        r.message = Some("The program did not run.".into());
        return r;
    };
    if s.redirect_stderr_to_stdout {
        r.stdout = (!run.output.is_empty()).then(|| b64(&run.output));
    } else {
        r.stdout = (!run.stdout.is_empty()).then(|| b64(&run.stdout));
        r.stderr = (!run.stderr.is_empty()).then(|| b64(&run.stderr));
    }
    r.exit_code = run.exit_code;
    r.exit_signal = run.signal;
    r.time = Some(run.cpu_ms as f64 / 1000.0);
    r.wall_time = Some(run.wall_ms as f64 / 1000.0);
    r.memory = Some(run.memory_peak_bytes >> 10);
    let (id, message) = match run.status {
        RunStatus::Timeout => (5, Some("Time limit exceeded".to_owned())),
        RunStatus::MemoryLimit => (12, Some("Memory limit exceeded".to_owned())),
        RunStatus::OutputLimit => (8, Some("Output limit exceeded".to_owned())),
        RunStatus::RuntimeError => match run.signal {
            Some(libc::SIGSEGV) => (7, Some("Killed by signal 11 (SIGSEGV)".to_owned())),
            Some(libc::SIGXFSZ) => (8, Some("Killed by signal 25 (SIGXFSZ)".to_owned())),
            Some(libc::SIGFPE) => (9, Some("Killed by signal 8 (SIGFPE)".to_owned())),
            Some(libc::SIGABRT) => (10, Some("Killed by signal 6 (SIGABRT)".to_owned())),
            Some(sig) => (12, Some(format!("Killed by signal {sig}"))),
            None => (
                11,
                Some(format!(
                    "Exited with error status {}",
                    run.exit_code.unwrap_or(-1)
                )),
            ),
        },
        RunStatus::Ok => match &s.expected_output {
            Some(expected) => {
                let want = unb64(expected).unwrap_or_default();
                let got = if s.redirect_stderr_to_stdout {
                    &run.output
                } else {
                    &run.stdout
                };
                if normalized(&want) == normalized(got) {
                    (3, None)
                } else {
                    (4, None)
                }
            }
            None => (3, None),
        },
    };
    r.status_id = id;
    r.message = message;
    r
}

/// Output as Judge0 compares it: each line without its trailing white space, then the
/// whole without trailing white space (leading white space counts).
fn normalized(b: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(b);
    let lines: Vec<&str> = text.split('\n').map(str::trim_end).collect();
    lines.join("\n").trim_end().as_bytes().to_vec()
}

/// The result of an internal failure.
pub fn internal_error(message: &str) -> StoredResult {
    StoredResult {
        status_id: 13,
        message: Some(message.to_owned()),
        ..StoredResult::default()
    }
}

/// Every field a client may ask for; `fields=*` is all of them.
pub const ALL_FIELDS: &[&str] = &[
    "source_code",
    "language_id",
    "stdin",
    "expected_output",
    "stdout",
    "status_id",
    "created_at",
    "finished_at",
    "time",
    "memory",
    "stderr",
    "token",
    "number_of_runs",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "compile_output",
    "exit_code",
    "exit_signal",
    "message",
    "wall_time",
    "compiler_options",
    "command_line_arguments",
    "redirect_stderr_to_stdout",
    "callback_url",
    "additional_files",
    "enable_network",
    "status",
    "language",
];

/// What a GET answers when the client names no fields.
pub const DEFAULT_FIELDS: &[&str] = &[
    "stdout",
    "time",
    "memory",
    "stderr",
    "token",
    "compile_output",
    "message",
    "status",
];

/// The fields a `fields` parameter names; `Err` names the unknown ones.
pub fn fields(param: Option<&str>) -> Result<Vec<&'static str>, String> {
    let Some(p) = param.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(DEFAULT_FIELDS.to_vec());
    };
    if p == "*" {
        return Ok(ALL_FIELDS.to_vec());
    }
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for f in p.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match ALL_FIELDS.iter().find(|a| **a == f) {
            Some(a) => out.push(*a),
            None => unknown.push(f.to_owned()),
        }
    }
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(format!("invalid fields: [{}]", unknown.join(", ")))
    }
}

/// A submission as Judge0 shows it: `fields` of it, text base64 when `base64`, else
/// UTF-8 (lossy, with a message saying so when bytes were replaced).
pub struct View<'a> {
    pub token: &'a str,
    pub stored: &'a Stored,
    pub result: Option<&'a StoredResult>,
    /// 1 queued, 2 running, else the result's.
    pub state_status: u8,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub langs: &'a Languages,
}

impl View<'_> {
    pub fn render(&self, fields: &[&str], base64: bool) -> Value {
        let mut map = Map::new();
        let mut lossy = false;
        let mut text = |b64text: Option<&String>| -> Value {
            match b64text {
                None => Value::Null,
                Some(t) if base64 => Value::String(t.clone()),
                Some(t) => {
                    let bytes = unb64(t).unwrap_or_default();
                    match String::from_utf8(bytes) {
                        Ok(s) => Value::String(s),
                        Err(e) => {
                            lossy = true;
                            Value::String(String::from_utf8_lossy(e.as_bytes()).into_owned())
                        }
                    }
                }
            }
        };
        let s = self.stored;
        let r = self.result;
        let status = r.map_or(self.state_status, |r| r.status_id);
        let secs = |v: Option<f64>| v.map_or(Value::Null, |v| Value::String(format!("{v:.3}")));
        for f in fields {
            let v = match *f {
                "source_code" => text(Some(&s.source_code)),
                "language_id" => Value::from(s.language_id),
                "stdin" => text(Some(&s.stdin)),
                "expected_output" => text(s.expected_output.as_ref()),
                "stdout" => text(r.and_then(|r| r.stdout.as_ref())),
                "stderr" => text(r.and_then(|r| r.stderr.as_ref())),
                "compile_output" => text(r.and_then(|r| r.compile_output.as_ref())),
                "status_id" => Value::from(status),
                "status" => status_json(status),
                "created_at" => Value::String(sandlab_core::rfc3339_millis(self.created_at_ms)),
                "finished_at" => self.finished_at_ms.map_or(Value::Null, |ms| {
                    Value::String(sandlab_core::rfc3339_millis(ms))
                }),
                "time" => secs(r.and_then(|r| r.time)),
                "wall_time" => secs(r.and_then(|r| r.wall_time)),
                "memory" => r.and_then(|r| r.memory).map_or(Value::Null, Value::from),
                "token" => Value::String(self.token.to_owned()),
                "number_of_runs" => Value::from(s.number_of_runs),
                "cpu_time_limit" => Value::String(format!("{:.1}", s.cpu_time_limit)),
                "cpu_extra_time" => Value::String(format!("{:.1}", s.cpu_extra_time)),
                "wall_time_limit" => Value::String(format!("{:.1}", s.wall_time_limit)),
                "memory_limit" => Value::from(s.memory_limit),
                "stack_limit" => Value::from(s.stack_limit),
                "max_processes_and_or_threads" => Value::from(s.max_processes_and_or_threads),
                "enable_per_process_and_thread_time_limit"
                | "enable_per_process_and_thread_memory_limit" => Value::Bool(false),
                "max_file_size" => Value::from(s.max_file_size),
                "exit_code" => r.and_then(|r| r.exit_code).map_or(Value::Null, Value::from),
                "exit_signal" => r
                    .and_then(|r| r.exit_signal)
                    .map_or(Value::Null, Value::from),
                "message" => r
                    .and_then(|r| r.message.clone())
                    .map_or(Value::Null, Value::String),
                "compiler_options" => s
                    .compiler_options
                    .clone()
                    .map_or(Value::Null, Value::String),
                "command_line_arguments" => s
                    .command_line_arguments
                    .clone()
                    .map_or(Value::Null, Value::String),
                "redirect_stderr_to_stdout" => Value::Bool(s.redirect_stderr_to_stdout),
                "callback_url" | "additional_files" => Value::Null,
                "enable_network" => Value::Bool(s.enable_network),
                "language" => self
                    .langs
                    .by_judge0(s.language_id)
                    .map_or(Value::Null, |l| language_json(s.language_id, l)),
                _ => continue,
            };
            map.insert((*f).to_owned(), v);
        }
        if lossy && map.contains_key("message") {
            map.insert(
                "message".into(),
                Value::String("Some output is not valid UTF-8 and was shown with replacement characters; ask with base64_encoded=true for the bytes.".into()),
            );
        }
        Value::Object(map)
    }
}

/// A language's name as Judge0 lists it: `Python (3.11.2)`.
pub fn language_name(l: &Language) -> String {
    format!("{} ({})", l.display_name(), l.version)
}

/// `GET /languages/{id}`'s form.
pub fn language_json(id: u32, l: &Language) -> Value {
    serde_json::json!({
        "id": id,
        "name": language_name(l),
        "is_archived": false,
        "source_file": l.file,
        "compile_cmd": l.compile.as_ref().map(|c| c.join(" ")),
        "run_cmd": l.run.join(" "),
    })
}

/// A new submission token: a random UUID v4, as Judge0 makes them.
pub fn new_token() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Whether `t` looks like a token (so anything else is refused before the store).
pub fn valid_token(t: &str) -> bool {
    t.len() == 36
        && t.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn langs() -> Languages {
        Languages::load(None).0
    }

    #[test]
    fn tokens_are_uuid4() {
        let t = new_token();
        assert!(valid_token(&t), "{t}");
        assert_eq!(&t[14..15], "4");
        assert!(!valid_token("../../etc/passwd"));
    }

    #[test]
    fn bodies_are_checked_field_by_field() {
        let body: SubmissionBody = serde_json::from_value(serde_json::json!({
            "language_id": 71, "source_code": "cHJpbnQoMSk=", "stdin": "", "cpu_time_limit": "2",
        }))
        .unwrap();
        let s = check(body, true, &langs(), false).unwrap();
        assert_eq!(unb64(&s.source_code).unwrap(), b"print(1)");
        assert_eq!(s.cpu_time_limit, 2.0);
        assert_eq!(s.memory_limit, 262_144);
        let body: SubmissionBody = serde_json::from_value(serde_json::json!({
            "language_id": 999_999, "cpu_time_limit": 1000, "enable_network": true,
            "compiler_options": "; rm -rf /", "callback_url": "http://169.254.169.254/",
        }))
        .unwrap();
        let e = check(body, false, &langs(), false).unwrap_err();
        for key in [
            "language_id",
            "source_code",
            "cpu_time_limit",
            "enable_network",
            "compiler_options",
            "callback_url",
        ] {
            assert!(e.contains_key(key), "{key}: {e:?}");
        }
    }

    #[test]
    fn fields_parse() {
        assert_eq!(fields(None).unwrap(), DEFAULT_FIELDS);
        assert_eq!(fields(Some("*")).unwrap().len(), ALL_FIELDS.len());
        assert_eq!(
            fields(Some("stdout,status_id")).unwrap(),
            ["stdout", "status_id"]
        );
        assert!(fields(Some("stdout,password")).is_err());
    }

    #[test]
    fn outputs_compare_as_judge0_does() {
        assert_eq!(normalized(b"1 \n2\n"), normalized(b"1\n2"));
        assert_ne!(normalized(b"   x"), normalized(b"x"));
        assert_eq!(normalized(b"a\r\n\n\n"), b"a");
    }
}
