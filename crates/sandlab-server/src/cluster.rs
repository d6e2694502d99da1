//! Cluster playgrounds (`cluster: kubernetes`): before a lab's init tasks run, its nodes
//! become one Kubernetes cluster. `sandlab-cluster` (in the `kubernetes` image,
//! `images/kubernetes/sandlab-cluster`) does the work on each node, run through the node's
//! agent: `init` on the first node (kubeadm's control plane), then `join` on the others
//! side by side, then `wait` until every node is Ready. Until then the session is
//! `starting`; a failure fails the session with the step, the node and the last lines the
//! script printed.
//!
//! The join token is made here, per cluster, and the workers check the control plane's CA
//! by the hash `init` prints (kubeadm's discovery), so no node takes another's word.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rand::Rng;
use sandlab_lab::{Cluster, Lab};
use sandlab_proto::{AgentClient, ExecOutput, ExecRequest};

/// The script every node of a cluster runs.
pub const SCRIPT: &str = "/usr/local/bin/sandlab-cluster";
/// kubeadm init: certificates, etcd, the API server and the add-ons.
const INIT_TIMEOUT: Duration = Duration::from_secs(240);
/// kubeadm join: TLS bootstrap of the kubelet.
const JOIN_TIMEOUT: Duration = Duration::from_secs(180);
/// From the last join to every node Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Output kept of each step (a kubeconfig is about 6 KiB).
const OUTPUT: usize = 256 * 1024;
/// Lines of a failed step's output in its error, and the most of each line kept (the
/// output is the node's, so anything).
const TAIL_LINES: usize = 6;
const TAIL_LINE_CHARS: usize = 300;

/// Why a cluster did not come up.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("The Kubernetes cluster did not come up: `sandlab-cluster {step}` on node {node} {how}{}", tail_text(.tail))]
    Step {
        step: &'static str,
        node: String,
        how: String,
        tail: Vec<String>,
    },
    #[error("The Kubernetes cluster did not come up: node {node}'s agent could not run `sandlab-cluster {step}`: {source}")]
    Agent {
        step: &'static str,
        node: String,
        #[source]
        source: sandlab_proto::Error,
    },
    #[error("The Kubernetes cluster did not come up: the playground has no agent for node {0}.")]
    NoNode(String),
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        ".".into()
    } else {
        format!(": {}", tail.join(" | "))
    }
}

/// How long each step took, for the log and the bench.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timings {
    pub init: Duration,
    pub join: Duration,
    pub ready: Duration,
}

impl Timings {
    pub fn total(&self) -> Duration {
        self.init + self.join + self.ready
    }
}

/// A kubeadm bootstrap token: `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn new_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect()
    };
    let id = pick(6);
    format!("{id}.{}", pick(16))
}

/// The `--nodes` argument: `NAME=IP` for every node, in the lab's order.
pub fn nodes_arg(addresses: &[(String, Ipv4Addr)]) -> String {
    addresses
        .iter()
        .map(|(n, ip)| format!("{n}={ip}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Makes `lab`'s nodes a cluster, when its playground asks for one (else does nothing).
/// `agents` holds every node's agent by name.
pub async fn bring_up(
    lab: &Lab,
    agents: &HashMap<String, AgentClient>,
) -> Result<Option<Timings>, ClusterError> {
    let Some(Cluster::Kubernetes) = lab.playground.cluster else {
        return Ok(None);
    };
    let names = lab.playground.node_names();
    let addresses = sandlab_runtime::Playground {
        name: String::new(),
        nodes: names.clone(),
    }
    .addresses();
    let nodes = nodes_arg(&addresses);
    let token = new_token();
    let agent = |name: &str| {
        agents
            .get(name)
            .ok_or_else(|| ClusterError::NoNode(name.to_owned()))
    };
    let mut timings = Timings::default();

    let first = &names[0];
    let started = Instant::now();
    let init = run(
        agent(first)?,
        first,
        "init",
        &["--name", first, "--token", &token, "--nodes", &nodes],
        None,
        INIT_TIMEOUT,
    )
    .await?;
    timings.init = started.elapsed();
    let ca_hash = String::from_utf8_lossy(&init.stdout)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with("sha256:"))
        .map(str::to_owned)
        .filter(|h| h.len() == 71 && h[7..].bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ClusterError::Step {
            step: "init",
            node: first.clone(),
            how: "printed no CA hash".into(),
            tail: tail(&init),
        })?;

    let started = Instant::now();
    if names.len() > 1 {
        let admin = run(
            agent(first)?,
            first,
            "kubeconfig",
            &[],
            None,
            Duration::from_secs(30),
        )
        .await?
        .stdout;
        let joins = names[1..].iter().map(|name| {
            let admin = admin.clone();
            let (token, ca_hash, nodes) = (&token, &ca_hash, &nodes);
            async move {
                run(
                    agent(name)?,
                    name,
                    "join",
                    &[
                        "--name",
                        name,
                        "--token",
                        token,
                        "--ca-hash",
                        ca_hash,
                        "--nodes",
                        nodes,
                    ],
                    Some(admin),
                    JOIN_TIMEOUT,
                )
                .await
            }
        });
        for joined in join_all(joins).await {
            joined?;
        }
    }
    timings.join = started.elapsed();

    let started = Instant::now();
    let secs = READY_TIMEOUT.as_secs().to_string();
    run(
        agent(first)?,
        first,
        "wait",
        &["--nodes", &nodes, "--timeout", &secs],
        None,
        READY_TIMEOUT + Duration::from_secs(30),
    )
    .await?;
    timings.ready = started.elapsed();
    tracing::info!(
        lab = %lab.slug,
        nodes = names.len(),
        init_ms = timings.init.as_millis() as u64,
        join_ms = timings.join.as_millis() as u64,
        ready_ms = timings.ready.as_millis() as u64,
        "Kubernetes cluster up"
    );
    Ok(Some(timings))
}

/// Runs `sandlab-cluster STEP ARGS` as root on `node`; an exit other than 0 is an error
/// with the output's end.
async fn run(
    agent: &AgentClient,
    node: &str,
    step: &'static str,
    args: &[&str],
    stdin: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<ExecOutput, ClusterError> {
    let mut argv = vec![SCRIPT.to_owned(), step.to_owned()];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let req = ExecRequest {
        argv,
        user: Some("root".into()),
        timeout: Some(timeout),
        ..ExecRequest::default()
    };
    let out = agent
        .exec_collect(req, stdin, OUTPUT)
        .await
        .map_err(|source| ClusterError::Agent {
            step,
            node: node.to_owned(),
            source,
        })?;
    if out.exit.code == Some(0) {
        return Ok(out);
    }
    let how = if out.exit.code == Some(127) && !out.exit.timed_out {
        format!(
            "found no {SCRIPT}: a cluster's nodes run the `kubernetes` image or one built on it (`extends = \"kubernetes\"`)"
        )
    } else {
        format!("failed: {}", out.exit.describe(timeout))
    };
    Err(ClusterError::Step {
        step,
        node: node.to_owned(),
        how,
        tail: tail(&out),
    })
}

/// The last lines of a step's output, stderr first (where the script says what failed).
fn tail(out: &ExecOutput) -> Vec<String> {
    let mut lines = Vec::new();
    for bytes in [&out.stderr, &out.stdout] {
        let text = String::from_utf8_lossy(bytes);
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = all.len().saturating_sub(TAIL_LINES);
        lines.extend(
            all[start..]
                .iter()
                .map(|l| l.trim().chars().take(TAIL_LINE_CHARS).collect::<String>()),
        );
        if !lines.is_empty() {
            break;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_what_kubeadm_takes_and_differ() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        for t in [&a, &b] {
            let (id, secret) = t.split_once('.').unwrap();
            assert_eq!((id.len(), secret.len()), (6, 16), "{t}");
            assert!(t
                .bytes()
                .all(|c| c == b'.' || c.is_ascii_lowercase() || c.is_ascii_digit()));
        }
    }

    #[test]
    fn the_nodes_argument_lists_every_node_with_its_address() {
        let addresses = sandlab_runtime::Playground {
            name: String::new(),
            nodes: vec!["controlplane".into(), "node01".into()],
        }
        .addresses();
        assert_eq!(
            nodes_arg(&addresses),
            "controlplane=10.214.0.10 node01=10.214.0.11"
        );
    }

    #[test]
    fn a_failed_step_says_where_and_shows_its_last_lines() {
        let e = ClusterError::Step {
            step: "join",
            node: "node01".into(),
            how: "failed: exit 1".into(),
            tail: vec!["a".into(), "b".into()],
        };
        assert_eq!(
            e.to_string(),
            "The Kubernetes cluster did not come up: `sandlab-cluster join` on node node01 failed: exit 1: a | b"
        );
    }
}
