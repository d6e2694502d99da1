//! `sandlab-netpol --node NAME`: keeps this node's nftables table `inet sandlab_netpol`
//! what the cluster's NetworkPolicies say (see the library).
//!
//! It follows Pods, Namespaces and NetworkPolicies as a Kubernetes informer does, through
//! `kubectl get --raw` (the kubeconfig is `$KUBECONFIG`): a whole listing first, which
//! replaces what it knew of that kind only when it arrived complete, then a watch from
//! the listing's resourceVersion. When a watch ends (the server's watch timeout, an API
//! server that restarts, an etcd restore, a resourceVersion too old) the kind is listed
//! again a second later; meanwhile the last state stays enforced, so an outage of the
//! API server opens nothing. Once every kind has been listed, each change is applied when
//! events have been quiet for [`DEBOUNCE`] (at most [`MAX_DELAY`] after the first): the
//! ruleset is made again and handed to `nft -f -`, which replaces the table in one
//! transaction. It is also applied again every [`REAPPLY`], so a table someone flushed
//! comes back.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use sandlab_netpol::{ruleset, Namespace, Pod, Policy, State};
use serde_json::Value;

/// Quiet time after an event before the ruleset is made again.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// The longest a change waits while events keep coming.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// How often the table is applied again though nothing changed.
const REAPPLY: Duration = Duration::from_secs(30);
/// Pause before a kind is listed again after its watch ended or its listing failed.
const RESTART: Duration = Duration::from_secs(1);

/// What the engine follows.
const KINDS: [Kind; 3] = [Kind::Pods, Kind::Namespaces, Kind::Policies];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Pods,
    Namespaces,
    Policies,
}

impl Kind {
    /// The API path of every object of the kind.
    fn path(self) -> &'static str {
        match self {
            Kind::Pods => "/api/v1/pods",
            Kind::Namespaces => "/api/v1/namespaces",
            Kind::Policies => "/apis/networking.k8s.io/v1/networkpolicies",
        }
    }
}

enum Msg {
    /// A complete listing of the kind: it replaces what was known.
    Listed(Kind, Vec<Value>),
    /// `ADDED`, `MODIFIED` or `DELETED`, and the object.
    Event(Kind, String, Value),
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
    for kind in KINDS {
        let tx = tx.clone();
        std::thread::spawn(move || follow(kind, &tx));
    }
    let mut objects: BTreeMap<Kind, BTreeMap<String, Value>> = BTreeMap::new();
    // When the first change not yet applied came, and the last one.
    let mut pending: Option<(Instant, Instant)> = None;
    let mut applied: Option<(String, Instant)> = None;
    loop {
        let change = match rx.recv_timeout(DEBOUNCE) {
            Ok(Msg::Listed(kind, items)) => {
                objects.insert(kind, items.into_iter().map(|o| (key(&o), o)).collect());
                true
            }
            Ok(Msg::Event(kind, what, object)) => {
                let map = objects.entry(kind).or_default();
                if what == "DELETED" {
                    map.remove(&key(&object));
                } else {
                    map.insert(key(&object), object);
                }
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let now = Instant::now();
        if change {
            pending = Some((pending.map_or(now, |(first, _)| first), now));
        }
        // Nothing is enforced before every kind has been listed once.
        if objects.len() < KINDS.len() {
            continue;
        }
        let due = match (pending, &applied) {
            (Some((first, last)), _) => {
                now.saturating_duration_since(last) >= DEBOUNCE
                    || now.saturating_duration_since(first) >= MAX_DELAY
            }
            (None, None) => true,
            (None, Some((_, at))) => at.elapsed() >= REAPPLY,
        };
        if !due {
            continue;
        }
        pending = None;
        let of = |k: Kind| objects.get(&k).into_iter().flat_map(|m| m.values());
        let state = State {
            pods: of(Kind::Pods).filter_map(Pod::from_json).collect(),
            namespaces: of(Kind::Namespaces)
                .filter_map(Namespace::from_json)
                .collect(),
            policies: of(Kind::Policies).filter_map(Policy::from_json).collect(),
        };
        let rules = ruleset(&node, &state);
        let again = applied
            .as_ref()
            .is_some_and(|(text, at)| *text == rules && at.elapsed() < REAPPLY);
        if again {
            continue;
        }
        match apply(&rules) {
            Ok(()) => {
                if applied.as_ref().is_none_or(|(text, _)| *text != rules) {
                    eprintln!(
                        "sandlab-netpol: applied {} policies over {} pods",
                        state.policies.len(),
                        state.pods.len()
                    );
                }
                applied = Some((rules, Instant::now()));
            }
            // Tried again in a second.
            Err(e) => {
                eprintln!("sandlab-netpol: nft failed: {e}");
                pending = Some((now, now + RESTART));
            }
        }
    }
}

/// Lists and watches `kind` for good, sending what changes.
fn follow(kind: Kind, tx: &Sender<Msg>) {
    loop {
        match list(kind) {
            Ok((items, version)) => {
                if tx.send(Msg::Listed(kind, items)).is_err() {
                    return;
                }
                if !watch(kind, &version, tx) {
                    return;
                }
            }
            Err(e) => eprintln!("sandlab-netpol: cannot list {kind:?}: {e}"),
        }
        std::thread::sleep(RESTART);
    }
}

/// Every object of `kind`, and the listing's resourceVersion; an error unless the whole
/// listing came.
fn list(kind: Kind) -> Result<(Vec<Value>, String), String> {
    let out = Command::new("kubectl")
        .args(["get", "--raw", kind.path()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run kubectl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "kubectl {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut list: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("not a listing: {e}"))?;
    let version = list["metadata"]["resourceVersion"]
        .as_str()
        .filter(|v| !v.is_empty())
        .ok_or("the listing has no resourceVersion")?
        .to_owned();
    let items = match list["items"].take() {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        _ => return Err("the listing's items are not a list".into()),
    };
    Ok((items, version))
}

/// Watches `kind` from `version` until the watch ends; `false` when nobody listens any
/// more.
fn watch(kind: Kind, version: &str, tx: &Sender<Msg>) -> bool {
    let path = format!("{}?watch=1&resourceVersion={version}", kind.path());
    let child = Command::new("kubectl")
        .args(["get", "--raw", &path])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("sandlab-netpol: cannot run kubectl: {e}");
            return true;
        }
    };
    let mut listening = true;
    if let Some(out) = child.stdout.take() {
        let events =
            serde_json::Deserializer::from_reader(BufReader::new(out)).into_iter::<Value>();
        for ev in events {
            let Ok(mut ev) = ev else { break };
            let what = ev["type"].as_str().unwrap_or("").to_owned();
            match what.as_str() {
                "ADDED" | "MODIFIED" | "DELETED" => {}
                // An ERROR (a resourceVersion too old, say): list again.
                "ERROR" => break,
                _ => continue,
            }
            if tx
                .send(Msg::Event(kind, what, ev["object"].take()))
                .is_err()
            {
                listening = false;
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    listening
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
