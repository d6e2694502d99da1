//! Every route in process (`app(state).oneshot`), happy and unhappy: auth, CSRF, owners,
//! malformed and oversized bodies, quota, rate limits, exec, files, pool and reaper.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use sandlab_runtime::Driver;
use sandlab_store::{Role, Store};
use serde_json::json;

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let h = Harness::new().await;
    let r = h.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    assert_eq!(
        h.call(Method::GET, "/readyz", None, None).await.status,
        StatusCode::OK
    );
    h.state.shutdown().cancel();
    let r = h.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.error_code(), "unavailable");
    let r = h.call(Method::GET, "/api/v1/nothing", None, None).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let r = h
        .call(Method::PUT, "/api/v1/me", Some(&h.admin_token), None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = h
        .call(Method::GET, "/metrics", Some(&h.admin_token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text().contains("sandlab_http_requests_total"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn no_or_bad_credentials_get_401() {
    let h = Harness::new().await;
    for path in [
        "/api/v1/me",
        "/api/v1/sandboxes",
        "/api/v1/tokens",
        "/api/v1/labs",
        "/api/v1/users",
    ] {
        let r = h.call(Method::GET, path, None, None).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path}"
        );
        let r = h.call(Method::GET, path, Some("sl_nope"), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let req = Request::get("/api/v1/me")
        .header(header::AUTHORIZATION, "Basic YWRtaW46eA==")
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(req).await.status, StatusCode::UNAUTHORIZED);
}

fn login_req(body: &str, origin: Option<&str>) -> Request<Body> {
    let mut b =
        Request::post("/api/v1/auth/login").header(header::CONTENT_TYPE, "application/json");
    if let Some(o) = origin {
        b = b.header(header::ORIGIN, o);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

/// `name=value` of each `Set-Cookie`.
fn cookies(r: &Resp) -> Vec<(String, String, String)> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| {
            let full = v.to_str().unwrap().to_owned();
            let first = full.split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            (k.to_owned(), v.to_owned(), full)
        })
        .collect()
}

#[tokio::test]
async fn login_cookie_csrf_and_logout() {
    let h = Harness::new().await;
    let bad = h
        .send(login_req(
            &json!({"username": "admin", "password": "wrong password"}).to_string(),
            None,
        ))
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let bad = h
        .send(login_req(
            &json!({"username": "admin", "password": PASSWORD}).to_string(),
            Some("https://evil.example"),
        ))
        .await;
    assert_eq!(
        (bad.status, bad.error_code().as_str()),
        (StatusCode::FORBIDDEN, "bad_origin")
    );

    let ok = h
        .send(login_req(
            &json!({"username": "Admin", "password": PASSWORD}).to_string(),
            Some("http://127.0.0.1:8080"),
        ))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let body = ok.json();
    assert_eq!(body["user"]["role"], "admin");
    let set = cookies(&ok);
    let session = set
        .iter()
        .find(|c| c.0 == "sandlab_session")
        .expect("session cookie");
    let csrf = set
        .iter()
        .find(|c| c.0 == "sandlab_csrf")
        .expect("csrf cookie");
    assert!(
        session.2.contains("HttpOnly") && session.2.contains("SameSite=Lax"),
        "{}",
        session.2
    );
    assert!(!csrf.2.contains("HttpOnly"), "{}", csrf.2);
    assert_eq!(body["csrf_token"], csrf.1.as_str());
    let cookie = format!("sandlab_session={}; sandlab_csrf={}", session.1, csrf.1);

    let me = Request::get("/api/v1/me")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    let me = h.send(me).await;
    assert_eq!(
        (me.status, me.json()["username"].as_str()),
        (StatusCode::OK, Some("admin"))
    );

    // An unsafe method with the cookie but without the CSRF header: 403.
    let no_csrf = Request::post("/api/v1/tokens")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"x"}"#))
        .unwrap();
    let r = h.send(no_csrf).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::FORBIDDEN, "csrf_failed")
    );
    // A header that does not match the cookie: 403.
    let wrong = Request::post("/api/v1/tokens")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", "0".repeat(64))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"x"}"#))
        .unwrap();
    assert_eq!(h.send(wrong).await.status, StatusCode::FORBIDDEN);
    let good = Request::post("/api/v1/tokens")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf.1)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"name":"x"}"#))
        .unwrap();
    assert_eq!(h.send(good).await.status, StatusCode::CREATED);

    let out = Request::post("/api/v1/auth/logout")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &csrf.1)
        .body(Body::empty())
        .unwrap();
    let out = h.send(out).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(cookies(&out).iter().all(|c| c.2.contains("Max-Age=0")));
    let me = Request::get("/api/v1/me")
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .unwrap();
    assert_eq!(h.send(me).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn https_public_url_makes_host_prefixed_secure_cookies() {
    let h = Harness::with(|c| c.public_url = "https://labs.example.com".into()).await;
    let ok = h
        .send(login_req(
            &json!({"username": "admin", "password": PASSWORD}).to_string(),
            None,
        ))
        .await;
    let set = cookies(&ok);
    let session = set
        .iter()
        .find(|c| c.0 == "__Host-sandlab_session")
        .expect("__Host- cookie");
    assert!(
        session.2.contains("Secure") && session.2.contains("Path=/"),
        "{}",
        session.2
    );
    assert!(!session.2.contains("Domain"), "{}", session.2);
}

#[tokio::test]
async fn login_is_rate_limited() {
    let h = Harness::with(|c| c.login_rate = 3).await;
    let body = json!({"username": "admin", "password": "wrong password"}).to_string();
    for _ in 0..3 {
        assert_eq!(
            h.send(login_req(&body, None)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = h.send(login_req(&body, None)).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(r.headers.contains_key(header::RETRY_AFTER));
}

/// Issue 19, break 8: ten bad attempts a minute against a username used to block its
/// owner everywhere. Failures count per (username, address); the owner signs in from
/// another address (slowed while the name is under attack, never refused).
#[tokio::test]
async fn guessing_a_username_from_one_address_does_not_lock_its_owner_out() {
    let h = Harness::with(|c| c.login_rate = 3).await;
    let from = |ip: [u8; 4], password: &str| {
        let body = json!({"username": "admin", "password": password}).to_string();
        let mut req = login_req(&body, None);
        let addr = std::net::SocketAddr::from((ip, 40000));
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(addr));
        req
    };
    let attacker = [203, 0, 113, 66];
    for _ in 0..3 {
        let r = h.send(from(attacker, "guess")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = h.send(from(attacker, "guess")).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    // The right password from the attacker's address is refused too: it may not try.
    let r = h.send(from(attacker, common::PASSWORD)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // The owner, from their own address, gets in.
    let r = h.send(from([198, 51, 100, 7], common::PASSWORD)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // A second attacking address is counted on its own, and still only gets 401s.
    let r = h.send(from([203, 0, 113, 67], "guess")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

/// Issue 13 item 12: `/metrics` was public; behind a proxy every login counted as one client.
#[tokio::test]
async fn metrics_are_for_admins_and_the_scraper_token_and_proxies_name_the_client() {
    let token = "scrape-0123456789abcdef";
    let h = Harness::with(|c| {
        c.metrics_token = Some(token.into());
        c.login_rate = 2;
        c.trusted_proxies =
            sandlab_server::proxies::TrustedProxies::parse(&["192.0.2.10"]).unwrap();
    })
    .await;
    let alice = h.user("alice", Role::Learner).await;
    assert_eq!(
        h.call(Method::GET, "/metrics", None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.call(Method::GET, "/metrics", Some(&alice), None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    for t in [token, h.admin_token.as_str()] {
        let r = h.call(Method::GET, "/metrics", Some(t), None).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // Two clients behind the trusted proxy are two addresses to the login limits; a
    // client that is not the proxy cannot pick its address with the header.
    let via = |peer: [u8; 4], forwarded: &str, user: &str| {
        let body = json!({"username": user, "password": "wrong"}).to_string();
        let mut req = login_req(&body, None);
        req.headers_mut()
            .insert("x-forwarded-for", forwarded.parse().unwrap());
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                peer, 1234,
            ))));
        req
    };
    for _ in 0..2 {
        let r = h.send(via([192, 0, 2, 10], "198.51.100.1", "a")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = h.send(via([192, 0, 2, 10], "198.51.100.1", "b")).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "one client's limit"
    );
    let r = h.send(via([192, 0, 2, 10], "198.51.100.2", "b")).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "another client behind the proxy"
    );
    for forged in ["198.51.100.3", "198.51.100.4"] {
        let r = h.send(via([203, 0, 113, 1], forged, "c")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = h.send(via([203, 0, 113, 1], "198.51.100.5", "c")).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged header gave a direct client a new address"
    );
}

#[tokio::test]
async fn tokens_are_shown_once_listed_and_revoked() {
    let h = Harness::new().await;
    let r = h
        .post("/api/v1/tokens", &h.admin_token, json!({"name": "ci"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let created = r.json();
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sl_"));
    let list = h.get("/api/v1/tokens", &secret).await.json();
    assert!(list["next"].is_null());
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "ci"));
    assert!(
        !list.to_string().contains(&secret),
        "a listed token shows its secret"
    );
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        h.delete(&format!("/api/v1/tokens/{id}"), &h.admin_token)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get("/api/v1/me", &secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.delete(&format!("/api/v1/tokens/{id}"), &h.admin_token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = h
        .post("/api/v1/tokens", &h.admin_token, json!({"name": ""}))
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid")
    );
}

#[tokio::test]
async fn users_are_admin_only_and_disabling_locks_out() {
    let h = Harness::new().await;
    let learner = h.user("lea", Role::Learner).await;
    let r = h.get("/api/v1/users", &learner).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let r = h
        .post(
            "/api/v1/users",
            &h.admin_token,
            json!({"username": "bob", "password": PASSWORD, "role": "author"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let bob = r.json()["id"].as_str().unwrap().to_owned();
    let r = h
        .post(
            "/api/v1/users",
            &h.admin_token,
            json!({"username": "BOB", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::CONFLICT, "conflict")
    );
    let r = h
        .post(
            "/api/v1/users",
            &h.admin_token,
            json!({"username": "carl", "password": PASSWORD, "role": "root"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .post(
            "/api/v1/users",
            &h.admin_token,
            json!({"username": "dan", "password": "short"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let list = h.get("/api/v1/users?limit=2", &h.admin_token).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let next = list["next"].as_str().unwrap();
    let rest = h
        .get(
            &format!("/api/v1/users?limit=2&cursor={next}"),
            &h.admin_token,
        )
        .await
        .json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        h.get("/api/v1/users?cursor=garbage", &h.admin_token)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.get("/api/v1/users?limit=0", &h.admin_token).await.status,
        StatusCode::BAD_REQUEST
    );

    // Disabling a user stops their token at once.
    let lea = h.get("/api/v1/me", &learner).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{lea}"),
            Some(&h.admin_token),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["disabled"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    assert_eq!(
        h.get("/api/v1/me", &learner).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = h
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{bob}"),
            Some(&h.admin_token),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(r.json()["role"], "admin");
    let r = h
        .call(
            Method::PATCH,
            "/api/v1/users/usr-nope",
            Some(&h.admin_token),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_wrong_type_and_oversized_bodies() {
    let h = Harness::with(|c| c.max_body = 4096).await;
    let raw = |body: &str, ctype: &str| {
        Request::post("/api/v1/sandboxes")
            .header(header::AUTHORIZATION, format!("Bearer {}", h.admin_token))
            .header(header::CONTENT_TYPE, ctype.to_owned())
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let r = h.send(raw("{not json", "application/json")).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let r = h.send(raw(r#"{"memory": 5}"#, "application/json")).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let r = h
        .send(raw(r#"{"colour": "red"}"#, "application/json"))
        .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused"
    );
    let r = h.send(raw("{}", "text/plain")).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let big = json!({"image": "x".repeat(10_000)}).to_string();
    let r = h.send(raw(&big, "application/json")).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
}

#[tokio::test]
async fn bad_limits_and_images_are_400() {
    let h = Harness::new().await;
    for (body, code) in [
        (json!({"memory": "1K"}), "invalid_limits"),
        (json!({"memory": "lots"}), "invalid_limits"),
        (json!({"cpus": 0}), "invalid_limits"),
        (json!({"network": "host"}), "invalid_limits"),
        (json!({"ttl": "100h"}), "invalid_limits"),
        (json!({"ttl": "0s"}), "invalid_limits"),
        (json!({"image": "nope"}), "unknown_image"),
    ] {
        let r = h
            .post("/api/v1/sandboxes", &h.admin_token, body.clone())
            .await;
        assert_eq!(
            (r.status, r.error_code()),
            (StatusCode::BAD_REQUEST, code.to_owned()),
            "{body}"
        );
    }
    assert!(
        h.driver.running_ids().is_empty(),
        "a refused create started something"
    );
}

#[tokio::test]
async fn sandbox_lifecycle_exec_and_files() {
    let h = Harness::new().await;
    let alice = h.user("alice", Role::Learner).await;
    let id = h.sandbox(&alice).await;
    let got = h
        .get(&format!("/api/v1/sandboxes/{id}"), &alice)
        .await
        .json();
    assert_eq!(got["state"], "running");
    assert_eq!(got["limits"]["memory"], "512M");
    assert!(got["ttl_left_ms"].as_u64().unwrap() > 3_000_000);
    let list = h.get("/api/v1/sandboxes", &alice).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    let r = h
        .post(&format!("/api/v1/sandboxes/{id}/exec"), &alice, json!({"cmd": ["sh", "-c", "read x; echo got $x; echo err >&2; exit 3"], "stdin": "hello\n"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let out = r.json();
    assert_eq!(
        (out["stdout"].as_str(), out["stderr"].as_str()),
        (Some("got hello\n"), Some("err\n"))
    );
    assert_eq!(
        (out["exit_code"].as_i64(), out["status"].as_str()),
        (Some(3), Some("runtime_error"))
    );
    let out = h
        .post(
            &format!("/api/v1/sandboxes/{id}/exec"),
            &alice,
            json!({"cmd": ["sleep", "5"], "timeout": "200ms"}),
        )
        .await
        .json();
    assert_eq!(
        (out["exit_code"].as_i64(), out["status"].as_str()),
        (Some(124), Some("timeout"))
    );
    let r = h
        .post(
            &format!("/api/v1/sandboxes/{id}/exec"),
            &alice,
            json!({"cmd": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Files: raw bytes both ways.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/notes.bin");
    let url = format!("/api/v1/sandboxes/{id}/files?path={}", path.display());
    let put = Request::put(&url)
        .header(header::AUTHORIZATION, format!("Bearer {alice}"))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from(vec![0u8, 1, 2, 255]))
        .unwrap();
    assert_eq!(h.send(put).await.status, StatusCode::NO_CONTENT);
    let r = h.get(&url, &alice).await;
    assert_eq!(
        (r.status, r.bytes.clone()),
        (StatusCode::OK, vec![0u8, 1, 2, 255])
    );
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/octet-stream");
    // A learner's file opened by an admin's browser is saved, never rendered or run.
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(
        r.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"notes.bin\""
    );
    assert_eq!(
        r.headers[header::CONTENT_SECURITY_POLICY],
        "sandbox; default-src 'none'"
    );
    let r = h
        .get(
            &format!("/api/v1/sandboxes/{id}/files?path=/etc/../etc/passwd"),
            &alice,
        )
        .await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_path")
    );
    let r = h
        .get(
            &format!("/api/v1/sandboxes/{id}/files?path=relative"),
            &alice,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .get(
            &format!("/api/v1/sandboxes/{id}/files?path=/no/such/file"),
            &alice,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Extend moves the deadline.
    let r = h
        .post(
            &format!("/api/v1/sandboxes/{id}/extend"),
            &alice,
            json!({"ttl": "2h"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["ttl_left_ms"].as_u64().unwrap() > 7_000_000);

    assert_eq!(
        h.delete(&format!("/api/v1/sandboxes/{id}"), &alice)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        h.get(&format!("/api/v1/sandboxes/{id}"), &alice)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(h.driver.running_ids().is_empty());
    let audit = h.store.list_audit(Default::default()).await.unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|e| e.action.as_str()).collect();
    for a in ["sandbox.create", "sandbox.exec", "sandbox.delete"] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}

#[tokio::test]
async fn another_users_sandbox_is_404_and_admin_sees_all() {
    let h = Harness::new().await;
    let alice = h.user("alice", Role::Learner).await;
    let mallory = h.user("mallory", Role::Learner).await;
    let id = h.sandbox(&alice).await;
    let base = format!("/api/v1/sandboxes/{id}");
    assert_eq!(h.get(&base, &mallory).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.post(&format!("{base}/exec"), &mallory, json!({"cmd": ["true"]}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get(&format!("{base}/files?path=/etc/hostname"), &mallory)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.post(&format!("{base}/extend"), &mallory, json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.get(&format!("{base}/terminal"), &mallory).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.delete(&base, &mallory).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(h.get("/api/v1/sandboxes", &mallory).await.json()["items"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        h.get("/api/v1/sandboxes/sb-not-an-id", &alice).await.status,
        StatusCode::NOT_FOUND
    );
    // The admin sees and may delete it.
    assert_eq!(h.get(&base, &h.admin_token).await.status, StatusCode::OK);
    assert_eq!(
        h.get("/api/v1/sandboxes", &h.admin_token).await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        h.delete(&base, &h.admin_token).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn quota_exceeded_is_429_and_frees_up_after_delete() {
    let h = Harness::with(|c| c.max_sandboxes_per_user = 2).await;
    let alice = h.user("alice", Role::Learner).await;
    let a = h.sandbox(&alice).await;
    h.sandbox(&alice).await;
    let r = h.post("/api/v1/sandboxes", &alice, json!({})).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded")
    );
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("2"));
    h.delete(&format!("/api/v1/sandboxes/{a}"), &alice).await;
    h.sandbox(&alice).await;
    // Concurrent creates cannot overshoot the quota.
    let bob = h.user("bob", Role::Learner).await;
    let results =
        futures::future::join_all((0..5).map(|_| h.post("/api/v1/sandboxes", &bob, json!({}))))
            .await;
    let created = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        created,
        2,
        "{:?}",
        results.iter().map(|r| r.status).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn sandbox_creation_is_rate_limited() {
    let h = Harness::with(|c| {
        c.create_rate = 2;
        c.max_sandboxes_per_user = 10;
    })
    .await;
    let alice = h.user("alice", Role::Learner).await;
    h.sandbox(&alice).await;
    h.sandbox(&alice).await;
    let r = h.post("/api/v1/sandboxes", &alice, json!({})).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
}

#[tokio::test]
async fn the_reaper_removes_expired_sandboxes() {
    let h = Harness::new().await;
    let r = h
        .post("/api/v1/sandboxes", &h.admin_token, json!({"ttl": "1s"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let url = format!("/api/v1/sandboxes/{id}");
    wait_until("the sandbox expires", Duration::from_secs(10), || async {
        (h.get(&url, &h.admin_token).await.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    assert!(h.all_removed().await);
    // The audit entry follows the removal.
    wait_until("the expiry is audited", Duration::from_secs(10), || async {
        let audit = h.store.list_audit(Default::default()).await.unwrap();
        audit
            .items
            .iter()
            .any(|e| e.action == "sandbox.expire")
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn warm_pool_claims_and_refills() {
    let profile = sandlab_server::PoolProfile {
        name: "default".into(),
        image: "debian".into(),
        limits: sandlab_core::Limits::default(),
        size: 2,
    };
    let h = Harness::with(|c| c.pools = vec![profile]).await;
    let pool = || h.state.sandboxes().pool().ready("default");
    wait_until("the pool fills", Duration::from_secs(20), || async {
        (pool() == 2).then_some(())
    })
    .await;
    let warm = h.state.sandboxes().pool().all_ready();
    let creates_before = h.driver.creates.load(std::sync::atomic::Ordering::SeqCst);
    let alice = h.user("alice", Role::Learner).await;
    let r = h
        .post("/api/v1/sandboxes", &alice, json!({"ttl": "5m"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let got = r.json();
    assert!(
        warm.iter()
            .any(|w| w.as_str() == got["id"].as_str().unwrap()),
        "not from the pool: {got}"
    );
    assert_eq!(
        got["owner"].as_str(),
        h.get("/api/v1/me", &alice).await.json()["id"].as_str()
    );
    assert!(got["ttl_left_ms"].as_u64().unwrap() <= 300_000);
    // A different shape is created cold.
    let r = h
        .post("/api/v1/sandboxes", &alice, json!({"memory": "256M"}))
        .await;
    assert!(!warm
        .iter()
        .any(|w| w.as_str() == r.json()["id"].as_str().unwrap()));
    wait_until("the pool refills", Duration::from_secs(20), || async {
        (pool() == 2).then_some(())
    })
    .await;
    assert!(h.driver.creates.load(std::sync::atomic::Ordering::SeqCst) >= creates_before + 2);
    let metrics = h
        .call(Method::GET, "/metrics", Some(&h.admin_token), None)
        .await
        .text();
    assert!(metrics.contains("sandlab_pool_claim_seconds"), "{metrics}");
    assert!(metrics.contains("sandlab_pool_ready"), "{metrics}");
    // The user's list never shows pool sandboxes.
    assert_eq!(
        h.get("/api/v1/sandboxes", &alice).await.json()["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn labs_catalogue_hides_checks() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("hello");
    std::fs::create_dir(&lab).unwrap();
    std::fs::write(
        lab.join("index.md"),
        "---\ntitle: Hello\ntasks:\n  greet:\n    run: test -f /tmp/secret-check\n    solve: touch /tmp/secret-check\n    hint: Touch it.\n---\nSay hi.\n",
    )
    .unwrap();
    let (labs, problems) = sandlab_lab::load_catalogue(dir.path(), None);
    assert!(problems.is_empty(), "{problems:?}");
    h.state.set_labs(labs);
    let list = h.get("/api/v1/labs", &h.admin_token).await.json();
    assert_eq!(list["items"][0]["slug"], "hello");
    assert_eq!(list["items"][0]["tasks"], 1);
    let r = h.get("/api/v1/labs/hello", &h.admin_token).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.text().contains("secret-check"), "{}", r.text());
    assert_eq!(r.json()["task_list"][0]["has_hint"], true);
    assert_eq!(
        h.get("/api/v1/labs/nope", &h.admin_token).await.status,
        StatusCode::NOT_FOUND
    );
}

/// A lab that fails validation is not in the catalogue, but authors and admins see why,
/// by file and line; learners may not.
#[tokio::test]
async fn authors_see_why_a_lab_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_owned();
    let h = Harness::with(|c| c.labs = base.clone()).await;
    let good = dir.path().join("good");
    let bad = dir.path().join("broken");
    std::fs::create_dir(&good).unwrap();
    std::fs::create_dir(&bad).unwrap();
    std::fs::write(good.join("index.md"), "---\ntitle: Good\n---\nFine.\n").unwrap();
    std::fs::write(
        bad.join("index.md"),
        "---\ntitle: Broken\nkind: tutorail\n---\n",
    )
    .unwrap();
    let (labs, problems) = sandlab_lab::load_catalogue(dir.path(), None);
    h.state.set_labs(labs);
    h.state.set_lab_problems(problems);
    let list = h.get("/api/v1/labs", &h.admin_token).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    for role in [Role::Author, Role::Admin] {
        let token = h.user(&format!("seer-{role:?}").to_lowercase(), role).await;
        let r = h.get("/api/v1/lab-problems", &token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let p = &r.json()["items"][0];
        assert_eq!(p["file"], "broken/index.md", "{p}");
        assert_eq!(p["line"], 3, "{p}");
        assert!(p["message"].as_str().unwrap().contains("tutorail"), "{p}");
    }
    let learner = h.user("plain-learner", Role::Learner).await;
    let r = h.get("/api/v1/lab-problems", &learner).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

#[tokio::test]
async fn a_sandbox_whose_init_dies_is_marked_failed() {
    let h = Harness::new().await;
    let id = h.sandbox(&h.admin_token).await;
    h.driver.stop(&id.parse().unwrap()).await.unwrap();
    let url = format!("/api/v1/sandboxes/{id}");
    let rec = wait_until(
        "the sandbox is marked failed",
        Duration::from_secs(15),
        || async {
            let v = h.get(&url, &h.admin_token).await.json();
            (v["state"] == "failed").then_some(v)
        },
    )
    .await;
    assert!(rec["reason"].as_str().unwrap().contains("gone"), "{rec}");
    let r = h
        .post(
            &format!("{url}/exec"),
            &h.admin_token,
            json!({"cmd": ["true"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        h.delete(&url, &h.admin_token).await.status,
        StatusCode::NO_CONTENT
    );
}

/// Two lab directories: both catalogues are served; a slug the first already has is left
/// out of the second, with a problem saying so.
#[test]
fn two_lab_directories_make_one_catalogue() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (dir, slug, title) in [
        (&a, "one", "One"),
        (&b, "two", "Two"),
        (&b, "one", "Other one"),
    ] {
        let lab = dir.path().join(slug);
        std::fs::create_dir_all(&lab).unwrap();
        std::fs::write(
            lab.join("index.md"),
            format!("---\ntitle: {title}\n---\nText.\n"),
        )
        .unwrap();
    }
    let load: sandlab_server::catalogue::Loader =
        std::sync::Arc::new(|d: &std::path::Path| sandlab_lab::load_catalogue(d, None));
    let (labs, problems) =
        sandlab_server::catalogue::load_all(&load, &[a.path().to_owned(), b.path().to_owned()]);
    let titles: Vec<&str> = labs.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles.contains(&"One") && titles.contains(&"Two"),
        "{titles:?}"
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("already a lab of"),
        "{}",
        problems[0]
    );
}

/// A draft lab is a preview for authors and admins: learners neither list, read nor start
/// it (404, as for a lab that does not exist).
#[tokio::test]
async fn a_draft_lab_is_seen_only_by_authors_and_admins() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    for (slug, draft) in [("published", false), ("preview", true)] {
        let lab = dir.path().join(slug);
        std::fs::create_dir(&lab).unwrap();
        std::fs::write(
            lab.join("index.md"),
            format!("---\ntitle: {slug}\ndraft: {draft}\n---\nText.\n"),
        )
        .unwrap();
    }
    let (labs, problems) = sandlab_lab::load_catalogue(dir.path(), None);
    assert!(problems.is_empty(), "{problems:?}");
    h.state.set_labs(labs);
    let learner = h.user("draft-learner", Role::Learner).await;
    let author = h.user("draft-author", Role::Author).await;
    let slugs = |v: serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        slugs(h.get("/api/v1/labs", &learner).await.json()),
        ["published"]
    );
    let mut seen = slugs(h.get("/api/v1/labs", &author).await.json());
    seen.sort();
    assert_eq!(seen, ["preview", "published"]);
    let r = h.get("/api/v1/labs/preview", &author).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["draft"], true);
    assert_eq!(
        h.get("/api/v1/labs/preview", &learner).await.status,
        StatusCode::NOT_FOUND
    );
    let r = h
        .post("/api/v1/labs/preview/sessions", &learner, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

/// A sandbox made through the API is named `sandbox` inside unless the request names it
/// (issue 13: the playground's hostname was its id); a name that is no DNS label is 400.
#[tokio::test]
async fn api_sandboxes_have_a_name_for_a_hostname() {
    let h = Harness::new().await;
    let r = h
        .post("/api/v1/sandboxes", &h.admin_token, json!({"ttl": "5m"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["hostname"], "sandbox");
    let r = h
        .post(
            "/api/v1/sandboxes",
            &h.admin_token,
            json!({"ttl": "5m", "hostname": "web01"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["hostname"], "web01");
    for bad in ["-x", "Web", "a.b", "", &"x".repeat(64)] {
        let r = h
            .post(
                "/api/v1/sandboxes",
                &h.admin_token,
                json!({"ttl": "5m", "hostname": bad}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "invalid_hostname");
    }
}
