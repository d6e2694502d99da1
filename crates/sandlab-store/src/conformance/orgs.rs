//! Organisations: slugs and names, caps, members and their roles, and the places that
//! count an organisation's live sandboxes against its `max_sandboxes`, exactly, under
//! concurrency.

use sandlab_core::{SandboxId, SandboxState};

use super::{record, user, Ctx, T0};
use crate::orgs::{NewOrg, OrgFull, OrgLimits, OrgRole, OrgUpdate, PLACE_PENDING_MS};
use crate::{Error, Role};

fn new_org(slug: &str, max_sandboxes: Option<u64>) -> NewOrg {
    NewOrg {
        slug: slug.into(),
        name: None,
        limits: OrgLimits {
            max_sandboxes,
            ..OrgLimits::default()
        },
    }
}

pub(super) async fn created_found_by_id_or_slug_updated_and_deleted(c: Ctx) {
    let store = c.store.as_ref();
    let org = store
        .create_org(NewOrg {
            slug: "acme".into(),
            name: Some("  Acme Corp ".into()),
            limits: OrgLimits {
                max_sandboxes: Some(3),
                max_memory: Some(1 << 30),
                max_cpus: Some(1.5),
                max_ttl_secs: Some(3600),
            },
        })
        .await
        .unwrap();
    assert!(org.id.starts_with("org-"), "{}", org.id);
    assert_eq!(
        (org.slug.as_str(), org.name.as_str()),
        ("acme", "Acme Corp")
    );
    assert_eq!(org.created_at_ms, T0);
    assert_eq!(store.get_org(&org.id).await.unwrap(), org);
    assert_eq!(store.get_org("acme").await.unwrap(), org);
    let beta = store.create_org(new_org("beta", None)).await.unwrap();
    assert_eq!(beta.name, "beta", "the name defaults to the slug");
    let slugs: Vec<String> = store
        .list_orgs()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.slug)
        .collect();
    assert_eq!(slugs, ["acme", "beta"]);

    let changed = store
        .update_org(
            "acme",
            OrgUpdate {
                name: Some("Acme".into()),
                max_memory: Some(None),
                max_sandboxes: Some(Some(5)),
                ..OrgUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.name, "Acme");
    assert_eq!(
        changed.limits,
        OrgLimits {
            max_sandboxes: Some(5),
            max_memory: None,
            max_cpus: Some(1.5),
            max_ttl_secs: Some(3600),
        }
    );
    assert_eq!(store.get_org(&org.id).await.unwrap(), changed);

    store.delete_org(&org.id).await.unwrap();
    assert!(matches!(
        store.get_org("acme").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.delete_org(&org.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.update_org(&org.id, OrgUpdate::default()).await,
        Err(Error::NotFound(_))
    ));
}

pub(super) async fn bad_slugs_names_caps_and_taken_slugs_are_refused(c: Ctx) {
    let store = c.store.as_ref();
    for slug in ["", "Acme", "-x", "a b", "org-x", &"a".repeat(41)] {
        assert!(
            matches!(
                store.create_org(new_org(slug, None)).await,
                Err(Error::Invalid(_))
            ),
            "{slug:?}"
        );
    }
    let bad_name = NewOrg {
        name: Some("two\nlines".into()),
        ..new_org("ok", None)
    };
    assert!(matches!(
        store.create_org(bad_name).await,
        Err(Error::Invalid(_))
    ));
    let zero_cpus = NewOrg {
        limits: OrgLimits {
            max_cpus: Some(0.0),
            ..OrgLimits::default()
        },
        ..new_org("ok", None)
    };
    assert!(matches!(
        store.create_org(zero_cpus).await,
        Err(Error::Invalid(_))
    ));
    store.create_org(new_org("ok", None)).await.unwrap();
    assert!(matches!(
        store.create_org(new_org("ok", None)).await,
        Err(Error::Conflict(_))
    ));
    let zero_ttl = OrgUpdate {
        max_ttl_secs: Some(Some(0)),
        ..OrgUpdate::default()
    };
    assert!(matches!(
        store.update_org("ok", zero_ttl).await,
        Err(Error::Invalid(_))
    ));
}

pub(super) async fn members_have_one_role_per_org_and_go_with_either(c: Ctx) {
    let store = c.store.as_ref();
    let ann = user(store, "ann", Role::Learner).await;
    let bob = user(store, "bob", Role::Learner).await;
    let acme = store.create_org(new_org("acme", None)).await.unwrap();
    let beta = store.create_org(new_org("beta", None)).await.unwrap();
    let m = store
        .set_org_member(&acme.id, &bob.id, OrgRole::Member)
        .await
        .unwrap();
    assert_eq!(
        (
            m.org_id.as_str(),
            m.username.as_str(),
            m.role,
            m.added_at_ms
        ),
        (acme.id.as_str(), "bob", OrgRole::Member, T0)
    );
    store
        .set_org_member("acme", &ann.id, OrgRole::Owner)
        .await
        .unwrap();
    store
        .set_org_member(&beta.id, &bob.id, OrgRole::Instructor)
        .await
        .unwrap();
    // A second add changes the role.
    let m = store
        .set_org_member(&acme.id, &bob.id, OrgRole::Instructor)
        .await
        .unwrap();
    assert_eq!(m.role, OrgRole::Instructor);
    let members = store.list_org_members(&acme.id).await.unwrap();
    let names: Vec<(&str, OrgRole)> = members
        .iter()
        .map(|m| (m.username.as_str(), m.role))
        .collect();
    assert_eq!(
        names,
        [("ann", OrgRole::Owner), ("bob", OrgRole::Instructor)]
    );
    let bobs: Vec<(String, OrgRole)> = store
        .user_orgs(&bob.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.org.slug, m.role))
        .collect();
    assert_eq!(
        bobs,
        [
            ("acme".into(), OrgRole::Instructor),
            ("beta".into(), OrgRole::Instructor)
        ]
    );

    assert!(matches!(
        store
            .set_org_member(&acme.id, "usr-nobody", OrgRole::Member)
            .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.set_org_member("nope", &bob.id, OrgRole::Member).await,
        Err(Error::NotFound(_))
    ));
    store.remove_org_member(&acme.id, &bob.id).await.unwrap();
    assert!(matches!(
        store.remove_org_member(&acme.id, &bob.id).await,
        Err(Error::NotFound(_))
    ));
    // A deleted user leaves every organisation; a deleted organisation loses its members.
    store.delete_user(&bob.id).await.unwrap();
    assert!(store.list_org_members(&beta.id).await.unwrap().is_empty());
    store.delete_org(&acme.id).await.unwrap();
    assert!(store.user_orgs(&ann.id).await.unwrap().is_empty());
}

pub(super) async fn places_count_live_and_pending_sandboxes_up_to_the_cap(c: Ctx) {
    let store = c.store.as_ref();
    let acme = store.create_org(new_org("acme", Some(2))).await.unwrap();
    let free = store.create_org(new_org("free", None)).await.unwrap();
    // A pending place (no record yet) counts.
    let pending = SandboxId::generate();
    store
        .take_org_place(&acme.id, &pending)
        .await
        .unwrap()
        .unwrap();
    // A recorded, running one counts.
    let mut rec = record(Some("usr-a"), 1);
    store
        .take_org_place("acme", &rec.id)
        .await
        .unwrap()
        .unwrap();
    rec.state = SandboxState::Running;
    store.put(&rec).await.unwrap();
    assert_eq!(store.count_org_sandboxes(&acme.id).await.unwrap(), 2);
    assert_eq!(
        store.sandbox_org(&rec.id).await.unwrap(),
        Some(acme.id.clone())
    );
    assert_eq!(
        store
            .take_org_place(&acme.id, &SandboxId::generate())
            .await
            .unwrap(),
        Err(OrgFull { live: 2, cap: 2 })
    );
    // No cap: a place is always taken (it still says which org the sandbox counts against).
    for _ in 0..3 {
        store
            .take_org_place(&free.id, &SandboxId::generate())
            .await
            .unwrap()
            .unwrap();
    }
    assert!(matches!(
        store.take_org_place(&free.id, &rec.id).await,
        Err(Error::Conflict(_))
    ));

    // A failed sandbox frees its place; so does a deleted record, and a released create.
    rec.state = SandboxState::Failed;
    store.put(&rec).await.unwrap();
    assert_eq!(store.count_org_sandboxes(&acme.id).await.unwrap(), 1);
    rec.state = SandboxState::Running;
    store.put(&rec).await.unwrap();
    store.delete(&rec.id).await.unwrap();
    assert_eq!(store.sandbox_org(&rec.id).await.unwrap(), None);
    assert_eq!(store.count_org_sandboxes(&acme.id).await.unwrap(), 1);
    store.release_org_place(&pending).await.unwrap();
    store.release_org_place(&pending).await.unwrap();
    assert_eq!(store.count_org_sandboxes(&acme.id).await.unwrap(), 0);

    // A place moved to a claimed warm sandbox counts through that sandbox.
    let reserved = SandboxId::generate();
    store
        .take_org_place(&acme.id, &reserved)
        .await
        .unwrap()
        .unwrap();
    let mut warm = record(Some("pool:default"), 2);
    warm.state = SandboxState::Running;
    store.put(&warm).await.unwrap();
    store.move_org_place(&reserved, &warm.id).await.unwrap();
    assert_eq!(
        store.sandbox_org(&warm.id).await.unwrap(),
        Some(acme.id.clone())
    );
    assert_eq!(store.count_org_sandboxes(&acme.id).await.unwrap(), 1);

    // A create that died before its record: its place stops counting after a while.
    store
        .take_org_place(&acme.id, &SandboxId::generate())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.count_org_sandboxes(&acme.id).await.unwrap(), 2);
    c.clock.advance_ms(PLACE_PENDING_MS + 1);
    assert_eq!(store.count_org_sandboxes(&acme.id).await.unwrap(), 1);
    assert!(matches!(
        store.take_org_place("nope", &SandboxId::generate()).await,
        Err(Error::NotFound(_))
    ));
}

pub(super) async fn sixteen_concurrent_takers_get_exactly_the_cap(c: Ctx) {
    let acme = c.store.create_org(new_org("acme", Some(3))).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (store, org) = (c.store.clone(), acme.id.clone());
        tasks.push(tokio::spawn(async move {
            store.take_org_place(&org, &SandboxId::generate()).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            Ok(()) => won += 1,
            Err(full) => assert_eq!(full.cap, 3),
        }
    }
    assert_eq!(won, 3);
    assert_eq!(c.store.count_org_sandboxes(&acme.id).await.unwrap(), 3);
}
