//! `sandlab serve` end to end, as a program and a browser use it: a real server process
//! on a real port, sandboxes created, used and deleted over HTTP and a terminal over a
//! WebSocket, then the host checked for traces. Also a graceful restart with a terminal
//! open, and one user's sandbox invisible to another.

mod common;

use std::time::{Duration, Instant};

use common::server::Server;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const TERMINAL_WAIT: Duration = Duration::from_secs(15);

fn assert_gone(data: &std::path::Path, id: &str) {
    assert_eq!(leftovers(data, id), Vec::<String>::new(), "traces of {id}");
    assert!(
        wait_until(Duration::from_secs(10), || processes_of(id).is_empty()),
        "processes of {id} left: {:?}",
        processes_of(id)
    );
}

#[test]
fn a_sandbox_over_http_from_create_to_delete() {
    let data = data_dir();
    let server = Server::start(&data);
    let api = &server.admin;

    let sb = api.create(json!({}));
    assert_eq!(sb["state"], "running", "{sb}");
    let id = sb["id"].as_str().expect("id").to_owned();
    assert_eq!(record(&data, &id).expect("a record")["state"], "running");

    // exec: output, stdin, a failing command, a timeout.
    let r = api.exec(&id, json!({"cmd": ["echo", "hi"]}));
    assert_eq!(
        (&r["exit_code"], &r["stdout"], &r["stderr"], &r["status"]),
        (&json!(0), &json!("hi\n"), &json!(""), &json!("ok")),
        "{r}"
    );
    assert!(r["duration_ms"].is_u64(), "{r}");
    let r = api.exec(
        &id,
        json!({"cmd": ["tr", "a-z", "A-Z"], "stdin": "from stdin\n"}),
    );
    assert_eq!(r["stdout"], "FROM STDIN\n", "{r}");
    let r = api.sh(&id, "echo oops >&2; exit 3");
    assert_eq!(
        (&r["exit_code"], &r["stderr"], &r["status"]),
        (&json!(3), &json!("oops\n"), &json!("runtime_error")),
        "{r}"
    );
    let started = Instant::now();
    let r = api.exec(&id, json!({"cmd": ["sleep", "30"], "timeout": "500ms"}));
    assert_eq!(
        (&r["status"], &r["exit_code"]),
        (&json!("timeout"), &json!(124)),
        "{r}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "{r}");

    // Files: raw bytes both ways, parents created; `..` and relative paths refused.
    let bytes: Vec<u8> = (0..=255u8).chain(b"end\n".iter().copied()).collect();
    let w = api.put_file(&id, "/tmp/e2e/dir/data.bin", &bytes);
    assert_eq!(w.status, StatusCode::NO_CONTENT, "{}", w.text());
    let r = api.get_file(&id, "/tmp/e2e/dir/data.bin");
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.bytes, bytes);
    let r = api.sh(&id, "wc -c < /tmp/e2e/dir/data.bin");
    assert_eq!(r["stdout"], "260\n", "{r}");
    for bad in ["/tmp/../etc/passwd", "/tmp/e2e/..", "tmp/e2e/x"] {
        let r = api.get_file(&id, bad);
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_path".into()),
            "GET {bad}: {}",
            r.text()
        );
        let r = api.put_file(&id, bad, b"x");
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_path".into()),
            "PUT {bad}: {}",
            r.text()
        );
    }
    let r = api.sh(&id, "cat /etc/passwd | head -c 4; test -e /tmp/e2e/x");
    assert_eq!((&r["stdout"], &r["exit_code"]), (&json!("root"), &json!(1)));

    // A terminal: typed input runs in a shell, a resize reaches its PTY.
    let mut term = api
        .terminal(&id, "name=main&cols=80&rows=24")
        .expect("terminal");
    term.type_in("echo hi\r");
    term.expect_line("hi", TERMINAL_WAIT);
    term.type_in("stty size\r");
    term.expect_line("24 80", TERMINAL_WAIT);
    term.resize(100, 30);
    term.type_in("stty size\r");
    term.expect_line("30 100", TERMINAL_WAIT);
    term.close();

    assert_eq!(api.delete(&id), StatusCode::NO_CONTENT);
    let r = api.call(Method::GET, &format!("/api/v1/sandboxes/{id}"), None);
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert_gone(&data, &id);
}

#[test]
fn sigterm_closes_terminals_with_1001_and_sandboxes_outlive_the_server() {
    let data = data_dir();
    let mut server = Server::start(&data);
    let id = server.admin.create(json!({}))["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut term = server.admin.terminal(&id, "").expect("terminal");
    term.type_in("echo ready-$((6*7))\r");
    term.expect("ready-42", TERMINAL_WAIT);

    let started = Instant::now();
    let pid = server.pid();
    let reader = std::thread::spawn(move || term.close_code(Duration::from_secs(15)));
    let status = server.sigterm(Duration::from_secs(20));
    let took = started.elapsed();
    let code = reader.join().expect("terminal reader");
    assert_eq!(code, Ok(1001), "close code; server log:\n{}", server.log());
    assert!(
        status.success(),
        "server {pid} exited with {status}; log:\n{}",
        server.log()
    );
    // The default grace period is 10 s; an idle server should not need it.
    assert!(took < Duration::from_secs(10), "shutdown took {took:?}");
    assert!(server.log().contains("sandlab: shutting down"));

    // The sandbox kept running without the server, and the next server serves it.
    assert_eq!(record(&data, &id).expect("record")["state"], "running");
    assert!(
        !processes_of(&id).is_empty(),
        "the sandbox's processes are gone"
    );
    server.restart();
    let r = server.admin.sh(&id, "echo still here");
    assert_eq!(r["stdout"], "still here\n", "{r}");
    let mut term = server.admin.terminal(&id, "").expect("terminal again");
    term.type_in("echo back-$((6*7))\r");
    term.expect("back-42", TERMINAL_WAIT);
    term.close();

    assert_eq!(server.admin.delete(&id), StatusCode::NO_CONTENT);
    assert_gone(&data, &id);
    let status = server.sigterm(Duration::from_secs(20));
    assert!(status.success(), "second shutdown: {status}");
}

#[test]
fn another_users_sandbox_answers_404() {
    let data = data_dir();
    let server = Server::start(&data);
    let admin = &server.admin;
    let sb = admin.create(json!({"network": "egress"}));
    let id = sb["id"].as_str().expect("id").to_owned();
    assert_eq!(sb["limits"]["network"], "egress", "{sb}");
    let bob = server.add_user("learner");

    let path = format!("/api/v1/sandboxes/{id}");
    let not_found = [
        bob.call(Method::GET, &path, None),
        bob.call(
            Method::POST,
            &format!("{path}/exec"),
            Some(&json!({"cmd": ["true"]})),
        ),
        bob.call(
            Method::POST,
            &format!("{path}/extend"),
            Some(&json!({"ttl": "5m"})),
        ),
        bob.get_file(&id, "/etc/hostname"),
        bob.put_file(&id, "/tmp/planted", b"x"),
        bob.call(Method::DELETE, &path, None),
    ];
    for r in &not_found {
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "not_found".into()),
            "{}",
            r.text()
        );
    }
    assert_eq!(
        bob.terminal(&id, "").err(),
        Some(StatusCode::NOT_FOUND),
        "terminal"
    );
    let list = bob.call(Method::GET, "/api/v1/sandboxes", None).json();
    assert_eq!(list["items"], json!([]), "{list}");

    // Bob's own sandbox is his, and the admin sees both.
    let own = bob.create(json!({}))["id"].as_str().expect("id").to_owned();
    let listed = admin.call(Method::GET, "/api/v1/sandboxes?limit=500", None);
    let ids: Vec<String> = listed.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    assert!(ids.contains(&id) && ids.contains(&own), "{ids:?}");
    let r = admin.call(Method::GET, &format!("/api/v1/sandboxes/{own}"), None);
    assert_eq!(r.json()["owner"], json!(bob.user_id), "{}", r.text());

    // Nothing bob tried changed the admin's sandbox.
    let r = admin.sh(&id, "test -e /tmp/planted; echo $?");
    assert_eq!(r["stdout"], "1\n", "{r}");
    assert_eq!(bob.delete(&own), StatusCode::NO_CONTENT);
    assert_eq!(admin.delete(&id), StatusCode::NO_CONTENT);
    assert_gone(&data, &id);
    assert_gone(&data, &own);
}

/// Creates racing each other in one server all succeed, and the server keeps answering
/// (egress creates share the slot allocation under the records lock; a lock taken with
/// a blocking call on a runtime thread once wedged the whole server here).
#[test]
fn concurrent_creates_all_succeed() {
    let data = data_dir();
    let server = Server::start(&data);
    let mut ids = Vec::new();
    for round in 0..3 {
        let creates: Vec<_> = (0..4)
            .map(|_| {
                let c = server.admin.clone();
                std::thread::spawn(move || {
                    let req = c
                        .request(Method::POST, "/api/v1/sandboxes")
                        .json(&json!({"network": "egress"}))
                        .timeout(Duration::from_secs(20));
                    common::server::Client::send(req)
                })
            })
            .collect();
        for create in creates {
            match create.join().expect("create thread") {
                Ok(r) if r.status == StatusCode::CREATED => {
                    ids.push(r.json()["id"].as_str().expect("id").to_owned());
                }
                Ok(r) => panic!(
                    "round {round}: a create answered {}: {}",
                    r.status,
                    r.text()
                ),
                Err(e) => panic!(
                    "round {round}: a create got no answer within 20 s ({e}); server log:\n{}",
                    server.log()
                ),
            }
        }
    }
    for id in &ids {
        assert_eq!(server.admin.delete(id), StatusCode::NO_CONTENT);
    }
    for id in &ids {
        assert_gone(&data, id);
    }
}

/// A server keeps network namespaces made ahead of time; each is one sandbox's alone.
/// Attacked from inside: one sandbox serves on its loopback and the others (made from the
/// same pool, `none` and `egress`) try to reach it there; checked from the host: every
/// sandbox's init is in a network namespace of its own, none the host's, and its
/// sysctls are the ones a sandbox gets.
#[test]
fn sandboxes_from_the_spare_network_namespaces_share_nothing() {
    let data = data_dir();
    // The create says at debug level whether its namespace was a spare.
    let server = Server::start_with(
        &data,
        common::server::Options {
            config: None,
            env: vec![(
                "SANDLAB_LOG".into(),
                "info,sandlab_runtime::container=debug".into(),
            )],
        },
    );
    let api = &server.admin;
    let ids: Vec<String> = [
        json!({}),
        json!({}),
        json!({"network": "egress"}),
        json!({}),
    ]
    .into_iter()
    .map(|body| api.create(body)["id"].as_str().expect("id").to_owned())
    .collect();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut seen = Vec::new();
    for id in &ids {
        let ns = std::fs::read_link(format!("/proc/{}/ns/net", init_pid(id))).unwrap();
        assert_ne!(ns, host, "{id} is in the host's network namespace");
        assert!(
            !seen.contains(&ns),
            "{id} shares {ns:?} with another sandbox"
        );
        seen.push(ns);
    }
    let log = server.log();
    let spares = ids
        .iter()
        .filter(|id| {
            log.lines()
                .any(|l| l.contains(id.as_str()) && l.contains("spare=true"))
        })
        .count();
    assert!(
        spares >= 2,
        "{spares} of the sandboxes got a spare namespace:\n{log}"
    );
    let serving = "for i in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:8765/ && { echo 200; break; }; sleep 0.1; done";
    let server_side = api.sh(
        &ids[0],
        &format!(
            "setsid -f python3 -m http.server --bind 127.0.0.1 8765 >/dev/null 2>&1; {serving}"
        ),
    );
    assert_eq!(server_side["stdout"], "200\n", "{server_side}");
    for id in &ids[1..] {
        let r = api.sh(
            id,
            "curl -s -o /dev/null --max-time 2 http://127.0.0.1:8765/ && echo REACHED; \
             ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\\n' ' '",
        );
        let text = r["stdout"].as_str().unwrap_or_default();
        assert!(
            !text.contains("REACHED"),
            "{id} reached another sandbox's loopback: {r}"
        );
        let want = if id == &ids[2] { "eth0 lo" } else { "lo" };
        assert_eq!(text.trim(), want, "{id}'s interfaces: {r}");
    }
    // It was there to be reached all along.
    let still = api.sh(&ids[0], serving);
    assert_eq!(still["stdout"], "200\n", "{still}");
    // The namespace's own settings, read from the host inside it (inside, the sandbox's
    // user namespace shows the group range through its id map).
    for id in &ids {
        let ns = format!("--net=/proc/{}/ns/net", init_pid(id));
        let out = std::process::Command::new("nsenter")
            .args([ns.as_str(), "cat"])
            .args([
                "/proc/sys/net/ipv4/ping_group_range",
                "/proc/sys/net/ipv4/ip_unprivileged_port_start",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.split_whitespace().collect::<Vec<_>>(),
            ["0", "2147483647", "0"],
            "{id}'s sysctls: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for id in &ids {
        assert_eq!(api.delete(id), StatusCode::NO_CONTENT);
        assert_gone(&data, id);
    }
}
