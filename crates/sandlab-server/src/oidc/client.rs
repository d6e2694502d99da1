//! The calls to a provider: OpenID discovery and its JWKS (both cached an hour), the code exchange,
//! userinfo. Every response is bounded in time ([`TIMEOUT`]) and size ([`MAX_BODY`]) and
//! redirects are not followed.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::SsoError;

/// Longest wait for one call to a provider.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response read from a provider.
pub const MAX_BODY: usize = 1 << 20;
/// How long discovery documents are kept.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// How long a provider's key set is trusted before it is fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(3600);
/// The least time between two fetches of a key set forced by unknown keys.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// What `{issuer}/.well-known/openid-configuration` says (the parts used).
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub userinfo_endpoint: Option<String>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// A token endpoint's answer (RFC 6749 section 5.1, OpenID Connect's `id_token`), or its
/// error (section 5.2).
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: Option<String>,
    pub id_token: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The HTTP client every provider call uses.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sandlab/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// A cached value and when it was fetched.
pub type Cached<T> = tokio::sync::Mutex<Option<(Instant, std::sync::Arc<T>)>>;

/// The body of `resp` as JSON, at most [`MAX_BODY`] bytes; `what` names it in errors.
pub async fn json<T: DeserializeOwned>(
    mut resp: reqwest::Response,
    what: &str,
) -> Result<T, SsoError> {
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| SsoError::unreachable(what, e))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(SsoError::Provider(format!(
                "The provider's {what} is too large"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    // A token endpoint answers errors as JSON with status 400: the caller reads them.
    if !status.is_success() && !status.is_client_error() {
        return Err(SsoError::Provider(format!(
            "The provider's {what} answered {status}"
        )));
    }
    serde_json::from_slice(&body).map_err(|_| {
        SsoError::Provider(format!(
            "The provider's {what} is not the JSON expected ({status})"
        ))
    })
}

pub async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    what: &str,
) -> Result<T, SsoError> {
    let mut req = http.get(url).header("accept", "application/json");
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| SsoError::unreachable(what, e))?;
    if resp.status().is_client_error() {
        return Err(SsoError::Provider(format!(
            "The provider's {what} answered {}",
            resp.status()
        )));
    }
    json(resp, what).await
}

/// The discovery document of `issuer`, from the cache while it is fresh. Its `issuer`
/// must be `issuer` (OpenID Connect Discovery, section 4.3).
pub async fn discovery(
    http: &reqwest::Client,
    cache: &Cached<Discovery>,
    issuer: &str,
) -> Result<std::sync::Arc<Discovery>, SsoError> {
    let mut slot = cache.lock().await;
    if let Some((at, d)) = slot.as_ref() {
        if at.elapsed() < DISCOVERY_TTL {
            return Ok(d.clone());
        }
    }
    let url = format!("{issuer}/.well-known/openid-configuration");
    let d: Discovery = get_json(http, &url, None, "discovery document").await?;
    if d.issuer.trim_end_matches('/') != issuer {
        return Err(SsoError::Provider(format!(
            "The provider's discovery document names another issuer ({})",
            d.issuer
        )));
    }
    let d = std::sync::Arc::new(d);
    *slot = Some((Instant::now(), d.clone()));
    Ok(d)
}

/// The provider's keys from the cache while they are fresh (see [`KeyCache`]); `refresh`
/// asks for a fresh set because a token named a key the cached set lacks.
pub async fn jwks(
    http: &reqwest::Client,
    cache: &KeyCache,
    uri: &str,
    refresh: bool,
) -> Result<std::sync::Arc<JwkSet>, SsoError> {
    jwks_at(http, cache, uri, refresh, Instant::now()).await
}

async fn jwks_at(
    http: &reqwest::Client,
    cache: &KeyCache,
    uri: &str,
    refresh: bool,
    now: Instant,
) -> Result<std::sync::Arc<JwkSet>, SsoError> {
    let mut slot = cache.0.lock().await;
    if let Some(set) = slot.usable(refresh, now) {
        return Ok(set);
    }
    // Keys are parsed one by one: a key of a kind this crate does not know is skipped.
    #[derive(Deserialize)]
    struct Raw {
        keys: Vec<serde_json::Value>,
    }
    let raw: Raw = get_json(http, uri, None, "key set (JWKS)").await?;
    let keys = raw
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value(k).ok())
        .collect();
    let set = std::sync::Arc::new(JwkSet { keys });
    slot.keys = Some((now, set.clone()));
    Ok(set)
}

/// A provider's key set. It is fetched again after [`JWKS_TTL`], so a key the provider
/// withdrew stops verifying tokens within that time, and when a token names a key it lacks
/// (the provider rotated its keys), at most once per [`JWKS_REFRESH_INTERVAL`]: such a
/// token is anyone's to make, and must not make Sandlab call the provider at will.
#[derive(Default)]
pub struct KeyCache(tokio::sync::Mutex<KeySlot>);

#[derive(Default)]
struct KeySlot {
    /// The set and when it was fetched.
    keys: Option<(Instant, std::sync::Arc<JwkSet>)>,
    /// When a token last forced a fetch.
    forced_at: Option<Instant>,
}

impl KeySlot {
    /// The cached set if it serves at `now`, else `None` (fetch it). A refresh that is
    /// let through is recorded.
    fn usable(&mut self, refresh: bool, now: Instant) -> Option<std::sync::Arc<JwkSet>> {
        let (at, set) = self.keys.as_ref()?;
        if now.saturating_duration_since(*at) >= JWKS_TTL {
            return None;
        }
        let since = |t: Instant| now.saturating_duration_since(t);
        if refresh
            && self
                .forced_at
                .is_none_or(|t| since(t) >= JWKS_REFRESH_INTERVAL)
        {
            self.forced_at = Some(now);
            return None;
        }
        Some(set.clone())
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 section 2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form.
    Post,
    /// A public client: `client_id` in the form only.
    None,
}

/// Basic when the provider allows it (the default of the spec when it lists none), else
/// the form.
pub fn client_auth(secret: Option<&str>, supported: Option<&[String]>) -> ClientAuth {
    match (secret, supported) {
        (None, _) => ClientAuth::None,
        (Some(_), None) => ClientAuth::Basic,
        (Some(_), Some(list)) if list.iter().any(|m| m == "client_secret_basic") => {
            ClientAuth::Basic
        }
        (Some(_), Some(list)) if list.iter().any(|m| m == "client_secret_post") => ClientAuth::Post,
        (Some(_), Some(_)) => ClientAuth::Basic,
    }
}

/// Exchanges an authorization code at `endpoint`.
pub async fn exchange(
    http: &reqwest::Client,
    endpoint: &str,
    auth: ClientAuth,
    client_id: &str,
    secret: Option<&str>,
    form: &[(&str, &str)],
) -> Result<TokenResponse, SsoError> {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut req = http.post(endpoint).header("accept", "application/json");
    match (auth, secret) {
        (ClientAuth::Basic, Some(secret)) => {
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(client_id), enc(secret));
            req = req.header("authorization", format!("Basic {}", STANDARD.encode(pair)));
        }
        (ClientAuth::Post, Some(secret)) => {
            form.push(("client_id", client_id));
            form.push(("client_secret", secret));
        }
        _ => form.push(("client_id", client_id)),
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let resp = req
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| SsoError::unreachable("token endpoint", e))?;
    let t: TokenResponse = json(resp, "token endpoint").await?;
    if let Some(error) = &t.error {
        let why = t.error_description.as_deref().unwrap_or(error);
        return Err(SsoError::Refused(format!(
            "The provider refused the sign-in code ({}): it was used already, has expired or was not issued to Sandlab",
            why.chars().take(160).collect::<String>()
        )));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A key set endpoint on loopback serving one key named by the returned kid, and how
    /// often it was asked.
    async fn key_server() -> (String, Arc<Mutex<(String, u32)>>) {
        let shared = Arc::new(Mutex::new(("k1".to_owned(), 0)));
        let s = shared.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let s = s.clone();
                async move {
                    let mut g = s.lock().unwrap();
                    g.1 += 1;
                    let key =
                        serde_json::json!({"kty": "RSA", "kid": g.0, "n": "AQAB", "e": "AQAB"});
                    axum::Json(serde_json::json!({ "keys": [key] }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (uri, shared)
    }

    #[tokio::test]
    async fn keys_expire_and_forced_refreshes_are_throttled() {
        let (uri, server) = key_server().await;
        let http = http();
        let cache = KeyCache::default();
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let publish = |kid: &str| server.lock().unwrap().0 = kid.to_owned();
        let fetches = || server.lock().unwrap().1;
        let kid = |set: Arc<JwkSet>| set.keys[0].common.key_id.clone().unwrap();
        let get = |refresh: bool, now: Instant| jwks_at(&http, &cache, &uri, refresh, now);

        assert_eq!(kid(get(false, at(0)).await.unwrap()), "k1");
        // The provider withdraws k1: it is trusted until the set is an hour old.
        publish("k2");
        assert_eq!(kid(get(false, at(3599)).await.unwrap()), "k1");
        assert_eq!(fetches(), 1);
        // A token naming an unknown key fetches the set again, once in 30 s.
        assert_eq!(kid(get(true, at(1)).await.unwrap()), "k2");
        publish("k3");
        assert_eq!(kid(get(true, at(30)).await.unwrap()), "k2");
        assert_eq!(fetches(), 2);
        assert_eq!(kid(get(true, at(31)).await.unwrap()), "k3");
        assert_eq!(fetches(), 3);
        // An hour after the last fetch the set is fetched again, forced or not.
        publish("k4");
        assert_eq!(kid(get(false, at(31 + 3599)).await.unwrap()), "k3");
        assert_eq!(kid(get(false, at(31 + 3600)).await.unwrap()), "k4");
        assert_eq!(fetches(), 4);
    }
}
