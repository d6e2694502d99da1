//! Labs published from Git (issue 13, item 9), with real git: a repository is cloned, a
//! push reaches the clone when the forge's webhook calls `POST /api/v1/labs/sync` with the
//! secret (GitLab's header, and GitHub's signature), and a call without it changes nothing.

mod common;

use std::path::Path;
use std::process::Command;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;

const SECRET: &str = "a-webhook-secret-of-some-length";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn add_lab(work: &Path, slug: &str) {
    let dir = work.join(slug);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("index.md"),
        format!("---\ntitle: {slug}\n---\nText.\n"),
    )
    .unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", slug]);
    git(work, &["push", "-q", "origin", "HEAD:main"]);
}

fn clone(from: &Path, to: &Path) {
    let ok = Command::new("git")
        .args(["clone", "-q"])
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success(), "git clone");
}

/// A bare repository `labs.git` under `tmp` and a work tree that pushes to it, with one
/// lab, `first`, pushed.
fn upstream(tmp: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (bare, work) = (tmp.join("labs.git"), tmp.join("work"));
    let ok = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(ok.success(), "git init");
    clone(&bare, &work);
    add_lab(&work, "first");
    (bare, work)
}

#[tokio::test]
async fn a_push_reaches_the_catalogue_through_the_webhook() {
    let tmp = tempfile::tempdir().unwrap();
    let (bare, work) = upstream(tmp.path());
    let url = format!("file://{}", bare.display());
    let clone = sandlab_server::lab_sync::clone_dir(tmp.path(), &url);
    sandlab_server::lab_sync::ensure_clone(&url, &clone)
        .await
        .unwrap();
    assert!(clone.join("first/index.md").exists());

    let dir = clone.clone();
    let h = Harness::with(move |c| {
        c.labs = dir;
        c.labs_sync_secret = Some(SECRET.into());
    })
    .await;
    add_lab(&work, "second");
    let sync = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/labs/sync");
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b.body(Body::from(body)).unwrap()
    };
    // Without the secret, or with a wrong one: 401, and nothing pulled.
    let r = h.send(sync(vec![], "{}")).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    let r = h
        .send(sync(vec![("x-gitlab-token", "wrong".into())], "{}"))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!clone.join("second").exists());
    // GitLab's token.
    let r = h
        .send(sync(vec![("x-gitlab-token", SECRET.into())], "{}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["synced"], 1, "{}", r.text());
    let (labs, problems) = sandlab_lab::load_catalogue(&clone, None);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(labs.len(), 2);
    // GitHub's signature over the body.
    add_lab(&work, "third");
    let body = "{\"ref\":\"refs/heads/main\"}";
    let sig = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf '%s' '{body}' | openssl dgst -sha256 -hmac '{SECRET}' | awk '{{print $NF}}'"
        ))
        .output()
        .unwrap();
    let sig = String::from_utf8(sig.stdout).unwrap();
    let r = h
        .send(sync(
            vec![("x-hub-signature-256", format!("sha256={}", sig.trim()))],
            body,
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(clone.join("third/index.md").exists());
}

#[tokio::test]
async fn the_webhook_is_off_without_a_secret() {
    let h = Harness::new().await;
    let r = h
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/api/v1/labs/sync")
                .header("x-gitlab-token", SECRET)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

/// An operator's own clone is only fast-forwarded: a new commit arrives, a local commit
/// that diverged makes the sync fail and stays.
#[tokio::test]
async fn an_operators_clone_is_fast_forwarded_never_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let (bare, work) = upstream(tmp.path());
    let served = tmp.path().join("served");
    clone(&bare, &served);
    add_lab(&work, "second");
    sandlab_server::lab_sync::sync_one(&served).await.unwrap();
    assert!(served.join("second/index.md").exists());
    // A local commit on the served clone, and a diverging push upstream.
    std::fs::write(served.join("local.txt"), "mine").unwrap();
    git(&served, &["add", "-A"]);
    git(&served, &["commit", "-q", "-m", "local"]);
    add_lab(&work, "third");
    let err = sandlab_server::lab_sync::sync_one(&served)
        .await
        .unwrap_err();
    assert!(err.contains("updating"), "{err}");
    assert!(
        served.join("local.txt").exists(),
        "the operator's commit was thrown away"
    );
}
