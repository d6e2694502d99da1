//! Issue 19, break 9: a lab session acknowledged with 201 was lost when the server died
//! during its set-up (kill -9 while init ran: after the restart the session was ended and
//! its sandboxes removed). Now it is set up again under its id: fresh nodes, init run,
//! ready; the nodes it had before the crash are gone.

mod common;

use std::time::Duration;

use common::server::Server;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const LAB: &str = "---\ntitle: Slow set-up\nplayground:\n  ttl: 10m\n  nodes:\n    - name: node01\n    - name: node02\ntasks:\n  prepare:\n    init: true\n    run: sleep 3; touch /root/prepared\n  check:\n    run: test -f /root/done\n---\nA lab whose init takes a while.\n";

#[test]
fn a_session_killed_mid_setup_is_set_up_again_under_its_id() {
    let data = data_dir();
    let mut server = Server::start(&data);
    let dir = server.labs_dir().join("slow-setup");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.md"), LAB).unwrap();
    let api = server.add_user("learner");
    assert!(
        wait_until(Duration::from_secs(15), || {
            api.call(Method::GET, "/api/v1/labs/slow-setup", None)
                .status
                == StatusCode::OK
        }),
        "the lab never appeared in the catalogue"
    );
    let r = api.call(
        Method::POST,
        "/api/v1/labs/slow-setup/sessions",
        Some(&json!({})),
    );
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let session = r.json();
    let id = session["id"].as_str().unwrap().to_owned();
    let before: Vec<String> = session["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["sandbox"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(before.len(), 2);
    // Die while init runs (it sleeps 3 s).
    server.kill9();
    server.restart();
    let path = format!("/api/v1/sessions/{id}");
    let mut last = serde_json::Value::Null;
    let ready = wait_until(Duration::from_secs(60), || {
        last = api.call(Method::GET, &path, None).json();
        last["state"] == "ready"
    });
    assert!(
        ready,
        "the session did not become ready again: {last}\n{}",
        server.log()
    );
    let after: Vec<String> = last["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["sandbox"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(after.len(), 2, "{last}");
    for sb in &after {
        assert!(
            !before.contains(sb),
            "a node from before the crash was kept: {sb}"
        );
    }
    // Init (no `machine:`, so on the first node) ran on the fresh node01.
    let node01 = session_node(&last, "node01");
    let out = api.sh(&node01, "test -f /root/prepared && echo prepared");
    assert_eq!(out["stdout"], "prepared\n", "init did not run on {node01}");
    // The nodes from before the crash left nothing behind.
    for sb in &before {
        assert!(
            wait_until(Duration::from_secs(15), || record(&data, sb).is_none()),
            "the old node {sb} still has a record"
        );
        assert_eq!(leftovers(&data, sb), Vec::<String>::new(), "traces of {sb}");
    }
    let r = api.call(Method::DELETE, &path, None);
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
}
