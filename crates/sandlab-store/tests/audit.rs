//! The audit log: appended in order, listed page by page, bounded, append-only.

mod common;

use common::*;
use sandlab_store::{actions, Error, PageRequest, SqliteStore, Store, MAX_AUDIT_DETAIL_BYTES};
use serde_json::json;

#[tokio::test]
async fn entries_append_and_list_in_order() {
    let clock = manual_clock();
    let store = SqliteStore::open_in_memory_with(clock.clone())
        .await
        .unwrap();
    let steps = [
        (
            None,
            actions::AUTH_LOGIN_FAILED,
            Some("mallory"),
            json!({"ip": "192.0.2.1"}),
        ),
        (Some("usr-a"), actions::AUTH_LOGIN, Some("usr-a"), json!({})),
        (
            Some("usr-a"),
            actions::TOKEN_CREATE,
            Some("tok-1"),
            json!({"name": "ci"}),
        ),
        (
            Some("usr-a"),
            actions::SANDBOX_CREATE,
            Some("sb-abcdefgh2345"),
            json!({"image": "debian"}),
        ),
        (
            Some("usr-a"),
            actions::SANDBOX_EXEC,
            Some("sb-abcdefgh2345"),
            json!({"cmd": ["ls"]}),
        ),
        (
            Some("usr-a"),
            actions::SANDBOX_DELETE,
            Some("sb-abcdefgh2345"),
            json!(null),
        ),
        (
            Some("usr-root"),
            actions::USER_CREATE,
            Some("usr-b"),
            json!({"role": "learner"}),
        ),
    ];
    let mut ids = Vec::new();
    for (actor, action, target, detail) in steps.clone() {
        clock.advance_ms(1);
        ids.push(store.audit(actor, action, target, detail).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let mut got = Vec::new();
    let mut req = PageRequest::first(3);
    loop {
        let page = store.list_audit(req).await.unwrap();
        got.extend(page.items);
        match page.next {
            Some(c) => req = PageRequest::after(c, 3),
            None => break,
        }
    }
    assert_eq!(got.len(), steps.len());
    for (i, (e, (actor, action, target, detail))) in got.iter().zip(steps).enumerate() {
        assert_eq!(e.id, ids[i]);
        assert_eq!(e.at_ms, T0 + 1 + i as i64);
        assert_eq!(e.actor.as_deref(), actor);
        assert_eq!(e.action, action);
        assert_eq!(e.target.as_deref(), target);
        assert_eq!(e.detail, detail);
    }
}

#[tokio::test]
async fn oversized_input_is_bounded_and_bad_actions_refused() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let long_target = "t".repeat(1000);
    let big = json!({"cmd": ["sh", "-c", "x".repeat(100_000)]});
    store
        .audit(
            Some("usr-a"),
            actions::SANDBOX_EXEC,
            Some(&long_target),
            big,
        )
        .await
        .unwrap();
    let e = &store
        .list_audit(PageRequest::default())
        .await
        .unwrap()
        .items[0];
    assert_eq!(e.target.as_deref().map(str::len), Some(256));
    assert!(e.detail.to_string().len() <= MAX_AUDIT_DETAIL_BYTES);
    assert_eq!(e.detail["truncated"], true);
    assert!(e.detail["preview"]
        .as_str()
        .unwrap()
        .starts_with("{\"cmd\":[\"sh\""));

    for bad in ["", "Sandbox.Create", "sandbox create", "sandbox/create"] {
        assert!(matches!(
            store.audit(None, bad, None, json!({})).await,
            Err(Error::Invalid(_))
        ));
    }
    assert_eq!(
        store
            .list_audit(PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

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
    assert_eq!(
        store
            .list_audit(PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}
