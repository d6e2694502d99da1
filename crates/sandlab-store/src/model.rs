//! The records the store hands out, and the rules for what callers hand in.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Longest username, in bytes.
pub const MAX_USERNAME_LEN: usize = 64;
/// Longest API token name, in characters.
pub const MAX_TOKEN_NAME_CHARS: usize = 64;
/// API tokens one user may hold at once.
pub const MAX_TOKENS_PER_USER: u64 = 100;
/// Login sessions kept per user; creating one more drops the oldest.
pub const MAX_SESSIONS_PER_USER: u64 = 50;
/// Largest audit `detail`, in bytes of JSON; larger details are stored truncated.
pub const MAX_AUDIT_DETAIL_BYTES: usize = 4096;
/// Longest audit `target`, in characters; longer targets are cut.
pub const MAX_AUDIT_TARGET_CHARS: usize = 256;
/// Longest lease name and lease holder, in bytes.
pub const MAX_LEASE_FIELD_BYTES: usize = 256;

/// What a user may do (SPEC section 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Learner,
    Author,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Learner => "learner",
            Role::Author => "author",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        match s {
            "learner" => Ok(Role::Learner),
            "author" => Ok(Role::Author),
            "admin" => Ok(Role::Admin),
            _ => Err(Error::Invalid(
                "A role is one of learner, author and admin".into(),
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user account. The password hash never leaves the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    /// Lowercase, `[a-z0-9_.-]{1,64}`.
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at_ms: i64,
}

/// What [`crate::Store::create_user`] needs.
#[derive(Clone)]
pub struct NewUser {
    /// Normalised with [`normalize_username`].
    pub username: String,
    /// Plain text; hashed with argon2id before it is stored.
    pub password: String,
    pub role: Role,
}

impl fmt::Debug for NewUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct UserUpdate {
    pub role: Option<Role>,
    /// Disabling a user ends their login sessions; their tokens fail while disabled.
    pub disabled: Option<bool>,
    /// A new password (plain text); setting it ends the user's login sessions.
    pub password: Option<String>,
}

impl fmt::Debug for UserUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserUpdate")
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// An API token's record; the secret itself is returned once by
/// [`crate::Store::create_token`] and never stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub created_at_ms: i64,
    /// Updated on use, at most once a minute.
    pub last_used_at_ms: Option<i64>,
}

/// A browser login session. The cookie secret is returned once by
/// [`crate::Store::create_session`]; `id` is its SHA-256 (hex), safe to log.
#[derive(Clone, PartialEq, Eq)]
pub struct LoginSession {
    pub id: String,
    pub user_id: String,
    /// The value the browser must echo in `X-CSRF-Token` (and the `sandlab_csrf` cookie).
    pub csrf_token: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Updated on use, at most once a minute.
    pub last_seen_ms: i64,
}

impl LoginSession {
    /// Compares a presented CSRF token with this session's in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(self.csrf_token.as_bytes().ct_eq(presented.as_bytes()))
    }
}

impl fmt::Debug for LoginSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginSession")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("csrf_token", &"<redacted>")
            .field("created_at_ms", &self.created_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .finish()
    }
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Increases with every entry: the log's order.
    pub id: i64,
    pub at_ms: i64,
    /// The acting user's id; `None` for the system or an unknown caller.
    pub actor: Option<String>,
    /// One of [`actions`] (or another `[a-z0-9_.]{1,64}` name).
    pub action: String,
    /// What was acted on: a sandbox id, a user id, a username tried at login, ...
    pub target: Option<String>,
    /// A JSON value of at most [`MAX_AUDIT_DETAIL_BYTES`].
    pub detail: serde_json::Value,
}

/// A learner's running playground of one lab. The checker runs on one control plane, the
/// session's `runner`, which keeps `tasks` current here so every replica can show them;
/// what was done is kept with [`crate::Store::mark_task_done`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LabSession {
    /// `ls-` + 12 base32 characters.
    pub id: String,
    pub owner: String,
    pub lab: String,
    pub state: LabSessionState,
    pub reason: Option<String>,
    pub nodes: Vec<SessionNode>,
    pub created_at_ms: i64,
    pub deadline_ms: i64,
    /// The process running the session's checker (a `Holder` string); `None` for none yet.
    /// Written by [`crate::Store::put_lab_session`] and moved by
    /// [`crate::Store::take_lab_session`].
    pub runner: Option<String>,
    /// The tasks' states as the runner last stored them, in the lab's order.
    pub tasks: Vec<SessionTask>,
}

/// A lab session handed from one owner to another ([`crate::Store::hand_over_lab_session`]):
/// from `from` to `to`, with a new creation time and deadline, while `runner` runs it.
#[derive(Clone, Copy, Debug)]
pub struct HandOver<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub runner: &'a str,
    pub created_at_ms: i64,
    pub deadline_ms: i64,
}

/// One task of a stored lab session; `state` is the server's word for it (`pending`,
/// `done`, ...), opaque to the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTask {
    pub id: String,
    pub state: String,
}

/// Where a lab session is in its life; stored (and shown by the API) as the lowercase
/// word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabSessionState {
    /// Its sandboxes are being created or its init tasks run.
    Starting,
    /// The init tasks passed; the checked tasks are being watched.
    Ready,
    /// A node could not start or an init task failed.
    Failed,
    /// Stopped, timed out or gone; its sandboxes are removed.
    Ended,
}

impl LabSessionState {
    pub fn as_str(self) -> &'static str {
        match self {
            LabSessionState::Starting => "starting",
            LabSessionState::Ready => "ready",
            LabSessionState::Failed => "failed",
            LabSessionState::Ended => "ended",
        }
    }

    /// Whether the session is over (failed or ended): nothing runs for it any more.
    pub fn is_over(self) -> bool {
        matches!(self, LabSessionState::Failed | LabSessionState::Ended)
    }
}

impl FromStr for LabSessionState {
    type Err = Error;
    fn from_str(s: &str) -> Result<LabSessionState> {
        match s {
            "starting" => Ok(LabSessionState::Starting),
            "ready" => Ok(LabSessionState::Ready),
            "failed" => Ok(LabSessionState::Failed),
            "ended" => Ok(LabSessionState::Ended),
            _ => Err(Error::Invalid(
                "A lab session state is one of starting, ready, failed and ended".into(),
            )),
        }
    }
}

impl fmt::Display for LabSessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node of a session's playground and the sandbox running it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionNode {
    pub name: String,
    pub sandbox: String,
}

/// Audit action names.
pub mod actions {
    pub const AUTH_LOGIN: &str = "auth.login";
    pub const AUTH_LOGIN_FAILED: &str = "auth.login_failed";
    pub const AUTH_LOGOUT: &str = "auth.logout";
    pub const TOKEN_CREATE: &str = "token.create";
    pub const TOKEN_DELETE: &str = "token.delete";
    pub const USER_CREATE: &str = "user.create";
    pub const USER_UPDATE: &str = "user.update";
    pub const SANDBOX_CREATE: &str = "sandbox.create";
    pub const SANDBOX_DELETE: &str = "sandbox.delete";
    pub const SANDBOX_EXEC: &str = "sandbox.exec";
    pub const SANDBOX_EXPIRE: &str = "sandbox.expire";
    pub const LAB_SESSION_START: &str = "lab.session_start";
    pub const PORT_SHARE: &str = "port.share";
    pub const PORT_UNSHARE: &str = "port.unshare";
    pub const AUTH_SIGNUP: &str = "auth.signup";
    pub const INVITE_CREATE: &str = "invite.create";
    pub const INVITE_DELETE: &str = "invite.delete";
    pub const PASSWORD_CHANGE: &str = "password.change";
    pub const PASSWORD_RESET_CREATE: &str = "password.reset_create";
    pub const PASSWORD_RESET: &str = "password.reset";
    pub const AUTH_SSO_LOGIN: &str = "auth.sso_login";
    pub const AUTH_SSO_SIGNUP: &str = "auth.sso_signup";
    pub const AUTH_SSO_LINK: &str = "auth.sso_link";
    pub const AUTH_SSO_FAILED: &str = "auth.sso_failed";
    pub const ORG_CREATE: &str = "org.create";
    pub const ORG_UPDATE: &str = "org.update";
    pub const ORG_DELETE: &str = "org.delete";
    pub const ORG_MEMBER_SET: &str = "org.member_set";
    pub const ORG_MEMBER_REMOVE: &str = "org.member_remove";
}

const USERNAME_RULE: &str =
    "A username is 1 to 64 characters of a-z, 0-9, '_', '.' and '-' (upper case is folded)";

/// Folds ASCII upper case and checks the username rule `[a-z0-9_.-]{1,64}`.
pub fn normalize_username(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_USERNAME_LEN
        && name
            .bytes()
            .map(|b| b.to_ascii_lowercase())
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'));
    if ok {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(Error::Invalid(USERNAME_RULE.into()))
    }
}

/// Checks an API token name: 1 to 64 characters, no control characters, not only spaces.
pub fn validate_token_name(name: &str) -> Result<()> {
    let chars = name.chars().count();
    if chars == 0
        || chars > MAX_TOKEN_NAME_CHARS
        || name.trim().is_empty()
        || name.chars().any(char::is_control)
    {
        return Err(Error::Invalid(
            "A token name is 1 to 64 characters without control characters".into(),
        ));
    }
    Ok(())
}

/// Checks an audit action name: `[a-z0-9_.]{1,64}`.
pub(crate) fn validate_action(action: &str) -> Result<()> {
    let ok = !action.is_empty()
        && action.len() <= 64
        && action
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "An audit action is 1 to 64 characters of a-z, 0-9, '_' and '.'".into(),
        ))
    }
}

/// `s` cut to at most `max` characters.
pub(crate) fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `detail` as JSON text of at most [`MAX_AUDIT_DETAIL_BYTES`]: larger values become
/// `{"truncated": true, "bytes": N, "preview": "<start of the JSON text>"}`.
pub(crate) fn bounded_detail(detail: &serde_json::Value) -> String {
    let text = detail.to_string();
    if text.len() <= MAX_AUDIT_DETAIL_BYTES {
        return text;
    }
    // Escaping can grow the preview up to six times, so shrink until it fits.
    let mut keep = MAX_AUDIT_DETAIL_BYTES;
    loop {
        let preview = truncate_chars(&text, keep);
        let out = serde_json::json!({
            "truncated": true,
            "bytes": text.len(),
            "preview": preview,
        })
        .to_string();
        if out.len() <= MAX_AUDIT_DETAIL_BYTES || keep == 0 {
            return out;
        }
        keep /= 2;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(normalize_username("Alice.B-2_x").unwrap(), "alice.b-2_x");
        assert_eq!(normalize_username(&"a".repeat(64)).unwrap(), "a".repeat(64));
        for bad in ["", " ", "a b", "a/b", "ä", "a\0", "名前", &"a".repeat(65)] {
            assert!(
                matches!(normalize_username(bad), Err(Error::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::Learner, Role::Author, Role::Admin] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn token_names() {
        assert!(validate_token_name("ci").is_ok());
        assert!(validate_token_name("laptop – ünïcode").is_ok());
        assert!(validate_token_name(&"x".repeat(64)).is_ok());
        for bad in ["", "   ", "a\nb", "\u{7f}", &"x".repeat(65)] {
            assert!(validate_token_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn actions_are_valid() {
        for a in [
            actions::AUTH_LOGIN,
            actions::AUTH_LOGIN_FAILED,
            actions::AUTH_LOGOUT,
            actions::TOKEN_CREATE,
            actions::TOKEN_DELETE,
            actions::USER_CREATE,
            actions::USER_UPDATE,
            actions::SANDBOX_CREATE,
            actions::SANDBOX_DELETE,
            actions::SANDBOX_EXEC,
            actions::SANDBOX_EXPIRE,
            actions::LAB_SESSION_START,
        ] {
            assert!(validate_action(a).is_ok(), "{a}");
        }
        assert!(validate_action("Sandbox.Create").is_err());
        assert!(validate_action("").is_err());
    }

    #[test]
    fn lab_session_states_keep_their_stored_words() {
        for (state, word) in [
            (LabSessionState::Starting, "starting"),
            (LabSessionState::Ready, "ready"),
            (LabSessionState::Failed, "failed"),
            (LabSessionState::Ended, "ended"),
        ] {
            assert_eq!(state.as_str(), word);
            assert_eq!(word.parse::<LabSessionState>().unwrap(), state);
            assert_eq!(serde_json::to_value(state).unwrap(), word);
        }
        assert!("Ready".parse::<LabSessionState>().is_err());
    }

    #[test]
    fn big_details_are_truncated_to_the_bound() {
        let small = serde_json::json!({"cmd": ["ls", "-l"]});
        assert_eq!(bounded_detail(&small), small.to_string());
        for big in [
            serde_json::json!({"cmd": "x".repeat(10_000)}),
            serde_json::json!({"cmd": "\"\u{1}".repeat(10_000)}),
            serde_json::json!({"cmd": "é".repeat(10_000)}),
        ] {
            let out = bounded_detail(&big);
            assert!(out.len() <= MAX_AUDIT_DETAIL_BYTES, "{}", out.len());
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(v["truncated"], true);
            assert_eq!(v["bytes"], big.to_string().len());
            assert!(!v["preview"].as_str().unwrap().is_empty());
        }
    }

    #[test]
    fn csrf_comparison() {
        let s = LoginSession {
            id: "h".into(),
            user_id: "u".into(),
            csrf_token: "abc".into(),
            created_at_ms: 0,
            expires_at_ms: 1,
            last_seen_ms: 0,
        };
        assert!(s.csrf_matches("abc"));
        assert!(!s.csrf_matches("abd"));
        assert!(!s.csrf_matches("ab"));
        assert!(!s.csrf_matches(""));
        assert!(!format!("{s:?}").contains("abc"));
    }

    #[test]
    fn submission_states_keep_their_stored_words() {
        for (state, word) in [
            (SubmissionState::Queued, "queued"),
            (SubmissionState::Running, "running"),
            (SubmissionState::Done, "done"),
        ] {
            assert_eq!(state.as_str(), word);
            assert_eq!(SubmissionState::parse(word), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), word);
        }
        assert_eq!(SubmissionState::parse("Done"), None);
    }

    #[test]
    fn submission_tokens_are_hyphenated_lower_case_uuids() {
        assert!(is_submission_token("0b5e2d4c-1f2a-4e5b-9c3d-112233445566"));
        for bad in [
            "",
            "0B5E2D4C-1F2A-4E5B-9C3D-112233445566",
            "0b5e2d4c1f2a4e5b9c3d112233445566",
            "{0b5e2d4c-1f2a-4e5b-9c3d-112233445566}",
            "0b5e2d4c-1f2a-4e5b-9c3d-11223344556",
            "0b5e2d4c-1f2a-4e5b-9c3d-1122334455667",
            "0b5e2d4c-1f2a-4e5b-9c3d_112233445566",
            "0b5e2d4g-1f2a-4e5b-9c3d-112233445566",
            "0b5e2d4c-1f2a-4e5b-9c3d-11223344556é",
        ] {
            assert!(!is_submission_token(bad), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn username_validation_never_panics(s in any::<String>()) {
            match normalize_username(&s) {
                Ok(n) => {
                    prop_assert_eq!(&n, &s.to_ascii_lowercase());
                    prop_assert!(!n.is_empty() && n.len() <= 64);
                    prop_assert!(n.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit() || b"_.-".contains(&b)));
                }
                Err(e) => prop_assert!(matches!(e, Error::Invalid(_))),
            }
        }

        #[test]
        fn usernames_from_the_alphabet_are_accepted(s in "[a-zA-Z0-9_.-]{1,64}") {
            prop_assert_eq!(normalize_username(&s).unwrap(), s.to_ascii_lowercase());
        }

        #[test]
        fn token_name_validation_never_panics(s in any::<String>()) {
            let _ = validate_token_name(&s);
        }
    }
}

/// Most unexpired share links one sandbox may have.
pub const MAX_SHARES_PER_SANDBOX: u64 = 50;
/// Longest a port grant may last.
pub const MAX_PORT_GRANT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a [`PortGrant`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortGrantKind {
    /// A one-time sign-in to the proxy's origin, taken by its first use.
    Code,
    /// The proxy-origin cookie of a signed-in user.
    Session,
    /// A public link to one port.
    Share,
}

impl PortGrantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PortGrantKind::Code => "code",
            PortGrantKind::Session => "session",
            PortGrantKind::Share => "share",
        }
    }

    pub fn parse(s: &str) -> Option<PortGrantKind> {
        Some(match s {
            "code" => PortGrantKind::Code,
            "session" => PortGrantKind::Session,
            "share" => PortGrantKind::Share,
            _ => return None,
        })
    }
}

/// Access to one port of one sandbox through the port proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGrant {
    /// `pg-` + 16 base32 characters; a share's id in the API.
    pub id: String,
    pub kind: PortGrantKind,
    pub sandbox: String,
    pub port: u16,
    /// Code and session: the user signed in. Share: its creator.
    pub user_id: Option<String>,
    /// Where a code lands or a share opens: an absolute URL path.
    pub path: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A grant to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPortGrant {
    pub kind: PortGrantKind,
    pub sandbox: String,
    pub port: u16,
    pub user_id: Option<String>,
    pub path: String,
    pub ttl: Duration,
}

/// Largest submission request, in bytes of JSON text.
pub const MAX_SUBMISSION_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Longest submission owner, in bytes.
pub const MAX_SUBMISSION_OWNER_BYTES: usize = 256;

/// Where a submission is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmissionState {
    /// Stored, waiting for a worker.
    Queued,
    /// Taken by a worker ([`crate::Store::start_submission`]).
    Running,
    /// Its result is stored ([`crate::Store::finish_submission`]).
    Done,
}

impl SubmissionState {
    /// The stored word: `queued`, `running` or `done`.
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionState::Queued => "queued",
            SubmissionState::Running => "running",
            SubmissionState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<SubmissionState> {
        Some(match s {
            "queued" => SubmissionState::Queued,
            "running" => SubmissionState::Running,
            "done" => SubmissionState::Done,
            _ => return None,
        })
    }
}

/// A code-execution submission of the Judge0-compatible API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// A UUID v4 in its hyphenated lower-case text form (the caller makes it).
    pub token: String,
    /// The user id, or "anonymous".
    pub owner: String,
    /// The process running it (a `Holder` string), moved by
    /// [`crate::Store::take_submission`]; `None` for none.
    pub runner: Option<String>,
    pub state: SubmissionState,
    /// The request as JSON text; opaque to the store (at most
    /// [`MAX_SUBMISSION_REQUEST_BYTES`]; larger is `Invalid`).
    pub request: String,
    /// The result as JSON text once done.
    pub result: Option<String>,
    pub created_at_ms: i64,
    /// When it became done.
    pub finished_at_ms: Option<i64>,
}

/// A submission to create, as [`SubmissionState::Queued`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubmission {
    /// A UUID in its hyphenated lower-case text form (`Invalid` otherwise).
    pub token: String,
    /// The user id, or "anonymous": 1 to [`MAX_SUBMISSION_OWNER_BYTES`] bytes.
    pub owner: String,
    /// JSON text of at most [`MAX_SUBMISSION_REQUEST_BYTES`].
    pub request: String,
    /// The process that will run it (a `Holder` string).
    pub runner: Option<String>,
}

/// Whether `token` is a UUID in its hyphenated lower-case text form
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower-case hex digits).
pub(crate) fn is_submission_token(token: &str) -> bool {
    token.len() == 36
        && token.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => matches!(b, b'0'..=b'9' | b'a'..=b'f'),
        })
}

/// Checks a submission to create: its token's form, its owner and its request's size.
pub(crate) fn validate_new_submission(new: &NewSubmission) -> Result<()> {
    if !is_submission_token(&new.token) {
        return Err(Error::Invalid(format!(
            "A submission token is a UUID in hyphenated lower-case form, not {:?}",
            truncate_chars(&new.token, 64)
        )));
    }
    if new.owner.is_empty() || new.owner.len() > MAX_SUBMISSION_OWNER_BYTES {
        return Err(Error::Invalid(format!(
            "A submission owner is 1 to {MAX_SUBMISSION_OWNER_BYTES} bytes"
        )));
    }
    if new.request.len() > MAX_SUBMISSION_REQUEST_BYTES {
        return Err(Error::Invalid(format!(
            "A submission request is at most {MAX_SUBMISSION_REQUEST_BYTES} bytes"
        )));
    }
    Ok(())
}
