//! Reading Instruqt's YAML files through the crate's own bounded YAML loader.

use std::path::Path;

use super::notes::Notes;
use super::{ImportError, Result};
use crate::problem::Diags;
use crate::yaml::{self, resolve, Node, Resolved, Value, YamlError};

/// Loads `text`, the YAML file `rel` (its first line is file line `first_line`); `None`
/// when it holds no document. Small problems (a key given twice) become notes.
pub(crate) fn load(
    text: &str,
    first_line: usize,
    shown: &Path,
    rel: &str,
    notes: &mut Notes,
) -> Result<Option<Node>> {
    let mut diags = Diags::default();
    let root = yaml::load(text, first_line, &mut diags).map_err(|(pos, e)| {
        let message = match e {
            YamlError::Syntax(s) => format!("not valid YAML at line {}: {s}", pos.line),
            YamlError::TooDeep => format!("nests deeper than {} levels", yaml::MAX_DEPTH),
            YamlError::TooBig => {
                "expands to too many values (are aliases copying each other?)".into()
            }
            YamlError::MultipleDocuments => "holds more than one YAML document".into(),
            YamlError::UnknownAlias => format!(
                "line {}: an alias refers to an anchor that is not defined before it",
                pos.line
            ),
        };
        ImportError::at(shown, message)
    })?;
    for p in diags.into_problems(shown) {
        notes.add(rel, format!("line {}: {} (ignored)", p.line, p.message));
    }
    Ok(root)
}

/// The entries of a mapping; empty for anything else.
pub(crate) fn entries(node: Option<&Node>) -> &[(Node, Node)] {
    match node.map(|n| &n.value) {
        Some(Value::Map(entries)) => entries,
        _ => &[],
    }
}

/// The items of a sequence; empty for anything else.
pub(crate) fn items(node: Option<&Node>) -> &[Node] {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items,
        _ => &[],
    }
}

pub(crate) fn get<'a>(node: Option<&'a Node>, key: &str) -> Option<&'a Node> {
    entries(node)
        .iter()
        .find(|(k, _)| k.scalar_text() == Some(key))
        .map(|(_, v)| v)
}

/// A scalar's text; `None` for null, a sequence or a mapping.
pub(crate) fn text(node: Option<&Node>) -> Option<&str> {
    match &node?.value {
        Value::Scalar { text, plain } if !(*plain && resolve(text) == Resolved::Null) => Some(text),
        _ => None,
    }
}

/// The keys of a mapping that are not in `known`, as written.
pub(crate) fn unknown_keys(node: Option<&Node>, known: &[&str]) -> Vec<String> {
    entries(node)
        .iter()
        .filter_map(|(k, _)| k.scalar_text())
        .filter(|k| !known.contains(k))
        .map(str::to_owned)
        .collect()
}

/// The line a node is on.
pub(crate) fn line(node: &Node) -> usize {
    node.pos.line
}
