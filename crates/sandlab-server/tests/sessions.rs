//! Lab sessions in process: start, init, live task states over SSE, progress kept across
//! sessions, hints, extend, owners, delete.

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use futures::StreamExt;
use sandlab_store::{Role, Store};
use serde_json::json;

/// A two-node lab whose scripts work in `dir` on the host (the test driver runs agents on
/// the host).
fn lab(dir: &std::path::Path) -> sandlab_lab::Lab {
    let d = dir.display();
    let text = format!(
        "---\ntitle: Test lab\nplayground:\n  ttl: 10m\n  nodes:\n    - name: node01\n    - name: node02\ntasks:\n  \
         prepare:\n    init: true\n    run: mkdir -p {d}/work\n  \
         first:\n    run: test -f {d}/work/first\n    hint: Touch `first`.\n    solve: touch {d}/work/first\n    interval: 200ms\n  \
         second:\n    needs: [first]\n    machine: node02\n    run: test -f {d}/work/second\n    solve: touch {d}/work/second\n    interval: 200ms\n---\nText\n"
    );
    sandlab_lab::parse_index(
        "test-lab",
        &text,
        std::path::Path::new("test-lab/index.md"),
        None,
    )
    .unwrap()
}

async fn session_state(h: &Harness, token: &str, id: &str) -> serde_json::Value {
    h.get(&format!("/api/v1/sessions/{id}"), token).await.json()
}

#[tokio::test]
async fn a_session_runs_init_checks_tasks_live_and_keeps_progress() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    h.state.set_labs(vec![lab(dir.path())]);
    let alice = h.user("alice", Role::Learner).await;
    let r = h
        .post("/api/v1/labs/test-lab/sessions", &alice, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let s = r.json();
    let id = s["id"].as_str().unwrap().to_owned();
    assert_eq!(s["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(h.driver.running_ids().len(), 2);
    wait_until("the session is ready", Duration::from_secs(10), || async {
        (session_state(&h, &alice, &id).await["state"] == "ready").then_some(())
    })
    .await;
    assert!(dir.path().join("work").is_dir(), "init did not run");
    let tasks = h
        .get(&format!("/api/v1/sessions/{id}/tasks"), &alice)
        .await
        .json();
    let state_of = |v: &serde_json::Value, t: &str| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == t)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state_of(&tasks, "prepare"), "done");
    assert_eq!(state_of(&tasks, "first"), "pending");
    assert_eq!(state_of(&tasks, "second"), "blocked");

    // Live events: the condition comes true and the task turns done within 1.5 s.
    let addr = serve(&h).await;
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/api/v1/sessions/{id}/events"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let start = Instant::now();
    std::fs::write(dir.path().join("work/first"), "").unwrap();
    while !seen.contains("\"task\":\"first\",\"state\":\"done\"")
        && !seen.contains("{\"state\":\"done\",\"task\":\"first\"}")
    {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("no event")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    assert!(
        seen.contains("event: session") && seen.contains("event: task"),
        "{seen}"
    );

    // Hints are revealed on request and remembered.
    let r = h
        .post(
            &format!("/api/v1/sessions/{id}/tasks/first/hint"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["html"]
        .as_str()
        .unwrap()
        .contains("<code>first</code>"));
    let tasks = h
        .get(&format!("/api/v1/sessions/{id}/tasks"), &alice)
        .await
        .json();
    assert!(tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == "first" && t["hint_revealed"] == true));
    assert_eq!(
        h.post(
            &format!("/api/v1/sessions/{id}/tasks/second/hint"),
            &alice,
            json!({})
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // Another user sees nothing.
    let mallory = h.user("mallory", Role::Learner).await;
    assert_eq!(
        h.get(&format!("/api/v1/sessions/{id}"), &mallory)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.delete(&format!("/api/v1/sessions/{id}"), &mallory)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(h.get("/api/v1/sessions", &mallory).await.json()["items"]
        .as_array()
        .unwrap()
        .is_empty());

    let r = h
        .post(
            &format!("/api/v1/sessions/{id}/extend"),
            &alice,
            json!({"ttl": "20m"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["ttl_left_ms"].as_u64().unwrap() > 900_000);

    assert_eq!(
        h.delete(&format!("/api/v1/sessions/{id}"), &alice)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert!(
        h.driver.running_ids().is_empty(),
        "the session's sandboxes remain"
    );

    // A new session starts with the done task done.
    std::fs::remove_file(dir.path().join("work/first")).unwrap();
    let s = h
        .post("/api/v1/labs/test-lab/sessions", &alice, json!({}))
        .await
        .json();
    let id = s["id"].as_str().unwrap().to_owned();
    let first = s["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "first")
        .unwrap()
        .clone();
    assert_eq!(first["state"], "done", "{s}");
    h.delete(&format!("/api/v1/sessions/{id}"), &alice).await;
    assert_eq!(
        h.post("/api/v1/labs/nope/sessions", &alice, json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_failing_init_fails_the_session() {
    let h = Harness::new().await;
    let text = "---\ntitle: Broken\ntasks:\n  prepare:\n    init: true\n    run: exit 1\n  check:\n    run: 'true'\n---\n";
    let lab = sandlab_lab::parse_index(
        "broken",
        text,
        std::path::Path::new("broken/index.md"),
        None,
    )
    .unwrap();
    h.state.set_labs(vec![lab]);
    let s = h
        .post("/api/v1/labs/broken/sessions", &h.admin_token, json!({}))
        .await
        .json();
    let id = s["id"].as_str().unwrap().to_owned();
    let v = wait_until("the session fails", Duration::from_secs(10), || async {
        let v = session_state(&h, &h.admin_token, &id).await;
        (v["state"] == "failed").then_some(v)
    })
    .await;
    assert!(v["reason"].as_str().unwrap().contains("prepare"), "{v}");
}

async fn serve(h: &Harness) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

#[tokio::test]
async fn the_catalogue_reloads_when_lab_files_change() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    let loader: sandlab_server::catalogue::Loader =
        std::sync::Arc::new(|d: &std::path::Path| sandlab_lab::load_catalogue(d, None));
    sandlab_server::catalogue::spawn_watcher(
        h.state.clone(),
        vec![dir.path().to_owned()],
        loader,
        h.state.shutdown().clone(),
    );
    let titles = || async {
        h.get("/api/v1/labs", &h.admin_token).await.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["title"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    std::fs::create_dir(dir.path().join("fresh")).unwrap();
    std::fs::write(
        dir.path().join("fresh/index.md"),
        "---\ntitle: First title\n---\nText\n",
    )
    .unwrap();
    wait_until("the new lab appears", Duration::from_secs(10), || async {
        (titles().await == ["First title"]).then_some(())
    })
    .await;
    std::fs::write(
        dir.path().join("fresh/index.md"),
        "---\ntitle: Second title, longer\n---\nText\n",
    )
    .unwrap();
    wait_until("the edit shows", Duration::from_secs(10), || async {
        (titles().await == ["Second title, longer"]).then_some(())
    })
    .await;
    std::fs::remove_dir_all(dir.path().join("fresh")).unwrap();
    wait_until("the lab goes", Duration::from_secs(10), || async {
        titles().await.is_empty().then_some(())
    })
    .await;
}

/// Issue 13 item 4: starting the same lab twice resumes it; a quota error says what holds
/// the sandboxes; a lab that does not fit is refused before it leaves a failed session.
#[tokio::test]
async fn a_second_start_resumes_and_the_quota_error_names_what_to_stop() {
    let h = Harness::with(|c| c.max_sandboxes_per_user = 3).await;
    let dir = tempfile::tempdir().unwrap();
    let mut other = lab(dir.path());
    other.slug = "other-lab".into();
    other.title = "Other lab".into();
    h.state.set_labs(vec![lab(dir.path()), other]);
    let alice = h.user("alice", Role::Learner).await;
    let r = h
        .post("/api/v1/labs/test-lab/sessions", &alice, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let first = r.json()["id"].as_str().unwrap().to_owned();
    let r = h
        .post("/api/v1/labs/test-lab/sessions", &alice, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["id"], first.as_str());
    assert_eq!(
        h.driver.running_ids().len(),
        2,
        "a second start made machines"
    );
    // One place left: the other two-node lab does not fit and leaves nothing behind.
    let r = h
        .post("/api/v1/labs/other-lab/sessions", &alice, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert_eq!(
        message,
        "You already have 2 of your 3 sandboxes: 2 in the lab session(s) \"Test lab\". End a lab session or stop a playground to start another."
    );
    let sessions = h.get("/api/v1/sessions", &alice).await.json();
    assert_eq!(sessions["items"].as_array().unwrap().len(), 1, "{sessions}");
    // A playground takes the last place; then a create names both.
    h.sandbox(&alice).await;
    let r = h.post("/api/v1/sandboxes", &alice, json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.text()
            .contains("3 of your 3 sandboxes: 2 in the lab session(s) \\\"Test lab\\\" and 1 playground or API sandbox(es)"),
        "{}",
        r.text()
    );
}

/// Issue 13 item 2: a lab done before started again showed every task done on fresh
/// machines. `?fresh=true` checks every task again; progress stays as history.
#[tokio::test]
async fn a_fresh_start_checks_every_task_again_and_keeps_the_history() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    h.state.set_labs(vec![lab(dir.path())]);
    let alice = h.user("alice", Role::Learner).await;
    let me = h.get("/api/v1/me", &alice).await.json();
    let uid = me["id"].as_str().unwrap();
    h.store
        .mark_task_done(uid, "test-lab", "first")
        .await
        .unwrap();
    let state_of = |v: &serde_json::Value, t: &str| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == t)
            .unwrap()["state"]
            .clone()
    };
    let tasks_of = |id: String| {
        let h = &h;
        let alice = alice.clone();
        async move {
            h.get(&format!("/api/v1/sessions/{id}/tasks"), &alice)
                .await
                .json()
        }
    };
    let r = h
        .post("/api/v1/labs/test-lab/sessions", &alice, json!({}))
        .await;
    let resumed = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(state_of(&tasks_of(resumed.clone()).await, "first"), "done");
    assert_eq!(
        h.delete(&format!("/api/v1/sessions/{resumed}"), &alice)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let r = h
        .post(
            "/api/v1/labs/test-lab/sessions?fresh=true",
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let fresh = r.json()["id"].as_str().unwrap().to_owned();
    assert_ne!(fresh, resumed);
    assert_eq!(state_of(&tasks_of(fresh).await, "first"), "pending");
    assert_eq!(
        h.store.done_tasks(uid, "test-lab").await.unwrap(),
        ["first"],
        "the history was lost"
    );
}

/// A stored session this replica names as its runner but does not run (its set-up failed
/// or its request was dropped half way): no other replica would ever take it, since its
/// runner lives. It is an orphan this replica takes over and ends, and a learner can
/// delete it at once instead of waiting for an answer nobody sends.
#[tokio::test]
async fn a_session_this_replica_stopped_setting_up_is_taken_over_and_can_be_deleted() {
    let h = Harness::new().await;
    let dir = tempfile::tempdir().unwrap();
    h.state.set_labs(vec![lab(dir.path())]);
    let alice = h.user("alice", Role::Learner).await;
    let owner = h.get("/api/v1/me", &alice).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = h.state.sandboxes().manager().holder().to_string();
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let orphan = |id: &str| sandlab_store::LabSession {
        id: id.into(),
        owner: owner.clone(),
        lab: "test-lab".into(),
        state: sandlab_store::LabSessionState::Ready,
        reason: None,
        nodes: vec![sandlab_store::SessionNode {
            name: "node01".into(),
            sandbox: "sb-gonegonegone".into(),
        }],
        created_at_ms: now,
        deadline_ms: now + 600_000,
        runner: Some(me.clone()),
        tasks: Vec::new(),
    };
    let store = h.state.store();

    store
        .put_lab_session(&orphan("ls-orphanone01"))
        .await
        .unwrap();
    // Asking the runner (this replica) would go unanswered: 503 after a wait.
    let r = h.delete("/api/v1/sessions/ls-orphanone01", &alice).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());

    store
        .put_lab_session(&orphan("ls-orphantwo02"))
        .await
        .unwrap();
    let labs = h.state.labs();
    // Every replica sweeps its own orphans (the server's own sweep may get there first).
    h.state.lab_sessions().adopt(&labs, false).await.unwrap();
    let rec = store.get_lab_session("ls-orphantwo02", None).await.unwrap();
    assert_eq!(rec.state, sandlab_store::LabSessionState::Ended, "{rec:?}");
    assert_eq!(rec.runner.as_deref(), Some(me.as_str()));
    // Nothing left to take.
    assert_eq!(h.state.lab_sessions().adopt(&labs, true).await.unwrap(), 0);
}
