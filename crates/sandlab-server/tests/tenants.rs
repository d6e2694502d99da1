//! Issue 19: cross-tenant checks over the whole API. Every operation of the OpenAPI
//! document that names a resource by id is called by another learner with the ids of
//! Alice's sandbox, lab session, token and account, with a valid body and query, so that
//! ownership is the only reason to refuse. Each must refuse without a 2xx or a 5xx, and
//! afterwards everything of Alice's is as it was. Operations added later are swept too.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use sandlab_store::Role;
use serde_json::{json, Value};

fn lab(dir: &std::path::Path) -> sandlab_lab::Lab {
    let d = dir.display();
    let text = format!(
        "---\ntitle: Tenant lab\nplayground:\n  ttl: 10m\n  nodes:\n    - name: node01\ntasks:\n  \
         first:\n    run: test -f {d}/first\n    hint: Touch `first`.\n    solve: touch {d}/first\n---\nText\n"
    );
    sandlab_lab::parse_index(
        "tenant-lab",
        &text,
        std::path::Path::new("tenant-lab/index.md"),
        None,
    )
    .unwrap()
}

/// A body and query that would be accepted from the owner, so that only ownership differs.
fn valid_request(
    path: &str,
    method: &Method,
    marker: &std::path::Path,
) -> (String, Option<Body>, Option<&'static str>) {
    let json_body = |v: Value| Some(Body::from(v.to_string()));
    let (query, body, ctype) = match (path, method.as_str()) {
        (p, "POST") if p.ends_with("/exec") => (
            "",
            json_body(json!({ "cmd": ["sh", "-c", format!("echo owned > {}", marker.display())] })),
            Some("application/json"),
        ),
        (p, "POST") if p.ends_with("/extend") => (
            "",
            json_body(json!({ "ttl": "5m" })),
            Some("application/json"),
        ),
        (p, "GET") if p.ends_with("/files") => ("?path=/tmp/secret", None, None),
        (p, "PUT") if p.ends_with("/files") => (
            "?path=/tmp/secret",
            Some(Body::from("overwritten")),
            Some("application/octet-stream"),
        ),
        (p, "GET") if p.ends_with("/dir") || p.ends_with("/archive") => ("?path=/tmp", None, None),
        (p, "PATCH") if p.starts_with("/api/v1/orgs/{id}/members/") => (
            "",
            json_body(json!({ "role": "member" })),
            Some("application/json"),
        ),
        (p, "PATCH") if p.starts_with("/api/v1/orgs/") => (
            "",
            json_body(json!({ "name": "Taken", "max_sandboxes": 1000 })),
            Some("application/json"),
        ),
        (p, "POST") if p.ends_with("/members") => (
            "",
            json_body(json!({ "user": "bob", "role": "owner" })),
            Some("application/json"),
        ),
        (p, "PATCH") if p.starts_with("/api/v1/users/") => (
            "",
            json_body(json!({ "role": "admin", "disabled": true, "password": "taken over!" })),
            Some("application/json"),
        ),
        (_, "POST") => ("", json_body(json!({})), Some("application/json")),
        _ => ("", None, None),
    };
    (query.to_owned(), body, ctype)
}

#[tokio::test]
async fn another_learner_can_reach_nothing_of_alices_by_id() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    h.state.set_labs(vec![lab(dir.path())]);
    let alice = h.user("alice", Role::Learner).await;
    let bob = h.user("bob", Role::Learner).await;

    let sandbox = h.sandbox(&alice).await;
    let secret = dir.path().join("secret-of-alice");
    let put = h
        .call(
            Method::POST,
            &format!("/api/v1/sandboxes/{sandbox}/exec"),
            Some(&alice),
            Some(json!({ "cmd": ["sh", "-c", format!("echo mine > {}", secret.display())] })),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text());
    let session = h
        .post("/api/v1/labs/tenant-lab/sessions", &alice, json!({}))
        .await;
    assert_eq!(session.status, StatusCode::CREATED, "{}", session.text());
    let session = session.json()["id"].as_str().unwrap().to_owned();
    let token = h
        .post("/api/v1/tokens", &alice, json!({ "name": "second" }))
        .await;
    assert_eq!(token.status, StatusCode::CREATED, "{}", token.text());
    let token_id = token.json()["id"].as_str().unwrap().to_owned();
    let alice_id = h.get("/api/v1/me", &alice).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Alice owns an organisation Bob is not in (he has one of his own).
    let org = h
        .post("/api/v1/orgs", &h.admin_token, json!({ "slug": "alices" }))
        .await;
    assert_eq!(org.status, StatusCode::CREATED, "{}", org.text());
    let org_id = org.json()["id"].as_str().unwrap().to_owned();
    h.post("/api/v1/orgs", &h.admin_token, json!({ "slug": "bobs" }))
        .await;
    for (org, user) in [("alices", "alice"), ("bobs", "bob")] {
        let r = h
            .post(
                &format!("/api/v1/orgs/{org}/members"),
                &h.admin_token,
                json!({ "user": user, "role": "owner" }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    }

    let marker = dir.path().join("ran-for-bob");
    let doc = h.get("/api/v1/openapi.json", &alice).await.json();
    let mut swept = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let id = if path.starts_with("/api/v1/sandboxes/{id}") {
            &sandbox
        } else if path.starts_with("/api/v1/sessions/{id}") {
            &session
        } else if path.starts_with("/api/v1/tokens/{id}") {
            &token_id
        } else if path.starts_with("/api/v1/users/{id}") {
            &alice_id
        } else if path.starts_with("/api/v1/orgs/{id}") {
            &org_id
        } else {
            continue;
        };
        let concrete = path
            .replace("{id}", id)
            .replace("{task}", "first")
            .replace("{user_id}", &alice_id)
            .replace("{port}", "8000")
            .replace("{share}", "pg-aaaaaaaaaaaaaaaa");
        for method in ops.as_object().unwrap().keys() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let (query, body, ctype) = valid_request(path, &method, &marker);
            let mut req = Request::builder()
                .method(method.clone())
                .uri(format!("{concrete}{query}"))
                .header(header::AUTHORIZATION, format!("Bearer {bob}"));
            if let Some(c) = ctype {
                req = req.header(header::CONTENT_TYPE, c);
            }
            let r = h
                .send(req.body(body.unwrap_or_else(Body::empty)).unwrap())
                .await;
            assert!(
                r.status == StatusCode::NOT_FOUND || r.status == StatusCode::FORBIDDEN,
                "{method} {path} as another learner answered {}: {}",
                r.status,
                r.text()
            );
            swept += 1;
        }
    }
    assert!(swept >= 15, "only {swept} operations swept");

    // Everything of Alice's is as it was.
    let sb = h.get(&format!("/api/v1/sandboxes/{sandbox}"), &alice).await;
    assert_eq!(sb.status, StatusCode::OK, "{}", sb.text());
    assert_eq!(sb.json()["state"], "running");
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "mine\n",
        "Alice's file changed"
    );
    let s = h.get(&format!("/api/v1/sessions/{session}"), &alice).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.text());
    assert_ne!(s.json()["state"], "ended", "{}", s.text());
    let tokens = h.get("/api/v1/tokens", &alice).await;
    assert!(
        tokens.text().contains(&token_id),
        "Alice's token is gone: {}",
        tokens.text()
    );
    let me = h.get("/api/v1/me", &alice).await;
    assert_eq!(
        me.status,
        StatusCode::OK,
        "Alice was locked out: {}",
        me.text()
    );
    assert_eq!(me.json()["role"], "learner", "{}", me.text());
    let org = h.get(&format!("/api/v1/orgs/{org_id}"), &alice).await;
    assert_eq!(
        org.status,
        StatusCode::OK,
        "Alice's organisation is gone: {}",
        org.text()
    );
    assert_eq!(org.json()["name"], "alices", "{}", org.text());
    assert_eq!(org.json()["role"], "owner", "{}", org.text());
    // Nothing ran in Alice's sandbox on Bob's behalf (the test driver runs on the host).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!marker.exists(), "a command ran for Bob");
}
