//! What the web UI needs of the server, in process: its pages and files (from a web
//! directory, with the security headers), the image list, directory listings, the
//! caller's progress in the catalogue, and logins from the loopback names of the public
//! URL.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::*;
use sandlab_store::Role;
use serde_json::json;

fn page(path: &str, accept: &str) -> Request<Body> {
    Request::builder()
        .uri(path)
        .header(header::ACCEPT, accept)
        .body(Body::empty())
        .unwrap()
}

/// A built UI in `<tmp>/web`, served through `server.web_dir`, with a file beside it
/// that no request may reach.
async fn with_web_dir() -> (Harness, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let web = root.path().join("web");
    std::fs::create_dir_all(web.join("assets")).unwrap();
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>Sandlab</title>",
    )
    .unwrap();
    std::fs::write(web.join("assets/app-ABC.js"), "console.log(1)").unwrap();
    std::fs::write(root.path().join("secret.txt"), "TOP-SECRET").unwrap();
    let h = Harness::with(move |c| c.web_dir = Some(web)).await;
    (h, root)
}

#[tokio::test]
async fn browser_pages_get_the_app_and_programs_get_json() {
    let (h, _web) = with_web_dir().await;
    for path in [
        "/",
        "/labs/git-basics",
        "/sessions/ls-abc",
        "/admin",
        "/no/such/page",
    ] {
        let r = h.send(page(path, "text/html,application/xhtml+xml")).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.text().contains("<title>Sandlab</title>"), "{path}");
        let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-cache");
    }
    // A program asking for an unknown path gets the JSON 404, not a page.
    let r = h.send(page("/no/such/page", "*/*")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    // The API's own 404 is unchanged for browsers too.
    let r = h.send(page("/api/v1/nothing", "text/html")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
    // Unsafe methods never reach the UI.
    let r = h
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/labs")
                .header(header::ACCEPT, "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn asset_files_are_served_and_paths_cannot_leave_the_web_dir() {
    let (h, _web) = with_web_dir().await;
    let r = h.send(page("/assets/app-ABC.js", "*/*")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "console.log(1)");
    assert_eq!(
        r.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    for bad in [
        "/assets/../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/..%2fsecret.txt",
        "/assets/.hidden",
        "/assets/missing.js",
    ] {
        let r = h.send(page(bad, "text/html")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}: {}", r.text());
        assert!(!r.text().contains("TOP-SECRET"), "{bad} leaked a file");
    }
}

#[tokio::test]
async fn images_are_listed_for_the_playground_picker() {
    let h = Harness::new().await;
    let alice = h.user("alice", Role::Learner).await;
    let r = h.get("/api/v1/images", &alice).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "debian");
    assert!(items[0]["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(items[0]["created_at_ms"], 1_700_000_000_000u64);
    let r = h.call(Method::GET, "/api/v1/images", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_directory_lists_through_the_agent_dirs_first() {
    let h = Harness::new().await;
    let alice = h.user("alice", Role::Learner).await;
    let bob = h.user("bob", Role::Learner).await;
    let id = h.sandbox(&alice).await;
    // The test driver runs the agent on the host, so a host directory stands in.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.txt"), "hello").unwrap();
    std::fs::create_dir(dir.path().join("z-dir")).unwrap();
    std::fs::write(dir.path().join("a.txt"), "").unwrap();
    let path = format!("/api/v1/sandboxes/{id}/dir?path={}", dir.path().display());
    let r = h.get(&path, &alice).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["z-dir", "a.txt", "b.txt"]);
    assert_eq!(v["items"][0]["kind"], "dir");
    assert_eq!(v["items"][2]["kind"], "file");
    assert_eq!(v["items"][2]["size"], 5);
    assert!(v["items"][2]["mtime_ms"].as_i64().unwrap() > 1_600_000_000_000);

    assert_eq!(h.get(&path, &bob).await.status, StatusCode::NOT_FOUND);
    let r = h
        .get(&format!("/api/v1/sandboxes/{id}/dir?path=../etc"), &alice)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "invalid_path");
    let r = h
        .get(
            &format!(
                "/api/v1/sandboxes/{id}/dir?path={}/b.txt",
                dir.path().display()
            ),
            &alice,
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    r.error_code();
}

#[tokio::test]
async fn the_catalogue_shows_each_callers_own_progress_and_running_session_and_active_filter() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let text = format!(
        "---\ntitle: Progress lab\nplayground:\n  nodes:\n    - name: node01\ntasks:\n  \
         one:\n    run: test -f {d}/one\n    interval: 100ms\n  \
         two:\n    run: test -f {d}/two\n    interval: 100ms\n---\nText\n"
    );
    let lab = sandlab_lab::parse_index(
        "progress-lab",
        &text,
        std::path::Path::new("progress-lab/index.md"),
        None,
    )
    .unwrap();
    h.state.set_labs(vec![lab]);
    let alice = h.user("alice", Role::Learner).await;
    let bob = h.user("bob", Role::Learner).await;
    let progress = |token: &str| {
        let token = token.to_owned();
        let h = &h;
        async move { h.get("/api/v1/labs", &token).await.json()["items"][0]["progress"].clone() }
    };
    assert_eq!(
        progress(&alice).await,
        json!({"done": 0, "total": 2, "session": null})
    );

    let r = h
        .post("/api/v1/labs/progress-lab/sessions", &alice, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let sid = r.json()["id"].as_str().unwrap().to_owned();
    std::fs::write(dir.path().join("one"), "").unwrap();
    wait_until("task one is done", Duration::from_secs(10), || async {
        (progress(&alice).await["done"] == 1).then_some(())
    })
    .await;
    assert_eq!(
        progress(&alice).await,
        json!({"done": 1, "total": 2, "session": sid})
    );
    let detail = h.get("/api/v1/labs/progress-lab", &alice).await.json();
    assert_eq!(detail["progress"]["session"], sid.as_str());
    let active = |token: &str| {
        let token = token.to_owned();
        let h = &h;
        async move {
            let r = h.get("/api/v1/sessions?active=true", &token).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            r.json()["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(active(&alice).await, vec![sid.clone()]);
    assert!(active(&bob).await.is_empty());
    assert_eq!(active(&h.admin_token).await, vec![sid.clone()]);
    let r = h.get("/api/v1/sessions?state=x", &alice).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Bob's view is his own.
    assert_eq!(
        progress(&bob).await,
        json!({"done": 0, "total": 2, "session": null})
    );
    // An ended session no longer shows; the progress stays.
    let r = h.delete(&format!("/api/v1/sessions/{sid}"), &alice).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        progress(&alice).await,
        json!({"done": 1, "total": 2, "session": null})
    );
    assert!(active(&alice).await.is_empty());
    // Without the filter the list answers from the stored records.
    let r = h.get("/api/v1/sessions", &alice).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_login_from_another_loopback_name_of_the_public_url_is_accepted() {
    let h = Harness::with(|c| c.public_url = "http://127.0.0.1:8080".into()).await;
    h.user("alice", Role::Learner).await;
    let login = |origin: &'static str| {
        Request::builder()
            .method(Method::POST)
            .uri("/api/v1/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ORIGIN, origin)
            .body(Body::from(
                json!({"username": "alice", "password": PASSWORD}).to_string(),
            ))
            .unwrap()
    };
    assert_eq!(
        h.send(login("http://localhost:8080")).await.status,
        StatusCode::OK
    );
    let r = h.send(login("http://localhost:9090")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.error_code(), "bad_origin");
    let r = h.send(login("http://evil.example:8080")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
