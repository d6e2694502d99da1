//! Accounts without an admin at the keyboard: sign-up (closed, by invitation, open),
//! invitation links, a user's own password change and admin-made reset links, through the
//! real router and store.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::{Harness, Resp, PASSWORD};
use sandlab_server::config::SignupMode;
use sandlab_store::{PageRequest, Role, Store};
use serde_json::{json, Value};

async fn server(mode: SignupMode) -> Harness {
    Harness::with(|c| {
        c.signup = mode;
        // These tests sign up and log in more often than a person would.
        c.login_rate = 1000;
    })
    .await
}

/// A browser's cookies: the session and its CSRF token.
#[derive(Clone, Debug)]
struct Browser {
    session: String,
    csrf: String,
}

impl Browser {
    /// The cookies `resp` set, or `None` when it set no session.
    fn from(resp: &Resp) -> Option<Browser> {
        let mut session = None;
        let mut csrf = None;
        for v in resp.headers.get_all(header::SET_COOKIE) {
            let (pair, _) = v.to_str().unwrap().split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            match k {
                "sandlab_session" => session = Some(v.to_owned()),
                "sandlab_csrf" => csrf = Some(v.to_owned()),
                _ => {}
            }
        }
        Some(Browser {
            session: session?,
            csrf: csrf?,
        })
    }

    async fn call(&self, h: &Harness, method: Method, path: &str, body: Option<Value>) -> Resp {
        let b = Request::builder()
            .method(method)
            .uri(path)
            .header(
                header::COOKIE,
                format!(
                    "sandlab_session={}; sandlab_csrf={}",
                    self.session, self.csrf
                ),
            )
            .header("x-csrf-token", &self.csrf);
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        };
        h.send(req.unwrap()).await
    }
}

async fn anonymous(h: &Harness, method: Method, path: &str, body: Value) -> Resp {
    h.call(method, path, None, Some(body)).await
}

async fn sign_up(h: &Harness, username: &str, invite: Option<&str>) -> Resp {
    let mut body = json!({"username": username, "password": PASSWORD});
    if let Some(i) = invite {
        body["invite"] = json!(i);
    }
    anonymous(h, Method::POST, "/api/v1/auth/signup", body).await
}

async fn log_in(h: &Harness, username: &str, password: &str) -> Resp {
    let body = json!({"username": username, "password": password});
    anonymous(h, Method::POST, "/api/v1/auth/login", body).await
}

/// A new invitation from the admin; its answer.
async fn invite(h: &Harness, body: Value) -> Value {
    let r = h.post("/api/v1/invites", &h.admin_token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

/// Asserts `r` is an error with `status` and returns its code and message.
fn refused(r: &Resp, status: StatusCode) -> (String, String) {
    assert_eq!(r.status, status, "{}", r.text());
    let code = r.error_code();
    (
        code,
        r.json()["error"]["message"].as_str().unwrap().to_owned(),
    )
}

async fn audit_actions(h: &Harness) -> Vec<String> {
    let page = h.store.list_audit(PageRequest::first(500)).await.unwrap();
    page.items.into_iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn sign_up_is_closed_by_default_and_says_so() {
    let h = Harness::new().await;
    let r = h.call(Method::GET, "/api/v1/auth/config", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"signup": "closed", "providers": []}));
    let r = sign_up(&h, "alice", None).await;
    let (code, message) = refused(&r, StatusCode::FORBIDDEN);
    assert_eq!(code, "signup_closed");
    assert!(message.starts_with("Sign-up is closed"), "{message}");
    // An invitation does not open a closed server either.
    let inv = invite(&h, json!({})).await;
    let r = sign_up(&h, "alice", inv["token"].as_str()).await;
    assert_eq!(refused(&r, StatusCode::FORBIDDEN).0, "signup_closed");
    assert!(h.store.get_user_by_name("alice").await.is_err());
}

#[tokio::test]
async fn open_sign_up_makes_a_learner_and_signs_the_browser_in() {
    let h = server(SignupMode::Open).await;
    let r = h.call(Method::GET, "/api/v1/auth/config", None, None).await;
    assert_eq!(r.json()["signup"], "open");

    let r = sign_up(&h, "Alice", None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let body = r.json();
    assert_eq!(
        (body["username"].as_str(), body["role"].as_str()),
        (Some("alice"), Some("learner"))
    );
    assert_eq!(body["disabled"], false);
    let browser = Browser::from(&r).expect("sign-up sets the login cookies");
    let me = browser.call(&h, Method::GET, "/api/v1/me", None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json(), body);
    // The browser's session works for unsafe methods too (CSRF pair set).
    let tok = browser
        .call(
            &h,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "cli"})),
        )
        .await;
    assert_eq!(tok.status, StatusCode::CREATED, "{}", tok.text());
    assert!(log_in(&h, "alice", PASSWORD).await.status.is_success());

    // The same name again, in any case.
    let r = sign_up(&h, "ALICE", None).await;
    assert_eq!(refused(&r, StatusCode::CONFLICT).0, "conflict");
    // An invitation sets the role; a bad one is refused rather than ignored.
    let inv = invite(&h, json!({"role": "author"})).await;
    let r = sign_up(&h, "bob", inv["token"].as_str()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["role"], "author");
    let r = sign_up(&h, "carol", Some("inv_nonsense")).await;
    assert_eq!(refused(&r, StatusCode::BAD_REQUEST).0, "invalid_invite");
    assert!(h.store.get_user_by_name("carol").await.is_err());

    let actions = audit_actions(&h).await;
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.signup").count(),
        2,
        "{actions:?}"
    );
}

#[tokio::test]
async fn bad_sign_ups_get_a_sentence_never_a_500() {
    let h = server(SignupMode::Open).await;
    let long = "x".repeat(100_000);
    let cases = [
        json!({"username": "no spaces", "password": PASSWORD}),
        json!({"username": "", "password": PASSWORD}),
        json!({"username": "dave", "password": "short"}),
        json!({"username": "dave", "password": long}),
        json!({"username": long, "password": PASSWORD}),
        json!({"username": "dave", "password": PASSWORD, "invite": long}),
        json!({"username": "dave", "password": PASSWORD, "role": "admin"}),
        json!({"username": "dave"}),
        json!({"username": 5, "password": PASSWORD}),
        json!([]),
    ];
    for body in cases {
        let r = anonymous(&h, Method::POST, "/api/v1/auth/signup", body.clone()).await;
        assert!(r.status.is_client_error(), "{body}: {}", r.text());
        r.error_code();
    }
    assert!(h.store.get_user_by_name("dave").await.is_err());
    // A page of another site may not sign a browser up.
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/auth/signup")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"username": "eve", "password": PASSWORD}).to_string(),
        ))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(refused(&r, StatusCode::FORBIDDEN).0, "bad_origin");
}

#[tokio::test]
async fn invite_mode_needs_a_live_invitation_with_uses_left() {
    let h = server(SignupMode::Invite).await;
    let r = sign_up(&h, "alice", None).await;
    let (code, message) = refused(&r, StatusCode::FORBIDDEN);
    assert_eq!(code, "invite_required");
    assert!(message.contains("invitation"), "{message}");
    let r = sign_up(&h, "alice", Some("")).await;
    assert_eq!(refused(&r, StatusCode::FORBIDDEN).0, "invite_required");

    // Defaults: a learner, one use, seven days.
    let inv = invite(&h, json!({})).await;
    let token = inv["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("inv_"), "{inv}");
    assert_eq!(inv["url"], format!("/signup?invite={token}"));
    assert_eq!(
        (
            inv["role"].as_str(),
            inv["uses"].as_u64(),
            inv["used"].as_u64()
        ),
        (Some("learner"), Some(1), Some(0))
    );
    let created = inv["created_at_ms"].as_i64().unwrap();
    assert_eq!(
        inv["expires_at_ms"].as_i64().unwrap() - created,
        7 * 86_400_000
    );
    let admin = h.store.get_user_by_name("admin").await.unwrap();
    assert_eq!(inv["created_by"], admin.id.as_str());

    let r = sign_up(&h, "alice", Some(&token)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(Browser::from(&r).is_some());
    let r = sign_up(&h, "bob", Some(&token)).await;
    let (code, message) = refused(&r, StatusCode::BAD_REQUEST);
    assert_eq!(code, "invalid_invite");
    assert!(message.contains("used as often as it allows"), "{message}");

    // Three uses: three accounts, then no more.
    let three = invite(
        &h,
        json!({"uses": 3, "role": "author", "expires_in": "90d"}),
    )
    .await;
    let token3 = three["token"].as_str().unwrap();
    for name in ["c1", "c2", "c3"] {
        let r = sign_up(&h, name, Some(token3)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        assert_eq!(r.json()["role"], "author");
    }
    assert_eq!(
        refused(
            &sign_up(&h, "c4", Some(token3)).await,
            StatusCode::BAD_REQUEST
        )
        .0,
        "invalid_invite"
    );

    // The listing shows the counts, never a secret.
    let r = h.get("/api/v1/invites", &h.admin_token).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[1]["uses"].as_u64(), items[1]["used"].as_u64()),
        (Some(3), Some(3))
    );
    assert!(!r.text().contains("inv_"), "{}", r.text());
    assert!(items
        .iter()
        .all(|i| i.get("token").is_none() && i.get("url").is_none()));
    let r = h.get("/api/v1/invites?limit=1", &h.admin_token).await;
    assert!(r.json()["next"].is_string());

    // An expired link says so.
    let short = invite(&h, json!({"expires_in": "1ms"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let r = sign_up(&h, "late", short["token"].as_str()).await;
    let (code, message) = refused(&r, StatusCode::BAD_REQUEST);
    assert_eq!(code, "invalid_invite");
    assert!(message.contains("expired"), "{message}");

    // A deleted one stops working.
    let gone = invite(&h, json!({"uses": 5})).await;
    let path = format!("/api/v1/invites/{}", gone["id"].as_str().unwrap());
    assert_eq!(
        h.delete(&path, &h.admin_token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.delete(&path, &h.admin_token).await.status,
        StatusCode::NOT_FOUND
    );
    let r = sign_up(&h, "dan", gone["token"].as_str()).await;
    let (_, message) = refused(&r, StatusCode::BAD_REQUEST);
    assert!(message.contains("not valid"), "{message}");

    let actions = audit_actions(&h).await;
    for action in ["invite.create", "invite.delete", "auth.signup"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn eight_sign_ups_racing_for_a_one_use_invite_make_one_account() {
    let h = server(SignupMode::Invite).await;
    let inv = invite(&h, json!({"uses": 1})).await;
    let token = inv["token"].as_str().unwrap().to_owned();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let app = h.app();
            let body =
                json!({"username": format!("racer{i}"), "password": PASSWORD, "invite": token});
            tokio::spawn(async move {
                use tower::ServiceExt;
                let req = Request::builder()
                    .method(Method::POST)
                    .uri("/api/v1/auth/signup")
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(body.to_string()))
                    .unwrap();
                app.oneshot(req).await.unwrap().status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::BAD_REQUEST));
    let users = h.store.list_users(PageRequest::first(100)).await.unwrap();
    let racers = users
        .items
        .iter()
        .filter(|u| u.username.starts_with("racer"))
        .count();
    assert_eq!(racers, 1);
}

#[tokio::test]
async fn bad_invitations_are_refused_with_a_sentence() {
    let h = server(SignupMode::Invite).await;
    let cases = [
        json!({"uses": 0}),
        json!({"uses": 1001}),
        json!({"uses": -1}),
        json!({"uses": "x"}),
        json!({"expires_in": "91d"}),
        json!({"expires_in": "0s"}),
        json!({"expires_in": "soon"}),
        json!({"expires_in": 7}),
        json!({"role": "root"}),
        json!({"colour": "blue"}),
    ];
    for body in cases {
        let r = h
            .post("/api/v1/invites", &h.admin_token, body.clone())
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        r.error_code();
    }
    // An empty body takes every default.
    let r = h
        .call(Method::POST, "/api/v1/invites", Some(&h.admin_token), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = h.get("/api/v1/invites?limit=0", &h.admin_token).await;
    assert_eq!(refused(&r, StatusCode::BAD_REQUEST).0, "invalid_query");
}

#[tokio::test]
async fn admin_routes_refuse_everyone_else() {
    let h = server(SignupMode::Open).await;
    let learner = h.user("lea", Role::Learner).await;
    let author = h.user("abe", Role::Author).await;
    let target = h.store.get_user_by_name("lea").await.unwrap();
    let reset = format!("/api/v1/users/{}/password-reset", target.id);
    for token in [&learner, &author] {
        for (method, path) in [
            (Method::POST, "/api/v1/invites"),
            (Method::GET, "/api/v1/invites"),
            (Method::DELETE, "/api/v1/invites/inv-x"),
            (Method::POST, reset.as_str()),
        ] {
            let r = h
                .call(method.clone(), path, Some(token), Some(json!({})))
                .await;
            assert_eq!(
                refused(&r, StatusCode::FORBIDDEN).0,
                "forbidden",
                "{method} {path}"
            );
        }
    }
    for (method, path) in [
        (Method::POST, "/api/v1/invites"),
        (Method::POST, reset.as_str()),
        (Method::POST, "/api/v1/me/password"),
    ] {
        let r = h.call(method, path, None, Some(json!({}))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn changing_a_password_ends_the_other_sessions() {
    let h = server(SignupMode::Closed).await;
    let token = h.user("finn", Role::Learner).await;
    let here = Browser::from(&log_in(&h, "finn", PASSWORD).await).unwrap();
    let there = Browser::from(&log_in(&h, "finn", PASSWORD).await).unwrap();
    let change = |current: &str, new: &str| json!({"current": current, "new": new});

    let r = here
        .call(
            &h,
            Method::POST,
            "/api/v1/me/password",
            Some(change("wrong password", "new password 1")),
        )
        .await;
    let (code, message) = refused(&r, StatusCode::FORBIDDEN);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("wrong_password", "The current password is wrong.")
    );
    let r = here
        .call(
            &h,
            Method::POST,
            "/api/v1/me/password",
            Some(change(PASSWORD, "short")),
        )
        .await;
    assert_eq!(refused(&r, StatusCode::BAD_REQUEST).0, "invalid");
    for body in [
        json!({"current": PASSWORD}),
        json!({"current": PASSWORD, "new": "new password 1", "x": 1}),
    ] {
        let r = here
            .call(&h, Method::POST, "/api/v1/me/password", Some(body))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    // Nothing changed so far.
    assert_eq!(
        there.call(&h, Method::GET, "/api/v1/me", None).await.status,
        StatusCode::OK
    );

    let r = here
        .call(
            &h,
            Method::POST,
            "/api/v1/me/password",
            Some(change(PASSWORD, "new password 1")),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(
        here.call(&h, Method::GET, "/api/v1/me", None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        there.call(&h, Method::GET, "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log_in(&h, "finn", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log_in(&h, "finn", "new password 1").await.status,
        StatusCode::OK
    );

    // With an API token: every login session ends, the token keeps working.
    let r = h
        .post(
            "/api/v1/me/password",
            &token,
            change("new password 1", "new password 2"),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(
        here.call(&h, Method::GET, "/api/v1/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.get("/api/v1/me", &token).await.status, StatusCode::OK);
    assert!(audit_actions(&h)
        .await
        .iter()
        .any(|a| a == "password.change"));
}

#[tokio::test]
async fn a_reset_link_sets_a_password_once() {
    let h = server(SignupMode::Closed).await;
    h.user("gina", Role::Learner).await;
    let gina = h.store.get_user_by_name("gina").await.unwrap();
    let browser = Browser::from(&log_in(&h, "gina", PASSWORD).await).unwrap();
    let path = format!("/api/v1/users/{}/password-reset", gina.id);

    let old = h.post(&path, &h.admin_token, json!({})).await;
    assert_eq!(old.status, StatusCode::CREATED, "{}", old.text());
    let r = h
        .call(Method::POST, &path, Some(&h.admin_token), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let link = r.json();
    let token = link["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("rst_"), "{link}");
    assert_eq!(link["url"], format!("/reset?token={token}"));
    assert!(link["expires_at_ms"].as_i64().unwrap() > 0);

    let reset = |token: &str, password: &str| json!({"token": token, "password": password});
    // The newer link voided the older one.
    let r = anonymous(
        &h,
        Method::POST,
        "/api/v1/auth/reset",
        reset(old.json()["token"].as_str().unwrap(), "reset password 1"),
    )
    .await;
    let (code, message) = refused(&r, StatusCode::BAD_REQUEST);
    assert_eq!(code, "invalid_reset");
    assert!(message.contains("newer one"), "{message}");
    let r = anonymous(
        &h,
        Method::POST,
        "/api/v1/auth/reset",
        reset(&token, "short"),
    )
    .await;
    assert_eq!(refused(&r, StatusCode::BAD_REQUEST).0, "invalid");

    let r = anonymous(
        &h,
        Method::POST,
        "/api/v1/auth/reset",
        reset(&token, "reset password 1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert_eq!(
        browser
            .call(&h, Method::GET, "/api/v1/me", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log_in(&h, "gina", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        log_in(&h, "gina", "reset password 1").await.status,
        StatusCode::OK
    );

    // Once only.
    let r = anonymous(
        &h,
        Method::POST,
        "/api/v1/auth/reset",
        reset(&token, "reset password 2"),
    )
    .await;
    let (_, message) = refused(&r, StatusCode::BAD_REQUEST);
    assert!(message.contains("used already"), "{message}");
    assert_eq!(
        log_in(&h, "gina", "reset password 1").await.status,
        StatusCode::OK
    );

    for body in [
        reset("", "reset password 3"),
        reset(&"r".repeat(10_000), "reset password 3"),
        json!({"token": token}),
        json!({"token": 1, "password": "reset password 3"}),
    ] {
        let r = anonymous(&h, Method::POST, "/api/v1/auth/reset", body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
        r.error_code();
    }

    // No link for an unknown or disabled user.
    let r = h
        .post(
            "/api/v1/users/usr-nobody/password-reset",
            &h.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(refused(&r, StatusCode::NOT_FOUND).0, "not_found");
    let patch = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{}", gina.id),
            Some(&h.admin_token),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK);
    let r = h.post(&path, &h.admin_token, json!({})).await;
    assert_eq!(refused(&r, StatusCode::BAD_REQUEST).0, "invalid");

    let actions = audit_actions(&h).await;
    for action in ["password.reset_create", "password.reset"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn a_reset_link_of_a_user_disabled_since_is_refused() {
    let h = server(SignupMode::Closed).await;
    h.user("hal", Role::Learner).await;
    let hal = h.store.get_user_by_name("hal").await.unwrap();
    let path = format!("/api/v1/users/{}/password-reset", hal.id);
    let link = h.post(&path, &h.admin_token, json!({})).await.json();
    let patch = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{}", hal.id),
            Some(&h.admin_token),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK);
    let body = json!({"token": link["token"], "password": "reset password 1"});
    let r = anonymous(&h, Method::POST, "/api/v1/auth/reset", body).await;
    let (code, message) = refused(&r, StatusCode::BAD_REQUEST);
    assert_eq!(code, "invalid_reset");
    assert!(message.contains("disabled"), "{message}");
    assert_eq!(
        log_in(&h, "hal", "reset password 1").await.status,
        StatusCode::UNAUTHORIZED
    );
}
