//! `sandlab bench pool|terminal|density`: `sandlab serve` measured from outside, through its
//! HTTP API and terminal WebSocket, against the targets of SPEC section 9.
//!
//! Each bench starts its own server (this same executable, so the same build is measured)
//! on a free loopback port over the configured data directory (where the images are), with
//! a bench config: the user's file without its pools, plus the bench's own pool for
//! `bench pool`. It signs in as a fresh admin `bench-<random>` (created with `sandlab user
//! add`, disabled afterwards; users cannot be deleted). On the way out, also after an
//! error, Ctrl-C or SIGTERM, [`Server::stop`] deletes every sandbox the bench made and the
//! bench pool's warm sandboxes, then stops the server. Bench sandboxes carry a 30-minute TTL
//! so that even a killed bench leaves nothing for longer; the server gets SIGTERM when the
//! bench dies. Don't run a bench while another `sandlab serve` uses the same data directory:
//! both reconcile the host at start-up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::bench::percentile;
use crate::config::Config;

#[derive(Args, Debug)]
pub struct PoolArgs {
    /// Warm claims and cold creates, each.
    #[arg(short, long, default_value_t = 50)]
    n: usize,
}

#[derive(Args, Debug)]
pub struct TerminalArgs {
    /// Keystrokes to time.
    #[arg(short, long, default_value_t = 200)]
    n: usize,
    /// Size of the file `cat` prints, in MiB.
    #[arg(long, default_value_t = 100)]
    mib: u64,
}

#[derive(Args, Debug)]
pub struct DensityArgs {
    /// Idle sandboxes to start.
    #[arg(short, long, default_value_t = 200)]
    n: usize,
}

const POOL: &str = "bench";
const POOL_SIZE: usize = 2;
const TTL: &str = "30m";
const MIB: f64 = 1024.0 * 1024.0;
/// Server memory growth during the `cat` still counted as flat.
const FLAT_BYTES: u64 = 32 << 20;
/// This very executable, also when `target/` was rebuilt meanwhile.
const SELF: &str = "/proc/self/exe";

pub async fn pool(cfg: &Config, args: PoolArgs) -> anyhow::Result<()> {
    let srv = Server::start(cfg, true).await?;
    let result = interruptible(pool_bench(&srv, args.n)).await;
    srv.stop().await;
    result
}

pub async fn terminal(cfg: &Config, args: TerminalArgs) -> anyhow::Result<()> {
    let srv = Server::start(cfg, false).await?;
    let result = interruptible(terminal_bench(&srv, args.n, args.mib)).await;
    srv.stop().await;
    result
}

pub async fn density(cfg: &Config, args: DensityArgs) -> anyhow::Result<()> {
    let srv = Server::start(cfg, false).await?;
    let result = interruptible(density_bench(&srv, args.n)).await;
    srv.stop().await;
    result
}

/// Runs `fut` unless SIGINT or SIGTERM comes first, so the caller still cleans up.
async fn interruptible<T>(
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        r = fut => r,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = term.recv() => bail!("terminated"),
    }
}

async fn pool_bench(srv: &Server, n: usize) -> anyhow::Result<()> {
    srv.wait_pool_full().await?;
    let before = srv.metrics().await?;
    let (mut warm, mut cold) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let bar = progress(2 * n as u64, "create");
    for i in 0..2 * n {
        // Alternate which goes first; the pool is full before every request.
        let claim = (i % 2 == 0) == (i / 2 % 2 == 0);
        srv.wait_pool_full().await?;
        let body = if claim {
            json!({ "ttl": TTL })
        } else {
            json!({ "memory": "511M", "ttl": TTL })
        };
        let (id, took) = srv.create(&body).await?;
        if claim { &mut warm } else { &mut cold }.push(took);
        srv.delete(&id).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let after = srv.metrics().await?;
    let delta = |name: &str, label: &str| {
        metric(&after, name, label).unwrap_or(0.0) - metric(&before, name, label).unwrap_or(0.0)
    };
    let label = format!("profile=\"{POOL}\"");
    let claims = delta("sandlab_pool_claim_seconds_count", &label);
    let claim_mean = delta("sandlab_pool_claim_seconds_sum", &label) / claims.max(1.0);
    let colds = delta("sandlab_sandbox_create_seconds_count", "source=\"cold\"");
    let cold_mean = delta("sandlab_sandbox_create_seconds_sum", "source=\"cold\"") / colds.max(1.0);
    warm.sort();
    cold.sort();
    println!("POST /api/v1/sandboxes to 201, {n} each, alternating; pool `{POOL}` of {POOL_SIZE}, refilled before each");
    println!("{:<34} {:>9} {:>9} {:>12}", "", "p50", "p99", "server mean");
    let row = |name: &str, s: &[Duration], mean: f64| {
        let mean = Duration::from_secs_f64(mean.max(0.0));
        println!(
            "{name:<34} {:>9.1?} {:>9.1?} {mean:>12.1?}",
            percentile(s, 0.5),
            percentile(s, 0.99)
        );
    };
    row("cold create (memory 511M)", &cold, cold_mean);
    row("warm claim (pool profile)", &warm, claim_mean);
    let (p50, p99) = (percentile(&warm, 0.5), percentile(&warm, 0.99));
    println!(
        "warm claim p50 {p50:.1?} (target <= 5ms) {}, p99 {p99:.1?} (target <= 25ms) {}; cold/warm p50 {:.1}x, p99 {:.1}x; {claims}/{n} were claims",
        verdict(p50 <= Duration::from_millis(5) && claims as usize == n),
        verdict(p99 <= Duration::from_millis(25) && claims as usize == n),
        ratio(percentile(&cold, 0.5), p50),
        ratio(percentile(&cold, 0.99), p99),
    );
    Ok(())
}

async fn terminal_bench(srv: &Server, n: usize, mib: u64) -> anyhow::Result<()> {
    let (id, _) = srv.create(&json!({ "ttl": TTL })).await?;
    let size = mib << 20;
    let script = format!(
        "head -c {} /dev/urandom | base64 | head -c {size} > /tmp/bench-big",
        size / 4 * 3 + 3
    );
    srv.exec(&id, &["sh", "-c", &script]).await?;
    let mut echo = srv.terminal(&id, "echo").await?;
    // Raw mode without kernel echo: `cat` itself writes back each byte it reads, as a
    // shell's line editor does for every keystroke.
    send(&mut echo, b"stty raw -echo; echo BENCH''READY; exec cat\n").await?;
    read_until(&mut echo, b"BENCHREADY").await?;
    let mut rtt = keystrokes(&mut echo, n).await?;
    rtt.sort();
    drop(echo);
    let mut main = srv.terminal(&id, "main").await?;
    send(&mut main, b"stty -echo; echo BENCH''READY\n").await?;
    read_until(&mut main, b"BENCHREADY").await?;
    let rss = || status_bytes(srv.pid, "VmRSS");
    let (rss0, hwm0) = (rss()?, status_bytes(srv.pid, "VmHWM")?);
    let (mut peak, mut tick) = (rss0, tokio::time::interval(Duration::from_millis(20)));
    let start = Instant::now();
    send(&mut main, b"cat /tmp/bench-big; echo BENCH''DONE\n").await?;
    let read = read_until(&mut main, b"BENCHDONE");
    tokio::pin!(read);
    let got = loop {
        tokio::select! {
            got = &mut read => break got?,
            _ = tick.tick() => peak = peak.max(rss()?),
        }
    };
    let took = start.elapsed();
    if got < size {
        bail!("`cat` of {size} bytes printed only {got}");
    }
    let (rss1, hwm1) = (rss()?, status_bytes(srv.pid, "VmHWM")?);
    let rate = got as f64 / MIB / took.as_secs_f64().max(1e-9);
    let (p50, p99) = (percentile(&rtt, 0.5), percentile(&rtt, 0.99));
    let growth = peak.max(rss1).saturating_sub(rss0);
    println!("terminal WebSocket of {id}: {n} keystrokes to a raw `cat`, then `cat` of {mib} MiB of base64");
    println!("{:<28} {:>9} {:>9}", "", "p50", "p99");
    println!(
        "{:<28} {p50:>9.1?} {p99:>9.1?}",
        "keystroke echo round trip"
    );
    println!(
        "{:<28} {:.1} MiB in {took:.2?}: {rate:.1} MiB/s",
        "cat",
        mb(got)
    );
    println!(
        "{:<28} RSS {:.1} MiB before, {:.1} peak during, {:.1} after; VmHWM +{:.1} MiB",
        "server memory during cat",
        mb(rss0),
        mb(peak),
        mb(rss1),
        mb(hwm1.saturating_sub(hwm0))
    );
    println!(
        "echo p50 {p50:.1?} (target <= 2ms) {}; cat {rate:.1} MiB/s (target >= 50) {}; server RSS +{:.1} MiB (flat: <= {} MiB) {}",
        verdict(p50 <= Duration::from_millis(2)),
        verdict(rate >= 50.0),
        mb(growth),
        FLAT_BYTES >> 20,
        verdict(growth <= FLAT_BYTES),
    );
    Ok(())
}

async fn density_bench(srv: &Server, n: usize) -> anyhow::Result<()> {
    let (used0, kernel0) = (host_used()?, kernel_used()?);
    let rss0 = status_bytes(srv.pid, "VmRSS")?;
    let start = Instant::now();
    let bar = progress(n as u64, "create");
    let ids = bounded(n, 4, |_| async {
        let id = srv.create(&json!({ "ttl": TTL })).await?.0;
        bar.inc(1);
        Ok(id)
    })
    .await?;
    bar.finish_and_clear();
    let created = start.elapsed();
    let running = bounded(n, 16, |i| srv.is_running(&ids[i])).await?;
    let running = running.into_iter().filter(|r| *r).count();
    let (grew, kernel) = (host_used()? - used0, kernel_used()? - kernel0);
    let own = ids
        .iter()
        .map(|id| private_bytes(id))
        .sum::<anyhow::Result<u64>>()?;
    let server = status_bytes(srv.pid, "VmRSS")? as i64 - rss0 as i64;
    let start = Instant::now();
    bounded(n, 16, |i| srv.delete(&ids[i])).await?;
    let deleted = start.elapsed();
    let left = host_used()? - used0;
    let per = |b: i64| b as f64 / MIB / n.max(1) as f64;
    let rest = grew - own as i64;
    // Unrelated processes move the host total; kernel + server is the steadier estimate.
    let overhead = per(rest.max(kernel + server));
    println!("{n} idle sandboxes of the default shape, created 4 at a time; host memory from /proc/meminfo");
    println!("{:<50} {:>9} {:>12}", "", "MiB", "per sandbox");
    for (what, bytes) in [
        ("host memory in use grew (without file cache)", grew),
        (
            "  their processes (anon + shmem of their cgroups)",
            own as i64,
        ),
        ("  the rest, beyond their processes", rest),
        ("kernel: slab, page tables, stacks, per-CPU", kernel),
        ("server RSS", server),
        ("in use after deleting them, against before", left),
    ] {
        println!(
            "{what:<50} {:>9.1} {:>12.2}",
            bytes as f64 / MIB,
            per(bytes)
        );
    }
    println!(
        "{running}/{n} running {}; per sandbox {overhead:.2} MiB beyond its processes (larger of rest and kernel + server; target <= 5) {}; created in {created:.1?}, deleted in {deleted:.1?} (16 at a time)",
        verdict(running == n),
        verdict(overhead <= 5.0),
    );
    Ok(())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "MISS"
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} {elapsed}")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// `f(0..n)` with at most `k` in flight; the results in order, or the first error.
async fn bounded<T, F, Fut>(n: usize, k: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    futures::stream::iter((0..n).map(f))
        .buffered(k)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Socket, bytes: &[u8]) -> anyhow::Result<()> {
    ws.send(Message::binary(bytes.to_vec()))
        .await
        .context("cannot write to the terminal")
}

/// The next binary frame, within 60 s.
async fn frame(ws: &mut Socket) -> anyhow::Result<bytes::Bytes> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .context("no terminal output for 60 s")?
            .context("the server closed the terminal")?
            .context("cannot read the terminal")?;
        match msg {
            Message::Binary(b) => return Ok(b),
            Message::Close(c) => bail!("the server closed the terminal: {c:?}"),
            _ => {}
        }
    }
}

/// Reads until `needle` has been seen, also across frames; returns the bytes read.
async fn read_until(ws: &mut Socket, needle: &[u8]) -> anyhow::Result<u64> {
    let k = needle.len().saturating_sub(1);
    let mut carry: Vec<u8> = Vec::new();
    let mut total = 0u64;
    loop {
        let b = frame(ws).await?;
        total += b.len() as u64;
        let mut edge = std::mem::take(&mut carry);
        edge.extend_from_slice(&b[..b.len().min(k)]);
        if memchr::memmem::find(&b, needle).is_some()
            || memchr::memmem::find(&edge, needle).is_some()
        {
            return Ok(total);
        }
        carry = match b.len().checked_sub(k) {
            Some(from) => b[from..].to_vec(),
            None => edge[edge.len().saturating_sub(k)..].to_vec(),
        };
    }
}

/// Round trips of single keystrokes, after a few untimed ones.
async fn keystrokes(ws: &mut Socket, n: usize) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 5 {
        let key = b'a' + (i % 26) as u8;
        let start = Instant::now();
        send(ws, &[key]).await?;
        while !frame(ws).await?.contains(&key) {}
        if i >= 5 {
            out.push(start.elapsed());
        }
    }
    Ok(out)
}

/// A `sandlab serve` child process and an admin session on it.
struct Server {
    child: Child,
    pid: u32,
    base: String,
    http: reqwest::Client,
    data_dir: PathBuf,
    dir: tempfile::TempDir,
    pool: bool,
    user: Option<String>,
    token: String,
    /// Sandboxes created and not yet deleted.
    made: Mutex<BTreeSet<String>>,
}

impl Server {
    async fn start(cfg: &Config, pool: bool) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("sandlab-bench-")
            .tempdir()?;
        std::fs::write(dir.path().join("sandlab.toml"), bench_config(cfg, pool)?)?;
        std::fs::create_dir(dir.path().join("labs"))?;
        let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let base = format!("http://{listen}");
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut cmd = Command::new(SELF);
        cmd.arg("--data-dir")
            .arg(&cfg.runtime.data_dir)
            .arg("--config")
            .arg(dir.path().join("sandlab.toml"))
            .args(["serve", "--listen", &listen.to_string(), "--labs"])
            .arg(dir.path().join("labs"))
            .env("SANDLAB_PUBLIC_URL", &base)
            .env("SANDLAB_MAX_SANDBOXES_PER_USER", "100000")
            .env("SANDLAB_CREATE_RATE", "100000")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group, so Ctrl-C reaches only the bench, which cleans up.
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe and changes only the child's own attributes;
        // the server gets SIGTERM if the bench dies without stopping it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            })
        };
        let child = cmd.spawn().context("cannot start `sandlab serve`")?;
        let mut srv = Server {
            pid: child.id().context("the server exited at once")?,
            child,
            base,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(120))
                .build()?,
            data_dir: cfg.runtime.data_dir.clone(),
            dir,
            pool,
            user: None,
            token: String::new(),
            made: Mutex::new(BTreeSet::new()),
        };
        if let Err(e) = srv.sign_in().await {
            let log = std::fs::read_to_string(srv.dir.path().join("server.log"));
            let log = log.unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .skip(log.lines().count().saturating_sub(5))
                .collect();
            srv.stop().await;
            bail!("{e:#} (the server's log ends: {})", tail.join(" | "));
        }
        Ok(srv)
    }

    async fn sign_in(&mut self) -> anyhow::Result<()> {
        self.wait_for("/healthz", Duration::from_secs(30)).await?;
        let user = format!(
            "bench-{}",
            crate::user_cmd::generate_password().to_lowercase()
        );
        let password = crate::user_cmd::generate_password();
        self.cli(
            &["user", "add", &user, "--role", "admin", "--password-stdin"],
            Some(&password),
        )
        .await?;
        self.user = Some(user.clone());
        eprintln!("bench: waiting for the server at {} to be ready", self.base);
        self.wait_for("/readyz", Duration::from_secs(900)).await?;
        let resp = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&json!({ "username": user, "password": password }))
            .send()
            .await?;
        let cookies: Vec<String> = resp
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect();
        let login = json_of(resp, 200).await.context("cannot sign in")?;
        let resp = self
            .http
            .post(format!("{}/api/v1/tokens", self.base))
            .header("Cookie", cookies.join("; "))
            .header(
                "X-CSRF-Token",
                login["csrf_token"].as_str().unwrap_or_default(),
            )
            .json(&json!({ "name": "bench" }))
            .send()
            .await?;
        let token = json_of(resp, 201).await.context("cannot create a token")?;
        self.token = token["token"].as_str().context("no token")?.to_owned();
        Ok(())
    }

    /// Polls `path` until it answers 200, while the server is alive.
    async fn wait_for(&mut self, path: &str, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited ({status})");
            }
            let resp = self.http.get(format!("{}{path}", self.base)).send().await;
            if resp.is_ok_and(|r| r.status() == 200) {
                return Ok(());
            }
            if start.elapsed() > limit {
                bail!("{path} did not answer 200 within {limit:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `sandlab <args>` on the same data directory and config, with `input` on stdin.
    async fn cli(&self, args: &[&str], input: Option<&str>) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut child = Command::new(SELF)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--config")
            .arg(self.dir.path().join("sandlab.toml"))
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(format!("{text}\n").as_bytes()).await?;
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            bail!("`sandlab {}` failed: {}", args.join(" "), err.trim());
        }
        Ok(())
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(req.send().await?)
    }

    /// `POST /sandboxes`: the new id and the time from request to the 201's body.
    async fn create(&self, body: &Value) -> anyhow::Result<(String, Duration)> {
        let start = Instant::now();
        let resp = self
            .call(reqwest::Method::POST, "/sandboxes", Some(body))
            .await?;
        let v = json_of(resp, 201)
            .await
            .context("cannot create a sandbox")?;
        let took = start.elapsed();
        let id = v["id"].as_str().context("no id in the answer")?.to_owned();
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        Ok((id, took))
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        let resp = self
            .call(reqwest::Method::DELETE, &format!("/sandboxes/{id}"), None)
            .await?;
        if !matches!(resp.status().as_u16(), 204 | 404) {
            bail!("cannot delete {id}: {}", resp.status());
        }
        self.made
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }

    async fn is_running(&self, id: &str) -> anyhow::Result<bool> {
        let resp = self
            .call(reqwest::Method::GET, &format!("/sandboxes/{id}"), None)
            .await?;
        Ok(json_of(resp, 200).await?["state"] == "running")
    }

    async fn exec(&self, id: &str, cmd: &[&str]) -> anyhow::Result<()> {
        let body = json!({ "cmd": cmd, "timeout": "10m" });
        let resp = self
            .call(
                reqwest::Method::POST,
                &format!("/sandboxes/{id}/exec"),
                Some(&body),
            )
            .await?;
        let v = json_of(resp, 200).await?;
        if v["exit_code"] != 0 {
            bail!("`{}` failed in the sandbox: {}", cmd.join(" "), v["stderr"]);
        }
        Ok(())
    }

    async fn terminal(&self, id: &str, name: &str) -> anyhow::Result<Socket> {
        let url = format!(
            "ws{}/api/v1/sandboxes/{id}/terminal?name={name}&cols=200&rows=50",
            &self.base[4..]
        );
        let mut req = url.into_client_request()?;
        req.headers_mut()
            .insert("Authorization", format!("Bearer {}", self.token).parse()?);
        req.headers_mut().insert("Origin", self.base.parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .context("cannot open the terminal WebSocket")?;
        Ok(ws)
    }

    async fn metrics(&self) -> anyhow::Result<String> {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?;
        Ok(resp.error_for_status()?.text().await?)
    }

    async fn wait_pool_full(&self) -> anyhow::Result<()> {
        let label = format!("profile=\"{POOL}\"");
        let start = Instant::now();
        while metric(&self.metrics().await?, "sandlab_pool_ready", &label) != Some(POOL_SIZE as f64)
        {
            if start.elapsed() > Duration::from_secs(120) {
                bail!("the warm pool did not refill within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Ids of the bench pool's own sandboxes.
    async fn pool_ids(&self) -> anyhow::Result<Vec<String>> {
        let (mut ids, mut path) = (Vec::new(), "/sandboxes?limit=500".to_owned());
        loop {
            let resp = self.call(reqwest::Method::GET, &path, None).await?;
            let page = json_of(resp, 200).await?;
            for s in page["items"].as_array().into_iter().flatten() {
                if s["owner"] == format!("pool:{POOL}") {
                    ids.extend(s["id"].as_str().map(str::to_owned));
                }
            }
            match page["next"].as_str() {
                Some(next) => path = format!("/sandboxes?limit=500&cursor={next}"),
                None => return Ok(ids),
            }
        }
    }

    fn made_ids(&self) -> Vec<String> {
        let made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.iter().cloned().collect()
    }

    /// Deletes what the bench made, stops the server, removes the pool's sandboxes and
    /// disables the bench admin. Problems are reported, not returned.
    async fn stop(mut self) {
        let made = self.made_ids();
        if !self.token.is_empty() {
            let _ = bounded(made.len(), 16, |i| self.delete(&made[i])).await;
        }
        let mut left = self.made_ids();
        if self.pool && !self.token.is_empty() {
            let _ = self.wait_pool_full().await;
            left.extend(self.pool_ids().await.unwrap_or_default());
        }
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        for id in &left {
            if let Err(e) = self.cli(&["sandbox", "rm", id], None).await {
                eprintln!("bench: warning: {e:#}");
            }
        }
        if let Some(user) = &self.user {
            if let Err(e) = self.cli(&["user", "set", user, "--disable"], None).await {
                eprintln!("bench: warning: {e:#}");
            }
        }
    }
}

/// The body of a response with the `expected` status, or an error with its message.
async fn json_of(resp: reqwest::Response, expected: u16) -> anyhow::Result<Value> {
    let status = resp.status();
    let text = resp.text().await?;
    if status.as_u16() != expected {
        bail!("the server answered {status}: {}", text.trim());
    }
    serde_json::from_str(&text).context("the server's answer is not JSON")
}

/// The user's config without its pools and data directory, plus the bench pool.
fn bench_config(cfg: &Config, pool: bool) -> anyhow::Result<String> {
    let mut table = match &cfg.file {
        Some(p) => toml::from_str::<toml::Table>(&std::fs::read_to_string(p)?)
            .with_context(|| format!("cannot read {}", p.display()))?,
        None => toml::Table::new(),
    };
    table.remove("pool");
    table.remove("data_dir");
    if pool {
        let mut entry = toml::Table::new();
        entry.insert("name".into(), POOL.into());
        entry.insert("size".into(), (POOL_SIZE as i64).into());
        table.insert("pool".into(), toml::Value::Array(vec![entry.into()]));
    }
    Ok(toml::to_string(&table)?)
}

/// The value of the Prometheus sample `name{..label..}`.
fn metric(text: &str, name: &str, label: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        let (n, labels) = key.split_once('{').unwrap_or((key, ""));
        (n == name && labels.contains(label)).then(|| value.parse().ok())?
    })
}

/// A `Key:   N kB` field of a /proc file, in bytes.
fn kib_field(path: &Path, key: &str) -> anyhow::Result<u64> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix(':')?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
        .with_context(|| format!("no {key} in {}", path.display()))
}

fn status_bytes(pid: u32, key: &str) -> anyhow::Result<u64> {
    kib_field(&PathBuf::from(format!("/proc/{pid}/status")), key)
}

/// Host memory in use, counting every kernel allocation but no file cache:
/// MemTotal - MemFree - Buffers - Cached + Shmem (tmpfs pages are not cache).
fn host_used() -> anyhow::Result<i64> {
    let m = |key| kib_field(Path::new("/proc/meminfo"), key).map(|b| b as i64);
    Ok(m("MemTotal")? - m("MemFree")? - m("Buffers")? - m("Cached")? + m("Shmem")?)
}

/// Kernel allocations: slab, page tables, kernel stacks and per-CPU memory.
fn kernel_used() -> anyhow::Result<i64> {
    let keys = ["Slab", "PageTables", "KernelStack", "Percpu"];
    let m = |key| kib_field(Path::new("/proc/meminfo"), key).map(|b| b as i64);
    keys.into_iter().map(m).sum()
}

/// A sandbox's memory cgroup (`/sandlab/<id>`, see sandlab-runtime's cgroups module):
/// the v1 memory hierarchy when there is one (also in the hybrid layout), else v2.
fn memory_cgroup(id: &str) -> anyhow::Result<(PathBuf, bool)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")?;
    let mut v2 = None;
    for f in mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
    {
        match (f.get(1), f.get(2), f.get(3)) {
            (Some(at), Some(&"cgroup"), Some(opts)) if opts.split(',').any(|o| o == "memory") => {
                return Ok((Path::new(at).join("sandlab").join(id), false))
            }
            (Some(at), Some(&"cgroup2"), _) => v2 = Some(Path::new(at).join("sandlab").join(id)),
            _ => {}
        }
    }
    v2.map(|p| (p, true))
        .context("no cgroup filesystem is mounted")
}

/// The private memory of a sandbox's processes: anonymous and tmpfs pages of its cgroup.
fn private_bytes(id: &str) -> anyhow::Result<u64> {
    let (dir, v2) = memory_cgroup(id)?;
    let path = dir.join("memory.stat");
    let stat = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let keys: &[&str] = if v2 {
        &["anon", "shmem"]
    } else {
        &["total_rss", "total_shmem"]
    };
    Ok(stat
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(k, _)| keys.contains(k))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum())
}
