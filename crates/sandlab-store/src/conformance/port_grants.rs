//! The port proxy's grants: one-time codes, proxy sessions and share links, with expiry on
//! the store's clock and the users they name.

use std::time::Duration;

use super::{user, Ctx, T0};
use crate::{Error, NewPortGrant, PortGrantKind, Role, UserUpdate, MAX_SHARES_PER_SANDBOX};

fn grant(kind: PortGrantKind, user: Option<&str>, ttl_s: u64) -> NewPortGrant {
    NewPortGrant {
        kind,
        sandbox: "sb-aaaaaaaaaaaa".into(),
        port: 8080,
        user_id: user.map(str::to_owned),
        path: "/app?x=1".into(),
        ttl: Duration::from_secs(ttl_s),
    }
}

pub(super) async fn a_code_is_redeemed_once_before_it_expires(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "nina", Role::Learner).await;
    let (g, secret) = store
        .create_port_grant(grant(PortGrantKind::Code, Some(&u.id), 60))
        .await
        .unwrap();
    assert!(g.id.starts_with("pg-"));
    assert_eq!((g.created_at_ms, g.expires_at_ms), (T0, T0 + 60_000));
    assert_eq!(secret.len(), 64);
    // A code is not a session: it cannot authenticate a request.
    assert!(store
        .authenticate_port_grant(&secret)
        .await
        .unwrap()
        .is_none());
    // Another port or sandbox does not take it.
    assert!(store
        .redeem_port_code(&secret, "sb-aaaaaaaaaaaa", 8081)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .redeem_port_code(&secret, "sb-bbbbbbbbbbbb", 8080)
        .await
        .unwrap()
        .is_none());
    let got = store
        .redeem_port_code(&secret, "sb-aaaaaaaaaaaa", 8080)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, g);
    assert!(store
        .redeem_port_code(&secret, "sb-aaaaaaaaaaaa", 8080)
        .await
        .unwrap()
        .is_none());

    let (_, late) = store
        .create_port_grant(grant(PortGrantKind::Code, Some(&u.id), 60))
        .await
        .unwrap();
    c.clock.advance_ms(60_000);
    assert!(store
        .redeem_port_code(&late, "sb-aaaaaaaaaaaa", 8080)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .redeem_port_code("not-a-secret", "sb-aaaaaaaaaaaa", 8080)
        .await
        .unwrap()
        .is_none());
}

pub(super) async fn sessions_and_shares_authenticate_until_they_expire(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "nina", Role::Learner).await;
    let (s, session) = store
        .create_port_grant(grant(PortGrantKind::Session, Some(&u.id), 3600))
        .await
        .unwrap();
    let (sh, share) = store
        .create_port_grant(grant(PortGrantKind::Share, Some(&u.id), 600))
        .await
        .unwrap();
    assert_eq!(
        store.authenticate_port_grant(&session).await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        store.authenticate_port_grant(&share).await.unwrap(),
        Some(sh.clone())
    );
    // Neither is a code.
    assert!(store
        .redeem_port_code(&session, "sb-aaaaaaaaaaaa", 8080)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.authenticate_port_grant(&session).await.unwrap(),
        Some(s)
    );
    c.clock.advance_ms(600_000);
    assert!(store
        .authenticate_port_grant(&share)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .authenticate_port_grant(&session)
        .await
        .unwrap()
        .is_some());
    c.clock.advance_ms(3_000_000);
    assert!(store
        .authenticate_port_grant(&session)
        .await
        .unwrap()
        .is_none());
}

pub(super) async fn a_disabled_users_grants_stop_working(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "nina", Role::Learner).await;
    let (_, session) = store
        .create_port_grant(grant(PortGrantKind::Session, Some(&u.id), 3600))
        .await
        .unwrap();
    let (_, share) = store
        .create_port_grant(grant(PortGrantKind::Share, Some(&u.id), 3600))
        .await
        .unwrap();
    let off = UserUpdate {
        role: None,
        disabled: Some(true),
        password: None,
    };
    store.update_user(&u.id, off).await.unwrap();
    assert!(store
        .authenticate_port_grant(&session)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .authenticate_port_grant(&share)
        .await
        .unwrap()
        .is_none());
    // A grant naming no user (none of ours do, but the column allows it) stands alone.
    let (_, anon) = store
        .create_port_grant(grant(PortGrantKind::Share, None, 3600))
        .await
        .unwrap();
    assert!(store
        .authenticate_port_grant(&anon)
        .await
        .unwrap()
        .is_some());
}

pub(super) async fn shares_are_listed_revoked_and_capped(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "nina", Role::Learner).await;
    let (a, a_secret) = store
        .create_port_grant(grant(PortGrantKind::Share, Some(&u.id), 3600))
        .await
        .unwrap();
    c.clock.advance_ms(1);
    let (b, _) = store
        .create_port_grant(grant(PortGrantKind::Share, Some(&u.id), 60))
        .await
        .unwrap();
    store
        .create_port_grant(grant(PortGrantKind::Session, Some(&u.id), 3600))
        .await
        .unwrap();
    let listed = store.list_port_shares("sb-aaaaaaaaaaaa").await.unwrap();
    assert_eq!(listed, vec![a.clone(), b.clone()]);
    assert!(store
        .list_port_shares("sb-bbbbbbbbbbbb")
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.delete_port_share("sb-bbbbbbbbbbbb", &a.id).await,
        Err(Error::NotFound(_))
    ));
    store
        .delete_port_share("sb-aaaaaaaaaaaa", &a.id)
        .await
        .unwrap();
    assert!(store
        .authenticate_port_grant(&a_secret)
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        store.delete_port_share("sb-aaaaaaaaaaaa", &a.id).await,
        Err(Error::NotFound(_))
    ));
    c.clock.advance_ms(60_000);
    assert!(store
        .list_port_shares("sb-aaaaaaaaaaaa")
        .await
        .unwrap()
        .is_empty());

    for _ in 0..MAX_SHARES_PER_SANDBOX {
        store
            .create_port_grant(grant(PortGrantKind::Share, Some(&u.id), 3600))
            .await
            .unwrap();
    }
    assert!(matches!(
        store
            .create_port_grant(grant(PortGrantKind::Share, Some(&u.id), 3600))
            .await,
        Err(Error::Conflict(_))
    ));
}

pub(super) async fn bad_grants_are_invalid(c: Ctx) {
    let store = c.store.as_ref();
    let u = user(store, "nina", Role::Learner).await;
    for bad in [
        NewPortGrant {
            port: 0,
            ..grant(PortGrantKind::Code, Some(&u.id), 60)
        },
        NewPortGrant {
            path: "relative".into(),
            ..grant(PortGrantKind::Code, Some(&u.id), 60)
        },
        NewPortGrant {
            path: format!("/{}", "a".repeat(4096)),
            ..grant(PortGrantKind::Code, Some(&u.id), 60)
        },
        grant(PortGrantKind::Share, Some(&u.id), 0),
        grant(PortGrantKind::Share, Some(&u.id), 31 * 24 * 3600),
    ] {
        assert!(
            matches!(
                store.create_port_grant(bad.clone()).await,
                Err(Error::Invalid(_))
            ),
            "{bad:?} was accepted"
        );
    }
}
