//! The audit log on SQLite: triggers keep it append-only even for writers that bypass the
//! store. Ordering, paging and bounds are in the conformance suite.

mod common;

use common::*;
use sandlab_store::{actions, PageRequest, Store};
use serde_json::json;

#[tokio::test]
async fn the_log_cannot_be_rewritten() {
    let db = TempDb::new();
    let store = db.open().await;
    store
        .audit(None, actions::AUTH_LOGIN, None, json!({}))
        .await
        .unwrap();
    let mut raw = db.raw().await;
    for sql in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"] {
        let err = sqlx::query(sql).execute(&mut raw).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let items = store
        .list_audit(PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].action, actions::AUTH_LOGIN);
}
