//! Kubernetes NetworkPolicies enforced with nftables, for cluster playgrounds.
//!
//! A playground cluster's network (CNI `ptp` routes, kube-proxy in nftables mode) carries
//! Pod traffic but enforces no NetworkPolicy. `sandlab-netpol` runs on every node (a
//! systemd unit the `kubernetes` image holds, started by `sandlab-cluster`), follows the
//! cluster's Pods, Namespaces and NetworkPolicies, and keeps one nftables table,
//! `inet sandlab_netpol`, that filters what the node forwards to and from its own Pods as
//! the policies say (`networking.k8s.io/v1` semantics):
//!
//! - A Pod is isolated for ingress (egress) when a policy of its namespace selects it and
//!   has `Ingress` (`Egress`) among its `policyTypes` (by default `Ingress`, and `Egress`
//!   when the policy has egress rules). An isolated Pod gets what the union of those
//!   policies' rules allows, and nothing else; replies to allowed traffic pass.
//! - A rule's peers are Pods (`podSelector` in the policy's namespace, `namespaceSelector`
//!   in the namespaces it selects, or both) or `ipBlock`s (`cidr` less `except`); no peers
//!   is every peer. Its ports are numbers, ranges (`endPort`) or names (a container port of
//!   the destination Pod); no ports is every port.
//! - Traffic between a Pod and its own node (the kubelet's probes) is not filtered, as
//!   most network plugins do; hostNetwork Pods are neither isolated nor peers.
//!
//! The engine is pure ([`State`] in, [`ruleset`] out) so it is tested without a cluster;
//! `main.rs` feeds it from `kubectl --watch` and hands the text to `nft -f -`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use serde_json::Value;

/// The nftables table this program owns.
pub const TABLE: &str = "sandlab_netpol";

type Labels = BTreeMap<String, String>;

/// A transport protocol a policy port names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    fn parse(v: &Value) -> Option<Proto> {
        match v.as_str().unwrap_or("TCP") {
            "TCP" => Some(Proto::Tcp),
            "UDP" => Some(Proto::Udp),
            "SCTP" => Some(Proto::Sctp),
            _ => None,
        }
    }

    fn nft(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// What the engine needs of a Pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub node: String,
    pub ip: Option<Ipv4Addr>,
    pub host_network: bool,
    /// Its containers' named ports: (name, protocol, number).
    pub ports: Vec<(String, Proto, u16)>,
}

impl Pod {
    /// The Pod an API object describes; `None` for one that is not a Pod or has finished
    /// (its address may be another's now). A Pod being deleted still runs until its
    /// grace period ends, and stays as it was until its object is gone.
    pub fn from_json(v: &Value) -> Option<Pod> {
        let meta = &v["metadata"];
        let phase = v["status"]["phase"].as_str().unwrap_or("");
        if matches!(phase, "Succeeded" | "Failed") {
            return None;
        }
        let mut ports = Vec::new();
        for c in v["spec"]["containers"].as_array().into_iter().flatten() {
            for p in c["ports"].as_array().into_iter().flatten() {
                let (Some(name), Some(number), Some(proto)) = (
                    p["name"].as_str(),
                    p["containerPort"]
                        .as_u64()
                        .and_then(|n| u16::try_from(n).ok()),
                    Proto::parse(&p["protocol"]),
                ) else {
                    continue;
                };
                ports.push((name.to_owned(), proto, number));
            }
        }
        Some(Pod {
            namespace: meta["namespace"].as_str()?.to_owned(),
            name: meta["name"].as_str()?.to_owned(),
            labels: labels(&meta["labels"]),
            node: v["spec"]["nodeName"].as_str().unwrap_or("").to_owned(),
            ip: v["status"]["podIP"].as_str().and_then(|s| s.parse().ok()),
            host_network: v["spec"]["hostNetwork"].as_bool().unwrap_or(false),
            ports,
        })
    }

    /// Whether the Pod takes part in policies: it has an address of its own.
    fn addressed(&self) -> Option<Ipv4Addr> {
        self.ip.filter(|_| !self.host_network)
    }

    fn port_named(&self, name: &str, proto: Proto) -> Option<u16> {
        self.ports
            .iter()
            .find(|(n, p, _)| n == name && *p == proto)
            .map(|(_, _, n)| *n)
    }
}

/// What the engine needs of a Namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct Namespace {
    pub name: String,
    pub labels: Labels,
}

impl Namespace {
    pub fn from_json(v: &Value) -> Option<Namespace> {
        let name = v["metadata"]["name"].as_str()?.to_owned();
        let mut labels = labels(&v["metadata"]["labels"]);
        // The API server sets it on every namespace; set here too for older objects.
        labels
            .entry("kubernetes.io/metadata.name".into())
            .or_insert_with(|| name.clone());
        Some(Namespace { name, labels })
    }
}

fn labels(v: &Value) -> Labels {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// A label selector (`matchLabels` and `matchExpressions`); the empty one selects all.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Selector {
    labels: Labels,
    exprs: Vec<Expr>,
}

#[derive(Clone, Debug, PartialEq)]
struct Expr {
    key: String,
    op: Op,
    values: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// The selector `v` describes; `None` when it cannot be understood (an unknown
    /// operator, which the API server refuses, so only a newer API's objects): such a
    /// selector selects nothing. As a peer that allows nobody; as a policy's Pod selector
    /// it isolates nobody, so the policy is not enforced (it could only be guessed at).
    fn parse(v: &Value) -> Option<Selector> {
        let mut exprs = Vec::new();
        for e in v["matchExpressions"].as_array().into_iter().flatten() {
            let op = match e["operator"].as_str()? {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                _ => return None,
            };
            exprs.push(Expr {
                key: e["key"].as_str()?.to_owned(),
                op,
                values: e["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect(),
            });
        }
        Some(Selector {
            labels: labels(&v["matchLabels"]),
            exprs,
        })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.exprs.iter().all(|e| {
                let have = labels.get(&e.key);
                match e.op {
                    Op::In => have.is_some_and(|v| e.values.contains(v)),
                    Op::NotIn => have.is_none_or(|v| !e.values.contains(v)),
                    Op::Exists => have.is_some(),
                    Op::DoesNotExist => have.is_none(),
                }
            })
    }
}

/// An IPv4 network, `a.b.c.d/n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.addr)
    }

    fn parse(s: &str) -> Option<Net> {
        let (a, p) = s.split_once('/')?;
        let prefix: u8 = p.parse().ok().filter(|p| *p <= 32)?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        Some(Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Peer {
    /// Pods of the namespaces `namespaces` selects (`None`: the policy's own) that `pods`
    /// selects (`None`: all of them).
    Pods {
        pods: Option<Selector>,
        namespaces: Option<Selector>,
    },
    Block {
        cidr: Net,
        except: Vec<Net>,
    },
    /// A peer that cannot be understood: it matches nothing.
    Nothing,
}

#[derive(Clone, Debug, PartialEq)]
enum PortRef {
    Any,
    Number(u16, Option<u16>),
    Name(String),
}

#[derive(Clone, Debug, PartialEq)]
struct Port {
    proto: Proto,
    port: PortRef,
}

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    /// `None`: every peer.
    peers: Option<Vec<Peer>>,
    /// `None`: every port of every protocol.
    ports: Option<Vec<Port>>,
}

/// What the engine needs of a NetworkPolicy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub namespace: String,
    pub name: String,
    /// `None`: a selector that cannot be understood, which selects nothing.
    selector: Option<Selector>,
    ingress: Option<Vec<Rule>>,
    egress: Option<Vec<Rule>>,
}

impl Policy {
    pub fn from_json(v: &Value) -> Option<Policy> {
        let meta = &v["metadata"];
        let spec = &v["spec"];
        let types: Option<Vec<&str>> = spec["policyTypes"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect());
        let egress_rules = spec["egress"].as_array().is_some_and(|a| !a.is_empty());
        let (ingress_on, egress_on) = match &types {
            Some(t) => (t.contains(&"Ingress"), t.contains(&"Egress")),
            None => (true, egress_rules),
        };
        let rules = |key: &str, peers_key: &str| -> Vec<Rule> {
            spec[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| Rule {
                    peers: r[peers_key]
                        .as_array()
                        .filter(|a| !a.is_empty())
                        .map(|a| a.iter().map(peer).collect()),
                    ports: r["ports"]
                        .as_array()
                        .filter(|a| !a.is_empty())
                        .map(|a| a.iter().filter_map(port).collect()),
                })
                .collect()
        };
        Some(Policy {
            namespace: meta["namespace"].as_str()?.to_owned(),
            name: meta["name"].as_str()?.to_owned(),
            selector: Selector::parse(&spec["podSelector"]),
            ingress: ingress_on.then(|| rules("ingress", "from")),
            egress: egress_on.then(|| rules("egress", "to")),
        })
    }

    fn selects(&self, pod: &Pod) -> bool {
        pod.namespace == self.namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.labels))
    }
}

fn peer(v: &Value) -> Peer {
    if let Some(block) = v.get("ipBlock").filter(|b| b.is_object()) {
        let Some(cidr) = block["cidr"].as_str().and_then(Net::parse) else {
            return Peer::Nothing;
        };
        let except = block["except"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str().and_then(Net::parse))
            .collect();
        return Peer::Block { cidr, except };
    }
    let sel = |key: &str| -> Result<Option<Selector>, ()> {
        match v.get(key).filter(|s| s.is_object()) {
            None => Ok(None),
            Some(s) => Selector::parse(s).map(Some).ok_or(()),
        }
    };
    match (sel("podSelector"), sel("namespaceSelector")) {
        (Ok(pods), Ok(namespaces)) if pods.is_some() || namespaces.is_some() => {
            Peer::Pods { pods, namespaces }
        }
        _ => Peer::Nothing,
    }
}

fn port(v: &Value) -> Option<Port> {
    let proto = Proto::parse(&v["protocol"])?;
    let port = match &v["port"] {
        Value::Null => PortRef::Any,
        Value::Number(n) => {
            let n = u16::try_from(n.as_u64()?).ok()?;
            let end = v["endPort"]
                .as_u64()
                .and_then(|e| u16::try_from(e).ok())
                .filter(|e| *e >= n);
            PortRef::Number(n, end)
        }
        Value::String(s) => match s.parse::<u16>() {
            Ok(n) => PortRef::Number(n, None),
            Err(_) => PortRef::Name(s.clone()),
        },
        _ => return None,
    };
    Some(Port { proto, port })
}

/// The cluster as this node sees it.
#[derive(Clone, Debug, Default)]
pub struct State {
    pub pods: Vec<Pod>,
    pub namespaces: Vec<Namespace>,
    pub policies: Vec<Policy>,
}

impl State {
    fn namespace_labels(&self, name: &str) -> Option<&Labels> {
        self.namespaces
            .iter()
            .find(|n| n.name == name)
            .map(|n| &n.labels)
    }

    /// The Pods `peer` (of a policy in `namespace`) names.
    fn peer_pods<'a>(&'a self, namespace: &str, peer: &Peer) -> Vec<&'a Pod> {
        let Peer::Pods { pods, namespaces } = peer else {
            return Vec::new();
        };
        self.pods
            .iter()
            .filter(|p| p.addressed().is_some())
            .filter(|p| match namespaces {
                None => p.namespace == namespace,
                Some(sel) => self
                    .namespace_labels(&p.namespace)
                    .is_some_and(|l| sel.matches(l)),
            })
            .filter(|p| pods.as_ref().is_none_or(|sel| sel.matches(&p.labels)))
            .collect()
    }
}

/// Which way a rule looks from the node's Pod.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    /// Traffic to the Pod: peers are sources, ports are the Pod's.
    In,
    /// Traffic from the Pod: peers are destinations, ports are theirs.
    Out,
}

/// The nftables ruleset for `node`: replaces the table [`TABLE`] as a whole (one
/// `nft -f` transaction).
pub fn ruleset(node: &str, state: &State) -> String {
    let mut isolated_in = BTreeSet::new();
    let mut isolated_out = BTreeSet::new();
    let mut ingress = Vec::new();
    let mut egress = Vec::new();
    let mut local: Vec<(&Pod, Ipv4Addr)> = state
        .pods
        .iter()
        .filter(|p| p.node == node)
        .filter_map(|p| p.addressed().map(|ip| (p, ip)))
        .collect();
    local.sort_by_key(|(_, ip)| *ip);
    for (pod, ip) in local {
        for policy in state.policies.iter().filter(|p| p.selects(pod)) {
            if let Some(rules) = &policy.ingress {
                isolated_in.insert(ip);
                for rule in rules {
                    allow(state, policy, pod, ip, rule, Way::In, &mut ingress);
                }
            }
            if let Some(rules) = &policy.egress {
                isolated_out.insert(ip);
                for rule in rules {
                    allow(state, policy, pod, ip, rule, Way::Out, &mut egress);
                }
            }
        }
    }
    let set = |name: &str, ips: &BTreeSet<Ipv4Addr>| {
        let mut s = format!("  set {name} {{\n    type ipv4_addr\n");
        if !ips.is_empty() {
            let list: Vec<String> = ips.iter().map(ToString::to_string).collect();
            let _ = writeln!(s, "    elements = {{ {} }}", list.join(", "));
        }
        s.push_str("  }\n");
        s
    };
    let chain = |name: &str, rules: &[String]| {
        let mut s = format!("  chain {name} {{\n");
        for r in rules {
            let _ = writeln!(s, "    {r} return");
        }
        s.push_str("    drop\n  }\n");
        s
    };
    let mut out = String::new();
    // Declared first so that the delete never fails; then made anew.
    let _ = writeln!(out, "table inet {TABLE} {{}}\ndelete table inet {TABLE}");
    let _ = writeln!(out, "table inet {TABLE} {{");
    out.push_str(&set("isolated_in", &isolated_in));
    out.push_str(&set("isolated_out", &isolated_out));
    out.push_str(
        "  chain forward {\n    type filter hook forward priority filter - 5; policy accept;\n    ct state established,related accept\n    ip saddr @isolated_out jump egress\n    ip daddr @isolated_in jump ingress\n  }\n",
    );
    out.push_str(&chain("ingress", &ingress));
    out.push_str(&chain("egress", &egress));
    out.push_str("}\n");
    out
}

/// Appends the nftables matches `rule` of `policy` allows for `pod` (at `ip`), one way.
fn allow(
    state: &State,
    policy: &Policy,
    pod: &Pod,
    ip: Ipv4Addr,
    rule: &Rule,
    way: Way,
    out: &mut Vec<String>,
) {
    let (me, them) = match way {
        Way::In => ("ip daddr", "ip saddr"),
        Way::Out => ("ip saddr", "ip daddr"),
    };
    // The peers as address matches: one per kind (Pods share a set; a block and its
    // exceptions are one match each), or one empty match for "every peer".
    let mut peers: Vec<(String, Vec<&Pod>)> = Vec::new();
    match &rule.peers {
        None => peers.push((String::new(), Vec::new())),
        Some(list) => {
            let mut pods: Vec<&Pod> = list
                .iter()
                .flat_map(|p| state.peer_pods(&policy.namespace, p))
                .collect();
            pods.sort_by_key(|p| p.addressed());
            pods.dedup_by_key(|p| p.addressed());
            if !pods.is_empty() {
                let ips: Vec<String> = pods
                    .iter()
                    .filter_map(|p| p.addressed().map(|a| a.to_string()))
                    .collect();
                peers.push((format!("{them} {{ {} }} ", ips.join(", ")), pods));
            }
            for p in list {
                if let Peer::Block { cidr, except } = p {
                    let mut m = format!("{them} {cidr} ");
                    if !except.is_empty() {
                        let e: Vec<String> = except.iter().map(ToString::to_string).collect();
                        let _ = write!(m, "{them} != {{ {} }} ", e.join(", "));
                    }
                    // A named port is the port of the Pod that has the address.
                    let inside: Vec<&Pod> = state
                        .pods
                        .iter()
                        .filter(|p| {
                            p.addressed().is_some_and(|a| {
                                cidr.contains(a) && !except.iter().any(|e| e.contains(a))
                            })
                        })
                        .collect();
                    peers.push((m, inside));
                }
            }
        }
    }
    for (peer_match, peer_pods) in peers {
        let head = format!("{me} {ip} {peer_match}");
        let Some(ports) = &rule.ports else {
            out.push(head.trim_end().to_owned());
            continue;
        };
        // Per protocol: the port numbers and ranges, from names resolved on the Pod that
        // receives (the node's Pod inbound; each peer Pod outbound).
        let mut by_proto: BTreeMap<Proto, (bool, BTreeSet<String>)> = BTreeMap::new();
        let mut per_peer: Vec<String> = Vec::new();
        for port in ports {
            let entry = by_proto.entry(port.proto).or_default();
            match &port.port {
                PortRef::Any => entry.0 = true,
                PortRef::Number(n, None) => {
                    entry.1.insert(n.to_string());
                }
                PortRef::Number(n, Some(end)) => {
                    entry.1.insert(format!("{n}-{end}"));
                }
                PortRef::Name(name) => match way {
                    Way::In => {
                        if let Some(n) = pod.port_named(name, port.proto) {
                            entry.1.insert(n.to_string());
                        }
                    }
                    Way::Out => {
                        // To every peer: a name any Pod gives the port.
                        let every: Vec<&Pod>;
                        let candidates = if rule.peers.is_none() {
                            every = state
                                .pods
                                .iter()
                                .filter(|p| p.addressed().is_some())
                                .collect();
                            &every
                        } else {
                            &peer_pods
                        };
                        for peer in candidates {
                            if let (Some(n), Some(a)) =
                                (peer.port_named(name, port.proto), peer.addressed())
                            {
                                per_peer.push(format!(
                                    "{me} {ip} {them} {a} {} dport {n}",
                                    port.proto.nft()
                                ));
                            }
                        }
                    }
                },
            }
        }
        for (proto, (any, numbers)) in by_proto {
            if any {
                out.push(format!("{head}meta l4proto {}", proto.nft()));
            } else if !numbers.is_empty() {
                let list: Vec<&str> = numbers.iter().map(String::as_str).collect();
                out.push(format!(
                    "{head}{} dport {{ {} }}",
                    proto.nft(),
                    list.join(", ")
                ));
            }
        }
        out.extend(per_peer);
    }
}

#[cfg(test)]
mod tests;
