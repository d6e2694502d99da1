//! The control plane's store: users, API tokens, browser login sessions, sandbox records,
//! leases, lab sessions and progress, and the audit log.
//!
//! HTTP handlers reach it through the [`Store`] trait, which has two implementations:
//! [`SqliteStore`] (one file, the default) and [`PostgresStore`] (a PostgreSQL database
//! that several control planes can share). [`open`] takes a database URL (`sqlite://<path>`
//! or `postgres://…`, see [`DatabaseUrl`]) and returns the one it names. The same
//! object is the runtime's [`RecordStore`] and [`LeaseStore`] (both defined in
//! `sandlab-core`, so this crate does not depend on the runtime): the `SandboxManager`
//! writes the records the API lists (see [`Store::records`]) and takes its leases here
//! (see [`Store::leases`]). With the `conformance` feature, `sandlab_store::conformance`
//! runs every method against any implementation; a new store passes it before it is used.
//!
//! # Schema (`migrations/`, applied in order on open)
//!
//! PostgreSQL's schema is `migrations-postgres/`: the same numbered steps with the same
//! meaning in its dialect (`bigint` times, `boolean` flags, a unique index on
//! `lower(username)` for SQLite's `NOCASE`, an identity `seq` where SQLite orders by
//! `rowid`, plpgsql triggers for the append-only audit log, `TRUNCATE` included). See
//! [`postgres`] for how it is migrated and locked.
//!
//! | table | columns | notes |
//! |---|---|---|
//! | `users` | `id`, `username`, `password_hash`, `role`, `disabled`, `created_at` | username unique without regard to case; argon2id PHC string |
//! | `api_tokens` | `id`, `user_id` → users (cascade), `name`, `token_hash`, `created_at`, `last_used_at` | only the SHA-256 of the secret |
//! | `invites`, `password_resets` | see [`links`]: `token_hash` = SHA-256 of the link's secret, role, uses and expiry / one row per user | migration `0009` |
//! | `identities`, `sso_logins` | see [`identities`]: (`provider`, `subject`) → `user_id` (cascade) with the provider's `email` / a sign-in awaiting its callback by the SHA-256 of its `state` | migration `0013` |
//! | `orgs`, `org_members`, `org_places` | see [`orgs`]: slug, name and caps / (`org_id`, `user_id`) → role (cascade both ways) / `sandbox_id` → `org_id`, dropped with the sandbox's record by a trigger | migration `0014` |
//! | `login_sessions` | `id` = SHA-256 of the cookie secret, `user_id` → users (cascade), `csrf_token`, `created_at`, `expires_at`, `last_seen` | |
//! | `sandboxes` | a [`SandboxRecord`]: `id`, `state`, `reason`, `owner`, `image`, `limits` (JSON), `hostname`, `driver`, `ipv4`, `ipv6`, `created_at`, `deadline`, `creator`, `owner_process` | `owner` is a user id without a foreign key (below); `creator` and `owner_process` are `Holder` strings (`<boot id>/<pid>/<start ticks>`) |
//! | `leases` | `name`, `holder`, `expires_at` | one row per name; a row past `expires_at` is free (below) |
//! | `audit_log` | `id` (autoincrement), `at`, `actor`, `action`, `target`, `detail` (JSON ≤ 4 KiB) | append-only, enforced by triggers |
//! | `lab_sessions` | `id`, `owner`, `lab`, `state`, `reason`, `nodes` (JSON), `created_at`, `deadline` | `owner` without a foreign key, like `sandboxes.owner` |
//! | `lab_progress`, `lab_hints` | `user_id`, `lab`, `task`, `done_at` / `revealed_at` | one row per user, lab and task |
//! | `submissions` | a [`Submission`]: `token`, `owner`, `state`, `request`, `result`, `created_at`, `finished_at` | `token` is the caller's UUID; `owner` without a foreign key; JSON texts opaque to the store |
//!
//! Migration `0005` replaced the sandbox columns `creator_pid` and `owner_pid` by `creator`
//! and `owner_process` (old rows get none: a bare pid cannot name a process across reboots
//! and replicas), dropped `network_slot` with its unique index (egress slots belong to the
//! container driver, host-wide) and renamed the drivers `runc`, `crun` and `runsc` of old
//! rows to `container`.
//! Migration `0006` removed `ttl` from every row's `limits`: a sandbox's lifetime is its
//! `created_at` and `deadline`, and [`sandlab_core::Limits`] refuses unknown fields.
//!
//! Ids are strings (`usr-…`, `tok-…`, `sb-…`), times are Unix milliseconds (`i64`). All
//! tables are `STRICT`. Migrations are numbered files (`0001_accounts.sql`, …) embedded in
//! the binary and run on open under a `flock` on `<db>-lock` (so two processes opening a
//! fresh file do not both apply them); an applied migration is never edited (sqlx checks
//! its checksum on open), a change is a new file. A database migrated by a newer build is
//! refused rather than used.
//!
//! # Durability
//!
//! WAL mode, `foreign_keys = ON`, `synchronous = NORMAL` by default: every call that
//! returned `Ok` survives a `kill -9` of the process; on power loss the last commits can be
//! lost but the file stays consistent ([`Synchronous::Full`] closes that window). The
//! reasoning is in [`sqlite`].
//!
//! `sandboxes.owner` has no foreign key on purpose: [`RecordStore::put`] must store any
//! record it is given (the record is written before the first side effect, and refusing
//! it would leave a sandbox the control plane cannot see), and audit entries and failed
//! records outlive the user they name. [`Store::delete_user`] refuses while the user
//! still owns sandbox records.
//!
//! # Leases
//!
//! A lease is a name (`sandboxes`, `holder/<holder>`, ...) that at most one holder has at
//! a time, until an expiry on the store's clock. It replaces the runtime's cross-process
//! file lock (`records.lock`), so several processes, and several control planes on one
//! database, take turns at work that must not run twice at once.
//!
//! - [`acquire_lease`]`(name, holder, ttl)` is one atomic step. It takes the lease when
//!   there is none, when it has expired, or when `holder` already has it (a renewal: the
//!   expiry becomes now + `ttl`, which extends it for any `ttl` longer than the time
//!   left). It returns the lease as it stands afterwards: the caller has it exactly when
//!   `lease.holder == holder`; otherwise the lease names the current holder and its
//!   expiry, unchanged. Of any number of concurrent acquirers of a free lease, one gets it.
//! - A lease has expired once now ≥ `expires_at_ms`. An expired lease is free for anyone,
//!   [`get_lease`] answers `None` for it, and the store may delete its row.
//! - [`release_lease`] frees the lease only if `holder` has it; from anyone else, or for
//!   an unknown name, it does nothing and succeeds.
//! - `ttl` is rounded up to whole milliseconds and saturates (a `Duration::MAX` lease
//!   expires at `i64::MAX` ms); a zero `ttl` grants a lease that has already expired.
//!   Names and holders are 1 to [`MAX_LEASE_FIELD_BYTES`] bytes (`Invalid` otherwise).
//! - A holder keeps a lease by renewing it well before it expires (e.g. every third of the
//!   ttl) and stops the guarded work as soon as a renewal names another holder: a holder
//!   that stalls past its expiry may overlap with the next one, which is what the expiry
//!   is for (a holder that died never releases).
//!
//! "Now" is the store's [`Clock`]. Every process on one SQLite file runs on one host and so
//! reads one clock; [`PostgresStore`], shared by several hosts, takes its time from the
//! database server (`clock_timestamp()`) to keep that property.
//!
//! [`LeaseStore`]: sandlab_core::LeaseStore
//! [`SandboxRecord`]: sandlab_core::SandboxRecord
//! [`acquire_lease`]: sandlab_core::LeaseStore::acquire_lease
//! [`get_lease`]: sandlab_core::LeaseStore::get_lease
//! [`release_lease`]: sandlab_core::LeaseStore::release_lease
//!
//! # Secrets
//!
//! Passwords are stored as argon2id hashes (see [`password`]). API token secrets
//! (`sl_` + 64 hex digits) and session cookie secrets (64 hex digits) carry 256 random
//! bits, so a single SHA-256 is enough to store them: only the hash is kept and a stolen
//! database does not let anyone log in. Such a secret is returned once, when it is made.

pub mod bus;
mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
pub mod identities;
pub mod links;
mod model;
pub mod orgs;
mod page;
pub mod password;
pub mod postgres;
mod rows;
mod secret;
pub mod sqlite;
mod store;
mod store_impl;

pub use bus::{Notice, Subscription};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use identities::{Identity, NewIdentity, NewSsoLogin, SsoLogin};
pub use links::{Invite, LinkRefusal, NewInvite, PasswordReset};
pub use model::SessionTask;
pub use model::{
    actions, normalize_username, validate_token_name, ApiToken, AuditEntry, HandOver, LabSession,
    LabSessionState, LoginSession, NewPortGrant, NewSubmission, NewUser, PortGrant, PortGrantKind,
    Role, SessionNode, Submission, SubmissionState, User, UserUpdate, MAX_AUDIT_DETAIL_BYTES,
    MAX_AUDIT_TARGET_CHARS, MAX_LEASE_FIELD_BYTES, MAX_PORT_GRANT_TTL, MAX_SESSIONS_PER_USER,
    MAX_SHARES_PER_SANDBOX, MAX_SUBMISSION_OWNER_BYTES, MAX_SUBMISSION_REQUEST_BYTES,
    MAX_TOKENS_PER_USER, MAX_TOKEN_NAME_CHARS, MAX_USERNAME_LEN,
};
pub use orgs::{
    validate_org_slug, Membership, NewOrg, Org, OrgFull, OrgLimits, OrgMember, OrgRole, OrgUpdate,
};
pub use page::{Page, PageRequest};
pub use postgres::{PostgresOptions, PostgresStore};
/// [`Store`]'s record supertrait, for callers that hold a [`SqliteStore`] and call
/// `put`/`get`/`list`/`delete` on it (the CLI's tests do).
pub use sandlab_core::RecordStore;
pub use secret::TOKEN_PREFIX;
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use store::Store;

/// Which store a database URL names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://<path>`: the SQLite file at `<path>` (`sqlite:///var/lib/sandlab/x.db`).
    Sqlite(std::path::PathBuf),
    /// `postgres://…` or `postgresql://…`, passed on to [`PostgresStore::open`] whole.
    Postgres(String),
}

impl std::str::FromStr for DatabaseUrl {
    type Err = Error;

    fn from_str(url: &str) -> Result<DatabaseUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if !path.is_empty() && !path.contains('?') {
                return Ok(DatabaseUrl::Sqlite(path.into()));
            }
        }
        // Never echo the URL: it may carry a password.
        Err(Error::Invalid(
            "The database URL must be sqlite://<path of the file> or postgres://user@host/database"
                .into(),
        ))
    }
}

/// Opens the store a database URL names (see [`DatabaseUrl`]) and brings its schema up to
/// date.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    Ok(match url.parse::<DatabaseUrl>()? {
        DatabaseUrl::Sqlite(path) => std::sync::Arc::new(SqliteStore::open(&path).await?),
        DatabaseUrl::Postgres(url) => std::sync::Arc::new(PostgresStore::open(&url).await?),
    })
}
