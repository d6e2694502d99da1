//! The [`Store`] trait: everything the HTTP handlers ask of the database.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sandlab_core::{LeaseStore, RecordStore, SandboxId, SandboxRecord};

use crate::error::Result;
use crate::model::{
    ApiToken, AuditEntry, HandOver, LabSession, LoginSession, NewPortGrant, NewSubmission, NewUser,
    PortGrant, Submission, User, UserUpdate,
};
use crate::page::{Page, PageRequest};

/// The control plane's store. Every method is one atomic step: it either happens whole or
/// not at all, and once it returns `Ok` it survives a crash of the process (see
/// [`crate::sqlite`] for what survives a power loss).
///
/// It is also the runtime's [`RecordStore`] for sandbox records and its [`LeaseStore`]
/// (both defined in `sandlab-core`); [`Store::records`] and [`Store::leases`] hand the same
/// store to the `SandboxManager`, so the records it writes are the ones the API lists and
/// every control plane on one database shares its leases. The conformance suite
/// (`conformance` feature) checks every method against any implementation.
#[async_trait]
pub trait Store: RecordStore + LeaseStore {
    /// This store as the runtime's record store.
    fn records(self: Arc<Self>) -> Arc<dyn RecordStore>;
    /// This store as the runtime's lease store.
    fn leases(self: Arc<Self>) -> Arc<dyn LeaseStore>;

    /// Whether a write would succeed now, by writing: `Full` while the disk is full,
    /// `Unavailable` while the database is read-only or failing. Readiness follows it.
    async fn check_writable(&self) -> Result<()>;

    // ----- users

    /// Creates an enabled user. The username is normalised ([`crate::normalize_username`]),
    /// the password checked ([`crate::password::validate_password`]) and hashed.
    /// `Conflict` when the username is taken, in any case.
    async fn create_user(&self, new: NewUser) -> Result<User>;
    /// `NotFound` when there is no such user.
    async fn get_user(&self, id: &str) -> Result<User>;
    /// Looks the username up after normalising it; `NotFound` when there is none.
    async fn get_user_by_name(&self, username: &str) -> Result<User>;
    /// Users in creation order.
    async fn list_users(&self, page: PageRequest) -> Result<Page<User>>;
    /// Applies `update` and returns the user as stored. Disabling a user or setting a
    /// password ends the user's login sessions. `LastAdmin` when it would leave no enabled
    /// admin.
    async fn update_user(&self, id: &str, update: UserUpdate) -> Result<User>;
    /// Deletes a user with their tokens and sessions. `LastAdmin` for the last enabled
    /// admin; `Conflict` while the user owns sandbox records (remove those first).
    async fn delete_user(&self, id: &str) -> Result<()>;
    /// Enabled admins.
    async fn count_admins(&self) -> Result<u64>;
    /// The user whose username and password these are, if enabled. Takes as long for an
    /// unknown username as for a wrong password.
    async fn verify_login(&self, username: &str, password: &str) -> Result<Option<User>>;

    // ----- API tokens

    /// Creates a token for `user_id`; returns its record and its secret, which is not
    /// stored and cannot be shown again. `NotFound` for an unknown user, `Invalid` for a bad
    /// name, `Conflict` past [`crate::MAX_TOKENS_PER_USER`].
    async fn create_token(&self, user_id: &str, name: &str) -> Result<(ApiToken, String)>;
    /// The user's tokens in creation order.
    async fn list_tokens(&self, user_id: &str) -> Result<Vec<ApiToken>>;
    /// Revokes one of the user's tokens; `NotFound` if the user has no such token.
    async fn delete_token(&self, user_id: &str, token_id: &str) -> Result<()>;
    /// The enabled user a token secret belongs to, with the token's id; records the use.
    async fn authenticate_token(&self, secret: &str) -> Result<Option<(User, String)>>;

    // ----- browser login sessions

    /// Starts a session for an enabled user lasting `ttl`; returns it with the cookie
    /// secret, which is not stored. Keeps at most [`crate::MAX_SESSIONS_PER_USER`] per user
    /// (the oldest go).
    async fn create_session(&self, user_id: &str, ttl: Duration) -> Result<(LoginSession, String)>;
    /// The enabled user and the unexpired session a cookie secret belongs to; records the
    /// use. The expiry is fixed at creation (no sliding).
    async fn authenticate_session(&self, secret: &str) -> Result<Option<(User, LoginSession)>>;
    /// Ends the session with this cookie secret; succeeds when there is none.
    async fn delete_session(&self, secret: &str) -> Result<()>;
    /// Deletes expired sessions; returns how many.
    async fn delete_expired_sessions(&self) -> Result<u64>;

    // ----- sign-up invitations and passwords (see [`crate::links`])

    /// Creates an invitation; returns it with its secret (`inv_` + 64 hex digits), which is
    /// not stored. `Invalid` for uses outside 1..=[`crate::links::MAX_INVITE_USES`] or a ttl
    /// that is zero or over [`crate::links::MAX_INVITE_TTL`]; `NotFound` for an unknown
    /// creator.
    async fn create_invite(&self, new: crate::links::NewInvite) -> Result<(crate::Invite, String)>;
    /// Every invitation (expired and used-up ones too), oldest first.
    async fn list_invites(&self, page: PageRequest) -> Result<Page<crate::Invite>>;
    /// Deletes an invitation; `NotFound` if there is none.
    async fn delete_invite(&self, id: &str) -> Result<()>;
    /// Signs up with an invitation: in one transaction, spends one of its uses and creates
    /// an enabled user with its role. `Ok(Err(why))` when the invitation cannot be used
    /// (nothing changes); `Invalid` for a bad username or password, `Conflict` for a taken
    /// username (no use spent). Of concurrent redemptions, no more succeed than uses remain.
    async fn redeem_invite(
        &self,
        secret: &str,
        username: &str,
        password: String,
    ) -> Result<std::result::Result<(User, crate::Invite), crate::LinkRefusal>>;
    /// Creates a password reset for an enabled user, valid for
    /// [`crate::links::PASSWORD_RESET_TTL`], voiding the user's older one; returns it with its
    /// secret (`rst_` + 64 hex digits), which is not stored. `NotFound` for an unknown user
    /// or creator, `Invalid` for a disabled user.
    async fn create_password_reset(
        &self,
        user_id: &str,
        created_by: Option<&str>,
    ) -> Result<(crate::PasswordReset, String)>;
    /// Uses a reset once: sets the user's password and ends all their login sessions.
    /// `Ok(Err(why))` for an unknown, expired or used link or a disabled user (nothing
    /// changes); `Invalid` for a password that breaks the rule.
    async fn redeem_password_reset(
        &self,
        secret: &str,
        password: String,
    ) -> Result<std::result::Result<User, crate::LinkRefusal>>;
    /// Sets a user's password and ends their login sessions except `keep_session` (a
    /// [`LoginSession`] id). `NotFound` for an unknown user, `Invalid` for a password that
    /// breaks the rule.
    async fn change_password(
        &self,
        user_id: &str,
        password: String,
        keep_session: Option<&str>,
    ) -> Result<()>;

    // ----- single sign-on (see [`crate::identities`])

    /// Remembers a sign-in sent to a provider under the SHA-256 of `state` until
    /// `new.ttl` passes; deletes expired ones on the way. `Invalid` for a `state` under 16
    /// bytes, a zero ttl or one over [`crate::identities::MAX_SSO_LOGIN_TTL`].
    async fn begin_sso_login(&self, state: &str, new: crate::NewSsoLogin) -> Result<()>;
    /// Takes the unexpired sign-in of `state`: it is deleted, and returned if it was there.
    async fn take_sso_login(&self, state: &str) -> Result<Option<crate::SsoLogin>>;
    /// The user `identity` is linked to, if any (enabled or not); records the sign-in and
    /// the identity's email as the provider gives it now.
    async fn sso_sign_in(&self, identity: crate::NewIdentity) -> Result<Option<User>>;
    /// The oldest user with an identity whose email, verified by its provider, is `email`
    /// (compared without regard to case).
    async fn user_by_verified_email(&self, email: &str) -> Result<Option<User>>;
    /// Links `identity` to a user. `NotFound` for an unknown user, `Conflict` when the
    /// identity is linked already (to anyone) or the user has another identity at the same
    /// provider (a different subject there is a different person).
    async fn link_identity(
        &self,
        user_id: &str,
        identity: crate::NewIdentity,
    ) -> Result<crate::Identity>;
    /// Creates an enabled user without a password, linked to `identity`, in one
    /// transaction. `Invalid` for a bad username, `Conflict` when the username is taken or
    /// the identity is linked already (nothing is created).
    async fn create_sso_user(
        &self,
        identity: crate::NewIdentity,
        username: &str,
        role: crate::Role,
    ) -> Result<(User, crate::Identity)>;

    // ----- port proxy grants

    /// Creates a grant lasting `ttl` (at most [`crate::MAX_PORT_GRANT_TTL`]); returns it
    /// with its secret, which is not stored. `Invalid` for a port of 0, a path that is not
    /// absolute or a zero TTL; `Conflict` for a share past
    /// [`crate::MAX_SHARES_PER_SANDBOX`]. Expired grants are deleted on the way.
    async fn create_port_grant(&self, new: NewPortGrant) -> Result<(PortGrant, String)>;
    /// Takes an unexpired one-time code for `port` of `sandbox`: it is deleted, and
    /// returned if it was there. A code for another port is left alone (and not returned).
    async fn redeem_port_code(
        &self,
        secret: &str,
        sandbox: &str,
        port: u16,
    ) -> Result<Option<PortGrant>>;
    /// The unexpired session or share a secret belongs to; `None` also when the user it
    /// names is disabled or gone.
    async fn authenticate_port_grant(&self, secret: &str) -> Result<Option<PortGrant>>;
    /// A sandbox's unexpired share links, oldest first.
    async fn list_port_shares(&self, sandbox: &str) -> Result<Vec<PortGrant>>;
    /// Revokes a share of `sandbox`; `NotFound` if it has no such share.
    async fn delete_port_share(&self, sandbox: &str, id: &str) -> Result<()>;

    // ----- code-execution submissions (the Judge0-compatible API)

    /// Creates all of `new` as `Queued`, created now, in one transaction (all or none).
    /// `Conflict` if a token exists (or is given twice); `Invalid` for a token that is not
    /// a hyphenated lower-case UUID, an owner that is empty or over
    /// [`crate::MAX_SUBMISSION_OWNER_BYTES`], or a request over
    /// [`crate::MAX_SUBMISSION_REQUEST_BYTES`]. Returns them in the order of `new`.
    async fn create_submissions(&self, new: &[NewSubmission]) -> Result<Vec<Submission>>;
    /// The submissions with these tokens that exist, in the order of `tokens` (missing ones
    /// left out).
    async fn get_submissions(&self, tokens: &[String]) -> Result<Vec<Submission>>;
    /// Queued → Running. `false` when it is not queued (already taken, done, or gone): of
    /// two workers racing for one submission, one gets `true`.
    async fn start_submission(&self, token: &str) -> Result<bool>;
    /// Queued or Running → Done with `result` (JSON text, opaque to the store) and
    /// `finished_at` now. `false` when it is already done or gone.
    async fn finish_submission(&self, token: &str, result: &str) -> Result<bool>;
    /// Every submission not done (queued or running), oldest first: what a restart must run
    /// again.
    async fn unfinished_submissions(&self) -> Result<Vec<Submission>>;
    /// Deletes one, in any state; `owner` Some(x) deletes only when it is x's. `false` when
    /// nothing was deleted.
    async fn delete_submission(&self, token: &str, owner: Option<&str>) -> Result<bool>;
    /// Deletes done submissions that finished before `before_ms`; returns how many.
    async fn expire_submissions(&self, before_ms: i64) -> Result<u64>;
    /// How many submissions `owner` has stored, in any state, and their bytes (request
    /// and result texts): what a per-owner bound counts.
    async fn submission_usage(&self, owner: &str) -> Result<(u64, u64)>;
    /// Compare-and-swap of an unfinished submission's runner: sets it to `to` only while
    /// it is `from` (`None`: no runner); whether it did. Of several replicas adopting the
    /// submissions of one that died, one gets each.
    async fn take_submission(&self, token: &str, from: Option<&str>, to: &str) -> Result<bool>;

    // ----- sandboxes (written through `RecordStore`, read here for the API)

    /// A sandbox record; with `owner` set, `NotFound` also when another user owns it.
    async fn get_sandbox(&self, id: &SandboxId, owner: Option<&str>) -> Result<SandboxRecord>;
    /// Sandbox records in creation order; only `owner`'s when given (admins pass `None`).
    async fn list_sandboxes(
        &self,
        owner: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<SandboxRecord>>;
    /// `owner`'s sandboxes that hold resources (creating, running, stopping): the quota.
    async fn count_live_sandboxes(&self, owner: &str) -> Result<u64>;

    // ----- organisations (see [`crate::orgs`])

    /// Creates an organisation. `Invalid` for a bad slug, name or cap; `Conflict` when the
    /// slug is taken.
    async fn create_org(&self, new: crate::orgs::NewOrg) -> Result<crate::orgs::Org>;
    /// The organisation with this id (`org-…`) or slug; `NotFound` when there is none.
    async fn get_org(&self, key: &str) -> Result<crate::orgs::Org>;
    /// Every organisation, by slug.
    async fn list_orgs(&self) -> Result<Vec<crate::orgs::Org>>;
    /// Applies `update` to organisation `id` (or slug) and returns it as stored.
    async fn update_org(
        &self,
        id: &str,
        update: crate::orgs::OrgUpdate,
    ) -> Result<crate::orgs::Org>;
    /// Deletes an organisation with its memberships and places (its sandboxes live on,
    /// counted against nobody). `NotFound` when there is none.
    async fn delete_org(&self, id: &str) -> Result<()>;
    /// Adds user `user_id` to organisation `org_id` (id or slug) with `role`, or changes
    /// their role. `NotFound` for an unknown organisation or user.
    async fn set_org_member(
        &self,
        org_id: &str,
        user_id: &str,
        role: crate::orgs::OrgRole,
    ) -> Result<crate::orgs::OrgMember>;
    /// Removes a member; `NotFound` when the user is not a member of organisation `org_id`.
    async fn remove_org_member(&self, org_id: &str, user_id: &str) -> Result<()>;
    /// The members of organisation `org_id`, by username.
    async fn list_org_members(&self, org_id: &str) -> Result<Vec<crate::orgs::OrgMember>>;
    /// The organisations `user_id` belongs to, with their role in each, by slug.
    async fn user_orgs(&self, user_id: &str) -> Result<Vec<crate::orgs::Membership>>;
    /// Counts sandbox `sandbox` (not created yet, or a warm one about to be claimed)
    /// against organisation `org_id` (id or slug) if it has room: in one step, its live
    /// places must be fewer than its `max_sandboxes`. `Ok(Err(full))` when they are not;
    /// `NotFound` for an unknown organisation; `Conflict` when the sandbox has a place.
    async fn take_org_place(
        &self,
        org_id: &str,
        sandbox: &SandboxId,
    ) -> Result<std::result::Result<(), crate::orgs::OrgFull>>;
    /// Moves a place to another sandbox id (a warm sandbox claimed in its stead).
    async fn move_org_place(&self, from: &SandboxId, to: &SandboxId) -> Result<()>;
    /// Frees the place of a create that failed; succeeds when there is none.
    async fn release_org_place(&self, sandbox: &SandboxId) -> Result<()>;
    /// The id of the organisation sandbox `sandbox` counts against, if any.
    async fn sandbox_org(&self, sandbox: &SandboxId) -> Result<Option<String>>;
    /// How many places of organisation `org_id` count now.
    async fn count_org_sandboxes(&self, org_id: &str) -> Result<u64>;

    // ----- lab sessions and progress

    /// Stores a lab session (insert or update of its state, reason, nodes and deadline).
    async fn put_lab_session(&self, session: &LabSession) -> Result<()>;
    /// A lab session; with `owner` set, `NotFound` also when another user owns it.
    async fn get_lab_session(&self, id: &str, owner: Option<&str>) -> Result<LabSession>;
    /// Lab sessions oldest first; only `owner`'s when given.
    async fn list_lab_sessions(&self, owner: Option<&str>) -> Result<Vec<LabSession>>;
    /// The lab sessions not over (starting or ready), oldest first, all of them however
    /// long the history is; only `owner`'s when given.
    async fn open_lab_sessions(&self, owner: Option<&str>) -> Result<Vec<LabSession>>;
    async fn delete_lab_session(&self, id: &str) -> Result<()>;
    /// Compare-and-swap of a session's runner: sets it to `to` only while it is `from`
    /// (`None`: no runner); whether it did. `false` also for an unknown session.
    async fn take_lab_session(&self, id: &str, from: Option<&str>, to: &str) -> Result<bool>;
    /// Compare-and-swap of a session's owner (a warm session handed to a learner): sets
    /// owner, creation time and deadline only while `from` owns it, `runner` runs it and it
    /// is `ready`; whether it did. Nothing else of the record changes.
    async fn hand_over_lab_session(&self, id: &str, hand: &HandOver<'_>) -> Result<bool>;
    /// Records that `user` did checked task `task` of `lab` (idempotent).
    async fn mark_task_done(&self, user: &str, lab: &str, task: &str) -> Result<()>;
    /// The checked tasks of `lab` that `user` has done, in the order they were done.
    async fn done_tasks(&self, user: &str, lab: &str) -> Result<Vec<String>>;
    /// Every `(lab, task)` that `user` has done, by lab.
    async fn all_done_tasks(&self, user: &str) -> Result<Vec<(String, String)>>;
    /// Records that `user` revealed the hint of `task` in `lab` (idempotent).
    async fn reveal_hint(&self, user: &str, lab: &str, task: &str) -> Result<()>;
    /// The tasks of `lab` whose hints `user` revealed.
    async fn revealed_hints(&self, user: &str, lab: &str) -> Result<Vec<String>>;

    // ----- audit log

    /// Appends an entry and returns its id. `action` is `[a-z0-9_.]{1,64}` (see
    /// [`crate::actions`]); a `target` over 256 characters is cut and a `detail` over
    /// [`crate::MAX_AUDIT_DETAIL_BYTES`] is stored truncated, so an oversized input never
    /// keeps an action from being logged.
    async fn audit(
        &self,
        actor: Option<&str>,
        action: &str,
        target: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<i64>;
    /// Entries oldest first.
    async fn list_audit(&self, page: PageRequest) -> Result<Page<AuditEntry>>;

    // ----- the store bus (see [`crate::bus`])

    /// Sends `payload` on `topic` to every subscription that exists now, in any process
    /// sharing this store. `Invalid` for a topic of 0 or over [`crate::bus::MAX_TOPIC_BYTES`]
    /// bytes or a payload over [`crate::bus::MAX_PAYLOAD_BYTES`].
    async fn publish(&self, topic: &str, payload: &str) -> Result<()>;
    /// Notices on `topic` published from when this returns.
    async fn subscribe(&self, topic: &str) -> Result<crate::bus::Subscription>;
}
