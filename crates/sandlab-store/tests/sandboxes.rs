//! Sandbox records on SQLite: the columns they land in, surviving a restart, and rows the
//! store cannot read. The behaviour every store shares (round trips, owner scoping, paging,
//! live counts) is in the conformance suite (`tests/conformance.rs`).

mod common;

use common::*;
use sandlab_core::{NetworkInfo, RecordStore, SandboxState};
use sandlab_store::conformance::holder;
use sandlab_store::{Error, Store};

#[tokio::test]
async fn records_keep_holders_as_strings_and_survive_a_restart() {
    let db = TempDb::new();
    let store = db.open().await;
    let mut rec = record(Some("usr-a"), 1_700_000_000_000);
    rec.owner_process = Some(holder(77));
    rec.network = NetworkInfo {
        ipv4: Some("10.213.0.30".into()),
        ipv6: None,
    };
    store.put(&rec).await.unwrap();

    let mut raw = db.raw().await;
    let (creator, owner_process, driver): (String, String, String) =
        sqlx::query_as("SELECT creator, owner_process, driver FROM sandboxes WHERE id = ?")
            .bind(rec.id.as_str())
            .fetch_one(&mut raw)
            .await
            .unwrap();
    assert_eq!(creator, holder(4242).to_string());
    assert_eq!(owner_process, holder(77).to_string());
    assert_eq!(driver, "container");

    store.close().await;
    let store = db.open().await;
    assert_eq!(store.get(&rec.id).await.unwrap(), Some(rec.clone()));
    assert_eq!(store.list().await.unwrap(), vec![rec]);
}

#[tokio::test]
async fn an_unreadable_row_is_skipped_by_list_and_reported_by_get() {
    let db = TempDb::new();
    let store = db.open().await;
    let recs: Vec<_> = [30, 10, 20, 40].iter().map(|t| record(None, *t)).collect();
    for r in &recs {
        store.put(r).await.unwrap();
    }
    let mut raw = db.raw().await;
    sqlx::query("UPDATE sandboxes SET state = 'exploded' WHERE id = ?")
        .bind(recs[0].id.as_str())
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE sandboxes SET owner_process = 'not a holder' WHERE id = ?")
        .bind(recs[3].id.as_str())
        .execute(&mut raw)
        .await
        .unwrap();

    let listed: Vec<u64> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| r.created_at_ms)
        .collect();
    assert_eq!(listed, [10, 20]);
    for bad in [&recs[0], &recs[3]] {
        let err = store.get(&bad.id).await.unwrap_err();
        let cause = err.source.downcast_ref::<Error>();
        assert!(matches!(cause, Some(Error::Corrupt(_))), "{err:?}");
        assert!(store.get_sandbox(&bad.id, None).await.is_err());
    }
    let mut ok = recs[2].clone();
    ok.state = SandboxState::Running;
    store.put(&ok).await.unwrap();
    assert_eq!(store.get(&ok.id).await.unwrap(), Some(ok));
}
