//! The control plane's store: users, API tokens, browser login sessions, sandbox records
//! and the audit log.
//!
//! HTTP handlers reach it through the [`Store`] trait, so a Postgres implementation can
//! follow without touching them; [`SqliteStore`] is the first implementation. The same
//! object is the runtime's [`RecordStore`], so the `SandboxManager` writes the records the
//! API lists (see [`Store::records`]).
//!
//! # Schema (`migrations/`, applied in order on open)
//!
//! | table | columns | notes |
//! |---|---|---|
//! | `users` | `id`, `username`, `password_hash`, `role`, `disabled`, `created_at` | username unique without regard to case; argon2id PHC string |
//! | `api_tokens` | `id`, `user_id` → users (cascade), `name`, `token_hash`, `created_at`, `last_used_at` | only the SHA-256 of the secret |
//! | `login_sessions` | `id` = SHA-256 of the cookie secret, `user_id` → users (cascade), `csrf_token`, `created_at`, `expires_at`, `last_seen` | |
//! | `sandboxes` | the runtime's `SandboxRecord`: `id`, `state`, `reason`, `owner`, `image`, `limits` (JSON), `hostname`, `driver`, `network_slot`, `ipv4`, `ipv6`, `created_at`, `deadline`, `creator_pid`, `owner_pid` | `owner` is a user id without a foreign key (below); one sandbox per egress slot |
//! | `audit_log` | `id` (autoincrement), `at`, `actor`, `action`, `target`, `detail` (JSON ≤ 4 KiB) | append-only, enforced by triggers |
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
//! `sandboxes.owner` has no foreign key on purpose: the runtime's `RecordStore::put` must
//! store any record it is given (the record is written before the first side effect, and
//! refusing it would leave a sandbox the control plane cannot see), and audit entries and
//! failed records outlive the user they name. [`Store::delete_user`] refuses while the user
//! still owns sandbox records.
//!
//! # Secrets
//!
//! Passwords are stored as argon2id hashes (see [`password`]). API token secrets
//! (`sl_` + 64 hex digits) and session cookie secrets (64 hex digits) carry 256 random
//! bits, so a single SHA-256 is enough to store them: only the hash is kept and a stolen
//! database does not let anyone log in. Such a secret is returned once, when it is made.

mod clock;
mod error;
mod model;
mod page;
pub mod password;
mod secret;
pub mod sqlite;
mod store;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use model::{
    actions, normalize_username, validate_token_name, ApiToken, AuditEntry, LabSession,
    LoginSession, NewUser, Role, SessionNode, User, UserUpdate, MAX_AUDIT_DETAIL_BYTES,
    MAX_AUDIT_TARGET_CHARS, MAX_SESSIONS_PER_USER, MAX_TOKENS_PER_USER, MAX_TOKEN_NAME_CHARS,
    MAX_USERNAME_LEN,
};
pub use page::{Page, PageRequest};
pub use sandlab_runtime::records::{RecordStore, SandboxRecord};
pub use secret::TOKEN_PREFIX;
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use store::Store;
