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
    }
}

/// A lease this replica holds: the work it runs stops with `stop`.
struct Held {
    stop: CancellationToken,
    renewed: Instant,
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
            match try_lease(store.as_ref(), name, &me).await {
                Ok(true) => match held.get_mut(name) {
                    Some(h) => h.renewed = Instant::now(),
                    None => {
                        let stop = shutdown.child_token();
                        start(&state, name, stop.clone());
                        let renewed = Instant::now();
                        held.insert(name.clone(), Held { stop, renewed });
                    }
                },
                Ok(false) => {
                    if let Some(h) = held.remove(name) {
                        tracing::warn!(lease = %name, "another replica holds the lease now");
                        stop(name, h);
                    }
                }
                Err(e) => {
                    tracing::warn!(lease = %name, error = %error_chain(&e), "cannot renew a lease");
                    // Past its TTL unrenewed, another replica may hold it already.
                    if held
                        .get(name)
                        .is_some_and(|h| h.renewed.elapsed() >= LEASE_TTL)
                    {
                        if let Some(h) = held.remove(name) {
                            stop(name, h);
                        }
                    }
                }
            }
        }
    }
    for (name, h) in held {
        stop(&name, h);
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

fn stop(name: &str, held: Held) {
    held.stop.cancel();
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
        if let Err(e) = state.lab_sessions().adopt(&labs).await {
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
