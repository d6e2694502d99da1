//! Browser login sessions: cookie secret stored hashed, CSRF token, expiry, cleanup.

mod common;

use std::time::Duration;

use common::*;
use sandlab_store::{Error, Role, SqliteStore, Store, MAX_SESSIONS_PER_USER};

#[tokio::test]
async fn sessions_authenticate_until_they_expire() {
    let db = TempDb::new();
    let clock = manual_clock();
    let store = db.open_with_clock(clock.clone()).await;
    let u = user(&store, "nina", Role::Learner).await;
    let (s, secret) = store
        .create_session(&u.id, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(secret.len(), 64);
    assert_eq!(
        s.id,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()))
    );
    assert_eq!(
        (s.created_at_ms, s.expires_at_ms, s.last_seen_ms),
        (T0, T0 + 3_600_000, T0)
    );
    assert_eq!(s.csrf_token.len(), 64);
    assert_ne!(s.csrf_token, secret);
    assert!(
        !contains(&db.all_bytes(), secret.as_bytes()),
        "cookie secret on disk"
    );

    let (who, got) = store.authenticate_session(&secret).await.unwrap().unwrap();
    assert_eq!(who, u);
    assert_eq!(got, s);
    assert!(got.csrf_matches(&s.csrf_token));
    assert!(!got.csrf_matches(&secret));

    // last_seen moves at most once a minute.
    clock.advance_ms(90_000);
    let (_, got) = store.authenticate_session(&secret).await.unwrap().unwrap();
    assert_eq!(got.last_seen_ms, T0 + 90_000);
    clock.advance_ms(1_000);
    let (_, got) = store.authenticate_session(&secret).await.unwrap().unwrap();
    assert_eq!(got.last_seen_ms, T0 + 90_000);

    // One millisecond before the end it works; at the end it does not.
    clock.set(T0 + 3_600_000 - 1);
    assert!(store.authenticate_session(&secret).await.unwrap().is_some());
    clock.set(T0 + 3_600_000);
    assert!(store.authenticate_session(&secret).await.unwrap().is_none());

    for bad in ["", "x", &secret[..63], &secret.to_uppercase()] {
        assert!(
            store.authenticate_session(bad).await.unwrap().is_none(),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn logout_and_cleanup_of_expired_sessions() {
    let clock = manual_clock();
    let store = SqliteStore::open_in_memory_with(clock.clone())
        .await
        .unwrap();
    let u = user(&store, "oscar", Role::Learner).await;
    let (_, short) = store
        .create_session(&u.id, Duration::from_secs(10))
        .await
        .unwrap();
    let (_, long) = store
        .create_session(&u.id, Duration::from_secs(100))
        .await
        .unwrap();
    let (_, gone) = store
        .create_session(&u.id, Duration::from_secs(100))
        .await
        .unwrap();

    store.delete_session(&gone).await.unwrap();
    assert!(store.authenticate_session(&gone).await.unwrap().is_none());
    store.delete_session(&gone).await.unwrap();
    store.delete_session("not a secret").await.unwrap();

    assert_eq!(store.delete_expired_sessions().await.unwrap(), 0);
    clock.advance_ms(10_000);
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 1);
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 0);
    // Back in time the expired one is still gone: it was deleted, not just hidden.
    clock.set(T0);
    assert!(store.authenticate_session(&short).await.unwrap().is_none());
    assert!(store.authenticate_session(&long).await.unwrap().is_some());
}

#[tokio::test]
async fn bad_ttls_unknown_users_and_the_per_user_cap() {
    let clock = manual_clock();
    let store = SqliteStore::open_in_memory_with(clock.clone())
        .await
        .unwrap();
    let u = user(&store, "pat", Role::Learner).await;
    for ttl in [Duration::ZERO, Duration::from_secs(400 * 24 * 3600)] {
        assert!(matches!(
            store.create_session(&u.id, ttl).await,
            Err(Error::Invalid(_))
        ));
    }
    assert!(matches!(
        store
            .create_session("usr-nope", Duration::from_secs(1))
            .await,
        Err(Error::NotFound("user"))
    ));

    let mut secrets = Vec::new();
    for _ in 0..MAX_SESSIONS_PER_USER + 2 {
        clock.advance_ms(1);
        secrets.push(
            store
                .create_session(&u.id, Duration::from_secs(60))
                .await
                .unwrap()
                .1,
        );
    }
    // The two oldest were dropped to make room; the rest work.
    for (i, s) in secrets.iter().enumerate() {
        let ok = store.authenticate_session(s).await.unwrap().is_some();
        assert_eq!(ok, i >= 2, "session {i}");
    }
}
