//! Users: create, look up, list page by page, update, disable, delete; passwords; the
//! last enabled admin.

use std::collections::HashSet;
use std::time::Duration;

use super::{record, user, Ctx, PASSWORD, T0};
use crate::{Error, NewUser, PageRequest, Role, UserUpdate};

fn new_user(name: &str, password: &str, role: Role) -> NewUser {
    NewUser {
        username: name.into(),
        password: password.into(),
        role,
    }
}

fn disabled(on: bool) -> UserUpdate {
    UserUpdate {
        disabled: Some(on),
        ..Default::default()
    }
}

fn role(role: Role) -> UserUpdate {
    UserUpdate {
        role: Some(role),
        ..Default::default()
    }
}

fn password(p: &str) -> UserUpdate {
    UserUpdate {
        password: Some(p.into()),
        ..Default::default()
    }
}

pub(super) async fn create_get_and_look_up_by_name_in_any_case(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "Alice.Smith", Role::Author).await;
    assert_eq!(u.username, "alice.smith");
    assert_eq!(u.role, Role::Author);
    assert!(!u.disabled);
    assert_eq!(u.created_at_ms, T0);
    assert!(u.id.starts_with("usr-"), "{}", u.id);
    assert_eq!(store.get_user(&u.id).await.unwrap(), u);
    assert_eq!(store.get_user_by_name("ALICE.smith").await.unwrap(), u);
    assert!(matches!(
        store.get_user("usr-nope").await,
        Err(Error::NotFound("user"))
    ));
    for missing in ["bob", "not a name!", ""] {
        assert!(
            matches!(
                store.get_user_by_name(missing).await,
                Err(Error::NotFound(_))
            ),
            "{missing:?}"
        );
    }
}

pub(super) async fn duplicate_usernames_conflict_in_any_case(c: Ctx) {
    let store = c.store.as_ref();
    user(store, "alice", Role::Learner).await;
    for dup in ["alice", "ALICE", "Alice"] {
        let err = store
            .create_user(new_user(dup, PASSWORD, Role::Admin))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{dup}: {err:?}");
        assert_eq!(err.to_string(), "The username is taken");
    }
    let page = store.list_users(PageRequest::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(store.count_admins().await.unwrap(), 0);
}

pub(super) async fn bad_usernames_and_passwords_are_invalid(c: Ctx) {
    let store = c.store.as_ref();
    for (name, password) in [("", PASSWORD), ("a b", PASSWORD), ("ok", "short")] {
        let err = store
            .create_user(new_user(name, password, Role::Learner))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{name:?}: {err:?}");
    }
    let page = store.list_users(PageRequest::default()).await.unwrap();
    assert!(page.items.is_empty());
}

pub(super) async fn verify_login_checks_name_password_and_state(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "carol", Role::Learner).await;
    assert_eq!(
        store.verify_login("CAROL", PASSWORD).await.unwrap(),
        Some(u.clone())
    );
    for (name, pw) in [
        ("carol", "wrong password"),
        ("nobody", PASSWORD),
        ("not a name", PASSWORD),
        ("carol", ""),
    ] {
        assert_eq!(
            store.verify_login(name, pw).await.unwrap(),
            None,
            "{name:?} {pw:?}"
        );
    }
    store.update_user(&u.id, disabled(true)).await.unwrap();
    assert_eq!(store.verify_login("carol", PASSWORD).await.unwrap(), None);
}

pub(super) async fn list_users_page_by_page(c: Ctx) {
    let store = c.store.as_ref();
    let mut made = Vec::new();
    for i in 0..7 {
        // Two users per millisecond, so the id breaks ties.
        if i % 2 == 0 {
            c.clock.advance_ms(1);
        }
        made.push(user(store, &format!("user{i}"), Role::Learner).await);
    }
    let mut seen = Vec::new();
    let mut req = PageRequest::first(3);
    let mut pages = 0;
    loop {
        let page = store.list_users(req.clone()).await.unwrap();
        assert!(page.items.len() <= 3);
        pages += 1;
        seen.extend(page.items);
        match page.next {
            Some(cursor) => req = PageRequest::after(cursor, 3),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected = made.clone();
    expected.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
    assert_eq!(seen, expected);
    let ids: HashSet<_> = seen.iter().map(|u| &u.id).collect();
    assert_eq!(ids.len(), 7);

    let all = store.list_users(PageRequest::first(100)).await.unwrap();
    assert_eq!(all.items.len(), 7);
    assert_eq!(all.next, None);
    // Garbage, and a cursor of the sandbox list, are refused.
    for bad in ["garbage", "c2FuZGJveGVzOjE6eA"] {
        assert!(matches!(
            store.list_users(PageRequest::after(bad, 3)).await,
            Err(Error::Invalid(_))
        ));
    }
}

pub(super) async fn update_role_password_and_disable(c: Ctx) {
    let store = c.store.as_ref();
    let admin = user(store, "root", Role::Admin).await;
    let u = user(store, "dave", Role::Learner).await;

    let up = store.update_user(&u.id, role(Role::Author)).await.unwrap();
    assert_eq!(up.role, Role::Author);
    assert_eq!(store.get_user(&u.id).await.unwrap(), up);

    // A new password replaces the old one and ends the user's sessions.
    let (_, cookie) = store
        .create_session(&u.id, Duration::from_secs(60))
        .await
        .unwrap();
    store
        .update_user(&u.id, password("new password!"))
        .await
        .unwrap();
    assert!(store
        .verify_login("dave", PASSWORD)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .verify_login("dave", "new password!")
        .await
        .unwrap()
        .is_some());
    assert!(store.authenticate_session(&cookie).await.unwrap().is_none());
    assert!(matches!(
        store.update_user(&u.id, password("short")).await,
        Err(Error::Invalid(_))
    ));

    // Disabled: no login, no new session, and the open one ends; enabled again: login works.
    let (_, cookie) = store
        .create_session(&u.id, Duration::from_secs(60))
        .await
        .unwrap();
    let off = store.update_user(&u.id, disabled(true)).await.unwrap();
    assert!(off.disabled);
    assert!(store.get_user(&u.id).await.unwrap().disabled);
    assert!(store
        .verify_login("dave", "new password!")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store.create_session(&u.id, Duration::from_secs(60)).await,
        Err(Error::Invalid(_))
    ));
    store.update_user(&u.id, disabled(false)).await.unwrap();
    assert!(store.authenticate_session(&cookie).await.unwrap().is_none());
    assert!(store
        .verify_login("dave", "new password!")
        .await
        .unwrap()
        .is_some());

    assert!(matches!(
        store.update_user("usr-nope", UserUpdate::default()).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(store.get_user(&admin.id).await.unwrap().role, Role::Admin);
}

pub(super) async fn the_last_enabled_admin_stays(c: Ctx) {
    let store = c.store.as_ref();
    assert_eq!(store.count_admins().await.unwrap(), 0);
    let a = user(store, "admin1", Role::Admin).await;
    assert_eq!(store.count_admins().await.unwrap(), 1);
    for update in [role(Role::Learner), disabled(true)] {
        assert!(matches!(
            store.update_user(&a.id, update).await,
            Err(Error::LastAdmin)
        ));
    }
    assert!(matches!(
        store.delete_user(&a.id).await,
        Err(Error::LastAdmin)
    ));
    // Still an admin after the refused changes.
    assert_eq!(store.get_user(&a.id).await.unwrap(), a);

    let b = user(store, "admin2", Role::Admin).await;
    assert_eq!(store.count_admins().await.unwrap(), 2);
    store.update_user(&a.id, disabled(true)).await.unwrap();
    assert_eq!(store.count_admins().await.unwrap(), 1);
    assert!(matches!(
        store.update_user(&b.id, role(Role::Author)).await,
        Err(Error::LastAdmin)
    ));
    // A disabled admin is not the last enabled one: it can be deleted.
    store.delete_user(&a.id).await.unwrap();
    assert_eq!(store.count_admins().await.unwrap(), 1);
}

pub(super) async fn deleting_a_user_ends_their_tokens_and_sessions(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "erin", Role::Learner).await;
    let other = user(store, "frank", Role::Learner).await;
    let (_, secret) = store.create_token(&u.id, "ci").await.unwrap();
    let (_, cookie) = store
        .create_session(&u.id, Duration::from_secs(60))
        .await
        .unwrap();
    let (_, other_secret) = store.create_token(&other.id, "ci").await.unwrap();
    let (_, other_cookie) = store
        .create_session(&other.id, Duration::from_secs(60))
        .await
        .unwrap();

    // Not while the user owns a sandbox record.
    let rec = record(Some(&u.id), 1);
    store.put(&rec).await.unwrap();
    assert!(matches!(
        store.delete_user(&u.id).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(store.get_user(&u.id).await.unwrap(), u);
    store.delete(&rec.id).await.unwrap();

    store.delete_user(&u.id).await.unwrap();
    assert!(matches!(
        store.get_user(&u.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(store.authenticate_token(&secret).await.unwrap().is_none());
    assert!(store.authenticate_session(&cookie).await.unwrap().is_none());
    assert!(store.list_tokens(&u.id).await.unwrap().is_empty());
    assert!(matches!(
        store.delete_user(&u.id).await,
        Err(Error::NotFound(_))
    ));
    // The name is free again, for a new account that inherits nothing.
    let again = user(store, "erin", Role::Learner).await;
    assert_ne!(again.id, u.id);
    assert!(store.list_tokens(&again.id).await.unwrap().is_empty());
    // Another user's rows stay.
    assert!(store
        .authenticate_token(&other_secret)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .authenticate_session(&other_cookie)
        .await
        .unwrap()
        .is_some());
}

/// A healthy store answers `check_writable` with `Ok`, repeatedly, and stays usable after.
pub(super) async fn a_healthy_store_is_writable(c: Ctx) {
    let store = c.store.as_ref();
    for _ in 0..3 {
        store.check_writable().await.unwrap();
    }
    let u = user(store, "after-check", Role::Learner).await;
    assert_eq!(store.get_user(&u.id).await.unwrap().username, "after-check");
}
