//! The `[kubernetes]` section of `sandlab.toml`: where sandbox Pods go and how they are
//! made. Every value is checked at start-up, each error one sentence naming its key, so a
//! mistake stops `serve` instead of failing every create.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// `[kubernetes]` as written; [`Settings::validate`] before use.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// A kubeconfig file; empty: in-cluster (the Pod's service account), else
    /// `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; empty: its current one.
    pub context: Option<String>,
    /// Where sandbox Pods, Secrets, Services and NetworkPolicies live.
    pub namespace: String,
    /// A DNS label naming this installation (label `sandlab.dev/instance`).
    pub instance: String,
    /// Sandlab image names (what labs and requests say) → container image references.
    pub images: BTreeMap<String, String>,
    /// The image holding the static agent (`/sandlab-agent`), copied into every Pod.
    pub agent_image: String,
    /// The port the agent listens on in every Pod.
    pub agent_port: u16,
    /// Always | IfNotPresent | Never.
    pub image_pull_policy: String,
    /// Secrets in `namespace` with registry credentials.
    pub image_pull_secrets: Vec<String>,
    /// `runtimeClassName` of every sandbox Pod (gVisor, Kata), if any.
    pub runtime_class: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    /// Extra labels on every object the driver makes.
    pub labels: BTreeMap<String, String>,
    /// `hostUsers: false` on every Pod: root in a sandbox is not root on the node.
    pub user_namespaces: bool,
    /// CPU requests are limits divided by this (memory requests always equal limits).
    pub cpu_overcommit: f64,
    /// Seconds a create waits for its Pod to be ready.
    pub start_timeout: u64,
    /// Egress destinations blocked besides the private and reserved ranges.
    pub blocked_cidrs: Vec<String>,
    pub cluster_domain: String,
    pub priority_class: Option<String>,
    /// The service account of sandbox Pods (its token is never mounted).
    pub service_account: Option<String>,
    /// The namespace of the control plane's Pods, the only ones let in to the agent
    /// port; unset: `namespace`.
    pub control_plane_namespace: Option<String>,
    /// Tolerations of sandbox Pods (e.g. for nodes tainted for sandboxes only), as
    /// Kubernetes writes them: `{ key, operator, value, effect, tolerationSeconds }`.
    pub tolerations: Vec<serde_json::Value>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            kubeconfig: None,
            context: None,
            namespace: "sandlab".into(),
            instance: "sandlab".into(),
            images: BTreeMap::new(),
            agent_image: String::new(),
            agent_port: 7070,
            image_pull_policy: "IfNotPresent".into(),
            image_pull_secrets: Vec::new(),
            runtime_class: None,
            node_selector: BTreeMap::new(),
            labels: BTreeMap::new(),
            user_namespaces: true,
            cpu_overcommit: 1.0,
            start_timeout: 120,
            blocked_cidrs: Vec::new(),
            cluster_domain: "cluster.local".into(),
            priority_class: None,
            service_account: None,
            control_plane_namespace: None,
            tolerations: Vec::new(),
        }
    }
}

/// Label keys this driver sets itself: `labels` may not name them.
const OWN_LABEL_PREFIXES: &[&str] = &[
    "sandlab.dev/",
    "app.kubernetes.io/managed-by",
    // The control plane's mark: a sandbox carrying it would be let in to every agent.
    "app.kubernetes.io/name",
];

impl Settings {
    /// Checks every value; the error is one sentence naming the key.
    pub fn validate(&self) -> Result<(), String> {
        if !is_dns_label(&self.namespace) {
            return Err(format!(
                "kubernetes.namespace {:?} is not a DNS label (lowercase letters, digits and '-', at most 63).",
                self.namespace
            ));
        }
        // Part of the name `sandlab-deny-<instance>` (at most 63 characters).
        if !is_dns_label(&self.instance) || self.instance.len() > 50 {
            return Err(format!(
                "kubernetes.instance {:?} is not a DNS label of at most 50 characters.",
                self.instance
            ));
        }
        if self.agent_image.is_empty() {
            return Err("kubernetes.agent_image is missing: name the image that holds the static agent (deploy/kubernetes/Dockerfile.agent).".into());
        }
        check_image("kubernetes.agent_image", &self.agent_image)?;
        if self.images.is_empty() {
            return Err("kubernetes.images is empty: map at least one Sandlab image name (e.g. debian) to a container image.".into());
        }
        for (name, reference) in &self.images {
            if name.is_empty()
                || name.len() > 128
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b))
            {
                return Err(format!(
                    "kubernetes.images has an invalid image name {name:?}."
                ));
            }
            check_image(&format!("kubernetes.images.{name}"), reference)?;
        }
        if self.agent_port == 0 {
            return Err("kubernetes.agent_port must be between 1 and 65535.".into());
        }
        if !["Always", "IfNotPresent", "Never"].contains(&self.image_pull_policy.as_str()) {
            return Err(format!(
                "kubernetes.image_pull_policy must be Always, IfNotPresent or Never, not {:?}.",
                self.image_pull_policy
            ));
        }
        for s in &self.image_pull_secrets {
            if !is_dns_subdomain(s) {
                return Err(format!(
                    "kubernetes.image_pull_secrets names {s:?}, which is not a Secret name."
                ));
            }
        }
        for (key, value, kind) in [
            ("runtime_class", &self.runtime_class, "RuntimeClass"),
            ("priority_class", &self.priority_class, "PriorityClass"),
            ("service_account", &self.service_account, "ServiceAccount"),
        ] {
            if let Some(v) = set(value) {
                if !is_dns_subdomain(v) {
                    return Err(format!("kubernetes.{key} {v:?} is not a {kind} name."));
                }
            }
        }
        if let Some(ns) = set(&self.control_plane_namespace) {
            if !is_dns_label(ns) {
                return Err(format!(
                    "kubernetes.control_plane_namespace {ns:?} is not a DNS label."
                ));
            }
        }
        for (i, t) in self.tolerations.iter().enumerate() {
            check_toleration(t).map_err(|why| format!("kubernetes.tolerations[{i}] {why}."))?;
        }
        for (what, map) in [
            ("node_selector", &self.node_selector),
            ("labels", &self.labels),
        ] {
            for (k, v) in map {
                if !is_label_key(k) {
                    return Err(format!("kubernetes.{what} has an invalid label key {k:?}."));
                }
                if !is_label_value(v) {
                    return Err(format!("kubernetes.{what}.{k:?} has an invalid label value {v:?} (at most 63 letters, digits, '-', '_' or '.')."));
                }
            }
        }
        if let Some(k) = self
            .labels
            .keys()
            .find(|k| OWN_LABEL_PREFIXES.iter().any(|p| k.starts_with(p)))
        {
            return Err(format!(
                "kubernetes.labels may not set {k:?}: Sandlab sets it itself."
            ));
        }
        if !(self.cpu_overcommit.is_finite() && (1.0..=100.0).contains(&self.cpu_overcommit)) {
            return Err(format!(
                "kubernetes.cpu_overcommit must be between 1 and 100, not {}.",
                self.cpu_overcommit
            ));
        }
        if !(5..=3600).contains(&self.start_timeout) {
            return Err(format!(
                "kubernetes.start_timeout must be between 5 and 3600 seconds, not {}.",
                self.start_timeout
            ));
        }
        for c in &self.blocked_cidrs {
            check_cidr(c).map_err(|why| format!("kubernetes.blocked_cidrs has {c:?}, {why}."))?;
        }
        if self.cluster_domain.is_empty() || !self.cluster_domain.split('.').all(is_dns_label) {
            return Err(format!(
                "kubernetes.cluster_domain {:?} is not a DNS name.",
                self.cluster_domain
            ));
        }
        Ok(())
    }

    /// The container image for the Sandlab image `name`.
    pub fn image(&self, name: &str) -> Option<&str> {
        self.images.get(name).map(String::as_str)
    }
}

/// One toleration as Kubernetes accepts it; why not, as the end of a sentence.
fn check_toleration(t: &serde_json::Value) -> Result<(), String> {
    let map = t.as_object().ok_or("is not a table")?;
    for (k, v) in map {
        let ok = match k.as_str() {
            "key" | "value" => v.as_str().is_some_and(|s| s.len() <= 316),
            "operator" => matches!(v.as_str(), Some("Exists" | "Equal")),
            "effect" => matches!(
                v.as_str(),
                Some("NoSchedule" | "PreferNoSchedule" | "NoExecute")
            ),
            "tolerationSeconds" => v.as_i64().is_some(),
            _ => return Err(format!("has an unknown key {k:?}")),
        };
        if !ok {
            return Err(format!("has an invalid {k}"));
        }
    }
    Ok(())
}

/// An optional name, where an empty string means unset.
pub(crate) fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// A CIDR the API server accepts in an `ipBlock`: an address and a prefix length, not an
/// IPv4-mapped IPv6 range (refused by the API server; such traffic is IPv4 on the wire).
pub(crate) fn check_cidr(c: &str) -> Result<(), &'static str> {
    let (addr, len) = c.split_once('/').ok_or("which has no prefix length")?;
    let len: u8 = len
        .parse()
        .map_err(|_| "whose prefix length is not a number")?;
    match addr
        .parse::<std::net::IpAddr>()
        .map_err(|_| "which is not an IP address")?
    {
        std::net::IpAddr::V4(_) if len > 32 => Err("whose prefix is longer than 32"),
        std::net::IpAddr::V6(_) if len > 128 => Err("whose prefix is longer than 128"),
        std::net::IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
            Err("an IPv4-mapped range; write the IPv4 range instead")
        }
        _ => Ok(()),
    }
}

fn check_image(key: &str, reference: &str) -> Result<(), String> {
    let ok = !reference.is_empty()
        && reference.len() <= 512
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/@".contains(&b))
        && !reference.starts_with(['-', '.', '/', ':', '@']);
    if ok {
        Ok(())
    } else {
        Err(format!("{key} {reference:?} is not an image reference."))
    }
}

/// RFC 1123 label: what Kubernetes requires of namespace and Service names.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric())
}

fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        let s: Settings = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    const BASE: &str =
        "agent_image = \"reg.example/agent:1\"\n[images]\ndebian = \"reg.example/debian:12\"\n";

    #[test]
    fn defaults_need_only_the_agent_and_an_image() {
        let s = parse(BASE).unwrap();
        assert_eq!(s.namespace, "sandlab");
        assert_eq!(s.agent_port, 7070);
        assert!(s.user_namespaces);
        assert_eq!(s.image("debian"), Some("reg.example/debian:12"));
        let err = parse("[images]\ndebian = \"x\"\n").unwrap_err();
        assert!(err.contains("kubernetes.agent_image"), "{err}");
        let err = parse("agent_image = \"a\"\n").unwrap_err();
        assert!(err.contains("kubernetes.images"), "{err}");
    }

    #[test]
    fn every_error_names_its_key() {
        for (extra, key) in [
            ("namespace = \"Sandlab\"", "kubernetes.namespace"),
            ("instance = \"a.b\"", "kubernetes.instance"),
            (
                "image_pull_policy = \"Sometimes\"",
                "kubernetes.image_pull_policy",
            ),
            (
                "image_pull_secrets = [\"bad name\"]",
                "kubernetes.image_pull_secrets",
            ),
            ("runtime_class = \"a_b\"", "kubernetes.runtime_class"),
            ("cpu_overcommit = 0.5", "kubernetes.cpu_overcommit"),
            ("start_timeout = 1", "kubernetes.start_timeout"),
            ("blocked_cidrs = [\"10.0.0.0\"]", "kubernetes.blocked_cidrs"),
            ("blocked_cidrs = [\"::ffff:10.0.0.0/104\"]", "IPv4-mapped"),
            ("cluster_domain = \"-x\"", "kubernetes.cluster_domain"),
            ("agent_port = 0", "kubernetes.agent_port"),
            (
                "labels = { \"sandlab.dev/role\" = \"x\" }",
                "Sandlab sets it",
            ),
            ("labels = { \"team\" = \"a b\" }", "kubernetes.labels"),
            (
                "labels = { \"app.kubernetes.io/name\" = \"sandlab\" }",
                "Sandlab sets it",
            ),
            (
                "control_plane_namespace = \"A\"",
                "kubernetes.control_plane_namespace",
            ),
            (
                "tolerations = [{ effect = \"Sometimes\" }]",
                "kubernetes.tolerations[0]",
            ),
            ("tolerations = [{ colour = \"red\" }]", "unknown key"),
            (
                "node_selector = { \"bad key!\" = \"a\" }",
                "kubernetes.node_selector",
            ),
        ] {
            let err = parse(&format!("{extra}\n{BASE}")).unwrap_err();
            assert!(err.contains(key), "{extra}: {err}");
        }
        let err = parse("agent_image = \"-x\"\n[images]\ndebian = \"a\"\n").unwrap_err();
        assert!(err.contains("kubernetes.agent_image"), "{err}");
        let err = parse("agent_image = \"a\"\n[images]\ndebian = \"a b\"\n").unwrap_err();
        assert!(err.contains("kubernetes.images.debian"), "{err}");
        let err = parse(&format!("nonsense = 1\n{BASE}")).unwrap_err();
        assert!(err.contains("nonsense"), "{err}");
    }
}
