//! Passwords: reset links (once, within their day, the newest only, never for a disabled
//! user) and a user's own change, which keeps only the session it names.

use std::time::Duration;

use super::{user, Ctx, PASSWORD, T0};
use crate::{Error, LinkRefusal, Role, UserUpdate};

const NEW: &str = "a brand new password";
const HOUR: Duration = Duration::from_secs(3600);

pub(super) async fn a_reset_sets_the_password_once_and_ends_sessions(c: Ctx) {
    let store = c.store.as_ref();
    let admin = user(store, "ada", Role::Admin).await;
    let u = user(store, "ben", Role::Learner).await;
    let (_, cookie) = store.create_session(&u.id, HOUR).await.unwrap();
    let (_, token) = store.create_token(&u.id, "cli").await.unwrap();
    let (reset, secret) = store
        .create_password_reset(&u.id, Some(&admin.id))
        .await
        .unwrap();
    assert!(secret.starts_with("rst_") && secret.len() == 68, "{secret}");
    assert_eq!(
        (reset.user_id.as_str(), reset.created_by.as_deref()),
        (u.id.as_str(), Some(admin.id.as_str()))
    );
    assert_eq!(
        (reset.created_at_ms, reset.expires_at_ms),
        (T0, T0 + 86_400_000)
    );
    // A password that breaks the rule burns nothing.
    assert!(matches!(
        store.redeem_password_reset(&secret, "short".into()).await,
        Err(Error::Invalid(_))
    ));
    c.clock.advance_ms(1_000);
    let who = store
        .redeem_password_reset(&secret, NEW.into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(who, u);
    assert_eq!(
        store.verify_login("ben", NEW).await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(store.verify_login("ben", PASSWORD).await.unwrap(), None);
    // Every login session ends; API tokens are not login sessions and stay.
    assert!(store.authenticate_session(&cookie).await.unwrap().is_none());
    assert!(store.authenticate_token(&token).await.unwrap().is_some());
    // Once only.
    assert_eq!(
        store
            .redeem_password_reset(&secret, "yet another one".into())
            .await
            .unwrap(),
        Err(LinkRefusal::UsedUp)
    );
    assert_eq!(store.verify_login("ben", NEW).await.unwrap(), Some(u));
    for bad in ["", "rst_", &secret[4..], &secret.to_uppercase()] {
        assert_eq!(
            store.redeem_password_reset(bad, NEW.into()).await.unwrap(),
            Err(LinkRefusal::Unknown),
            "{bad:?}"
        );
    }
}

pub(super) async fn a_newer_reset_voids_the_older_and_links_expire(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "cleo", Role::Author).await;
    let (_, old) = store.create_password_reset(&u.id, None).await.unwrap();
    c.clock.advance_ms(10);
    let (reset, newer) = store.create_password_reset(&u.id, None).await.unwrap();
    assert_eq!(reset.created_by, None);
    assert_eq!(reset.expires_at_ms, T0 + 10 + 86_400_000);
    assert_eq!(
        store.redeem_password_reset(&old, NEW.into()).await.unwrap(),
        Err(LinkRefusal::Unknown)
    );
    c.clock.set(reset.expires_at_ms);
    assert_eq!(
        store
            .redeem_password_reset(&newer, NEW.into())
            .await
            .unwrap(),
        Err(LinkRefusal::Expired)
    );
    assert_eq!(
        store.verify_login("cleo", PASSWORD).await.unwrap(),
        Some(u.clone())
    );
    // A reset made after a used one works again.
    let (_, fresh) = store.create_password_reset(&u.id, None).await.unwrap();
    store
        .redeem_password_reset(&fresh, NEW.into())
        .await
        .unwrap()
        .unwrap();
    let (_, again) = store.create_password_reset(&u.id, None).await.unwrap();
    store
        .redeem_password_reset(&again, "third password".into())
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .verify_login("cleo", "third password")
        .await
        .unwrap()
        .is_some());
}

pub(super) async fn disabled_and_unknown_users_get_no_reset(c: Ctx) {
    let store = c.store.as_ref();
    user(store, "root", Role::Admin).await;
    let u = user(store, "dora", Role::Learner).await;
    assert!(matches!(
        store.create_password_reset("usr-nobody", None).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.create_password_reset(&u.id, Some("usr-nobody")).await,
        Err(Error::NotFound(_))
    ));
    let (_, secret) = store.create_password_reset(&u.id, None).await.unwrap();
    let disable = UserUpdate {
        disabled: Some(true),
        ..UserUpdate::default()
    };
    store.update_user(&u.id, disable).await.unwrap();
    assert_eq!(
        store
            .redeem_password_reset(&secret, NEW.into())
            .await
            .unwrap(),
        Err(LinkRefusal::Disabled)
    );
    assert!(matches!(
        store.create_password_reset(&u.id, None).await,
        Err(Error::Invalid(_))
    ));
    // Deleting the user takes the reset along.
    store.delete_user(&u.id).await.unwrap();
    assert_eq!(
        store
            .redeem_password_reset(&secret, NEW.into())
            .await
            .unwrap(),
        Err(LinkRefusal::Unknown)
    );
}

pub(super) async fn one_of_eight_concurrent_resets_uses_the_link(c: Ctx) {
    let u = user(c.store.as_ref(), "eve", Role::Learner).await;
    let (_, secret) = c.store.create_password_reset(&u.id, None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, secret) = (c.store.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            store
                .redeem_password_reset(&secret, format!("password number {i}"))
                .await
        }));
    }
    let mut won = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap().unwrap() {
            Ok(_) => won.push(i),
            Err(why) => assert_eq!(why, LinkRefusal::UsedUp),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    let winner = format!("password number {}", won[0]);
    assert!(c
        .store
        .verify_login("eve", &winner)
        .await
        .unwrap()
        .is_some());
}

pub(super) async fn a_password_change_keeps_only_the_named_session(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "finn", Role::Learner).await;
    let other = user(store, "gus", Role::Learner).await;
    let (here, here_secret) = store.create_session(&u.id, HOUR).await.unwrap();
    let (_, there) = store.create_session(&u.id, HOUR).await.unwrap();
    let (_, theirs) = store.create_session(&other.id, HOUR).await.unwrap();
    assert!(matches!(
        store
            .change_password(&u.id, "short".into(), Some(&here.id))
            .await,
        Err(Error::Invalid(_))
    ));
    assert!(store.authenticate_session(&there).await.unwrap().is_some());
    store
        .change_password(&u.id, NEW.into(), Some(&here.id))
        .await
        .unwrap();
    assert!(store
        .authenticate_session(&here_secret)
        .await
        .unwrap()
        .is_some());
    assert!(store.authenticate_session(&there).await.unwrap().is_none());
    assert!(store.authenticate_session(&theirs).await.unwrap().is_some());
    assert_eq!(
        store.verify_login("finn", NEW).await.unwrap(),
        Some(u.clone())
    );
    // Without a session to keep (a bearer token's caller), every session ends.
    store
        .change_password(&u.id, "another new one".into(), None)
        .await
        .unwrap();
    assert!(store
        .authenticate_session(&here_secret)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store.change_password("usr-nobody", NEW.into(), None).await,
        Err(Error::NotFound(_))
    ));
}
