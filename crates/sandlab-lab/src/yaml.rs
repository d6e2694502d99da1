//! A small YAML tree with file positions, built from `saphyr-parser`'s events.
//!
//! The front matter comes from lab authors and, through imports and Git repositories, from
//! strangers, so the loader is built for hostile input:
//! - nesting is capped at [`MAX_DEPTH`] levels, so nothing downstream recurses deeply;
//! - every value, including every copy an alias (`*name`) makes, counts against
//!   [`MAX_VALUES`] values and [`MAX_TEXT`] bytes of text, so a "billion laughs" alias bomb
//!   is refused after a few thousand copies instead of filling memory;
//! - one document only; tags other than YAML's own (`!!str`, ...) are refused;
//! - a key given twice in one mapping is a problem (the first one wins), not silently
//!   overwritten.
//!
//! Syntax errors and exceeded limits end loading (the error carries its position); the
//! smaller problems above are pushed to [`Diags`] and loading goes on.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, Tag};

use crate::problem::{Diags, Pos};

/// Deepest nesting of sequences and mappings accepted.
pub(crate) const MAX_DEPTH: usize = 32;
/// Most values (scalars, sequences, mappings) one front matter may expand to.
pub(crate) const MAX_VALUES: usize = 20_000;
/// Most bytes of scalar text one front matter may expand to.
pub(crate) const MAX_TEXT: usize = 4 << 20;

/// Why the front matter could not be loaded at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum YamlError {
    #[error("YAML syntax error: {0}")]
    Syntax(String),
    #[error("the front matter nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error(
        "the front matter expands to more than {MAX_VALUES} values or {} MiB of text \
         (are aliases copying each other?)",
        MAX_TEXT >> 20
    )]
    TooBig,
    #[error("the front matter holds more than one YAML document")]
    MultipleDocuments,
    #[error("alias refers to an anchor that is not defined before it")]
    UnknownAlias,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// `plain` scalars are resolved by YAML 1.2's core schema (`null`, `true`, `12`);
    /// quoted and block scalars, and `!!str` ones, are always text.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The text of a scalar, for keys and error messages.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// `(values, text bytes)` in this subtree.
    fn cost(&self) -> (usize, usize) {
        match &self.value {
            Value::Scalar { text, .. } => (1, text.len()),
            Value::Seq(items) => items.iter().fold((1, 0), |acc, n| add(acc, n.cost())),
            Value::Map(entries) => entries
                .iter()
                .fold((1, 0), |acc, (k, v)| add(add(acc, k.cost()), v.cost())),
        }
    }
}

fn add(a: (usize, usize), b: (usize, usize)) -> (usize, usize) {
    (a.0.saturating_add(b.0), a.1.saturating_add(b.1))
}

type Fatal = (Pos, YamlError);

enum Frame {
    Seq {
        node: Node,
        anchor: usize,
    },
    Map {
        node: Node,
        anchor: usize,
        /// A key waiting for its value, and whether the entry is kept (not a duplicate).
        key: Option<(Node, bool)>,
        seen: HashMap<String, usize>,
    },
}

struct Builder<'d> {
    first_line: usize,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, (usize, usize))>,
    spent: (usize, usize),
    root: Option<Node>,
    diags: &'d mut Diags,
}

/// Loads `text` (front matter whose first line is file line `first_line`). `Ok(None)` when
/// it holds no document at all.
pub(crate) fn load(
    text: &str,
    first_line: usize,
    diags: &mut Diags,
) -> Result<Option<Node>, Fatal> {
    let mut b = Builder {
        first_line,
        stack: Vec::new(),
        anchors: HashMap::new(),
        spent: (0, 0),
        root: None,
        diags,
    };
    let mut documents = 0;
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) =
            next.map_err(|e| (b.pos(*e.marker()), YamlError::Syntax(e.info().to_owned())))?;
        let pos = b.pos(span.start);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err((pos, YamlError::MultipleDocuments));
                }
            }
            Event::Alias(id) => {
                let (node, cost) = b.anchors.get(&id).ok_or((pos, YamlError::UnknownAlias))?;
                let node = node.clone();
                b.spend(pos, *cost)?;
                b.complete(node, 0)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let is_str = b.check_tag(tag.as_deref(), pos, "str");
                let plain = style == ScalarStyle::Plain && !is_str;
                b.spend(pos, (1, text.len()))?;
                let value = Value::Scalar {
                    text: text.into_owned(),
                    plain,
                };
                b.complete(Node { pos, value }, anchor)?;
            }
            Event::SequenceStart(anchor, tag) => {
                b.check_tag(tag.as_deref(), pos, "seq");
                b.open(pos, (1, 0))?;
                let node = Node {
                    pos,
                    value: Value::Seq(Vec::new()),
                };
                b.stack.push(Frame::Seq { node, anchor });
            }
            Event::MappingStart(anchor, tag) => {
                b.check_tag(tag.as_deref(), pos, "map");
                b.open(pos, (1, 0))?;
                let node = Node {
                    pos,
                    value: Value::Map(Vec::new()),
                };
                let (key, seen) = (None, HashMap::new());
                b.stack.push(Frame::Map {
                    node,
                    anchor,
                    key,
                    seen,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => match b.stack.pop() {
                Some(Frame::Seq { node, anchor } | Frame::Map { node, anchor, .. }) => {
                    b.complete(node, anchor)?;
                }
                None => return Err((pos, YamlError::Syntax("unbalanced collection".into()))),
            },
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(b.root)
}

impl Builder<'_> {
    fn pos(&self, m: Marker) -> Pos {
        Pos {
            line: self.first_line + m.line().saturating_sub(1),
            column: Some(m.col() + 1),
        }
    }

    fn spend(&mut self, pos: Pos, cost: (usize, usize)) -> Result<(), Fatal> {
        self.spent = add(self.spent, cost);
        if self.spent.0 > MAX_VALUES || self.spent.1 > MAX_TEXT {
            return Err((pos, YamlError::TooBig));
        }
        Ok(())
    }

    fn open(&mut self, pos: Pos, cost: (usize, usize)) -> Result<(), Fatal> {
        if self.stack.len() >= MAX_DEPTH {
            return Err((pos, YamlError::TooDeep));
        }
        self.spend(pos, cost)
    }

    /// Reports tags we do not understand; says whether the tag is YAML's `!!<core>`.
    fn check_tag(&mut self, tag: Option<&Tag>, pos: Pos, core: &str) -> bool {
        let Some(tag) = tag else { return false };
        if tag.is_yaml_core_schema() {
            return tag.suffix == core;
        }
        self.diags.push(
            pos,
            format!(
                "YAML tag \"{}{}\" is not supported here",
                tag.handle, tag.suffix
            ),
        );
        false
    }

    /// A finished value: remembers it under its anchor, then puts it in its parent.
    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), Fatal> {
        if anchor != 0 {
            let cost = node.cost();
            // Keeping a copy for later aliases costs as much as the value itself.
            self.spend(node.pos, cost)?;
            self.anchors.insert(anchor, (node.clone(), cost));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { node: parent, .. }) => {
                if let Value::Seq(items) = &mut parent.value {
                    items.push(node);
                }
            }
            Some(Frame::Map {
                node: parent,
                key,
                seen,
                ..
            }) => match key.take() {
                None => {
                    let mut keep = true;
                    if let Some(text) = node.scalar_text() {
                        if let Some(first) = seen.get(text) {
                            self.diags.push(
                                node.pos,
                                format!("key \"{text}\" appears twice (first on line {first})"),
                            );
                            keep = false;
                        } else {
                            seen.insert(text.to_owned(), node.pos.line);
                        }
                    }
                    *key = Some((node, keep));
                }
                Some((k, keep)) => {
                    if let (true, Value::Map(entries)) = (keep, &mut parent.value) {
                        entries.push((k, node));
                    }
                }
            },
        }
        Ok(())
    }
}

/// What a plain scalar means under YAML 1.2's core schema.
#[derive(Debug, PartialEq)]
pub(crate) enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str,
}

pub(crate) fn resolve(text: &str) -> Resolved {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let radix = |prefix: &str, radix: u32| {
        text.strip_prefix(prefix)
            .filter(|d| !d.is_empty())
            .and_then(|d| u64::from_str_radix(d, radix).ok())
    };
    if let Some(n) = radix("0x", 16).or_else(|| radix("0o", 8)) {
        return Resolved::UInt(n);
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<i64>() {
            return Resolved::Int(n);
        }
        if let Ok(n) = text.parse::<u64>() {
            return Resolved::UInt(n);
        }
    }
    let looks_float = digits.bytes().any(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    match text.parse::<f64>() {
        Ok(f) if looks_float => Resolved::Float(f),
        _ => Resolved::Str,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_ok(text: &str) -> (Option<Node>, Diags) {
        let mut d = Diags::default();
        let node = load(text, 2, &mut d).unwrap();
        (node, d)
    }

    #[test]
    fn positions_are_file_lines() {
        let (root, d) = load_ok("a: 1\nb:\n  - x\n");
        assert!(d.is_empty());
        let Value::Map(entries) = root.unwrap().value else {
            panic!("not a map")
        };
        assert_eq!(
            entries[0].0.pos,
            Pos {
                line: 2,
                column: Some(1)
            }
        );
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("not a seq")
        };
        assert_eq!(
            items[0].pos,
            Pos {
                line: 4,
                column: Some(5)
            }
        );
    }

    #[test]
    fn empty_and_syntax_error() {
        assert_eq!(load_ok("").0, None);
        let mut d = Diags::default();
        let (pos, err) = load("a: [1, 2\nb: 3\n", 2, &mut d).unwrap_err();
        assert!(matches!(err, YamlError::Syntax(_)), "{err:?}");
        assert!(pos.line >= 2);
    }

    #[test]
    fn duplicate_keys_are_reported_and_first_wins() {
        let (root, d) = load_ok("a: 1\nb: 2\na: 3\n");
        assert_eq!(d.len(), 1);
        let problems = d.into_problems(std::path::Path::new("f"));
        assert_eq!(problems[0].line, 4);
        assert_eq!(
            problems[0].message,
            "key \"a\" appears twice (first on line 2)"
        );
        let Value::Map(entries) = root.unwrap().value else {
            panic!()
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn aliases_copy_values() {
        let (root, _) = load_ok("a: &x [1, 2]\nb: *x\n");
        let Value::Map(entries) = root.unwrap().value else {
            panic!()
        };
        assert_eq!(entries[0].1.value, entries[1].1.value);
    }

    #[test]
    fn limits() {
        let mut d = Diags::default();
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(load(&deep, 2, &mut d).unwrap_err().1, YamlError::TooDeep);
        let two = "a: 1\n...\n---\nb: 2\n";
        assert_eq!(
            load(two, 2, &mut d).unwrap_err().1,
            YamlError::MultipleDocuments
        );
        let tagged = "a: !shell rm -rf /\n";
        load(tagged, 2, &mut d).unwrap();
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn core_schema() {
        assert_eq!(resolve("~"), Resolved::Null);
        assert_eq!(resolve("True"), Resolved::Bool(true));
        assert_eq!(resolve("-12"), Resolved::Int(-12));
        assert_eq!(resolve("0x1f"), Resolved::UInt(31));
        assert_eq!(resolve("1.5"), Resolved::Float(1.5));
        assert_eq!(resolve("1e3"), Resolved::Float(1000.0));
        for s in ["yes", "512M", "30m", "1.2.3", "inf", "e", "-"] {
            assert_eq!(resolve(s), Resolved::Str, "{s}");
        }
    }
}
