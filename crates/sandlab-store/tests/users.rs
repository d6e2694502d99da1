//! Users on SQLite: what lands on disk. The behaviour every store shares (look-ups, paging,
//! updates, the last admin, deletion) is in the conformance suite (`tests/conformance.rs`).

mod common;

use std::time::Duration;

use common::*;
use sandlab_store::{Role, Store};

#[tokio::test]
async fn password_is_stored_as_argon2id() {
    let db = TempDb::new();
    let store = db.open().await;
    let u = user(&store, "carol", Role::Learner).await;
    let mut raw = db.raw().await;
    let phc: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
        .bind(&u.id)
        .fetch_one(&mut raw)
        .await
        .unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(!phc.contains(PASSWORD));
    assert!(sandlab_store::password::verify_password(PASSWORD, &phc));
    assert!(store
        .verify_login("carol", PASSWORD)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn deleting_a_user_deletes_their_token_and_session_rows() {
    let db = TempDb::new();
    let store = db.open().await;
    let u = user(&store, "erin", Role::Learner).await;
    let other = user(&store, "frank", Role::Learner).await;
    for id in [&u.id, &other.id] {
        store.create_token(id, "ci").await.unwrap();
        store
            .create_session(id, Duration::from_secs(60))
            .await
            .unwrap();
    }
    store.delete_user(&u.id).await.unwrap();

    let mut raw = db.raw().await;
    for (table, id, left) in [
        ("api_tokens", &u.id, 0),
        ("login_sessions", &u.id, 0),
        ("api_tokens", &other.id, 1),
        ("login_sessions", &other.id, 1),
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE user_id = ?"))
            .bind(id)
            .fetch_one(&mut raw)
            .await
            .unwrap();
        assert_eq!(n, left, "{table} of {id}");
    }
}
