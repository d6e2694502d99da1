//! Several `sandlab serve` replicas on one store: who does the work that must run once.
//!
//! Any replica answers any request. The rest is decided by two kinds of store lease, both
//! tried for every [`TRY_EVERY`] by every replica and lasting [`LEASE_TTL`] unrenewed:
//!
//! - [`CONTROL_LEASE`] (`control`): its holder, the leader, runs the reaper and the health
//!   sweep ([`Sandboxes::run_leader`]), reconciles host and store every
//!   [`RECONCILE_EVERY`] (and at once when it becomes leader, unless it reconciled within
//!   the last round), and takes over the lab sessions and code-execution submissions whose
//!   runner died ([`crate::lab_sessions::LabSessions::adopt`],
//!   [`crate::code_exec::submissions::adopt`]).
//! - `pool:<profile>` per warm-pool profile: its holder refills that pool
//!   ([`Sandboxes::run_pool`]); every replica claims from it (one compare-and-swap per
//!   claim, see [`crate::pool`]).
//!
//! A holder renews each lease it has on every try; one whose renewal finds another holder
//! (or that could not renew for a whole TTL) stops that work at once. A holder of this host
//! that died (`kill -9`) is seen through its process at once and its leases taken over
//! (`sandlab_runtime::process::alive`); one of another host is waited out until its
//! leases expire. On shutdown a replica gives its leases up, so another takes over within
//! a second.
//!
//! Every replica, leader or not, reads the sandbox records every [`SYNC_EVERY`]
//! ([`Sandboxes::sync`]): deadlines set or extended on another replica, pool sandboxes
//! started or claimed by another.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sandlab_core::{error_chain, Holder, LeaseStore};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics as m;
use crate::sandboxes::Sandboxes;
use crate::state::AppState;

/// The leader's lease.
pub const CONTROL_LEASE: &str = "control";
/// How long a lease of this module lasts unrenewed.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often every replica tries for (or renews) each lease.
pub const TRY_EVERY: Duration = Duration::from_secs(1);
/// How often every replica reads the records, and the leader adopts orphans.
pub const SYNC_EVERY: Duration = Duration::from_secs(2);
/// How often the leader reconciles host and store.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);

/// The lease of a warm-pool profile.
pub fn pool_lease(profile: &str) -> String {
    format!("pool:{profile}")
}

/// Starts the lease loop and the record sync of this replica; both end with the server's
/// shutdown (the leases are given up then).
pub fn spawn(state: AppState) {
    metrics::gauge!(m::CONTROL_LEADER).set(0.0);
    tokio::spawn(sync(state.clone()));
    tokio::spawn(leases(state));
}

/// Reads the records every [`SYNC_EVERY`] until shutdown.
async fn sync(state: AppState) {
    let shutdown = state.shutdown().clone();
    let sandboxes = state.sandboxes().clone();
    let mut tick = tokio::time::interval(SYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match sandboxes.manager().list().await {
            Ok(records) => sandboxes.sync(&records),
            Err(e) => tracing::warn!(error = %error_chain(&e), "cannot read the sandbox records"),
        }
        // Sessions this replica names as runner but does not run (a set-up that failed
        // half way): only it can tell, so every replica sweeps its own.
        if let Err(e) = state.lab_sessions().adopt(&state.labs(), false).await {
            tracing::warn!(error = %error_chain(&e), "cannot take over this replica's own lab sessions");
        }
    }
}

/// A lease this replica holds: the work it runs stops with `stop`, and stops by itself
/// at `until` unless a renewal moves that on.
struct Held {
    stop: CancellationToken,
    until: watch::Sender<Instant>,
}

/// How long a store call for a lease may take before it counts as failed; a slow store
/// must not keep a holder working after its lease may have lapsed.
const TRY_TIMEOUT: Duration = Duration::from_millis(2500);
/// How long before its lease could lapse a holder stops its work, for the clock drift
/// between this process and the store within one TTL.
const MARGIN: Duration = Duration::from_millis(500);

/// Until when, on this process's clock, a lease renewed by a call that started at `asked`
/// is surely still this replica's: the store counted the TTL from later than that.
fn held_until(asked: Instant) -> Instant {
    asked + LEASE_TTL - MARGIN
}

/// Stops `stop` at the time `until` holds, unless it moves on first: the work of a lease
/// ends before the lease can lapse, however long the renewing store call hangs.
fn watchdog(name: String, stop: CancellationToken, mut until: watch::Receiver<Instant>) {
    tokio::spawn(async move {
        loop {
            let at = *until.borrow_and_update();
            tokio::select! {
                _ = tokio::time::sleep_until(at) => {
                    if *until.borrow() <= Instant::now() {
                        tracing::warn!(lease = %name, "could not renew a lease in time; stopping its work");
                        halt(&name, &stop);
                        return;
                    }
                }
                changed = until.changed() => if changed.is_err() { return },
                _ = stop.cancelled() => return,
            }
        }
    });
}

/// Tries for every lease every [`TRY_EVERY`], starting and stopping the work each guards.
async fn leases(state: AppState) {
    let shutdown = state.shutdown().clone();
    let store: Arc<dyn LeaseStore> = state.store().clone().leases();
    let me = state.sandboxes().manager().holder().to_string();
    let mut names = vec![CONTROL_LEASE.to_owned()];
    names.extend(
        state
            .sandboxes()
            .pool()
            .profiles()
            .iter()
            .filter(|p| p.size > 0)
            .map(|p| pool_lease(&p.name)),
    );
    let mut held: HashMap<String, Held> = HashMap::new();
    let mut tick = tokio::time::interval(TRY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        for name in &names {
            let asked = Instant::now();
            let got = tokio::time::timeout(TRY_TIMEOUT, try_lease(store.as_ref(), name, &me)).await;
            match got {
                Ok(Ok(true)) => match held.get(name) {
                    // Renewed in time: the work goes on.
                    Some(h) if !h.stop.is_cancelled() => {
                        h.until.send_replace(held_until(asked));
                    }
                    // New, or renewed after the watchdog stopped the work: (re)start it.
                    _ => {
                        let stop = shutdown.child_token();
                        let (until, rx) = watch::channel(held_until(asked));
                        start(&state, name, stop.clone());
                        watchdog(name.clone(), stop.clone(), rx);
                        held.insert(name.clone(), Held { stop, until });
                    }
                },
                Ok(Ok(false)) => {
                    if let Some(h) = held.remove(name) {
                        tracing::warn!(lease = %name, "another replica holds the lease now");
                        halt(name, &h.stop);
                    }
                }
                // The watchdog stops the work once the lease may have lapsed.
                Ok(Err(e)) => {
                    tracing::warn!(lease = %name, error = %error_chain(&e), "cannot renew a lease");
                }
                Err(_) => {
                    tracing::warn!(lease = %name, "renewing a lease took too long");
                }
            }
        }
    }
    for (name, h) in held {
        halt(&name, &h.stop);
        if let Err(e) = store.release_lease(&name, &me).await {
            tracing::warn!(lease = %name, error = %error_chain(&e), "cannot give a lease up; it expires on its own");
        }
    }
}

/// Takes or renews lease `name` for `me`; takes it over from a holder that died. Whether
/// `me` has it.
async fn try_lease(
    store: &dyn LeaseStore,
    name: &str,
    me: &str,
) -> sandlab_core::StoreResult<bool> {
    let lease = store.acquire_lease(name, me, LEASE_TTL).await?;
    if lease.holder == me {
        return Ok(true);
    }
    let dead = match lease.holder.parse::<Holder>() {
        Ok(h) => !sandlab_runtime::process::alive(&h, store)
            .await
            .unwrap_or(true),
        Err(_) => false,
    };
    if !dead {
        return Ok(false);
    }
    tracing::info!(lease = name, holder = %lease.holder, "taking over the lease of a replica that died");
    store.release_lease(name, &lease.holder).await?;
    Ok(store.acquire_lease(name, me, LEASE_TTL).await?.holder == me)
}

/// Starts the work lease `name` guards, until `stop`.
fn start(state: &AppState, name: &str, stop: CancellationToken) {
    if name == CONTROL_LEASE {
        tracing::info!("this replica leads now (reaper, reconciliation, adoption)");
        metrics::gauge!(m::CONTROL_LEADER).set(1.0);
        state.sandboxes().run_leader(stop.clone());
        tokio::spawn(lead(state.clone(), stop));
        return;
    }
    if let Some(profile) = name.strip_prefix("pool:") {
        tracing::info!(pool.profile = %profile, "this replica refills the warm pool");
        let (sandboxes, profile) = (state.sandboxes().clone(), profile.to_owned());
        tokio::spawn(async move { sandboxes.run_pool(&profile, stop).await });
    }
}

/// Stops the work lease `name` guards.
fn halt(name: &str, stop: &CancellationToken) {
    stop.cancel();
    if name == CONTROL_LEASE {
        metrics::gauge!(m::CONTROL_LEADER).set(0.0);
    }
}

/// The leader's rounds until `stop`: reconciliation every [`RECONCILE_EVERY`], adoption of
/// orphaned lab sessions and submissions every [`SYNC_EVERY`].
async fn lead(state: AppState, stop: CancellationToken) {
    let me = state.sandboxes().manager().holder().to_string();
    let mut tick = tokio::time::interval(SYNC_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        if due(state.sandboxes()) {
            match state.sandboxes().reconcile().await {
                Ok(r) if r != Default::default() => tracing::info!(
                    orphans_removed = r.orphans_removed.len(),
                    marked_failed = r.marked_failed.len(),
                    expired = r.expired.len(),
                    "reconciled host and store"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %error_chain(&e), "reconciliation failed"),
            }
        }
        if stop.is_cancelled() {
            return;
        }
        let labs = state.labs();
        if let Err(e) = state.lab_sessions().adopt(&labs, true).await {
            tracing::warn!(error = %error_chain(&e), "cannot take over lab sessions");
        }
        match crate::code_exec::submissions::adopt(state.execute(), &me).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                submissions = n,
                "running again the submissions of a replica that died"
            ),
            Err(e) => tracing::warn!(error = %error_chain(&e), "cannot take over submissions"),
        }
    }
}

/// Whether a reconciliation is due: none yet, or the last a round ago.
fn due(sandboxes: &Sandboxes) -> bool {
    sandboxes
        .since_reconciled()
        .is_none_or(|d| d >= RECONCILE_EVERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A renewal that hangs must not keep a holder working past its lease: the watchdog
    /// stops the work at the time the last renewal vouched for, and not before.
    #[tokio::test(start_paused = true)]
    async fn the_watchdog_stops_the_work_when_renewals_stop_in_time() {
        let stop = CancellationToken::new();
        let (until, rx) = watch::channel(held_until(Instant::now()));
        watchdog("pool:test".into(), stop.clone(), rx);
        // Renewed every second for a while: the work goes on.
        for _ in 0..10 {
            tokio::time::sleep(TRY_EVERY).await;
            until.send_replace(held_until(Instant::now()));
            assert!(!stop.is_cancelled());
        }
        // Then no renewal: stopped within the lease, never after it.
        let last = Instant::now();
        tokio::time::sleep(LEASE_TTL - MARGIN - Duration::from_millis(10)).await;
        assert!(!stop.is_cancelled(), "stopped before the lease could lapse");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            stop.is_cancelled(),
            "still working past {:?}",
            last.elapsed()
        );
    }
}
