//! Reading the host's own firewall to tell when it blocks container traffic.
//!
//! In nftables a packet is dropped when *any* base chain on its hook drops it, so an accept
//! in Corral's table cannot override a host chain whose policy is `drop`. dockerd sets the
//! iptables `FORWARD` policy to DROP when it starts, and a hardened host may do the same.
//! Corral does not edit other tables (it respects the host firewall); instead it finds such
//! chains here and says how to allow its bridges, in the daemon log and in `docker info`.

use serde_json::Value;

use crate::bridge::BRIDGE_PREFIX;

/// A base chain of another table, on the forward hook, whose policy drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardBlocker {
    /// Table family: `ip` or `inet`.
    pub family: String,
    /// Table name (`filter` for iptables-nft).
    pub table: String,
    /// Chain name (`FORWARD` for iptables-nft).
    pub chain: String,
}

/// The forward chains with policy drop in tables other than `own_table` that carry no rule
/// naming Corral's bridges (`iifname`/`oifname` matching `cr…`, as `iptables -i cr+` writes
/// it). An IPv6-only family is ignored: Corral's networks are IPv4.
///
/// `ruleset_json` is the output of `nft -j list ruleset`; text that does not parse yields
/// no blockers (the check is advice, never a reason to fail).
pub fn forward_blockers(ruleset_json: &str, own_table: &str) -> Vec<ForwardBlocker> {
    let Ok(doc) = serde_json::from_str::<Value>(ruleset_json) else {
        return Vec::new();
    };
    let Some(items) = doc.get("nftables").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut blockers = Vec::new();
    for chain in items.iter().filter_map(|i| i.get("chain")) {
        let field = |k: &str| chain.get(k).and_then(Value::as_str).unwrap_or_default();
        let family = field("family");
        if !matches!(family, "ip" | "inet")
            || field("hook") != "forward"
            || field("policy") != "drop"
            || field("table") == own_table
        {
            continue;
        }
        let table = field("table");
        let allowed = items
            .iter()
            .filter_map(|i| i.get("rule"))
            .filter(|r| {
                r.get("family").and_then(Value::as_str) == Some(family)
                    && r.get("table").and_then(Value::as_str) == Some(table)
            })
            .any(|r| names_corral_bridges(r.get("expr").unwrap_or(&Value::Null)));
        if !allowed {
            blockers.push(ForwardBlocker {
                family: family.to_owned(),
                table: table.to_owned(),
                chain: field("name").to_owned(),
            });
        }
    }
    blockers
}

/// Whether a rule's expressions match an interface name of Corral's bridges.
fn names_corral_bridges(expr: &Value) -> bool {
    match expr {
        Value::Array(items) => items.iter().any(names_corral_bridges),
        Value::Object(map) => {
            if let Some(m) = map.get("match") {
                let key = m.pointer("/left/meta/key").and_then(Value::as_str);
                let right = m.get("right").and_then(Value::as_str).unwrap_or_default();
                if matches!(key, Some("iifname" | "oifname")) && right.starts_with(BRIDGE_PREFIX) {
                    return true;
                }
            }
            map.values().any(names_corral_bridges)
        }
        _ => false,
    }
}

/// The operator-facing warning for `blockers`, `None` when there are none.
pub fn warning(blockers: &[ForwardBlocker]) -> Option<String> {
    if blockers.is_empty() {
        return None;
    }
    let chains: Vec<String> = blockers
        .iter()
        .map(|b| format!("{} {} {}", b.family, b.table, b.chain))
        .collect();
    Some(format!(
        "the host firewall drops forwarded traffic by default (chain {}; dockerd sets this \
         policy): containers on Corral networks cannot reach other hosts and published ports \
         do not answer from other machines until the host allows Corral's bridges, e.g. \
         `iptables -I DOCKER-USER -i {p}+ -j ACCEPT && iptables -I DOCKER-USER -o {p}+ -j \
         ACCEPT` when dockerd runs, or the same rules in the FORWARD chain otherwise",
        chains.join(", "),
        p = BRIDGE_PREFIX,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft -j list ruleset` after dockerd 20.10 started (iptables-nft), trimmed.
    const DOCKERD: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
      {"table": {"family": "ip", "name": "filter", "handle": 1}},
      {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
      {"chain": {"family": "ip", "table": "filter", "name": "DOCKER-USER", "handle": 2}},
      {"chain": {"family": "ip", "table": "corral-default", "name": "forward", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
      {"chain": {"family": "ip6", "table": "filter", "name": "FORWARD", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
      {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 3, "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"jump": {"target": "DOCKER-USER"}}]}}
    ]}"#;

    #[test]
    fn finds_dockerds_forward_drop_and_ignores_its_own_table_and_ipv6() {
        let b = forward_blockers(DOCKERD, "corral-default");
        assert_eq!(
            b,
            vec![ForwardBlocker {
                family: "ip".into(),
                table: "filter".into(),
                chain: "FORWARD".into(),
            }]
        );
        let text = warning(&b).unwrap();
        assert!(text.contains("chain ip filter FORWARD"), "{text}");
        assert!(
            text.contains("iptables -I DOCKER-USER -i cr+ -j ACCEPT"),
            "{text}"
        );
    }

    #[test]
    fn a_rule_allowing_corral_bridges_clears_the_warning() {
        let allowed = DOCKERD.replace(
            "\n    ]}",
            r#",
      {"rule": {"family": "ip", "table": "filter", "chain": "DOCKER-USER", "handle": 5, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "cr*"}}, {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}]}}
    ]}"#,
        );
        assert_ne!(allowed, DOCKERD);
        assert!(forward_blockers(&allowed, "corral-default").is_empty());
    }

    #[test]
    fn an_accepting_host_or_unparsable_output_gives_no_warning() {
        let accepting = DOCKERD.replace(r#""policy": "drop""#, r#""policy": "accept""#);
        assert!(forward_blockers(&accepting, "corral-default").is_empty());
        assert!(forward_blockers("not json", "corral-default").is_empty());
        assert!(forward_blockers(r#"{"nftables": []}"#, "x").is_empty());
        assert_eq!(warning(&[]), None);
    }
}
