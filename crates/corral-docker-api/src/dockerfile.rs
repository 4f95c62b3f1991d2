//! The `changes` of `docker commit --change` and `docker import --change`: Dockerfile
//! instructions (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `ONBUILD`, `STOPSIGNAL`,
//! `USER`, `VOLUME`, `WORKDIR`) applied to a Docker `Config` object, as dockerd's
//! `dockerfile.BuildFromConfig` does.

use axum::extract::Query;
use axum::http::Uri;
use serde_json::{json, Map, Value};

/// Every `changes` value of the query string (the CLI repeats the key).
pub(crate) fn changes_in(uri: &Uri) -> Vec<String> {
    Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| {
            q.0.into_iter()
                .filter(|(k, v)| k == "changes" && !v.trim().is_empty())
                .map(|(_, v)| v)
                .collect()
        })
        .unwrap_or_default()
}

/// Splits on whitespace outside double quotes, removing the quotes and `\` escapes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped, mut any) = (false, false, false);
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
            any = true;
        } else if c == '"' {
            quoted = !quoted;
            any = true;
        } else if c.is_whitespace() && !quoted {
            if any {
                out.push(std::mem::take(&mut cur));
                any = false;
            }
        } else {
            cur.push(c);
            any = true;
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// The JSON (exec) form if `rest` is a JSON array of strings.
fn json_array(rest: &str) -> Option<Vec<String>> {
    let v: Value = serde_json::from_str(rest.trim()).ok()?;
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_owned))
        .collect()
}

/// `KEY=VALUE …` pairs, or the legacy `KEY VALUE` form.
fn pairs(instr: &str, rest: &str) -> Result<Vec<(String, String)>, String> {
    let ws = words(rest);
    if ws.is_empty() {
        return Err(format!("{instr} requires at least one argument"));
    }
    if !ws[0].contains('=') {
        let (k, v) = rest
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{instr} must have two arguments"))?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    ws.into_iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    format!(
                        "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
                    )
                })
        })
        .collect()
}

/// Sets `config[key][k] = v`, making `config[key]` an object if it is not one.
fn insert_into(config: &mut Map<String, Value>, key: &str, k: String, v: Value) {
    match config.get_mut(key) {
        Some(Value::Object(m)) => {
            m.insert(k, v);
        }
        _ => {
            let mut m = Map::new();
            m.insert(k, v);
            config.insert(key.to_owned(), Value::Object(m));
        }
    }
}

/// Applies `changes` to `config`.
///
/// # Errors
/// A message naming the bad instruction, as dockerd words it.
pub(crate) fn apply_changes(
    config: &mut Map<String, Value>,
    changes: &[String],
) -> Result<(), String> {
    for change in changes {
        let line = change.trim();
        let (instr, rest) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(a, b)| (a, b.trim()));
        let upper = instr.to_ascii_uppercase();
        match upper.as_str() {
            "CMD" | "ENTRYPOINT" => {
                let args = json_array(rest)
                    .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_owned()]);
                let key = if upper == "CMD" { "Cmd" } else { "Entrypoint" };
                config.insert(key.into(), json!(args));
            }
            "ENV" => {
                let mut env: Vec<String> = config
                    .get("Env")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                for (k, v) in pairs("ENV", rest)? {
                    let entry = format!("{k}={v}");
                    match env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(k.as_str()))
                    {
                        Some(e) => *e = entry,
                        None => env.push(entry),
                    }
                }
                config.insert("Env".into(), json!(env));
            }
            "LABEL" => {
                for (k, v) in pairs("LABEL", rest)? {
                    insert_into(config, "Labels", k, json!(v));
                }
            }
            "EXPOSE" => {
                for p in words(rest) {
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    insert_into(config, "ExposedPorts", p, json!({}));
                }
            }
            "VOLUME" => {
                for v in json_array(rest).unwrap_or_else(|| words(rest)) {
                    insert_into(config, "Volumes", v, json!({}));
                }
            }
            "USER" | "WORKDIR" | "STOPSIGNAL" => {
                if rest.is_empty() {
                    return Err(format!("{upper} requires exactly one argument"));
                }
                let key = match upper.as_str() {
                    "USER" => "User",
                    "WORKDIR" => "WorkingDir",
                    _ => "StopSignal",
                };
                config.insert(key.into(), json!(rest));
            }
            "ONBUILD" => {
                let list = config.entry("OnBuild").or_insert_with(|| json!([]));
                if let Value::Array(a) = list {
                    a.push(json!(rest));
                } else {
                    *list = json!([rest]);
                }
            }
            _ => return Err(format!("{instr} is not a valid change command")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Value {
        let mut m = Map::new();
        let c: Vec<String> = changes.iter().map(|s| (*s).to_owned()).collect();
        apply_changes(&mut m, &c).unwrap();
        Value::Object(m)
    }

    #[test]
    fn applies_exec_and_shell_forms() {
        let c = apply(&[r#"CMD ["cat", "/marker"]"#, "ENTRYPOINT echo hi"]);
        assert_eq!(c["Cmd"], json!(["cat", "/marker"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
    }

    #[test]
    fn applies_env_labels_ports_and_volumes() {
        let c = apply(&[
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "LABEL x=y",
            "EXPOSE 80 53/udp",
            "VOLUME /data",
            "USER app",
            "WORKDIR /w",
        ]);
        assert_eq!(c["Env"], json!(["A=3", "B=two words"]));
        assert_eq!(c["Labels"], json!({"x": "y"}));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["Volumes"], json!({"/data": {}}));
        assert_eq!(c["User"], "app");
        assert_eq!(c["WorkingDir"], "/w");
    }

    #[test]
    fn rejects_instructions_commit_cannot_apply() {
        let mut m = Map::new();
        let err = apply_changes(&mut m, &["RUN rm -rf /".to_owned()]).unwrap_err();
        assert_eq!(err, "RUN is not a valid change command");
    }

    #[test]
    fn reads_repeated_changes_from_the_query() {
        let uri: Uri = "/commit?container=c&changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3D1"
            .parse()
            .unwrap();
        assert_eq!(changes_in(&uri), ["CMD [\"sh\"]", "ENV A=1"]);
    }
}
