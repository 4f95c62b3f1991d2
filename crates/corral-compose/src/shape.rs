//! Deserializers for the places where compose accepts several shapes of the same
//! thing: a string or a list, a mapping or a `KEY=VALUE` list, a short or a long form.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::{Dependency, EnvFile, FileRef, ServiceNetwork, Ulimit};

/// A scalar as text, or null.
#[derive(Deserialize)]
#[serde(transparent)]
struct Text(Option<String>);

/// A mapping whose values may be null (`networks: {default: }`).
pub(crate) fn opt_map<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let m: Option<BTreeMap<String, Option<T>>> = Option::deserialize(d)?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

struct StringOrSeq;

impl<'de> Visitor<'de> for StringOrSeq {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Vec<String>, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            out.push(s);
        }
        Ok(out)
    }
}

/// A string (one item) or a list of scalars.
pub(crate) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    d.deserialize_any(StringOrSeq)
}

/// `command`/`entrypoint`: a list as is, a string split like a shell would.
pub(crate) fn command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a command string or a list of strings")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            split_shell(v).map(Some).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(vec![v.to_string()]))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            StringOrSeq.visit_seq(seq).map(Some)
        }
    }
    d.deserialize_any(V)
}

/// Splits a command line as POSIX sh would for words: quotes and backslashes, no
/// expansion (compose uses the same rules through go-shellwords).
pub fn split_shell(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err(format!("unterminated quote in {s:?}")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

struct KvVisitor {
    /// List entries without `=` map to `None` (environment) or `""` (labels).
    bare_is_none: bool,
}

impl<'de> Visitor<'de> for KvVisitor {
    type Value = BTreeMap<String, Option<String>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping or a list of KEY=VALUE strings")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(BTreeMap::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((k, v)) = map.next_entry::<String, Text>()? {
            let v = match v.0 {
                Some(v) => Some(v),
                None if self.bare_is_none => None,
                None => Some(String::new()),
            };
            out.insert(k, v);
        }
        Ok(out)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(item) = seq.next_element::<String>()? {
            match item.split_once('=') {
                Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                None if self.bare_is_none => out.insert(item, None),
                None => out.insert(item, Some(String::new())),
            };
        }
        Ok(out)
    }
}

/// `environment`: a mapping or a `KEY=VALUE` list; a bare key or a null value means
/// "take it from the environment" (resolved by the loader).
pub(crate) fn env_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    d.deserialize_any(KvVisitor { bare_is_none: true })
}

/// `labels`, `sysctls`, `driver_opts`...: a mapping or a `KEY=VALUE` list.
pub(crate) fn label_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let m = d.deserialize_any(KvVisitor {
        bare_is_none: false,
    })?;
    Ok(m.into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// `extra_hosts`: a `host:ip` / `host=ip` list or a `host: ip` mapping, as `host:ip`.
pub(crate) fn extra_hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of host:ip or a mapping of host: ip")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, StringOrList>()? {
                for ip in v.0 {
                    out.push(format!("{k}:{ip}"));
                }
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<String>, A::Error> {
            let v = StringOrSeq.visit_seq(seq)?;
            Ok(v.into_iter()
                .map(|s| match s.split_once('=') {
                    Some((h, ip)) => format!("{h}:{ip}"),
                    None => s,
                })
                .collect())
        }
    }
    d.deserialize_any(V)
}

struct StringOrList(Vec<String>);

impl<'de> Deserialize<'de> for StringOrList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_list(d).map(StringOrList)
    }
}

/// `env_file`: a path, a list of paths, or a list of `{path, required}`.
pub(crate) fn env_files<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EnvFile>, D::Error> {
    struct Entry(EnvFile);
    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Entry;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a path or a mapping with path")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
                    Ok(Entry(EnvFile {
                        path: v.to_string(),
                        required: true,
                    }))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                    EnvFile::deserialize(de::value::MapAccessDeserializer::new(map)).map(Entry)
                }
            }
            d.deserialize_any(V)
        }
    }
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<EnvFile>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a path or a list of env files")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<EnvFile>, E> {
            Ok(vec![EnvFile {
                path: v.to_string(),
                required: true,
            }])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<EnvFile>, A::Error> {
            let mut out = Vec::new();
            while let Some(e) = seq.next_element::<Entry>()? {
                out.push(e.0);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// Service `networks`: a list of names or a mapping of name to options (or null).
pub(crate) fn service_networks<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Option<ServiceNetwork>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = BTreeMap<String, Option<ServiceNetwork>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of network names or a mapping")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let v = StringOrSeq.visit_seq(seq)?;
            Ok(v.into_iter().map(|n| (n, None)).collect())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, Option<ServiceNetwork>>()? {
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// `depends_on`: a list of services (condition `service_started`) or the long form.
pub(crate) fn depends_on<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Dependency>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = BTreeMap<String, Dependency>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of services or a mapping of service to condition")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let v = StringOrSeq.visit_seq(seq)?;
            Ok(v.into_iter().map(|n| (n, Dependency::default())).collect())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, Option<Dependency>>()? {
                out.insert(k, v.unwrap_or_default());
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

impl Default for Dependency {
    fn default() -> Self {
        Dependency {
            condition: crate::model::Condition::ServiceStarted,
            restart: false,
            required: true,
        }
    }
}

/// `secrets`/`configs` of a service: names or `{source, target, uid, gid, mode}`.
pub(crate) fn file_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FileRef>, D::Error> {
    struct Entry(FileRef);
    impl<'de> Deserialize<'de> for Entry {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Entry;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a name or a mapping with source")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
                    Ok(Entry(FileRef {
                        source: v.to_string(),
                        target: None,
                        uid: None,
                        gid: None,
                        mode: None,
                    }))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Entry, A::Error> {
                    FileRef::deserialize(de::value::MapAccessDeserializer::new(map)).map(Entry)
                }
            }
            d.deserialize_any(V)
        }
    }
    let v: Vec<Entry> = Vec::deserialize(d)?;
    Ok(v.into_iter().map(|e| e.0).collect())
}

/// `restart`: `no`, `always`, `on-failure[:N]` or `unless-stopped`.
pub(crate) fn restart<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    if let Some(s) = &s {
        let ok = match s.split_once(':') {
            Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
            None => matches!(
                s.as_str(),
                "no" | "always" | "on-failure" | "unless-stopped"
            ),
            _ => false,
        };
        if !ok {
            return Err(de::Error::custom(format_args!(
                "invalid restart policy {s:?} (expected no, always, on-failure[:N] or unless-stopped)"
            )));
        }
    }
    Ok(s)
}

/// `healthcheck.test`: a string is `CMD-SHELL`; a list starts with NONE, CMD or CMD-SHELL.
pub(crate) fn health_test<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a command string or a list starting with NONE, CMD or CMD-SHELL")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(vec!["CMD-SHELL".to_string(), v.to_string()]))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let v = StringOrSeq.visit_seq(seq)?;
            match v.first().map(String::as_str) {
                Some("NONE" | "CMD" | "CMD-SHELL") => Ok(Some(v)),
                _ => Err(de::Error::custom(
                    "a healthcheck test list must start with NONE, CMD or CMD-SHELL",
                )),
            }
        }
    }
    d.deserialize_any(V)
}

/// A file mode: `0440` (octal, as YAML 1.1 and compose read it), `0o440` or a number.
pub(crate) fn file_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    let Some(s) = s else { return Ok(None) };
    let parsed = if let Some(o) = s.strip_prefix("0o") {
        u32::from_str_radix(o, 8).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse::<u32>().ok()
    };
    match parsed {
        Some(m) if m <= 0o7777 => Ok(Some(m)),
        _ => Err(de::Error::custom(format_args!("invalid file mode {s:?}"))),
    }
}

/// A Go-style duration (`1m30s`, `500ms`); kept as written once valid.
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    if let Some(s) = &s {
        parse_duration(s).map_err(de::Error::custom)?;
    }
    Ok(s)
}

/// A byte size (`512m`, `1gb`, `1048576`); kept as written once valid.
pub(crate) fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    if let Some(s) = &s {
        parse_bytes(s).map_err(de::Error::custom)?;
    }
    Ok(s)
}

/// `external`: a boolean, or the legacy `{name: ...}` form (true).
pub(crate) fn external<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a boolean")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v {
                "true" | "True" | "yes" => Ok(true),
                "false" | "False" | "no" => Ok(false),
                _ => Err(E::custom(format_args!("invalid boolean {v:?}"))),
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            while map.next_entry::<String, de::IgnoredAny>()?.is_some() {}
            Ok(true)
        }
    }
    d.deserialize_any(V)
}

impl<'de> Deserialize<'de> for Ulimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ulimit;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a mapping with soft and hard")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ulimit, E> {
                Ok(Ulimit { soft: v, hard: v })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ulimit, E> {
                let n = v
                    .parse::<i64>()
                    .map_err(|_| E::custom(format_args!("invalid ulimit {v:?}")))?;
                Ok(Ulimit { soft: n, hard: n })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Ulimit, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Long {
                    soft: i64,
                    hard: i64,
                }
                let l = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Ulimit {
                    soft: l.soft,
                    hard: l.hard,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a non-negative Go duration (`1h2m3.5s`, `300ms`, `10us`, a bare `0`) into
/// nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    corral_core::duration::parse_go_duration(s)
        .and_then(|ns| u64::try_from(ns).ok())
        .ok_or_else(|| format!("invalid duration {s:?} (expected e.g. 30s, 1m30s, 500ms)"))
}

/// Parses a byte size as compose does (`b`, `k`/`kb`, `m`/`mb`, `g`/`gb`, binary units).
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size {s:?} (expected e.g. 512m, 1g, 1048576)");
    let t = s.trim().to_ascii_lowercase();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..digits].parse().map_err(|_| bad())?;
    let mult: f64 = match &t[digits..] {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    #[allow(clippy::cast_possible_truncation)] // sizes fit in i64
    Ok((n * mult) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split_shell(r#"sh -c 'echo "hi there"' a\ b "x\"y""#).unwrap(),
            vec!["sh", "-c", "echo \"hi there\"", "a b", "x\"y"]
        );
        assert_eq!(split_shell("").unwrap(), Vec::<String>::new());
        assert_eq!(split_shell("''").unwrap(), vec![""]);
        assert!(split_shell("'open").is_err());
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1GB").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert!(parse_bytes("lots").is_err());
    }
}
