//! Table and `--format` output shared by `ps`, `images` and friends: docker's
//! tabwriter layout, truncation rules, port display and template-driven rows.

use serde_json::{Map, Value};

use super::template::{Template, TemplateError};

/// Lays out tab-separated rows like Go's `tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)`:
/// every cell followed by a tab is padded to max(width + 3, 10); the last cell is not.
pub(crate) fn tabwrite(lines: &[String]) -> String {
    tabwrite_min(lines, 10)
}

/// [`tabwrite`] with another minimum cell width (`top` uses 20).
pub(crate) fn tabwrite_min(lines: &[String], min: usize) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let w = (widths[i] + 3).max(min);
                out.push_str(&" ".repeat(w - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// docker's `Ellipsis`: cut to `max` characters, the last one replaced by `…`.
pub(crate) fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Strips `sha256:` and keeps 12 characters (docker's `TruncateID`).
pub(crate) fn trunc_id(id: &str) -> String {
    let id = id.split_once(':').map_or(id, |(_, rest)| rest);
    id.chars().take(12).collect()
}

/// One published or exposed port of a container (`ContainerSummary.Ports`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortEntry {
    /// Host IP, empty when only exposed.
    pub(crate) ip: String,
    /// Container port.
    pub(crate) private: u16,
    /// Host port, 0 when only exposed.
    pub(crate) public: u16,
    /// `tcp`, `udp` or `sctp`.
    pub(crate) proto: String,
}

/// docker's `DisplayablePorts`: groups consecutive ports, then lists host mappings.
pub(crate) fn display_ports(ports: &[PortEntry]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.proto).cmp(&(b.private, &b.ip, b.public, &b.proto))
    });
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut mappings = Vec::new();
    for p in &ports {
        let mut key = p.proto.clone();
        if !p.ip.is_empty() {
            if p.public != p.private {
                let host = if p.ip.contains(':') {
                    format!("[{}]", p.ip)
                } else {
                    p.ip.clone()
                };
                mappings.push(format!("{host}:{}->{}/{}", p.public, p.private, p.proto));
                continue;
            }
            key = format!("{}/{}", p.ip, p.proto);
        }
        match groups.iter_mut().find(|g| g.0 == key) {
            None => groups.push((key, p.private, p.private)),
            Some(g) if p.private == g.2.wrapping_add(1) => g.2 = p.private,
            Some(g) => {
                result.push(form_group(&g.0, g.1, g.2));
                g.1 = p.private;
                g.2 = p.private;
            }
        }
    }
    for g in &groups {
        result.push(form_group(&g.0, g.1, g.2));
    }
    result.extend(mappings);
    result.join(", ")
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let (ip, proto) = match key.rsplit_once('/') {
        Some((ip, proto)) => (ip, proto),
        None => ("", key),
    };
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{ip}:{group}->{group}");
    }
    format!("{group}/{proto}")
}

/// Header names of `ps` fields, as docker prints them in `table` formats.
pub(crate) const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// Header names of `images` fields.
pub(crate) const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "SIZE"),
];

/// Default `docker ps` table format.
pub(crate) const PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// A resolved `--format`: table (with header) or plain template lines.
pub(crate) struct Formatter {
    template: Template,
    header: Option<String>,
}

impl Formatter {
    /// Builds from a `--format` value (`table ...`, `json`, or a template).
    pub(crate) fn new(format: &str, headers: &[(&str, &str)]) -> Result<Self, TemplateError> {
        let replaced = format.replace("\\t", "\t").replace("\\n", "\n");
        let (is_table, body) = if replaced == "table" {
            return Err(TemplateError(
                "template parsing error: format \"table\" needs a template".into(),
            ));
        } else if let Some(rest) = replaced.strip_prefix("table ") {
            (true, rest.to_string())
        } else if replaced == "json" {
            (false, "{{json .}}".to_string())
        } else {
            (false, replaced)
        };
        let template = Template::parse(&body)?;
        let header = if is_table {
            let mut m = Map::new();
            for (k, v) in headers {
                m.insert((*k).to_string(), Value::String((*v).to_string()));
            }
            Some(template.render(&Value::Object(m))?)
        } else {
            None
        };
        Ok(Formatter { template, header })
    }

    /// Renders all rows into the final output text.
    pub(crate) fn render(&self, rows: &[Value]) -> Result<String, TemplateError> {
        let mut lines = Vec::new();
        if let Some(h) = &self.header {
            lines.push(h.clone());
        }
        for r in rows {
            lines.push(self.template.render(r)?);
        }
        if self.header.is_some() {
            Ok(tabwrite(&lines))
        } else {
            Ok(lines.iter().map(|l| format!("{l}\n")).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabwrite_pads_like_go_tabwriter() {
        let out = tabwrite(&[
            "CONTAINER ID\tIMAGE\tNAMES".to_string(),
            "abc\tbusybox:latest\tx".to_string(),
        ]);
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE            NAMES\nabc            busybox:latest   x\n"
        );
    }

    #[test]
    fn ellipsis_and_trunc_id() {
        assert_eq!(
            ellipsis("sh -c 'sleep 1000; echo done'", 20),
            "sh -c 'sleep 1000; …"
        );
        assert_eq!(ellipsis("short", 20), "short");
        assert_eq!(
            trunc_id("sha256:a60fddd249493331bc4b592a2fe1065aa0cacc4a128912a6aaab59024842db7d"),
            "a60fddd24949"
        );
        assert_eq!(trunc_id("0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn ports_are_grouped_like_docker() {
        let p = |ip: &str, private, public, proto: &str| PortEntry {
            ip: ip.into(),
            private,
            public,
            proto: proto.into(),
        };
        assert_eq!(display_ports(&[p("", 80, 0, "tcp")]), "80/tcp");
        assert_eq!(
            display_ports(&[
                p("", 80, 0, "tcp"),
                p("", 81, 0, "tcp"),
                p("", 82, 0, "tcp")
            ]),
            "80-82/tcp"
        );
        assert_eq!(
            display_ports(&[p("0.0.0.0", 80, 8080, "tcp"), p("::", 80, 8080, "tcp")]),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
        assert_eq!(
            display_ports(&[p("0.0.0.0", 80, 80, "tcp")]),
            "0.0.0.0:80->80/tcp"
        );
        assert_eq!(display_ports(&[]), "");
    }

    #[test]
    fn formatter_renders_table_with_headers() {
        let f = Formatter::new("table {{.ID}}\\t{{.Names}}", PS_HEADERS).unwrap();
        let out = f.render(&[json!({"ID": "abc", "Names": "web"})]).unwrap();
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            web\n");
        let f = Formatter::new("{{.Names}}", PS_HEADERS).unwrap();
        assert_eq!(
            f.render(&[json!({"Names": "a"}), json!({"Names": "b"})])
                .unwrap(),
            "a\nb\n"
        );
        let f = Formatter::new("json", PS_HEADERS).unwrap();
        assert_eq!(f.render(&[json!({"A": 1})]).unwrap(), "{\"A\":1}\n");
    }
}

/// Re-indents JSON text the way Go's `json.Indent(prefix="", indent)` does, keeping
/// key order and number spelling exactly as the daemon sent them.
pub(crate) fn indent_json(src: &str, indent: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut chars = src.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // Skip whitespace to see whether the container is empty.
                while chars.peek().is_some_and(|n| n.is_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod indent_tests {
    use super::indent_json;

    #[test]
    fn indents_like_go_and_keeps_order() {
        let src = r#"{"Z":1,"A":[],"B":{},"C":["x, \"y\"",{"k":null}]}"#;
        let want = "{\n    \"Z\": 1,\n    \"A\": [],\n    \"B\": {},\n    \"C\": [\n        \"x, \\\"y\\\"\",\n        {\n            \"k\": null\n        }\n    ]\n}";
        assert_eq!(indent_json(src, "    "), want);
    }
}
