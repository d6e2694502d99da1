//! The audit log as the server writes it: one [`AuditEvent`] per thing worth recording,
//! and [`record`], the one function that writes one.
//!
//! Each event names its stored action (one of [`sandlab_store::actions`], so rows written
//! before this type existed still match), its target and its JSON detail. A failed write
//! is logged and never fails the request that caused it.

use sandlab_core::SandboxId;
use sandlab_store::{actions, Role, Store};
use serde_json::{json, Value};

/// Something the audit log records. The actor (a user id, or `None` for the server
/// itself or an unknown caller) is passed to [`record`] beside it.
#[derive(Clone, Copy, Debug)]
pub enum AuditEvent<'a> {
    /// A browser login of `user` from `addr`.
    Login {
        user: &'a str,
        addr: &'a str,
    },
    /// A refused login attempt for `username` (lowercased, at most 64 characters).
    LoginFailed {
        username: &'a str,
        addr: &'a str,
    },
    Logout {
        user: &'a str,
    },
    TokenCreate {
        token: &'a str,
        name: &'a str,
    },
    TokenDelete {
        token: &'a str,
    },
    UserCreate {
        user: &'a str,
        username: &'a str,
        role: Role,
    },
    UserUpdate {
        user: &'a str,
        role: Option<Role>,
        disabled: Option<bool>,
        password_changed: bool,
    },
    SandboxCreate {
        sandbox: &'a SandboxId,
        image: &'a str,
    },
    SandboxDelete {
        sandbox: &'a SandboxId,
    },
    /// `POST /sandboxes/{id}/exec`.
    SandboxExec {
        sandbox: &'a SandboxId,
        cmd: &'a [String],
    },
    /// `POST /execute` (stored as `sandbox.exec` without a target).
    CodeExecute {
        language: &'a str,
        files: usize,
    },
    /// The reaper removed a sandbox at its deadline.
    SandboxExpire {
        sandbox: &'a SandboxId,
    },
    LabSessionStart {
        session: &'a str,
        lab: &'a str,
    },
    /// A public link to a port of a sandbox.
    PortShare {
        sandbox: &'a SandboxId,
        port: u16,
        share: &'a str,
        expires_at_ms: i64,
    },
    PortUnshare {
        sandbox: &'a SandboxId,
        share: &'a str,
    },
    /// A user made their own account (`POST /auth/signup`), with an invitation or not.
    Signup {
        user: &'a str,
        username: &'a str,
        role: Role,
        invite: Option<&'a str>,
        addr: &'a str,
    },
    InviteCreate {
        invite: &'a str,
        role: Role,
        uses: u32,
        expires_at_ms: i64,
    },
    InviteDelete {
        invite: &'a str,
    },
    /// A user changed their own password.
    PasswordChange {
        user: &'a str,
    },
    /// An admin made a password reset link for `user`.
    PasswordResetCreate {
        user: &'a str,
        expires_at_ms: i64,
    },
    /// A reset link set `user`'s password.
    PasswordReset {
        user: &'a str,
        addr: &'a str,
    },
    /// A sign-in through the single sign-on provider `provider` (its `[[auth.oidc]]` name).
    SsoLogin {
        user: &'a str,
        provider: &'a str,
        addr: &'a str,
    },
    /// An account made by a first sign-in through `provider`.
    SsoSignup {
        user: &'a str,
        username: &'a str,
        role: Role,
        provider: &'a str,
        addr: &'a str,
    },
    /// An identity at `provider` linked to `user`'s account by its verified email.
    SsoLink {
        user: &'a str,
        provider: &'a str,
        addr: &'a str,
    },
    /// A refused sign-in through `provider`, with the sentence the browser was shown.
    SsoFailed {
        provider: &'a str,
        reason: &'a str,
        addr: &'a str,
    },
    /// Organisations (`org`: the id; `detail`: what was set, as the API shows it).
    OrgCreate {
        org: &'a str,
        slug: &'a str,
    },
    OrgUpdate {
        org: &'a str,
        detail: &'a Value,
    },
    OrgDelete {
        org: &'a str,
        slug: &'a str,
    },
    /// `user` added to `org` or their role changed.
    OrgMemberSet {
        org: &'a str,
        user: &'a str,
        role: &'a str,
    },
    OrgMemberRemove {
        org: &'a str,
        user: &'a str,
    },
}

impl AuditEvent<'_> {
    /// The stored action name.
    pub fn action(&self) -> &'static str {
        use AuditEvent as E;
        match self {
            E::Login { .. } => actions::AUTH_LOGIN,
            E::LoginFailed { .. } => actions::AUTH_LOGIN_FAILED,
            E::Logout { .. } => actions::AUTH_LOGOUT,
            E::TokenCreate { .. } => actions::TOKEN_CREATE,
            E::TokenDelete { .. } => actions::TOKEN_DELETE,
            E::UserCreate { .. } => actions::USER_CREATE,
            E::UserUpdate { .. } => actions::USER_UPDATE,
            E::SandboxCreate { .. } => actions::SANDBOX_CREATE,
            E::SandboxDelete { .. } => actions::SANDBOX_DELETE,
            E::SandboxExec { .. } | E::CodeExecute { .. } => actions::SANDBOX_EXEC,
            E::SandboxExpire { .. } => actions::SANDBOX_EXPIRE,
            E::LabSessionStart { .. } => actions::LAB_SESSION_START,
            E::PortShare { .. } => actions::PORT_SHARE,
            E::PortUnshare { .. } => actions::PORT_UNSHARE,
            E::Signup { .. } => actions::AUTH_SIGNUP,
            E::InviteCreate { .. } => actions::INVITE_CREATE,
            E::InviteDelete { .. } => actions::INVITE_DELETE,
            E::PasswordChange { .. } => actions::PASSWORD_CHANGE,
            E::PasswordResetCreate { .. } => actions::PASSWORD_RESET_CREATE,
            E::PasswordReset { .. } => actions::PASSWORD_RESET,
            E::SsoLogin { .. } => actions::AUTH_SSO_LOGIN,
            E::SsoSignup { .. } => actions::AUTH_SSO_SIGNUP,
            E::SsoLink { .. } => actions::AUTH_SSO_LINK,
            E::SsoFailed { .. } => actions::AUTH_SSO_FAILED,
            E::OrgCreate { .. } => actions::ORG_CREATE,
            E::OrgUpdate { .. } => actions::ORG_UPDATE,
            E::OrgDelete { .. } => actions::ORG_DELETE,
            E::OrgMemberSet { .. } => actions::ORG_MEMBER_SET,
            E::OrgMemberRemove { .. } => actions::ORG_MEMBER_REMOVE,
        }
    }

    /// What was acted on.
    pub fn target(&self) -> Option<&str> {
        use AuditEvent as E;
        match self {
            E::Login { user, .. } | E::Logout { user } => Some(user),
            E::LoginFailed { username, .. } => Some(username),
            E::TokenCreate { token, .. } | E::TokenDelete { token } => Some(token),
            E::UserCreate { user, .. } | E::UserUpdate { user, .. } => Some(user),
            E::SandboxCreate { sandbox, .. }
            | E::SandboxDelete { sandbox }
            | E::SandboxExec { sandbox, .. }
            | E::SandboxExpire { sandbox }
            | E::PortShare { sandbox, .. }
            | E::PortUnshare { sandbox, .. } => Some(sandbox.as_str()),
            E::CodeExecute { .. } => None,
            E::LabSessionStart { session, .. } => Some(session),
            E::Signup { user, .. }
            | E::PasswordChange { user }
            | E::PasswordResetCreate { user, .. }
            | E::PasswordReset { user, .. } => Some(user),
            E::SsoLogin { user, .. } | E::SsoSignup { user, .. } | E::SsoLink { user, .. } => {
                Some(user)
            }
            E::SsoFailed { provider, .. } => Some(provider),
            E::InviteCreate { invite, .. } | E::InviteDelete { invite } => Some(invite),
            E::OrgCreate { org, .. }
            | E::OrgUpdate { org, .. }
            | E::OrgDelete { org, .. }
            | E::OrgMemberSet { org, .. }
            | E::OrgMemberRemove { org, .. } => Some(org),
        }
    }

    /// The event's JSON detail (`null` when it has none).
    pub fn detail(&self) -> Value {
        use AuditEvent as E;
        match *self {
            E::Login { addr, .. } | E::LoginFailed { addr, .. } => json!({"addr": addr}),
            E::TokenCreate { name, .. } => json!({"name": name}),
            E::UserCreate { username, role, .. } => json!({"username": username, "role": role}),
            E::UserUpdate {
                role,
                disabled,
                password_changed,
                ..
            } => json!({
                "role": role,
                "disabled": disabled,
                "password_changed": password_changed,
            }),
            E::SandboxCreate { image, .. } => json!({"image": image}),
            E::SandboxExec { cmd, .. } => json!({"cmd": cmd}),
            E::CodeExecute { language, files } => json!({"language": language, "files": files}),
            E::LabSessionStart { lab, .. } => json!({"lab": lab}),
            E::PortShare {
                port,
                share,
                expires_at_ms,
                ..
            } => json!({"port": port, "share": share, "expires_at_ms": expires_at_ms}),
            E::PortUnshare { share, .. } => json!({"share": share}),
            E::Signup {
                username,
                role,
                invite,
                addr,
                ..
            } => json!({"username": username, "role": role, "invite": invite, "addr": addr}),
            E::InviteCreate {
                role,
                uses,
                expires_at_ms,
                ..
            } => json!({"role": role, "uses": uses, "expires_at_ms": expires_at_ms}),
            E::PasswordResetCreate { expires_at_ms, .. } => json!({"expires_at_ms": expires_at_ms}),
            E::PasswordReset { addr, .. } => json!({"addr": addr}),
            E::SsoLogin { provider, addr, .. } | E::SsoLink { provider, addr, .. } => {
                json!({"provider": provider, "addr": addr})
            }
            E::SsoSignup {
                username,
                role,
                provider,
                addr,
                ..
            } => json!({"username": username, "role": role, "provider": provider, "addr": addr}),
            E::SsoFailed { reason, addr, .. } => json!({"reason": reason, "addr": addr}),
            E::OrgCreate { slug, .. } | E::OrgDelete { slug, .. } => json!({"slug": slug}),
            E::OrgUpdate { detail, .. } => detail.clone(),
            E::OrgMemberSet { user, role, .. } => json!({"user": user, "role": role}),
            E::OrgMemberRemove { user, .. } => json!({"user": user}),
            E::Logout { .. }
            | E::TokenDelete { .. }
            | E::SandboxDelete { .. }
            | E::SandboxExpire { .. }
            | E::InviteDelete { .. }
            | E::PasswordChange { .. } => Value::Null,
        }
    }
}

/// Appends `event` by `actor` to the audit log; a failed write is logged, not returned.
pub async fn record(store: &dyn Store, actor: Option<&str>, event: AuditEvent<'_>) {
    let action = event.action();
    if let Err(e) = store
        .audit(actor, action, event.target(), event.detail())
        .await
    {
        tracing::warn!(
            audit.action = action,
            audit.target = event.target(),
            error = %sandlab_core::error_chain(&e),
            "could not write the audit log"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_the_stored_actions_and_details() {
        let id = SandboxId::generate();
        let cmd = vec!["ls".to_owned()];
        let exec = AuditEvent::SandboxExec {
            sandbox: &id,
            cmd: &cmd,
        };
        assert_eq!(exec.action(), "sandbox.exec");
        assert_eq!(exec.target(), Some(id.as_str()));
        assert_eq!(exec.detail(), json!({"cmd": ["ls"]}));
        let code = AuditEvent::CodeExecute {
            language: "python",
            files: 2,
        };
        assert_eq!((code.action(), code.target()), ("sandbox.exec", None));
        let expire = AuditEvent::SandboxExpire { sandbox: &id };
        assert_eq!(expire.action(), "sandbox.expire");
        assert_eq!(expire.detail(), Value::Null);
        let update = AuditEvent::UserUpdate {
            user: "usr-a",
            role: Some(Role::Admin),
            disabled: None,
            password_changed: true,
        };
        assert_eq!(
            update.detail(),
            json!({"role": "admin", "disabled": null, "password_changed": true})
        );
        let start = AuditEvent::LabSessionStart {
            session: "ls-x",
            lab: "git",
        };
        assert_eq!(start.action(), "lab.session_start");
    }
}
