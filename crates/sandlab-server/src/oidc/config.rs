//! `[[auth.oidc]]`: the single sign-on providers, as written in `sandlab.toml`
//! ([`OidcSection`]) and as the server uses them once checked ([`ProviderConfig`]).
//!
//! ```toml
//! [[auth.oidc]]
//! name = "corp"                      # in the URLs: /api/v1/auth/oidc/corp/start
//! title = "Sign in with Corp SSO"    # the button's text
//! issuer = "https://login.example.com/realms/corp"
//! client_id = "sandlab"
//! client_secret_env = "CORP_OIDC_SECRET"   # or client_secret = "…"
//! role_claim = "groups"
//! roles = { "sandlab-admins" = "admin", "lab-authors" = "author" }
//!
//! [[auth.oidc]]
//! name = "github"
//! preset = "github"
//! client_id = "Iv1.…"
//! client_secret = "…"
//! signup = true                      # GitHub makes no accounts unless told
//! ```

use std::collections::BTreeMap;

use sandlab_store::{OrgRole, Role};
use serde::Deserialize;

use crate::config::ConfigError;

/// `[auth]` in `sandlab.toml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// `[[auth.oidc]]`: the single sign-on providers, in the order the login page shows
    /// them.
    #[serde(default)]
    pub oidc: Vec<OidcSection>,
}

/// One `[[auth.oidc]]` entry as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    pub name: Option<String>,
    /// `github`: GitHub's OAuth apps (not OpenID Connect) at `github_url` and `api_url`.
    pub preset: Option<String>,
    pub title: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// The environment variable holding the client secret.
    pub client_secret_env: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub role_claim: Option<String>,
    /// A value of `role_claim` → `learner`, `author` or `admin`.
    pub roles: Option<BTreeMap<String, String>>,
    pub default_role: Option<String>,
    /// A claim whose values make the person a member of organisations.
    pub org_claim: Option<String>,
    /// A value of `org_claim` → `"<org slug>"` or `"<org slug>:<member|instructor|owner>"`;
    /// required with `org_claim`.
    pub orgs: Option<BTreeMap<String, String>>,
    pub link_by_email: Option<bool>,
    pub signup: Option<bool>,
    pub github_url: Option<String>,
    pub api_url: Option<String>,
}

/// What kind of provider, and where it is.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderKind {
    /// OpenID Connect: the endpoints and keys come from `{issuer}/.well-known/openid-configuration`.
    Oidc { issuer: String },
    /// GitHub's OAuth: `{github_url}/login/oauth/…` and the REST API at `api_url`.
    Github { github_url: String, api_url: String },
}

/// A checked provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// `[a-z0-9_-]{1,32}`: in its URLs and stored with each identity.
    pub name: String,
    /// The login button's text.
    pub title: String,
    pub kind: ProviderKind,
    pub client_id: String,
    /// `None`: a public client (PKCE only).
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    /// A claim whose value (a string or a list of them) picks the role by `roles`.
    pub role_claim: Option<String>,
    pub roles: Vec<(String, Role)>,
    /// The role of a new account that `roles` does not place (learner unless told).
    pub default_role: Role,
    /// A claim whose values make the person a member of organisations, by `orgs`.
    pub org_claim: Option<String>,
    /// A value of `org_claim` → the organisation (slug) and the role in it; not empty when
    /// `org_claim` is set (a value that merely equals a slug grants nothing: people can
    /// name their own groups at some providers).
    pub orgs: Vec<(String, String, OrgRole)>,
    /// Sign an identity into the account whose verified email it shares.
    pub link_by_email: bool,
    /// A first sign-in makes an account: true unless told for an OpenID provider (the
    /// operator's own), false unless told for the GitHub preset (anyone may have a GitHub
    /// account).
    pub signup: bool,
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Checks every `[[auth.oidc]]` entry; the first problem is one sentence naming its key.
pub fn resolve(sections: &[OidcSection], env: Env) -> Result<Vec<ProviderConfig>, ConfigError> {
    let mut out: Vec<ProviderConfig> = Vec::with_capacity(sections.len());
    for (i, s) in sections.iter().enumerate() {
        let p = provider(i, s, env)?;
        if out.iter().any(|o| o.name == p.name) {
            return Err(ConfigError(format!(
                "auth.oidc[{i}].name \"{}\" is used by an earlier provider: each needs a name of its own",
                p.name
            )));
        }
        out.push(p);
    }
    Ok(out)
}

fn provider(i: usize, s: &OidcSection, env: Env) -> Result<ProviderConfig, ConfigError> {
    let err = |key: &str, why: &str| ConfigError(format!("auth.oidc[{i}].{key} {why}"));
    let name = s
        .name
        .clone()
        .ok_or_else(|| err("name", "is missing: every provider needs a name"))?;
    if name.is_empty()
        || name.len() > 32
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(err(
            "name",
            "is invalid: use 1 to 32 of a-z, 0-9, '_' and '-'",
        ));
    }
    let client_id = s
        .client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            err(
                "client_id",
                "is missing: register Sandlab with the provider and give its client id",
            )
        })?;
    let client_secret = match (&s.client_secret, &s.client_secret_env) {
        (Some(_), Some(_)) => {
            return Err(err(
                "client_secret_env",
                "is set beside client_secret: give the secret one way",
            ))
        }
        (Some(v), None) => Some(v.clone()),
        (None, Some(var)) => Some(env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
            err(
                "client_secret_env",
                &format!("names {var}, which is not set"),
            )
        })?),
        (None, None) => None,
    };
    let github = match s.preset.as_deref() {
        None => false,
        Some("github") => true,
        Some(other) => {
            return Err(err(
                "preset",
                &format!("is invalid: the one preset is \"github\", not {other:?}"),
            ))
        }
    };
    let kind = if github {
        if s.issuer.is_some() {
            return Err(err("issuer", "is set with preset = \"github\": GitHub has none (use github_url and api_url for GitHub Enterprise)"));
        }
        if client_secret.is_none() {
            return Err(err(
                "client_secret",
                "is missing: GitHub needs the OAuth app's client secret",
            ));
        }
        let github_url = url(
            i,
            "github_url",
            s.github_url.as_deref().unwrap_or("https://github.com"),
        )?;
        let default_api = if s.github_url.is_some() {
            format!("{github_url}/api/v3")
        } else {
            "https://api.github.com".to_owned()
        };
        let api_url = url(i, "api_url", s.api_url.as_deref().unwrap_or(&default_api))?;
        ProviderKind::Github {
            github_url,
            api_url,
        }
    } else {
        if s.github_url.is_some() || s.api_url.is_some() {
            return Err(err("github_url", "is only for preset = \"github\""));
        }
        let issuer = s.issuer.as_deref().ok_or_else(|| {
            err(
                "issuer",
                "is missing: an OpenID provider needs its issuer URL (or preset = \"github\")",
            )
        })?;
        ProviderKind::Oidc {
            issuer: url(i, "issuer", issuer)?,
        }
    };
    let scopes = match &s.scopes {
        Some(list) => {
            if list
                .iter()
                .any(|x| x.is_empty() || x.contains(char::is_whitespace))
            {
                return Err(err("scopes", "is invalid: a scope is one word"));
            }
            list.clone()
        }
        None if github => vec!["read:user".into(), "user:email".into()],
        None => vec!["openid".into(), "email".into(), "profile".into()],
    };
    if !github && !scopes.iter().any(|x| x == "openid") {
        return Err(err(
            "scopes",
            "lacks \"openid\", without which there is no ID token",
        ));
    }
    let role = |key: &str, v: &str| {
        v.parse::<Role>().map_err(|_| {
            err(
                key,
                &format!("is invalid: {v:?} is not learner, author or admin"),
            )
        })
    };
    let roles = s
        .roles
        .iter()
        .flatten()
        .map(|(k, v)| Ok((k.clone(), role("roles", v)?)))
        .collect::<Result<Vec<_>, ConfigError>>()?;
    if !roles.is_empty() && s.role_claim.is_none() {
        return Err(err(
            "role_claim",
            "is missing: roles map the values of a claim, so name it",
        ));
    }
    let orgs = s
        .orgs
        .iter()
        .flatten()
        .map(|(value, to)| {
            let (slug, role) = to.split_once(':').unwrap_or((to, "member"));
            let bad = || {
                err(
                    "orgs",
                    &format!("is invalid: {to:?} is not <organisation slug> or <slug>:<member|instructor|owner>"),
                )
            };
            sandlab_store::validate_org_slug(slug).map_err(|_| bad())?;
            let role: OrgRole = role.parse().map_err(|_| bad())?;
            Ok((value.clone(), slug.to_owned(), role))
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    if !orgs.is_empty() && s.org_claim.is_none() {
        return Err(err(
            "org_claim",
            "is missing: orgs map the values of a claim, so name it",
        ));
    }
    if orgs.is_empty() && s.org_claim.is_some() {
        return Err(err(
            "orgs",
            "is missing: org_claim needs a table from its values to organisations, e.g. orgs = { \"cohort-26\" = \"bootcamp\" }",
        ));
    }
    let default_role = match &s.default_role {
        Some(v) => role("default_role", v)?,
        None => Role::Learner,
    };
    // Anyone may open a GitHub account: sign-up through it is the operator's explicit
    // choice, and never makes admins.
    let signup = s.signup.unwrap_or(!github);
    if github && signup && default_role == Role::Admin {
        return Err(err(
            "default_role",
            "is admin with preset = \"github\" and signup = true: anyone with a GitHub account would become an admin",
        ));
    }
    let title = s.title.clone().unwrap_or_else(|| {
        if github {
            "Sign in with GitHub".to_owned()
        } else {
            format!("Sign in with {name}")
        }
    });
    Ok(ProviderConfig {
        name,
        title,
        kind,
        client_id,
        client_secret,
        scopes,
        role_claim: s.role_claim.clone(),
        roles,
        default_role,
        org_claim: s.org_claim.clone(),
        orgs,
        link_by_email: s.link_by_email.unwrap_or(false),
        signup,
    })
}

/// An http(s) URL without a trailing slash, query or fragment; plain http only to a
/// loopback address.
fn url(i: usize, key: &str, v: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| ConfigError(format!("auth.oidc[{i}].{key} \"{v}\" is invalid: {why}"));
    let parsed = url::Url::parse(v).map_err(|e| bad(&format!("{e}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "it must be https (plain http only to a loopback address)",
            ))
        }
        _ => return Err(bad("it must be an https URL")),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err(bad("it must have no query, fragment or user name"));
    }
    Ok(v.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> Vec<OidcSection> {
        let a: AuthSection = toml::from_str(toml_text).unwrap();
        a.oidc
    }

    fn check(toml_text: &str) -> Result<Vec<ProviderConfig>, String> {
        let env = |k: &str| (k == "CORP_SECRET").then(|| "s3cret".to_owned());
        resolve(&section(toml_text), &env).map_err(|e| e.0)
    }

    #[test]
    fn an_oidc_provider_and_the_github_preset() {
        let p = check(
            r#"
            [[oidc]]
            name = "corp"
            issuer = "https://login.example.com/realms/corp/"
            client_id = "sandlab"
            client_secret_env = "CORP_SECRET"
            role_claim = "groups"
            roles = { "admins" = "admin" }
            [[oidc]]
            name = "github"
            preset = "github"
            client_id = "Iv1"
            client_secret = "x"
            "#,
        )
        .unwrap();
        assert_eq!(
            p[0].kind,
            ProviderKind::Oidc {
                issuer: "https://login.example.com/realms/corp".into()
            }
        );
        assert_eq!(p[0].client_secret.as_deref(), Some("s3cret"));
        assert_eq!(p[0].scopes, ["openid", "email", "profile"]);
        assert_eq!(p[0].roles, [("admins".to_owned(), Role::Admin)]);
        assert_eq!(
            (p[0].default_role, p[0].signup, p[0].link_by_email),
            (Role::Learner, true, false)
        );
        assert_eq!(p[0].title, "Sign in with corp");
        assert_eq!(
            p[1].kind,
            ProviderKind::Github {
                github_url: "https://github.com".into(),
                api_url: "https://api.github.com".into()
            }
        );
        assert_eq!(p[1].title, "Sign in with GitHub");
        // Anyone can have a GitHub account: it makes none unless told, even though an
        // OpenID provider (the operator's own) does.
        assert!(!p[1].signup);
    }

    #[test]
    fn github_makes_accounts_only_when_told_and_never_admins() {
        let github = "[[oidc]]\nname = \"gh\"\npreset = \"github\"\nclient_id = \"c\"\nclient_secret = \"s\"\n";
        assert!(!check(github).unwrap()[0].signup);
        assert!(check(&format!("{github}signup = true")).unwrap()[0].signup);
        let corp = "[[oidc]]\nname = \"corp\"\nissuer = \"https://x\"\nclient_id = \"c\"\n";
        assert!(check(corp).unwrap()[0].signup);
        assert!(!check(&format!("{corp}signup = false")).unwrap()[0].signup);
        let e = check(&format!("{github}signup = true\ndefault_role = \"admin\"")).unwrap_err();
        assert!(
            e.starts_with("auth.oidc[0].default_role is admin with preset = \"github\""),
            "{e}"
        );
        // Without sign-up the role is never given, and a company's provider may.
        check(&format!("{github}default_role = \"admin\"")).unwrap();
        check(&format!("{corp}default_role = \"admin\"")).unwrap();
        check(&format!("{github}signup = true\ndefault_role = \"author\"")).unwrap();
    }

    #[test]
    fn mistakes_name_their_key() {
        let cases = [
            ("name = \"a\"\nclient_id = \"c\"", "auth.oidc[0].issuer is missing"),
            ("name = \"A b\"\nissuer = \"https://x\"\nclient_id = \"c\"", "auth.oidc[0].name is invalid"),
            ("name = \"a\"\nissuer = \"ftp://x\"\nclient_id = \"c\"", "auth.oidc[0].issuer \"ftp://x\" is invalid"),
            ("name = \"a\"\nissuer = \"http://idp.example.com\"\nclient_id = \"c\"", "must be https"),
            ("name = \"a\"\nissuer = \"not a url\"\nclient_id = \"c\"", "auth.oidc[0].issuer"),
            ("name = \"a\"\nissuer = \"https://x\"", "auth.oidc[0].client_id is missing"),
            ("name = \"a\"\nissuer = \"https://x\"\nclient_id = \"c\"\nclient_secret_env = \"NOPE\"", "names NOPE, which is not set"),
            ("name = \"a\"\npreset = \"github\"\nclient_id = \"c\"", "auth.oidc[0].client_secret is missing"),
            ("name = \"a\"\npreset = \"gitlab\"\nclient_id = \"c\"", "auth.oidc[0].preset is invalid"),
            ("name = \"a\"\nissuer = \"https://x\"\nclient_id = \"c\"\nroles = { x = \"admin\" }", "auth.oidc[0].role_claim is missing"),
            ("name = \"a\"\nissuer = \"https://x\"\nclient_id = \"c\"\nrole_claim = \"g\"\nroles = { x = \"boss\" }", "auth.oidc[0].roles is invalid"),
            ("name = \"a\"\nissuer = \"https://x\"\nclient_id = \"c\"\nscopes = [\"email\"]", "auth.oidc[0].scopes lacks \"openid\""),
            ("name = \"a\"\nissuer = \"https://x\"\nclient_id = \"c\"\norg_claim = \"groups\"", "auth.oidc[0].orgs is missing"),
            ("name = \"a\"\nissuer = \"https://x\"\nclient_id = \"c\"\norg_claim = \"groups\"\norgs = {}", "auth.oidc[0].orgs is missing"),
        ];
        for (body, want) in cases {
            let e = check(&format!("[[oidc]]\n{body}")).unwrap_err();
            assert!(e.contains(want), "{body}: {e}");
        }
        let twice = "[[oidc]]\nname = \"a\"\nissuer = \"https://x\"\nclient_id = \"c\"\n";
        let e = check(&format!("{twice}{twice}")).unwrap_err();
        assert!(
            e.starts_with("auth.oidc[1].name \"a\" is used by an earlier provider"),
            "{e}"
        );
        // Loopback http is fine (tests, a provider on this host); so is GitHub Enterprise.
        let ok = check(
            "[[oidc]]\nname = \"g\"\npreset = \"github\"\nclient_id = \"c\"\nclient_secret = \"s\"\ngithub_url = \"http://127.0.0.1:9\"",
        )
        .unwrap();
        assert_eq!(
            ok[0].kind,
            ProviderKind::Github {
                github_url: "http://127.0.0.1:9".into(),
                api_url: "http://127.0.0.1:9/api/v3".into()
            }
        );
    }
}
