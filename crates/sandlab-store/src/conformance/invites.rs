//! Sign-up invitations: the secret returned once, listing and deletion, redemption with
//! its role and use count, expiry on the store's clock, and one account per use under
//! concurrency.

use std::time::Duration;

use super::{user, Ctx, PASSWORD, T0};
use crate::links::{NewInvite, MAX_INVITE_TTL, MAX_INVITE_USES};
use crate::{Error, LinkRefusal, PageRequest, Role, Store};

const DAY: Duration = Duration::from_secs(24 * 3600);

fn invite(role: Role, uses: u32, ttl: Duration, created_by: Option<&str>) -> NewInvite {
    NewInvite {
        role,
        ttl,
        uses,
        created_by: created_by.map(str::to_owned),
    }
}

/// Signs `name` up with `secret`; `Err(why)` when the invitation was refused.
async fn sign_up(store: &dyn Store, secret: &str, name: &str) -> Result<crate::User, LinkRefusal> {
    store
        .redeem_invite(secret, name, PASSWORD.into())
        .await
        .expect("redeem_invite")
        .map(|(u, _)| u)
}

pub(super) async fn created_listed_and_deleted(c: Ctx) {
    let store = c.store.as_ref();
    let admin = user(store, "root", Role::Admin).await;
    let (inv, secret) = store
        .create_invite(invite(Role::Author, 3, 7 * DAY, Some(&admin.id)))
        .await
        .unwrap();
    assert!(secret.starts_with("inv_") && secret.len() == 68, "{secret}");
    assert!(inv.id.starts_with("inv-"), "{}", inv.id);
    assert_eq!(
        (inv.role, inv.uses, inv.used, inv.created_by.as_deref()),
        (Role::Author, 3, 0, Some(admin.id.as_str()))
    );
    assert_eq!(
        (inv.created_at_ms, inv.expires_at_ms),
        (T0, T0 + 7 * 86_400_000)
    );
    // Made by the CLI: no creator.
    c.clock.advance_ms(1);
    let (cli, _) = store
        .create_invite(invite(Role::Learner, 1, DAY, None))
        .await
        .unwrap();
    assert_eq!(cli.created_by, None);
    let page = store.list_invites(PageRequest::first(1)).await.unwrap();
    assert_eq!(page.items, vec![inv.clone()]);
    let next = page.next.expect("a second page");
    let page = store
        .list_invites(PageRequest::after(next, 10))
        .await
        .unwrap();
    assert_eq!((page.items, page.next), (vec![cli.clone()], None));
    // A cursor of another list is refused.
    let users = store.list_users(PageRequest::first(1)).await.unwrap();
    if let Some(cursor) = users.next {
        assert!(matches!(
            store.list_invites(PageRequest::after(cursor, 10)).await,
            Err(Error::Invalid(_))
        ));
    }

    store.delete_invite(&inv.id).await.unwrap();
    assert!(matches!(
        store.delete_invite(&inv.id).await,
        Err(Error::NotFound(_))
    ));
    let left = store.list_invites(PageRequest::default()).await.unwrap();
    assert_eq!(left.items, vec![cli]);
    // A deleted invitation's link is unknown.
    assert_eq!(
        sign_up(store, &secret, "late").await,
        Err(LinkRefusal::Unknown)
    );
}

pub(super) async fn a_redemption_creates_a_user_with_the_role_and_spends_a_use(c: Ctx) {
    let store = c.store.as_ref();
    let (inv, secret) = store
        .create_invite(invite(Role::Author, 2, DAY, None))
        .await
        .unwrap();
    c.clock.advance_ms(5);
    let (u, spent) = store
        .redeem_invite(&secret, "Olga", PASSWORD.into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (u.username.as_str(), u.role, u.disabled, u.created_at_ms),
        ("olga", Role::Author, false, T0 + 5)
    );
    assert_eq!((spent.id.as_str(), spent.used), (inv.id.as_str(), 1));
    assert_eq!(store.get_user(&u.id).await.unwrap(), u);
    let who = store.verify_login("olga", PASSWORD).await.unwrap();
    assert_eq!(who, Some(u));
    let p = sign_up(store, &secret, "pia").await.unwrap();
    assert_eq!(p.role, Role::Author);
    assert_eq!(
        sign_up(store, &secret, "quinn").await,
        Err(LinkRefusal::UsedUp)
    );
    let listed = store.list_invites(PageRequest::default()).await.unwrap();
    assert_eq!((listed.items[0].uses, listed.items[0].used), (2, 2));
    assert!(matches!(
        store.get_user_by_name("quinn").await,
        Err(Error::NotFound(_))
    ));
}

pub(super) async fn expired_unknown_and_malformed_links_are_refused(c: Ctx) {
    let store = c.store.as_ref();
    let (_, secret) = store
        .create_invite(invite(Role::Learner, 5, Duration::from_secs(60), None))
        .await
        .unwrap();
    c.clock.set(T0 + 59_999);
    sign_up(store, &secret, "early").await.unwrap();
    c.clock.set(T0 + 60_000);
    assert_eq!(
        sign_up(store, &secret, "late").await,
        Err(LinkRefusal::Expired)
    );
    let other = format!("inv_{}", "0".repeat(64));
    for bad in [
        "",
        "inv_",
        &secret[4..],
        &secret.to_uppercase(),
        &secret[..67],
        &other,
        &format!("rst_{}", &secret[4..]),
    ] {
        assert_eq!(
            sign_up(store, bad, "nobody").await,
            Err(LinkRefusal::Unknown),
            "{bad:?}"
        );
    }
    assert!(matches!(
        store.get_user_by_name("nobody").await,
        Err(Error::NotFound(_))
    ));
}

pub(super) async fn bad_names_and_taken_usernames_spend_no_use(c: Ctx) {
    let store = c.store.as_ref();
    user(store, "rita", Role::Learner).await;
    let (_, secret) = store
        .create_invite(invite(Role::Learner, 1, DAY, None))
        .await
        .unwrap();
    assert!(matches!(
        store.redeem_invite(&secret, "RITA", PASSWORD.into()).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store
            .redeem_invite(&secret, "no spaces", PASSWORD.into())
            .await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        store.redeem_invite(&secret, "sam", "short".into()).await,
        Err(Error::Invalid(_))
    ));
    // None of those spent the one use.
    let listed = store.list_invites(PageRequest::default()).await.unwrap();
    assert_eq!(listed.items[0].used, 0);
    sign_up(store, &secret, "sam").await.unwrap();
}

pub(super) async fn bad_invites_are_invalid(c: Ctx) {
    let store = c.store.as_ref();
    for (uses, ttl) in [
        (0, DAY),
        (MAX_INVITE_USES + 1, DAY),
        (1, Duration::ZERO),
        (1, MAX_INVITE_TTL + Duration::from_millis(1)),
    ] {
        assert!(
            matches!(
                store
                    .create_invite(invite(Role::Learner, uses, ttl, None))
                    .await,
                Err(Error::Invalid(_))
            ),
            "{uses} uses for {ttl:?}"
        );
    }
    store
        .create_invite(invite(Role::Admin, MAX_INVITE_USES, MAX_INVITE_TTL, None))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_invite(invite(Role::Learner, 1, DAY, Some("usr-nobody")))
            .await,
        Err(Error::NotFound(_))
    ));
    // Deleting the creator keeps the invitation, without a creator.
    let admin = user(store, "tom", Role::Admin).await;
    user(store, "uma", Role::Admin).await;
    let (inv, _) = store
        .create_invite(invite(Role::Learner, 1, DAY, Some(&admin.id)))
        .await
        .unwrap();
    store.delete_user(&admin.id).await.unwrap();
    let listed = store.list_invites(PageRequest::default()).await.unwrap();
    let kept = listed.items.iter().find(|i| i.id == inv.id).unwrap();
    assert_eq!(kept.created_by, None);
}

pub(super) async fn one_of_eight_concurrent_sign_ups_gets_a_one_use_invite(c: Ctx) {
    let (_, secret) = c
        .store
        .create_invite(invite(Role::Learner, 1, DAY, None))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (store, secret) = (c.store.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            store
                .redeem_invite(&secret, &format!("racer{i}"), PASSWORD.into())
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Ok(_) => won += 1,
            Err(why) => assert_eq!(why, LinkRefusal::UsedUp),
        }
    }
    assert_eq!(won, 1);
    let users = c.store.list_users(PageRequest::default()).await.unwrap();
    assert_eq!(users.items.len(), 1);
    let listed = c.store.list_invites(PageRequest::default()).await.unwrap();
    assert_eq!(listed.items[0].used, 1);
}
