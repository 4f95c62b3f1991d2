//! Consistency checks on a loaded project, run before anything is created: unknown
//! dependencies, dependency cycles, undefined networks, volumes, secrets and configs.
//! Errors point at the key in the file where the reference was written.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{suggest, Diagnostic, Error, Result};
use crate::model::Project;
use crate::node::{Loc, Node};

/// The merged tree and file table, to locate errors.
pub(crate) struct Ctx<'a> {
    pub(crate) root: &'a Node,
    pub(crate) files: &'a [String],
}

impl Ctx<'_> {
    /// Location of the deepest key of `path` that exists in the merged tree.
    pub(crate) fn loc(&self, path: &[&str]) -> Loc {
        let mut node = self.root;
        let mut loc = node.loc;
        for seg in path {
            match node.key(seg) {
                Some(k) => loc = k.loc,
                None => break,
            }
            match node.get(seg) {
                Some(n) => node = n,
                None => break,
            }
        }
        loc
    }

    fn error(&self, path: &[&str], message: String) -> Error {
        let loc = self.loc(path);
        Error::Invalid(Diagnostic {
            file: self.files.get(loc.file).cloned().unwrap_or_default(),
            line: loc.line,
            column: loc.column,
            path: path
                .iter()
                .map(|s| {
                    if s.chars().all(|c| c.is_ascii_digit()) {
                        format!("[{s}]")
                    } else {
                        format!(".{s}")
                    }
                })
                .collect::<String>()
                .trim_start_matches('.')
                .to_string(),
            message,
        })
    }
}

fn hint<'a>(word: &str, names: impl IntoIterator<Item = &'a String>) -> String {
    match suggest(word, names.into_iter().map(String::as_str)) {
        Some(s) => format!(" (did you mean \"{s}\"?)"),
        None => String::new(),
    }
}

pub(crate) fn project(p: &Project, ctx: &Ctx<'_>) -> Result<()> {
    for (name, svc) in &p.services {
        if svc.image.is_none() && svc.build.is_none() {
            return Err(ctx.error(
                &["services", name],
                format!("service \"{name}\" has neither an image nor a build context"),
            ));
        }
        for dep in svc.depends_on.keys() {
            let required = svc.depends_on.get(dep).is_some_and(|d| d.required);
            if p.services.contains_key(dep) || !required {
                continue;
            }
            let msg = if p.disabled_services.contains_key(dep) {
                format!("service \"{name}\" depends on service \"{dep}\", which is not enabled by the active profiles")
            } else {
                format!(
                    "service \"{name}\" depends on undefined service \"{dep}\"{}",
                    hint(dep, p.services.keys())
                )
            };
            return Err(ctx.error(&["services", name, "depends_on", dep], msg));
        }
        for net in svc.networks.keys() {
            if !p.networks.contains_key(net) {
                return Err(ctx.error(
                    &["services", name, "networks", net],
                    format!(
                        "service \"{name}\" refers to undefined network \"{net}\"{}",
                        hint(net, p.networks.keys())
                    ),
                ));
            }
        }
        if let Some(mode) = &svc.network_mode {
            if let Some(other) = mode.strip_prefix("service:") {
                if !p.services.contains_key(other) {
                    return Err(ctx.error(
                        &["services", name, "network_mode"],
                        format!(
                            "service \"{name}\" uses the network of undefined service \"{other}\"{}",
                            hint(other, p.services.keys())
                        ),
                    ));
                }
            }
            if !svc.networks.is_empty() && !svc.networks.contains_key("default") {
                return Err(ctx.error(
                    &["services", name, "network_mode"],
                    "network_mode and networks cannot be combined".to_string(),
                ));
            }
        }
        for (i, v) in svc.volumes.iter().enumerate() {
            if v.kind != "volume" {
                continue;
            }
            if let Some(src) = &v.source {
                if !p.volumes.contains_key(src) {
                    let idx = i.to_string();
                    return Err(ctx.error(
                        &["services", name, "volumes", &idx],
                        format!(
                            "service \"{name}\" refers to undefined volume \"{src}\"{}",
                            hint(src, p.volumes.keys())
                        ),
                    ));
                }
            }
        }
        for (kind, refs, defs) in [
            ("secret", &svc.secrets, &p.secrets),
            ("config", &svc.configs, &p.configs),
        ] {
            for r in refs {
                if !defs.contains_key(&r.source) {
                    return Err(ctx.error(
                        &["services", name, &format!("{kind}s")],
                        format!(
                            "service \"{name}\" refers to undefined {kind} \"{}\"{}",
                            r.source,
                            hint(&r.source, defs.keys())
                        ),
                    ));
                }
            }
        }
        if svc.container_name.is_some() && svc.replicas() > 1 {
            return Err(ctx.error(
                &["services", name, "container_name"],
                format!(
                    "service \"{name}\" sets container_name and cannot have more than one replica"
                ),
            ));
        }
    }
    for (kind, defs) in [("secret", &p.secrets), ("config", &p.configs)] {
        for (key, o) in defs {
            let sources = [
                o.file.is_some(),
                o.environment.is_some(),
                o.content.is_some(),
                o.external,
            ]
            .iter()
            .filter(|b| **b)
            .count();
            if sources != 1 {
                return Err(ctx.error(
                    &[&format!("{kind}s"), key],
                    format!("{kind} \"{key}\" must set exactly one of file, environment, content or external"),
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(p) {
        let first = cycle.first().cloned().unwrap_or_default();
        return Err(ctx.error(
            &["services", &first, "depends_on"],
            format!("dependency cycle: {}", cycle.join(" -> ")),
        ));
    }
    Ok(())
}

/// A dependency cycle as `[a, b, a]`, if there is one.
pub fn find_cycle(p: &Project) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit(
        p: &Project,
        n: &str,
        marks: &mut BTreeMap<String, Mark>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(n) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|s| s == n).unwrap_or(0);
                let mut c = stack[start..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            None => {}
        }
        marks.insert(n.to_string(), Mark::Visiting);
        stack.push(n.to_string());
        if let Some(s) = p.services.get(n) {
            for d in s.depends_on.keys() {
                if let Some(c) = visit(p, d, marks, stack) {
                    return Some(c);
                }
            }
        }
        stack.pop();
        marks.insert(n.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for n in p.services.keys() {
        if let Some(c) = visit(p, n, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

/// Services in an order where each comes after everything it depends on
/// (ties by name). The project must be free of cycles (as a loaded one is).
pub fn dependency_order(p: &Project) -> Vec<String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    fn visit(
        p: &Project,
        n: &str,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > p.services.len() || done.contains(n) || !p.services.contains_key(n) {
            return;
        }
        if let Some(s) = p.services.get(n) {
            for d in s.depends_on.keys() {
                visit(p, d, done, out, depth + 1);
            }
        }
        if done.insert(n.to_string()) {
            out.push(n.to_string());
        }
    }
    for n in p.services.keys() {
        visit(p, n, &mut done, &mut out, 0);
    }
    out
}

/// `names` and every service they depend on, transitively.
pub fn with_dependencies(p: &Project, names: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(n) = todo.pop() {
        if out.insert(n.clone()) {
            if let Some(s) = p.services.get(&n) {
                todo.extend(s.depends_on.keys().cloned());
            }
        }
    }
    out
}

/// Groups `order` (a dependency order, as [`dependency_order`] gives) into levels:
/// a service's dependencies among `order` are all in earlier levels, so the services
/// of one level can be created and started together.
pub fn dependency_levels(p: &Project, order: &[String]) -> Vec<Vec<String>> {
    let mut level: BTreeMap<&str, usize> = BTreeMap::new();
    let mut out: Vec<Vec<String>> = Vec::new();
    for n in order {
        let l = p
            .services
            .get(n)
            .into_iter()
            .flat_map(|s| s.depends_on.keys())
            .filter_map(|d| level.get(d.as_str()).map(|l| l + 1))
            .max()
            .unwrap_or(0);
        level.insert(n, l);
        if out.len() <= l {
            out.resize_with(l + 1, Vec::new);
        }
        out[l].push(n.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load, LoadOptions, MemSource};
    use std::path::PathBuf;

    fn project(text: &str) -> Project {
        let src = MemSource::new().with_file("/p/compose.yaml", text);
        let opts = LoadOptions {
            working_dir: PathBuf::from("/p"),
            ..LoadOptions::default()
        };
        load(&opts, &src).unwrap().project
    }

    #[test]
    fn orders_dependencies_first_and_collects_them() {
        let p = project(
            "services:\n  web: {image: x, depends_on: [api]}\n  api: {image: x, depends_on: [db, cache]}\n  db: {image: x}\n  cache: {image: x}\n  lone: {image: x}\n",
        );
        let order = dependency_order(&p);
        let pos = |s: &str| order.iter().position(|o| o == s).unwrap();
        assert!(pos("db") < pos("api") && pos("cache") < pos("api") && pos("api") < pos("web"));
        assert_eq!(order.len(), 5);
        let deps = with_dependencies(&p, &["web".to_string()]);
        assert_eq!(
            deps.into_iter().collect::<Vec<_>>(),
            vec!["api", "cache", "db", "web"]
        );
        assert_eq!(find_cycle(&p), None);
    }

    #[test]
    fn optional_missing_dependency_is_ignored() {
        let p = project(
            "services:\n  web:\n    image: x\n    depends_on:\n      gone: {condition: service_started, required: false}\n",
        );
        assert_eq!(dependency_order(&p), vec!["web"]);
    }

    #[test]
    fn dependency_levels_group_services_whose_dependencies_came_before() {
        let p = project(
            "services:\n  db: {image: x}\n  cache: {image: x}\n  api: {image: x, depends_on: [db, cache]}\n  worker: {image: x, depends_on: [db]}\n  web: {image: x, depends_on: [api]}\n",
        );
        let order = dependency_order(&p);
        let levels = dependency_levels(&p, &order);
        assert_eq!(
            levels,
            vec![
                vec!["cache".to_string(), "db".to_string()],
                vec!["api".to_string(), "worker".to_string()],
                vec!["web".to_string()],
            ]
        );
        // Only the services asked for: a dependency left out does not add a level.
        let levels = dependency_levels(&p, &["web".to_string()]);
        assert_eq!(levels, vec![vec!["web".to_string()]]);
    }
}
