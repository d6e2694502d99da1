//! In-process harness: the server as `Server::build` puts it together for `sandlab serve`
//! (the real router, the real SQLite store, the real start-up), the real agent binary, and
//! the runtime's test driver, which runs each "sandbox" as a plain agent process on a unix
//! socket (no namespaces, no root). The isolation itself is tested against the container
//! driver in `crates/sandlab/tests`; here it is the API's logic that is under test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
pub use sandlab_runtime::testing::ProcessDriver;
use sandlab_runtime::Drivers;
use sandlab_server::images::FixedImages;
use sandlab_server::{AppState, Server, ServerConfig, ServerParts};
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

/// The one image the test driver runs.
pub fn test_images() -> Arc<FixedImages> {
    Arc::new(FixedImages(vec![sandlab_image::ImageInfo {
        name: sandlab_runtime::testing::TEST_IMAGE.into(),
        digest: format!("sha256:{}", "0".repeat(64)),
        size: 1 << 20,
        created: 1_700_000_000,
        source: "test".into(),
    }]))
}

pub struct Harness {
    pub state: AppState,
    pub store: Arc<SqliteStore>,
    pub driver: Arc<ProcessDriver>,
    pub admin_token: String,
    pub _dir: TempDir,
}

/// A harness dropped is a server shut down: its background work (the leases, the leader's
/// rounds) stops, as when a process ends, so a second harness on the same database (a
/// restart) does not race the first.
impl Drop for Harness {
    fn drop(&mut self) {
        self.state.shutdown().cancel();
    }
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with(|_| {}).await
    }

    /// A server built by `Server::build` (as `sandlab serve` builds it) over a fresh
    /// database whose admin has [`PASSWORD`], started up without a listener. Its lab
    /// catalogue is an empty directory; tests install labs with `state.set_labs`.
    pub async fn with(tune: impl FnOnce(&mut ServerConfig)) -> Harness {
        Harness::with_db(None, tune).await
    }

    /// [`Harness::with`] with the database at `db` instead of in the harness's temp dir.
    pub async fn with_db(db: Option<&Path>, tune: impl FnOnce(&mut ServerConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let db = db.map_or_else(|| dir.path().join("sandlab.db"), Path::to_owned);
        let store = Arc::new(SqliteStore::open(&db).await.unwrap());
        // Before the build, which would otherwise make an admin with a generated password.
        // A database opened again (a restart) has its admin already.
        let admin = match store.get_user_by_name("admin").await {
            Ok(admin) => admin,
            Err(_) => store
                .create_user(NewUser {
                    username: "admin".into(),
                    password: PASSWORD.into(),
                    role: Role::Admin,
                })
                .await
                .unwrap(),
        };
        let (_, admin_token) = store.create_token(&admin.id, "test").await.unwrap();
        let driver = Arc::new(ProcessDriver::new(agent_bin(), dir.path().to_owned()));
        let labs = dir.path().join("labs");
        std::fs::create_dir(&labs).unwrap();
        let mut config = ServerConfig {
            labs,
            ..ServerConfig::default()
        };
        // No warm execution sandboxes unless a test asks: tests count what runs.
        config.execute.pool = 0;
        tune(&mut config);
        let server = Server::build(ServerParts {
            config,
            store: store.clone(),
            drivers: Drivers::one(driver.clone()),
            images: test_images(),
            local_images: None,
        })
        .await
        .unwrap();
        server.start_up().await.unwrap();
        Harness {
            state: server.state().clone(),
            store,
            driver,
            admin_token,
            _dir: dir,
        }
    }

    /// Whether every sandbox is gone within 10 s (code execution removes its sandboxes
    /// after it answers).
    pub async fn all_removed(&self) -> bool {
        for _ in 0..200 {
            if self.driver.running_ids().is_empty() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
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

#[allow(unused_imports)] // not every test binary uses it
pub use sandlab_testkit::wait_until;
