//! Issue 19, breaks 1 and 7, against a real server on this host: the request that took a
//! whole host (64G, 64 CPUs, 2^20 pids, 1024G of disk, 8h) is refused for a learner by
//! their role and for an admin by the host's share; and no process of a sandbox can hold
//! more than its share of the host's file table, checked from outside in `/proc/<pid>/limits`.

mod common;

use common::server::Server;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const GREEDY: &str = r#"{"memory":"64G","cpus":64,"pids":1048576,"disk":"1024G","ttl":"8h"}"#;

#[test]
fn the_request_for_the_whole_host_is_refused_and_starts_nothing() {
    let data = data_dir();
    let server = Server::start(&data);
    let greedy: serde_json::Value = serde_json::from_str(GREEDY).unwrap();
    let learner = server.add_user("learner");
    let r = learner.call(Method::POST, "/api/v1/sandboxes", Some(&greedy));
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.code(), "over_limit");
    // An admin's role allows 64G; no host this suite runs on has 64G / 0.75 of memory.
    let r = server
        .admin
        .call(Method::POST, "/api/v1/sandboxes", Some(&greedy));
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(r.code(), "over_host");
    assert!(
        r.text().contains("one sandbox may have on this host"),
        "{}",
        r.text()
    );
    let pid_max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let r = server.admin.call(
        Method::POST,
        "/api/v1/sandboxes",
        Some(&json!({ "pids": pid_max / 4 + 1 })),
    );
    assert_eq!(r.code(), "over_host", "{}", r.text());
    let mine = |owner: &str| {
        records(&data)
            .into_iter()
            .filter(|r| r["owner"] == owner)
            .count()
    };
    assert_eq!(mine(&learner.user_id), 0);
    assert_eq!(mine(&server.admin.user_id), 0);
}

/// `Max open files` (soft, hard) of host process `pid`.
fn nofile_of(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_else(|| panic!("no open-files line for {pid}: {limits}"));
    let mut n = line["Max open files".len()..]
        .split_whitespace()
        .map(|v| v.parse().unwrap());
    (n.next().unwrap(), n.next().unwrap())
}

#[test]
fn a_sandbox_cannot_hold_more_than_its_share_of_the_file_table() {
    let data = data_dir();
    let server = Server::start(&data);
    let api = server.add_user("learner");
    let sb = api.create(json!({ "pids": 256 }));
    let id = sb["id"].as_str().unwrap().to_owned();
    // The attack: open as many files as possible from several processes, and try to
    // raise the limit first (root inside a user namespace cannot raise a hard limit).
    let r = api.sh(
        &id,
        r#"ulimit -n 1048576 2>/dev/null && echo raised
for i in 1 2 3 4; do
  bash -c 'i=10; while [ $i -lt 5000 ] && eval "exec $i</dev/null" 2>/dev/null; do i=$((i+1)); done
           echo $i >> /tmp/reached; exec sleep 120' </dev/null >/dev/null 2>&1 &
done
while [ "$(cat /tmp/reached 2>/dev/null | wc -l)" -lt 4 ]; do sleep 0.1; done
cat /tmp/reached; ulimit -Hn"#,
    );
    let out = r["stdout"].as_str().unwrap().to_owned();
    assert!(!out.contains("raised"), "the hard limit was raised: {out}");
    let per_process: u64 = 262_144 / 256;
    let numbers: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    // Four shells' highest fd + 1 (they stop at the limit, not at 5000), then `ulimit -Hn`.
    assert_eq!(numbers.len(), 5, "{out}");
    assert_eq!(numbers[4], per_process, "ulimit -Hn inside: {out}");
    assert!(numbers[..4].iter().all(|n| *n <= per_process), "{out}");
    // From outside: every process of the sandbox has the limit.
    let pids = processes_of(&id);
    assert!(pids.len() >= 5, "processes of {id}: {pids:?}");
    for pid in pids {
        let (soft, hard) = nofile_of(pid);
        assert!(
            soft <= per_process && hard <= per_process,
            "pid {pid} may open {soft}/{hard} files"
        );
    }
    assert_eq!(api.delete(&id), StatusCode::NO_CONTENT);
}
