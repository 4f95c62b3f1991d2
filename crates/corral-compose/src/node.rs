//! The untyped YAML tree every compose file is first read into. Each node keeps
//! where it came from (file, line, column) so that interpolation, merge and the
//! typed conversion can name the place of a problem.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Spanned, Tagged};

use crate::error::{Diagnostic, Error};

/// Where a node was written: an index into the loader's file list, 1-based line and column.
/// `line == 0` means unknown (e.g. a value that came from the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Loc {
    /// Index of the file in the loader's file table.
    pub file: usize,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
}

/// One YAML node with its location.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// The value.
    pub value: Value,
    /// Where it was written.
    pub loc: Loc,
    /// A merge tag (`!reset`, `!override`) written on the node.
    pub tag: Option<MergeTag>,
}

/// The compose merge tags
/// (<https://github.com/compose-spec/compose-spec/blob/main/13-merge.md#reset-value>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MergeTag {
    /// `!reset`: the key is removed from what earlier files set.
    Reset,
    /// `!override`: the value replaces what earlier files set instead of merging.
    Override,
}

/// A YAML value. Mapping keys are kept in file order as strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with string keys, in order.
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its own location.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    /// The key as text.
    pub name: String,
    /// Where the key was written.
    pub loc: Loc,
}

// === impl Node ===

impl Node {
    /// A node without a location.
    pub(crate) fn new(value: Value) -> Node {
        Node {
            value,
            loc: Loc::default(),
            tag: None,
        }
    }

    /// A string node without a location.
    pub(crate) fn str(s: impl Into<String>) -> Node {
        Node::new(Value::Str(s.into()))
    }

    /// The entry `key` of a mapping node.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The entry `key` of a mapping node, mutable.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(m) => m.iter_mut().find(|(k, _)| k.name == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The key node of entry `key` of a mapping node.
    pub(crate) fn key(&self, key: &str) -> Option<&Key> {
        match &self.value {
            Value::Map(m) => m.iter().find(|(k, _)| k.name == key).map(|(k, _)| k),
            _ => None,
        }
    }

    /// Sets (or replaces) `key` in a mapping node; no-op on other nodes.
    pub(crate) fn set(&mut self, key: &str, value: Node) {
        if let Value::Map(m) = &mut self.value {
            if let Some((_, v)) = m.iter_mut().find(|(k, _)| k.name == key) {
                *v = value;
            } else {
                let loc = value.loc;
                m.push((
                    Key {
                        name: key.to_string(),
                        loc,
                    },
                    value,
                ));
            }
        }
    }

    /// Removes `key` from a mapping node and returns its value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Node> {
        match &mut self.value {
            Value::Map(m) => {
                let i = m.iter().position(|(k, _)| k.name == key)?;
                Some(m.remove(i).1)
            }
            _ => None,
        }
    }

    /// The string of a scalar node (numbers and booleans as written by YAML 1.2).
    pub(crate) fn as_scalar_string(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Sets `file` on this node and every node below it.
    pub(crate) fn set_file(&mut self, file: usize) {
        self.loc.file = file;
        match &mut self.value {
            Value::Seq(s) => s.iter_mut().for_each(|n| n.set_file(file)),
            Value::Map(m) => m.iter_mut().for_each(|(k, v)| {
                k.loc.file = file;
                v.set_file(file);
            }),
            _ => {}
        }
    }

    /// Converts the tree to JSON (for hashing and tests).
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => (*f).into(),
            Value::Str(s) => s.clone().into(),
            Value::Seq(s) => s.iter().map(Node::to_json).collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (k.name.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

fn loc_of(l: &serde_saphyr::Location) -> Loc {
    Loc {
        file: 0,
        line: l.line(),
        column: l.column(),
    }
}

/// Most bytes a compose file may have; larger files are refused before parsing.
pub(crate) const MAX_FILE_BYTES: usize = 8 << 20;

/// Parses one YAML document into a tree. Aliases, anchors and merge keys (`<<`) are
/// resolved by the parser under a budget, so an alias bomb ("billion laughs") is refused
/// after a bounded amount of work instead of being expanded.
pub(crate) fn parse_yaml(text: &str, file: usize, file_name: &str) -> Result<Node, Error> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Error::Yaml(Diagnostic {
            file: file_name.to_string(),
            line: 0,
            column: 0,
            path: String::new(),
            message: format!("file is larger than {MAX_FILE_BYTES} bytes"),
        }));
    }
    if text.trim().is_empty() {
        return Err(Error::Yaml(Diagnostic {
            file: file_name.to_string(),
            line: 0,
            column: 0,
            path: String::new(),
            message: "empty compose file".to_string(),
        }));
    }
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // YAML 1.2 core booleans only, as compose-go (yaml.v3) reads untyped values:
    // `yes` stays the string "yes" in an environment map.
    options.strict_booleans = true;
    // `0755` or a zip code keeps its spelling rather than becoming a number.
    options.leading_zero_numbers_as_strings = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_aliases = 10_000;
    budget.max_nodes = 200_000;
    budget.max_depth = 64;
    budget.max_documents = 1;
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 200_000;
    options.alias_limits.max_replay_stack_depth = 32;
    let mut node: Node = serde_saphyr::from_str_with_options(text, options)
        .map_err(|e| yaml_error(&e, file_name))?;
    node.set_file(file);
    Ok(node)
}

fn yaml_error(e: &serde_saphyr::Error, file_name: &str) -> Error {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let mut message = e.to_string();
    // The parser's own text may end with " at line X column Y"; we print ours.
    for tail in [" at line ", ", set DuplicateKeyPolicy"] {
        if let Some(i) = message.find(tail) {
            message.truncate(i);
        }
    }
    if message.contains("limit exceeded") {
        message = format!("document refused, it exceeds the YAML alias/size budget ({message})");
    }
    Error::Yaml(Diagnostic {
        file: file_name.to_string(),
        line,
        column,
        path: String::new(),
        message,
    })
}

// === impl Deserialize for Node ===

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Spanned<Tagged<Value>> = Spanned::deserialize(d)?;
        let tag = match s.value.1.as_deref() {
            Some("!reset") => Some(MergeTag::Reset),
            Some("!override") => Some(MergeTag::Override),
            _ => None,
        };
        Ok(Node {
            value: s.value.0,
            loc: loc_of(&s.referenced),
            tag,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .or_else(|_| Ok(Value::Str(v.to_string())))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            out.push(n);
        }
        Ok(Value::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out: Vec<(Key, Node)> = Vec::new();
        while let Some(k) = map.next_key::<Spanned<KeyText>>()? {
            let v = map.next_value::<Node>()?;
            let key = Key {
                name: k.value.0,
                loc: loc_of(&k.referenced),
            };
            // A merge key (`<<`) may bring a key the mapping also sets: the explicit one
            // wins, whichever order the parser hands them over in.
            if let Some(i) = out.iter().position(|(e, _)| e.name == key.name) {
                out[i] = (key, v);
            } else {
                out.push((key, v));
            }
        }
        Ok(Value::Map(out))
    }
}

/// A mapping key as text: YAML allows `80: x` or `true: x`; compose reads them as strings.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Str(s) => Ok(KeyText(s)),
            Value::Int(i) => Ok(KeyText(i.to_string())),
            Value::Float(f) => Ok(KeyText(f.to_string())),
            Value::Bool(b) => Ok(KeyText(b.to_string())),
            Value::Null => Ok(KeyText("null".to_string())),
            _ => Err(de::Error::custom("mapping keys must be scalars")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_lines_and_columns() {
        let n = parse_yaml("services:\n  web:\n    image: busybox\n", 0, "f.yml").unwrap();
        let web = n.get("services").unwrap().get("web").unwrap();
        let image = web.get("image").unwrap();
        assert_eq!(image.value, Value::Str("busybox".into()));
        assert_eq!((image.loc.line, image.loc.column), (3, 12));
        let k = n.get("services").unwrap().key("web").unwrap();
        assert_eq!((k.loc.line, k.loc.column), (2, 3));
    }

    #[test]
    fn resolves_anchors_and_merge_keys() {
        let text = "x-base: &base\n  image: busybox\n  restart: always\nservices:\n  a:\n    <<: *base\n    restart: \"no\"\n";
        let n = parse_yaml(text, 0, "f.yml").unwrap();
        let a = n.get("services").unwrap().get("a").unwrap();
        assert_eq!(a.get("image").unwrap().value, Value::Str("busybox".into()));
        assert_eq!(a.get("restart").unwrap().value, Value::Str("no".into()));
    }

    #[test]
    fn explicit_keys_win_over_merged_ones_in_any_order() {
        let text = "x: &b {image: busybox, restart: always, user: u}\ns:\n  restart: \"no\"\n  <<: [*b, {user: v, tty: true}]\n";
        let n = parse_yaml(text, 0, "f.yml").unwrap();
        let s = n.get("s").unwrap();
        assert_eq!(s.get("restart").unwrap().value, Value::Str("no".into()));
        assert_eq!(s.get("image").unwrap().value, Value::Str("busybox".into()));
        // In a list of merged maps the first one wins (YAML merge key spec).
        assert_eq!(s.get("user").unwrap().value, Value::Str("u".into()));
        assert_eq!(s.get("tty").unwrap().value, Value::Bool(true));
    }

    #[test]
    fn reads_yaml_1_2_scalars() {
        let n = parse_yaml("a: yes\nb: 0755\nc: 8080:80\nd: true\ne: 3\n", 0, "f").unwrap();
        assert_eq!(n.get("a").unwrap().value, Value::Str("yes".into()));
        assert_eq!(n.get("b").unwrap().value, Value::Str("0755".into()));
        assert_eq!(n.get("c").unwrap().value, Value::Str("8080:80".into()));
        assert_eq!(n.get("d").unwrap().value, Value::Bool(true));
        assert_eq!(n.get("e").unwrap().value, Value::Int(3));
    }

    #[test]
    fn refuses_duplicate_keys_with_location() {
        let e = parse_yaml("a: 1\na: 2\n", 3, "dup.yml").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("dup.yml:2:"), "{s}");
    }

    #[test]
    // Wall-clock bound on purpose: the point is that the parser stops early.
    #[allow(clippy::disallowed_types)]
    fn refuses_billion_laughs_quickly() {
        let mut text = String::from(
            "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"
            ));
        }
        let start = std::time::Instant::now();
        let e = parse_yaml(&text, 0, "bomb.yml").unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        assert!(matches!(e, Error::Yaml(_)), "{e}");
    }
}
