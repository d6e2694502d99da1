//! API tokens: returned once, authenticate, record their use, revoke; the per-user cap.

use super::{user, Ctx, T0};
use crate::{ApiToken, Error, Role, UserUpdate, MAX_TOKENS_PER_USER};

fn last_used(tokens: Vec<ApiToken>, id: &str) -> Option<i64> {
    tokens
        .into_iter()
        .find(|t| t.id == id)
        .expect("the token is listed")
        .last_used_at_ms
}

pub(super) async fn the_secret_is_returned_once_and_never_listed(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "grace", Role::Learner).await;
    let (tok, secret) = store.create_token(&u.id, "laptop").await.unwrap();
    assert!(secret.starts_with("sl_") && secret.len() == 67, "{secret}");
    assert!(
        secret[3..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{secret}"
    );
    assert!(tok.id.starts_with("tok-"), "{}", tok.id);
    assert_eq!(
        (tok.user_id.as_str(), tok.name.as_str()),
        (u.id.as_str(), "laptop")
    );
    assert_eq!(tok.created_at_ms, T0);
    assert_eq!(tok.last_used_at_ms, None);
    // The listing is the record, which carries no secret.
    assert_eq!(store.list_tokens(&u.id).await.unwrap(), vec![tok.clone()]);
    let (who, id) = store.authenticate_token(&secret).await.unwrap().unwrap();
    assert_eq!((who, id), (u, tok.id));
}

pub(super) async fn authenticate_records_use_and_revocation_ends_it(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "heidi", Role::Author).await;
    let (tok, secret) = store.create_token(&u.id, "ci").await.unwrap();
    c.clock.advance_ms(1);
    let (tok2, secret2) = store.create_token(&u.id, "ci").await.unwrap();
    assert_ne!(secret, secret2);
    // Same names are allowed; the list is in creation order.
    let listed: Vec<String> = store
        .list_tokens(&u.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, [tok.id.clone(), tok2.id.clone()]);

    c.clock.advance_ms(4);
    let (who, id) = store.authenticate_token(&secret).await.unwrap().unwrap();
    assert_eq!((who, id.as_str()), (u.clone(), tok.id.as_str()));
    let used = store.list_tokens(&u.id).await.unwrap();
    assert_eq!(last_used(used, &tok.id), Some(T0 + 5));
    // Within a minute the stored time stays; after it, it moves.
    c.clock.advance_ms(30_000);
    store.authenticate_token(&secret).await.unwrap().unwrap();
    let used = store.list_tokens(&u.id).await.unwrap();
    assert_eq!(last_used(used, &tok.id), Some(T0 + 5));
    c.clock.advance_ms(31_000);
    store.authenticate_token(&secret).await.unwrap().unwrap();
    let used = store.list_tokens(&u.id).await.unwrap();
    assert_eq!(last_used(used.clone(), &tok.id), Some(T0 + 61_005));
    assert_eq!(last_used(used, &tok2.id), None);

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
    let other = user(store, "ivan", Role::Learner).await;
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
    assert_eq!(store.list_tokens(&u.id).await.unwrap().len(), 1);
}

pub(super) async fn a_disabled_users_token_fails(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "judy", Role::Learner).await;
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

pub(super) async fn names_users_and_the_cap_are_checked(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "ken", Role::Learner).await;
    for bad in ["", "   ", "a\nb", &"x".repeat(65)] {
        assert!(
            matches!(store.create_token(&u.id, bad).await, Err(Error::Invalid(_))),
            "{bad:?}"
        );
    }
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
    // The cap is per user.
    let other = user(store, "lou", Role::Learner).await;
    store.create_token(&other.id, "ci").await.unwrap();
}

/// 50 tasks at once for two users: every creation succeeds and authenticates, none is lost.
pub(super) async fn concurrent_creations_all_succeed(c: Ctx) {
    let u = user(c.store.as_ref(), "lena", Role::Learner).await;
    let v = user(c.store.as_ref(), "mia", Role::Learner).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = c.store.clone();
        let uid = if i % 2 == 0 {
            u.id.clone()
        } else {
            v.id.clone()
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
    assert_eq!(c.store.list_tokens(&u.id).await.unwrap().len(), 25);
    assert_eq!(c.store.list_tokens(&v.id).await.unwrap().len(), 25);
    secrets.sort();
    secrets.dedup();
    assert_eq!(secrets.len(), 50);
}
