//! The front matter as written: serde input types, every field optional and positioned.
//!
//! Nothing here is validated beyond its YAML shape. [`crate::validate`] turns these into the
//! types the rest of Sandlab uses ([`crate::Lab`], [`crate::Task`], [`crate::Node`]), with
//! defaults filled in and every rule checked. Sizes, durations and numbers are kept as the
//! text the author wrote, to be parsed by `sandlab-core`.
//!
//! The `rename` of each struct is the name used in "unknown key" messages.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::de::Spanned;
use crate::{LabKind, TabKind};

type Field<T> = Option<Spanned<T>>;
type List<T> = Option<Spanned<Vec<Spanned<T>>>>;

#[derive(Debug, Deserialize)]
#[serde(
    rename = "front matter",
    deny_unknown_fields,
    expecting = "a mapping of title, description, kind, tags, draft, org, playground, tabs and tasks"
)]
pub(crate) struct RawLab {
    pub title: Field<String>,
    pub description: Field<String>,
    pub kind: Field<LabKind>,
    pub tags: List<String>,
    pub draft: Field<bool>,
    pub org: Field<String>,
    pub playground: Field<RawPlayground>,
    pub tabs: List<RawTab>,
    pub tasks: Field<Entries<RawTask>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    rename = "playground",
    deny_unknown_fields,
    expecting = "a mapping of ttl and nodes"
)]
pub(crate) struct RawPlayground {
    pub ttl: Field<String>,
    pub nodes: List<RawNode>,
    pub cluster: Field<String>,
}

#[derive(Debug, Deserialize)]
#[serde(
    rename = "node",
    deny_unknown_fields,
    expecting = "a node: a mapping of name, image, profile, memory, cpus, pids, disk and network"
)]
pub(crate) struct RawNode {
    pub name: Field<String>,
    pub image: Field<String>,
    pub memory: Field<String>,
    pub cpus: Field<String>,
    pub pids: Field<String>,
    pub disk: Field<String>,
    pub network: Field<String>,
    pub profile: Field<String>,
}

#[derive(Debug, Deserialize)]
#[serde(
    rename = "tab",
    deny_unknown_fields,
    expecting = "a tab: a mapping of kind, node, port, path, url and title"
)]
pub(crate) struct RawTab {
    pub kind: Field<TabKind>,
    pub node: Field<String>,
    pub port: Field<String>,
    pub path: Field<String>,
    pub url: Field<String>,
    pub title: Field<String>,
}

#[derive(Debug, Deserialize)]
#[serde(
    rename = "task",
    deny_unknown_fields,
    expecting = "a task: a mapping of title, init, run, hint, solve, needs, machine, user, \
                 timeout and interval"
)]
pub(crate) struct RawTask {
    pub title: Field<String>,
    pub init: Field<bool>,
    pub run: Field<String>,
    pub hint: Field<String>,
    pub solve: Field<String>,
    pub needs: List<String>,
    pub machine: Field<String>,
    pub user: Field<String>,
    pub timeout: Field<String>,
    pub interval: Field<String>,
}

/// A mapping whose keys are kept in order with their positions (`tasks:`).
#[derive(Debug)]
pub(crate) struct Entries<T>(pub Vec<(Spanned<String>, Spanned<T>)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for EntriesVisitor<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E>(self) -> Result<Entries<T>, E> {
                Ok(Entries(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(EntriesVisitor(PhantomData))
    }
}
