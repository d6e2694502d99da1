//! Single sign-on: identities linked to users (made with them or linked later, at most one
//! per provider, found by verified email), and sign-ins taken once before they expire.

use std::time::Duration;

use super::{user, Ctx, T0};
use crate::{Error, NewIdentity, NewSsoLogin, Role};

const STATE: &str = "state-0123456789abcdef";

fn identity(provider: &str, subject: &str, email: Option<&str>, verified: bool) -> NewIdentity {
    NewIdentity {
        provider: provider.into(),
        subject: subject.into(),
        email: email.map(str::to_owned),
        email_verified: verified,
    }
}

fn login(next: &str) -> NewSsoLogin {
    NewSsoLogin {
        provider: "corp".into(),
        nonce: "n-1".into(),
        verifier: "v-1".into(),
        next: next.into(),
        ttl: Duration::from_secs(600),
    }
}

pub(super) async fn a_sign_in_is_taken_once_before_it_expires(c: Ctx) {
    let store = c.store.as_ref();
    store.begin_sso_login(STATE, login("/labs")).await.unwrap();
    let taken = store.take_sso_login(STATE).await.unwrap().unwrap();
    assert_eq!(
        (
            taken.provider.as_str(),
            taken.nonce.as_str(),
            taken.verifier.as_str()
        ),
        ("corp", "n-1", "v-1")
    );
    assert_eq!(taken.next, "/labs");
    assert_eq!(
        (taken.created_at_ms, taken.expires_at_ms),
        (T0, T0 + 600_000)
    );
    // A replayed state finds nothing.
    assert_eq!(store.take_sso_login(STATE).await.unwrap(), None);
    assert_eq!(
        store.take_sso_login("unknown-state-xyz").await.unwrap(),
        None
    );
    // An expired one is gone.
    store.begin_sso_login(STATE, login("/")).await.unwrap();
    c.clock.advance_ms(600_000);
    assert_eq!(store.take_sso_login(STATE).await.unwrap(), None);
    // Bad input is invalid.
    let zero = NewSsoLogin {
        ttl: Duration::ZERO,
        ..login("/")
    };
    assert!(matches!(
        store.begin_sso_login(STATE, zero).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        store.begin_sso_login("short", login("/")).await,
        Err(Error::Invalid(_))
    ));
}

pub(super) async fn one_of_eight_concurrent_callbacks_takes_a_sign_in(c: Ctx) {
    let store = c.store.clone();
    store.begin_sso_login(STATE, login("/")).await.unwrap();
    let takes: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_sso_login(STATE).await.unwrap() })
        })
        .collect();
    let mut n = 0;
    for t in takes {
        n += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(n, 1);
}

pub(super) async fn a_user_made_by_a_sign_in_is_found_by_its_identity(c: Ctx) {
    let store = c.store.as_ref();
    let id = identity("corp", "sub-1", Some("Alice@Example.com"), true);
    assert_eq!(store.sso_sign_in(id.clone()).await.unwrap(), None);
    let (u, linked) = store
        .create_sso_user(id.clone(), "Alice", Role::Author)
        .await
        .unwrap();
    assert_eq!(
        (u.username.as_str(), u.role, u.disabled),
        ("alice", Role::Author, false)
    );
    assert_eq!(linked.email.as_deref(), Some("alice@example.com"));
    assert!(linked.email_verified);
    assert_eq!(linked.user_id, u.id);
    // No password matches its account.
    assert_eq!(store.verify_login("alice", "").await.unwrap(), None);
    assert_eq!(store.verify_login("alice", "!sso").await.unwrap(), None);
    c.clock.advance_ms(1_000);
    assert_eq!(
        store.sso_sign_in(id.clone()).await.unwrap(),
        Some(u.clone())
    );
    // The same subject at another provider is another identity.
    let other = identity("github", "sub-1", None, false);
    assert_eq!(store.sso_sign_in(other).await.unwrap(), None);
    // A second account for one identity is refused, and nothing is made.
    assert!(matches!(
        store
            .create_sso_user(id.clone(), "alice2", Role::Learner)
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store.get_user_by_name("alice2").await,
        Err(Error::NotFound(_))
    ));
    // A taken username is a conflict too.
    assert!(matches!(
        store
            .create_sso_user(
                identity("corp", "sub-2", None, false),
                "ALICE",
                Role::Learner
            )
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store
            .create_sso_user(identity("corp", "sub-2", None, false), "a b", Role::Learner)
            .await,
        Err(Error::Invalid(_))
    ));
    // A disabled user is still found (the caller refuses them).
    store
        .update_user(
            &u.id,
            crate::UserUpdate {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let found = store.sso_sign_in(id).await.unwrap().unwrap();
    assert!(found.disabled);
    // Deleting the user deletes its identities.
    store.delete_user(&u.id).await.unwrap();
    let id = identity("corp", "sub-1", None, false);
    assert_eq!(store.sso_sign_in(id).await.unwrap(), None);
}

pub(super) async fn identities_link_to_users_and_are_found_by_verified_email(c: Ctx) {
    let store = c.store.as_ref();
    let ada = user(store, "ada", Role::Learner).await;
    let github = identity("github", "77", Some("ada@example.com"), true);
    let linked = store.link_identity(&ada.id, github.clone()).await.unwrap();
    assert_eq!((linked.created_at_ms, linked.last_login_ms), (T0, T0));
    assert_eq!(
        store.sso_sign_in(github.clone()).await.unwrap(),
        Some(ada.clone())
    );
    assert!(matches!(
        store.link_identity(&ada.id, github.clone()).await,
        Err(Error::Conflict(_))
    ));
    // Another subject at the same provider is another person (someone who registered
    // ada's address once she gave it up): it is not linked to her account.
    let stranger = identity("github", "78", Some("ada@example.com"), true);
    assert!(matches!(
        store.link_identity(&ada.id, stranger.clone()).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.sso_sign_in(stranger).await.unwrap(), None);
    // An identity at another provider is linked beside it.
    let corp = identity("corp", "ada", None, false);
    store.link_identity(&ada.id, corp.clone()).await.unwrap();
    assert_eq!(store.sso_sign_in(corp).await.unwrap(), Some(ada.clone()));
    assert!(matches!(
        store
            .link_identity("usr-nobody", identity("corp", "9", None, false))
            .await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        store
            .user_by_verified_email("ADA@example.com")
            .await
            .unwrap(),
        Some(ada.clone())
    );
    // An email the provider did not verify finds no one.
    let ben = user(store, "ben", Role::Learner).await;
    store
        .link_identity(
            &ben.id,
            identity("corp", "b", Some("ben@example.com"), false),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .user_by_verified_email("ben@example.com")
            .await
            .unwrap(),
        None
    );
    // A sign-in records the email the provider gives now.
    let unverified = identity("github", "77", Some("ada@example.com"), false);
    store.sso_sign_in(unverified).await.unwrap();
    assert_eq!(
        store
            .user_by_verified_email("ada@example.com")
            .await
            .unwrap(),
        None
    );
}
