//! Relative paths in a file that is not the main one (`include`d, or the file of an
//! `extends`) are relative to that file's directory; they are made absolute before
//! the file's content joins the project, whose own relative paths are resolved
//! against the project directory later.

use std::path::Path;

use crate::load::lexical_clean;
use crate::node::{Node, Value};

fn is_relative(p: &str) -> bool {
    !p.is_empty() && !p.starts_with('/') && !p.starts_with('~') && !p.contains("://")
}

fn join(dir: &Path, p: &str) -> String {
    lexical_clean(&dir.join(p)).display().to_string()
}

fn rebase_str(n: &mut Node, dir: &Path) {
    if let Value::Str(s) = &mut n.value {
        if is_relative(s) {
            *s = join(dir, s);
        }
    }
}

/// Makes the relative paths of one service node absolute against `dir`: bind mount
/// sources, `env_file`s and the build context.
pub(crate) fn rebase_service(svc: &mut Node, dir: &Path) {
    if let Some(Node {
        value: Value::Seq(items),
        ..
    }) = svc.get_mut("volumes")
    {
        for item in items.iter_mut() {
            match &mut item.value {
                // Short syntax: only a source that starts with `.` is a relative path.
                Value::Str(s) if s.starts_with('.') => {
                    if let Some((src, rest)) = s.split_once(':') {
                        *s = format!("{}:{rest}", join(dir, src));
                    }
                }
                Value::Map(_) => {
                    let bind = item
                        .get("type")
                        .and_then(Node::as_scalar_string)
                        .is_some_and(|t| t == "bind");
                    if bind {
                        if let Some(src) = item.get_mut("source") {
                            rebase_str(src, dir);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(ef) = svc.get_mut("env_file") {
        match &mut ef.value {
            Value::Str(_) => rebase_str(ef, dir),
            Value::Seq(items) => {
                for item in items.iter_mut() {
                    match &item.value {
                        Value::Str(_) => rebase_str(item, dir),
                        Value::Map(_) => {
                            if let Some(p) = item.get_mut("path") {
                                rebase_str(p, dir);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(ctx) = svc.get_mut("build").and_then(|b| b.get_mut("context")) {
        rebase_str(ctx, dir);
    }
}

/// Makes every relative path of a whole file absolute against `dir`.
pub(crate) fn rebase_file(root: &mut Node, dir: &Path) {
    if let Some(Node {
        value: Value::Map(services),
        ..
    }) = root.get_mut("services")
    {
        for (_, svc) in services.iter_mut() {
            rebase_service(svc, dir);
        }
    }
    for section in ["secrets", "configs"] {
        if let Some(Node {
            value: Value::Map(entries),
            ..
        }) = root.get_mut(section)
        {
            for (_, e) in entries.iter_mut() {
                if let Some(f) = e.get_mut("file") {
                    rebase_str(f, dir);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::normalize_file;
    use crate::node::parse_yaml;

    #[test]
    fn rebases_relative_paths_only() {
        let text = "services:\n  s:\n    volumes: ['./a:/a', 'named:/n', '/abs:/abs', {type: bind, source: ../b, target: /b}, {type: volume, source: v, target: /v}]\n    env_file: [x.env, {path: ./y.env}, /z.env]\n    build: ctx\nsecrets:\n  t: {file: ./t.txt}\n";
        let mut n = parse_yaml(text, 0, "f").unwrap();
        normalize_file(&mut n);
        rebase_file(&mut n, Path::new("/inc/sub"));
        let j = n.to_json();
        let s = &j["services"]["s"];
        assert_eq!(s["volumes"][0], "/inc/sub/a:/a");
        assert_eq!(s["volumes"][1], "named:/n");
        assert_eq!(s["volumes"][2], "/abs:/abs");
        assert_eq!(s["volumes"][3]["source"], "/inc/b");
        assert_eq!(s["volumes"][4]["source"], "v");
        assert_eq!(s["env_file"][0], "/inc/sub/x.env");
        assert_eq!(s["env_file"][1]["path"], "/inc/sub/y.env");
        assert_eq!(s["env_file"][2], "/z.env");
        assert_eq!(s["build"]["context"], "/inc/sub/ctx");
        assert_eq!(j["secrets"]["t"]["file"], "/inc/sub/t.txt");
    }
}
