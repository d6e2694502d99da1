//! Two drivers in one manager: the container driver (real runc, namespaces, cgroups) and
//! the runtime's in-process test driver, side by side over one real SQLite store. Each
//! sandbox is created, listed, reconciled and removed through the manager, which routes
//! every operation to the driver its record names.

mod common;

use std::sync::Arc;
use std::time::Duration;

use sandlab_core::{Limits, NetworkMode, RecordStore, SandboxState};
use sandlab_proto::ExecRequest;
use sandlab_runtime::manager::{CreateRequest, SandboxManager};
use sandlab_runtime::testing::ProcessDriver;
use sandlab_runtime::{ContainerDriver, Driver, Drivers, RuntimeConfig};
use sandlab_store::{SqliteStore, Store};

fn agent_bin() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/sandlab-agent")
}

#[tokio::test]
async fn a_container_sandbox_and_a_process_sandbox_live_side_by_side() {
    let data = common::data_dir();
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&tmp.path().join("sandlab.db"))
            .await
            .unwrap(),
    );
    let container = Arc::new(ContainerDriver::new(RuntimeConfig::new(data.clone())).unwrap());
    let process = Arc::new(ProcessDriver::new(agent_bin(), tmp.path().to_owned()));
    let drivers = Drivers::one(container.clone()).register(process.clone());
    let mgr =
        SandboxManager::new(drivers, store.clone().records(), store.clone().leases()).unwrap();

    let ttl = Duration::from_secs(600);
    let limits = Limits {
        network: NetworkMode::Egress,
        ..Limits::default()
    };
    let a = mgr
        .create(CreateRequest {
            image: "debian".into(),
            limits: limits.clone(),
            ttl,
            ..CreateRequest::default()
        })
        .await
        .unwrap();
    let b = mgr
        .create(CreateRequest {
            image: "debian".into(),
            limits: Limits {
                network: NetworkMode::None,
                ..limits
            },
            ttl,
            driver: Some("process".into()),
            ..CreateRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(a.driver, "container");
    assert_eq!(b.driver, "process");
    assert!(
        a.network.ipv4.is_some(),
        "the container driver assigns egress addresses"
    );
    assert_eq!(a.state, SandboxState::Running);
    assert_eq!(b.state, SandboxState::Running);

    // Listed together; each answers through its own driver.
    let ids: Vec<_> = mgr
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert!(ids.contains(&a.id) && ids.contains(&b.id));
    for (id, hostname_is_id) in [(&a.id, true), (&b.id, false)] {
        let agent = mgr.agent(id, Duration::from_secs(10)).await.unwrap();
        let out = agent
            .exec_collect(ExecRequest::new(["hostname"]), None, 4096)
            .await
            .unwrap();
        let host = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // Inside the container the hostname is the id; the process driver runs on the host.
        assert_eq!(host == id.as_str(), hostname_is_id, "{id}: {host}");
    }
    assert!(container.is_running(&a.id).await.unwrap());
    assert!(!container.is_running(&b.id).await.unwrap());
    assert!(process.is_running(&b.id).await.unwrap());

    // Reconciliation with both alive keeps both.
    let report = mgr.reconcile().await.unwrap();
    assert!(!report.orphans_removed.contains(&a.id) && !report.marked_failed.contains(&a.id));
    assert!(!report.orphans_removed.contains(&b.id) && !report.marked_failed.contains(&b.id));

    // The process sandbox dies on its own: only it is marked failed, by its driver's word.
    process.stop(&b.id).await.unwrap();
    let report = mgr.reconcile().await.unwrap();
    assert_eq!(report.marked_failed, vec![b.id.clone()]);
    assert_eq!(mgr.get(&a.id).await.unwrap().state, SandboxState::Running);

    // A container sandbox whose record is lost is an orphan of the container driver.
    store.delete(&a.id).await.unwrap();
    let report = mgr.reconcile().await.unwrap();
    assert_eq!(report.orphans_removed, vec![a.id.clone()]);
    assert!(!container.is_running(&a.id).await.unwrap());
    assert!(!data.join("sandboxes").join(a.id.as_str()).exists());

    mgr.remove(&b.id).await.unwrap();
    assert!(mgr
        .list()
        .await
        .unwrap()
        .iter()
        .all(|r| r.id != a.id && r.id != b.id));

    // A driver nobody registered is refused before anything is written.
    let err = mgr
        .create(CreateRequest {
            image: "debian".into(),
            driver: Some("kubernetes".into()),
            ..CreateRequest::default()
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("kubernetes"), "{err}");
}
