//! `config.yml`: the track's hosts, as playground nodes.

use std::collections::HashMap;

use super::super::draft::DraftNode;
use super::super::notes::Notes;
use super::super::source::Source;
use super::super::tree::{self, entries, get, items, text};
use super::super::{script, ImportError, Result};
use crate::playground::is_hostname;
use crate::{DEFAULT_IMAGE, DEFAULT_NODE, MAX_NODES};

pub(super) const CONFIG: &str = "config.yml";

/// Keys of a host that the import maps.
const HOST_KEYS: [&str; 3] = ["name", "image", "shell"];

/// The nodes, and the node each Instruqt host name runs on.
pub(super) struct Hosts {
    pub nodes: Vec<DraftNode>,
    by_host: HashMap<String, String>,
    /// Instruqt host names in the order of the nodes.
    pub order: Vec<String>,
    /// A host's `shell`, which runs its scripts that have no `#!` line.
    shells: HashMap<String, String>,
}

impl Hosts {
    /// The node for Instruqt host `host`: its own, else (noted in `file`) the first.
    pub fn node(&self, host: &str, file: &str, notes: &mut Notes) -> String {
        if let Some(node) = self.by_host.get(host) {
            return node.clone();
        }
        let first = self.nodes.first().map_or(DEFAULT_NODE, |n| n.name.as_str());
        notes.add(
            file,
            format!("host {host:?} is not in config.yml; its script runs on node {first:?}"),
        );
        first.to_owned()
    }

    /// The node of Instruqt host `host`, when the track has that host.
    pub fn get(&self, host: &str) -> Option<&str> {
        self.by_host.get(host).map(String::as_str)
    }

    /// The shell host `host` names for its scripts without a `#!` line (`None`: `sh`).
    pub fn shell(&self, host: &str) -> Option<&str> {
        self.shells.get(host).map(String::as_str)
    }

    /// Whether the playground has one node (task ids then leave the host out).
    pub fn single(&self) -> bool {
        self.nodes.len() == 1
    }

    fn add(&mut self, host: &str, at: &str, notes: &mut Notes) {
        let mut name: String = host
            .to_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .trim_matches('-')
            .chars()
            .take(63)
            .collect();
        name = name.trim_end_matches('-').to_owned();
        if name.is_empty() {
            name = format!("node{:02}", self.nodes.len() + 1);
        }
        let base = name.clone();
        let mut n = 2;
        while self.nodes.iter().any(|d| d.name == name) {
            let suffix = format!("-{n}");
            name = format!("{}{suffix}", &base[..base.len().min(63 - suffix.len())]);
            n += 1;
        }
        if name != host {
            notes.add(
                at,
                format!(
                    "host {host:?} becomes node {name:?} (a node name is a lowercase hostname)"
                ),
            );
        }
        debug_assert!(is_hostname(&name));
        self.by_host.insert(host.to_owned(), name.clone());
        self.order.push(host.to_owned());
        self.nodes.push(DraftNode {
            name,
            image: DEFAULT_IMAGE.into(),
        });
    }
}

/// Reads `config.yml`; without one, makes a node per host the scripts name (`named`).
pub(super) fn hosts(src: &Source, named: &[String], notes: &mut Notes) -> Result<Hosts> {
    let mut hosts = Hosts {
        nodes: Vec::new(),
        by_host: HashMap::new(),
        order: Vec::new(),
        shells: HashMap::new(),
    };
    let shown = src.show(CONFIG);
    let Some(yaml) = src.read_optional(CONFIG)? else {
        for host in named {
            hosts.add(host, "track.yml", notes);
        }
        if hosts.nodes.is_empty() {
            hosts.add(DEFAULT_NODE, "track.yml", notes);
        }
        let list: Vec<_> = hosts.nodes.iter().map(|n| n.name.as_str()).collect();
        notes.add(
            "track.yml",
            format!(
                "there is no config.yml: node(s) {} made from the scripts' host names, running \
                 \"debian\"",
                list.join(", ")
            ),
        );
        check_count(&hosts, &shown)?;
        return Ok(hosts);
    };
    let root = tree::load(&yaml, 1, &shown, CONFIG, notes)?;
    let root = root.as_ref();
    for (key, value) in entries(root) {
        let key = key.scalar_text().unwrap_or_default();
        match key {
            "virtualmachines" | "containers" => {
                for host in items(Some(value)) {
                    add_host(&mut hosts, host, key, &shown, notes)?;
                }
            }
            "version" => {}
            other => notes.add(CONFIG, format!("{other}: not mapped")),
        }
    }
    if hosts.nodes.is_empty() {
        notes.add(
            CONFIG,
            "it names no hosts: one node node01 running \"debian\"",
        );
        hosts.add(DEFAULT_NODE, CONFIG, notes);
    }
    check_count(&hosts, &shown)?;
    Ok(hosts)
}

fn add_host(
    hosts: &mut Hosts,
    host: &crate::yaml::Node,
    kind: &str,
    shown: &std::path::Path,
    notes: &mut Notes,
) -> Result<()> {
    let line = tree::line(host);
    let Some(name) = text(get(Some(host), "name")) else {
        return Err(ImportError::at(
            shown,
            format!("line {line}: a host under {kind} has no name"),
        ));
    };
    let image = text(get(Some(host), "image")).unwrap_or("(none)");
    let unknown = tree::unknown_keys(Some(host), &HOST_KEYS);
    hosts.add(name, CONFIG, notes);
    if let Some(shell) = text(get(Some(host), "shell")).map(str::trim) {
        if script::is_safe(shell) {
            hosts.shells.insert(name.to_owned(), shell.to_owned());
        } else {
            let note = format!(
                "host {name:?}: shell {shell:?} is not a command line Sandlab runs; its \
                 scripts without #! run with sh"
            );
            notes.add(CONFIG, note);
        }
    }
    let node = hosts
        .nodes
        .last()
        .map(|n| n.name.clone())
        .unwrap_or_default();
    notes.add(
        CONFIG,
        format!("host {name:?} ({kind}): image {image:?} mapped to \"debian\" on node {node:?}"),
    );
    if !unknown.is_empty() {
        notes.add(
            CONFIG,
            format!("host {name:?}: not mapped: {}", unknown.join(", ")),
        );
    }
    Ok(())
}

fn check_count(hosts: &Hosts, shown: &std::path::Path) -> Result<()> {
    if hosts.nodes.len() > MAX_NODES {
        return Err(ImportError::at(
            shown,
            format!(
                "names {} hosts, more than the {MAX_NODES} nodes a lab may have",
                hosts.nodes.len()
            ),
        ));
    }
    Ok(())
}
