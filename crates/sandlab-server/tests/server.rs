//! `Server::build` and `Server::run` as `sandlab serve` uses them: the first admin on an
//! empty database, `/healthz` at once, `/readyz` after start-up, and a clean return once
//! the shutdown future completes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sandlab_runtime::Drivers;
use sandlab_server::{Server, ServerConfig, ServerParts};
use sandlab_store::{PageRequest, Role, SqliteStore, Store};

fn parts(dir: &std::path::Path, store: Arc<SqliteStore>) -> ServerParts {
    std::fs::create_dir_all(dir.join("labs")).unwrap();
    ServerParts {
        config: ServerConfig {
            labs: dir.join("labs"),
            shutdown_grace: Duration::from_secs(5),
            ..ServerConfig::default()
        },
        store,
        drivers: Drivers::one(Arc::new(ProcessDriver::new(agent_bin(), dir.to_owned()))),
        images: test_images(),
        local_images: None,
    }
}

#[tokio::test]
async fn the_first_start_creates_one_admin() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("sandlab.db"))
            .await
            .unwrap(),
    );
    Server::build(parts(dir.path(), store.clone()))
        .await
        .unwrap();
    let users = store
        .list_users(PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].username.as_str(), users[0].role),
        ("admin", Role::Admin)
    );
    // A second start finds a user and adds none.
    Server::build(parts(dir.path(), store.clone()))
        .await
        .unwrap();
    let users = store
        .list_users(PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(users.len(), 1);
}

#[tokio::test]
async fn run_serves_until_the_shutdown_future_completes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("sandlab.db"))
            .await
            .unwrap(),
    );
    let server = Server::build(parts(dir.path(), store)).await.unwrap();
    let state = server.state().clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let status = |path: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.get(format!("{base}{path}"))
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16())
        }
    };
    wait_until("/readyz to answer 200", Duration::from_secs(10), || async {
        (status("/readyz").await == Some(200)).then_some(())
    })
    .await;
    assert_eq!(status("/healthz").await, Some(200));
    assert!(state.is_ready());

    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("run returns within the grace period")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(state.shutdown().is_cancelled());
    assert_eq!(status("/healthz").await, None, "still accepting");
}
