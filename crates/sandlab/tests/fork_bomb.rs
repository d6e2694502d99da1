//! Issue 19, break 10: a fork bomb held every pid of its sandbox, so exec (which needs a
//! fork) failed until the sandbox was deleted. `POST /sandboxes/{id}/processes/kill`
//! kills everything but the sandbox's init from outside, with the cgroup frozen so the
//! bomb cannot refill the freed places; the host's view of the sandbox's processes shows it.

mod common;

use std::time::Duration;

use common::server::Server;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[test]
fn killing_a_fork_bombs_processes_gives_the_sandbox_back() {
    let data = data_dir();
    let server = Server::start(&data);
    let api = server.add_user("learner");
    let sb = api.create(json!({ "pids": 64 }));
    let id = sb["id"].as_str().unwrap().to_owned();
    // The bomb: processes that fork until the pids limit, detached from the exec.
    let r = api.sh(
        &id,
        "setsid perl -e 'fork while 1' </dev/null >/dev/null 2>&1 & echo lit",
    );
    assert_eq!(r["stdout"], "lit\n", "{r}");
    assert!(
        wait_until(Duration::from_secs(20), || processes_of(&id).len() >= 60),
        "the bomb did not fill the sandbox: {} processes",
        processes_of(&id).len()
    );
    let r = api.call(
        Method::POST,
        &format!("/api/v1/sandboxes/{id}/processes/kill"),
        None,
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.json()["killed"].as_u64().unwrap() >= 50, "{}", r.text());
    // From outside: only the init (the agent) is left; from inside: exec works again.
    assert!(
        wait_until(Duration::from_secs(10), || processes_of(&id).len() == 1),
        "processes left: {:?}",
        processes_of(&id)
    );
    let r = api.sh(&id, "echo alive");
    assert_eq!(r["stdout"], "alive\n", "{r}");
    // Another user cannot do it to this sandbox.
    let other = server.add_user("learner");
    let r = other.call(
        Method::POST,
        &format!("/api/v1/sandboxes/{id}/processes/kill"),
        None,
    );
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(api.delete(&id), StatusCode::NO_CONTENT);
}
