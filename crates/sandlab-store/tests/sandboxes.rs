//! Sandbox records: the runtime's RecordStore on SQLite, the owner-scoped API reads, and
//! the runtime's SandboxManager driving a fake driver over this store.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use sandlab_core::{Limits, NetworkMode, SandboxId, SandboxState};
use sandlab_runtime::manager::{CreateRequest, SandboxManager};
use sandlab_runtime::{AgentClient, Driver, HostResources, NetworkInfo, SandboxSpec, Stats};
use sandlab_store::{Error, PageRequest, RecordStore, Role, SqliteStore, Store};

#[tokio::test]
async fn records_round_trip_through_the_record_store() {
    let db = TempDb::new();
    let store = db.open().await;
    let mut rec = record(Some("usr-a"), 1_700_000_000_000);
    rec.limits = Limits {
        network: NetworkMode::Egress,
        cpus: 0.5,
        ..Limits::default()
    };
    rec.network = NetworkInfo {
        slot: Some(7),
        ipv4: Some("10.213.0.30".into()),
        ipv6: Some("fd00::1e".into()),
    };
    rec.owner_pid = Some(99);
    store.put(&rec).await.unwrap();
    assert_eq!(store.get(&rec.id).await.unwrap(), Some(rec.clone()));

    // A second put is an update, not a second row.
    rec.state = SandboxState::Failed;
    rec.reason = Some("the sandbox's processes are gone".into());
    rec.creator_pid = None;
    rec.hostname = None;
    store.put(&rec).await.unwrap();
    assert_eq!(store.get(&rec.id).await.unwrap(), Some(rec.clone()));
    assert_eq!(store.list().await.unwrap(), vec![rec.clone()]);

    // Times past i64::MAX milliseconds are kept as the largest time, not refused.
    let mut far = record(None, 5);
    far.deadline_ms = u64::MAX;
    store.put(&far).await.unwrap();
    assert_eq!(
        store.get(&far.id).await.unwrap().unwrap().deadline_ms,
        i64::MAX as u64
    );

    store.delete(&rec.id).await.unwrap();
    store.delete(&rec.id).await.unwrap();
    assert_eq!(store.get(&rec.id).await.unwrap(), None);
    assert_eq!(store.list().await.unwrap().len(), 1);

    // Survives a restart.
    store.close().await;
    let store = db.open().await;
    assert_eq!(store.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn list_is_oldest_first_and_skips_a_corrupt_row() {
    let db = TempDb::new();
    let store = db.open().await;
    let recs: Vec<_> = [30, 10, 20].iter().map(|t| record(None, *t)).collect();
    for r in &recs {
        store.put(r).await.unwrap();
    }
    let times: Vec<u64> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| r.created_at_ms)
        .collect();
    assert_eq!(times, [10, 20, 30]);

    let mut raw = db.raw().await;
    sqlx::query("UPDATE sandboxes SET state = 'exploded' WHERE id = ?")
        .bind(recs[0].id.as_str())
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(store.list().await.unwrap().len(), 2);
    let err = store.get(&recs[0].id).await.unwrap_err();
    assert!(matches!(err, sandlab_runtime::Error::Record(_)), "{err:?}");
}

#[tokio::test]
async fn two_sandboxes_never_share_an_egress_slot() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let mut a = record(None, 1);
    a.network.slot = Some(3);
    let mut b = record(None, 2);
    b.network.slot = Some(3);
    store.put(&a).await.unwrap();
    assert!(store.put(&b).await.is_err());
    b.network.slot = Some(4);
    store.put(&b).await.unwrap();
    // Updating a record keeps its own slot.
    a.state = SandboxState::Running;
    store.put(&a).await.unwrap();
}

#[tokio::test]
async fn users_see_only_their_own_and_admins_see_all() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let mut mine = Vec::new();
    for t in 0..5u64 {
        let r = record(Some("usr-me"), 100 + t);
        store.put(&r).await.unwrap();
        mine.push(r);
        store.put(&record(Some("usr-you"), 100 + t)).await.unwrap();
    }
    store.put(&record(None, 1)).await.unwrap();

    // Page through the owner's list two at a time.
    let mut got = Vec::new();
    let mut req = PageRequest::first(2);
    loop {
        let page = store.list_sandboxes(Some("usr-me"), req).await.unwrap();
        assert!(page.items.len() <= 2);
        got.extend(page.items);
        match page.next {
            Some(c) => req = PageRequest::after(c, 2),
            None => break,
        }
    }
    assert_eq!(got, mine);
    let all = store
        .list_sandboxes(None, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 11);
    assert!(all.next.is_none());
    let nobody = store
        .list_sandboxes(Some("usr-nobody"), PageRequest::default())
        .await
        .unwrap();
    assert!(nobody.items.is_empty());
    // A users cursor is refused here.
    let users_cursor = "dXNlcnM6MTp4";
    assert!(matches!(
        store
            .list_sandboxes(None, PageRequest::after(users_cursor, 2))
            .await,
        Err(Error::Invalid(_))
    ));

    let id = &mine[0].id;
    assert_eq!(
        &store.get_sandbox(id, Some("usr-me")).await.unwrap(),
        &mine[0]
    );
    assert_eq!(&store.get_sandbox(id, None).await.unwrap(), &mine[0]);
    assert!(matches!(
        store.get_sandbox(id, Some("usr-you")).await,
        Err(Error::NotFound("sandbox"))
    ));
    assert!(matches!(
        store.get_sandbox(&SandboxId::generate(), None).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn live_sandboxes_count_towards_the_quota() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    for state in [
        SandboxState::Creating,
        SandboxState::Running,
        SandboxState::Stopping,
        SandboxState::Failed,
        SandboxState::Removed,
    ] {
        let mut r = record(Some("usr-q"), 1);
        r.state = state;
        store.put(&r).await.unwrap();
    }
    store.put(&record(Some("usr-other"), 1)).await.unwrap();
    assert_eq!(store.count_live_sandboxes("usr-q").await.unwrap(), 3);
    assert_eq!(store.count_live_sandboxes("usr-none").await.unwrap(), 0);
}

/// A driver that keeps its "host resources" in a set.
#[derive(Default)]
struct FakeDriver {
    host: Mutex<BTreeSet<SandboxId>>,
    nets: Mutex<Vec<NetworkInfo>>,
}

#[async_trait]
impl Driver for FakeDriver {
    fn name(&self) -> &str {
        "fake"
    }
    async fn validate(&self, _: &SandboxSpec) -> sandlab_runtime::Result<()> {
        Ok(())
    }
    async fn create(&self, spec: &SandboxSpec, net: &NetworkInfo) -> sandlab_runtime::Result<()> {
        self.host.lock().unwrap().insert(spec.id.clone());
        self.nets.lock().unwrap().push(net.clone());
        Ok(())
    }
    async fn agent(&self, _: &SandboxId, _: Duration) -> sandlab_runtime::Result<AgentClient> {
        Err(sandlab_runtime::Error::Host(
            "the fake driver has no agent".into(),
        ))
    }
    async fn init_pid(&self, _: &SandboxId) -> sandlab_runtime::Result<Option<u32>> {
        Ok(None)
    }
    async fn is_running(&self, id: &SandboxId) -> sandlab_runtime::Result<bool> {
        Ok(self.host.lock().unwrap().contains(id))
    }
    async fn stop(&self, _: &SandboxId) -> sandlab_runtime::Result<()> {
        Ok(())
    }
    async fn remove(&self, id: &SandboxId) -> sandlab_runtime::Result<()> {
        self.host.lock().unwrap().remove(id);
        Ok(())
    }
    async fn stats(&self, _: &SandboxId) -> sandlab_runtime::Result<Stats> {
        Ok(Stats::default())
    }
    async fn images(&self) -> sandlab_runtime::Result<Vec<sandlab_runtime::ImageInfo>> {
        Ok(Vec::new())
    }

    async fn host_resources(&self) -> sandlab_runtime::Result<HostResources> {
        Ok(HostResources {
            ids: self.host.lock().unwrap().clone(),
        })
    }
}

#[tokio::test]
async fn the_sandbox_manager_runs_on_this_store() {
    let db = TempDb::new();
    let store = Arc::new(db.open().await);
    let owner = user(store.as_ref(), "quinn", Role::Learner).await;
    let driver = Arc::new(FakeDriver::default());
    let lock = db.dir.path().join("lock");
    let records = store.clone().records();
    let manager = SandboxManager::new(driver.clone(), records, lock.clone());

    let req = CreateRequest {
        image: "debian:12".into(),
        limits: Limits {
            network: NetworkMode::Egress,
            ..Limits::default()
        },
        hostname: None,
        env: Vec::new(),
        owner: Some(owner.id.clone()),
        owner_pid: None,
        private: None,
    };
    let a = manager.create(req.clone()).await.unwrap();
    let b = manager.create(req).await.unwrap();
    assert_eq!(a.state, SandboxState::Running);
    assert_ne!(
        a.network.slot, b.network.slot,
        "slots are allocated from the store"
    );
    let page = store
        .list_sandboxes(Some(&owner.id), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items, vec![a.clone(), b.clone()]);
    assert_eq!(store.count_live_sandboxes(&owner.id).await.unwrap(), 2);

    // A crash: the sandbox's resources vanish and a stray resource appears; after a
    // restart, reconciliation repairs both from the records in the database.
    driver.host.lock().unwrap().remove(&a.id);
    let stray = SandboxId::generate();
    driver.host.lock().unwrap().insert(stray.clone());
    drop(manager);
    store.close().await;
    let store = Arc::new(db.open().await);
    let manager = SandboxManager::new(driver.clone(), store.clone().records(), lock);
    let report = manager.reconcile().await.unwrap();
    assert_eq!(report.orphans_removed, vec![stray]);
    assert_eq!(report.marked_failed, vec![a.id.clone()]);
    let failed = store.get_sandbox(&a.id, Some(&owner.id)).await.unwrap();
    assert_eq!(failed.state, SandboxState::Failed);
    assert!(failed.reason.is_some());

    manager.remove(&b.id).await.unwrap();
    assert!(matches!(
        store.get_sandbox(&b.id, None).await,
        Err(Error::NotFound(_))
    ));
    assert!(!driver.host.lock().unwrap().contains(&b.id));
}

#[tokio::test]
async fn handlers_hold_a_dyn_store_and_the_manager_its_record_store() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().await.unwrap());
    let u = user(store.as_ref(), "rita", Role::Learner).await;
    let records: Arc<dyn RecordStore> = store.clone().records();
    let rec = record(Some(&u.id), 1);
    records.put(&rec).await.unwrap();
    let page = store
        .list_sandboxes(Some(&u.id), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items, vec![rec]);
}
