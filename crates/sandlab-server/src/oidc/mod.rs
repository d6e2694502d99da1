//! Single sign-on: OpenID Connect providers and GitHub's OAuth (the `github` preset),
//! configured under `[[auth.oidc]]` ([`config`]).
//!
//! # The flow (authorization code with PKCE)
//!
//! 1. `GET /api/v1/auth/oidc/{name}/start[?next=/path]`: the server makes a random `state`,
//!    `nonce` and PKCE verifier, stores them in the store under the SHA-256 of the state
//!    for ten minutes (`Store::begin_sso_login`; any replica can finish the sign-in), sets
//!    an HttpOnly cookie holding the state (it binds the sign-in to this browser), and
//!    redirects to the provider's authorization endpoint (from the issuer's discovery
//!    document, cached an hour) with `code_challenge` = S256 of the verifier.
//! 2. The provider sends the browser to `{public_url}/api/v1/auth/oidc/{name}/callback`
//!    with `code` and `state`. The state must equal the cookie's, and is taken from the
//!    store once (`Store::take_sso_login`): a second callback with it finds nothing.
//! 3. The code is exchanged at the token endpoint with the verifier (client authentication
//!    `client_secret_basic`, or `client_secret_post` when that is all the provider
//!    lists). The ID token is checked ([`verify`]): its signature against the provider's
//!    JWKS (kept an hour, so a withdrawn key stops working within one; fetched again when
//!    a token names an unknown key, at most every 30 s), `iss`, `aud`/`azp`, `exp`,
//!    `iat` and the `nonce`. Claims the ID token lacks (email, names, groups) come from
//!    the userinfo endpoint, whose `sub` must match. GitHub's flow is in [`github`].
//! 4. The person found ([`Person`]) is signed in by `routes::oidc`: the account linked to
//!    the identity, else (with `link_by_email`) the account of the same verified email
//!    unless it has another identity at this provider, else a new account when the
//!    provider has `signup`.

pub mod client;
pub mod config;
pub mod github;
pub mod verify;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use self::client::{Cached, Discovery};
pub use self::config::{AuthSection, OidcSection, ProviderConfig, ProviderKind};

/// Why a sign-in at a provider failed; each message is one sentence fit to show.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// The provider cannot be reached or answered badly.
    #[error("{0}")]
    Provider(String),
    /// The provider refused (a used or expired code).
    #[error("{0}")]
    Refused(String),
    #[error("The provider cannot be reached ({what})")]
    Unreachable {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error(transparent)]
    Token(#[from] verify::TokenError),
}

impl SsoError {
    fn unreachable(what: &str, source: reqwest::Error) -> SsoError {
        SsoError::Unreachable {
            what: what.to_owned(),
            source,
        }
    }
}

/// What a provider says about the person signing in.
#[derive(Debug, Clone)]
pub struct Person {
    /// The provider's stable id of the person.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// `preferred_username`, GitHub's login.
    pub username_hint: Option<String>,
    /// Every claim (ID token and userinfo), for the role mapping.
    pub claims: Map<String, Value>,
}

/// One configured provider with its caches.
pub struct Provider {
    pub config: ProviderConfig,
    discovery: Cached<Discovery>,
    jwks: client::KeyCache,
}

/// Every configured provider, and the client that calls them.
pub struct Sso {
    providers: Vec<Arc<Provider>>,
    http: reqwest::Client,
}

/// What a sign-in keeps between its start and its callback.
pub struct Secrets {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl Secrets {
    /// 256 random bits each, base64url.
    pub fn new() -> Secrets {
        let r = || URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        Secrets {
            state: r(),
            nonce: r(),
            verifier: r(),
        }
    }
}

impl Default for Secrets {
    fn default() -> Self {
        Secrets::new()
    }
}

/// The PKCE S256 challenge of `verifier` (RFC 7636 section 4.2).
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Sso {
    pub fn new(providers: &[ProviderConfig]) -> Sso {
        Sso {
            providers: providers
                .iter()
                .map(|c| {
                    Arc::new(Provider {
                        config: c.clone(),
                        discovery: Default::default(),
                        jwks: Default::default(),
                    })
                })
                .collect(),
            http: client::http(),
        }
    }

    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.config.name == name)
    }

    /// The URL of the provider's page that asks the person to sign in.
    pub async fn authorize_url(
        &self,
        p: &Provider,
        redirect_uri: &str,
        s: &Secrets,
    ) -> Result<String, SsoError> {
        let c = &p.config;
        let endpoint = match &c.kind {
            ProviderKind::Oidc { issuer } => client::discovery(&self.http, &p.discovery, issuer)
                .await?
                .authorization_endpoint
                .clone(),
            ProviderKind::Github { github_url, .. } => github::authorize_url(github_url),
        };
        let mut url = url::Url::parse(&endpoint).map_err(|_| {
            SsoError::Provider("The provider's authorization endpoint is not a URL".into())
        })?;
        let scope = c.scopes.join(" ");
        let challenge = challenge(&s.verifier);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &c.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &scope)
                .append_pair("state", &s.state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
            if matches!(c.kind, ProviderKind::Oidc { .. }) {
                q.append_pair("nonce", &s.nonce);
            }
        }
        Ok(url.into())
    }

    /// Exchanges `code` and returns who signed in, checked as the module docs say.
    pub async fn finish(
        &self,
        p: &Provider,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<Person, SsoError> {
        let c = &p.config;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ];
        let issuer = match &c.kind {
            ProviderKind::Github {
                github_url,
                api_url,
            } => {
                let urls = (github_url.as_str(), api_url.as_str());
                let secret = c.client_secret.as_deref();
                return github::finish(&self.http, urls, &c.client_id, secret, &form).await;
            }
            ProviderKind::Oidc { issuer } => issuer,
        };
        let d = client::discovery(&self.http, &p.discovery, issuer).await?;
        let secret = c.client_secret.as_deref();
        let auth = client::client_auth(secret, d.token_endpoint_auth_methods_supported.as_deref());
        let t = client::exchange(
            &self.http,
            &d.token_endpoint,
            auth,
            &c.client_id,
            secret,
            &form,
        )
        .await?;
        let id_token = t.id_token.ok_or_else(|| {
            SsoError::Provider("The provider answered the code without an ID token".into())
        })?;
        let mut claims = self.check_id_token(p, &d, &id_token, nonce).await?;
        if let (Some(endpoint), Some(access)) = (&d.userinfo_endpoint, &t.access_token) {
            let info: Map<String, Value> =
                client::get_json(&self.http, endpoint, Some(access), "userinfo endpoint").await?;
            if info.get("sub") != claims.get("sub") {
                return Err(SsoError::Provider(
                    "The provider's userinfo names another person than the ID token".into(),
                ));
            }
            for (k, v) in info {
                claims.entry(k).or_insert(v);
            }
        }
        Ok(person(claims))
    }

    async fn check_id_token(
        &self,
        p: &Provider,
        d: &Discovery,
        token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, SsoError> {
        let (kid, alg) = verify::header(token)?;
        let mut keys = client::jwks(&self.http, &p.jwks, &d.jwks_uri, false).await?;
        if verify::find_key(&keys, kid.as_deref(), alg).is_none() {
            // The provider may have rotated its keys since they were fetched (at most one
            // such refresh in 30 s: anyone can make a token naming an unknown key).
            keys = client::jwks(&self.http, &p.jwks, &d.jwks_uri, true).await?;
        }
        let key =
            verify::find_key(&keys, kid.as_deref(), alg).ok_or(verify::TokenError::UnknownKey)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let want = verify::Expected {
            issuer: &d.issuer,
            client_id: &p.config.client_id,
            nonce,
            now,
        };
        Ok(verify::verify(token, key, alg, &want)?)
    }
}

fn person(claims: Map<String, Value>) -> Person {
    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    // Some providers send the flag as a string.
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    Person {
        subject: text("sub").unwrap_or_default(),
        email: text("email"),
        email_verified: verified,
        username_hint: text("preferred_username").or_else(|| text("nickname")),
        claims,
    }
}

/// The role `claims` earn by the provider's `role_claim` and `roles`: the highest of the
/// values it maps, or `None` when it maps none.
pub fn mapped_role(c: &ProviderConfig, claims: &Map<String, Value>) -> Option<sandlab_store::Role> {
    use sandlab_store::Role;
    let claim = claims.get(c.role_claim.as_deref()?)?;
    let values: Vec<&str> = match claim {
        Value::String(s) => vec![s.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let rank = |r: Role| match r {
        Role::Learner => 0,
        Role::Author => 1,
        Role::Admin => 2,
    };
    c.roles
        .iter()
        .filter(|(v, _)| values.contains(&v.as_str()))
        .map(|(_, r)| *r)
        .max_by_key(|r| rank(*r))
}

/// The organisations (slug, role) `claims` place the person in by the provider's
/// `org_claim` and `orgs`: only values the table names count (a value that happens to be
/// an organisation's slug grants nothing).
pub fn mapped_orgs(
    c: &ProviderConfig,
    claims: &Map<String, Value>,
) -> Vec<(String, sandlab_store::OrgRole)> {
    let Some(claim) = c.org_claim.as_deref().and_then(|k| claims.get(k)) else {
        return Vec::new();
    };
    let values: Vec<&str> = match claim {
        Value::String(s) => vec![s.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    c.orgs
        .iter()
        .filter(|(v, _, _)| values.contains(&v.as_str()))
        .map(|(_, slug, role)| (slug.clone(), *role))
        .collect()
}

/// A username for a new account from what the provider says: `preferred_username` (or
/// GitHub's login), else the email's local part, else `user`; folded to `[a-z0-9_.-]`,
/// at most 56 characters so a `-N` suffix fits.
pub fn username_base(p: &Person) -> String {
    let from_email = p
        .email
        .as_deref()
        .and_then(|e| e.split('@').next())
        .map(str::to_owned);
    let raw = p
        .username_hint
        .clone()
        .filter(|h| !h.trim().is_empty())
        .or(from_email)
        .unwrap_or_default();
    let mut name: String = raw
        .trim()
        .chars()
        .map(|ch| {
            let ch = ch.to_ascii_lowercase();
            if ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '_' | '.' | '-') {
                ch
            } else {
                '-'
            }
        })
        .take(56)
        .collect();
    name = name.trim_matches('-').to_owned();
    if name.is_empty() {
        name = "user".into();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(hint: Option<&str>, email: Option<&str>) -> Person {
        Person {
            subject: "s".into(),
            email: email.map(str::to_owned),
            email_verified: false,
            username_hint: hint.map(str::to_owned),
            claims: Map::new(),
        }
    }

    #[test]
    fn usernames_come_from_the_hint_then_the_email() {
        assert_eq!(
            username_base(&person(Some("Alice Smith"), None)),
            "alice-smith"
        );
        assert_eq!(
            username_base(&person(None, Some("Bob.J@example.com"))),
            "bob.j"
        );
        assert_eq!(username_base(&person(Some(" "), None)), "user");
        assert_eq!(username_base(&person(Some("Ünïcode"), None)), "n-code");
        assert_eq!(
            username_base(&person(Some(&"x".repeat(99)), None)).len(),
            56
        );
    }

    #[test]
    fn organisations_come_from_the_claim_by_the_table_only() {
        use sandlab_store::OrgRole;
        let env = |_: &str| None;
        let section = |orgs: Option<Vec<(&str, &str)>>| OidcSection {
            name: Some("corp".into()),
            issuer: Some("https://idp.example.com".into()),
            client_id: Some("c".into()),
            org_claim: Some("teams".into()),
            orgs: orgs.map(|o| {
                o.into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            }),
            ..OidcSection::default()
        };
        let claims = |v: Value| Map::from_iter([("teams".to_owned(), v)]);
        let by_table = config::resolve(
            &[section(Some(vec![
                ("cohort-a", "bootcamp"),
                ("coaches", "bootcamp:instructor"),
            ]))],
            &env,
        )
        .unwrap();
        let teams = Value::from(vec!["coaches", "other"]);
        assert_eq!(
            mapped_orgs(&by_table[0], &claims(teams)),
            [("bootcamp".to_owned(), OrgRole::Instructor)]
        );
        // A value that is an organisation's slug but not in the table grants nothing
        // (people can make groups of any name at some providers).
        let slug = Value::from(vec!["bootcamp", "cohort-b"]);
        assert!(mapped_orgs(&by_table[0], &claims(slug)).is_empty());
        assert_eq!(
            mapped_orgs(&by_table[0], &claims(Value::from("cohort-a"))),
            [("bootcamp".to_owned(), OrgRole::Member)]
        );
        // The claim without a table is refused, naming the table.
        let err = config::resolve(&[section(None)], &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.oidc[0].orgs is missing"), "{err}");
        // A role that is none, and orgs without the claim, are refused with their key.
        let bad = config::resolve(&[section(Some(vec![("x", "bootcamp:boss")]))], &env);
        assert!(bad.unwrap_err().to_string().contains("auth.oidc[0].orgs"));
        let unnamed = OidcSection {
            org_claim: None,
            ..section(Some(vec![("x", "bootcamp")]))
        };
        let err = config::resolve(&[unnamed], &env).unwrap_err().to_string();
        assert!(err.contains("auth.oidc[0].org_claim is missing"), "{err}");
    }

    #[test]
    fn the_highest_mapped_role_wins() {
        use sandlab_store::Role;
        let env = |_: &str| None;
        let c = config::resolve(
            &[OidcSection {
                name: Some("corp".into()),
                issuer: Some("https://idp.example.com".into()),
                client_id: Some("c".into()),
                role_claim: Some("groups".into()),
                roles: Some(
                    [("staff", "author"), ("ops", "admin")]
                        .into_iter()
                        .map(|(a, b)| (a.to_owned(), b.to_owned()))
                        .collect(),
                ),
                ..OidcSection::default()
            }],
            &env,
        )
        .unwrap()
        .remove(0);
        let claims = |v: Value| {
            let mut m = Map::new();
            m.insert("groups".into(), v);
            m
        };
        let groups = serde_json::json!(["staff", "ops", "x"]);
        assert_eq!(mapped_role(&c, &claims(groups)), Some(Role::Admin));
        assert_eq!(mapped_role(&c, &claims("staff".into())), Some(Role::Author));
        assert_eq!(mapped_role(&c, &claims("nobody".into())), None);
        assert_eq!(mapped_role(&c, &Map::new()), None);
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
