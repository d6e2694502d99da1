//! Leases: at most one holder per name, expiry on the store's clock, renewal, release by
//! the holder alone, exclusion under concurrency (semantics in the crate docs).

use std::time::Duration;

use sandlab_core::{Lease, StoreError};

use super::{holder, Ctx, T0};
use crate::{Error, MAX_LEASE_FIELD_BYTES};

const MINUTE: Duration = Duration::from_secs(60);

fn lease(name: &str, holder: &str, expires_at_ms: i64) -> Lease {
    Lease {
        name: name.into(),
        holder: holder.into(),
        expires_at_ms: u64::try_from(expires_at_ms).expect("a time after 1970"),
    }
}

fn is_invalid(e: &StoreError) -> bool {
    matches!(e.source.downcast_ref::<Error>(), Some(Error::Invalid(_)))
}

pub(super) async fn a_free_lease_is_taken_and_seen(c: Ctx) {
    let store = c.store.as_ref();
    let me = holder(1).to_string();
    assert_eq!(store.get_lease("reconcile").await.unwrap(), None);
    let got = store.acquire_lease("reconcile", &me, MINUTE).await.unwrap();
    assert_eq!(got, lease("reconcile", &me, T0 + 60_000));
    assert_eq!(store.get_lease("reconcile").await.unwrap(), Some(got));
}

pub(super) async fn a_held_lease_is_refused_until_it_expires(c: Ctx) {
    let store = c.store.as_ref();
    let (a, b) = (holder(1).to_string(), holder(2).to_string());
    let mine = store.acquire_lease("reaper", &a, MINUTE).await.unwrap();
    assert_eq!(mine.holder, a);

    // Another holder is answered with the lease as it stands, unchanged.
    c.clock.advance_ms(59_999);
    let theirs = store
        .acquire_lease("reaper", &b, MINUTE * 10)
        .await
        .unwrap();
    assert_eq!(theirs, mine);
    assert_eq!(store.get_lease("reaper").await.unwrap(), Some(mine.clone()));

    // At its expiry it is gone and free for anyone.
    c.clock.advance_ms(1);
    assert_eq!(store.get_lease("reaper").await.unwrap(), None);
    let theirs = store.acquire_lease("reaper", &b, MINUTE).await.unwrap();
    assert_eq!(theirs, lease("reaper", &b, T0 + 120_000));
    // The old holder's renewal now fails and its release does nothing.
    let again = store.acquire_lease("reaper", &a, MINUTE).await.unwrap();
    assert_eq!(again, theirs);
    store.release_lease("reaper", &a).await.unwrap();
    assert_eq!(store.get_lease("reaper").await.unwrap(), Some(theirs));
}

pub(super) async fn the_holder_renews_and_extends(c: Ctx) {
    let store = c.store.as_ref();
    let me = holder(1).to_string();
    store.acquire_lease("pool", &me, MINUTE).await.unwrap();
    c.clock.advance_ms(50_000);
    let renewed = store.acquire_lease("pool", &me, MINUTE).await.unwrap();
    assert_eq!(renewed, lease("pool", &me, T0 + 110_000));
    // Held past the first expiry, by the renewal alone.
    c.clock.advance_ms(30_000);
    assert_eq!(store.get_lease("pool").await.unwrap(), Some(renewed));
    let other = store
        .acquire_lease("pool", &holder(2).to_string(), MINUTE)
        .await
        .unwrap();
    assert_eq!(other.holder, me);
    // A renewal after expiry, with no one in between, takes it again.
    c.clock.advance_ms(60_000);
    let late = store.acquire_lease("pool", &me, MINUTE).await.unwrap();
    assert_eq!(late, lease("pool", &me, T0 + 200_000));
}

pub(super) async fn release_is_the_holders_alone(c: Ctx) {
    let store = c.store.as_ref();
    let (a, b) = (holder(1).to_string(), holder(2).to_string());
    let mine = store.acquire_lease("remove", &a, MINUTE).await.unwrap();
    // From anyone else, or for a name no one holds, a release does nothing and succeeds.
    store.release_lease("remove", &b).await.unwrap();
    store.release_lease("no such lease", &a).await.unwrap();
    store.release_lease("", "").await.unwrap();
    assert_eq!(store.get_lease("remove").await.unwrap(), Some(mine));
    assert_eq!(
        store
            .acquire_lease("remove", &b, MINUTE)
            .await
            .unwrap()
            .holder,
        a
    );

    store.release_lease("remove", &a).await.unwrap();
    assert_eq!(store.get_lease("remove").await.unwrap(), None);
    store.release_lease("remove", &a).await.unwrap();
    // Free at once, long before the old expiry.
    let theirs = store.acquire_lease("remove", &b, MINUTE).await.unwrap();
    assert_eq!(theirs.holder, b);
}

pub(super) async fn zero_and_huge_ttls_saturate(c: Ctx) {
    let store = c.store.as_ref();
    let (a, b) = (holder(1).to_string(), holder(2).to_string());
    // A zero ttl grants a lease that has already expired.
    let zero = store
        .acquire_lease("zero", &a, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(zero, lease("zero", &a, T0));
    assert_eq!(store.get_lease("zero").await.unwrap(), None);
    let taken = store.acquire_lease("zero", &b, MINUTE).await.unwrap();
    assert_eq!(taken.holder, b);

    // Less than a millisecond still holds for one.
    let short = store
        .acquire_lease("short", &a, Duration::from_nanos(1))
        .await
        .unwrap();
    assert_eq!(short, lease("short", &a, T0 + 1));

    // Absurd ttls saturate rather than fail or wrap into the past.
    for (name, ttl) in [
        ("max", Duration::MAX),
        ("huge", Duration::from_secs(u64::MAX / 1000)),
    ] {
        let got = store.acquire_lease(name, &a, ttl).await.unwrap();
        assert_eq!(got, lease(name, &a, i64::MAX), "{name}");
        c.clock.advance_ms(1_000_000_000);
        assert_eq!(store.get_lease(name).await.unwrap(), Some(got), "{name}");
        let renewed = store.acquire_lease(name, &a, ttl).await.unwrap();
        assert_eq!(renewed.expires_at_ms, i64::MAX as u64, "{name}");
        let other = store.acquire_lease(name, &b, MINUTE).await.unwrap();
        assert_eq!(other.holder, a, "{name}");
    }
}

pub(super) async fn names_are_independent_and_checked(c: Ctx) {
    let store = c.store.as_ref();
    let (a, b) = (holder(1).to_string(), holder(2).to_string());
    let one = store.acquire_lease("one", &a, MINUTE).await.unwrap();
    let kept = store.acquire_lease("kept", &a, MINUTE * 10).await.unwrap();
    let two = store.acquire_lease("two", &b, MINUTE * 2).await.unwrap();
    assert_eq!(two, lease("two", &b, T0 + 120_000));
    store.release_lease("two", &b).await.unwrap();
    assert_eq!(store.get_lease("one").await.unwrap(), Some(one.clone()));
    // Names are compared exactly: no case folding, no trimming.
    for similar in ["One", "one ", "on"] {
        let got = store.acquire_lease(similar, &b, MINUTE).await.unwrap();
        assert_eq!(got.holder, b, "{similar:?}");
    }
    // Expiring, and being taken over, one name leaves the live leases of others alone.
    c.clock.advance_ms(60_000);
    assert_eq!(store.get_lease("one").await.unwrap(), None);
    let three = store.acquire_lease("three", &b, MINUTE).await.unwrap();
    let taken = store.acquire_lease("one", &b, MINUTE).await.unwrap();
    assert_eq!(taken, lease("one", &b, T0 + 120_000));
    assert_eq!(store.get_lease("kept").await.unwrap(), Some(kept));
    assert_eq!(store.get_lease("three").await.unwrap(), Some(three));

    let long = "x".repeat(MAX_LEASE_FIELD_BYTES + 1);
    let fits = "x".repeat(MAX_LEASE_FIELD_BYTES);
    for (name, who) in [("", a.as_str()), ("n", ""), (&long, &a), ("n", &long)] {
        let err = store.acquire_lease(name, who, MINUTE).await.unwrap_err();
        assert!(is_invalid(&err), "{name:?} {who:?}: {err:?}");
    }
    let got = store.acquire_lease(&fits, &fits, MINUTE).await.unwrap();
    assert_eq!((got.name.len(), got.holder.len()), (fits.len(), fits.len()));
}

/// Eight tasks race for one free lease: exactly one gets it, and all see that one.
pub(super) async fn one_of_eight_concurrent_acquirers_wins(c: Ctx) {
    let mut tasks = Vec::new();
    for pid in 1..=8 {
        let store = c.store.clone();
        tasks.push(tokio::spawn(async move {
            let me = holder(pid).to_string();
            let got = store.acquire_lease("reconcile", &me, MINUTE).await?;
            Ok::<_, StoreError>((me, got))
        }));
    }
    let mut winners = Vec::new();
    let mut seen = Vec::new();
    for t in tasks {
        let (me, got) = t.await.unwrap().unwrap();
        if got.holder == me {
            winners.push(me);
        }
        seen.push(got);
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert!(seen.iter().all(|l| l.holder == winners[0]), "{seen:?}");
    let now = c.store.get_lease("reconcile").await.unwrap().unwrap();
    assert_eq!(now.holder, winners[0]);
}

/// `Store::leases` is the same store: a lease taken through it binds every other user.
pub(super) async fn leases_hands_out_the_same_store(c: Ctx) {
    let leases = c.store.clone().leases();
    let me = holder(1).to_string();
    let got = leases.acquire_lease("refill", &me, MINUTE).await.unwrap();
    assert_eq!(c.store.get_lease("refill").await.unwrap(), Some(got));
    let other = c
        .store
        .acquire_lease("refill", &holder(2).to_string(), MINUTE)
        .await
        .unwrap();
    assert_eq!(other.holder, me);
    c.store.release_lease("refill", &me).await.unwrap();
    assert_eq!(leases.get_lease("refill").await.unwrap(), None);
}
