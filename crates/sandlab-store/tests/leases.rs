//! Leases on SQLite: two stores on one file (two processes, or two control planes, on one
//! database) exclude each other, leases survive a restart, and expired rows do not pile
//! up. The semantics every store shares are in the conformance suite.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use sandlab_core::LeaseStore;
use sandlab_store::conformance::holder;

const MINUTE: Duration = Duration::from_secs(60);

/// Four stores on one file, two tasks each, race for one lease: exactly one task has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stores_on_one_file_exclude_each_other() {
    let db = TempDb::new();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(db.open().await));
    }
    for round in 0..5 {
        let name = format!("reconcile-{round}");
        let mut tasks = Vec::new();
        for pid in 1..=8u32 {
            let store = stores[pid as usize % stores.len()].clone();
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                let me = holder(pid).to_string();
                let got = store.acquire_lease(&name, &me, MINUTE).await.unwrap();
                (me, got)
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (me, got) = t.await.unwrap();
            if got.holder == me {
                winners.push(me);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        for store in &stores {
            let seen = store.get_lease(&name).await.unwrap().unwrap();
            assert_eq!(seen.holder, winners[0]);
        }
    }
}

#[tokio::test]
async fn leases_survive_a_restart_and_expired_rows_go() {
    let db = TempDb::new();
    let clock = manual_clock();
    let store = db.open_with_clock(clock.clone()).await;
    let me = holder(1).to_string();
    for i in 0..10 {
        store
            .acquire_lease(&format!("holder/{i}"), &me, MINUTE)
            .await
            .unwrap();
    }
    let kept = store
        .acquire_lease("reconcile", &me, MINUTE * 10)
        .await
        .unwrap();
    store.close().await;

    let store = db.open_with_clock(clock.clone()).await;
    assert_eq!(
        store.get_lease("reconcile").await.unwrap(),
        Some(kept.clone())
    );
    // Holders that died never release; the next acquire clears what has expired.
    clock.advance_ms(60_000);
    store.acquire_lease("pool", &me, MINUTE).await.unwrap();
    let mut raw = db.raw().await;
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM leases ORDER BY name")
        .fetch_all(&mut raw)
        .await
        .unwrap();
    assert_eq!(names, ["pool", "reconcile"]);
    assert_eq!(store.get_lease("reconcile").await.unwrap(), Some(kept));
}
