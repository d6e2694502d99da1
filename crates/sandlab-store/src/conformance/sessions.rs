//! Browser login sessions: the cookie secret, the CSRF token, expiry on the store's clock,
//! logout, cleanup and the per-user cap.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{user, Ctx, T0};
use crate::{Error, Role, MAX_SESSIONS_PER_USER};

pub(super) async fn sessions_authenticate_until_they_expire(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "nina", Role::Learner).await;
    let (s, secret) = store
        .create_session(&u.id, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(secret.len(), 64);
    // The id is the SHA-256 of the secret: safe to log, useless to present.
    assert_eq!(s.id, hex::encode(Sha256::digest(secret.as_bytes())));
    assert_eq!(s.user_id, u.id);
    assert_eq!(
        (s.created_at_ms, s.expires_at_ms, s.last_seen_ms),
        (T0, T0 + 3_600_000, T0)
    );
    assert_eq!(s.csrf_token.len(), 64);
    assert_ne!(s.csrf_token, secret);

    let (who, got) = store.authenticate_session(&secret).await.unwrap().unwrap();
    assert_eq!(who, u);
    assert_eq!(got, s);
    assert!(got.csrf_matches(&s.csrf_token));
    assert!(!got.csrf_matches(&secret));
    assert!(store.authenticate_session(&s.id).await.unwrap().is_none());

    // last_seen moves at most once a minute; the expiry does not slide.
    c.clock.advance_ms(90_000);
    let (_, got) = store.authenticate_session(&secret).await.unwrap().unwrap();
    assert_eq!(got.last_seen_ms, T0 + 90_000);
    assert_eq!(got.expires_at_ms, T0 + 3_600_000);
    c.clock.advance_ms(1_000);
    let (_, got) = store.authenticate_session(&secret).await.unwrap().unwrap();
    assert_eq!(got.last_seen_ms, T0 + 90_000);

    // One millisecond before the end it works; at the end it does not.
    c.clock.set(T0 + 3_600_000 - 1);
    assert!(store.authenticate_session(&secret).await.unwrap().is_some());
    c.clock.set(T0 + 3_600_000);
    assert!(store.authenticate_session(&secret).await.unwrap().is_none());

    for bad in ["", "x", &secret[..63], &secret.to_uppercase()] {
        assert!(
            store.authenticate_session(bad).await.unwrap().is_none(),
            "{bad:?}"
        );
    }
}

pub(super) async fn logout_and_cleanup_of_expired_sessions(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "oscar", Role::Learner).await;
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
    assert!(store.authenticate_session(&long).await.unwrap().is_some());
    // Deleting what is not there succeeds.
    store.delete_session(&gone).await.unwrap();
    store.delete_session("not a secret").await.unwrap();

    assert_eq!(store.delete_expired_sessions().await.unwrap(), 0);
    c.clock.advance_ms(10_000);
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 1);
    assert_eq!(store.delete_expired_sessions().await.unwrap(), 0);
    // Back in time the expired one is still gone: it was deleted, not just hidden.
    c.clock.set(T0);
    assert!(store.authenticate_session(&short).await.unwrap().is_none());
    assert!(store.authenticate_session(&long).await.unwrap().is_some());
}

pub(super) async fn bad_ttls_unknown_users_and_the_per_user_cap(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "pat", Role::Learner).await;
    for ttl in [
        Duration::ZERO,
        Duration::from_secs(400 * 24 * 3600),
        Duration::MAX,
    ] {
        assert!(
            matches!(
                store.create_session(&u.id, ttl).await,
                Err(Error::Invalid(_))
            ),
            "{ttl:?}"
        );
    }
    assert!(matches!(
        store
            .create_session("usr-nope", Duration::from_secs(1))
            .await,
        Err(Error::NotFound("user"))
    ));

    let mut secrets = Vec::new();
    for _ in 0..MAX_SESSIONS_PER_USER + 2 {
        c.clock.advance_ms(1);
        let (_, secret) = store
            .create_session(&u.id, Duration::from_secs(60))
            .await
            .unwrap();
        secrets.push(secret);
    }
    // The two oldest were dropped to make room; the rest work.
    for (i, s) in secrets.iter().enumerate() {
        let ok = store.authenticate_session(s).await.unwrap().is_some();
        assert_eq!(ok, i >= 2, "session {i}");
    }
    // The cap is per user.
    let other = user(store, "quin", Role::Learner).await;
    let (_, theirs) = store
        .create_session(&other.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(store.authenticate_session(&theirs).await.unwrap().is_some());
    assert!(store
        .authenticate_session(&secrets[2])
        .await
        .unwrap()
        .is_some());
}
