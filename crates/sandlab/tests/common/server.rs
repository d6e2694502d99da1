//! A real `sandlab serve` for end-to-end tests, and an HTTP + WebSocket client for it.
//!
//! [`Server::start`] picks a free port (so `SANDLAB_PUBLIC_URL` can name it before the
//! bind), starts the server on the shared test data dir with an empty labs dir, waits for
//! `/readyz`, creates a fresh admin with `sandlab user add` (the database is shared, so
//! the first start's `admin` may have any password) and turns a login into a bearer
//! token. The server's stdout and stderr go to a log file that every panic here quotes.
//! Dropped while its test panics, a server is killed and the sandboxes of the test's users
//! are removed, so a failure leaves the shared data dir clean.
//!
//! Servers on one data dir share the sandbox records. A server removes, while it starts,
//! warm-pool sandboxes it has no profile for, so a test with a pool uses
//! [`Server::start_alone`]: no other server of these tests starts while it lives (an
//! `flock` shared by every start, exclusive for the pool server).

use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use reqwest::blocking::{Client as Http, RequestBuilder};
use reqwest::header::{AUTHORIZATION, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// How long a start may take until `/readyz` answers 200.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Every server setting a developer's environment might set; the tests choose their own.
const SERVER_VARS: &[&str] = &[
    "SANDLAB_LISTEN",
    "SANDLAB_PROXY_LISTEN",
    "SANDLAB_PROXY_URL",
    "SANDLAB_BASE_DOMAIN",
    "SANDLAB_PUBLIC_URL",
    "SANDLAB_LABS",
    "SANDLAB_EXECUTE_POOL",
    "SANDLAB_EXECUTE_ANONYMOUS",
    "SANDLAB_SESSION_TTL",
    "SANDLAB_MAX_SANDBOXES_PER_USER",
    "SANDLAB_LOGIN_RATE",
    "SANDLAB_CREATE_RATE",
    "SANDLAB_DEFAULT_TTL",
    "SANDLAB_MAX_TTL",
    "SANDLAB_DEFAULT_IMAGE",
    "SANDLAB_MAX_FILE_SIZE",
    "SANDLAB_MAX_EXEC_OUTPUT",
    "SANDLAB_MAX_BODY",
    "SANDLAB_SCROLLBACK",
    "SANDLAB_TERMINALS_PER_SANDBOX",
    "SANDLAB_SHUTDOWN_GRACE",
    "SANDLAB_DATA_DIR",
];

/// What [`Server::start_with`] may change.
#[derive(Clone, Default)]
pub struct Options {
    /// `sandlab.toml`.
    pub config: Option<String>,
    /// Environment variables of the server and of the commands run for it (`sandlab user
    /// add`, the clean-up), e.g. `SANDLAB_DATABASE_URL`.
    pub env: Vec<(String, String)>,
}

pub struct Server {
    data: PathBuf,
    /// Extra environment of the server and its commands.
    env: Vec<(String, String)>,
    port: u16,
    /// Holds the labs dir, the config file and the log.
    dir: tempfile::TempDir,
    config: Option<PathBuf>,
    child: Option<Child>,
    /// The exclusive start gate, for a server started alone.
    alone: Option<Flock<File>>,
    /// A fresh admin's bearer client.
    pub admin: Client,
    /// Users this server's test made: a failing test's sandboxes are theirs.
    owners: Mutex<Vec<String>>,
}

impl Server {
    /// Starts a server on `data` and logs a fresh admin in.
    pub fn start(data: &Path) -> Server {
        Server::launch(data, None, None)
    }

    /// Starts a server with `opts`: a replica of others on one database, say.
    pub fn start_with(data: &Path, opts: Options) -> Server {
        Server::launch_with(data, opts, None)
    }

    /// Starts a server with `config` as its `sandlab.toml`; no other server of these tests
    /// starts until this one is dropped.
    pub fn start_alone(data: &Path, config: &str) -> Server {
        let gate = gate(FlockArg::LockExclusive);
        Server::launch(data, Some(config), Some(gate))
    }

    fn launch(data: &Path, config: Option<&str>, alone: Option<Flock<File>>) -> Server {
        let opts = Options {
            config: config.map(str::to_owned),
            env: Vec::new(),
        };
        Server::launch_with(data, opts, alone)
    }

    fn launch_with(data: &Path, opts: Options, alone: Option<Flock<File>>) -> Server {
        let config = opts.config.as_deref();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("labs")).expect("labs dir");
        let config = config.map(|text| {
            let p = dir.path().join("sandlab.toml");
            std::fs::write(&p, text).expect("write sandlab.toml");
            p
        });
        let password = format!("pw-{:016x}", rand::random::<u64>());
        let username = add_admin(data, &password, &opts.env);
        let mut server = Server {
            data: data.to_owned(),
            env: opts.env.clone(),
            port: 0,
            dir,
            config,
            child: None,
            alone,
            admin: Client::unauthenticated(""),
            owners: Mutex::new(Vec::new()),
        };
        // A port picked by binding port 0 may be taken by someone else before the server
        // binds it: then pick another.
        for attempt in 0.. {
            server.port = free_port();
            match server.spawn_and_wait() {
                Ok(()) => break,
                Err(log) if attempt < 3 && log.contains("cannot listen") => continue,
                Err(log) => panic!("sandlab serve did not start:\n{log}"),
            }
        }
        server.admin = server.login(&username, &password);
        server.owned_by(&server.admin.user_id);
        server
    }

    /// Starts the process on `self.port` and waits for `/readyz`; the log on failure.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let _gate = self.alone.is_none().then(|| gate(FlockArg::LockShared));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("server log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandlab"));
        cmd.arg("--data-dir").arg(&self.data);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--labs")
            .arg(self.dir.path().join("labs"))
            .current_dir(self.dir.path());
        for var in SERVER_VARS {
            cmd.env_remove(var);
        }
        let config_text = self
            .config
            .as_ref()
            .and_then(|c| std::fs::read_to_string(c).ok())
            .unwrap_or_default();
        if !config_text.contains("proxy_listen") {
            // The default (the main port + 1) could take a port another test's server
            // picked; any free port will do.
            cmd.env("SANDLAB_PROXY_LISTEN", "127.0.0.1:0");
        }
        if !config_text.contains("execute_pool") {
            // Warm execution sandboxes for every language image would be load and
            // sandboxes other tests count; the tests that want them say so.
            cmd.env("SANDLAB_EXECUTE_POOL", "0");
        }
        cmd.env("SANDLAB_PUBLIC_URL", self.base())
            // Only used on a database without users.
            .env("SANDLAB_ADMIN_PASSWORD", "sandlab-test-admin")
            .env(
                "SANDLAB_LOG",
                std::env::var("SANDLAB_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        self.child = Some(cmd.spawn().expect("spawn sandlab serve"));
        let probe = Client::unauthenticated(&self.base());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("it exited with {status}; its log:\n{}", self.log()));
            }
            if probe
                .try_call(Method::GET, "/readyz", None)
                .is_ok_and(|r| r.status == StatusCode::OK)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "/readyz was not 200 within {READY_TIMEOUT:?}; its log:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The `--labs` directory (empty at start; the catalogue picks up what is written).
    pub fn labs_dir(&self) -> PathBuf {
        self.dir.path().join("labs")
    }

    /// `http://127.0.0.1:PORT`, also the server's public URL.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// Everything the server printed, over all its starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM; the exit status, or a panic if the server is still running after
    /// `within`.
    pub fn sigterm(&mut self, within: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server did not exit within {within:?} of SIGTERM; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same port and waits until it is ready. Sessions and
    /// tokens live in the database, so [`Server::admin`] keeps working.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart of a running server");
        if let Err(log) = self.spawn_and_wait() {
            panic!("sandlab serve did not restart:\n{log}");
        }
    }

    /// Replaces `sandlab.toml` (the next [`Server::restart`] reads it).
    pub fn set_config(&mut self, text: &str) {
        let p = self.dir.path().join("sandlab.toml");
        std::fs::write(&p, text).expect("write sandlab.toml");
        self.config = Some(p);
    }

    /// Logs `username` in and makes an API token: a client for that user.
    pub fn login(&self, username: &str, password: &str) -> Client {
        login_at(&self.base(), username, password)
    }

    /// Creates a user with `role` through the admin API and logs them in.
    pub fn add_user(&self, role: &str) -> Client {
        let name = format!("e2e-{role}-{:08x}", rand::random::<u32>());
        let password = format!("pw-{:016x}", rand::random::<u64>());
        let r = self.admin.call(
            Method::POST,
            "/api/v1/users",
            Some(&json!({"username": name, "password": password, "role": role})),
        );
        assert_eq!(r.status, StatusCode::CREATED, "create user: {}", r.text());
        let client = self.login(&name, &password);
        self.owned_by(&client.user_id);
        client
    }

    fn owned_by(&self, user_id: &str) {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(user_id.to_owned());
    }

    /// Removes every sandbox of this test's users (and the warm pool of a server started
    /// alone) with `sandlab sandbox rm`, so a failed test leaves the shared data dir
    /// clean. Runs while panicking: it reports nothing and never panics itself.
    fn remove_sandboxes_of_this_test(&self) {
        let sandlab = || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_sandlab"));
            c.arg("--data-dir").arg(&self.data).stdin(Stdio::null());
            c.envs(self.env.iter().map(|(k, v)| (k, v)));
            c
        };
        let Ok(out) = sandlab().args(["sandbox", "inspect"]).output() else {
            return;
        };
        let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        let ids: Vec<&str> = records
            .iter()
            .filter(|r| {
                let owner = r["owner"].as_str().unwrap_or_default();
                owners.iter().any(|o| o == owner)
                    || (self.alone.is_some() && owner.starts_with("pool:"))
            })
            .filter_map(|r| r["id"].as_str())
            .collect();
        if !ids.is_empty() {
            let _ = sandlab().args(["sandbox", "rm"]).args(&ids).output();
        }
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics(&self) -> String {
        let r = self.admin.call(Method::GET, "/metrics", None);
        assert_eq!(r.status, StatusCode::OK);
        r.text()
    }

    /// The value of the sample `name{labels}` (labels as written, e.g. `profile="x"`).
    pub fn metric(&self, name: &str, labels: &str) -> Option<f64> {
        let key = if labels.is_empty() {
            name.to_owned()
        } else {
            format!("{name}{{{labels}}}")
        };
        self.metrics().lines().find_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            (k == key).then(|| v.parse().ok()).flatten()
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            self.remove_sandboxes_of_this_test();
        }
    }
}

/// The start gate shared by every test that starts a server (see the module doc).
fn gate(arg: FlockArg) -> Flock<File> {
    let path = std::env::temp_dir().join("sandlab-serve-tests.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .expect("open the start gate");
    Flock::lock(file, arg).unwrap_or_else(|(_, e)| panic!("lock {}: {e}", path.display()))
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

/// Creates an admin named `e2e-<random>` directly in the database; its name.
fn add_admin(data: &Path, password: &str, env: &[(String, String)]) -> String {
    let name = format!("e2e-{:08x}", rand::random::<u32>());
    let mut child = Command::new(env!("CARGO_BIN_EXE_sandlab"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("--data-dir")
        .arg(data)
        .args(["user", "add", &name, "--role", "admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sandlab user add");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{password}").expect("write password");
    drop(stdin);
    let out = child.wait_with_output().expect("sandlab user add");
    assert!(
        out.status.success(),
        "sandlab user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

/// One answer: the status and the body (JSON when it parses).
pub struct Reply {
    pub status: StatusCode,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// `error.code` of an error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Logs `username` in at the server at `base` and makes an API token: a client for that
/// user (a server this test did not start, such as a replica on the test cluster).
pub fn login_at(base: &str, username: &str, password: &str) -> Client {
    let anon = Client::unauthenticated(base);
    let resp = anon
        .http
        .post(anon.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .expect("login request");
    assert_eq!(resp.status(), StatusCode::OK, "login as {username}");
    let cookies: Vec<String> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect();
    let body: Value = resp.json().expect("login body");
    let csrf = body["csrf_token"].as_str().expect("csrf_token").to_owned();
    let resp = anon
        .http
        .post(anon.url("/api/v1/tokens"))
        .header("Cookie", cookies.join("; "))
        .header("X-CSRF-Token", csrf)
        .json(&json!({"name": "e2e"}))
        .send()
        .expect("token request");
    assert_eq!(resp.status(), StatusCode::CREATED, "token for {username}");
    let token: Value = resp.json().expect("token body");
    Client {
        token: token["token"].as_str().expect("token").to_owned(),
        user_id: body["user"]["id"].as_str().expect("user id").to_owned(),
        ..anon
    }
}

/// A user's bearer-token client.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: Http,
    token: String,
    pub user_id: String,
}

impl Client {
    fn unauthenticated(base: &str) -> Client {
        Client {
            base: base.to_owned(),
            http: Http::builder()
                .no_proxy()
                // A fresh connection per request: the server is killed and restarted
                // under the client's feet.
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("HTTP client"),
            token: String::new(),
            user_id: String::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The same user's client for the server at `base` (another replica).
    pub fn at(&self, base: &str) -> Client {
        Client {
            base: base.to_owned(),
            ..self.clone()
        }
    }

    /// The bearer token (an API token of this client's user).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A request with the bearer token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let b = self.http.request(method, self.url(path));
        if self.token.is_empty() {
            b
        } else {
            b.header(AUTHORIZATION, format!("Bearer {}", self.token))
        }
    }

    pub fn send(b: RequestBuilder) -> reqwest::Result<Reply> {
        let resp = b.send()?;
        let status = resp.status();
        Ok(Reply {
            status,
            bytes: resp.bytes()?.to_vec(),
        })
    }

    /// `method path` with an optional JSON body; a transport error is an `Err`.
    pub fn try_call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Result<Reply> {
        let mut b = self.request(method, path);
        if let Some(v) = body {
            b = b.json(v);
        }
        Client::send(b)
    }

    /// `method path` with an optional JSON body; a transport error panics.
    pub fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        self.try_call(method.clone(), path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// `POST /api/v1/sandboxes` with `body`, asserting 201; the sandbox as answered.
    pub fn create(&self, body: Value) -> Value {
        let r = self.call(Method::POST, "/api/v1/sandboxes", Some(&body));
        assert_eq!(r.status, StatusCode::CREATED, "create: {}", r.text());
        r.json()
    }

    /// `POST .../exec` with `body`, asserting 200; the result.
    pub fn exec(&self, id: &str, body: Value) -> Value {
        let r = self.call(
            Method::POST,
            &format!("/api/v1/sandboxes/{id}/exec"),
            Some(&body),
        );
        assert_eq!(r.status, StatusCode::OK, "exec in {id}: {}", r.text());
        r.json()
    }

    /// Runs `sh -c script` in `id`; the result.
    pub fn sh(&self, id: &str, script: &str) -> Value {
        self.exec(id, json!({"cmd": ["sh", "-c", script]}))
    }

    pub fn put_file(&self, id: &str, path: &str, data: &[u8]) -> Reply {
        let b = self
            .request(Method::PUT, &format!("/api/v1/sandboxes/{id}/files"))
            .query(&[("path", path)])
            .header("Content-Type", "application/octet-stream")
            .body(data.to_vec());
        Client::send(b).expect("PUT file")
    }

    pub fn get_file(&self, id: &str, path: &str) -> Reply {
        let b = self
            .request(Method::GET, &format!("/api/v1/sandboxes/{id}/files"))
            .query(&[("path", path)]);
        Client::send(b).expect("GET file")
    }

    /// `DELETE /api/v1/sandboxes/{id}`; the status.
    pub fn delete(&self, id: &str) -> StatusCode {
        self.call(Method::DELETE, &format!("/api/v1/sandboxes/{id}"), None)
            .status
    }

    /// Opens `GET .../terminal?query` as a WebSocket with the public URL as `Origin`;
    /// the HTTP status when the server refuses the upgrade.
    pub fn terminal(&self, id: &str, query: &str) -> Result<Terminal, StatusCode> {
        let ws_base = self.base.replacen("http://", "ws://", 1);
        let mut req = format!("{ws_base}/api/v1/sandboxes/{id}/terminal?{query}")
            .into_client_request()
            .expect("terminal request");
        let h = req.headers_mut();
        h.insert(
            AUTHORIZATION.as_str(),
            format!("Bearer {}", self.token).parse().expect("header"),
        );
        h.insert(ORIGIN.as_str(), self.base.parse().expect("header"));
        let addr = self.base.trim_start_matches("http://");
        let stream = TcpStream::connect(addr).expect("connect for the terminal");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        match tungstenite::client(req, stream) {
            Ok((ws, _)) => {
                ws.get_ref()
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .expect("read timeout");
                Ok(Terminal {
                    ws,
                    seen: Vec::new(),
                })
            }
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                Err(StatusCode::from_u16(resp.status().as_u16()).expect("status"))
            }
            Err(e) => panic!("terminal handshake: {e}"),
        }
    }
}

/// A terminal WebSocket: binary frames are bytes both ways.
pub struct Terminal {
    ws: WebSocket<TcpStream>,
    /// Every output byte so far.
    seen: Vec<u8>,
}

/// What one read of the socket brought.
enum Got {
    Output,
    Nothing,
    /// A close frame, or how the connection ended without one.
    Closed(Result<CloseFrame, String>),
}

impl Terminal {
    pub fn type_in(&mut self, text: &str) {
        self.ws
            .send(Message::binary(text.as_bytes().to_vec()))
            .expect("send to the terminal");
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        let msg = json!({"type": "resize", "cols": cols, "rows": rows}).to_string();
        self.ws
            .send(Message::text(msg))
            .expect("send a resize to the terminal");
    }

    fn read_once(&mut self) -> Got {
        match self.ws.read() {
            Ok(Message::Binary(b)) => {
                self.seen.extend_from_slice(&b);
                Got::Output
            }
            Ok(Message::Close(frame)) => {
                Got::Closed(frame.ok_or_else(|| "a close frame without a code".to_owned()))
            }
            Ok(_) => Got::Nothing,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Got::Nothing
            }
            Err(e) => Got::Closed(Err(format!("no close frame: {e}"))),
        }
    }

    /// Reads output until a line of it (escape sequences and `\r` removed) is `line`,
    /// counting only output read from this call on; panics with the output on timeout
    /// or close.
    pub fn expect_line(&mut self, line: &str, timeout: Duration) {
        self.expect_output(timeout, |out| plain(out).lines().any(|l| l == line), line);
    }

    /// Reads output until it contains `needle`, as [`Terminal::expect_line`].
    pub fn expect(&mut self, needle: &str, timeout: Duration) {
        self.expect_output(timeout, |out| out.contains(needle), needle);
    }

    fn expect_output(&mut self, timeout: Duration, done: impl Fn(&str) -> bool, what: &str) {
        let from = self.seen.len();
        let deadline = Instant::now() + timeout;
        loop {
            if done(&String::from_utf8_lossy(&self.seen[from..])) {
                return;
            }
            let closed = matches!(self.read_once(), Got::Closed(_));
            if closed || Instant::now() > deadline {
                panic!(
                    "terminal output lacks {what:?} ({}); it was: {:?}",
                    if closed { "socket closed" } else { "timed out" },
                    String::from_utf8_lossy(&self.seen[from..])
                );
            }
        }
    }

    /// Reads until the server closes the socket; its close code, or how it ended without
    /// one. Panics if nothing closes it within `timeout`.
    pub fn close_code(&mut self, timeout: Duration) -> Result<u16, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Got::Closed(frame) = self.read_once() {
                return frame.map(|f| u16::from(f.code));
            }
            assert!(
                Instant::now() < deadline,
                "the terminal socket was not closed within {timeout:?}"
            );
        }
    }

    /// Closes the socket from this side.
    pub fn close(mut self) {
        let _ = self.ws.close(None);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !matches!(self.read_once(), Got::Closed(_)) {}
    }
}

/// Terminal output without CSI escape sequences and carriage returns.
fn plain(out: &str) -> String {
    let mut s = String::with_capacity(out.len());
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                // Parameters and intermediates, up to the final byte.
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
            '\r' => {}
            c => s.push(c),
        }
    }
    s
}
