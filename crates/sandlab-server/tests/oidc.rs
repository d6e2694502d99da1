//! Single sign-on against real parts: the OpenID provider `oidc-provider` (npm, in
//! `tests/oidc/`, started here as a process on loopback) driven through its login and
//! consent pages by a cookie-holding client, and a small GitHub on loopback speaking
//! GitHub's OAuth and REST endpoints. The ID token checks each have unit tests with keys
//! made in the test (`src/oidc/verify/tests.rs`); here the live flow: sign-in, accounts
//! made and reused, roles from groups, linking by verified email (never to an account with
//! another identity at the same provider), GitHub making accounts only when told, a wrong
//! `state` and a replayed code refused, callbacks audited only with this browser's `state`
//! and limited per address.
//!
//! Without node or `tests/oidc/node_modules` the provider tests are skipped with a
//! message, except under `CI=true`, where they fail.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use common::Harness;
use sandlab_server::oidc::{config::resolve, OidcSection};
use sandlab_store::{PageRequest, Role, Store};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The repository's `tests/oidc/`.
fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc")
}

/// Whether node and the provider's npm packages are there; panics when not under CI.
fn provider_available() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let deps = provider_dir().join("node_modules/oidc-provider").exists();
    if node && deps {
        return true;
    }
    let why = "the OpenID provider tests need node and `npm ci` in tests/oidc/ (scripts/setup.sh --deps runs it)";
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipped: {why}");
    false
}

/// A running `tests/oidc/provider.mjs`; killed when dropped.
struct OidcProvider {
    issuer: String,
    _child: tokio::process::Child,
}

async fn start_provider(redirects: &[String]) -> OidcProvider {
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(provider_dir())
        .args(["provider.mjs", "--watch-stdin"])
        .args(["--port", "0"]);
    for r in redirects {
        cmd.args(["--redirect-uri", r]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let issuer = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(i) = line.strip_prefix("issuer ") {
                return i.to_owned();
            }
        }
        panic!("provider.mjs ended before it was ready");
    })
    .await
    .expect("provider.mjs is ready within 30 s");
    // It logs to stdout as it goes: keep reading, or its writes fail.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    OidcProvider {
        issuer,
        _child: child,
    }
}

/// A free loopback port's base URL.
fn free_base() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", probe.local_addr().unwrap())
}

/// A Sandlab server on a loopback port with `providers`; its base URL.
async fn sandlab(providers: Vec<OidcSection>) -> (Harness, String) {
    sandlab_at(&free_base(), providers).await
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("{} without a location", resp.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Absolute `to` as seen from `from`.
fn resolve_url(from: &str, to: &str) -> String {
    reqwest::Url::parse(from)
        .unwrap()
        .join(to)
        .unwrap()
        .to_string()
}

/// The form of an HTML page: its action and its `prompt`.
fn form(html: &str) -> (String, String) {
    let action = html
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let prompt = html
        .split("name=\"prompt\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    (action.replace("&amp;", "&"), prompt.to_owned())
}

/// Starts a sign-in at `provider` and goes through the provider's pages as `login`; the
/// URL the provider sends the browser back to (Sandlab's callback), not yet opened.
async fn to_callback(b: &reqwest::Client, base: &str, provider: &str, login: &str) -> String {
    let start = format!("{base}/api/v1/auth/oidc/{provider}/start?next=/labs");
    let resp = b.get(&start).send().await.unwrap();
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    let mut url = location(&resp);
    for _ in 0..20 {
        if url.starts_with(base) {
            return url;
        }
        let resp = b.get(&url).send().await.unwrap();
        if resp.status().is_redirection() {
            url = resolve_url(&url, &location(&resp));
            continue;
        }
        assert_eq!(resp.status(), 200, "{url}");
        let page = resp.text().await.unwrap();
        let (action, prompt) = form(&page);
        let action = resolve_url(&url, &action);
        let fields: Vec<(&str, &str)> = match prompt.as_str() {
            "login" => vec![("prompt", "login"), ("login", login), ("password", "any")],
            _ => vec![("prompt", prompt.as_str())],
        };
        let resp = b.post(&action).form(&fields).send().await.unwrap();
        assert!(
            resp.status().is_redirection(),
            "{action}: {}",
            resp.status()
        );
        url = resolve_url(&action, &location(&resp));
    }
    panic!("the provider never sent the browser back");
}

/// Opens the callback; where it redirects.
async fn finish(b: &reqwest::Client, callback: &str) -> String {
    let resp = b.get(callback).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    location(&resp)
}

async fn me(b: &reqwest::Client, base: &str) -> Option<Value> {
    let resp = b.get(format!("{base}/api/v1/me")).send().await.unwrap();
    (resp.status() == 200).then_some(resp.json().await.unwrap())
}

fn error_of(location: &str) -> String {
    let url = reqwest::Url::parse("http://x")
        .unwrap()
        .join(location)
        .unwrap();
    assert_eq!(url.path(), "/login", "{location}");
    url.query_pairs()
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn oidc_section(name: &str, issuer: &str) -> OidcSection {
    OidcSection {
        name: Some(name.into()),
        title: Some(format!("Sign in with {name}")),
        issuer: Some(issuer.into()),
        client_id: Some("sandlab".into()),
        client_secret: Some("sandlab-test-secret".into()),
        role_claim: Some("groups".into()),
        roles: Some(
            HashMap::from([("sandlab-admins".to_owned(), "admin".to_owned())])
                .into_iter()
                .collect(),
        ),
        // The admins group owns the organisation `staff` (made by the test), and names
        // `nowhere`, which does not exist.
        org_claim: Some("groups".into()),
        orgs: Some(
            HashMap::from([
                ("sandlab-admins".to_owned(), "staff:owner".to_owned()),
                ("sandlab-admins-too".to_owned(), "nowhere".to_owned()),
            ])
            .into_iter()
            .collect(),
        ),
        ..OidcSection::default()
    }
}

/// Sandlab with providers `test` (sign-up on) and `closed` (`signup = false`,
/// `link_by_email`), both the same real provider.
async fn setup() -> Option<(OidcProvider, Harness, String)> {
    if !provider_available() {
        return None;
    }
    // Sandlab's URL goes into the provider's redirect URIs and the provider's issuer into
    // Sandlab's config: Sandlab's port is chosen first.
    let base = free_base();
    let redirects = ["test", "closed"].map(|n| format!("{base}/api/v1/auth/oidc/{n}/callback"));
    let provider = start_provider(&redirects).await;
    let test = oidc_section("test", &provider.issuer);
    let closed = OidcSection {
        signup: Some(false),
        link_by_email: Some(true),
        ..oidc_section("closed", &provider.issuer)
    };
    let (h, base) = sandlab_at(&base, vec![test, closed]).await;
    Some((provider, h, base))
}

/// [`sandlab`] on the given base URL's port.
async fn sandlab_at(base: &str, providers: Vec<OidcSection>) -> (Harness, String) {
    sandlab_limited(base, providers, 1000).await
}

/// [`sandlab_at`] allowing `login_rate` sign-in requests a minute per address.
async fn sandlab_limited(
    base: &str,
    providers: Vec<OidcSection>,
    login_rate: u32,
) -> (Harness, String) {
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let env = |_: &str| None;
    let oidc = resolve(&providers, &env).unwrap();
    let public = base.to_owned();
    let h = Harness::with(move |c| {
        c.public_url = public;
        c.login_rate = login_rate;
        c.oidc = oidc;
    })
    .await;
    let app = h.app();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    (h, base.to_owned())
}

async fn sso_failures(h: &Harness) -> usize {
    let actions = audit_actions(h).await;
    actions.iter().filter(|a| *a == "auth.sso_failed").count()
}

async fn audit_actions(h: &Harness) -> Vec<String> {
    let page = h
        .store
        .list_audit(PageRequest {
            cursor: None,
            limit: 500,
        })
        .await
        .unwrap();
    page.items.into_iter().map(|e| e.action).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_makes_an_account_once_and_maps_roles() {
    let Some((_p, h, base)) = setup().await else {
        return;
    };
    // The sign-in page's options.
    let config: Value = browser()
        .get(format!("{base}/api/v1/auth/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["providers"][0]["name"], "test");
    assert_eq!(config["providers"][0]["title"], "Sign in with test");
    assert_eq!(
        config["providers"][0]["start_url"],
        "/api/v1/auth/oidc/test/start"
    );

    let b = browser();
    let callback = to_callback(&b, &base, "test", "alice").await;
    assert_eq!(finish(&b, &callback).await, "/labs");
    let alice = me(&b, &base).await.expect("signed in");
    assert_eq!(
        (alice["username"].as_str(), alice["role"].as_str()),
        (Some("alice"), Some("learner"))
    );
    // Again, from another browser: the same account.
    let b2 = browser();
    let callback = to_callback(&b2, &base, "test", "alice").await;
    assert_eq!(finish(&b2, &callback).await, "/labs");
    assert_eq!(me(&b2, &base).await.unwrap()["id"], alice["id"]);
    // A person in the admins group is an admin, and an owner of `staff`.
    h.store
        .create_org(sandlab_store::NewOrg {
            slug: "staff".into(),
            name: None,
            limits: Default::default(),
        })
        .await
        .unwrap();
    let b3 = browser();
    let callback = to_callback(&b3, &base, "test", "admin-ann").await;
    finish(&b3, &callback).await;
    let ann = me(&b3, &base).await.unwrap();
    assert_eq!(
        (ann["username"].as_str(), ann["role"].as_str()),
        (Some("admin-ann"), Some("admin"))
    );
    let orgs = h
        .store
        .user_orgs(ann["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        orgs.iter()
            .map(|m| (m.org.slug.as_str(), m.role))
            .collect::<Vec<_>>(),
        [("staff", sandlab_store::OrgRole::Owner)]
    );
    assert!(h
        .store
        .user_orgs(alice["id"].as_str().unwrap())
        .await
        .unwrap()
        .is_empty());
    // The taken username "alice" at another identity becomes alice-2 (sign-up through
    // `test` of a person the provider calls alice too is not possible here, so ask the
    // store directly what a second alice gets).
    let users = h
        .store
        .list_users(PageRequest {
            cursor: None,
            limit: 50,
        })
        .await
        .unwrap();
    assert_eq!(
        users
            .items
            .iter()
            .filter(|u| u.username.starts_with("alice"))
            .count(),
        1
    );
    let actions = audit_actions(&h).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.sso_signup").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.sso_login").count(),
        3,
        "{actions:?}"
    );
    // A disabled account is refused.
    let id = alice["id"].as_str().unwrap();
    h.store
        .update_user(
            id,
            sandlab_store::UserUpdate {
                disabled: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let b4 = browser();
    let callback = to_callback(&b4, &base, "test", "alice").await;
    let why = error_of(&finish(&b4, &callback).await);
    assert!(why.contains("disabled"), "{why}");
    assert!(me(&b4, &base).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_state_and_a_replayed_code_are_refused() {
    let Some((_p, h, base)) = setup().await else {
        return;
    };
    let b = browser();
    let callback = to_callback(&b, &base, "test", "bob").await;
    // Another state than the one this browser started with.
    let mut forged = reqwest::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            (
                k.clone().into_owned(),
                if k == "state" {
                    "x".repeat(43)
                } else {
                    v.into_owned()
                },
            )
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let why = error_of(&finish(&b, forged.as_str()).await);
    assert!(why.contains("not started in this browser"), "{why}");
    // The right state from another browser (no cookie): refused too.
    let why = error_of(&finish(&browser(), &callback).await);
    assert!(why.contains("not started in this browser"), "{why}");
    assert!(me(&b, &base).await.is_none());
    // The callback itself works once (the cookie was cleared by the refusals above, so
    // start over), and not twice.
    let callback = to_callback(&b, &base, "test", "bob").await;
    assert_eq!(finish(&b, &callback).await, "/labs");
    assert!(me(&b, &base).await.is_some());
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let b2 = browser();
    // The same callback again: its state was taken.
    let why = error_of(&finish(&b2, &callback).await);
    assert!(
        why.contains("not started in this browser") || why.contains("finished already"),
        "{why}"
    );
    let again = to_callback(&b2, &base, "test", "bob").await;
    // A fresh state of this browser with the used code: the provider refuses the code.
    let mut replay = reqwest::Url::parse(&again).unwrap();
    let pairs: Vec<(String, String)> = replay
        .query_pairs()
        .map(|(k, v)| {
            (
                k.clone().into_owned(),
                if k == "code" {
                    code.clone()
                } else {
                    v.into_owned()
                },
            )
        })
        .collect();
    replay.query_pairs_mut().clear().extend_pairs(pairs);
    let why = error_of(&finish(&b2, replay.as_str()).await);
    assert!(why.contains("refused the sign-in code"), "{why}");
    assert!(me(&b2, &base).await.is_none());
    // Only the last refusal came with this browser's state: the others are anyone's to
    // send, and are not audited.
    assert_eq!(sso_failures(&h).await, 1);
    // An unknown provider goes to the login page too.
    let resp = browser()
        .get(format!("{base}/api/v1/auth/oidc/nope/start"))
        .send()
        .await
        .unwrap();
    assert!(error_of(&location(&resp)).contains("no sign-in provider"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_sign_up_links_only_by_verified_email() {
    let Some((_p, h, base)) = setup().await else {
        return;
    };
    // `closed` makes no accounts.
    let b = browser();
    let callback = to_callback(&b, &base, "closed", "dave").await;
    let why = error_of(&finish(&b, &callback).await);
    assert!(why.contains("no account"), "{why}");
    // Once dave has an account through `test` (email verified there), `closed` links to it.
    let callback = to_callback(&b, &base, "test", "dave").await;
    finish(&b, &callback).await;
    let dave = me(&b, &base).await.unwrap();
    let b2 = browser();
    let callback = to_callback(&b2, &base, "closed", "dave").await;
    assert_eq!(finish(&b2, &callback).await, "/labs");
    assert_eq!(me(&b2, &base).await.unwrap()["id"], dave["id"]);
    // An email the provider did not verify links nothing.
    let b3 = browser();
    let callback = to_callback(&b3, &base, "test", "unverified-erin").await;
    finish(&b3, &callback).await;
    assert!(me(&b3, &base).await.is_some());
    let b4 = browser();
    let callback = to_callback(&b4, &base, "closed", "unverified-erin").await;
    let why = error_of(&finish(&b4, &callback).await);
    assert!(why.contains("no account"), "{why}");
    assert!(audit_actions(&h).await.iter().any(|a| a == "auth.sso_link"));
    let _ = Role::Learner;
}

// ----- GitHub

/// A GitHub account: id, login, and its emails (address, primary, verified).
type GithubPerson = (u64, String, Vec<(String, bool, bool)>);

#[derive(Default)]
struct FakeGithub {
    /// The person the next authorization signs in: (id, login, [(email, primary, verified)]).
    next: Option<GithubPerson>,
    /// code → (person, PKCE challenge)
    codes: HashMap<String, (GithubPerson, String)>,
    /// access token → person
    tokens: HashMap<String, GithubPerson>,
}

type Shared = Arc<Mutex<FakeGithub>>;

/// GitHub's OAuth and REST endpoints on loopback; its base URL.
async fn fake_github(shared: Shared) -> String {
    use axum::extract::{Form, Query, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::{get, post};
    use axum::Json;

    async fn authorize(
        State(s): State<Shared>,
        Query(q): Query<HashMap<String, String>>,
    ) -> impl IntoResponse {
        let mut g = s.lock().unwrap();
        let person = g.next.clone().expect("a person to sign in");
        assert_eq!(q["client_id"], "gh-client");
        assert_eq!(q["code_challenge_method"], "S256");
        let code = format!("code-{}", g.codes.len());
        g.codes
            .insert(code.clone(), (person, q["code_challenge"].clone()));
        Redirect::to(&format!(
            "{}?code={code}&state={}",
            q["redirect_uri"], q["state"]
        ))
    }
    async fn token(State(s): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Json<Value> {
        let mut g = s.lock().unwrap();
        if f.get("client_secret").map(String::as_str) != Some("gh-secret") {
            return Json(serde_json::json!({"error": "incorrect_client_credentials"}));
        }
        let Some((person, challenge)) = g.codes.remove(&f["code"]) else {
            return Json(
                serde_json::json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
            );
        };
        if sandlab_server::oidc::challenge(&f["code_verifier"]) != challenge {
            return Json(serde_json::json!({"error": "invalid_grant"}));
        }
        let t = format!("gho_{}", g.tokens.len());
        g.tokens.insert(t.clone(), person);
        Json(
            serde_json::json!({"access_token": t, "token_type": "bearer", "scope": "read:user,user:email"}),
        )
    }
    fn who(s: &Shared, h: &HeaderMap) -> GithubPerson {
        let auth = h["authorization"].to_str().unwrap();
        let t = auth.trim_start_matches("Bearer ");
        s.lock().unwrap().tokens[t].clone()
    }
    async fn user(State(s): State<Shared>, h: HeaderMap) -> Json<Value> {
        let (id, login, _) = who(&s, &h);
        Json(serde_json::json!({"id": id, "login": login, "name": null}))
    }
    async fn emails(State(s): State<Shared>, h: HeaderMap) -> Json<Value> {
        let (_, _, emails) = who(&s, &h);
        let list: Vec<Value> = emails
            .into_iter()
            .map(|(e, p, v)| serde_json::json!({"email": e, "primary": p, "verified": v, "visibility": null}))
            .collect();
        Json(Value::Array(list))
    }
    let app = axum::Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(token))
        .route("/api/v3/user", get(user))
        .route("/api/v3/user/emails", get(emails))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn github_section(name: &str, url: &str, link_by_email: bool) -> OidcSection {
    OidcSection {
        name: Some(name.into()),
        preset: Some("github".into()),
        client_id: Some("gh-client".into()),
        client_secret: Some("gh-secret".into()),
        github_url: Some(url.into()),
        link_by_email: Some(link_by_email),
        signup: Some(true),
        ..OidcSection::default()
    }
}

async fn github_sign_in(b: &reqwest::Client, base: &str, provider: &str) -> String {
    let resp = b
        .get(format!("{base}/api/v1/auth/oidc/{provider}/start"))
        .send()
        .await
        .unwrap();
    let to_github = location(&resp);
    let resp = b.get(&to_github).send().await.unwrap();
    let callback = location(&resp);
    assert!(callback.starts_with(base), "{callback}");
    finish(b, &callback).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_sign_in_and_the_verified_email_rule() {
    let shared = Shared::default();
    let gh = fake_github(shared.clone()).await;
    let (h, base) = sandlab(vec![
        github_section("github", &gh, false),
        github_section("ghe", &gh, true),
    ])
    .await;
    let person = |id: u64, login: &str, emails: &[(&str, bool, bool)]| {
        let emails = emails
            .iter()
            .map(|(e, p, v)| (e.to_string(), *p, *v))
            .collect();
        shared.lock().unwrap().next = Some((id, login.to_owned(), emails));
    };
    // Mona signs in: an account named after her login.
    person(
        1,
        "Mona",
        &[
            ("old@example.com", false, true),
            ("mona@example.com", true, true),
        ],
    );
    let b = browser();
    assert_eq!(github_sign_in(&b, &base, "github").await, "/");
    let mona = me(&b, &base).await.unwrap();
    assert_eq!(mona["username"], "mona");
    // At "ghe" (link_by_email) another GitHub account with her verified primary email is
    // linked to her account.
    person(900, "mona-work", &[("MONA@example.com", true, true)]);
    let b2 = browser();
    github_sign_in(&b2, &base, "ghe").await;
    assert_eq!(me(&b2, &base).await.unwrap()["id"], mona["id"]);
    // Her account has a "ghe" identity now: another "ghe" account with her address (she
    // gave it up and someone registered it) is another person, and is refused.
    person(903, "taker", &[("mona@example.com", true, true)]);
    let taker = browser();
    let why = error_of(&github_sign_in(&taker, &base, "ghe").await);
    assert!(
        why.contains("signs in with another identity at this provider"),
        "{why}"
    );
    assert!(me(&taker, &base).await.is_none());
    assert_eq!(sso_failures(&h).await, 1);
    // Mona herself still signs in there.
    person(900, "mona-work", &[("mona@example.com", true, true)]);
    let b2 = browser();
    github_sign_in(&b2, &base, "ghe").await;
    assert_eq!(me(&b2, &base).await.unwrap()["id"], mona["id"]);
    // An unverified address links nothing: Eve gets an account of her own.
    person(901, "eve", &[("mona@example.com", true, false)]);
    let b3 = browser();
    github_sign_in(&b3, &base, "ghe").await;
    let eve = me(&b3, &base).await.unwrap();
    assert_ne!(eve["id"], mona["id"]);
    assert_eq!(eve["username"], "eve");
    // At "github" (no linking) the same verified email makes a new account, with a free
    // username when the login's is taken.
    person(902, "mona", &[("mona@example.com", true, true)]);
    let b4 = browser();
    github_sign_in(&b4, &base, "github").await;
    let other = me(&b4, &base).await.unwrap();
    assert_ne!(other["id"], mona["id"]);
    assert_eq!(other["username"], "mona-2");
    // A code used twice is refused by GitHub, and the refusal reaches the login page.
    person(1, "Mona", &[]);
    let b5 = browser();
    let resp = b5
        .get(format!("{base}/api/v1/auth/oidc/github/start"))
        .send()
        .await
        .unwrap();
    let resp = b5.get(location(&resp)).send().await.unwrap();
    let callback = location(&resp);
    shared.lock().unwrap().codes.clear();
    let why = error_of(&finish(&b5, &callback).await);
    assert!(why.contains("refused the sign-in code"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_makes_accounts_only_when_told() {
    let shared = Shared::default();
    let gh = fake_github(shared.clone()).await;
    // Anyone can open a GitHub account: without `signup = true` the preset makes none,
    // whatever `server.signup` says.
    let quiet = OidcSection {
        signup: None,
        ..github_section("github", &gh, false)
    };
    let (h, base) = sandlab(vec![quiet, github_section("open", &gh, false)]).await;
    shared.lock().unwrap().next = Some((7, "stranger".into(), Vec::new()));
    let b = browser();
    let why = error_of(&github_sign_in(&b, &base, "github").await);
    assert!(why.contains("no account"), "{why}");
    assert!(me(&b, &base).await.is_none());
    assert!(h.store.get_user_by_name("stranger").await.is_err());
    let b = browser();
    assert_eq!(github_sign_in(&b, &base, "open").await, "/");
    assert_eq!(me(&b, &base).await.unwrap()["username"], "stranger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_are_audited_only_with_this_browsers_state_and_limited() {
    let shared = Shared::default();
    let gh = fake_github(shared.clone()).await;
    let (h, base) =
        sandlab_limited(&free_base(), vec![github_section("github", &gh, false)], 5).await;
    let b = browser();
    let callback = |rest: &str| format!("{base}/api/v1/auth/oidc/{rest}");
    // Callbacks anyone can send name what they like: refused, and not audited.
    for (rest, want) in [
        (
            "nope/callback?error=x&error_description=forged",
            "no sign-in provider",
        ),
        (
            "github/callback?error=x&error_description=forged",
            "lacks its state",
        ),
        (
            "github/callback?error=x&error_description=forged&state=forged-state-0123456789",
            "not started in this browser",
        ),
    ] {
        let why = error_of(&finish(&b, &callback(rest)).await);
        assert!(why.contains(want), "{rest}: {why}");
    }
    assert_eq!(sso_failures(&h).await, 0);
    // The provider's refusal of a sign-in this browser started is shown, and audited.
    let resp = b.get(callback("github/start")).send().await.unwrap();
    let to_github = reqwest::Url::parse(&location(&resp)).unwrap();
    let (_, state) = to_github.query_pairs().find(|(k, _)| k == "state").unwrap();
    let refused = format!(
        "github/callback?error=access_denied&error_description=End-User+aborted&state={state}"
    );
    let why = error_of(&finish(&b, &callback(&refused)).await);
    assert!(
        why.contains("The provider did not sign you in: End-User aborted"),
        "{why}"
    );
    assert_eq!(sso_failures(&h).await, 1);
    // Five sign-in requests from this address in a minute (login_rate = 5): the sixth is
    // refused before anything is looked at.
    let why = error_of(&finish(&b, &callback(&refused)).await);
    assert!(why.contains("Too many sign-in attempts"), "{why}");
    let resp = b.get(callback("github/start")).send().await.unwrap();
    assert!(error_of(&location(&resp)).contains("Too many sign-in attempts"));
    assert_eq!(sso_failures(&h).await, 1);
}
