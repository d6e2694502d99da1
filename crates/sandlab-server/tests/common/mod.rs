//! In-process harness: the real router, the real SQLite store and the real agent binary,
//! with a driver that runs each "sandbox" as a plain agent process on a unix socket (no
//! namespaces, no root). The isolation itself is tested against the container driver in
//! `crates/sandlab/tests`; here it is the API's logic that is under test.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use sandlab_proto::AgentClient;
use sandlab_runtime::manager::SandboxManager;
use sandlab_runtime::{Driver, HostResources, NetworkInfo, SandboxId, SandboxSpec, Stats};
use sandlab_server::sandboxes::Sandboxes;
use sandlab_server::terminal::TerminalOptions;
use sandlab_server::{AppState, ServerConfig};
use sandlab_store::{NewUser, Role, SqliteStore, Store};
use serde_json::{json, Value};
use tempfile::TempDir;
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery";

/// The agent binary of this workspace's debug build.
pub fn agent_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SANDLAB_AGENT_BIN") {
        return p.into();
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/sandlab-agent");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p sandlab-agent` first",
        p.display()
    );
    p
}

/// Runs each sandbox as an agent process listening on `<dir>/<id>.sock`.
pub struct ProcessDriver {
    dir: PathBuf,
    children: Mutex<HashMap<SandboxId, Child>>,
    pub creates: std::sync::atomic::AtomicUsize,
}

impl ProcessDriver {
    pub fn new(dir: PathBuf) -> ProcessDriver {
        ProcessDriver {
            dir,
            children: Mutex::new(HashMap::new()),
            creates: Default::default(),
        }
    }

    fn sock(&self, id: &SandboxId) -> PathBuf {
        self.dir.join(format!("{id}.sock"))
    }

    pub fn running_ids(&self) -> Vec<SandboxId> {
        let mut map = self.children.lock().unwrap();
        map.retain(|_, c| c.try_wait().ok().flatten().is_none());
        map.keys().cloned().collect()
    }
}

#[async_trait]
impl Driver for ProcessDriver {
    fn name(&self) -> &str {
        "process"
    }

    async fn validate(&self, spec: &SandboxSpec) -> sandlab_runtime::Result<()> {
        spec.limits.validate()?;
        if spec.image != "debian" {
            return Err(sandlab_runtime::Error::Image(
                sandlab_image::Error::NotFound(spec.image.clone()),
            ));
        }
        Ok(())
    }

    async fn create(&self, spec: &SandboxSpec, _net: &NetworkInfo) -> sandlab_runtime::Result<()> {
        self.creates
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let sock = self.sock(&spec.id);
        let child = Command::new(agent_bin())
            .arg("--listen")
            .arg(&sock)
            .args(["--term-grace-ms", "200"])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|source| sandlab_runtime::Error::Spawn {
                what: "agent".into(),
                source,
            })?;
        self.children.lock().unwrap().insert(spec.id.clone(), child);
        AgentClient::connect(&sock, Duration::from_secs(10)).await?;
        Ok(())
    }

    async fn agent(
        &self,
        id: &SandboxId,
        timeout: Duration,
    ) -> sandlab_runtime::Result<AgentClient> {
        Ok(AgentClient::connect(&self.sock(id), timeout).await?)
    }

    async fn init_pid(&self, id: &SandboxId) -> sandlab_runtime::Result<Option<u32>> {
        Ok(self.children.lock().unwrap().get(id).map(Child::id))
    }

    async fn is_running(&self, id: &SandboxId) -> sandlab_runtime::Result<bool> {
        Ok(self.running_ids().contains(id))
    }

    async fn stop(&self, id: &SandboxId) -> sandlab_runtime::Result<()> {
        if let Some(c) = self.children.lock().unwrap().get_mut(id) {
            let _ = c.kill();
            let _ = c.wait();
        }
        Ok(())
    }

    async fn remove(&self, id: &SandboxId) -> sandlab_runtime::Result<()> {
        if let Some(mut c) = self.children.lock().unwrap().remove(id) {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.sock(id));
        Ok(())
    }

    async fn stats(&self, _id: &SandboxId) -> sandlab_runtime::Result<Stats> {
        Ok(Stats::default())
    }

    async fn images(&self) -> sandlab_runtime::Result<Vec<sandlab_runtime::ImageInfo>> {
        Ok(vec![sandlab_runtime::ImageInfo {
            name: "debian".into(),
            digest: format!("sha256:{}", "0".repeat(64)),
            size: 1 << 20,
            created: 1_700_000_000,
            source: "test".into(),
        }])
    }

    async fn host_resources(&self) -> sandlab_runtime::Result<HostResources> {
        Ok(HostResources {
            ids: self.running_ids().into_iter().collect(),
        })
    }
}

impl Drop for ProcessDriver {
    fn drop(&mut self) {
        for (_, mut c) in self.children.lock().unwrap().drain() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct Harness {
    pub state: AppState,
    pub store: Arc<SqliteStore>,
    pub driver: Arc<ProcessDriver>,
    pub admin_token: String,
    pub _dir: TempDir,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with(|_| {}).await
    }

    pub async fn with(tune: impl FnOnce(&mut ServerConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("sandlab.db"))
                .await
                .unwrap(),
        );
        let driver = Arc::new(ProcessDriver::new(dir.path().to_owned()));
        let manager = Arc::new(SandboxManager::new(
            driver.clone(),
            store.clone().records(),
            dir.path().join("records.lock"),
        ));
        let mut config = ServerConfig::default();
        tune(&mut config);
        let sandboxes = Arc::new(Sandboxes::new(
            manager,
            store.clone(),
            config.pools.clone(),
            TerminalOptions::default(),
        ));
        let state = AppState::new(config, store.clone(), sandboxes.clone());
        sandboxes.recover().await.unwrap();
        sandboxes.spawn_background(state.shutdown().clone());
        state.set_ready();
        let admin = store
            .create_user(NewUser {
                username: "admin".into(),
                password: PASSWORD.into(),
                role: Role::Admin,
            })
            .await
            .unwrap();
        let (_, admin_token) = store.create_token(&admin.id, "test").await.unwrap();
        Harness {
            state,
            store,
            driver,
            admin_token,
            _dir: dir,
        }
    }

    pub fn app(&self) -> Router {
        sandlab_server::app(self.state.clone())
    }

    /// A new user with `role` and a bearer token for them.
    pub async fn user(&self, name: &str, role: Role) -> String {
        let u = self
            .store
            .create_user(NewUser {
                username: name.into(),
                password: PASSWORD.into(),
                role,
            })
            .await
            .unwrap();
        self.store.create_token(&u.id, "test").await.unwrap().1
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            bytes,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Creates a sandbox for `token`'s user and returns its id.
    pub async fn sandbox(&self, token: &str) -> String {
        let r = self.post("/api/v1/sandboxes", token, json!({})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_owned()
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// Asserts the error body shape and returns its code.
    pub fn error_code(&self) -> String {
        let v = self.json();
        let code = v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {v}"));
        let message = v["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message: {v}"));
        assert!(!message.is_empty() && message.ends_with('.'), "{message:?}");
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{code}"
        );
        code.to_owned()
    }
}

/// Polls `check` every 20 ms until it yields a value or `timeout` passes.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
