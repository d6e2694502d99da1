//! Warm lab sessions (`[[lab_pool]]`, issue 17's "warm pool of cluster playgrounds"): a
//! start of a pooled lab is handed a session set up ahead of time, ready at once (its init
//! ran before anyone asked), whose nodes are the learner's and whose tasks are checked;
//! the pool refills; a parked session survives a kill -9, and one nobody wants any more is
//! removed with its nodes. Plain nodes stand in for a cluster's here: the hand-over is the
//! same, and `sandlab bench cluster` measures it on a real one.

mod common;

use std::time::Duration;

use common::server::{Options, Server};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Two nodes; an init task slow enough that a cold start answers `starting`.
const LAB: &str = "---\ntitle: Warm two\nplayground:\n  ttl: 10m\n  nodes:\n    - name: node01\n    - name: node02\ntasks:\n  prepare:\n    init: true\n    run: sleep 3; touch /root/prepared\n  finish:\n    machine: node02\n    run: test -f /root/finished\n---\nA lab kept warm.\n";
const POOLED: &str = "[[lab_pool]]\nlab = \"warm-two\"\nsize = 1\n";
const READY: &str = "sandlab_lab_pool_ready";
const LABEL: &str = "lab=\"warm-two\"";

/// The warm sessions of `warm-two` as the admin lists them: id and node sandbox ids.
fn warm(server: &Server) -> Vec<(String, Vec<String>)> {
    let r = server
        .admin
        .call(Method::GET, "/api/v1/sessions?active=true", None);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["owner"] == "pool:lab:warm-two")
        .map(|s| (s["id"].as_str().unwrap().to_owned(), sandboxes(s)))
        .collect()
}

fn sandboxes(session: &Value) -> Vec<String> {
    session["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["sandbox"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until one warm session is parked; it.
fn parked(server: &Server) -> (String, Vec<String>) {
    let mut seen = Vec::new();
    let ok = wait_until(Duration::from_secs(90), || {
        seen = warm(server);
        server.metric(READY, LABEL) == Some(1.0) && seen.len() == 1
    });
    assert!(ok, "no warm session was parked: {seen:?}\n{}", server.log());
    seen.remove(0)
}

#[test]
fn a_warm_session_is_handed_over_ready_and_the_pool_refills() {
    let data = data_dir();
    let mut server = Server::start_with(
        &data,
        Options {
            config: Some(POOLED.into()),
            env: Vec::new(),
        },
    );
    let dir = server.labs_dir().join("warm-two");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.md"), LAB).unwrap();
    let (warm_id, warm_nodes) = parked(&server);
    assert_eq!(warm_nodes.len(), 2);
    // Parked: ready, its init ran, nothing checked, the nodes nobody's.
    let learner = server.add_user("learner");
    let mine = learner.call(Method::GET, "/api/v1/sandboxes", None).json();
    assert_eq!(mine["items"].as_array().unwrap().len(), 0, "{mine}");
    assert_eq!(
        learner
            .call(Method::GET, &format!("/api/v1/sessions/{warm_id}"), None)
            .status,
        StatusCode::NOT_FOUND,
        "a learner could see a warm session"
    );

    // The start is handed the warm session: ready in the answer itself.
    let r = learner.call(
        Method::POST,
        "/api/v1/labs/warm-two/sessions",
        Some(&json!({})),
    );
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let session = r.json();
    assert_eq!(
        session["id"],
        warm_id.as_str(),
        "not the warm session: {session}"
    );
    assert_eq!(session["state"], "ready", "{session}");
    assert_eq!(session["owner"], learner.user_id.as_str(), "{session}");
    // The lab's ten minutes from the hand-over, not the pool's hours.
    let ttl_left = session["ttl_left_ms"].as_u64().unwrap();
    assert!(
        ttl_left <= 600_000,
        "the session has the pool's time, not the lab's: {session}"
    );
    let (node01, node02) = (
        session_node(&session, "node01"),
        session_node(&session, "node02"),
    );
    // The nodes are the learner's now: listed, with the lab's deadline, usable.
    let mine = learner.call(Method::GET, "/api/v1/sandboxes", None).json();
    let mut ids: Vec<String> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = warm_nodes.clone();
    expected.sort();
    assert_eq!(ids, expected, "{mine}");
    let out = learner.sh(&node01, "test -f /root/prepared && echo prepared");
    assert_eq!(out["stdout"], "prepared\n", "init did not run on node01");
    // Checked from the hand-over on.
    let task = |s: &Value| {
        s["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == "finish")
            .map(|t| t["state"].clone())
    };
    assert_ne!(task(&session), Some(json!("done")), "{session}");
    learner.sh(&node02, "touch /root/finished");
    let path = format!("/api/v1/sessions/{warm_id}");
    let mut last = Value::Null;
    assert!(
        wait_until(Duration::from_secs(30), || {
            last = learner.call(Method::GET, &path, None).json();
            task(&last) == Some(json!("done"))
        }),
        "the task never turned done after the hand-over: {last}"
    );

    // The pool refills with a new session.
    let (refill_id, refill_nodes) = parked(&server);
    assert_ne!(refill_id, warm_id);

    // kill -9: the learner's session resumes, the parked one is parked again.
    server.kill9();
    server.restart();
    let (again_id, _) = parked(&server);
    assert_eq!(
        again_id,
        refill_id,
        "the parked session was not kept\n{}",
        server.log()
    );
    let r = learner.call(Method::GET, &path, None);
    assert_eq!(r.json()["state"], "ready", "{}", r.text());
    let out = learner.sh(&node02, "echo alive");
    assert_eq!(out["stdout"], "alive\n");

    // Without the pool the parked session is not wanted: it goes, nodes and all.
    server.kill9();
    server.set_config("");
    server.restart();
    for sb in &refill_nodes {
        assert!(
            wait_until(Duration::from_secs(30), || record(&data, sb).is_none()),
            "the unwanted warm node {sb} still has a record\n{}",
            server.log()
        );
        assert_eq!(leftovers(&data, sb), Vec::<String>::new(), "traces of {sb}");
    }
    assert!(warm(&server).is_empty());
    let r = learner.call(Method::DELETE, &path, None);
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
}

#[test]
fn a_lab_pool_with_a_bad_entry_stops_the_server_with_its_key() {
    let data = data_dir();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sandlab.toml");
    for (text, key) in [
        (
            "[[lab_pool]]\nlab = \"Bad Slug\"\nsize = 1\n",
            "lab_pool[0].lab",
        ),
        (
            "[[lab_pool]]\nlab = \"a\"\nsize = 100\n",
            "lab_pool[0].size",
        ),
        (
            "[[lab_pool]]\nlab = \"a\"\nsize = 1\n[[lab_pool]]\nlab = \"a\"\nsize = 2\n",
            "lab_pool[1].lab",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandlab"))
            .arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: it started");
        assert!(err.contains(key), "{text}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{text}: {err}");
    }
}
