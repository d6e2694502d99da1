//! The policy engine against the API's own JSON: which Pods are isolated, and what each
//! rule lets through, as nftables matches.

use serde_json::json;

use super::*;

fn pod(ns: &str, name: &str, node: &str, ip: &str, labels: Value) -> Value {
    json!({
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
            {"name": "http", "containerPort": 8080, "protocol": "TCP"},
            {"name": "dns", "containerPort": 5353, "protocol": "UDP"}
        ]}]},
        "status": {"phase": "Running", "podIP": ip}
    })
}

fn ns(name: &str, labels: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}})
}

fn policy(ns: &str, name: &str, spec: Value) -> Value {
    json!({"metadata": {"namespace": ns, "name": name}, "spec": spec})
}

fn state(pods: &[Value], namespaces: &[Value], policies: &[Value]) -> State {
    State {
        pods: pods.iter().filter_map(Pod::from_json).collect(),
        namespaces: namespaces.iter().filter_map(Namespace::from_json).collect(),
        policies: policies.iter().filter_map(Policy::from_json).collect(),
    }
}

/// The rules of chain `name` (without the trailing `drop`).
fn chain(rules: &str, name: &str) -> Vec<String> {
    let start = rules
        .find(&format!("  chain {name} {{\n"))
        .expect("the chain");
    rules[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.trim() != "drop")
        .map(|l| l.trim().trim_end_matches(" return").to_owned())
        .collect()
}

/// The elements of set `name`.
fn set(rules: &str, name: &str) -> Vec<String> {
    let start = rules.find(&format!("  set {name} {{\n")).expect("the set");
    let body = &rules[start..rules[start..].find("  }\n").unwrap() + start];
    body.lines()
        .find_map(|l| l.trim().strip_prefix("elements = { "))
        .map(|e| {
            e.trim_end_matches(" }")
                .split(", ")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn namespaces() -> Vec<Value> {
    vec![
        ns("team", json!({"tier": "app"})),
        ns("ops", json!({"tier": "ops"})),
    ]
}

fn pods() -> Vec<Value> {
    vec![
        pod("team", "web", "node01", "10.244.1.5", json!({"app": "web"})),
        pod(
            "team",
            "client",
            "controlplane",
            "10.244.0.7",
            json!({"app": "client"}),
        ),
        pod(
            "team",
            "other",
            "node01",
            "10.244.1.6",
            json!({"app": "other", "env": "dev"}),
        ),
        pod(
            "ops",
            "probe",
            "controlplane",
            "10.244.0.9",
            json!({"app": "probe"}),
        ),
    ]
}

#[test]
fn without_policies_nothing_is_isolated() {
    let rules = ruleset("node01", &state(&pods(), &namespaces(), &[]));
    assert!(set(&rules, "isolated_in").is_empty());
    assert!(set(&rules, "isolated_out").is_empty());
    // The table is replaced whole, in one transaction.
    assert!(rules.starts_with("table inet sandlab_netpol {}\ndelete table inet sandlab_netpol\n"));
    assert!(rules.contains("ct state established,related accept"));
}

#[test]
fn a_default_deny_isolates_this_nodes_pods_of_its_namespace_only() {
    let deny = policy(
        "team",
        "default-deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    let s = state(&pods(), &namespaces(), &[deny]);
    let rules = ruleset("node01", &s);
    assert_eq!(set(&rules, "isolated_in"), ["10.244.1.5", "10.244.1.6"]);
    assert!(set(&rules, "isolated_out").is_empty());
    assert!(chain(&rules, "ingress").is_empty());
    // The other node isolates its own Pod of `team`; `ops` is untouched.
    let there = ruleset("controlplane", &s);
    assert_eq!(set(&there, "isolated_in"), ["10.244.0.7"]);
}

#[test]
fn pod_namespace_and_block_peers_with_ports() {
    let allow = policy(
        "team",
        "web",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                 "ports": [{"port": 80}, {"port": "http"}, {"protocol": "UDP", "port": 1000, "endPort": 1010}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"tier": "ops"}}}]},
                {"from": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}],
                 "ports": [{"protocol": "TCP"}]}
            ]
        }),
    );
    let rules = ruleset("node01", &state(&pods(), &namespaces(), &[allow]));
    assert_eq!(set(&rules, "isolated_in"), ["10.244.1.5"]);
    assert_eq!(
        chain(&rules, "ingress"),
        [
            // TCP 80 and the named port `http` (8080 on the web Pod), UDP a range.
            "ip daddr 10.244.1.5 ip saddr { 10.244.0.7 } tcp dport { 80, 8080 }",
            "ip daddr 10.244.1.5 ip saddr { 10.244.0.7 } udp dport { 1000-1010 }",
            // Every Pod of a namespace labelled tier=ops, any port.
            "ip daddr 10.244.1.5 ip saddr { 10.244.0.9 }",
            "ip daddr 10.244.1.5 ip saddr 192.0.2.0/24 ip saddr != { 192.0.2.128/25 } meta l4proto tcp",
        ]
    );
}

#[test]
fn both_selectors_in_one_peer_are_and_and_an_empty_rule_is_everyone() {
    let p = policy(
        "team",
        "p",
        json!({
            "podSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]},
            "ingress": [
                {"from": [{"namespaceSelector": {"matchLabels": {"tier": "app"}},
                           "podSelector": {"matchLabels": {"app": "client"}}}]},
                {}
            ]
        }),
    );
    let rules = ruleset("node01", &state(&pods(), &namespaces(), &[p]));
    // Only `other` has env=dev.
    assert_eq!(set(&rules, "isolated_in"), ["10.244.1.6"]);
    assert_eq!(
        chain(&rules, "ingress"),
        [
            "ip daddr 10.244.1.6 ip saddr { 10.244.0.7 }",
            "ip daddr 10.244.1.6"
        ]
    );
}

#[test]
fn egress_rules_isolate_outbound_by_default_and_name_the_peers_ports() {
    let p = policy(
        "team",
        "out",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "egress": [
                {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "probe"}}}],
                 "ports": [{"protocol": "UDP", "port": "dns"}]}
            ]
        }),
    );
    let rules = ruleset("node01", &state(&pods(), &namespaces(), &[p]));
    // Egress rules present and no policyTypes: Ingress and Egress.
    assert_eq!(set(&rules, "isolated_in"), ["10.244.1.5"]);
    assert_eq!(set(&rules, "isolated_out"), ["10.244.1.5"]);
    assert!(chain(&rules, "ingress").is_empty());
    assert_eq!(
        chain(&rules, "egress"),
        ["ip saddr 10.244.1.5 ip daddr 10.244.0.9 udp dport 5353"]
    );
}

#[test]
fn selectors_follow_the_apis_operators_and_fail_closed() {
    let labels: Labels = [("app".to_owned(), "web".to_owned())].into();
    let sel = |v: Value| Selector::parse(&v);
    assert!(sel(json!({})).unwrap().matches(&labels));
    assert!(sel(
        json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["db"]}]})
    )
    .unwrap()
    .matches(&labels));
    assert!(sel(
        json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]})
    )
    .unwrap()
    .matches(&labels));
    assert!(
        sel(json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}))
            .unwrap()
            .matches(&labels)
    );
    assert!(
        !sel(json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}))
            .unwrap()
            .matches(&labels)
    );
    assert!(!sel(json!({"matchLabels": {"app": "db"}}))
        .unwrap()
        .matches(&labels));
    // An operator it does not know: the selector selects nothing, so the policy isolates
    // nobody and a peer with it allows nobody.
    assert!(
        sel(json!({"matchExpressions": [{"key": "app", "operator": "Gt", "values": ["1"]}]}))
            .is_none()
    );
    let p = policy(
        "team",
        "p",
        json!({"podSelector": {}, "ingress": [{"from": [{"podSelector": {"matchExpressions": [{"key": "a", "operator": "Gt"}]}}]}]}),
    );
    let rules = ruleset("node01", &state(&pods(), &namespaces(), &[p]));
    assert_eq!(set(&rules, "isolated_in"), ["10.244.1.5", "10.244.1.6"]);
    assert!(chain(&rules, "ingress").is_empty());
}

#[test]
fn a_terminating_pod_stays_isolated_and_a_named_port_behind_an_ip_block_resolves() {
    let mut leaving = pod("team", "web", "node01", "10.244.1.5", json!({"app": "web"}));
    leaving["metadata"]["deletionTimestamp"] = json!("2026-12-07T21:00:00Z");
    let deny = policy(
        "team",
        "deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
    );
    let rules = ruleset("node01", &state(&[leaving], &namespaces(), &[deny]));
    assert_eq!(set(&rules, "isolated_in"), ["10.244.1.5"]);
    // Egress to a block, on a port named by the Pods inside it (`ops/probe` only).
    let out = policy(
        "team",
        "out",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.244.0.0/24", "except": ["10.244.0.7/32"]}}],
                        "ports": [{"protocol": "UDP", "port": "dns"}]}]
        }),
    );
    let rules = ruleset("node01", &state(&pods(), &namespaces(), &[out]));
    assert_eq!(
        chain(&rules, "egress"),
        ["ip saddr 10.244.1.5 ip daddr 10.244.0.9 udp dport 5353"]
    );
}

#[test]
fn finished_and_host_network_pods_take_no_part() {
    let mut done = pod("team", "job", "node01", "10.244.1.9", json!({"app": "web"}));
    done["status"]["phase"] = json!("Succeeded");
    let mut host = pod(
        "team",
        "hostnet",
        "node01",
        "172.30.0.2",
        json!({"app": "web"}),
    );
    host["spec"]["hostNetwork"] = json!(true);
    let deny = policy(
        "team",
        "deny",
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
    );
    let rules = ruleset("node01", &state(&[done, host], &namespaces(), &[deny]));
    assert!(set(&rules, "isolated_in").is_empty());
    assert!(set(&rules, "isolated_out").is_empty());
}

#[test]
fn networks_are_parsed_to_their_base() {
    assert_eq!(
        Net::parse("10.1.2.3/16").unwrap().to_string(),
        "10.1.0.0/16"
    );
    assert_eq!(Net::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
    assert!(Net::parse("10.0.0.0/33").is_none());
    assert!(Net::parse("fd00::/8").is_none());
}

#[test]
fn the_ruleset_is_one_nftables_transaction_the_kernel_accepts() {
    let allow = policy(
        "team",
        "all-kinds",
        json!({
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"app": "client"}}},
                          {"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}],
                 "ports": [{"port": 80}, {"port": "http"}, {"protocol": "UDP", "port": 1000, "endPort": 1010},
                           {"protocol": "SCTP"}]},
                {}
            ],
            "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "UDP", "port": "dns"}]}]
        }),
    );
    let rules = ruleset("node01", &state(&pods(), &namespaces(), &[allow]));
    // `nft --check` parses and validates against the kernel without committing.
    let mut nft = std::process::Command::new("nft")
        .args(["--check", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nft (nftables) is installed");
    use std::io::Write;
    nft.stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    let out = nft.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{rules}",
        String::from_utf8_lossy(&out.stderr)
    );
}
