//! Users: create, look up, list page by page, update, disable, delete; passwords.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use sandlab_store::{
    Error, NewUser, PageRequest, RecordStore, Role, SqliteStore, Store, UserUpdate,
};

#[tokio::test]
async fn create_get_and_look_up_by_name_in_any_case() {
    let clock = manual_clock();
    let store = SqliteStore::open_in_memory_with(clock.clone())
        .await
        .unwrap();
    let u = user(&store, "Alice.Smith", Role::Author).await;
    assert_eq!(u.username, "alice.smith");
    assert_eq!(u.role, Role::Author);
    assert!(!u.disabled);
    assert_eq!(u.created_at_ms, T0);
    assert!(u.id.starts_with("usr-"));
    assert_eq!(store.get_user(&u.id).await.unwrap(), u);
    assert_eq!(store.get_user_by_name("ALICE.smith").await.unwrap(), u);
    assert!(matches!(
        store.get_user("usr-nope").await,
        Err(Error::NotFound("user"))
    ));
    assert!(matches!(
        store.get_user_by_name("bob").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.get_user_by_name("not a name!").await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn duplicate_usernames_conflict_in_any_case() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    user(&store, "alice", Role::Learner).await;
    for dup in ["alice", "ALICE", "Alice"] {
        let err = store
            .create_user(NewUser {
                username: dup.into(),
                password: PASSWORD.into(),
                role: Role::Admin,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{dup}: {err:?}");
        assert_eq!(err.to_string(), "The username is taken");
    }
    let page = store.list_users(PageRequest::default()).await.unwrap();
    assert_eq!(page.items.len(), 1);
}

#[tokio::test]
async fn bad_usernames_and_passwords_are_invalid() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    for (name, password) in [("", PASSWORD), ("a b", PASSWORD), ("ok", "short")] {
        let err = store
            .create_user(NewUser {
                username: name.into(),
                password: password.into(),
                role: Role::Learner,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{name:?}: {err:?}");
    }
}

#[tokio::test]
async fn password_is_stored_as_argon2id_and_verified() {
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

    assert_eq!(
        store.verify_login("CAROL", PASSWORD).await.unwrap(),
        Some(u.clone())
    );
    assert_eq!(
        store.verify_login("carol", "wrong password").await.unwrap(),
        None
    );
    assert_eq!(store.verify_login("nobody", PASSWORD).await.unwrap(), None);
    assert_eq!(
        store.verify_login("not a name", PASSWORD).await.unwrap(),
        None
    );
    assert_eq!(store.verify_login("carol", "").await.unwrap(), None);
}

#[tokio::test]
async fn list_users_page_by_page() {
    let clock = manual_clock();
    let store = SqliteStore::open_in_memory_with(clock.clone())
        .await
        .unwrap();
    let mut made = Vec::new();
    for i in 0..7 {
        // Two users per millisecond, so the id breaks ties.
        if i % 2 == 0 {
            clock.advance_ms(1);
        }
        made.push(user(&store, &format!("user{i}"), Role::Learner).await);
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
            Some(c) => req = PageRequest::after(c, 3),
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
    for bad in ["garbage", "c2FuZGJveGVzOjE6eA"] {
        assert!(matches!(
            store.list_users(PageRequest::after(bad, 3)).await,
            Err(Error::Invalid(_))
        ));
    }
}

#[tokio::test]
async fn update_role_password_and_disable() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    let admin = user(&store, "root", Role::Admin).await;
    let u = user(&store, "dave", Role::Learner).await;

    let up = store
        .update_user(
            &u.id,
            UserUpdate {
                role: Some(Role::Author),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(up.role, Role::Author);
    assert_eq!(store.get_user(&u.id).await.unwrap(), up);

    // A new password replaces the old one and ends the user's sessions.
    let (_, cookie) = store
        .create_session(&u.id, Duration::from_secs(60))
        .await
        .unwrap();
    store
        .update_user(
            &u.id,
            UserUpdate {
                password: Some("new password!".into()),
                ..Default::default()
            },
        )
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
        store
            .update_user(
                &u.id,
                UserUpdate {
                    password: Some("short".into()),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::Invalid(_))
    ));

    // Disabled: no login; enabled again: login works.
    let off = store
        .update_user(
            &u.id,
            UserUpdate {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(off.disabled);
    assert!(store
        .verify_login("dave", "new password!")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store.create_session(&u.id, Duration::from_secs(60)).await,
        Err(Error::Invalid(_))
    ));
    store
        .update_user(
            &u.id,
            UserUpdate {
                disabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
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

#[tokio::test]
async fn the_last_enabled_admin_stays() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    assert_eq!(store.count_admins().await.unwrap(), 0);
    let a = user(&store, "admin1", Role::Admin).await;
    assert_eq!(store.count_admins().await.unwrap(), 1);
    for update in [
        UserUpdate {
            role: Some(Role::Learner),
            ..Default::default()
        },
        UserUpdate {
            disabled: Some(true),
            ..Default::default()
        },
    ] {
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

    let b = user(&store, "admin2", Role::Admin).await;
    assert_eq!(store.count_admins().await.unwrap(), 2);
    store
        .update_user(
            &a.id,
            UserUpdate {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(store.count_admins().await.unwrap(), 1);
    assert!(matches!(
        store
            .update_user(
                &b.id,
                UserUpdate {
                    role: Some(Role::Author),
                    ..Default::default()
                }
            )
            .await,
        Err(Error::LastAdmin)
    ));
    // A disabled admin is not the last enabled one: it can be deleted.
    store.delete_user(&a.id).await.unwrap();
}

#[tokio::test]
async fn deleting_a_user_cascades_tokens_and_sessions() {
    let db = TempDb::new();
    let store = db.open().await;
    let u = user(&store, "erin", Role::Learner).await;
    let other = user(&store, "frank", Role::Learner).await;
    let (_, secret) = store.create_token(&u.id, "ci").await.unwrap();
    let (_, cookie) = store
        .create_session(&u.id, Duration::from_secs(60))
        .await
        .unwrap();
    let (_, other_secret) = store.create_token(&other.id, "ci").await.unwrap();

    // Not while the user owns a sandbox record.
    let rec = record(Some(&u.id), 1);
    store.put(&rec).await.unwrap();
    assert!(matches!(
        store.delete_user(&u.id).await,
        Err(Error::Conflict(_))
    ));
    store.delete(&rec.id).await.unwrap();

    store.delete_user(&u.id).await.unwrap();
    assert!(matches!(
        store.get_user(&u.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(store.authenticate_token(&secret).await.unwrap().is_none());
    assert!(store.authenticate_session(&cookie).await.unwrap().is_none());
    assert!(matches!(
        store.delete_user(&u.id).await,
        Err(Error::NotFound(_))
    ));

    let mut raw = db.raw().await;
    for table in ["api_tokens", "login_sessions"] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE user_id = ?"))
            .bind(&u.id)
            .fetch_one(&mut raw)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    // Another user's rows stay.
    assert!(store
        .authenticate_token(&other_secret)
        .await
        .unwrap()
        .is_some());
}
