//! GitHub's OAuth apps, which are OAuth 2.0 without OpenID Connect: the code is exchanged
//! at `{github_url}/login/oauth/access_token`, and the person read from `GET {api}/user`
//! (id, login) and `GET {api}/user/emails` (the primary address, if GitHub verified it).
//! The subject is GitHub's numeric user id, which survives a change of login.

use serde::Deserialize;

use super::client::{self, ClientAuth};
use super::{Person, SsoError};

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

pub(super) fn authorize_url(github_url: &str) -> String {
    format!("{github_url}/login/oauth/authorize")
}

pub(super) async fn finish(
    http: &reqwest::Client,
    (github_url, api_url): (&str, &str),
    client_id: &str,
    secret: Option<&str>,
    form: &[(&str, &str)],
) -> Result<Person, SsoError> {
    let endpoint = format!("{github_url}/login/oauth/access_token");
    let token =
        client::exchange(http, &endpoint, ClientAuth::Post, client_id, secret, form).await?;
    let access = token.access_token.ok_or_else(|| {
        SsoError::Provider("GitHub answered the code without an access token".into())
    })?;
    let user: GithubUser =
        client::get_json(http, &format!("{api_url}/user"), Some(&access), "user API").await?;
    // Without the user:email scope's consent the list is refused: then there is no email.
    let emails: Vec<GithubEmail> = client::get_json(
        http,
        &format!("{api_url}/user/emails"),
        Some(&access),
        "emails API",
    )
    .await
    .unwrap_or_default();
    let primary = emails.into_iter().find(|e| e.primary);
    let mut claims = serde_json::Map::new();
    claims.insert("login".into(), user.login.clone().into());
    Ok(Person {
        subject: user.id.to_string(),
        email_verified: primary.as_ref().is_some_and(|e| e.verified),
        email: primary.map(|e| e.email),
        username_hint: Some(user.login),
        claims,
    })
}
