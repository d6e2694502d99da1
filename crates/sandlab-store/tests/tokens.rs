//! API tokens on SQLite: only the hash reaches the disk, and two stores on one file (two
//! processes' worth of connections) create tokens at once. The behaviour every store
//! shares is in the conformance suite (`tests/conformance.rs`).

mod common;

use std::sync::Arc;

use common::*;
use sandlab_store::{Error, Role, Store};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn the_secret_is_shown_once_and_only_its_hash_is_stored() {
    let db = TempDb::new();
    let clock = manual_clock();
    let store = db.open_with_clock(clock.clone()).await;
    let u = user(&store, "grace", Role::Learner).await;
    let (tok, secret) = store.create_token(&u.id, "laptop").await.unwrap();
    assert!(secret.starts_with("sl_") && secret.len() == 67, "{secret}");
    assert!(tok.id.starts_with("tok-"));
    assert_eq!(
        (tok.user_id.as_str(), tok.name.as_str()),
        (u.id.as_str(), "laptop")
    );
    assert_eq!(tok.created_at_ms, T0);
    assert_eq!(tok.last_used_at_ms, None);
    // The listing never carries a secret.
    assert_eq!(store.list_tokens(&u.id).await.unwrap(), vec![tok.clone()]);

    // On disk (database, WAL and shm files, before and after a checkpoint): the hash is
    // there, the secret is not.
    let hash = hex::encode(Sha256::digest(secret.as_bytes()));
    for checkpointed in [false, true] {
        let bytes = db.all_bytes();
        assert!(
            contains(&bytes, hash.as_bytes()),
            "hash missing ({checkpointed})"
        );
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "secret on disk ({checkpointed})"
        );
        assert!(
            !contains(&bytes, &secret.as_bytes()[3..]),
            "secret on disk ({checkpointed})"
        );
        store.close().await;
    }
}

/// Two stores (two processes' worth of connections) on one file, 50 creations at once:
/// every one succeeds, none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_on_two_stores_all_succeed() {
    let db = TempDb::new();
    let a = Arc::new(db.open().await);
    let b = Arc::new(db.open().await);
    let u = user(a.as_ref(), "lena", Role::Learner).await;
    let v = user(a.as_ref(), "mia", Role::Learner).await;

    let mut tasks = Vec::new();
    for i in 0..50 {
        let (store, uid) = if i % 2 == 0 {
            (a.clone(), u.id.clone())
        } else {
            (b.clone(), v.id.clone())
        };
        tasks.push(tokio::spawn(async move {
            let (_, secret) = store.create_token(&uid, &format!("t{i}")).await?;
            store
                .authenticate_token(&secret)
                .await?
                .ok_or(Error::NotFound("API token"))?;
            Ok::<_, Error>(secret)
        }));
    }
    let mut secrets = Vec::new();
    for t in tasks {
        secrets.push(t.await.unwrap().unwrap());
    }
    assert_eq!(a.list_tokens(&u.id).await.unwrap().len(), 25);
    assert_eq!(b.list_tokens(&v.id).await.unwrap().len(), 25);
    secrets.sort();
    secrets.dedup();
    assert_eq!(secrets.len(), 50);
}
