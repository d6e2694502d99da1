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

/// A manager over the in-process test driver in `tmp`, with `records`, and one sandbox of
/// it running for ten minutes.
async fn process_sandbox(
    tmp: &tempfile::TempDir,
    records: Arc<dyn RecordStore>,
    store: &Arc<SqliteStore>,
) -> (
    Arc<ProcessDriver>,
    SandboxManager,
    sandlab_core::SandboxRecord,
) {
    let process = Arc::new(ProcessDriver::new(agent_bin(), tmp.path().to_owned()));
    let mgr = SandboxManager::new(
        Drivers::one(process.clone()),
        records,
        store.clone().leases(),
    )
    .unwrap();
    let sb = mgr
        .create(CreateRequest {
            image: "debian".into(),
            ttl: Duration::from_secs(600),
            ..CreateRequest::default()
        })
        .await
        .unwrap();
    (process, mgr, sb)
}

/// Records as a reconciliation listed them a moment ago: the listing shows `stale`, every
/// other read the store's current state.
struct StaleListing {
    inner: Arc<dyn RecordStore>,
    stale: std::sync::Mutex<Option<sandlab_core::SandboxRecord>>,
}

#[async_trait::async_trait]
impl RecordStore for StaleListing {
    async fn put(&self, rec: &sandlab_core::SandboxRecord) -> sandlab_core::StoreResult<()> {
        self.inner.put(rec).await
    }
    async fn get(
        &self,
        id: &sandlab_core::SandboxId,
    ) -> sandlab_core::StoreResult<Option<sandlab_core::SandboxRecord>> {
        self.inner.get(id).await
    }
    async fn list(&self) -> sandlab_core::StoreResult<Vec<sandlab_core::SandboxRecord>> {
        let mut all = self.inner.list().await?;
        if let Some(stale) = self.stale.lock().unwrap().take() {
            all.retain(|r| r.id != stale.id);
            all.push(stale);
        }
        Ok(all)
    }
    async fn delete(&self, id: &sandlab_core::SandboxId) -> sandlab_core::StoreResult<()> {
        self.inner.delete(id).await
    }
}

/// CI failure of 2026-12-06: a reconciliation listed a sandbox while another process was
/// still creating it; by the time it looked, the create had finished and its process had
/// exited, and the sandbox was marked failed "creation was interrupted" although it ran.
/// The decision is made on the record as it is after the creator was seen dead.
#[tokio::test]
async fn a_create_that_finished_after_the_listing_is_not_taken_for_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&tmp.path().join("sandlab.db"))
            .await
            .unwrap(),
    );
    let records = Arc::new(StaleListing {
        inner: store.clone().records(),
        stale: std::sync::Mutex::new(None),
    });
    let (process, mgr, sb) = process_sandbox(&tmp, records.clone(), &store).await;
    // What the listing saw: still creating, by a process of another host that has since
    // gone (no liveness lease).
    let mut stale = mgr.get(&sb.id).await.unwrap();
    stale.state = SandboxState::Creating;
    stale.creator = Some(sandlab_core::Holder::new("another-boot", 4242, 1).unwrap());
    *records.stale.lock().unwrap() = Some(stale);

    let report = mgr.reconcile().await.unwrap();
    assert!(
        records.stale.lock().unwrap().is_none(),
        "the listing was not the stale one"
    );
    assert!(report.marked_failed.is_empty(), "{report:?}");
    assert_eq!(mgr.get(&sb.id).await.unwrap().state, SandboxState::Running);
    assert!(process.is_running(&sb.id).await.unwrap());
    mgr.remove(&sb.id).await.unwrap();
}

/// The reaper's removal is decided under the removal lock on the record's deadline: an
/// extend stored while the reaper waited for that lock keeps the sandbox.
#[tokio::test]
async fn an_extend_stored_before_the_reapers_removal_keeps_the_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqliteStore::open(&tmp.path().join("sandlab.db"))
            .await
            .unwrap(),
    );
    let (process, mgr, sb) = process_sandbox(&tmp, store.clone().records(), &store).await;
    let expired_with = sb.deadline_ms;
    let mut extended = mgr.get(&sb.id).await.unwrap();
    extended.deadline_ms += 60_000;
    store.put(&extended).await.unwrap();

    assert!(!mgr
        .remove_with_deadline(&sb.id, expired_with)
        .await
        .unwrap());
    assert!(process.is_running(&sb.id).await.unwrap());
    assert!(mgr
        .remove_with_deadline(&sb.id, extended.deadline_ms)
        .await
        .unwrap());
    assert!(!process.is_running(&sb.id).await.unwrap());
    assert!(store.get(&sb.id).await.unwrap().is_none());
}
