//! The raw `playground:` section to a validated [`Playground`]: ttl, node names, images
//! and limits.

use std::collections::HashMap;
use std::time::Duration;

use sandlab_core::{parse_duration, ByteSize, Limits, NetworkMode, Profile, DEFAULT_TTL};

use crate::de::Spanned;
use crate::model::{Cluster, Node, Playground};
use crate::problem::{Diags, Pos};
use crate::raw::{RawNode, RawPlayground};
use crate::validate::{field, ImageCheck};

/// Most nodes one playground may start.
pub const MAX_NODES: usize = 16;
/// The image a node runs when it names none (SPEC: the default image).
pub const DEFAULT_IMAGE: &str = "debian";
/// The name of the node a lab gets when its playground lists none.
pub const DEFAULT_NODE: &str = "node01";
/// The node a cluster playground gets when it lists none.
pub const CLUSTER_DEFAULT_NODE: &str = "controlplane";
/// What a node of a cluster playground gets where it says nothing: a machine big enough
/// for a kubeadm control plane (etcd, the API server, the controllers) and its Pods.
pub const CLUSTER_NODE: Limits = Limits {
    memory: ByteSize::gib(2),
    cpus: 2.0,
    pids: 4096,
    disk: ByteSize::gib(8),
    network: NetworkMode::None,
    profile: Profile::Machine,
};
/// Shortest and longest playground ttl.
pub const TTL_RANGE: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(86_400));

/// Validates `raw` (at `at` when absent). A lab without `playground:` or without `nodes:`
/// gets one node, [`DEFAULT_NODE`], running [`DEFAULT_IMAGE`] with default limits.
pub(crate) fn playground(
    raw: Option<Spanned<RawPlayground>>,
    at: Pos,
    images: ImageCheck<'_>,
    diags: &mut Diags,
) -> Playground {
    let (at, raw) = match raw {
        Some(Spanned { pos, value }) => (pos, value),
        None => (at, None),
    };
    let (raw_ttl, raw_nodes, raw_cluster) =
        raw.map_or((None, None, None), |p| (p.ttl, p.nodes, p.cluster));
    let cluster = field(raw_cluster).and_then(|(pos, text)| match text.parse::<Cluster>() {
        Ok(c) => Some(c),
        Err(e) => {
            diags.push(pos, e);
            None
        }
    });
    let mut ttl = DEFAULT_TTL;
    if let Some((pos, text)) = field(raw_ttl) {
        match parse_duration(&text) {
            Ok(_) if text.trim().bytes().all(|b| b.is_ascii_digit()) => diags.push(
                pos,
                format!(
                    "ttl {text:?} has no unit; write {n}m for minutes or {n}h for hours (between 1m and 24h)",
                    n = text.trim()
                ),
            ),
            Ok(d) if d < TTL_RANGE.0 || d > TTL_RANGE.1 => {
                diags.push(pos, format!("ttl {text:?} is not between 1m and 24h"))
            }
            Ok(d) => ttl = d,
            Err(e) => diags.push(pos, format!("ttl: {e}")),
        }
    }

    let raw_nodes = match raw_nodes {
        None => {
            // A cluster of one node is named as Killercoda's and kubeadm's docs name it.
            let (name, image, limits) = match cluster {
                Some(c) => (CLUSTER_DEFAULT_NODE, c.default_image(), CLUSTER_NODE),
                None => (DEFAULT_NODE, DEFAULT_IMAGE, Limits::default()),
            };
            check_image(image, None, name, at, images, diags);
            let node = Node {
                name: name.into(),
                image: image.into(),
                limits,
            };
            return Playground {
                ttl,
                nodes: vec![node],
                cluster,
            };
        }
        Some(Spanned { value: None, .. }) => Vec::new(),
        Some(Spanned {
            value: Some(list),
            pos,
        }) => {
            if list.is_empty() {
                diags.push(pos, "the playground has no nodes; a lab needs at least one");
            } else if list.len() > MAX_NODES {
                let n = list.len();
                diags.push(
                    pos,
                    format!("the playground has {n} nodes; at most {MAX_NODES} are allowed"),
                );
            }
            list
        }
    };

    let mut seen = HashMap::new();
    let nodes = raw_nodes
        .into_iter()
        .filter_map(|n| node(n, cluster, images, &mut seen, diags))
        .collect();
    Playground {
        ttl,
        nodes,
        cluster,
    }
}

fn node(
    raw: Spanned<RawNode>,
    cluster: Option<Cluster>,
    images: ImageCheck<'_>,
    seen: &mut HashMap<String, usize>,
    diags: &mut Diags,
) -> Option<Node> {
    let at = raw.pos;
    let raw = raw.value?;
    let Some((name_pos, name)) = field(raw.name) else {
        diags.push(at, "node has no name");
        return None;
    };
    if !is_hostname(&name) {
        diags.push(
            name_pos,
            format!(
                "node name {name:?} is not a valid hostname (1 to 63 of a-z, 0-9 and -, \
                 not starting or ending with -)"
            ),
        );
    } else if let Some(first) = seen.get(&name) {
        diags.push(
            name_pos,
            format!("node name {name:?} is used twice (first on line {first})"),
        );
    } else {
        seen.insert(name.clone(), name_pos.line);
    }

    let image = field(raw.image);
    let (image_pos, image) = match image {
        Some((pos, image)) => (Some(pos), image),
        None => (
            None,
            cluster
                .map_or(DEFAULT_IMAGE, Cluster::default_image)
                .to_owned(),
        ),
    };
    check_image(&image, image_pos, &name, at, images, diags);

    let mut limits = match cluster {
        Some(_) => CLUSTER_NODE,
        None => Limits::default(),
    };
    if let Some((pos, text)) = field(raw.memory) {
        match text.parse::<ByteSize>() {
            Ok(v) => set(&mut limits, pos, "memory", diags, |l| l.memory = v),
            Err(e) => diags.push(pos, format!("memory: {e}")),
        }
    }
    if let Some((pos, text)) = field(raw.disk) {
        match text.parse::<ByteSize>() {
            Ok(v) => set(&mut limits, pos, "disk", diags, |l| l.disk = v),
            Err(e) => diags.push(pos, format!("disk: {e}")),
        }
    }
    if let Some((pos, text)) = field(raw.cpus) {
        match text.trim().parse::<f64>() {
            Ok(v) => set(&mut limits, pos, "cpus", diags, |l| l.cpus = v),
            Err(_) => diags.push(pos, format!("cpus: {text:?} is not a number")),
        }
    }
    if let Some((pos, text)) = field(raw.pids) {
        match text.trim().parse::<u32>() {
            Ok(v) => set(&mut limits, pos, "pids", diags, |l| l.pids = v),
            Err(_) => diags.push(pos, format!("pids: {text:?} is not a whole number")),
        }
    }
    if let Some((pos, text)) = field(raw.network) {
        match text.parse::<NetworkMode>() {
            Ok(v) => limits.network = v,
            Err(e) => diags.push(pos, format!("network: {e}")),
        }
    }
    if let Some((pos, text)) = field(raw.profile) {
        match text.parse::<Profile>() {
            Ok(Profile::Standard) if cluster.is_some() => diags.push(
                pos,
                format!(
                    "node {name:?} is in a cluster, whose nodes are machines (systemd, containerd); remove `profile: standard`"
                ),
            ),
            Ok(v) => limits.profile = v,
            Err(e) => diags.push(pos, format!("profile: {e}")),
        }
    }
    Some(Node {
        name,
        image,
        limits,
    })
}

/// Checks one limit against `sandlab-core`'s bounds on its own (the other limits at their
/// defaults, which are valid), so each bad limit is reported on its own line.
/// The most one lab node may ask for: a lab is written for any host, and a learner starts
/// it, so a node asking for a whole server is a mistake (the server would cut it to the
/// host's share anyway).
pub const NODE_MAX: Limits = Limits {
    memory: ByteSize::gib(16),
    cpus: 16.0,
    pids: 16384,
    disk: ByteSize::gib(100),
    network: NetworkMode::None,
    profile: Profile::Standard,
};

fn set(limits: &mut Limits, pos: Pos, what: &str, diags: &mut Diags, apply: impl Fn(&mut Limits)) {
    let mut alone = Limits::default();
    apply(&mut alone);
    if let Err(e) = alone.validate() {
        return diags.push(pos, format!("{what}: {e}"));
    }
    let over = match what {
        "memory" => (alone.memory > NODE_MAX.memory)
            .then(|| (alone.memory.to_string(), NODE_MAX.memory.to_string())),
        "disk" => (alone.disk > NODE_MAX.disk)
            .then(|| (alone.disk.to_string(), NODE_MAX.disk.to_string())),
        "cpus" => (alone.cpus > NODE_MAX.cpus)
            .then(|| (alone.cpus.to_string(), NODE_MAX.cpus.to_string())),
        "pids" => (alone.pids > NODE_MAX.pids)
            .then(|| (alone.pids.to_string(), NODE_MAX.pids.to_string())),
        _ => None,
    };
    match over {
        Some((asked, max)) => diags.push(
            pos,
            format!("{what}: {asked} is over the {max} a lab node may have"),
        ),
        None => apply(limits),
    }
}

fn check_image(
    image: &str,
    pos: Option<Pos>,
    node: &str,
    at: Pos,
    images: ImageCheck<'_>,
    diags: &mut Diags,
) {
    let valid = !image.is_empty()
        && image.len() <= 255
        && !image.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        diags.push(
            pos.unwrap_or(at),
            format!("image name {image:?} is not valid"),
        );
        return;
    }
    if images.is_some_and(|exists| !exists(image)) {
        let message = match pos {
            Some(_) => format!("image {image:?} does not exist"),
            None => format!("node {node:?} uses the default image {image:?}, which does not exist"),
        };
        diags.push(pos.unwrap_or(at), message);
    }
}

/// An RFC 1123 label in lowercase: what the other nodes resolve this node by.
pub(crate) fn is_hostname(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        for ok in ["node01", "a", "web-1", &"a".repeat(63)] {
            assert!(is_hostname(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "Node01", "a_b", "a.b", &"a".repeat(64)] {
            assert!(!is_hostname(bad), "{bad}");
        }
    }
}
