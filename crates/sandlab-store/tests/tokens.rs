//! API tokens: shown once, stored hashed, authenticate, revoke; concurrent creation.

mod common;

use std::sync::Arc;

use common::*;
use sandlab_store::{Error, Role, SqliteStore, Store, UserUpdate, MAX_TOKENS_PER_USER};
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

#[tokio::test]
async fn authenticate_records_use_and_revocation_ends_it() {
    let clock = manual_clock();
    let store = SqliteStore::open_in_memory_with(clock.clone())
        .await
        .unwrap();
    let u = user(&store, "heidi", Role::Author).await;
    let (tok, secret) = store.create_token(&u.id, "ci").await.unwrap();
    let (tok2, secret2) = store.create_token(&u.id, "ci").await.unwrap();
    assert_ne!(secret, secret2);

    clock.advance_ms(5);
    let (who, id) = store.authenticate_token(&secret).await.unwrap().unwrap();
    assert_eq!((who, id.as_str()), (u.clone(), tok.id.as_str()));
    let used = |tokens: Vec<sandlab_store::ApiToken>, id: &str| {
        tokens
            .into_iter()
            .find(|t| t.id == id)
            .unwrap()
            .last_used_at_ms
    };
    assert_eq!(
        used(store.list_tokens(&u.id).await.unwrap(), &tok.id),
        Some(T0 + 5)
    );
    // Within a minute the stored time stays; after it, it moves.
    clock.advance_ms(30_000);
    store.authenticate_token(&secret).await.unwrap().unwrap();
    assert_eq!(
        used(store.list_tokens(&u.id).await.unwrap(), &tok.id),
        Some(T0 + 5)
    );
    clock.advance_ms(31_000);
    store.authenticate_token(&secret).await.unwrap().unwrap();
    assert_eq!(
        used(store.list_tokens(&u.id).await.unwrap(), &tok.id),
        Some(T0 + 61_005)
    );
    assert_eq!(
        used(store.list_tokens(&u.id).await.unwrap(), &tok2.id),
        None
    );

    for bad in [
        "",
        "sl_",
        "Bearer x",
        &secret[..66],
        &secret.to_uppercase(),
        &secret[3..],
    ] {
        assert!(
            store.authenticate_token(bad).await.unwrap().is_none(),
            "{bad:?}"
        );
    }
    let mut flipped = secret.clone().into_bytes();
    flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert!(store.authenticate_token(&flipped).await.unwrap().is_none());

    // Another user cannot revoke it; its owner can, once.
    let other = user(&store, "ivan", Role::Learner).await;
    assert!(matches!(
        store.delete_token(&other.id, &tok.id).await,
        Err(Error::NotFound("API token"))
    ));
    assert!(store.authenticate_token(&secret).await.unwrap().is_some());
    store.delete_token(&u.id, &tok.id).await.unwrap();
    assert!(store.authenticate_token(&secret).await.unwrap().is_none());
    assert!(matches!(
        store.delete_token(&u.id, &tok.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(store.authenticate_token(&secret2).await.unwrap().is_some());
}

#[tokio::test]
async fn a_disabled_users_token_fails() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let u = user(&store, "judy", Role::Learner).await;
    let (_, secret) = store.create_token(&u.id, "ci").await.unwrap();
    let off = UserUpdate {
        disabled: Some(true),
        ..Default::default()
    };
    store.update_user(&u.id, off).await.unwrap();
    assert!(store.authenticate_token(&secret).await.unwrap().is_none());
    let on = UserUpdate {
        disabled: Some(false),
        ..Default::default()
    };
    store.update_user(&u.id, on).await.unwrap();
    assert!(store.authenticate_token(&secret).await.unwrap().is_some());
}

#[tokio::test]
async fn names_users_and_the_cap_are_checked() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let u = user(&store, "ken", Role::Learner).await;
    assert!(matches!(
        store.create_token(&u.id, "").await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        store.create_token(&u.id, "a\nb").await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        store.create_token("usr-nope", "ci").await,
        Err(Error::NotFound("user"))
    ));
    for i in 0..MAX_TOKENS_PER_USER {
        store.create_token(&u.id, &format!("t{i}")).await.unwrap();
    }
    assert!(matches!(
        store.create_token(&u.id, "one more").await,
        Err(Error::Conflict(_))
    ));
    let tokens = store.list_tokens(&u.id).await.unwrap();
    assert_eq!(tokens.len() as u64, MAX_TOKENS_PER_USER);
    assert!(store.list_tokens("usr-nope").await.unwrap().is_empty());
}

/// 50 tasks at once in one process, and two stores (two processes' worth of connections)
/// on one file writing at once: every creation succeeds, none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creations_all_succeed() {
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
