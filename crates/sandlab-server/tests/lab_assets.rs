//! A lab's assets: served to whoever may see the lab, confined to its `assets/` directory
//! (no `..`, no symlink out of it), and never as a page of the UI's origin.

mod common;

use std::os::unix::fs::symlink;

use axum::http::header::{
    CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::StatusCode;
use common::*;
use sandlab_store::Role;

const INDEX: &str = "---\ntitle: Pictures\nplayground:\n  nodes:\n    - name: node01\n---\n![diagram](assets/diagram.png)\n";

#[tokio::test]
async fn assets_are_served_confined_and_never_as_pages() {
    let labs = tempfile::tempdir().unwrap();
    let lab = labs.path().join("pictures");
    std::fs::create_dir_all(lab.join("assets/sub")).unwrap();
    std::fs::write(lab.join("index.md"), INDEX).unwrap();
    std::fs::write(lab.join("assets/diagram.png"), b"\x89PNG fake").unwrap();
    std::fs::write(
        lab.join("assets/sub/page.html"),
        b"<script>alert(1)</script>",
    )
    .unwrap();
    std::fs::write(
        lab.join("assets/logo.svg"),
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    )
    .unwrap();
    std::fs::write(lab.join("solution.sh"), b"the answer").unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"host secret").unwrap();
    symlink(outside.path().join("secret"), lab.join("assets/escape")).unwrap();
    symlink("../solution.sh", lab.join("assets/up")).unwrap();

    let dir = labs.path().to_owned();
    let h = Harness::with(move |c| c.labs = dir).await;
    let loaded = sandlab_lab::load_lab(&lab, None).unwrap();
    assert!(
        loaded
            .html
            .contains("/api/v1/labs/pictures/assets/diagram.png"),
        "{}",
        loaded.html
    );
    h.state.set_labs(vec![loaded]);
    let learner = h.user("lena", Role::Learner).await;

    let r = h
        .get("/api/v1/labs/pictures/assets/diagram.png", &learner)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.bytes, b"\x89PNG fake");
    assert_eq!(r.headers[CONTENT_TYPE], "image/png");
    assert_eq!(r.headers[X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(r.headers[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("sandbox"));

    // HTML is a download; SVG is an image under a policy that runs no script.
    let r = h
        .get("/api/v1/labs/pictures/assets/sub/page.html", &learner)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[CONTENT_TYPE], "application/octet-stream");
    assert!(r.headers[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let r = h
        .get("/api/v1/labs/pictures/assets/logo.svg", &learner)
        .await;
    assert_eq!(r.headers[CONTENT_TYPE], "image/svg+xml");
    let csp = r.headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );

    // Nothing outside assets/: not by `..`, not through a symlink (resolved inside assets/,
    // where its target does not exist), not the lab's other files.
    for path in [
        "../solution.sh",
        "sub/../../solution.sh",
        "%2e%2e/solution.sh",
        "escape",
        "up",
        "missing.png",
        "sub",
    ] {
        let r = h
            .get(&format!("/api/v1/labs/pictures/assets/{path}"), &learner)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text());
        assert!(
            !r.text().contains("secret") && !r.text().contains("answer"),
            "{path}"
        );
    }
    // A lab whose `assets` is itself a symlink (to the host's root, or to another lab)
    // serves nothing at all.
    for (name, target) in [("rooted", "/"), ("borrowed", "../pictures")] {
        let other = labs.path().join(name);
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("index.md"), INDEX.replace("Pictures", name)).unwrap();
        symlink(target, other.join("assets")).unwrap();
        let mut loaded = sandlab_lab::load_lab(&lab, None).unwrap();
        loaded.slug = name.to_owned();
        h.state.set_labs(vec![loaded]);
        for path in [
            "etc/passwd",
            "index.md",
            "assets/diagram.png",
            "diagram.png",
        ] {
            let r = h
                .get(&format!("/api/v1/labs/{name}/assets/{path}"), &learner)
                .await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{name}/{path}: {}",
                r.text()
            );
        }
    }
    let loaded = sandlab_lab::load_lab(&lab, None).unwrap();
    h.state.set_labs(vec![loaded]);

    // An unknown lab, and no anonymous access.
    let r = h
        .get("/api/v1/labs/nope/assets/diagram.png", &learner)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.get("/api/v1/labs/pictures/assets/diagram.png", "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
