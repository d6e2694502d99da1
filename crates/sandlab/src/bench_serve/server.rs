//! The bench server: a `sandlab serve` child process with an admin session on it, started
//! over a bench config and, in [`Server::stop`], cleaned up after.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;
use tokio::process::{Child, Command};

use super::api::json_of;
use super::{bounded, POOL, POOL_SIZE, SELF};
use crate::config::Config;

/// A `sandlab serve` child process and an admin session on it.
pub(super) struct Server {
    child: Child,
    pub(super) pid: u32,
    pub(super) base: String,
    pub(super) http: reqwest::Client,
    data_dir: PathBuf,
    dir: tempfile::TempDir,
    pool: bool,
    /// Labs with a `[[lab_pool]]` in the bench config: their warm sessions' nodes are
    /// removed in [`Server::stop`].
    lab_pools: Vec<(String, usize)>,
    user: Option<String>,
    pub(super) token: String,
    /// Sandboxes created and not yet deleted.
    pub(super) made: Mutex<BTreeSet<String>>,
    /// What [`Server::kill9_and_restart`] starts it again with.
    cfg: Config,
    listen: SocketAddr,
}

impl Server {
    pub(super) async fn start(cfg: &Config, pool: bool) -> anyhow::Result<Server> {
        Server::start_with(cfg, pool, toml::Table::new()).await
    }

    /// As [`Server::start`], with `server` keys set in the `[server]` section.
    pub(super) async fn start_with(
        cfg: &Config,
        pool: bool,
        server: toml::Table,
    ) -> anyhow::Result<Server> {
        Server::start_full(cfg, pool, server, Vec::new()).await
    }

    /// As [`Server::start`], keeping warm sessions of each `(lab, size)` (`[[lab_pool]]`).
    pub(super) async fn start_with_lab_pools(
        cfg: &Config,
        lab_pools: Vec<(String, usize)>,
    ) -> anyhow::Result<Server> {
        Server::start_full(cfg, false, toml::Table::new(), lab_pools).await
    }

    async fn start_full(
        cfg: &Config,
        pool: bool,
        server: toml::Table,
        lab_pools: Vec<(String, usize)>,
    ) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("sandlab-bench-")
            .tempdir()?;
        std::fs::write(
            dir.path().join("sandlab.toml"),
            bench_config(cfg, pool, server, &lab_pools)?,
        )?;
        std::fs::create_dir(dir.path().join("labs"))?;
        let listen = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let base = format!("http://{listen}");
        let child = spawn(cfg, dir.path(), listen, &base)?;
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
            lab_pools,
            user: None,
            token: String::new(),
            made: Mutex::new(BTreeSet::new()),
            cfg: cfg.clone(),
            listen,
        };
        if let Err(e) = srv.sign_in().await {
            let tail = srv.log_tail();
            srv.stop().await;
            bail!("{e:#} (the server's log ends: {tail})");
        }
        Ok(srv)
    }

    /// The `--labs` directory the server watches.
    pub(super) fn labs_dir(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    /// The data directory the server runs on.
    pub(super) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// SIGKILLs the server at once, whatever requests are in flight.
    pub(super) fn kill9(&self) {
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// After [`Server::kill9`]: reaps the server and starts it again on the same address;
    /// returns when it is ready. The token lives in the database, so it still works.
    pub(super) async fn restart(&mut self) -> anyhow::Result<()> {
        let _ = self.child.wait().await;
        self.child = spawn(&self.cfg, self.dir.path(), self.listen, &self.base)?;
        self.pid = self.child.id().context("the server exited at once")?;
        self.wait_for("/readyz", Duration::from_secs(300)).await
    }

    /// `sandlab sandbox inspect` on the server's data dir: every stored record.
    pub(super) async fn records(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let out = Command::new(SELF)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["sandbox", "inspect"])
            .stdin(Stdio::null())
            .output()
            .await?;
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// The last 5 lines of the server's log, joined by ` | `.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log"));
        let log = log.unwrap_or_default();
        let tail: Vec<&str> = log
            .lines()
            .skip(log.lines().count().saturating_sub(5))
            .collect();
        tail.join(" | ")
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
        self.token = self.new_token(&user, &password).await?;
        Ok(())
    }

    /// Signs in as `user` and makes an API token with that session.
    async fn new_token(&self, user: &str, password: &str) -> anyhow::Result<String> {
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
        Ok(token["token"].as_str().context("no token")?.to_owned())
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

    fn made_ids(&self) -> Vec<String> {
        let made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        made.iter().cloned().collect()
    }

    /// Deletes what the bench made, stops the server, removes the pool's sandboxes and
    /// disables the bench admin. Problems are reported, not returned.
    pub(super) async fn stop(mut self) {
        let made = self.made_ids();
        if !self.token.is_empty() {
            let _ = bounded(made.len(), 16, |i| self.delete(&made[i])).await;
        }
        let mut left = self.made_ids();
        if self.pool && !self.token.is_empty() {
            let _ = self.wait_pool_full().await;
            left.extend(self.pool_ids().await.unwrap_or_default());
        }
        if !self.lab_pools.is_empty() && !self.token.is_empty() {
            // Once no warm session is half set up, every warm node is listed.
            let _ = self.wait_warm_settled().await;
            left.extend(self.warm_node_ids().await.unwrap_or_default());
        }
        self.terminate().await;
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

    /// SIGTERM to the server, then SIGKILL if it has not exited within 30 s.
    async fn terminate(&mut self) {
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
    }
}

/// Starts `sandlab serve` on `listen` with the bench config in `dir`, logging to
/// `dir/server.log`.
fn spawn(cfg: &Config, dir: &Path, listen: SocketAddr, base: &str) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))?;
    let mut cmd = Command::new(SELF);
    cmd.arg("--data-dir")
        .arg(&cfg.runtime.data_dir)
        .arg("--config")
        .arg(dir.join("sandlab.toml"))
        .args(["serve", "--listen", &listen.to_string(), "--labs"])
        .arg(dir.join("labs"))
        .env("SANDLAB_PUBLIC_URL", base)
        .env("SANDLAB_MAX_SANDBOXES_PER_USER", "100000")
        .env("SANDLAB_CREATE_RATE", "100000")
        .env("SANDLAB_PROXY_LISTEN", "127.0.0.1:0")
        .env("SANDLAB_PROXY_RATE", "100000000")
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
    cmd.spawn().context("cannot start `sandlab serve`")
}

/// The user's config without its pools and data directory, plus the bench pool and the
/// bench's lab pools.
fn bench_config(
    cfg: &Config,
    pool: bool,
    server: toml::Table,
    lab_pools: &[(String, usize)],
) -> anyhow::Result<String> {
    let mut table = match &cfg.file {
        Some(p) => toml::from_str::<toml::Table>(&std::fs::read_to_string(p)?)
            .with_context(|| format!("cannot read {}", p.display()))?,
        None => toml::Table::new(),
    };
    // No warm execution sandboxes unless the bench asks for them (`bench execute`): they
    // would start beside what is timed and be left behind when the server stops.
    let mut server = server;
    server
        .entry("execute_pool")
        .or_insert_with(|| toml::Value::Integer(0));
    if !server.is_empty() {
        let section = table
            .entry("server")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = section {
            t.extend(server);
        }
    }
    table.remove("pool");
    table.remove("lab_pool");
    table.remove("data_dir");
    if !lab_pools.is_empty() {
        let entries = lab_pools
            .iter()
            .map(|(lab, size)| {
                let mut entry = toml::Table::new();
                entry.insert("lab".into(), lab.clone().into());
                entry.insert("size".into(), i64::try_from(*size).unwrap_or(1).into());
                toml::Value::Table(entry)
            })
            .collect();
        table.insert("lab_pool".into(), toml::Value::Array(entries));
    }
    if pool {
        let mut entry = toml::Table::new();
        entry.insert("name".into(), POOL.into());
        entry.insert("size".into(), (POOL_SIZE as i64).into());
        table.insert("pool".into(), toml::Value::Array(vec![entry.into()]));
    }
    Ok(toml::to_string(&table)?)
}
