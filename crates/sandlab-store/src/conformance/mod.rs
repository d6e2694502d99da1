//! The conformance suite: every [`Store`] method, with those of its [`RecordStore`] and
//! [`LeaseStore`] supertraits, checked against any implementation.
//!
//! The suite asserts what callers rely on (the HTTP handlers, the runtime's manager): the
//! errors each method answers, owner scoping, paging, expiry on the store's clock, lease
//! exclusion under concurrency. What only one implementation can show (bytes on disk,
//! SQLite triggers, surviving `kill -9`) stays in that implementation's own tests.
//!
//! An implementation's test gives a [`Harness`] that opens a fresh, empty store whose time
//! is the [`ManualClock`] it is handed (every timestamp and expiry must come from it), and
//! runs the suite:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn postgres_passes_the_conformance_suite() {
//!     sandlab_store::conformance::run_all(Arc::new(PgHarness::new().await)).await;
//! }
//! ```
//!
//! Each case runs on a store of its own, a few at a time; the run panics naming every case
//! that failed or hung. `SANDLAB_CONFORMANCE=<text>` runs only the cases whose name
//! contains `<text>`. The module is compiled with the `conformance` feature.
//!
//! [`RecordStore`]: crate::RecordStore
//! [`LeaseStore`]: sandlab_core::LeaseStore

mod audit;
mod bus;
mod identities;
mod invites;
mod labs;
mod leases;
mod orgs;
mod port_grants;
mod resets;
mod sandboxes;
mod sessions;
mod submissions;
mod tokens;
mod users;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sandlab_core::{Holder, Limits, NetworkInfo, SandboxId, SandboxRecord, SandboxState};
use tokio::sync::Semaphore;

use crate::{ManualClock, NewUser, Role, Store, User};

/// The password every user of the suite gets.
pub const PASSWORD: &str = "correct horse battery";
/// Where every case's clock starts: 2024-01-01T00:00:00Z.
pub const T0: i64 = 1_704_067_200_000;
/// Longest a case may take before it counts as hung.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Opens the stores the suite runs on.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// A fresh, empty store (no users, records, leases, submissions or log entries) whose
    /// time is `clock`. Whatever must outlive the store (a temporary directory, a database
    /// to drop) is the harness's to keep.
    async fn open(&self, clock: Arc<ManualClock>) -> Arc<dyn Store>;
}

/// What a case works on: a fresh store and the clock it reads, at [`T0`].
pub struct Ctx {
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
}

type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One test of the suite.
pub struct Case {
    /// `<aggregate>::<behaviour>`, e.g. `leases::release_is_the_holders_alone`.
    pub name: &'static str,
    run: fn(Ctx) -> CaseFuture,
}

impl Case {
    /// Runs the case on `ctx`; panics when the store does not conform.
    pub async fn run(&self, ctx: Ctx) {
        (self.run)(ctx).await
    }
}

macro_rules! cases {
    ($($module:ident :: $case:ident),* $(,)?) => {
        &[$(Case {
            name: concat!(stringify!($module), "::", stringify!($case)),
            run: |ctx| Box::pin($module::$case(ctx)),
        }),*]
    };
}

/// Every case of the suite.
pub const CASES: &[Case] = cases![
    users::create_get_and_look_up_by_name_in_any_case,
    users::duplicate_usernames_conflict_in_any_case,
    users::bad_usernames_and_passwords_are_invalid,
    users::verify_login_checks_name_password_and_state,
    users::list_users_page_by_page,
    users::update_role_password_and_disable,
    users::the_last_enabled_admin_stays,
    users::deleting_a_user_ends_their_tokens_and_sessions,
    users::a_healthy_store_is_writable,
    tokens::the_secret_is_returned_once_and_never_listed,
    tokens::authenticate_records_use_and_revocation_ends_it,
    tokens::a_disabled_users_token_fails,
    tokens::names_users_and_the_cap_are_checked,
    tokens::concurrent_creations_all_succeed,
    sessions::sessions_authenticate_until_they_expire,
    sessions::logout_and_cleanup_of_expired_sessions,
    sessions::bad_ttls_unknown_users_and_the_per_user_cap,
    invites::created_listed_and_deleted,
    invites::a_redemption_creates_a_user_with_the_role_and_spends_a_use,
    invites::expired_unknown_and_malformed_links_are_refused,
    invites::bad_names_and_taken_usernames_spend_no_use,
    invites::bad_invites_are_invalid,
    invites::one_of_eight_concurrent_sign_ups_gets_a_one_use_invite,
    resets::a_reset_sets_the_password_once_and_ends_sessions,
    resets::a_newer_reset_voids_the_older_and_links_expire,
    resets::disabled_and_unknown_users_get_no_reset,
    resets::one_of_eight_concurrent_resets_uses_the_link,
    resets::a_password_change_keeps_only_the_named_session,
    identities::a_sign_in_is_taken_once_before_it_expires,
    identities::one_of_eight_concurrent_callbacks_takes_a_sign_in,
    identities::a_user_made_by_a_sign_in_is_found_by_its_identity,
    identities::identities_link_to_users_and_are_found_by_verified_email,
    port_grants::a_code_is_redeemed_once_before_it_expires,
    port_grants::sessions_and_shares_authenticate_until_they_expire,
    port_grants::a_disabled_users_grants_stop_working,
    port_grants::shares_are_listed_revoked_and_capped,
    port_grants::bad_grants_are_invalid,
    submissions::created_submissions_read_back_in_the_order_asked,
    submissions::a_batch_is_created_whole_or_not_at_all,
    submissions::start_takes_only_a_queued_submission,
    submissions::one_of_eight_concurrent_starters_wins,
    submissions::finish_from_queued_or_running_and_only_once,
    submissions::unfinished_are_the_queued_and_running_oldest_first,
    submissions::delete_is_the_owners_or_an_admins,
    submissions::expiry_removes_only_done_ones_finished_before_the_cut,
    submissions::bad_submissions_are_invalid,
    submissions::usage_counts_an_owners_submissions_and_bytes,
    submissions::runners_are_stored_and_taken_by_one,
    sandboxes::records_round_trip_through_the_record_store,
    sandboxes::records_list_oldest_first,
    sandboxes::users_see_only_their_own_and_admins_see_all,
    sandboxes::live_sandboxes_count_towards_the_quota,
    sandboxes::records_hands_out_the_same_store,
    sandboxes::put_if_owner_swaps_for_one_claimer_only,
    labs::lab_sessions_are_stored_updated_scoped_and_deleted,
    labs::progress_is_idempotent_and_in_the_order_done,
    labs::hints_are_idempotent_per_user_and_lab,
    labs::a_sessions_runner_is_taken_by_one,
    labs::a_warm_session_is_handed_to_one_owner,
    orgs::created_found_by_id_or_slug_updated_and_deleted,
    orgs::bad_slugs_names_caps_and_taken_slugs_are_refused,
    orgs::members_have_one_role_per_org_and_go_with_either,
    orgs::places_count_live_and_pending_sandboxes_up_to_the_cap,
    orgs::sixteen_concurrent_takers_get_exactly_the_cap,
    bus::notices_reach_the_subscribers_of_their_topic_in_order,
    bus::only_notices_published_after_subscribing_arrive,
    bus::a_subscriber_that_falls_behind_is_told_of_a_gap,
    bus::bad_topics_and_payloads_are_invalid,
    audit::entries_append_and_list_in_order,
    audit::oversized_input_is_bounded_and_bad_actions_refused,
    audit::the_log_is_append_only_and_outlives_users,
    leases::a_free_lease_is_taken_and_seen,
    leases::a_held_lease_is_refused_until_it_expires,
    leases::the_holder_renews_and_extends,
    leases::release_is_the_holders_alone,
    leases::zero_and_huge_ttls_saturate,
    leases::names_are_independent_and_checked,
    leases::one_of_eight_concurrent_acquirers_wins,
    leases::leases_hands_out_the_same_store,
];

/// Runs every case (or those `SANDLAB_CONFORMANCE` selects), each on a fresh store from
/// `harness`, and panics listing the cases that failed.
pub async fn run_all<H: Harness>(harness: Arc<H>) {
    let filter = std::env::var("SANDLAB_CONFORMANCE").unwrap_or_default();
    let selected: Vec<&'static Case> = CASES.iter().filter(|c| c.name.contains(&*filter)).collect();
    assert!(
        !selected.is_empty(),
        "no conformance case matches {filter:?}"
    );
    // A few at a time: every case hashes passwords (argon2id, 19 MiB each).
    let slots = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let permits = Arc::new(Semaphore::new(slots));
    let mut tasks = Vec::new();
    for case in selected {
        let (harness, permits) = (harness.clone(), permits.clone());
        let task = tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            let clock = Arc::new(ManualClock::new(T0));
            let store = harness.open(clock.clone()).await;
            tokio::time::timeout(CASE_TIMEOUT, case.run(Ctx { store, clock })).await
        });
        tasks.push((case.name, task));
    }
    let total = tasks.len();
    let mut failed = Vec::new();
    for (name, task) in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => failed.push(format!("{name}: hung for {CASE_TIMEOUT:?}")),
            Err(e) => failed.push(format!("{name}: {}", panic_message(e))),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {total} conformance cases failed:\n  {}",
        failed.len(),
        failed.join("\n  ")
    );
}

fn panic_message(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panicked".into()),
        Err(e) => e.to_string(),
    }
}

/// Creates an enabled user with [`PASSWORD`].
pub async fn user(store: &dyn Store, name: &str, role: Role) -> User {
    store
        .create_user(NewUser {
            username: name.into(),
            password: PASSWORD.into(),
            role,
        })
        .await
        .expect("create_user")
}

/// A `creating` record owned by `owner`, made at `created_at_ms`, with a creator.
pub fn record(owner: Option<&str>, created_at_ms: u64) -> SandboxRecord {
    SandboxRecord {
        id: SandboxId::generate(),
        image: "debian:12".into(),
        limits: Limits::default(),
        state: SandboxState::Creating,
        reason: None,
        hostname: Some("box".into()),
        created_at_ms,
        deadline_ms: created_at_ms.saturating_add(600_000),
        network: NetworkInfo::default(),
        driver: "container".into(),
        creator: Some(holder(4242)),
        owner: owner.map(str::to_owned),
        owner_process: None,
    }
}

/// Process `pid` on a fixed boot.
pub fn holder(pid: u32) -> Holder {
    Holder::new(
        "0b5e2d4c-1f2a-4e5b-9c3d-112233445566",
        pid,
        9001 + u64::from(pid),
    )
    .expect("a valid boot id")
}
