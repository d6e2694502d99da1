//! The one engine behind every code execution API (native, Piston, Judge0, the
//! WebSocket): a bounded queue, a sandbox per job (claimed from the language image's warm
//! pool when the job's shape matches it, else created cold), the files written through
//! the agent, the compile and run steps under their limits, and the sandbox removed
//! whatever happened. A sandbox that ran a job is never given to another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sandlab_core::{ByteSize, Limits, NetworkMode, SandboxId};
use sandlab_proto::{AgentClient, ExecEvent, ExecRequest, ExitStatus};
use tokio::sync::{mpsc, Semaphore};

use super::languages::{Language, Languages};
use super::{CodeExecError, Result};
use crate::config::PoolProfile;
use crate::images::ImageCatalog;
use crate::run_status::{HostView, RunStatus};
use crate::sandboxes::{NewSandbox, Sandboxes, API_HOSTNAME};

/// The sandbox shape of a job with default limits: what the warm pool keeps started.
pub const DEFAULT_MEMORY: ByteSize = ByteSize::mib(256);
pub const DEFAULT_PIDS: u32 = 64;
const DISK: ByteSize = ByteSize::mib(256);
/// Longer than any step may run, so a lost agent cannot hold a job forever.
const GRACE: Duration = Duration::from_secs(10);

/// How the server runs code (`server.execute_*`).
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    /// Whether execution sandboxes get egress (`execute_network`, default off).
    pub network: bool,
    /// Where the files go inside the sandbox.
    pub workdir: String,
    /// Jobs running at once (`execute_concurrency`; default twice the CPUs).
    pub concurrency: usize,
    /// Jobs waiting beyond those (`execute_queue`, default 64); past it, 503.
    pub queue: usize,
    /// Jobs one caller may have running or waiting (`execute_per_user`, default 32); past
    /// it, 429.
    pub per_user: usize,
    /// Warm sandboxes kept per language image (`execute_pool`, default 1; 0: none).
    pub pool: usize,
    /// Whether the Piston and Judge0 routes answer without a token (`execute_anonymous`).
    pub anonymous: bool,
    /// How long finished Judge0 submissions are kept (`execute_keep`, default 24h).
    pub keep: Duration,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        ExecuteOptions {
            network: false,
            workdir: "/code".into(),
            concurrency: (cpus * 2).max(2),
            queue: 64,
            per_user: 32,
            pool: 1,
            anonymous: false,
            keep: Duration::from_secs(24 * 3600),
        }
    }
}

/// Limits of one step.
#[derive(Debug, Clone, Copy)]
pub struct StepLimits {
    pub wall: Duration,
    pub cpu_ms: u64,
    /// stdout and stderr kept together; past it the process is killed.
    pub output: usize,
    /// `RLIMIT_AS`, `RLIMIT_STACK` and `RLIMIT_FSIZE` in bytes, when asked for.
    pub address_space: Option<u64>,
    pub stack: Option<u64>,
    pub file_size: Option<u64>,
}

impl StepLimits {
    pub fn new(wall: Duration, cpu_ms: u64, output: usize) -> StepLimits {
        StepLimits {
            wall,
            cpu_ms,
            output,
            address_space: None,
            stack: None,
            file_size: None,
        }
    }
}

/// One program to compile and run, checked.
#[derive(Debug, Clone)]
pub struct Job {
    pub lang: Language,
    /// `(name, content)`, the entry first.
    pub files: Vec<(String, Vec<u8>)>,
    pub stdin: Vec<u8>,
    pub args: Vec<String>,
    /// Appended to the compile command (Judge0's `compiler_options`).
    pub compile_options: Vec<String>,
    pub compile: StepLimits,
    pub run: StepLimits,
    /// The sandbox's memory and process limits.
    pub memory: ByteSize,
    pub pids: u32,
    pub network: bool,
    /// Times the run step runs (Judge0's `number_of_runs`); the last run is reported.
    pub runs: u32,
}

impl Job {
    /// The sandbox limits: the job's, raised to the language's least.
    pub fn sandbox_limits(&self) -> Limits {
        sandbox_limits(&self.lang, self.memory, self.pids, self.network)
    }
}

fn sandbox_limits(lang: &Language, memory: ByteSize, pids: u32, network: bool) -> Limits {
    Limits {
        memory: memory.max(lang.min_memory().unwrap_or(ByteSize(0))),
        cpus: 1.0,
        pids: pids.max(lang.pids.unwrap_or(0)),
        disk: DISK,
        network: if network {
            NetworkMode::Egress
        } else {
            NetworkMode::None
        },
        profile: Default::default(),
    }
}

/// Which step an event or result is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Compile,
    Run,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Compile => "compile",
            Stage::Run => "run",
        }
    }
}

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// stdout and stderr interleaved as they came.
    pub output: Vec<u8>,
    pub wall_ms: u64,
    pub cpu_ms: u64,
    pub memory_peak_bytes: u64,
}

/// A job's outcome: `run` is `None` when the compile step failed.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub compile: Option<StepOutcome>,
    pub run: Option<StepOutcome>,
}

/// What an interactive job streams out.
#[derive(Debug, Clone)]
pub enum Event {
    Stage(Stage),
    Stdout(Bytes),
    Stderr(Bytes),
    Exit(Stage, Box<StepOutcome>),
}

/// What an interactive client sends in while the run step runs.
#[derive(Debug)]
pub enum Input {
    Stdin(Vec<u8>),
    /// End of stdin.
    Eof,
    /// A signal for the program's process group.
    Signal(i32),
}

/// The streams of an interactive job.
pub struct Interactive {
    pub events: mpsc::Sender<Event>,
    pub input: mpsc::Receiver<Input>,
}

/// Why a job was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The caller has `per_user` jobs already.
    Caller,
    /// The queue is full.
    Queue,
}

/// The bounded queue: who is running or waiting.
struct Admission {
    slots: Arc<Semaphore>,
    inside: AtomicUsize,
    most: usize,
    per_user: Mutex<HashMap<String, usize>>,
    per_user_most: usize,
}

/// A job's place in the queue; dropping it gives the place back.
pub struct Ticket {
    engine: Arc<Engine>,
    owner: String,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let adm = &self.engine.admission;
        adm.inside.fetch_sub(1, Ordering::AcqRel);
        let mut users = adm.per_user.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = users.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                users.remove(&self.owner);
            }
        }
        metrics::gauge!(crate::metrics::EXECUTE_QUEUED).decrement(1.0);
    }
}

/// The engine; one per server, shared by every execution route.
pub struct Engine {
    sandboxes: Arc<Sandboxes>,
    languages: Languages,
    images: Arc<dyn ImageCatalog>,
    /// The image names last read and when: every request asks, the list rarely changes.
    image_names: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
    opts: ExecuteOptions,
    admission: Admission,
}

/// How long a read of the image list serves requests.
const IMAGE_NAMES_FRESH: Duration = Duration::from_secs(2);

impl Engine {
    pub fn new(
        sandboxes: Arc<Sandboxes>,
        languages: Languages,
        images: Arc<dyn ImageCatalog>,
        opts: ExecuteOptions,
    ) -> Arc<Engine> {
        Arc::new(Engine {
            sandboxes,
            languages,
            images,
            image_names: Mutex::new(None),
            admission: Admission {
                slots: Arc::new(Semaphore::new(opts.concurrency.max(1))),
                inside: AtomicUsize::new(0),
                most: opts.concurrency.max(1) + opts.queue,
                per_user: Mutex::new(HashMap::new()),
                per_user_most: opts.per_user.max(1),
            },
            opts,
        })
    }

    pub fn languages(&self) -> &Languages {
        &self.languages
    }

    pub fn store(&self) -> &Arc<dyn sandlab_store::Store> {
        self.sandboxes.store()
    }

    /// This replica, as the submissions it runs name their runner.
    pub fn runner(&self) -> String {
        self.sandboxes.manager().holder().to_string()
    }

    pub fn options(&self) -> &ExecuteOptions {
        &self.opts
    }

    /// Jobs running or waiting now.
    pub fn inside(&self) -> usize {
        self.admission.inside.load(Ordering::Acquire)
    }

    /// The languages whose image this server has, by name.
    pub fn available(&self) -> Vec<&Language> {
        let images = self.image_names();
        self.languages
            .all()
            .filter(|l| images.contains(&l.image))
            .collect()
    }

    /// Whether the image `lang` runs in is here.
    pub fn is_available(&self, lang: &Language) -> bool {
        self.image_names().contains(&lang.image)
    }

    fn image_names(&self) -> Arc<Vec<String>> {
        let mut cached = self.image_names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, names)) = cached.as_ref() {
            if at.elapsed() < IMAGE_NAMES_FRESH {
                return names.clone();
            }
        }
        let names = match self.images.list() {
            Ok(list) => Arc::new(list.into_iter().map(|i| i.name).collect::<Vec<_>>()),
            Err(e) => {
                tracing::warn!(error = %e, "could not list images for code execution");
                return Arc::new(Vec::new());
            }
        };
        *cached = Some((Instant::now(), names.clone()));
        names
    }

    /// The language called `name` in `version`, if this server can run it.
    pub fn resolve(&self, name: &str, version: Option<&str>) -> Result<&Language> {
        let unknown = || CodeExecError::UnknownLanguage {
            language: name.to_owned(),
            version: version.map(str::to_owned),
        };
        let lang = self.languages.find(name, version).ok_or_else(unknown)?;
        if !self.is_available(lang) {
            return Err(CodeExecError::NotBuilt {
                language: lang.name.clone(),
                image: lang.image.clone(),
            });
        }
        Ok(lang)
    }

    /// A place in the queue for `owner`, or why not.
    pub fn admit(self: &Arc<Self>, owner: &str) -> std::result::Result<Ticket, Busy> {
        self.admit_inner(owner, false)
    }

    /// A place whatever the queue's length: for jobs acknowledged before a restart.
    pub fn admit_always(self: &Arc<Self>, owner: &str) -> Ticket {
        match self.admit_inner(owner, true) {
            Ok(t) => t,
            Err(_) => unreachable!("forced admission never refuses"),
        }
    }

    fn admit_inner(
        self: &Arc<Self>,
        owner: &str,
        force: bool,
    ) -> std::result::Result<Ticket, Busy> {
        let adm = &self.admission;
        let mut users = adm.per_user.lock().unwrap_or_else(|p| p.into_inner());
        let mine = users.get(owner).copied().unwrap_or(0);
        if !force && mine >= adm.per_user_most {
            return Err(Busy::Caller);
        }
        let inside = adm.inside.fetch_add(1, Ordering::AcqRel);
        if !force && inside >= adm.most {
            adm.inside.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy::Queue);
        }
        *users.entry(owner.to_owned()).or_insert(0) += 1;
        metrics::gauge!(crate::metrics::EXECUTE_QUEUED).increment(1.0);
        Ok(Ticket {
            engine: self.clone(),
            owner: owner.to_owned(),
        })
    }

    /// Runs `job` for the ticket's owner once a slot is free.
    ///
    /// The job runs in a task of its own: a client that hangs up does not cancel it half
    /// way (its sandbox is removed as always).
    pub async fn run(
        self: &Arc<Self>,
        ticket: Ticket,
        job: Job,
        interactive: Option<Interactive>,
    ) -> Result<Outcome> {
        let me = self.clone();
        tokio::spawn(async move { me.run_owned(ticket, job, interactive).await })
            .await
            .map_err(|e| CodeExecError::Task(e.to_string()))?
    }

    async fn run_owned(
        self: Arc<Self>,
        ticket: Ticket,
        job: Job,
        interactive: Option<Interactive>,
    ) -> Result<Outcome> {
        let slot = self
            .admission
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CodeExecError::Invalid("The server is shutting down.".into()))?;
        let queued = Instant::now();
        let steps = u32::from(job.lang.compile.is_some());
        let ttl = job.compile.wall * steps + job.run.wall * job.runs.max(1) + GRACE * 6;
        let rec = self
            .sandboxes
            .create(NewSandbox {
                image: job.lang.image.clone(),
                limits: job.sandbox_limits(),
                ttl,
                owner: ticket.owner.clone(),
                quota: u64::MAX,
                hostname: Some(API_HOSTNAME.to_owned()),
                playground: None,
                org: None,
            })
            .await?;
        let created = queued.elapsed();
        let result = self.run_in(&rec.id, &job, interactive).await;
        tracing::debug!(
            sandbox.id = %rec.id,
            language = %job.lang.name,
            create_ms = created.as_secs_f64() * 1e3,
            total_ms = queued.elapsed().as_secs_f64() * 1e3,
            "code execution job ran"
        );
        // The answer need not wait for the removal, but the queue place and the slot do:
        // sandboxes being removed count against the bounds like running ones.
        let sandboxes = self.sandboxes.clone();
        tokio::spawn(async move {
            if let Err(e) = sandboxes.remove(&rec.id).await {
                tracing::warn!(sandbox.id = %rec.id, error = %sandlab_core::error_chain(&e), "could not remove an execution sandbox");
            }
            drop(slot);
            drop(ticket);
        });
        result
    }

    async fn run_in(
        &self,
        id: &SandboxId,
        job: &Job,
        interactive: Option<Interactive>,
    ) -> Result<Outcome> {
        let (events, mut input) = match interactive {
            Some(i) => (Some(i.events), Some(i.input)),
            None => (None, None),
        };
        let started = Instant::now();
        let agent = self.sandboxes.agent(id).await?;
        let connected = started.elapsed();
        let workdir = &self.opts.workdir;
        agent.mkdir(workdir, true).await?;
        for (name, content) in &job.files {
            agent
                .write_file(&format!("{workdir}/{name}"), content, 0o644, false)
                .await?;
        }
        tracing::debug!(
            sandbox.id = %id,
            agent_ms = connected.as_secs_f64() * 1e3,
            files_ms = started.elapsed().as_secs_f64() * 1e3,
            "code execution job's files written"
        );
        let names: Vec<String> = job.files.iter().map(|(n, _)| n.clone()).collect();
        let compile = match &job.lang.compile {
            Some(template) => {
                let mut argv = expand(template, &names, &[]);
                argv.extend(job.compile_options.iter().cloned());
                let out = self
                    .step(
                        id,
                        &agent,
                        Stage::Compile,
                        argv,
                        StdinFrom::Nothing,
                        job,
                        job.compile,
                        events.as_ref(),
                    )
                    .await?;
                Some(out)
            }
            None => None,
        };
        if compile.as_ref().is_some_and(|c| c.status != RunStatus::Ok) {
            return Ok(Outcome { compile, run: None });
        }
        let argv = expand(&job.lang.run, &names, &job.args);
        let mut run = None;
        for _ in 0..job.runs.max(1) {
            let live = input.is_some();
            let stdin = match input.as_mut() {
                Some(rx) => StdinFrom::Live(rx),
                None => StdinFrom::Bytes(&job.stdin),
            };
            let out = self
                .step(
                    id,
                    &agent,
                    Stage::Run,
                    argv.clone(),
                    stdin,
                    job,
                    job.run,
                    events.as_ref(),
                )
                .await?;
            let failed = out.status != RunStatus::Ok;
            run = Some(out);
            if failed || live {
                break;
            }
        }
        Ok(Outcome { compile, run })
    }

    /// Runs one step under `limits` and judges it.
    #[allow(clippy::too_many_arguments)]
    async fn step(
        &self,
        id: &SandboxId,
        agent: &AgentClient,
        stage: Stage,
        argv: Vec<String>,
        stdin: StdinFrom<'_>,
        job: &Job,
        limits: StepLimits,
        events: Option<&mpsc::Sender<Event>>,
    ) -> Result<StepOutcome> {
        let manager = self.sandboxes.manager();
        let before = manager.stats(id).await.unwrap_or_default();
        if let Some(tx) = events {
            let _ = tx.send(Event::Stage(stage)).await;
        }
        let mut wrapped = vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            ulimits(&limits),
            "sh".to_owned(),
        ];
        wrapped.extend(argv);
        let req = ExecRequest {
            argv: wrapped,
            env: job
                .lang
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            cwd: Some(self.opts.workdir.clone()),
            timeout: Some(limits.wall),
            stdin: !matches!(stdin, StdinFrom::Nothing),
            ..ExecRequest::default()
        };
        let started = Instant::now();
        let collected = tokio::time::timeout(
            limits.wall + GRACE,
            collect(agent, req, stdin, limits.output, events),
        )
        .await
        .map_err(|_| CodeExecError::Lost)??;
        let wall_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let after = manager.stats(id).await.unwrap_or_default();
        tracing::debug!(sandbox.id = %id, stage = stage.as_str(), wall_ms, "code execution step ended");
        let cpu_ms = after.cpu_usage_ns.saturating_sub(before.cpu_usage_ns) / 1_000_000;
        let exit = collected.exit.unwrap_or(ExitStatus {
            code: None,
            signal: Some(libc::SIGKILL),
            timed_out: false,
        });
        let status = RunStatus::of(
            &exit,
            collected.exit.is_none(),
            HostView {
                oom_killed: after.oom_kills > before.oom_kills,
                cpu_exceeded: cpu_ms > limits.cpu_ms,
            },
        );
        metrics::counter!(crate::metrics::EXECUTE, "status" => status.as_str()).increment(1);
        let out = StepOutcome {
            status,
            exit_code: exit.code,
            signal: exit.signal,
            stdout: collected.stdout,
            stderr: collected.stderr,
            output: collected.output,
            wall_ms,
            cpu_ms,
            memory_peak_bytes: after.memory_peak_bytes,
        };
        if let Some(tx) = events {
            let _ = tx.send(Event::Exit(stage, Box::new(out.clone()))).await;
        }
        Ok(out)
    }

    /// Warm pool profiles for the languages' images that are here, one per image and
    /// default sandbox shape (`exec-<image>`), each `size` strong.
    pub fn pool_profiles(
        languages: &Languages,
        images: &dyn ImageCatalog,
        opts: &ExecuteOptions,
    ) -> Vec<PoolProfile> {
        if opts.pool == 0 {
            return Vec::new();
        }
        let here: Vec<String> = images
            .list()
            .map(|l| l.into_iter().map(|i| i.name).collect())
            .unwrap_or_default();
        let mut out: Vec<PoolProfile> = Vec::new();
        for lang in languages.all().filter(|l| here.contains(&l.image)) {
            let limits = sandbox_limits(lang, DEFAULT_MEMORY, DEFAULT_PIDS, opts.network);
            if out
                .iter()
                .any(|p| p.image == lang.image && p.limits == limits)
            {
                continue;
            }
            let mut name = format!("exec-{}", lang.image);
            if out.iter().any(|p| p.name == name) {
                name = format!("{name}-{}m", limits.memory.0 >> 20);
            }
            name.truncate(32);
            if out.iter().any(|p| p.name == name) {
                continue;
            }
            out.push(PoolProfile {
                name,
                image: lang.image.clone(),
                limits,
                size: opts.pool,
            });
        }
        out
    }
}

/// Where a step's stdin comes from.
enum StdinFrom<'a> {
    Nothing,
    Bytes(&'a [u8]),
    Live(&'a mut mpsc::Receiver<Input>),
}

/// `sh -c` text that sets the step's resource limits, then runs `"$@"`. dash counts
/// `-f` in 512-byte blocks and `-v`, `-s` in KiB.
fn ulimits(l: &StepLimits) -> String {
    // RLIMIT_CPU counts whole seconds: round up, and judge the exact figure from the
    // cgroup. The soft limit sends SIGXCPU (judged a timeout even where no cgroup
    // counts), the hard one a second later SIGKILL.
    let secs = l.cpu_ms.div_ceil(1000).max(1);
    let mut s = format!("ulimit -S -t {secs} && ulimit -H -t {}", secs + 1);
    if let Some(b) = l.address_space {
        s.push_str(&format!(" && ulimit -v {}", b.div_ceil(1024)));
    }
    if let Some(b) = l.stack {
        s.push_str(&format!(" && ulimit -s {}", b.div_ceil(1024)));
    }
    if let Some(b) = l.file_size {
        s.push_str(&format!(" && ulimit -f {}", b.div_ceil(512)));
    }
    s.push_str(" || exit 125; exec \"$@\"");
    s
}

/// `template` with `{file}` the entry, `{files}` every file and `{args}` the arguments.
pub(super) fn expand(template: &[String], files: &[String], args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for part in template {
        match part.as_str() {
            "{args}" => out.extend(args.iter().cloned()),
            "{files}" => out.extend(files.iter().cloned()),
            _ => out.push(part.replace("{file}", files.first().map_or("", String::as_str))),
        }
    }
    out
}

struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    output: Vec<u8>,
    /// `None` when the output limit was passed and the process killed.
    exit: Option<ExitStatus>,
}

/// Runs the process, feeding stdin and keeping output up to `max` bytes; past that the
/// process group is killed (its event stream dropped).
async fn collect(
    agent: &AgentClient,
    req: ExecRequest,
    stdin: StdinFrom<'_>,
    max: usize,
    events: Option<&mpsc::Sender<Event>>,
) -> Result<Collected> {
    let (input, mut stream) = agent.exec(req).await?.split();
    let feed = async {
        match stdin {
            StdinFrom::Nothing => std::future::pending::<()>().await,
            StdinFrom::Bytes(data) => {
                // A process may exit without reading its stdin: not an error here.
                if data.is_empty() || input.write_stdin(data).await.is_ok() {
                    let _ = input.close_stdin().await;
                }
                std::future::pending::<()>().await
            }
            StdinFrom::Live(rx) => {
                while let Some(msg) = rx.recv().await {
                    let sent = match msg {
                        Input::Stdin(b) => input.write_stdin(&b).await,
                        Input::Eof => input.close_stdin().await,
                        Input::Signal(s) => input.signal(s).await,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                // The client went away: end stdin, let the program finish or time out.
                let _ = input.close_stdin().await;
                std::future::pending::<()>().await
            }
        }
    };
    let read = async move {
        let mut c = Collected {
            stdout: Vec::new(),
            stderr: Vec::new(),
            output: Vec::new(),
            exit: None,
        };
        loop {
            let (err, bytes) = match stream.try_next().await? {
                Some(ExecEvent::Stdout(b)) => (false, b),
                Some(ExecEvent::Stderr(b)) => (true, b),
                Some(ExecEvent::Exit(exit)) => {
                    c.exit = Some(exit);
                    return Ok::<_, CodeExecError>(c);
                }
                None => return Err(CodeExecError::Lost),
            };
            let room = max.saturating_sub(c.output.len());
            let kept = bytes.slice(..bytes.len().min(room));
            if let Some(tx) = events.filter(|_| !kept.is_empty()) {
                let ev = if err {
                    Event::Stderr(kept.clone())
                } else {
                    Event::Stdout(kept.clone())
                };
                let _ = tx.send(ev).await;
            }
            if err { &mut c.stderr } else { &mut c.stdout }.extend_from_slice(&kept);
            c.output.extend_from_slice(&kept);
            if kept.len() < bytes.len() {
                // Dropping the stream kills the process group.
                return Ok(c);
            }
        }
    };
    tokio::select! {
        r = read => r,
        () = feed => unreachable!("feeding stdin never ends by itself"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_expand() {
        let t: Vec<String> = ["gcc", "-o", "main", "{files}", "&&", "{file}", "{args}"]
            .map(String::from)
            .to_vec();
        let files = ["a.c".to_owned(), "b.c".to_owned()];
        assert_eq!(
            expand(&t, &files, &["x".into(), "y z".into()]),
            ["gcc", "-o", "main", "a.c", "b.c", "&&", "a.c", "x", "y z"]
        );
        assert_eq!(expand(&t[5..], &files, &[]), ["a.c"]);
    }

    #[test]
    fn limits_become_ulimit_calls() {
        let mut l = StepLimits::new(Duration::from_secs(1), 1500, 10);
        assert_eq!(
            ulimits(&l),
            "ulimit -S -t 2 && ulimit -H -t 3 || exit 125; exec \"$@\""
        );
        l.address_space = Some(1 << 20);
        l.stack = Some(8 << 20);
        l.file_size = Some(1000);
        assert_eq!(
            ulimits(&l),
            "ulimit -S -t 2 && ulimit -H -t 3 && ulimit -v 1024 && ulimit -s 8192 && ulimit -f 2 || exit 125; exec \"$@\""
        );
    }
}
