//! Issue 15, item 2: two `sandlab serve` replicas on one PostgreSQL database, on one host.
//!
//! Any replica serves any sandbox and session: a sandbox created through one is reached
//! (exec, files, terminal) through the other; a lab session started on one streams its
//! task events on the other and is extended through it. One replica leads (`control`
//! lease): when it is killed with `kill -9` in the middle of creates, the other takes the
//! lease, reaps what expires, refills the warm pool, and after its reconciliation every
//! record is running or cleanly failed, no acknowledged sandbox is lost and no host
//! resources are left without a record.
//!
//! The replicas get a data dir of their own (`test-replicas` beside the shared test data
//! dir, with its images linked in): their reconciliation must not see the sandboxes of
//! the other tests, whose records are in the shared SQLite file. Skips (saying why) without
//! `SANDLAB_TEST_POSTGRES_URL`, except under `CI`, where that is a failure.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::server::{Client, Options, Server};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const URL_VAR: &str = "SANDLAB_TEST_POSTGRES_URL";
const POOL_SIZE: usize = 2;
const CONFIG: &str = "[[pool]]\nname = \"default\"\nsize = 2\n";
const POOL_READY: (&str, &str) = ("sandlab_pool_ready", "profile=\"default\"");
const LEADER: &str = "sandlab_control_leader";
/// A cold create: limits no pool profile has.
fn cold(ttl: &str) -> Value {
    json!({"memory": "300M", "ttl": ttl})
}
const LAB: &str = "---\ntitle: Two replicas\nplayground:\n  ttl: 10m\n  nodes:\n    - name: node01\ntasks:\n  check:\n    run: test -f /root/done\n---\nTouch /root/done.\n";

/// The server's URL, or `None` (with the skip line printed) when the test is to skip.
fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{URL_VAR} is not set under CI: scripts/test.sh starts a PostgreSQL server")
        }
        _ => {
            eprintln!("skipping the replica tests: {URL_VAR} is not set (scripts/postgres.sh start prints one)");
            None
        }
    }
}

/// A fresh database on the test server (its role may create databases); its URL.
fn fresh_database(url: &str) -> String {
    let name = format!(
        "sandlab_replicas_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let psql = ["psql", "/usr/lib/postgresql/15/bin/psql"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .expect("psql (Debian's postgresql-client)");
    let out = Command::new(psql)
        .args([url, "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!("CREATE DATABASE \"{name}\""))
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "CREATE DATABASE: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (base, _) = url
        .rsplit_once('/')
        .expect("a postgres:// URL with a database");
    format!("{base}/{name}")
}

/// The replicas' own data dir, with the shared test images linked in.
fn replica_data_dir() -> PathBuf {
    let shared = data_dir();
    let dir = shared.with_file_name("test-replicas");
    std::fs::create_dir_all(&dir).expect("the replicas' data dir");
    let images = dir.join("images");
    if std::fs::symlink_metadata(&images).is_err() {
        std::os::unix::fs::symlink(shared.join("images"), &images).expect("link the images");
    }
    dir
}

/// Runs `sandlab` on the replicas' database.
fn cli(data: &Path, db: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sandlab"))
        .env("SANDLAB_DATABASE_URL", db)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sandlab")
}

/// Removes every sandbox of the replicas' database when the test ends, passed or not.
struct CleanUp {
    data: PathBuf,
    db: String,
}

impl Drop for CleanUp {
    fn drop(&mut self) {
        let out = cli(&self.data, &self.db, &["sandbox", "inspect"]);
        let records: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let ids: Vec<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
        if !ids.is_empty() {
            let mut args = vec!["sandbox", "rm"];
            args.extend(ids);
            let _ = cli(&self.data, &self.db, &args);
        }
    }
}

/// Every sandbox record the admin API lists, page by page.
fn all_records(admin: &Client) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = "/api/v1/sandboxes?limit=100".to_owned();
    loop {
        let r = admin.call(Method::GET, &path, None);
        assert_eq!(r.status, StatusCode::OK, "list: {}", r.text());
        let page = r.json();
        out.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/sandboxes?limit=100&cursor={next}"),
            None => return out,
        }
    }
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// Reads `event:`/`data:` pairs of an SSE response into a channel.
fn sse(client: &Client, path: &str) -> mpsc::Receiver<(String, Value)> {
    let resp = client
        .request(Method::GET, path)
        .timeout(Duration::from_secs(300))
        .send()
        .expect("open the event stream");
    assert_eq!(resp.status(), StatusCode::OK, "events");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(resp).lines() {
            let Ok(line) = line else { return };
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_owned();
            } else if let Some(d) = line.strip_prefix("data:") {
                let data = serde_json::from_str(d.trim()).unwrap_or(Value::Null);
                if tx.send((event.clone(), data)).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Waits for an event `kind` whose data satisfies `want`; panics with what came instead.
fn expect_event(
    rx: &mpsc::Receiver<(String, Value)>,
    kind: &str,
    want: impl Fn(&Value) -> bool,
    within: Duration,
) {
    let deadline = std::time::Instant::now() + within;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((k, d)) if k == kind && want(&d) => return,
            Ok(other) => seen.push(other),
            Err(_) => break,
        }
    }
    panic!("no {kind} event as wanted within {within:?}; saw {seen:?}");
}

fn leads(server: &Server) -> bool {
    server.metric(LEADER, "") == Some(1.0)
}

#[test]
fn two_replicas_share_sandboxes_sessions_and_work_and_survive_kill9() {
    let Some(url) = server_url() else {
        return;
    };
    let data = replica_data_dir();
    let db = fresh_database(&url);
    let _clean = CleanUp {
        data: data.clone(),
        db: db.clone(),
    };
    let opts = Options {
        config: Some(CONFIG.to_owned()),
        env: vec![
            ("SANDLAB_DATABASE_URL".to_owned(), db.clone()),
            ("SANDLAB_MAX_SANDBOXES_PER_USER".to_owned(), "50".to_owned()),
        ],
    };
    let mut a = Server::start_with(&data, opts.clone());
    let mut b = Server::start_with(&data, opts);
    for s in [&a, &b] {
        let dir = s.labs_dir().join("two-replicas");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.md"), LAB).unwrap();
    }
    let on_a = a.add_user("learner");
    let on_b = on_a.at(&b.base());

    // Exactly one leads.
    assert!(
        wait_until(Duration::from_secs(10), || leads(&a) != leads(&b)),
        "not exactly one leader: a {:?}, b {:?}",
        a.metric(LEADER, ""),
        b.metric(LEADER, "")
    );

    // A sandbox created on A is reached through B: exec, files, terminal; and the other
    // way round.
    let sb = on_a.create(cold("30m"));
    let id = str_of(&sb, "id");
    let r = on_b.sh(&id, "echo hello from b > /tmp/x; cat /tmp/x");
    assert_eq!(r["stdout"], "hello from b\n", "{r}");
    assert!(on_b.put_file(&id, "/tmp/y", b"bytes").status.is_success());
    assert_eq!(on_a.get_file(&id, "/tmp/y").bytes, b"bytes");
    let mut term = on_b.terminal(&id, "").expect("a terminal through B");
    term.type_in("echo term-$((6*7))\n");
    term.expect_line("term-42", Duration::from_secs(10));
    term.close();
    let from_b = on_b.create(cold("30m"));
    let r = on_a.sh(&str_of(&from_b, "id"), "echo ok");
    assert_eq!(r["stdout"], "ok\n", "{r}");
    // An extend through B is what the leader (whichever) honours.
    let r = on_b.call(
        Method::POST,
        &format!("/api/v1/sandboxes/{id}/extend"),
        Some(&json!({"ttl": "40m"})),
    );
    assert_eq!(r.status, StatusCode::OK, "extend: {}", r.text());

    // Both replicas claim from the one warm pool, never the same sandbox twice.
    assert!(
        wait_until(Duration::from_secs(120), || {
            a.metric(POOL_READY.0, POOL_READY.1) == Some(POOL_SIZE as f64)
        }),
        "the pool never filled: {:?}\n{}",
        a.metric(POOL_READY.0, POOL_READY.1),
        a.log()
    );
    let claims: Vec<String> = std::thread::scope(|s| {
        let ts: Vec<_> = [&on_a, &on_b, &on_a, &on_b]
            .into_iter()
            .map(|c| s.spawn(move || str_of(&c.create(json!({})), "id")))
            .collect();
        ts.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let distinct: BTreeSet<&String> = claims.iter().collect();
    assert_eq!(
        distinct.len(),
        claims.len(),
        "a sandbox handed out twice: {claims:?}"
    );
    for c in &claims {
        let rec = on_b
            .call(Method::GET, &format!("/api/v1/sandboxes/{c}"), None)
            .json();
        assert_eq!(rec["owner"], on_a.user_id.as_str(), "{rec}");
    }

    // A lab session started on A: its task events on B's stream, extended through B.
    for s in [&a, &b] {
        let ok = wait_until(Duration::from_secs(15), || {
            on_a.at(&s.base())
                .call(Method::GET, "/api/v1/labs/two-replicas", None)
                .status
                == StatusCode::OK
        });
        assert!(ok, "the lab never appeared on {}", s.base());
    }
    let r = on_a.call(
        Method::POST,
        "/api/v1/labs/two-replicas/sessions",
        Some(&json!({})),
    );
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let session = r.json();
    let sid = str_of(&session, "id");
    let node = str_of(&session["nodes"][0], "sandbox");
    let path = format!("/api/v1/sessions/{sid}");
    assert!(
        wait_until(Duration::from_secs(60), || {
            on_b.call(Method::GET, &path, None).json()["state"] == "ready"
        }),
        "the session never showed ready on B"
    );
    let events = sse(&on_b, &format!("{path}/events"));
    expect_event(
        &events,
        "task",
        |d| d["task"] == "check",
        Duration::from_secs(10),
    );
    on_b.sh(&node, "touch /root/done");
    expect_event(
        &events,
        "task",
        |d| d["task"] == "check" && d["state"] == "done",
        Duration::from_secs(15),
    );
    let seen = on_b.call(Method::GET, &path, None).json();
    assert_eq!(seen["tasks"][0]["state"], "done", "{seen}");
    let before = on_a.call(Method::GET, &path, None).json()["expires_at_ms"]
        .as_i64()
        .unwrap();
    let r = on_b.call(
        Method::POST,
        &format!("{path}/extend"),
        Some(&json!({"ttl": "50m"})),
    );
    assert_eq!(r.status, StatusCode::OK, "extend through B: {}", r.text());
    let after = on_a.call(Method::GET, &path, None).json()["expires_at_ms"]
        .as_i64()
        .unwrap();
    assert!(after > before + 30 * 60 * 1000, "{before} -> {after}");

    // Reconciliation by another process (here `sandlab sandbox ls`, in a loop; the
    // leader's every 30 s is the same code) never fails a sandbox a replica is creating.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reconciler = {
        let (stop, data, db) = (stop.clone(), data.clone(), db.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let out = cli(&data, &db, &["sandbox", "ls"]);
                assert!(out.status.success(), "sandbox ls: {}", out.stderr_text());
                runs += 1;
            }
            runs
        })
    };
    let raced: Vec<String> = std::thread::scope(|s| {
        let ts: Vec<_> = [&on_a, &on_b, &on_a, &on_b, &on_a, &on_b]
            .into_iter()
            .map(|c| s.spawn(move || str_of(&c.create(cold("30m")), "id")))
            .collect();
        ts.into_iter().map(|t| t.join().unwrap()).collect()
    });
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let runs = reconciler.join().expect("the reconciler");
    assert!(runs > 0);
    for r in &raced {
        let rec = on_a
            .call(Method::GET, &format!("/api/v1/sandboxes/{r}"), None)
            .json();
        assert_eq!(
            rec["state"], "running",
            "raced with {runs} reconciliations: {rec}"
        );
        assert_eq!(on_b.sh(r, "echo up")["stdout"], "up\n");
    }

    // kill -9 of the leader in the middle of creates made through it.
    let (lead, survivor) = if leads(&a) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    let to_lead = on_a.at(&lead.base());
    let to_survivor = on_a.at(&survivor.base());
    let short = to_survivor.create(cold("4s"));
    let short_id = str_of(&short, "id");
    let creates: Vec<_> = (0..4)
        .map(|i| {
            let c = to_lead.clone();
            std::thread::spawn(move || {
                let body = if i % 2 == 0 { cold("30m") } else { json!({}) };
                c.try_call(Method::POST, "/api/v1/sandboxes", Some(&body))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    lead.kill9();
    let mut acked = vec![id.clone(), str_of(&from_b, "id")];
    acked.extend(claims.iter().cloned());
    acked.extend(raced.iter().cloned());
    for t in creates {
        if let Ok(r) = t.join().unwrap() {
            if r.status == StatusCode::CREATED {
                acked.push(str_of(&r.json(), "id"));
            }
        }
    }
    let survivor: &Server = survivor;
    assert!(
        wait_until(Duration::from_secs(10), || leads(survivor)),
        "the survivor did not take the control lease\n{}",
        survivor.log()
    );
    // It reaps what expires (the sandbox was made on it, so the reaper had it from the
    // records either way).
    assert!(
        wait_until(Duration::from_secs(30), || {
            to_survivor
                .call(Method::GET, &format!("/api/v1/sandboxes/{short_id}"), None)
                .status
                == StatusCode::NOT_FOUND
        }),
        "the survivor did not reap an expired sandbox\n{}",
        survivor.log()
    );
    // And refills the pool.
    assert!(
        wait_until(Duration::from_secs(120), || {
            survivor.metric(POOL_READY.0, POOL_READY.1) == Some(POOL_SIZE as f64)
        }),
        "the survivor did not refill the pool: {:?}\n{}",
        survivor.metric(POOL_READY.0, POOL_READY.1),
        survivor.log()
    );
    // Its reconciliation (every 30 s) repairs what the kill interrupted: no record stays
    // `creating`, every record runs or failed cleanly, no acknowledged sandbox is lost,
    // and no sandbox directory is without its record.
    let admin = &survivor.admin;
    let settled = wait_until(Duration::from_secs(75), || {
        all_records(admin).iter().all(|r| r["state"] != "creating")
    });
    assert!(settled, "records still creating: {:?}", all_records(admin));
    let records = all_records(admin);
    let ids: BTreeSet<String> = records.iter().map(|r| str_of(r, "id")).collect();
    for a in &acked {
        assert!(
            ids.contains(a),
            "the acknowledged sandbox {a} was lost: {records:?}"
        );
    }
    for rec in &records {
        let rid = str_of(rec, "id");
        match rec["state"].as_str() {
            Some("running") => {
                let r = admin.exec(&rid, json!({"cmd": ["true"]}));
                assert_eq!(r["exit_code"], 0, "exec in running {rid}: {r}");
            }
            Some("failed") => assert!(
                wait_until(Duration::from_secs(10), || processes_of(&rid).is_empty()),
                "failed {rid} still has processes"
            ),
            other => panic!("a record in state {other:?}: {rec}"),
        }
    }
    let dirs: Vec<String> = std::fs::read_dir(data.join("sandboxes"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("sb-"))
                .collect()
        })
        .unwrap_or_default();
    for d in dirs {
        assert!(
            ids.contains(&d),
            "host resources of {d} have no record\n{}",
            survivor.log()
        );
    }
}
