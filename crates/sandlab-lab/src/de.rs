//! A serde deserializer over the positioned YAML tree that keeps going after a problem.
//!
//! Plain serde stops at the first error. Lab authors want every problem at once, each with
//! its line, so this deserializer cooperates with two types of this crate:
//! - [`Spanned<T>`] asks (through a private newtype name) for the value's position and
//!   the value itself. When `T` fails to deserialize, the error is recorded with the
//!   position of the innermost failing value, and the `Spanned` holds `None` instead of
//!   failing its parent. Every field of the raw structs in [`crate::raw`] is a `Spanned`.
//! - `deserialize_struct` knows the struct's field names, so it reports each unknown key
//!   (with its line and a "did you mean") and hands the struct only the known ones. The
//!   raw structs still carry `deny_unknown_fields`, as a second line of defence.
//!
//! Plain scalars are handed to string fields as written (`memory: 512M`, `cpus: 1.5`,
//! `name: 01`), so sizes, durations and numbers are parsed by `sandlab-core`, the same way
//! as everywhere else in the product.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{BorrowedStrDeserializer, UsizeDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::Deserialize;

use crate::problem::{Diags, Pos};
use crate::yaml::{resolve, Node, Resolved, Value};

/// The newtype name by which [`Spanned`] recognises this deserializer.
const SPANNED: &str = "$sandlab_lab::Spanned";

/// A value and where it was written. `value` is `None` when it was malformed; that
/// problem has been recorded already.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned<T> {
    pub pos: Pos,
    pub value: Option<T>,
}

/// Deserializes `T` from `node`, recording every problem in `diags`. `None` when the value
/// as a whole was unusable (that problem is recorded too).
pub(crate) fn from_node<'a, T: Deserialize<'a>>(node: &'a Node, diags: &mut Diags) -> Option<T> {
    let sink = RefCell::new(Diags::default());
    let de = De {
        node,
        sink: &sink,
        key: None,
    };
    let result = T::deserialize(de);
    let mut found = sink.into_inner();
    let value = match result {
        Ok(v) => Some(v),
        Err(e) => {
            if !e.reported {
                found.push(e.pos.unwrap_or(node.pos), e.message());
            }
            None
        }
    };
    diags.extend(found);
    value
}

#[derive(Debug)]
pub(crate) struct Error {
    pos: Option<Pos>,
    /// The key whose value failed, for the message.
    key: Option<String>,
    msg: String,
    /// Already in the sink: passed up only to tell a `Spanned` to hold `None`.
    reported: bool,
}

impl Error {
    fn message(&self) -> String {
        match &self.key {
            Some(key) => format!("{key}: {}", self.msg),
            None => self.msg.clone(),
        }
    }

    /// Attaches the position and key of the innermost value that failed.
    fn at(mut self, node: &Node, key: Option<&str>) -> Error {
        if self.pos.is_none() {
            self.pos = Some(node.pos);
            self.key = key.map(str::to_owned);
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            pos: None,
            key: None,
            msg: msg.to_string(),
            reported: false,
        }
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        let found = match unexp {
            Unexpected::Unit => "an empty value".to_owned(),
            Unexpected::Map => "a mapping".to_owned(),
            Unexpected::Seq => "a sequence".to_owned(),
            Unexpected::Str(s) => format!("the text {s:?}"),
            Unexpected::Bool(b) => format!("`{b}`"),
            Unexpected::Signed(n) => format!("the number {n}"),
            Unexpected::Unsigned(n) => format!("the number {n}"),
            Unexpected::Float(n) => format!("the number {n}"),
            other => other.to_string(),
        };
        Error::custom(format_args!("expected {exp}, found {found}"))
    }
}

#[derive(Clone, Copy)]
struct De<'de, 's> {
    node: &'de Node,
    sink: &'s RefCell<Diags>,
    /// The mapping key this value belongs to (inherited by sequence items).
    key: Option<&'de str>,
}

impl<'de, 's> De<'de, 's> {
    fn child(&self, node: &'de Node, key: Option<&'de str>) -> De<'de, 's> {
        De {
            node,
            sink: self.sink,
            key,
        }
    }

    fn is_null(&self) -> bool {
        matches!(&self.node.value, Value::Scalar { text, plain: true } if resolve(text) == Resolved::Null)
    }

    fn report(&self, pos: Pos, msg: String) {
        self.sink.borrow_mut().push(pos, msg);
    }

    /// Reports keys `fields` does not list; returns the entries to hand to the struct.
    fn known_entries(
        &self,
        entries: &'de [(Node, Node)],
        name: &str,
        fields: &[&str],
    ) -> Vec<&'de (Node, Node)> {
        let mut known = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry.0.scalar_text() {
                Some(k) if fields.contains(&k) => known.push(entry),
                Some(k) => self.report(entry.0.pos, unknown_key(name, k, fields)),
                None => self.report(entry.0.pos, format!("a {name} key must be a plain name")),
            }
        }
        known
    }
}

fn unknown_key(name: &str, key: &str, fields: &[&str]) -> String {
    let close = fields
        .iter()
        .map(|f| (strsim::damerau_levenshtein(key, f), *f))
        .filter(|(d, f)| *d <= 2 && *d < f.len())
        .min();
    match close {
        Some((_, f)) => format!("unknown {name} key \"{key}\"; did you mean \"{f}\"?"),
        None => format!(
            "unknown {name} key \"{key}\"; expected one of: {}",
            fields.join(", ")
        ),
    }
}

impl<'de> Deserializer<'de> for De<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            Value::Scalar { text, plain: true } => match resolve(text) {
                Resolved::Null => v.visit_unit(),
                Resolved::Bool(b) => v.visit_bool(b),
                Resolved::Int(n) => v.visit_i64(n),
                Resolved::UInt(n) => v.visit_u64(n),
                Resolved::Float(n) => v.visit_f64(n),
                Resolved::Str => v.visit_borrowed_str(text),
            },
            Value::Scalar { text, .. } => v.visit_borrowed_str(text),
            Value::Seq(items) => v.visit_seq(Seq {
                de: self,
                items: items.iter(),
            }),
            Value::Map(entries) => v.visit_map(Map {
                de: self,
                entries: entries.iter().collect::<Vec<_>>().into_iter(),
                value: None,
            }),
        };
        result.map_err(|e| e.at(self.node, self.key))
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Scalar { text, .. } if !self.is_null() => v
                .visit_borrowed_str(text)
                .map_err(|e: Error| e.at(self.node, self.key)),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        if self.is_null() {
            v.visit_none()
        } else {
            v.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED {
            v.visit_map(SpannedAccess { de: self, step: 0 })
        } else {
            v.visit_newtype_struct(self)
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        let entries = match &self.node.value {
            Value::Map(entries) => self.known_entries(entries, name, fields),
            // `task:` with nothing after it is an empty task, not a type error.
            _ if self.is_null() => Vec::new(),
            // Not `deserialize_any`: derived structs would take a sequence field by field.
            Value::Seq(_) => {
                let e: Error = de::Error::invalid_type(Unexpected::Seq, &v);
                return Err(e.at(self.node, self.key));
            }
            _ => return self.deserialize_any(v),
        };
        let map = Map {
            de: self,
            entries: entries.into_iter(),
            value: None,
        };
        v.visit_map(map).map_err(|e| e.at(self.node, self.key))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Scalar { text, .. } if !self.is_null() => v
                .visit_enum(BorrowedStrDeserializer::new(text))
                .map_err(|e: Error| e.at(self.node, self.key)),
            _ => self.deserialize_any(v),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct seq tuple tuple_struct map ignored_any
    }
}

struct Seq<'de, 's> {
    de: De<'de, 's>,
    items: std::slice::Iter<'de, Node>,
}

impl<'de> SeqAccess<'de> for Seq<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(node) => seed.deserialize(self.de.child(node, self.de.key)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'de, 's> {
    de: De<'de, 's>,
    entries: std::vec::IntoIter<&'de (Node, Node)>,
    value: Option<&'de (Node, Node)>,
}

impl<'de> MapAccess<'de> for Map<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(entry);
        seed.deserialize(self.de.child(&entry.0, None)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("a value was asked for before its key"));
        };
        seed.deserialize(self.de.child(value, key.scalar_text()))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// Hands a [`Spanned`] its line, column and value, in that order.
struct SpannedAccess<'de, 's> {
    de: De<'de, 's>,
    step: u8,
}

const SPANNED_KEYS: [&str; 3] = ["line", "column", "value"];

impl<'de> MapAccess<'de> for SpannedAccess<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match SPANNED_KEYS.get(usize::from(self.step)) {
            Some(key) => seed
                .deserialize(BorrowedStrDeserializer::new(key))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let pos = self.de.node.pos;
        self.step += 1;
        match self.step {
            1 => seed.deserialize(UsizeDeserializer::new(pos.line)),
            2 => seed.deserialize(UsizeDeserializer::new(pos.column.unwrap_or(0))),
            _ => seed.deserialize(self.de).map_err(|e| {
                if !e.reported {
                    self.de.report(e.pos.unwrap_or(pos), e.message());
                }
                Error {
                    reported: true,
                    ..e
                }
            }),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_newtype_struct(SPANNED, SpannedVisitor(PhantomData))
    }
}

struct SpannedVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
    type Value = Spanned<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value with its position (only the lab front matter loader has one)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
        let (Some((_, line)), Some((_, column))) = (
            map.next_entry::<&str, usize>()?,
            map.next_entry::<&str, usize>()?,
        ) else {
            return Err(de::Error::custom("position missing"));
        };
        map.next_key::<&str>()?;
        // An error here has been recorded with its position by `SpannedAccess`.
        let value = map.next_value::<T>().ok();
        let column = (column > 0).then_some(column);
        Ok(Spanned {
            pos: Pos { line, column },
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::load;

    #[derive(Debug, Deserialize)]
    #[serde(rename = "thing", deny_unknown_fields)]
    struct Thing {
        name: Option<Spanned<String>>,
        on: Option<Spanned<bool>>,
        list: Option<Spanned<Vec<Spanned<String>>>>,
    }

    fn parse(yaml: &str) -> (Option<Thing>, Vec<String>) {
        let mut d = Diags::default();
        let node = load(yaml, 1, &mut d).unwrap().unwrap();
        let thing = from_node::<Thing>(&node, &mut d);
        let msgs = d
            .into_problems(std::path::Path::new("f"))
            .into_iter()
            .map(|p| format!("{}: {}", p.line, p.message))
            .collect();
        (thing, msgs)
    }

    #[test]
    fn every_problem_is_recorded_and_the_rest_still_parses() {
        let (thing, msgs) = parse("name: 01\nnmae: x\non: yes\nlist: [a, {b: 1}, c]\n");
        assert_eq!(
            msgs,
            [
                "2: unknown thing key \"nmae\"; did you mean \"name\"?",
                "3: on: expected a boolean, found the text \"yes\"",
                "4: list: expected a string, found a mapping",
            ]
        );
        let thing = thing.unwrap();
        assert_eq!(thing.name.unwrap().value.as_deref(), Some("01"));
        assert_eq!(thing.on.unwrap().value, None);
        let list: Vec<_> = thing.list.unwrap().value.unwrap();
        let texts: Vec<_> = list.iter().map(|s| s.value.as_deref()).collect();
        assert_eq!(texts, [Some("a"), None, Some("c")]);
        assert_eq!(
            list[2].pos,
            Pos {
                line: 4,
                column: Some(19)
            }
        );
    }

    #[test]
    fn wrong_shape_at_the_top() {
        let (thing, msgs) = parse("- a\n- b\n");
        assert!(thing.is_none());
        assert_eq!(msgs.len(), 1);
        assert!(
            msgs[0].starts_with("1: expected struct Thing, found a sequence"),
            "{msgs:?}"
        );
    }

    #[test]
    fn spanned_refuses_other_deserializers() {
        let err = serde_json::from_str::<Spanned<u32>>("1").unwrap_err();
        assert!(err.to_string().contains("position"), "{err}");
    }
}
