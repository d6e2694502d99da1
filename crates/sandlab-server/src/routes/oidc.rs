//! Signing in through a single sign-on provider (see [`crate::oidc`] for the protocol):
//! `GET /auth/oidc/{name}/start` sends the browser to the provider, and
//! `GET /auth/oidc/{name}/callback` brings it back signed in.
//!
//! Both answer with redirects, never an error page: a refusal goes to
//! `/login?error=<one sentence>`, which the sign-in page shows.
//!
//! Both count against the per-address login limit (`server.login_rate`). A refused
//! callback is audited (`auth.sso_failed`) only once its `state` proved it this browser's
//! sign-in at a configured provider; before that, nothing it names is worth recording.
//!
//! Who gets an account: the identity's own account first; else, when the provider has
//! `link_by_email`, the account with the same email verified by a provider, unless that
//! account has another identity at this provider (then the sign-in is refused); else a
//! new account (role from `role_claim`/`roles`, or `default_role`) when the provider has
//! `signup` (true for OpenID providers unless told, false for the GitHub preset).
//! `server.signup` governs password sign-ups only: configuring a provider is the
//! operator's permission for its users.

use axum::extract::{Path, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sandlab_store::{Error as StoreError, NewIdentity, NewSsoLogin, SsoLogin, User};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use utoipa::IntoParams;

use crate::audit::AuditEvent;
use crate::auth;
use crate::extract::ClientAddr;
use crate::oidc::{self, Person, Provider, Secrets};
use crate::state::AppState;

/// The cookie binding a sign-in to the browser that started it.
const SSO_COOKIE: &str = "sandlab_sso";
/// How long a sign-in may take at the provider.
const SSO_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// Longest `next` path kept.
const MAX_NEXT: usize = 512;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OidcStartQuery {
    /// A path of this site to open once signed in (default `/`).
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OidcCallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by the provider when it did not sign the person in.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Starts a sign-in: redirects to the provider's sign-in page.
#[utoipa::path(get, path = "/api/v1/auth/oidc/{name}/start", tag = "auth", security(()),
    params(("name" = String, Path, description = "The provider's `name` in `[[auth.oidc]]`"), OidcStartQuery),
    responses((status = 303, description = "To the provider's authorization endpoint; on a problem to `/login?error=…`")))]
pub async fn oidc_start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ClientAddr(addr): ClientAddr,
    Query(q): Query<OidcStartQuery>,
) -> Response {
    let Some(p) = state.sso().get(&name).cloned() else {
        return to_login("There is no sign-in provider of that name on this server.");
    };
    if state.login_by_addr().check(&addr).is_err() {
        return to_login("Too many sign-in attempts; wait a minute and try again.");
    }
    let secrets = Secrets::new();
    let begin = NewSsoLogin {
        provider: p.config.name.clone(),
        nonce: secrets.nonce.clone(),
        verifier: secrets.verifier.clone(),
        next: safe_next(q.next.as_deref()),
        ttl: SSO_TTL,
    };
    if let Err(e) = state.store().begin_sso_login(&secrets.state, begin).await {
        tracing::error!(error = %sandlab_core::error_chain(&e), "could not store a sign-in");
        return to_login("Signing in failed on the server; try again.");
    }
    let url = match state
        .sso()
        .authorize_url(&p, &redirect_uri(&state, &p), &secrets)
        .await
    {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(sso.provider = %p.config.name, error = %sandlab_core::error_chain(&e), "could not start a sign-in");
            return to_login("The sign-in provider cannot be reached; try again later.");
        }
    };
    let mut resp = redirect(&url);
    set_cookie(
        &mut resp,
        &sso_cookie(&state, &secrets.state, SSO_TTL.as_secs()),
    );
    resp
}

/// Finishes a sign-in: the provider sends the browser here. Signs it in (the cookies of
/// `POST /auth/login`) and redirects to the `next` of the start, else to `/login?error=…`.
#[utoipa::path(get, path = "/api/v1/auth/oidc/{name}/callback", tag = "auth", security(()),
    params(("name" = String, Path, description = "The provider's `name` in `[[auth.oidc]]`"), OidcCallbackQuery),
    responses((status = 303, description = "Signed in, to the `next` path; on a problem to `/login?error=…`")))]
pub async fn oidc_callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Query(q): Query<OidcCallbackQuery>,
) -> Response {
    let mut resp = match (state.login_by_addr().check(&addr), state.sso().get(&name)) {
        (Err(wait), _) => to_login(&format!(
            "Too many sign-in attempts; wait {} seconds and try again.",
            wait.as_secs().max(1)
        )),
        (Ok(()), None) => to_login("There is no sign-in provider of that name on this server."),
        (Ok(()), Some(p)) => {
            let p = p.clone();
            match take_pending(&state, &p, &headers, &q).await {
                // Nothing is audited before the state is known to be this browser's: the
                // provider name and reason would be anyone's to choose.
                Err(why) => to_login(&why),
                Ok(pending) => match callback(&state, &p, &addr, pending, q).await {
                    Ok(resp) => resp,
                    Err(why) => {
                        let event = AuditEvent::SsoFailed {
                            provider: &p.config.name,
                            reason: &why,
                            addr: &addr,
                        };
                        state.audit(None, event).await;
                        to_login(&why)
                    }
                },
            }
        }
    };
    set_cookie(&mut resp, &sso_cookie(&state, "", 0));
    resp
}

/// The sign-in this callback finishes: its `state` must be the one of this browser's
/// cookie, begun at `p` and not taken yet.
async fn take_pending(
    state: &AppState,
    p: &Provider,
    headers: &HeaderMap,
    q: &OidcCallbackQuery,
) -> Result<SsoLogin, String> {
    let Some(st) = q.state.as_deref() else {
        return Err("The provider's answer lacks its state; start the sign-in again.".into());
    };
    let cookie = auth::cookie(headers, SSO_COOKIE).unwrap_or("");
    if cookie.is_empty() || !bool::from(cookie.as_bytes().ct_eq(st.as_bytes())) {
        return Err(
            "This sign-in was not started in this browser, or took too long; start it again."
                .into(),
        );
    }
    let pending = state.store().take_sso_login(st).await.map_err(|e| {
        tracing::error!(error = %sandlab_core::error_chain(&e), "could not read a sign-in");
        "Signing in failed on the server; try again.".to_owned()
    })?;
    pending
        .filter(|l| l.provider == p.config.name)
        .ok_or_else(|| "This sign-in was finished already or has expired; start it again.".into())
}

/// Finishes the sign-in `pending` of this browser; a refusal is one sentence to show.
async fn callback(
    state: &AppState,
    p: &Provider,
    addr: &str,
    pending: SsoLogin,
    q: OidcCallbackQuery,
) -> Result<Response, String> {
    if let Some(error) = q.error {
        let why = q.error_description.unwrap_or(error);
        let why: String = why.chars().filter(|c| !c.is_control()).take(160).collect();
        return Err(format!("The provider did not sign you in: {why}."));
    }
    let Some(code) = q.code else {
        return Err("The provider's answer lacks its code; start the sign-in again.".into());
    };
    let uri = redirect_uri(state, p);
    let person = state
        .sso()
        .finish(p, &code, &uri, &pending.verifier, &pending.nonce)
        .await
        .map_err(|e| {
            tracing::warn!(sso.provider = %p.config.name, error = %sandlab_core::error_chain(&e), "a sign-in was refused");
            match e {
                oidc::SsoError::Token(t) => format!("The provider's answer failed a check: {t}."),
                other => format!("{other}."),
            }
        })?;
    let user = account(state, p, &person, addr).await?;
    if user.disabled {
        return Err("Your account is disabled; ask an admin.".into());
    }
    let (session, secret) = state
        .store()
        .create_session(&user.id, state.config().session_ttl)
        .await
        .map_err(|e| {
            tracing::error!(error = %sandlab_core::error_chain(&e), "could not start a login session");
            "Signing in failed on the server; try again.".to_owned()
        })?;
    let event = AuditEvent::SsoLogin {
        user: &user.id,
        provider: &p.config.name,
        addr,
    };
    state.audit(Some(&user.id), event).await;
    let mut resp = redirect(&pending.next);
    for c in auth::login_cookies(state, &secret, &session.csrf_token) {
        set_cookie(&mut resp, &c);
    }
    Ok(resp)
}

/// The account `person` signs into: linked, linked now by verified email, or made now.
async fn account(
    state: &AppState,
    p: &Provider,
    person: &Person,
    addr: &str,
) -> Result<User, String> {
    let c = &p.config;
    let store = state.store();
    let failed = |e: StoreError| {
        tracing::error!(error = %sandlab_core::error_chain(&e), "could not find or make an account for a sign-in");
        "Signing in failed on the server; try again.".to_owned()
    };
    let identity = NewIdentity {
        provider: c.name.clone(),
        subject: person.subject.clone(),
        email: person.email.clone(),
        email_verified: person.email_verified,
    };
    if let Some(user) = store.sso_sign_in(identity.clone()).await.map_err(failed)? {
        let user = sync_role(state, p, person, user).await;
        sync_orgs(state, p, person, &user).await;
        return Ok(user);
    }
    if c.link_by_email && person.email_verified {
        if let Some(email) = &person.email {
            if let Some(user) = store.user_by_verified_email(email).await.map_err(failed)? {
                match store.link_identity(&user.id, identity.clone()).await {
                    Ok(_) => {}
                    // The account has another identity at this provider: whoever had the
                    // address there before, not this person (providers recycle addresses).
                    Err(StoreError::Conflict(_)) => {
                        return Err("An account with your email address signs in with another identity at this provider; sign in with that one, or ask an admin.".into());
                    }
                    Err(e) => return Err(failed(e)),
                }
                let event = AuditEvent::SsoLink {
                    user: &user.id,
                    provider: &c.name,
                    addr,
                };
                state.audit(Some(&user.id), event).await;
                return Ok(user);
            }
        }
    }
    if !c.signup {
        return Err("You have no account on this server yet; ask an admin for one.".into());
    }
    let role = oidc::mapped_role(c, &person.claims).unwrap_or(c.default_role);
    let base = oidc::username_base(person);
    let mut tries = (1..=20).map(|n| match n {
        1 => base.clone(),
        n => format!("{base}-{n}"),
    });
    let user = loop {
        let name = tries
            .next()
            .unwrap_or_else(|| format!("{base}-{}", hex::encode(rand::random::<[u8; 3]>())));
        match store.create_sso_user(identity.clone(), &name, role).await {
            Ok((user, _)) => break user,
            Err(StoreError::Conflict(_)) => {
                // Another sign-in of this identity may have made its account meanwhile.
                if let Some(user) = store.sso_sign_in(identity.clone()).await.map_err(failed)? {
                    return Ok(user);
                }
            }
            Err(e) => return Err(failed(e)),
        }
    };
    let event = AuditEvent::SsoSignup {
        user: &user.id,
        username: &user.username,
        role: user.role,
        provider: &c.name,
        addr,
    };
    state.audit(Some(&user.id), event).await;
    sync_orgs(state, p, person, &user).await;
    Ok(user)
}

/// With `org_claim` configured, the provider's claim adds the person to the organisations
/// it maps (that exist), or raises their role there to the mapped one; it never removes a
/// membership or lowers a role an owner gave (a sign-in does not undo their work).
async fn sync_orgs(state: &AppState, p: &Provider, person: &Person, user: &User) {
    let wanted = oidc::mapped_orgs(&p.config, &person.claims);
    if wanted.is_empty() || user.disabled {
        return;
    }
    let store = state.store();
    let have = match store.user_orgs(&user.id).await {
        Ok(have) => have,
        Err(e) => {
            tracing::warn!(user.id = %user.id, error = %sandlab_core::error_chain(&e), "could not read the organisations of a sign-in");
            return;
        }
    };
    for (slug, role) in wanted {
        if have.iter().any(|m| m.org.slug == slug && m.role >= role) {
            continue;
        }
        match store.set_org_member(&slug, &user.id, role).await {
            Ok(member) => {
                let event = AuditEvent::OrgMemberSet {
                    org: &member.org_id,
                    user: &user.id,
                    role: role.as_str(),
                };
                state.audit(None, event).await;
            }
            // A claim may name groups that are no organisation here.
            Err(StoreError::NotFound(_)) => {}
            Err(e) => {
                tracing::warn!(user.id = %user.id, org = %slug, error = %sandlab_core::error_chain(&e), "could not apply the provider's organisation");
            }
        }
    }
}

/// With `role_claim` configured, the provider's groups decide the role at every sign-in
/// (an unmapped person keeps theirs). The last enabled admin is never demoted.
async fn sync_role(state: &AppState, p: &Provider, person: &Person, user: User) -> User {
    let Some(role) = oidc::mapped_role(&p.config, &person.claims) else {
        return user;
    };
    if role == user.role || user.disabled {
        return user;
    }
    let update = sandlab_store::UserUpdate {
        role: Some(role),
        ..Default::default()
    };
    match state.store().update_user(&user.id, update).await {
        Ok(updated) => {
            let event = AuditEvent::UserUpdate {
                user: &user.id,
                role: Some(role),
                disabled: None,
                password_changed: false,
            };
            state.audit(None, event).await;
            updated
        }
        Err(e) => {
            tracing::warn!(user.id = %user.id, error = %sandlab_core::error_chain(&e), "could not apply the provider's role");
            user
        }
    }
}

/// `{public_url}/api/v1/auth/oidc/{name}/callback`: what the operator registers.
pub fn redirect_uri(state: &AppState, p: &Provider) -> String {
    format!(
        "{}/api/v1/auth/oidc/{}/callback",
        state.config().public_url,
        p.config.name
    )
}

/// `next` when it is a path of this site, else `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= MAX_NEXT
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn redirect(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => (StatusCode::SEE_OTHER, [(LOCATION, v)]).into_response(),
        Err(_) => (
            StatusCode::SEE_OTHER,
            [(LOCATION, HeaderValue::from_static("/"))],
        )
            .into_response(),
    }
}

/// To the sign-in page, which shows `why`.
fn to_login(why: &str) -> Response {
    let q: String = url::form_urlencoded::byte_serialize(why.as_bytes()).collect();
    redirect(&format!("/login?error={q}"))
}

fn sso_cookie(state: &AppState, value: &str, max_age: u64) -> String {
    let secure = if state.config().secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!("{SSO_COOKIE}={value}; Path=/api/v1/auth/oidc/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

fn set_cookie(resp: &mut Response, c: &str) {
    if let Ok(v) = HeaderValue::from_str(c) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_only_a_path_of_this_site() {
        assert_eq!(safe_next(Some("/labs/git?x=1")), "/labs/git?x=1");
        for bad in [
            "//evil.example.com",
            "/\\evil.example.com",
            "https://evil.example.com",
            "labs",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
