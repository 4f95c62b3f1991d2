//! Merging compose files (`-f a.yml -f b.yml`) and `extends`, with the override rules
//! of the specification
//! (<https://github.com/compose-spec/compose-spec/blob/main/13-merge.md>):
//! mappings merge key by key; `command`, `entrypoint` and `healthcheck.test` are
//! replaced; `ports` are unique by their whole definition, `volumes`, `secrets` and
//! `configs` by target; other sequences append without duplicates; scalars are
//! replaced. Mapping-or-list fields (`environment`, `labels`, `depends_on`,
//! `networks`...) are brought to their mapping form first so both forms merge.

use crate::mounts;
use crate::node::{Key, MergeTag, Node, Value};

/// Service keys whose list form is turned into a mapping before merging.
const KV_KEYS: &[&str] = &["environment", "labels", "sysctls", "annotations"];

/// Brings every service of a file to the forms that merge cleanly.
pub(crate) fn normalize_file(root: &mut Node) {
    if let Some(Node {
        value: Value::Map(services),
        ..
    }) = root.get_mut("services")
    {
        for (_, svc) in services.iter_mut() {
            normalize_service(svc);
        }
    }
}

/// Brings one service to the forms that merge cleanly (see [`normalize_file`]).
pub(crate) fn normalize_service(svc: &mut Node) {
    for key in KV_KEYS {
        if let Some(n) = svc.get_mut(key) {
            list_to_map(n, |item| match item.split_once('=') {
                Some((k, v)) => (k.to_string(), Value::Str(v.to_string())),
                None => (item.to_string(), Value::Null),
            });
        }
    }
    if let Some(n) = svc.get_mut("depends_on") {
        list_to_map(n, |item| {
            let cond = Node::str("service_started");
            (
                item.to_string(),
                Value::Map(vec![(
                    Key {
                        name: "condition".into(),
                        loc: Default::default(),
                    },
                    cond,
                )]),
            )
        });
    }
    if let Some(n) = svc.get_mut("networks") {
        list_to_map(n, |item| (item.to_string(), Value::Null));
    }
    if let Some(n) = svc.get_mut("build") {
        if let Value::Str(ctx) = &n.value {
            let loc = n.loc;
            n.value = Value::Map(vec![(
                Key {
                    name: "context".into(),
                    loc,
                },
                Node {
                    value: Value::Str(ctx.clone()),
                    loc,
                    tag: None,
                },
            )]);
        }
    }
}

fn list_to_map(n: &mut Node, f: impl Fn(&str) -> (String, Value)) {
    let Value::Seq(items) = &n.value else {
        return;
    };
    let mut out: Vec<(Key, Node)> = Vec::new();
    for item in items {
        let Some(s) = item.as_scalar_string() else {
            // Leave malformed input to the typed conversion, which names it.
            return;
        };
        let (k, v) = f(&s);
        let entry = (
            Key {
                name: k,
                loc: item.loc,
            },
            Node {
                value: v,
                loc: item.loc,
                tag: None,
            },
        );
        match out.iter().position(|(e, _)| e.name == entry.0.name) {
            Some(i) => out[i] = entry,
            None => out.push(entry),
        }
    }
    n.value = Value::Map(out);
}

/// Merges file `over` onto `base` (both whole files, normalised).
pub(crate) fn merge_files(base: &mut Node, over: Node) {
    merge_at(base, over, &[]);
}

/// Merges service `over` onto service `base` (used by `extends` too).
pub(crate) fn merge_service(base: &mut Node, over: Node) {
    merge_at(base, over, &["services", "*"]);
}

fn merge_at(base: &mut Node, over: Node, path: &[&str]) {
    match (&mut base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => {
            for (k, mut v) in o {
                match v.tag {
                    Some(MergeTag::Reset) => {
                        b.retain(|(bk, _)| bk.name != k.name);
                        continue;
                    }
                    Some(MergeTag::Override) => {
                        v.tag = None;
                        match b.iter_mut().find(|(bk, _)| bk.name == k.name) {
                            Some((_, bv)) => *bv = v,
                            None => b.push((k, v)),
                        }
                        continue;
                    }
                    None => {}
                }
                match b.iter_mut().find(|(bk, _)| bk.name == k.name) {
                    Some((_, bv)) => {
                        let mut p: Vec<&str> = path.to_vec();
                        // Service names, network names... match any.
                        let seg = if is_named_level(path) {
                            "*"
                        } else {
                            k.name.as_str()
                        };
                        p.push(seg);
                        merge_at(bv, v, &p);
                    }
                    None => b.push((k, v)),
                }
            }
        }
        (Value::Seq(b), Value::Seq(o)) => {
            let key = path.last().copied().unwrap_or("");
            let in_service = path.len() == 3 && path[0] == "services";
            let replace = (in_service && matches!(key, "command" | "entrypoint"))
                || (path.len() == 4
                    && path[0] == "services"
                    && path[2] == "healthcheck"
                    && key == "test");
            if replace {
                *b = o;
                return;
            }
            let ident: fn(&Node) -> Option<String> = match (in_service, key) {
                (true, "volumes") => volume_target,
                (true, "secrets" | "configs") => file_ref_target,
                _ => whole,
            };
            for item in o {
                let id = ident(&item);
                match b.iter().position(|e| id.is_some() && ident(e) == id) {
                    Some(i) => b[i] = item,
                    None => b.push(item),
                }
            }
        }
        (_, value) => {
            base.value = value;
            base.loc = over.loc;
        }
    }
}

/// Drops `!reset` entries left in a merged tree (a reset in the first file, or of a
/// key no earlier file set) and forgets `!override` tags.
pub(crate) fn strip_merge_tags(n: &mut Node) {
    n.tag = None;
    match &mut n.value {
        Value::Map(m) => {
            m.retain(|(_, v)| v.tag != Some(MergeTag::Reset));
            m.iter_mut().for_each(|(_, v)| strip_merge_tags(v));
        }
        Value::Seq(s) => s.iter_mut().for_each(strip_merge_tags),
        _ => {}
    }
}

/// True when the children of `path` are user-chosen names (services, networks...).
fn is_named_level(path: &[&str]) -> bool {
    matches!(
        path,
        ["services" | "networks" | "volumes" | "secrets" | "configs"]
            | ["services", "*", "networks" | "depends_on" | "ulimits"]
    )
}

fn whole(n: &Node) -> Option<String> {
    Some(n.to_json().to_string())
}

fn volume_target(n: &Node) -> Option<String> {
    match &n.value {
        Value::Str(s) => mounts::parse_short(s).ok().map(|v| v.target),
        Value::Map(_) => n.get("target").and_then(Node::as_scalar_string),
        _ => None,
    }
}

fn file_ref_target(n: &Node) -> Option<String> {
    match &n.value {
        Value::Str(s) => Some(s.clone()),
        Value::Map(_) => n
            .get("target")
            .or_else(|| n.get("source"))
            .and_then(Node::as_scalar_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::parse_yaml;

    fn merged(a: &str, b: &str) -> serde_json::Value {
        let mut a = parse_yaml(a, 0, "a").unwrap();
        let mut b = parse_yaml(b, 1, "b").unwrap();
        normalize_file(&mut a);
        normalize_file(&mut b);
        merge_files(&mut a, b);
        a.to_json()
    }

    #[test]
    fn scalars_replace_and_maps_merge() {
        let j = merged(
            "services:\n  web:\n    image: a\n    environment: [A=1, B=2]\n",
            "services:\n  web:\n    image: b\n    environment:\n      B: 3\n      C: 4\n",
        );
        assert_eq!(j["services"]["web"]["image"], "b");
        assert_eq!(j["services"]["web"]["environment"]["A"], "1");
        assert_eq!(j["services"]["web"]["environment"]["B"], 3);
        assert_eq!(j["services"]["web"]["environment"]["C"], 4);
    }

    #[test]
    fn commands_replace_and_lists_append() {
        let j = merged(
            "services:\n  w:\n    command: [a, b]\n    cap_add: [NET_ADMIN]\n    healthcheck: {test: [CMD, x], retries: 3}\n",
            "services:\n  w:\n    command: [c]\n    cap_add: [NET_ADMIN, SYS_TIME]\n    healthcheck: {test: [CMD, y]}\n",
        );
        assert_eq!(j["services"]["w"]["command"], serde_json::json!(["c"]));
        assert_eq!(
            j["services"]["w"]["cap_add"],
            serde_json::json!(["NET_ADMIN", "SYS_TIME"])
        );
        assert_eq!(
            j["services"]["w"]["healthcheck"]["test"],
            serde_json::json!(["CMD", "y"])
        );
        assert_eq!(j["services"]["w"]["healthcheck"]["retries"], 3);
    }

    #[test]
    fn volumes_merge_by_target_and_ports_by_value() {
        let j = merged(
            "services:\n  w:\n    volumes: ['a:/data', '/logs']\n    ports: ['80:80']\n",
            "services:\n  w:\n    volumes: [{type: volume, source: b, target: /data}]\n    ports: ['80:80', '81:81']\n",
        );
        let vols = j["services"]["w"]["volumes"].as_array().unwrap().clone();
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[0]["source"], "b");
        assert_eq!(
            j["services"]["w"]["ports"],
            serde_json::json!(["80:80", "81:81"])
        );
    }

    #[test]
    fn reset_and_override_tags() {
        let mut a = parse_yaml(
            "services:\n  w:\n    ports: ['80:80']\n    environment: {A: '1', B: '2'}\n    user: root\n",
            0,
            "a",
        )
        .unwrap();
        let mut b = parse_yaml(
            "services:\n  w:\n    ports: !reset []\n    environment: !override {C: '3'}\n    user: !reset null\n    tty: !reset true\n",
            1,
            "b",
        )
        .unwrap();
        normalize_file(&mut a);
        normalize_file(&mut b);
        merge_files(&mut a, b);
        strip_merge_tags(&mut a);
        let j = a.to_json();
        let w = &j["services"]["w"];
        assert!(w.get("ports").is_none(), "{w}");
        assert!(w.get("user").is_none(), "{w}");
        assert!(w.get("tty").is_none(), "{w}");
        assert_eq!(w["environment"], serde_json::json!({"C": "3"}));
    }

    #[test]
    fn depends_on_and_networks_merge_across_forms() {
        let j = merged(
            "services:\n  w:\n    depends_on: [db]\n    networks: [front]\n",
            "services:\n  w:\n    depends_on:\n      cache: {condition: service_healthy}\n    networks:\n      back: {aliases: [x]}\n",
        );
        let w = &j["services"]["w"];
        assert_eq!(w["depends_on"]["db"]["condition"], "service_started");
        assert_eq!(w["depends_on"]["cache"]["condition"], "service_healthy");
        assert!(w["networks"]["front"].is_null());
        assert_eq!(w["networks"]["back"]["aliases"], serde_json::json!(["x"]));
    }
}
