//! Hostile programs sent to code execution, against a real `sandlab serve`: a fork bomb,
//! a huge file, network access, an output flood, a look for another submission's files
//! and processes, and a process left behind for the next run. Each is contained, and the
//! submission after it finds a clean sandbox; the host is checked from outside (its
//! processes, a listener of its own).

mod common;

use std::net::TcpListener;
use std::time::Duration;

use common::server::Server;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn execute(server: &Server, language: &str, src: &str, limits: Value) -> Value {
    let body = json!({"language": language, "files": [{"content": src}], "limits": limits});
    let r = server
        .admin
        .call(Method::POST, "/api/v1/execute", Some(&body));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// What a fresh submission sees: its processes and the files of its work directory.
fn clean_sandbox(server: &Server) {
    let v = execute(
        server,
        "bash",
        "ps -eo comm= | sort | tr '\\n' ' '; echo; ls -A /code /tmp | tr '\\n' ' '",
        json!({}),
    );
    let out = v["run"]["stdout"].as_str().unwrap().to_owned();
    let procs = out.lines().next().unwrap_or("");
    for leftover in ["sleep", "yes", "python3", "bash -c"] {
        assert!(
            !procs.contains(leftover),
            "a new submission sees {leftover}: {out}"
        );
    }
    assert!(
        !out.contains("canary") && !out.contains("big"),
        "a new submission sees an earlier one's files: {out}"
    );
}

#[test]
fn a_fork_bomb_is_held_by_the_pids_limit() {
    let data = data_dir();
    let server = Server::start(&data);
    let v = execute(
        &server,
        "bash",
        "bomb() { bomb | bomb & }; bomb; sleep 2; echo survived",
        json!({"wall_ms": 4000, "pids": 32}),
    );
    assert_ne!(v["run"]["status"], "internal_error", "{v}");
    // The host's own processes are fine: the server still answers, and quickly.
    let r = server.admin.call(Method::GET, "/api/v1/me", None);
    assert_eq!(r.status, StatusCode::OK);
    clean_sandbox(&server);
}

#[test]
fn a_huge_file_hits_the_disk_limit() {
    let data = data_dir();
    let server = Server::start(&data);
    let v = execute(
        &server,
        "bash",
        "fallocate -l 20G /code/big && echo allocated; dd if=/dev/zero of=/code/big2 bs=1M count=2048 2>&1 | tail -1; df -h /code | tail -1",
        json!({"wall_ms": 20000}),
    );
    let out = format!("{}{}", v["run"]["stdout"], v["run"]["stderr"]);
    assert!(!out.contains("allocated"), "20G was allocated: {v}");
    assert!(
        out.contains("No space") || out.contains("Disk quota"),
        "no disk limit hit: {v}"
    );
    clean_sandbox(&server);
}

#[test]
fn no_network_reaches_the_host_or_beyond() {
    let data = data_dir();
    let server = Server::start(&data);
    // A listener on every address of the host: nothing may connect to it.
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let addrs = String::from_utf8_lossy(
        &std::process::Command::new("hostname")
            .arg("-I")
            .output()
            .unwrap()
            .stdout,
    )
    .split_whitespace()
    .filter(|a| !a.contains(':'))
    .map(str::to_owned)
    .collect::<Vec<_>>();
    let mut targets: Vec<String> = addrs.iter().map(|a| format!("('{a}', {port})")).collect();
    targets.push(format!("('127.0.0.1', {port})"));
    targets.push("('1.1.1.1', 80)".into());
    targets.push("('deb.debian.org', 80)".into());
    let src = format!(
        "import socket\nfor t in [{}]:\n    try:\n        socket.create_connection(t, timeout=2).close()\n        print('CONNECTED', t)\n    except Exception as e:\n        print('refused', t, type(e).__name__)\n",
        targets.join(", ")
    );
    let v = execute(&server, "python", &src, json!({"wall_ms": 20000}));
    let out = v["run"]["stdout"].as_str().unwrap_or("");
    assert!(!out.contains("CONNECTED"), "a connection got out: {v}");
    assert_eq!(out.matches("refused").count(), targets.len(), "{v}");
    assert!(
        listener.accept().is_err(),
        "the host's listener was reached from an execution sandbox"
    );
}

#[test]
fn an_output_flood_is_cut_and_killed() {
    let data = data_dir();
    let server = Server::start(&data);
    let v = execute(
        &server,
        "bash",
        "yes flood",
        json!({"output_bytes": 100000, "wall_ms": 20000}),
    );
    assert_eq!(v["run"]["status"], "output_limit", "{}", short(&v));
    assert_eq!(v["run"]["stdout"].as_str().unwrap().len(), 100_000);
    assert!(
        v["run"]["wall_ms"].as_u64().unwrap() < 15_000,
        "the flood ran until the wall-clock limit instead of being stopped"
    );
    clean_sandbox(&server);
}

fn short(v: &Value) -> String {
    let mut s = v.to_string();
    s.truncate(400);
    s
}

#[test]
fn a_submission_sees_nothing_of_another() {
    let data = data_dir();
    let server = Server::start(&data);
    std::thread::scope(|scope| {
        // A long submission with a canary in its files and a process to find.
        let holder = scope.spawn(|| {
            execute(
                &server,
                "bash",
                "echo secret-canary > /code/canary; echo secret-canary > /tmp/canary; sleep 6",
                json!({"wall_ms": 10000}),
            )
        });
        std::thread::sleep(Duration::from_secs(2));
        let v = execute(
            &server,
            "bash",
            "grep -rs secret-canar[y] /code /tmp /proc/*/root/code /proc/*/root/tmp 2>/dev/null; ps -eo comm= | tr '\\n' ' '",
            json!({}),
        );
        let out = v["run"]["stdout"].as_str().unwrap();
        assert!(
            !out.contains("secret-canary"),
            "another submission's file was read: {out}"
        );
        assert!(
            !out.contains("sleep"),
            "another submission's process is visible: {out}"
        );
        holder.join().unwrap();
    });
}

#[test]
fn a_process_left_behind_dies_with_its_sandbox() {
    let data = data_dir();
    let server = Server::start(&data);
    let marker = format!("sandlab-left-{}", rand::random::<u32>());
    let v = execute(
        &server,
        "bash",
        &format!("(exec -a {marker} sleep 1000) </dev/null >/dev/null 2>&1 & disown; setsid sh -c 'exec -a {marker} sleep 1000' </dev/null >/dev/null 2>&1 & echo left"),
        json!({}),
    );
    assert_eq!(v["run"]["stdout"], "left\n", "{v}");
    // From outside: nothing of it runs on the host once its sandbox is gone.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let ps = std::process::Command::new("pgrep")
                .args(["-f", &marker])
                .output()
                .unwrap();
            ps.stdout.is_empty()
        }),
        "a process left behind by a submission still runs on the host"
    );
    clean_sandbox(&server);
}
