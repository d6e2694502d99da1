//! Sandbox records: written through the [`RecordStore`](sandlab_core::RecordStore) as the
//! runtime does, read through the owner-scoped, paged API reads.

use sandlab_core::{Limits, NetworkInfo, NetworkMode, SandboxId, SandboxState};

use super::{holder, record, Ctx};
use crate::{Error, PageRequest};

pub(super) async fn records_round_trip_through_the_record_store(c: Ctx) {
    let store = c.store.as_ref();
    let mut rec = record(Some("usr-a"), 1_700_000_000_000);
    rec.limits = Limits {
        network: NetworkMode::Egress,
        cpus: 0.5,
        ..Limits::default()
    };
    rec.network = NetworkInfo {
        ipv4: Some("10.213.0.30".into()),
        ipv6: Some("fd00::1e".into()),
    };
    rec.owner_process = Some(holder(99));
    store.put(&rec).await.unwrap();
    assert_eq!(store.get(&rec.id).await.unwrap(), Some(rec.clone()));

    // A second put is an update, not a second row.
    rec.state = SandboxState::Failed;
    rec.reason = Some("the sandbox's processes are gone".into());
    rec.creator = None;
    rec.owner_process = None;
    rec.hostname = None;
    rec.network = NetworkInfo::default();
    store.put(&rec).await.unwrap();
    assert_eq!(store.get(&rec.id).await.unwrap(), Some(rec.clone()));
    assert_eq!(store.list().await.unwrap(), vec![rec.clone()]);

    // Anything is stored as given: no owner, another driver, any state.
    let mut bare = record(None, 5);
    bare.driver = "vm".into();
    bare.state = SandboxState::Running;
    bare.creator = None;
    store.put(&bare).await.unwrap();
    assert_eq!(store.get(&bare.id).await.unwrap(), Some(bare.clone()));

    // Times past i64::MAX milliseconds are kept as the largest time, not refused.
    let mut far = record(None, 6);
    far.deadline_ms = u64::MAX;
    store.put(&far).await.unwrap();
    let got = store.get(&far.id).await.unwrap().unwrap();
    assert_eq!(got.deadline_ms, i64::MAX as u64);

    // Deleting twice, or what was never there, succeeds.
    store.delete(&rec.id).await.unwrap();
    store.delete(&rec.id).await.unwrap();
    store.delete(&SandboxId::generate()).await.unwrap();
    assert_eq!(store.get(&rec.id).await.unwrap(), None);
    assert_eq!(store.get(&SandboxId::generate()).await.unwrap(), None);
    assert_eq!(store.list().await.unwrap().len(), 2);
}

pub(super) async fn records_list_oldest_first(c: Ctx) {
    let store = c.store.as_ref();
    assert!(store.list().await.unwrap().is_empty());
    for t in [30, 10, 20] {
        store.put(&record(None, t)).await.unwrap();
    }
    let times: Vec<u64> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| r.created_at_ms)
        .collect();
    assert_eq!(times, [10, 20, 30]);
}

pub(super) async fn users_see_only_their_own_and_admins_see_all(c: Ctx) {
    let store = c.store.as_ref();
    let mut mine = Vec::new();
    for t in 0..5u64 {
        let r = record(Some("usr-me"), 100 + t);
        store.put(&r).await.unwrap();
        mine.push(r);
        store.put(&record(Some("usr-you"), 100 + t)).await.unwrap();
    }
    store.put(&record(None, 1)).await.unwrap();

    // Page through the owner's list two at a time.
    let mut got = Vec::new();
    let mut req = PageRequest::first(2);
    loop {
        let page = store.list_sandboxes(Some("usr-me"), req).await.unwrap();
        assert!(page.items.len() <= 2);
        got.extend(page.items);
        match page.next {
            Some(cursor) => req = PageRequest::after(cursor, 2),
            None => break,
        }
    }
    assert_eq!(got, mine);
    let all = store
        .list_sandboxes(None, PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 11);
    assert!(all.next.is_none());
    assert_eq!(all.items, store.list().await.unwrap());
    let nobody = store
        .list_sandboxes(Some("usr-nobody"), PageRequest::default())
        .await
        .unwrap();
    assert!(nobody.items.is_empty());
    assert!(nobody.next.is_none());
    // A cursor of the users list, and garbage, are refused here.
    for bad in ["dXNlcnM6MTp4", "garbage"] {
        assert!(matches!(
            store.list_sandboxes(None, PageRequest::after(bad, 2)).await,
            Err(Error::Invalid(_))
        ));
    }

    let id = &mine[0].id;
    assert_eq!(
        &store.get_sandbox(id, Some("usr-me")).await.unwrap(),
        &mine[0]
    );
    assert_eq!(&store.get_sandbox(id, None).await.unwrap(), &mine[0]);
    assert!(matches!(
        store.get_sandbox(id, Some("usr-you")).await,
        Err(Error::NotFound("sandbox"))
    ));
    assert!(matches!(
        store.get_sandbox(&SandboxId::generate(), None).await,
        Err(Error::NotFound(_))
    ));
}

pub(super) async fn live_sandboxes_count_towards_the_quota(c: Ctx) {
    let store = c.store.as_ref();
    for state in [
        SandboxState::Creating,
        SandboxState::Running,
        SandboxState::Stopping,
        SandboxState::Failed,
        SandboxState::Removed,
    ] {
        let mut r = record(Some("usr-q"), 1);
        r.state = state;
        store.put(&r).await.unwrap();
    }
    store.put(&record(Some("usr-other"), 1)).await.unwrap();
    store.put(&record(None, 1)).await.unwrap();
    assert_eq!(store.count_live_sandboxes("usr-q").await.unwrap(), 3);
    assert_eq!(store.count_live_sandboxes("usr-other").await.unwrap(), 1);
    assert_eq!(store.count_live_sandboxes("usr-none").await.unwrap(), 0);
}

/// `Store::records` is the same store: what the runtime writes through it, the API reads.
pub(super) async fn records_hands_out_the_same_store(c: Ctx) {
    let records = c.store.clone().records();
    let rec = record(Some("usr-r"), 1);
    records.put(&rec).await.unwrap();
    let page = c
        .store
        .list_sandboxes(Some("usr-r"), PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items, vec![rec.clone()]);
    c.store.delete(&rec.id).await.unwrap();
    assert_eq!(records.get(&rec.id).await.unwrap(), None);
}

pub(super) async fn put_if_owner_swaps_for_one_claimer_only(c: Ctx) {
    let store = c.store.as_ref();
    let mut rec = record(Some("pool:small"), 1);
    rec.state = SandboxState::Running;
    rec.creator = None;
    store.put(&rec).await.unwrap();
    let mut claimed = rec.clone();
    claimed.owner = Some("usr-a".into());
    claimed.deadline_ms = 77;
    // Not from another owner or state, nor for a record that is not there.
    let swap = |r: &sandlab_core::SandboxRecord, owner: &str, state| {
        let r = r.clone();
        let owner = owner.to_owned();
        let store = c.store.clone();
        async move { store.put_if_owner(&r, Some(&owner), state).await.unwrap() }
    };
    assert!(!swap(&claimed, "pool:big", SandboxState::Running).await);
    assert!(!swap(&claimed, "pool:small", SandboxState::Creating).await);
    assert!(!store
        .put_if_owner(&claimed, None, SandboxState::Running)
        .await
        .unwrap());
    let mut ghost = claimed.clone();
    ghost.id = SandboxId::generate();
    assert!(!swap(&ghost, "pool:small", SandboxState::Running).await);
    assert_eq!(store.get(&ghost.id).await.unwrap(), None);
    assert_eq!(store.get(&rec.id).await.unwrap(), Some(rec.clone()));
    // Of eight claimers at once, one gets it, whole.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let mut mine = claimed.clone();
        mine.owner = Some(format!("usr-{i}"));
        tasks.push(tokio::spawn(swap(
            &mine,
            "pool:small",
            SandboxState::Running,
        )));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    let now = store.get(&rec.id).await.unwrap().unwrap();
    assert!(now.owner.as_deref().unwrap().starts_with("usr-"));
    assert_eq!(now.deadline_ms, 77);
    // A retirement (to stopping) keeps a later claim out.
    let mut pooled = record(Some("pool:small"), 2);
    pooled.state = SandboxState::Running;
    store.put(&pooled).await.unwrap();
    let mut stopping = pooled.clone();
    stopping.state = SandboxState::Stopping;
    assert!(swap(&stopping, "pool:small", SandboxState::Running).await);
    let mut late = pooled.clone();
    late.owner = Some("usr-a".into());
    assert!(!swap(&late, "pool:small", SandboxState::Running).await);
    assert_eq!(store.get(&pooled.id).await.unwrap(), Some(stopping));
}
