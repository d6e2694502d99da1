//! The audit log: appended in order, listed page by page, bounded, append-only.

use serde_json::json;

use super::{user, Ctx, T0};
use crate::{actions, AuditEntry, Error, PageRequest, Role, Store, MAX_AUDIT_DETAIL_BYTES};

async fn everything(store: &dyn Store, page_size: u32) -> Vec<AuditEntry> {
    let mut got = Vec::new();
    let mut req = PageRequest::first(page_size);
    loop {
        let page = store.list_audit(req).await.unwrap();
        assert!(page.items.len() <= page_size as usize);
        got.extend(page.items);
        match page.next {
            Some(cursor) => req = PageRequest::after(cursor, page_size),
            None => return got,
        }
    }
}

pub(super) async fn entries_append_and_list_in_order(c: Ctx) {
    let store = c.store.as_ref();
    assert!(everything(store, 3).await.is_empty());
    let sb = "sb-abcdefgh2345";
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
            Some(sb),
            json!({"image": "debian"}),
        ),
        (
            Some("usr-a"),
            actions::SANDBOX_EXEC,
            Some(sb),
            json!({"cmd": ["ls"]}),
        ),
        (
            Some("usr-a"),
            actions::SANDBOX_DELETE,
            Some(sb),
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
        c.clock.advance_ms(1);
        ids.push(store.audit(actor, action, target, detail).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let got = everything(store, 3).await;
    assert_eq!(got.len(), steps.len());
    for (i, (e, (actor, action, target, detail))) in got.iter().zip(steps).enumerate() {
        assert_eq!(e.id, ids[i]);
        assert_eq!(e.at_ms, T0 + 1 + i as i64);
        assert_eq!(e.actor.as_deref(), actor);
        assert_eq!(e.action, action);
        assert_eq!(e.target.as_deref(), target);
        assert_eq!(e.detail, detail);
    }
    assert!(matches!(
        store.list_audit(PageRequest::after("garbage", 3)).await,
        Err(Error::Invalid(_))
    ));
}

pub(super) async fn oversized_input_is_bounded_and_bad_actions_refused(c: Ctx) {
    let store = c.store.as_ref();
    let long = "t".repeat(1000);
    let big = json!({"cmd": ["sh", "-c", "x".repeat(100_000)]});
    store
        .audit(Some(&long), actions::SANDBOX_EXEC, Some(&long), big)
        .await
        .unwrap();
    let e = &store
        .list_audit(PageRequest::default())
        .await
        .unwrap()
        .items[0];
    assert_eq!(e.target.as_deref().map(str::len), Some(256));
    assert_eq!(e.actor.as_deref().map(str::len), Some(256));
    assert!(e.detail.to_string().len() <= MAX_AUDIT_DETAIL_BYTES);
    assert_eq!(e.detail["truncated"], true);
    assert!(e.detail["preview"]
        .as_str()
        .unwrap()
        .starts_with("{\"cmd\":[\"sh\""));

    for bad in [
        "",
        "Sandbox.Create",
        "sandbox create",
        "sandbox/create",
        &"a".repeat(65),
    ] {
        assert!(
            matches!(
                store.audit(None, bad, None, json!({})).await,
                Err(Error::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(everything(store, 10).await.len(), 1);
}

/// Appending never changes what is there, and the entries outlive the users they name.
pub(super) async fn the_log_is_append_only_and_outlives_users(c: Ctx) {
    let store = c.store.as_ref();
    let admin = user(store, "root", Role::Admin).await;
    let u = user(store, "gone", Role::Learner).await;
    for action in [actions::AUTH_LOGIN, actions::TOKEN_CREATE] {
        c.clock.advance_ms(1);
        store
            .audit(Some(&u.id), action, Some(&u.id), json!({}))
            .await
            .unwrap();
    }
    let before = everything(store, 1).await;
    store.delete_user(&u.id).await.unwrap();
    let mut last = before.last().map(|e| e.id).unwrap_or_default();
    for _ in 0..3 {
        c.clock.advance_ms(1);
        let id = store
            .audit(
                Some(&admin.id),
                actions::USER_UPDATE,
                Some(&u.id),
                json!({}),
            )
            .await
            .unwrap();
        assert!(id > last, "ids increase: {id} after {last}");
        last = id;
    }
    let after = everything(store, 2).await;
    assert_eq!(after.len(), 5);
    assert_eq!(after[..2], before[..]);
    assert_eq!(after[0].actor.as_deref(), Some(u.id.as_str()));
}
