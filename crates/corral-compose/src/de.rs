//! A serde `Deserializer` over [`Node`] trees: turns the merged, interpolated tree into
//! the typed model. It coerces strings to numbers and booleans where the model asks for
//! them (interpolation always yields strings, as in compose-go), and every error carries
//! the location and key path of the node it is about, with a "did you mean" hint for
//! unknown keys.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::error::{suggest, Diagnostic, Error};
use crate::node::{Key, Loc, Node, Value};

/// A deserialization error with the place it is about.
#[derive(Debug)]
pub(crate) struct DeError {
    message: String,
    loc: Option<Loc>,
    path: Option<String>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            loc: None,
            path: None,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let hint = match suggest(field, expected.iter().copied()) {
            Some(s) => format!(" (did you mean \"{s}\"?)"),
            None => String::new(),
        };
        de::Error::custom(format_args!("unknown key \"{field}\"{hint}"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let hint = match suggest(variant, expected.iter().copied()) {
            Some(s) => format!(" (did you mean \"{s}\"?)"),
            None => format!(" (expected one of {})", expected.join(", ")),
        };
        de::Error::custom(format_args!("invalid value \"{variant}\"{hint}"))
    }

    fn missing_field(field: &'static str) -> Self {
        de::Error::custom(format_args!("missing required key \"{field}\""))
    }
}

impl DeError {
    fn locate(mut self, loc: Loc, path: &str) -> Self {
        if self.loc.is_none() {
            self.loc = Some(loc);
            self.path = Some(path.to_string());
        }
        self
    }

    /// Converts to the crate error, naming the file from the loader's table.
    pub(crate) fn into_error(self, files: &[String]) -> Error {
        let loc = self.loc.unwrap_or_default();
        Error::Schema(Diagnostic {
            file: files.get(loc.file).cloned().unwrap_or_default(),
            line: loc.line,
            column: loc.column,
            path: self.path.unwrap_or_default(),
            message: self.message,
        })
    }
}

/// Deserializes `T` from `node`, whose key path is `path`.
pub(crate) fn from_node<T: de::DeserializeOwned>(node: &Node, path: &str) -> Result<T, DeError> {
    T::deserialize(NodeDe {
        node,
        path: path.to_string(),
    })
}

/// Deserializer over one node.
pub(crate) struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

#[derive(Clone, Copy)]
enum Want {
    Any,
    Bool,
    Int,
    Float,
    Str,
    Option,
    Seq,
    Map,
    Enum,
    Unit,
    Newtype,
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

impl<'a> NodeDe<'a> {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match &self.node.value {
            Value::Null => de::Unexpected::Unit,
            Value::Bool(b) => de::Unexpected::Bool(*b),
            Value::Int(i) => de::Unexpected::Signed(*i),
            Value::Float(f) => de::Unexpected::Float(*f),
            Value::Str(s) => de::Unexpected::Str(s),
            Value::Seq(_) => de::Unexpected::Seq,
            Value::Map(_) => de::Unexpected::Map,
        }
    }

    fn run<'de, V: Visitor<'de>>(self, want: Want, v: V) -> Result<V::Value, DeError> {
        let loc = self.node.loc;
        let path = self.path.clone();
        self.dispatch(want, v).map_err(|e| e.locate(loc, &path))
    }

    fn dispatch<'de, V: Visitor<'de>>(self, want: Want, v: V) -> Result<V::Value, DeError> {
        let node = self.node;
        let bad = |this: &NodeDe<'_>, v: &V| {
            Err(<DeError as de::Error>::invalid_type(this.unexpected(), v))
        };
        match (want, &node.value) {
            (Want::Option, Value::Null) => v.visit_none(),
            (Want::Option, _) => v.visit_some(self),
            (Want::Newtype, _) => v.visit_newtype_struct(self),
            (Want::Unit, Value::Null) => v.visit_unit(),
            (Want::Bool, Value::Bool(b)) => v.visit_bool(*b),
            (Want::Bool, Value::Str(s)) => match parse_bool(s) {
                Some(b) => v.visit_bool(b),
                None => bad(&self, &v),
            },
            (Want::Int, Value::Int(i)) => v.visit_i64(*i),
            (Want::Int, Value::Str(s)) => match s.trim().parse::<i64>() {
                Ok(i) => v.visit_i64(i),
                Err(_) => bad(&self, &v),
            },
            (Want::Float, Value::Int(i)) => {
                #[allow(clippy::cast_precision_loss)] // compose values are small
                v.visit_f64(*i as f64)
            }
            (Want::Float, Value::Float(f)) => v.visit_f64(*f),
            (Want::Float, Value::Str(s)) => match s.trim().parse::<f64>() {
                Ok(f) => v.visit_f64(f),
                Err(_) => bad(&self, &v),
            },
            (Want::Str | Want::Enum, Value::Str(s)) => {
                if matches!(want, Want::Enum) {
                    v.visit_enum(s.clone().into_deserializer())
                } else {
                    v.visit_str(s)
                }
            }
            (Want::Str | Want::Enum, Value::Int(_) | Value::Float(_) | Value::Bool(_)) => {
                let s = node.as_scalar_string().unwrap_or_default();
                if matches!(want, Want::Enum) {
                    v.visit_enum(s.into_deserializer())
                } else {
                    v.visit_string(s)
                }
            }
            (Want::Seq | Want::Any, Value::Seq(items)) => v.visit_seq(SeqDe {
                items: items.iter().enumerate(),
                path: &self.path,
            }),
            (Want::Map | Want::Any, Value::Map(entries)) => v.visit_map(MapDe {
                entries: entries.iter(),
                value: None,
                path: &self.path,
            }),
            (Want::Any, Value::Null) => v.visit_unit(),
            (Want::Any, Value::Bool(b)) => v.visit_bool(*b),
            (Want::Any, Value::Int(i)) => v.visit_i64(*i),
            (Want::Any, Value::Float(f)) => v.visit_f64(*f),
            (Want::Any, Value::Str(s)) => v.visit_str(s),
            _ => bad(&self, &v),
        }
    }
}

macro_rules! want {
    ($($name:ident => $want:ident),* $(,)?) => {
        $(
            fn $name<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
                self.run(Want::$want, v)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    want! {
        deserialize_any => Any,
        deserialize_bool => Bool,
        deserialize_i8 => Int,
        deserialize_i16 => Int,
        deserialize_i32 => Int,
        deserialize_i64 => Int,
        deserialize_u8 => Int,
        deserialize_u16 => Int,
        deserialize_u32 => Int,
        deserialize_u64 => Int,
        deserialize_f32 => Float,
        deserialize_f64 => Float,
        deserialize_char => Str,
        deserialize_str => Str,
        deserialize_string => Str,
        deserialize_identifier => Str,
        deserialize_option => Option,
        deserialize_unit => Unit,
        deserialize_seq => Seq,
        deserialize_map => Map,
        deserialize_bytes => Any,
        deserialize_byte_buf => Any,
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.run(Want::Unit, v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.run(Want::Newtype, v)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, DeError> {
        self.run(Want::Seq, v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.run(Want::Seq, v)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.run(Want::Map, v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.run(Want::Enum, v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }
}

struct SeqDe<'a, I> {
    items: I,
    path: &'a str,
}

impl<'de, 'a, I: Iterator<Item = (usize, &'a Node)>> de::SeqAccess<'de> for SeqDe<'_, I> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => {
                let path = format!("{}[{i}]", self.path);
                seed.deserialize(NodeDe {
                    node,
                    path: path.clone(),
                })
                .map(Some)
                .map_err(|e| e.locate(node.loc, &path))
            }
        }
    }
}

struct MapDe<'a, I> {
    entries: I,
    value: Option<(&'a Key, &'a Node)>,
    path: &'a str,
}

impl<'de, 'a, I: Iterator<Item = &'a (Key, Node)>> de::MapAccess<'de> for MapDe<'a, I> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            None => Ok(None),
            Some((k, v)) => {
                self.value = Some((k, v));
                let path = child_path(self.path, &k.name);
                let de: de::value::StrDeserializer<'_, DeError> =
                    k.name.as_str().into_deserializer();
                seed.deserialize(de)
                    .map(Some)
                    .map_err(|e| e.locate(k.loc, &path))
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((k, node)) = self.value.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let path = child_path(self.path, &k.name);
        seed.deserialize(NodeDe {
            node,
            path: path.clone(),
        })
        .map_err(|e| e.locate(node.loc, &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::parse_yaml;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct S {
        image: String,
        #[serde(default)]
        replicas: Option<u32>,
        #[serde(default)]
        init: Option<bool>,
    }

    #[test]
    fn coerces_strings_to_numbers_and_booleans() {
        let n = parse_yaml("image: 3\nreplicas: \"4\"\ninit: \"true\"\n", 0, "f").unwrap();
        let s: S = from_node(&n, "").unwrap();
        assert_eq!(s.image, "3");
        assert_eq!(s.replicas, Some(4));
        assert_eq!(s.init, Some(true));
    }

    #[test]
    fn unknown_key_names_place_and_suggestion() {
        let n = parse_yaml("image: x\nreplica: 2\n", 0, "f").unwrap();
        let e = from_node::<S>(&n, "services.web").unwrap_err();
        let e = e.into_error(&["a.yml".to_string()]).to_string();
        assert_eq!(
            e,
            "a.yml:2:1: services.web.replica: unknown key \"replica\" (did you mean \"replicas\"?)"
        );
    }

    #[test]
    fn wrong_type_names_the_value_place() {
        let n = parse_yaml("image: x\nreplicas: [1]\n", 0, "f").unwrap();
        let e = from_node::<S>(&n, "").unwrap_err();
        let e = e.into_error(&["a.yml".to_string()]).to_string();
        assert!(
            e.starts_with("a.yml:2:11: replicas: invalid type: sequence"),
            "{e}"
        );
    }
}
