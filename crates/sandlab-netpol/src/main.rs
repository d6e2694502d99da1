//! `sandlab-netpol --node NAME`: keeps this node's nftables table `inet sandlab_netpol`
//! what the cluster's NetworkPolicies say (see the library).
//!
//! It follows Pods, Namespaces and NetworkPolicies through three `kubectl get --watch`
//! processes (the kubeconfig is `$KUBECONFIG`, as for any kubectl), each restarted a
//! second after it ends (an API server that restarts, an etcd restore). A restarted watch
//! lists its kind again; the new list replaces the old one once it has been quiet for
//! [`SETTLE`], so a restart never shows the engine an empty cluster. After every change,
//! once events have been quiet for [`DEBOUNCE`], the ruleset is made again and, when it
//! differs from the last one applied, handed to `nft -f -`, which replaces the table in
//! one transaction.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use sandlab_netpol::{ruleset, Namespace, Pod, Policy, State};
use serde_json::Value;

/// Quiet time after an event before the ruleset is made again.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Quiet time after a watch's restart before its new listing replaces the old one.
const SETTLE: Duration = Duration::from_millis(700);
/// Pause before a watch that ended starts again.
const RESTART: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Pods,
    Namespaces,
    Policies,
}

impl Kind {
    fn args(self) -> &'static [&'static str] {
        match self {
            Kind::Pods => &["get", "pods", "--all-namespaces"],
            Kind::Namespaces => &["get", "namespaces"],
            Kind::Policies => &["get", "networkpolicies", "--all-namespaces"],
        }
    }
}

enum Msg {
    /// A watch of this kind (re)started: what follows is a fresh listing.
    Restarted(Kind),
    /// `ADDED`, `MODIFIED` or `DELETED`, and the object.
    Event(Kind, String, Value),
}

/// One kind's objects by `namespace/name`: the current ones, and the listing of a
/// restarted watch until it settles.
#[derive(Default)]
struct Objects {
    now: BTreeMap<String, Value>,
    fresh: Option<(BTreeMap<String, Value>, Instant)>,
}

fn key(v: &Value) -> String {
    format!(
        "{}/{}",
        v["metadata"]["namespace"].as_str().unwrap_or(""),
        v["metadata"]["name"].as_str().unwrap_or("")
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let node = match (args.next().as_deref(), args.next()) {
        (Some("--node"), Some(n)) if !n.is_empty() => n,
        _ => {
            eprintln!("usage: sandlab-netpol --node NODE_NAME");
            std::process::exit(2);
        }
    };
    let (tx, rx) = channel();
    for kind in [Kind::Pods, Kind::Namespaces, Kind::Policies] {
        let tx = tx.clone();
        std::thread::spawn(move || watch(kind, &tx));
    }
    let mut objects: BTreeMap<Kind, Objects> = BTreeMap::new();
    let mut dirty_since: Option<Instant> = None;
    let mut applied = String::new();
    loop {
        match rx.recv_timeout(DEBOUNCE) {
            Ok(Msg::Restarted(kind)) => {
                objects.entry(kind).or_default().fresh = Some((BTreeMap::new(), Instant::now()));
            }
            Ok(Msg::Event(kind, what, object)) => {
                let o = objects.entry(kind).or_default();
                let map = match &mut o.fresh {
                    Some((map, at)) => {
                        *at = Instant::now();
                        map
                    }
                    None => &mut o.now,
                };
                if what == "DELETED" {
                    map.remove(&key(&object));
                } else {
                    map.insert(key(&object), object);
                }
                dirty_since = Some(Instant::now());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        for o in objects.values_mut() {
            if o.fresh
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() >= SETTLE)
            {
                if let Some((map, _)) = o.fresh.take() {
                    o.now = map;
                    dirty_since = Some(Instant::now());
                }
            }
        }
        // Nothing is enforced before every kind has been listed once.
        let listed = [Kind::Pods, Kind::Namespaces, Kind::Policies]
            .iter()
            .all(|k| objects.get(k).is_some_and(|o| o.fresh.is_none()));
        if !listed || dirty_since.is_none_or(|at| at.elapsed() < DEBOUNCE) {
            continue;
        }
        dirty_since = None;
        let of = |k: Kind| {
            objects
                .get(&k)
                .map(|o| o.now.values().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let state = State {
            pods: of(Kind::Pods)
                .into_iter()
                .filter_map(Pod::from_json)
                .collect(),
            namespaces: of(Kind::Namespaces)
                .into_iter()
                .filter_map(Namespace::from_json)
                .collect(),
            policies: of(Kind::Policies)
                .into_iter()
                .filter_map(Policy::from_json)
                .collect(),
        };
        let rules = ruleset(&node, &state);
        if rules != applied {
            match apply(&rules) {
                Ok(()) => {
                    eprintln!(
                        "sandlab-netpol: applied {} policies over {} pods",
                        state.policies.len(),
                        state.pods.len()
                    );
                    applied = rules;
                }
                // Tried again at the next change, or in a second.
                Err(e) => {
                    eprintln!("sandlab-netpol: nft failed: {e}");
                    dirty_since = Some(Instant::now() + Duration::from_secs(1));
                }
            }
        }
    }
}

/// Runs `kubectl get KIND --watch` for good, sending what it prints.
fn watch(kind: Kind, tx: &Sender<Msg>) {
    loop {
        let child = Command::new("kubectl")
            .args(kind.args())
            .args(["--watch", "--output-watch-events", "-o", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        match child {
            Ok(mut child) => {
                if tx.send(Msg::Restarted(kind)).is_err() {
                    let _ = child.kill();
                    return;
                }
                if let Some(out) = child.stdout.take() {
                    let events = serde_json::Deserializer::from_reader(BufReader::new(out))
                        .into_iter::<Value>();
                    for ev in events {
                        let Ok(mut ev) = ev else { break };
                        let what = ev["type"].as_str().unwrap_or("").to_owned();
                        if !matches!(what.as_str(), "ADDED" | "MODIFIED" | "DELETED") {
                            continue;
                        }
                        if tx
                            .send(Msg::Event(kind, what, ev["object"].take()))
                            .is_err()
                        {
                            let _ = child.kill();
                            return;
                        }
                    }
                }
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("sandlab-netpol: the watch of {kind:?} ended; starting it again");
            }
            Err(e) => eprintln!("sandlab-netpol: cannot run kubectl: {e}"),
        }
        std::thread::sleep(RESTART);
    }
}

/// Hands `rules` to `nft -f -`.
fn apply(rules: &str) -> std::io::Result<()> {
    let mut nft = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = nft.stdin.take() {
        stdin.write_all(rules.as_bytes())?;
    }
    let out = nft.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
