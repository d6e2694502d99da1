//! `sandlab serve` killed with SIGKILL at the worst moments, then started again: the
//! records and the host must agree afterwards (SPEC 5: the record is written before the
//! first side effect, and start-up reconciles both ways). A sandbox is either running and
//! answering, or `failed` with a reason and nothing left on the host; a create the client
//! saw succeed is never lost; a warm pool refills without leaking a sandbox.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::server::Server;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Kill points after sending a create: before the request is read, around the record
/// write and the runtime's work (a cold create takes tens of milliseconds), and after
/// the answer.
const KILL_DELAYS_MS: &[u64] = &[0, 5, 10, 20, 30, 40, 50, 75, 100, 200, 400];

/// Large enough that a refill lasts a while even when sandboxes start in milliseconds
/// (the kills below must land during one).
const POOL_SIZE: usize = 12;
const POOL_CONFIG: &str = "[[pool]]\nname = \"default\"\nsize = 12\n";
const POOL_OWNER: &str = "pool:default";
const POOL_READY: (&str, &str) = ("sandlab_pool_ready", "profile=\"default\"");

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

fn records_of(data: &Path, owner: &str) -> Vec<Value> {
    records(data)
        .into_iter()
        .filter(|r| r["owner"] == owner)
        .collect()
}

/// `leftovers` without the record itself.
fn host_traces(data: &Path, id: &str) -> Vec<String> {
    leftovers(data, id)
        .into_iter()
        .filter(|l| !l.starts_with("records:"))
        .collect()
}

/// No trace of any of `ids` on the host or in the store; their processes gone (killed
/// ones may linger a moment as zombies until the host's init reaps them).
fn assert_all_gone(data: &Path, ids: &[String]) {
    for id in ids {
        assert_eq!(leftovers(data, id), Vec::<String>::new(), "traces of {id}");
    }
    let alive = || -> Vec<u32> { ids.iter().flat_map(|id| processes_of(id)).collect() };
    assert!(
        wait_until(Duration::from_secs(10), || alive().is_empty()),
        "processes left: {:?}",
        alive()
    );
}

/// Checks one record after a restart: `running` and answering an exec, or `failed` with
/// a reason and no host resources or processes. Its state.
fn check_consistent(server: &Server, data: &Path, rec: &Value) -> String {
    let id = str_of(rec, "id");
    let state = str_of(rec, "state");
    match state.as_str() {
        "running" => {
            let r = server.admin.exec(&id, json!({"cmd": ["true"]}));
            assert_eq!(r["exit_code"], 0, "exec in running {id}: {r}");
        }
        "failed" => {
            assert!(!str_of(rec, "reason").is_empty(), "no reason: {rec}");
            let clean = wait_until(Duration::from_secs(10), || {
                host_traces(data, &id).is_empty() && processes_of(&id).is_empty()
            });
            assert!(
                clean,
                "failed {id} still has {:?} and processes {:?}",
                host_traces(data, &id),
                processes_of(&id)
            );
        }
        _ => panic!(
            "after a restart a sandbox is running or failed, not: {rec}\nserver log:\n{}",
            server.log()
        ),
    }
    state
}

#[test]
fn kill9_during_a_create_leaves_running_or_cleanly_failed_sandboxes() {
    let data = data_dir();
    let mut server = Server::start(&data);
    let api = server.admin.clone();
    let mut acked: Vec<String> = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut report = Vec::new();
    for &delay in KILL_DELAYS_MS {
        let client = api.clone();
        let request = std::thread::spawn(move || {
            client.try_call(Method::POST, "/api/v1/sandboxes", Some(&json!({})))
        });
        std::thread::sleep(Duration::from_millis(delay));
        server.kill9();
        let answer = match request.join().expect("create thread") {
            Ok(r) if r.status == StatusCode::CREATED => {
                acked.push(str_of(&r.json(), "id"));
                "201".to_owned()
            }
            Ok(r) => panic!("a create answered {}: {}", r.status, r.text()),
            Err(e) => format!("no answer ({e})"),
        };
        server.restart();
        let mine = records_of(&data, &api.user_id);
        let mut left = "no record".to_owned();
        for rec in mine.iter().filter(|r| seen.insert(str_of(r, "id"))) {
            let state = check_consistent(&server, &data, rec);
            left = format!("{state} {}", str_of(rec, "reason"));
        }
        for id in &acked {
            let rec = mine.iter().find(|r| r["id"] == id.as_str());
            assert!(
                rec.is_some_and(|r| r["state"] == "running"),
                "the acknowledged create {id} is not running after a restart: {rec:?}"
            );
        }
        report.push(format!("kill after {delay:>3} ms: {answer}; left {left}"));
    }
    eprintln!("{}", report.join("\n"));
    assert!(
        !acked.is_empty() && acked.len() < KILL_DELAYS_MS.len(),
        "the kills should land both before and after the answer:\n{}",
        report.join("\n")
    );

    // Once more for all, after every restart: a late runtime step of a killed create
    // must not have brought anything back.
    let mine = records_of(&data, &api.user_id);
    assert_eq!(mine.len(), seen.len(), "{mine:#?}");
    for rec in &mine {
        check_consistent(&server, &data, rec);
    }
    let ids: Vec<String> = mine.iter().map(|r| str_of(r, "id")).collect();
    for id in &ids {
        assert_eq!(api.delete(id), StatusCode::NO_CONTENT, "delete {id}");
    }
    assert_all_gone(&data, &ids);
}

/// Ids with host resources kept in the data dir (a sandbox's directory and volume).
/// Global resources (netns, cgroups, OCI state) may belong to another data dir on this
/// host, so they are checked per id instead.
fn local_host_ids(data: &Path) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for dir in [data.join("sandboxes"), data.join("volumes")] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("sb-") {
                ids.insert(name);
            }
        }
    }
    ids
}

/// Every sandbox directory or volume in the data dir has a record. Resources are listed
/// before records: a create writes its record first, so only a removal racing the two
/// listings can show a resource without a record, and that one goes on a second look.
fn assert_no_orphans(data: &Path) {
    let orphans = |data: &Path| {
        let host = local_host_ids(data);
        let recorded: BTreeSet<String> = records(data).iter().map(|r| str_of(r, "id")).collect();
        host.difference(&recorded).cloned().collect::<BTreeSet<_>>()
    };
    let first = orphans(data);
    let settled = wait_until(Duration::from_secs(10), || {
        orphans(data).intersection(&first).next().is_none()
    });
    assert!(
        settled,
        "host resources without a record: {:?}",
        orphans(data)
    );
}

/// Polls `cond` every few milliseconds (a warm sandbox is ready within tens of them).
fn poll_fast(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

#[test]
fn kill9_during_pool_refill_leaks_nothing() {
    let data = data_dir();
    let mut server = Server::start_alone(&data, POOL_CONFIG);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    // Notes every pool sandbox there is; their states, for the test's output.
    let mut note_pool = |data: &Path| -> Vec<String> {
        let pool = records_of(data, POOL_OWNER);
        seen.extend(pool.iter().map(|r| str_of(r, "id")));
        pool.iter().map(|r| str_of(r, "state")).collect()
    };

    // Killed right after ready, while the first warm sandboxes are being made ...
    server.kill9();
    let mut at_kills = note_pool(&data);
    eprintln!("killed at ready: pool {at_kills:?}");
    server.restart();
    // ... and again when one is ready and the next is on its way.
    let one_ready = poll_fast(Duration::from_secs(30), || {
        server.metric(POOL_READY.0, POOL_READY.1) >= Some(1.0)
    });
    assert!(one_ready, "no warm sandbox; log:\n{}", server.log());
    server.kill9();
    let states = note_pool(&data);
    eprintln!("killed at one ready: pool {states:?}");
    at_kills.extend(states);
    assert!(
        at_kills.iter().any(|s| s == "creating"),
        "no kill landed during a refill: {at_kills:?}"
    );
    server.restart();
    let full = wait_until(Duration::from_secs(60), || {
        server.metric(POOL_READY.0, POOL_READY.1) == Some(POOL_SIZE as f64)
    });
    assert!(
        full,
        "the pool did not refill to {POOL_SIZE} ({:?}); log:\n{}",
        server.metric(POOL_READY.0, POOL_READY.1),
        server.log()
    );

    let pool = records_of(&data, POOL_OWNER);
    note_pool(&data);
    let running: Vec<String> = pool
        .iter()
        .filter(|r| r["state"] == "running")
        .map(|r| str_of(r, "id"))
        .collect();
    assert_eq!(
        (running.len(), pool.len()),
        (POOL_SIZE, POOL_SIZE),
        "the pool's records: {pool:#?}"
    );
    for id in &running {
        let r = server.admin.exec(id, json!({"cmd": ["true"]}));
        assert_eq!(r["exit_code"], 0, "warm sandbox {id}: {r}");
    }
    let gone: Vec<String> = seen
        .iter()
        .filter(|id| !running.contains(id))
        .cloned()
        .collect();
    assert_all_gone(&data, &gone);
    assert_no_orphans(&data);

    // Warm sandboxes outlive the server; remove them so the shared data dir is clean.
    let status = server.sigterm(Duration::from_secs(20));
    assert!(status.success(), "shutdown: {status}");
    for id in &running {
        let out = sandlab(&data, &["sandbox", "rm", id]);
        assert_eq!(out.code(), 0, "rm {id}: {}", out.stderr_text());
    }
    assert_all_gone(&data, &running);
}
