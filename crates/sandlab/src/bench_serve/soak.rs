//! `sandlab bench soak --minutes N`: sandboxes and lab sessions created, used and deleted
//! in a loop by a few workers while the server is SIGKILLed every few minutes (and started
//! again on the same address). Afterwards, with everything deleted and the server stopped:
//! nothing the soak made may be left on the host (records, sandbox and volume dirs, mounts,
//! cgroups, network namespaces, interfaces), and every sandbox the server acknowledged
//! (201) and the soak did not delete must still have existed at the end.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};
use tokio::sync::{Mutex, RwLock};

use super::api::json_of;
use super::server::Server;

#[derive(Args, Debug)]
pub struct SoakArgs {
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    /// Seconds between two SIGKILLs of the server.
    #[arg(long, default_value_t = 180)]
    kill_every: u64,
    /// Concurrent workers (each alternates sandboxes and lab sessions).
    #[arg(long, default_value_t = 3)]
    workers: usize,
}

const LAB: &str = "soak-lab";
const LAB_TEXT: &str = "---\ntitle: Soak\nplayground:\n  ttl: 10m\n  nodes:\n    - name: node01\n    - name: node02\ntasks:\n  prepare:\n    init: true\n    run: mkdir -p /srv\n  touch_it:\n    run: test -f /srv/x\n    solve: touch /srv/x\n---\nA lab for the soak.\n";

/// What the workers did, counted.
#[derive(Default)]
struct Counts {
    iterations: AtomicU64,
    sandboxes: AtomicU64,
    sessions: AtomicU64,
    /// Requests that failed while the server was down or starting (retried).
    transient: AtomicU64,
    /// 5xx answers from a running server: each is a bug.
    server_errors: AtomicU64,
}

/// Ids the server acknowledged and the soak has not asked to delete, and every id made.
/// An id whose DELETE was sent leaves `live` first: a kill may cut off the 204 of a delete
/// that happened.
#[derive(Default)]
struct Ledger {
    live: BTreeSet<String>,
    all: BTreeSet<String>,
}

pub(super) async fn soak_bench(srv: Server, args: SoakArgs) -> anyhow::Result<()> {
    let lab_dir = srv.labs_dir().join(LAB);
    std::fs::create_dir_all(&lab_dir)?;
    std::fs::write(lab_dir.join("index.md"), LAB_TEXT)?;
    let srv = Arc::new(RwLock::new(srv));
    wait_lab(&srv).await?;
    let counts = Arc::new(Counts::default());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let end = start + Duration::from_secs(args.minutes * 60);
    eprintln!(
        "soak: {} min, {} workers, a SIGKILL every {} s",
        args.minutes, args.workers, args.kill_every
    );
    let workers: Vec<_> = (0..args.workers)
        .map(|w| {
            let (srv, counts, ledger, stop) =
                (srv.clone(), counts.clone(), ledger.clone(), stop.clone());
            tokio::spawn(async move { worker(w, srv, counts, ledger, stop).await })
        })
        .collect();
    let mut kills = 0u64;
    let mut next_kill = start + Duration::from_secs(args.kill_every);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if Instant::now() >= next_kill {
            kills += 1;
            eprintln!("soak: SIGKILL #{kills} at {:?}", start.elapsed());
            // The kill lands wherever the workers are; the restart waits for their failed
            // requests to come back.
            srv.read().await.kill9();
            srv.write().await.restart().await?;
            next_kill = Instant::now() + Duration::from_secs(args.kill_every);
        }
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = w.await;
    }

    // Nothing acknowledged is lost: every live id still exists after all those kills.
    let srv = Arc::try_unwrap(srv)
        .map_err(|_| anyhow::anyhow!("a worker still holds the server"))?
        .into_inner();
    let ledger = std::mem::take(&mut *ledger.lock().await);
    let mut lost = Vec::new();
    for id in &ledger.live {
        match srv.is_running(id).await {
            Ok(true) => {}
            _ => lost.push(id.clone()),
        }
        let _ = srv.delete(id).await;
    }
    end_sessions(&srv).await;
    // Creates whose 201 a kill cut off are the user's sandboxes all the same: delete them.
    let mut all = ledger.all.clone();
    if let Ok(resp) = srv.get("/sandboxes?limit=500").await {
        if let Ok(v) = json_of(resp, 200).await {
            for sb in v["items"].as_array().into_iter().flatten() {
                if let Some(id) = sb["id"].as_str() {
                    all.insert(id.to_owned());
                    let _ = srv.delete(id).await;
                }
            }
        }
    }
    // Removal of session nodes is detached: give it a moment to finish.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let records = srv.records().await.unwrap_or_default();
    let data_dir = srv.data_dir().to_owned();
    srv.stop().await;

    // Nothing leaks: look on the host for every id the soak made.
    let leaks = leaks(&all, &records, &data_dir);
    let c = &counts;
    println!(
        "soak: {} min, {} iterations ({} sandboxes, {} lab sessions), {} SIGKILLs, {} transient errors, {} server errors, {} lost, {} leaks",
        args.minutes,
        c.iterations.load(Ordering::SeqCst),
        c.sandboxes.load(Ordering::SeqCst),
        c.sessions.load(Ordering::SeqCst),
        kills,
        c.transient.load(Ordering::SeqCst),
        c.server_errors.load(Ordering::SeqCst),
        lost.len(),
        leaks.len()
    );
    for id in &lost {
        println!("  lost: {id} was acknowledged and never deleted, and is gone");
    }
    for l in &leaks {
        println!("  leak: {l}");
    }
    let ok = lost.is_empty() && leaks.is_empty() && c.server_errors.load(Ordering::SeqCst) == 0;
    println!("soak: {}", if ok { "PASS" } else { "FAIL" });
    if ok {
        Ok(())
    } else {
        anyhow::bail!("the soak found lost records, leaks or server errors")
    }
}

async fn wait_lab(srv: &RwLock<Server>) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let s = srv.read().await;
        let r = s.get(&format!("/labs/{LAB}")).await;
        if r.is_ok_and(|r| r.status() == 200) {
            return Ok(());
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(30),
            "the soak lab never appeared in the catalogue"
        );
        drop(s);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn worker(
    w: usize,
    srv: Arc<RwLock<Server>>,
    counts: Arc<Counts>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
) {
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let s = srv.read().await;
        let result = if (i + w).is_multiple_of(3) {
            session_round(&s, &counts, &ledger).await
        } else {
            sandbox_round(&s, &counts, &ledger).await
        };
        drop(s);
        match result {
            Ok(()) => {
                counts.iterations.fetch_add(1, Ordering::SeqCst);
            }
            Err(Round::ServerError(e)) => {
                counts.server_errors.fetch_add(1, Ordering::SeqCst);
                eprintln!("soak: worker {w}: {e}");
            }
            Err(Round::Transient) => {
                counts.transient.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

enum Round {
    /// The server was down or restarting.
    Transient,
    /// A 5xx (or an answer the API does not give) from a running server.
    ServerError(String),
}

fn classify(e: anyhow::Error) -> Round {
    let text = format!("{e:#}");
    if e.chain()
        .any(|c| c.downcast_ref::<reqwest::Error>().is_some())
    {
        Round::Transient
    } else {
        Round::ServerError(text)
    }
}

async fn sandbox_round(s: &Server, counts: &Counts, ledger: &Mutex<Ledger>) -> Result<(), Round> {
    let (id, _) = s.create(&json!({ "ttl": "2h" })).await.map_err(classify)?;
    {
        let mut l = ledger.lock().await;
        l.live.insert(id.clone());
        l.all.insert(id.clone());
    }
    counts.sandboxes.fetch_add(1, Ordering::SeqCst);
    s.exec(&id, &["sh", "-c", "echo soak > /tmp/soak && cat /tmp/soak"])
        .await
        .map_err(classify)?;
    ledger.lock().await.live.remove(&id);
    s.delete(&id).await.map_err(classify)?;
    Ok(())
}

async fn session_round(s: &Server, counts: &Counts, ledger: &Mutex<Ledger>) -> Result<(), Round> {
    let resp = s
        .post(&format!("/labs/{LAB}/sessions?fresh=true"), &json!({}))
        .await
        .map_err(|e| classify(e.into()))?;
    let session = check(resp, 201).await?;
    let id = session["id"].as_str().unwrap_or_default().to_owned();
    counts.sessions.fetch_add(1, Ordering::SeqCst);
    note_nodes(&session, ledger).await;
    let start = Instant::now();
    loop {
        let resp = s
            .get(&format!("/sessions/{id}"))
            .await
            .map_err(|e| classify(e.into()))?;
        let v = check(resp, 200).await?;
        // A session set up again after a restart has new nodes.
        note_nodes(&v, ledger).await;
        match v["state"].as_str() {
            Some("ready") => break,
            Some("failed") => {
                return Err(Round::ServerError(format!(
                    "session {id} failed: {}",
                    v["reason"]
                )))
            }
            _ if start.elapsed() > Duration::from_secs(120) => {
                return Err(Round::ServerError(format!("session {id} never got ready")))
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let resp = s
        .delete_path(&format!("/sessions/{id}"))
        .await
        .map_err(|e| classify(e.into()))?;
    check(resp, 204).await?;
    Ok(())
}

/// Adds a session's node sandboxes to the ids the leak check looks for.
async fn note_nodes(session: &Value, ledger: &Mutex<Ledger>) {
    let mut l = ledger.lock().await;
    for n in session["nodes"].as_array().into_iter().flatten() {
        if let Some(sb) = n["sandbox"].as_str() {
            l.all.insert(sb.to_owned());
        }
    }
}

/// The body of an answer with `status`; a 5xx is a server error, a 503 while starting is
/// transient.
async fn check(resp: reqwest::Response, status: u16) -> Result<Value, Round> {
    let got = resp.status().as_u16();
    if got == 503 {
        return Err(Round::Transient);
    }
    if got != status {
        let body = resp.text().await.unwrap_or_default();
        return Err(Round::ServerError(format!(
            "answered {got}, not {status}: {body}"
        )));
    }
    if status == 204 {
        return Ok(Value::Null);
    }
    json_of(resp, status)
        .await
        .map_err(|e| Round::ServerError(format!("{e:#}")))
}

/// Ends every session the bench user still has.
async fn end_sessions(s: &Server) {
    let Ok(resp) = s.get("/sessions?active=true").await else {
        return;
    };
    let Ok(v) = json_of(resp, 200).await else {
        return;
    };
    for item in v["items"].as_array().into_iter().flatten() {
        if let Some(id) = item["id"].as_str() {
            let _ = s.delete_path(&format!("/sessions/{id}")).await;
        }
    }
}

/// What is left on the host of the sandboxes in `ids` (lab nodes are found by record).
fn leaks(ids: &BTreeSet<String>, records: &[Value], data_dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let cgroup_roots: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| rd.flatten().map(|e| e.path().join("sandlab")).collect())
        .unwrap_or_default();
    for r in records {
        if let Some(id) = r["id"].as_str().filter(|id| ids.contains(*id)) {
            found.push(format!("{id}: its record is still stored ({})", r["state"]));
        }
    }
    for id in ids {
        let short = id.rsplit('-').next().unwrap_or(id);
        for (what, path) in [
            ("sandbox dir", data_dir.join("sandboxes").join(id)),
            ("volume", data_dir.join("volumes").join(id)),
            (
                "network namespace",
                std::path::Path::new("/run/netns").join(id),
            ),
        ] {
            if path.exists() {
                found.push(format!("{id}: {what} {}", path.display()));
            }
        }
        for root in &cgroup_roots {
            let cg = root.join(id);
            if cg.exists() {
                found.push(format!("{id}: cgroup {}", cg.display()));
            }
        }
        if mountinfo.contains(id.as_str()) {
            found.push(format!("{id}: a mount names it"));
        }
        if links.contains(short) {
            found.push(format!("{id}: a network interface names it"));
        }
    }
    found
}

/// Runs the soak on a server it starts (with no pool) and stops.
pub(super) async fn run(cfg: &crate::config::Config, args: SoakArgs) -> anyhow::Result<()> {
    let srv = Server::start(cfg, false)
        .await
        .context("cannot start the server")?;
    soak_bench(srv, args).await
}
