//! The Kubernetes objects of one sandbox, built from its spec and the settings:
//!
//! | object | name | what for |
//! |---|---|---|
//! | Pod | `<id>` | the sandbox: the agent is PID 1, listening on `PodIP:<agent_port>` |
//! | Secret | `<id>-agent` | the agent's 256-bit token, mounted read-only |
//! | NetworkPolicy | `<id>` | what the sandbox may reach and who may reach it |
//! | NetworkPolicy | `sandlab-deny-<instance>` | deny-all floor under every Pod of the instance |
//! | Service | `pg-<playground>` | headless: the nodes of a lab session resolve each other |
//!
//! Written as JSON and read back into the typed objects, so what goes to the API server
//! reads like the YAML an operator would write.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use sandlab_core::{NetworkMode, SandboxId};
use sandlab_runtime::{SandboxSpec, BLOCKED_V4, BLOCKED_V6};
use serde_json::{json, Value};

use crate::settings::{set, Settings};

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const INSTANCE: &str = "sandlab.dev/instance";
pub const STORE: &str = "sandlab.dev/store";
pub const SANDBOX: &str = "sandlab.dev/sandbox";
pub const PLAYGROUND: &str = "sandlab.dev/playground";
/// `ready` on a warm pool member nobody claimed, `claimed` once a claim relabelled it.
pub const POOL: &str = "sandlab.dev/pool";
/// Annotations: the pool profile, when a claim happened, the Sandlab image name.
pub const POOL_PROFILE: &str = "sandlab.dev/pool-profile";
pub const CLAIMED_AT: &str = "sandlab.dev/claimed-at";
pub const IMAGE: &str = "sandlab.dev/image";
/// Labels the control plane's own Pods carry (deploy/kubernetes/sandlab.yaml).
pub const CONTROL_PLANE: (&str, &str) = ("app.kubernetes.io/name", "sandlab");

/// Where the agent lives in the sandbox's container, and where its token is.
pub const AGENT_DIR: &str = "/.sandlab";
pub const TOKEN_DIR: &str = "/.sandlab-token";
/// The container running the agent and everything the learner starts.
pub const CONTAINER: &str = "sandbox";

/// Docker's default capabilities without NET_RAW (ping works through
/// `ping_group_range`), MKNOD and SETFCAP; everything else is dropped.
pub const CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// What every object of this driver carries, whose values select them.
#[derive(Clone, Debug)]
pub struct Identity {
    pub instance: String,
    /// Names the database whose records these objects belong to (see `store_label`).
    pub store: String,
    pub extra: BTreeMap<String, String>,
}

impl Identity {
    /// The label selector of every object this instance made for this store.
    pub fn selector(&self) -> String {
        format!(
            "{MANAGED_BY}=sandlab,{INSTANCE}={},{STORE}={}",
            self.instance, self.store
        )
    }

    fn labels(&self, id: Option<&SandboxId>) -> BTreeMap<String, String> {
        let mut l = self.extra.clone();
        l.insert(MANAGED_BY.into(), "sandlab".into());
        l.insert(INSTANCE.into(), self.instance.clone());
        l.insert(STORE.into(), self.store.clone());
        if let Some(id) = id {
            l.insert(SANDBOX.into(), id.to_string());
        }
        l
    }
}

/// The headless Service of a playground.
pub fn service_name(playground: &str) -> String {
    format!("pg-{playground}")
}

/// The deny-all floor's name.
pub fn floor_name(instance: &str) -> String {
    format!("sandlab-deny-{instance}")
}

pub fn secret_name(id: &SandboxId) -> String {
    format!("{id}-agent")
}

/// An environment value as Kubernetes passes it on: `$(VAR)` would be expanded, so every
/// `$` is doubled.
fn escape_env(value: &str) -> String {
    value.replace('$', "$$")
}

/// Kubernetes quantities from the sandbox's limits.
fn resources(spec: &SandboxSpec, settings: &Settings) -> Value {
    let l = &spec.limits;
    let cpu_limit = format!("{}m", (l.cpus * 1000.0).round().max(1.0) as u64);
    let cpu_request = format!(
        "{}m",
        (l.cpus * 1000.0 / settings.cpu_overcommit).round().max(1.0) as u64
    );
    let memory = l.memory.bytes().to_string();
    let disk = l.disk.bytes().to_string();
    json!({
        "limits": { "cpu": cpu_limit, "memory": memory, "ephemeral-storage": disk },
        "requests": { "cpu": cpu_request, "memory": memory, "ephemeral-storage": disk },
    })
}

/// The sandbox's Pod. `image` is the container image `spec.image` maps to.
pub fn pod(spec: &SandboxSpec, image: &str, settings: &Settings, who: &Identity) -> Pod {
    let mut labels = who.labels(Some(&spec.id));
    let mut annotations = BTreeMap::from([(IMAGE.to_owned(), spec.image.clone())]);
    if let Some(profile) = &spec.pool {
        labels.insert(POOL.into(), "ready".into());
        annotations.insert(POOL_PROFILE.into(), profile.clone());
    }
    if let Some(pg) = &spec.playground {
        labels.insert(PLAYGROUND.into(), pg.name.clone());
    }
    let env: Vec<Value> = spec
        .env
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| json!({ "name": k, "value": escape_env(v) }))
        .collect();
    let port = settings.agent_port;
    let hardened = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": { "drop": ["ALL"], "add": CAPABILITIES },
        "runAsUser": 0,
        "runAsGroup": 0,
    });
    let mut pod_spec = json!({
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 2,
        "hostname": spec.hostname.clone().unwrap_or_else(|| spec.id.to_string()),
        "securityContext": {
            "seccompProfile": { "type": "RuntimeDefault" },
            // Ping without NET_RAW. 0-65535: inside a Pod's user namespace only 65536
            // ids are mapped, and a wider range is refused (containerd#8779).
            "sysctls": [{ "name": "net.ipv4.ping_group_range", "value": "0 65535" }],
        },
        "volumes": [
            { "name": "agent", "emptyDir": { "sizeLimit": "64Mi" } },
            { "name": "token", "secret": { "secretName": secret_name(&spec.id), "defaultMode": 0o400 } },
        ],
        "initContainers": [{
            "name": "agent",
            "image": settings.agent_image,
            "imagePullPolicy": settings.image_pull_policy,
            "command": ["/sandlab-agent", "--copy-to", format!("{AGENT_DIR}/agent")],
            "volumeMounts": [{ "name": "agent", "mountPath": AGENT_DIR }],
            "securityContext": hardened,
            "resources": {
                "limits": { "cpu": "100m", "memory": "64Mi" },
                "requests": { "cpu": "10m", "memory": "64Mi" },
            },
        }],
        "containers": [{
            "name": CONTAINER,
            "image": image,
            "imagePullPolicy": settings.image_pull_policy,
            "command": [
                format!("{AGENT_DIR}/agent"),
                "--listen-tcp", format!("0.0.0.0:{port}"),
                "--token-file", format!("{TOKEN_DIR}/token"),
            ],
            "env": env,
            "ports": [{ "name": "agent", "containerPort": port, "protocol": "TCP" }],
            "volumeMounts": [
                { "name": "agent", "mountPath": AGENT_DIR, "readOnly": true },
                { "name": "token", "mountPath": TOKEN_DIR, "readOnly": true },
            ],
            "resources": resources(spec, settings),
            "securityContext": hardened,
        }],
    });
    let s = pod_spec.as_object_mut().expect("an object");
    if settings.user_namespaces {
        s.insert("hostUsers".into(), json!(false));
    }
    if let Some(pg) = &spec.playground {
        // The nodes of a lab find each other by bare name (`ping node02`), as on the
        // container driver: the playground's headless Service is a search domain.
        let service = service_name(&pg.name);
        s.insert(
            "dnsConfig".into(),
            json!({ "searches": [format!(
                "{service}.{}.svc.{}",
                settings.namespace, settings.cluster_domain
            )] }),
        );
        s.insert("subdomain".into(), json!(service));
    }
    if let Some(rc) = set(&settings.runtime_class) {
        s.insert("runtimeClassName".into(), json!(rc));
    }
    if let Some(pc) = set(&settings.priority_class) {
        s.insert("priorityClassName".into(), json!(pc));
    }
    if let Some(sa) = set(&settings.service_account) {
        s.insert("serviceAccountName".into(), json!(sa));
    }
    // The agent is built for x86_64: a mixed cluster must not put a sandbox elsewhere.
    let mut nodes = settings.node_selector.clone();
    nodes
        .entry("kubernetes.io/arch".into())
        .or_insert_with(|| "amd64".into());
    s.insert("nodeSelector".into(), json!(nodes));
    if !settings.tolerations.is_empty() {
        s.insert("tolerations".into(), json!(settings.tolerations));
    }
    if !settings.image_pull_secrets.is_empty() {
        let secrets: Vec<Value> = settings
            .image_pull_secrets
            .iter()
            .map(|n| json!({ "name": n }))
            .collect();
        s.insert("imagePullSecrets".into(), json!(secrets));
    }
    typed(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": spec.id.as_str(), "labels": labels, "annotations": annotations },
        "spec": pod_spec,
    }))
}

/// The agent's token, owned by the Pod (the cluster removes it with the Pod too).
pub fn secret(id: &SandboxId, token: &str, owner: OwnerReference, who: &Identity) -> Secret {
    typed(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name(id),
            "labels": who.labels(Some(id)),
            "ownerReferences": [owner],
        },
        "type": "Opaque",
        "stringData": { "token": token },
    }))
}

/// What the sandbox may reach and who may reach it: the agent port from the control
/// plane; with egress the internet but no private, link-local or reserved range (nor
/// `blocked_cidrs`), and DNS from the cluster's resolver; the other nodes of its
/// playground on every port.
pub fn network_policy(
    spec: &SandboxSpec,
    settings: &Settings,
    owner: OwnerReference,
    who: &Identity,
) -> NetworkPolicy {
    let cp_namespace = set(&settings.control_plane_namespace).unwrap_or(&settings.namespace);
    let control_plane = json!({
        "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": cp_namespace } },
        "podSelector": { "matchLabels": { CONTROL_PLANE.0: CONTROL_PLANE.1 } },
    });
    let mut ingress = vec![json!({
        "from": [control_plane],
        "ports": [{ "protocol": "TCP", "port": settings.agent_port }],
    })];
    let mut egress = Vec::new();
    let dns = json!({
        "to": [{
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } },
            "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } },
        }],
        "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }],
    });
    if let Some(pg) = &spec.playground {
        let peers = json!([{ "podSelector": { "matchLabels": { PLAYGROUND: pg.name } } }]);
        ingress.push(json!({ "from": peers }));
        egress.push(json!({ "to": peers }));
    }
    if spec.playground.is_some() || spec.limits.network == NetworkMode::Egress {
        egress.push(dns);
    }
    if spec.limits.network == NetworkMode::Egress {
        let (v4, v6) = blocked(settings);
        egress.push(json!({
            "to": [
                { "ipBlock": { "cidr": "0.0.0.0/0", "except": v4 } },
                { "ipBlock": { "cidr": "::/0", "except": v6 } },
            ],
        }));
    }
    typed(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": spec.id.as_str(),
            "labels": who.labels(Some(&spec.id)),
            "ownerReferences": [owner],
        },
        "spec": {
            "podSelector": { "matchLabels": { SANDBOX: spec.id.as_str() } },
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }))
}

/// The egress blocks as `ipBlock` exceptions: the private and reserved ranges every driver
/// blocks plus `blocked_cidrs`, by family. The IPv4-mapped IPv6 block is left out: the API
/// server refuses it, and such traffic is IPv4 on the wire, which the IPv4 list covers.
pub fn blocked(settings: &Settings) -> (Vec<String>, Vec<String>) {
    let mut v4: Vec<String> = BLOCKED_V4.iter().map(|s| s.to_string()).collect();
    let mut v6: Vec<String> = BLOCKED_V6
        .iter()
        .filter(|c| !c.starts_with("::ffff:"))
        .map(|s| s.to_string())
        .collect();
    for c in &settings.blocked_cidrs {
        if c.contains(':') {
            v6.push(c.clone());
        } else {
            v4.push(c.clone());
        }
    }
    (v4, v6)
}

/// Denies everything to every Pod of the instance that no other policy lets through: a
/// Pod is covered from its first moment, before its own policy exists.
pub fn floor(who: &Identity) -> NetworkPolicy {
    typed(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": floor_name(&who.instance), "labels": {
            MANAGED_BY: "sandlab", INSTANCE: who.instance,
        } },
        "spec": {
            "podSelector": { "matchLabels": { MANAGED_BY: "sandlab", INSTANCE: who.instance } },
            "policyTypes": ["Ingress", "Egress"],
        },
    }))
}

/// The headless Service giving a playground's nodes their names
/// (`<hostname>.pg-<name>.<namespace>.svc.<cluster domain>`).
pub fn service(playground: &str, who: &Identity) -> Service {
    let mut labels = who.labels(None);
    labels.insert(PLAYGROUND.into(), playground.into());
    typed(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": service_name(playground), "labels": labels },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": { PLAYGROUND: playground },
        },
    }))
}

/// The owner reference that ties a Secret or a policy to its Pod.
pub fn owned_by(pod: &Pod) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: pod.metadata.name.clone()?,
        uid: pod.metadata.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: None,
    })
}

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("the object's JSON matches its Kubernetes type")
}

#[cfg(test)]
mod tests {
    use sandlab_core::{ByteSize, Limits};
    use sandlab_runtime::Playground;

    use super::*;

    fn settings() -> Settings {
        let mut s = Settings {
            agent_image: "reg/agent:1".into(),
            ..Settings::default()
        };
        s.images.insert("debian".into(), "reg/debian:12".into());
        s
    }

    fn who() -> Identity {
        Identity {
            instance: "sandlab".into(),
            store: "0123456789abcdef".into(),
            extra: BTreeMap::from([("team".to_owned(), "a".to_owned())]),
        }
    }

    fn spec() -> SandboxSpec {
        SandboxSpec {
            id: SandboxId::generate(),
            image: "debian".into(),
            limits: Limits {
                memory: ByteSize::mib(256),
                cpus: 0.5,
                network: NetworkMode::Egress,
                ..Limits::default()
            },
            hostname: Some("node01".into()),
            env: vec!["GREETING=$(HOME) costs $5".into()],
            playground: Some(Playground {
                name: "abcdefghijkl".into(),
                nodes: vec!["node01".into(), "node02".into()],
            }),
            pool: None,
        }
    }

    #[test]
    fn the_pod_is_hardened_limited_and_labelled() {
        let mut set = settings();
        set.cpu_overcommit = 2.0;
        set.runtime_class = Some("gvisor".into());
        let p = pod(&spec(), "reg/debian:12", &set, &who());
        let v = serde_json::to_value(&p).unwrap();
        let s = &v["spec"];
        assert_eq!(s["automountServiceAccountToken"], false);
        assert_eq!(s["enableServiceLinks"], false);
        assert_eq!(s["hostUsers"], false);
        assert_eq!(s["runtimeClassName"], "gvisor");
        assert_eq!(s["subdomain"], "pg-abcdefghijkl");
        assert_eq!(
            s["dnsConfig"]["searches"],
            json!([format!(
                "pg-abcdefghijkl.{}.svc.cluster.local",
                settings().namespace
            )])
        );
        assert_eq!(s["hostname"], "node01");
        assert_eq!(
            s["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &s["containers"][0];
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
        let added = c["securityContext"]["capabilities"]["add"]
            .as_array()
            .unwrap();
        for dangerous in ["NET_RAW", "MKNOD", "SETFCAP", "SYS_ADMIN", "NET_ADMIN"] {
            assert!(!added.iter().any(|a| a == dangerous), "{dangerous}");
        }
        assert_eq!(
            c["resources"]["limits"]["memory"],
            (256u64 << 20).to_string()
        );
        assert_eq!(c["resources"]["limits"]["cpu"], "500m");
        assert_eq!(c["resources"]["requests"]["cpu"], "250m");
        assert_eq!(c["env"][0]["value"], "$$(HOME) costs $$5");
        assert_eq!(c["command"][0], "/.sandlab/agent");
        let l = &v["metadata"]["labels"];
        assert_eq!(l[MANAGED_BY], "sandlab");
        assert_eq!(l[STORE], "0123456789abcdef");
        assert_eq!(l[PLAYGROUND], "abcdefghijkl");
        assert_eq!(l["team"], "a");
        assert!(l.get(POOL).is_none());
        set.user_namespaces = false;
        let mut sp = spec();
        sp.pool = Some("small".into());
        let v = serde_json::to_value(pod(&sp, "x", &set, &who())).unwrap();
        assert!(v["spec"].get("hostUsers").is_none());
        assert_eq!(v["spec"]["nodeSelector"]["kubernetes.io/arch"], "amd64");
        assert_eq!(v["metadata"]["labels"][POOL], "ready");
        assert_eq!(v["metadata"]["annotations"][POOL_PROFILE], "small");
    }

    #[test]
    fn egress_blocks_private_ranges_and_playground_peers_get_in() {
        let mut set = settings();
        set.blocked_cidrs = vec!["203.0.113.0/24".into(), "2001:db8::/32".into()];
        let owner = OwnerReference::default();
        let v = serde_json::to_value(network_policy(&spec(), &set, owner.clone(), &who())).unwrap();
        let text = v.to_string();
        for cidr in [
            "10.0.0.0/8",
            "169.254.0.0/16",
            "fe80::/10",
            "203.0.113.0/24",
            "2001:db8::/32",
        ] {
            assert!(text.contains(cidr), "{cidr} not blocked: {text}");
        }
        assert!(!text.contains("::ffff:"), "{text}");
        assert_eq!(
            v["spec"]["ingress"][1]["from"][0]["podSelector"]["matchLabels"][PLAYGROUND],
            "abcdefghijkl"
        );
        let mut none = spec();
        none.limits.network = NetworkMode::None;
        none.playground = None;
        let v = serde_json::to_value(network_policy(&none, &set, owner, &who())).unwrap();
        assert_eq!(
            v["spec"]["egress"],
            json!([]),
            "a sandbox without network reaches nothing"
        );
        assert_eq!(v["spec"]["ingress"].as_array().unwrap().len(), 1);
    }
}
