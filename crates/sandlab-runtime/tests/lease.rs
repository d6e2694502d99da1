//! Leases across processes over a real SQLite store: a live holder keeps its lease, a
//! holder of this host that died loses it at once, tasks of one process take turns.

use std::sync::Arc;
use std::time::Duration;

use sandlab_core::{Holder, LeaseStore};
use sandlab_runtime::lease::{Leases, LEASE_TTL};
use sandlab_runtime::process;
use sandlab_store::{SqliteStore, Store};

async fn store(dir: &tempfile::TempDir) -> Arc<dyn LeaseStore> {
    let s = Arc::new(SqliteStore::open(&dir.path().join("db")).await.unwrap());
    s.leases()
}

#[tokio::test]
async fn a_dead_local_holder_loses_its_lease_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let leases = store(&dir).await;
    let mut child = std::process::Command::new("sleep")
        .arg("0.05")
        .spawn()
        .unwrap();
    let dead = process::holder_of(child.id()).unwrap();
    child.wait().unwrap();
    let held = leases
        .acquire_lease("work", &format!("{dead}#1"), LEASE_TTL)
        .await
        .unwrap();
    assert_eq!(held.holder, format!("{dead}#1"));
    let me = Leases::new(leases.clone(), process::current().unwrap());
    let guard = tokio::time::timeout(Duration::from_secs(5), me.acquire("work", LEASE_TTL))
        .await
        .expect("waited on a dead holder")
        .unwrap();
    let now = leases.get_lease("work").await.unwrap().unwrap();
    assert!(now.holder.starts_with(&me.holder().to_string()));
    guard.release().await.unwrap();
    assert!(leases.get_lease("work").await.unwrap().is_none());
}

#[tokio::test]
async fn a_holder_of_another_host_is_waited_out() {
    let dir = tempfile::tempdir().unwrap();
    let leases = store(&dir).await;
    let elsewhere = Holder::new("another-host-boot", 1, 1).unwrap();
    leases
        .acquire_lease("work", &elsewhere.to_string(), LEASE_TTL)
        .await
        .unwrap();
    let me = Leases::new(leases.clone(), process::current().unwrap());
    let err = me
        .acquire("work", Duration::from_millis(200))
        .await
        .err()
        .expect("took a live lease");
    assert!(err.to_string().contains("another process"), "{err}");
    // Once its holder gives it up, it is ours.
    leases
        .release_lease("work", &elsewhere.to_string())
        .await
        .unwrap();
    let guard = me.acquire("work", Duration::from_secs(5)).await.unwrap();
    guard.ensure_held().unwrap();
}

#[tokio::test]
async fn a_lease_taken_over_meanwhile_counts_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    let leases = store(&dir).await;
    let ttl = Duration::from_millis(300);
    let me = Leases::new(leases.clone(), process::current().unwrap()).with_ttl(ttl);
    let guard = me.acquire("work", Duration::from_secs(5)).await.unwrap();
    guard.ensure_held().unwrap();
    // Another process takes the row over (as after an expiry while this one stalled).
    let mine = leases.get_lease("work").await.unwrap().unwrap().holder;
    leases.release_lease("work", &mine).await.unwrap();
    leases
        .acquire_lease("work", "another-host-boot/1/1", LEASE_TTL)
        .await
        .unwrap();
    // The next renewal sees it.
    sandlab_testkit::wait_until("the guard notices", Duration::from_secs(5), || async {
        guard.ensure_held().is_err().then_some(())
    })
    .await;
    let err = guard.ensure_held().unwrap_err();
    assert!(err.to_string().contains("another process"), "{err}");
}

#[tokio::test]
async fn tasks_of_one_process_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let leases = store(&dir).await;
    let me = Arc::new(Leases::new(leases, process::current().unwrap()));
    let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (me, inside) = (me.clone(), inside.clone());
        tasks.push(tokio::spawn(async move {
            let g = me.acquire("work", Duration::from_secs(10)).await.unwrap();
            let n = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            assert_eq!(n, 0, "two tasks held the lease at once");
            tokio::time::sleep(Duration::from_millis(5)).await;
            inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            g.release().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
