//! Who is calling: a bearer API token (programs) or a login session cookie (browsers).
//!
//! Cookie-authenticated unsafe methods (POST, PUT, PATCH, DELETE) must prove they come from
//! our own pages: the `X-CSRF-Token` header must equal the `sandlab_csrf` cookie (the
//! double-submit pair of SPEC section 6) and the session's own token, compared in constant
//! time. Bearer requests are exempt: a browser never attaches a bearer token by itself.
//!
//! Cookies: the session cookie is `HttpOnly; SameSite=Lax; Path=/`, and when the public URL
//! is HTTPS also `Secure` with the `__Host-` name prefix (so no subdomain can set or shadow
//! it). On plain HTTP (a loopback dev setup) it is `sandlab_session` without `Secure`,
//! which browsers would otherwise refuse to store. The CSRF cookie is readable by scripts
//! (that is its purpose) and `SameSite=Strict`.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use sandlab_store::{LoginSession, Role, User};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub const CSRF_COOKIE: &str = "sandlab_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The session cookie's name under `config`.
pub fn session_cookie_name(state: &AppState) -> &'static str {
    if state.config().secure_cookies() {
        "__Host-sandlab_session"
    } else {
        "sandlab_session"
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    Token { id: String },
    Session(Box<LoginSession>),
}

/// An authenticated, enabled user.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub via: Via,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// The owner filter for this caller's queries: admins see everything.
    pub fn owner_filter(&self) -> Option<&str> {
        (!self.is_admin()).then_some(self.user.id.as_str())
    }

    pub fn via_cookie(&self) -> bool {
        matches!(self.via, Via::Session(_))
    }
}

/// An admin caller.
pub struct Admin(pub Caller);

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

fn bearer(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("The Authorization header is not valid text."))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthorized(
            "The Authorization header must be `Bearer <token>`.",
        )),
    }
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Authenticates the request behind `parts`; `None` when it carries no credentials.
pub async fn authenticate(state: &AppState, parts: &Parts) -> ApiResult<Option<Caller>> {
    if let Some(token) = bearer(&parts.headers)? {
        if token.len() > 256 {
            return Err(ApiError::unauthorized("The API token is not valid."));
        }
        return match state.store().authenticate_token(token).await? {
            Some((user, id)) => Ok(Some(Caller {
                user,
                via: Via::Token { id },
            })),
            None => Err(ApiError::unauthorized(
                "The API token is not valid, was revoked, or its user is disabled.",
            )),
        };
    }
    let Some(secret) = cookie(&parts.headers, session_cookie_name(state)) else {
        return Ok(None);
    };
    if secret.len() > 256 {
        return Ok(None);
    }
    let Some((user, session)) = state.store().authenticate_session(secret).await? else {
        return Err(ApiError::unauthorized(
            "The login session has expired or ended; sign in again.",
        ));
    };
    if is_unsafe(&parts.method) {
        let header = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let pair = cookie(&parts.headers, CSRF_COOKIE).unwrap_or("");
        if header.is_empty() || header != pair || !session.csrf_matches(header) {
            return Err(ApiError::forbidden(
                "csrf_failed",
                "The request lacks a valid X-CSRF-Token header matching the sandlab_csrf cookie.",
            ));
        }
    }
    Ok(Some(Caller {
        user,
        via: Via::Session(Box::new(session)),
    }))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let caller = authenticate(state, parts).await?.ok_or_else(|| {
            ApiError::unauthorized("This route needs a bearer token or a login session.")
        })?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Admin> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.is_admin() {
            return Err(ApiError::forbidden(
                "forbidden",
                "Only an admin may do this.",
            ));
        }
        Ok(Admin(caller))
    }
}

/// `Set-Cookie` values for a new login session.
pub fn login_cookies(state: &AppState, secret: &str, csrf: &str) -> [String; 2] {
    let secure = if state.config().secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let max_age = state.config().session_ttl.as_secs();
    [
        format!(
            "{}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
            session_cookie_name(state)
        ),
        format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict; Max-Age={max_age}{secure}"),
    ]
}

/// `Set-Cookie` values that clear both cookies.
pub fn logout_cookies(state: &AppState) -> [String; 2] {
    let secure = if state.config().secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    [
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
            session_cookie_name(state)
        ),
        format!("{CSRF_COOKIE}=; Path=/; SameSite=Strict; Max-Age=0{secure}"),
    ]
}

/// Whether a browser `Origin` header names our public origin. Requests without one (not
/// from a browser page) pass; the caller decides what else they need.
pub fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    match headers.get(axum::http::header::ORIGIN) {
        None => true,
        Some(v) => v
            .to_str()
            .is_ok_and(|o| origin_matches(o.trim_end_matches('/'), &state.config().public_url)),
    }
}

/// `origin` is the public URL, or, when the public URL names a loopback address, the
/// same scheme and port under another loopback name (`localhost`, `127.0.0.1`, `[::1]`):
/// a browser on this host may use any of them, and no other site serves pages there.
fn origin_matches(origin: &str, public: &str) -> bool {
    if origin == public {
        return true;
    }
    match (split_origin(origin), split_origin(public)) {
        (Some((s1, h1, p1)), Some((s2, h2, p2))) => {
            s1 == s2 && p1 == p2 && is_loopback(h1) && is_loopback(h2)
        }
        _ => false,
    }
}

/// `http://host:port` → (scheme, host, port), the port defaulted by scheme.
fn split_origin(o: &str) -> Option<(&str, &str, u16)> {
    let (scheme, rest) = o.split_once("://")?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if rest.contains(['/', '@', '?', '#']) {
        return None;
    }
    let (host, port) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains(']') => (&rest[..i], rest[i + 1..].parse().ok()?),
        _ => (rest, default),
    };
    Some((scheme, host, port))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; sandlab_csrf=xyz ; b=2"),
        );
        h.append(COOKIE, HeaderValue::from_static("sandlab_session=s3"));
        assert_eq!(cookie(&h, "sandlab_csrf"), Some("xyz"));
        assert_eq!(cookie(&h, "sandlab_session"), Some("s3"));
        assert_eq!(cookie(&h, "sandlab"), None);
    }

    #[test]
    fn loopback_names_of_the_public_url_are_one_origin() {
        let public = "http://127.0.0.1:8080";
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://LOCALHOST:8080",
            "http://[::1]:8080",
        ] {
            assert!(origin_matches(ok, public), "{ok} refused");
        }
        for bad in [
            "http://localhost:8081",
            "https://localhost:8080",
            "http://evil.example:8080",
            "http://127.0.0.1.evil.example:8080",
            "http://localhost:8080@evil.example",
            "http://localhost",
            "null",
        ] {
            assert!(!origin_matches(bad, public), "{bad} accepted");
        }
        // A public name is matched exactly: loopback aliases do not stand in for it.
        assert!(!origin_matches(
            "http://localhost:443",
            "https://labs.example.com"
        ));
        assert!(origin_matches(
            "https://labs.example.com",
            "https://labs.example.com"
        ));
        assert!(!origin_matches(
            "http://localhost:80",
            "http://labs.example.com"
        ));
    }

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h).unwrap(), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer sl_abc"));
        assert_eq!(bearer(&h).unwrap(), Some("sl_abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(bearer(&h).is_err());
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(bearer(&h).is_err());
    }
}
