//! The loading pipeline: environment (`.env`, `--env-file`, process env) → files
//! (`-f`, `COMPOSE_FILE`, default names) → parse → interpolate → `extends` → merge →
//! typed model → project name, paths, default network, profiles → validation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use crate::de::from_node;
use crate::dotenv;
use crate::error::{Diagnostic, Error, Result};
use crate::interpolate::interpolate_tree;
use crate::merge::{merge_files, merge_service, normalize_file, normalize_service};
use crate::model::{Project, ProjectFile};
use crate::node::{parse_yaml, Loc, Node, Value};
use crate::source::Source;
use crate::validate;

/// The default file names, in the order compose looks for them.
pub const DEFAULT_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// What to load: the command line and the process environment.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The current directory (absolute).
    pub working_dir: PathBuf,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `-f` files in order (empty: `COMPOSE_FILE`, then the default names).
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file` (empty: `<project dir>/.env` when present).
    pub env_files: Vec<PathBuf>,
    /// `--profile` (added to `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    /// The process environment.
    pub environment: BTreeMap<String, String>,
    /// Services named on the command line: enabled whatever their profiles, with
    /// their dependencies.
    pub enabled_services: Vec<String>,
}

/// A loaded project and what the user should be warned about.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The project.
    pub project: Project,
    /// Warnings (unset variables defaulting to "", ...), one line each.
    pub warnings: Vec<String>,
    /// The variables used for interpolation (`.env` overridden by the environment).
    pub variables: BTreeMap<String, String>,
}

struct Loader<'a> {
    src: &'a dyn Source,
    vars: BTreeMap<String, String>,
    /// Display names of files, indexed by `Loc::file`.
    files: Vec<String>,
    unset: BTreeSet<String>,
}

/// Loads and validates a project. Nothing outside `src` is read.
pub fn load(opts: &LoadOptions, src: &dyn Source) -> Result<Loaded> {
    let cwd = &lexical_clean(&opts.working_dir);
    let abs = |p: &Path| lexical_clean(&cwd.join(p));
    let mut project_dir = opts
        .project_directory
        .as_deref()
        .map(abs)
        .or_else(|| {
            opts.files
                .first()
                .and_then(|f| abs(f).parent().map(Path::to_path_buf))
        })
        .unwrap_or_else(|| cwd.clone());

    // Variables: the .env file (or --env-file), overridden by the process environment.
    let os = &opts.environment;
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let env_files: Vec<(PathBuf, bool)> = if opts.env_files.is_empty() {
        vec![(project_dir.join(".env"), false)]
    } else {
        opts.env_files.iter().map(|p| (abs(p), true)).collect()
    };
    for (path, required) in env_files {
        if !required && !src.exists(&path) {
            continue;
        }
        let text = src.read(&path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        let lookup = |k: &str| os.get(k).cloned().or_else(|| vars.get(k).cloned());
        let parsed = dotenv::parse(&text, &lookup).map_err(|e| {
            Error::EnvFile(Diagnostic {
                file: path.display().to_string(),
                line: e.line,
                column: 0,
                path: String::new(),
                message: e.message,
            })
        })?;
        vars.extend(parsed);
    }
    vars.extend(os.iter().map(|(k, v)| (k.clone(), v.clone())));

    // Files: -f, COMPOSE_FILE, or the first default name that exists.
    let files: Vec<PathBuf> = if !opts.files.is_empty() {
        opts.files.iter().map(|f| abs(f)).collect()
    } else if let Some(list) = vars.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = vars
            .get("COMPOSE_PATH_SEPARATOR")
            .and_then(|s| s.chars().next())
            .unwrap_or(':');
        let v: Vec<PathBuf> = list
            .split(sep)
            .filter(|s| !s.is_empty())
            .map(|f| lexical_clean(&project_dir.join(f)))
            .collect();
        if opts.project_directory.is_none() {
            if let Some(p) = v.first().and_then(|f| f.parent()) {
                project_dir = p.to_path_buf();
            }
        }
        v
    } else {
        let found = DEFAULT_FILES
            .iter()
            .map(|n| project_dir.join(n))
            .find(|p| src.exists(p))
            .ok_or_else(|| Error::NoFile(DEFAULT_FILES.join(", ")))?;
        let mut v = vec![found.clone()];
        // compose.override.yaml / docker-compose.override.yml beside it.
        let stem = found
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit_once('.'))
            .map(|(s, ext)| format!("{s}.override.{ext}"));
        if let Some(o) = stem.map(|s| project_dir.join(s)) {
            if src.exists(&o) {
                v.push(o);
            }
        }
        v
    };

    let mut loader = Loader {
        src,
        vars,
        files: Vec::new(),
        unset: BTreeSet::new(),
    };
    let mut merged: Option<Node> = None;
    for path in &files {
        let mut root = loader.read_file(path)?;
        loader.resolve_includes(&mut root, path, 0)?;
        loader.resolve_extends(&mut root, path, &mut Vec::new())?;
        match merged.as_mut() {
            None => merged = Some(root),
            Some(m) => merge_files(m, root),
        }
    }
    let Some(mut merged) = merged else {
        return Err(Error::NoFile(DEFAULT_FILES.join(", ")));
    };
    crate::merge::strip_merge_tags(&mut merged);
    if !matches!(merged.value, Value::Map(_)) {
        return Err(loader.invalid(merged.loc, "", "a compose file must be a mapping"));
    }
    let extensions = take_extensions(&mut merged);
    let file: ProjectFile = from_node(&merged, "").map_err(|e| e.into_error(&loader.files))?;

    let name = project_name(opts, &loader, &file, &project_dir, &merged)?;
    let mut project = Project {
        name,
        services: file.services,
        networks: file.networks,
        volumes: file.volumes,
        secrets: file.secrets,
        configs: file.configs,
        extensions,
        working_dir: project_dir.display().to_string(),
        config_files: files.iter().map(|f| f.display().to_string()).collect(),
        disabled_services: BTreeMap::new(),
    };
    let ctx = validate::Ctx {
        root: &merged,
        files: &loader.files,
    };
    resolve(&mut project, &loader, &project_dir, &ctx)?;
    apply_profiles(&mut project, opts, &loader.vars);
    validate::project(&project, &ctx)?;

    let mut warnings: Vec<String> = loader
        .unset
        .iter()
        .map(|v| format!("The \"{v}\" variable is not set. Defaulting to a blank string."))
        .collect();
    if file.version.is_some() {
        warnings.push(
            "the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion"
                .to_string(),
        );
    }
    Ok(Loaded {
        project,
        warnings,
        variables: loader.vars,
    })
}

// === impl Loader ===

impl Loader<'_> {
    fn invalid(&self, loc: Loc, path: &str, message: impl Into<String>) -> Error {
        Error::Invalid(Diagnostic {
            file: self.files.get(loc.file).cloned().unwrap_or_default(),
            line: loc.line,
            column: loc.column,
            path: path.to_string(),
            message: message.into(),
        })
    }

    /// Reads, parses, interpolates and normalises one file.
    fn read_file(&mut self, path: &Path) -> Result<Node> {
        let text = self.src.read(path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })?;
        let idx = self.files.len();
        let display = path.display().to_string();
        self.files.push(display.clone());
        let mut root = parse_yaml(&text, idx, &display)?;
        let vars = &self.vars;
        let lookup = |k: &str| vars.get(k).cloned();
        interpolate_tree(&mut root, &lookup, &mut self.unset, "").map_err(|(e, loc, p)| {
            Error::Interpolation(Diagnostic {
                file: display.clone(),
                line: loc.line,
                column: loc.column,
                path: p,
                message: e.to_string(),
            })
        })?;
        normalize_file(&mut root);
        Ok(root)
    }

    /// Replaces the top-level `include` by the resources of the included files
    /// (each with its own `include`s and `extends` resolved and its relative paths
    /// made absolute). A resource defined both here and in an included file is an
    /// error, as the specification says.
    fn resolve_includes(&mut self, root: &mut Node, path: &Path, depth: usize) -> Result<()> {
        let Some(inc) = root.remove("include") else {
            return Ok(());
        };
        if depth >= 8 {
            return Err(self.invalid(
                inc.loc,
                "include",
                "includes nested more than 8 deep (a cycle?)",
            ));
        }
        let Value::Seq(items) = inc.value else {
            return Err(self.invalid(inc.loc, "include", "include must be a list"));
        };
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        for (i, item) in items.into_iter().enumerate() {
            let ipath = format!("include[{i}]");
            let paths: Vec<String> = match &item.value {
                Value::Str(s) => vec![s.clone()],
                Value::Map(m) => {
                    if let Some((k, _)) = m.iter().find(|(k, _)| k.name != "path") {
                        return Err(self.invalid(
                            k.loc,
                            &format!("{ipath}.{}", k.name),
                            format!("include option \"{}\" is not supported", k.name),
                        ));
                    }
                    match item.get("path").map(|p| &p.value) {
                        Some(Value::Str(s)) => vec![s.clone()],
                        Some(Value::Seq(v)) => {
                            v.iter().filter_map(Node::as_scalar_string).collect()
                        }
                        _ => return Err(self.invalid(item.loc, &ipath, "include needs a path")),
                    }
                }
                _ => {
                    return Err(self.invalid(
                        item.loc,
                        &ipath,
                        "include entries are paths or mappings with path",
                    ))
                }
            };
            let mut included: Option<Node> = None;
            for p in paths {
                let file = lexical_clean(&dir.join(&p));
                let mut r = self.read_file(&file).map_err(|e| match e {
                    Error::Read { source, .. } => self.invalid(
                        item.loc,
                        &ipath,
                        format!("cannot read included file {}: {source}", file.display()),
                    ),
                    e => e,
                })?;
                self.resolve_includes(&mut r, &file, depth + 1)?;
                self.resolve_extends(&mut r, &file, &mut Vec::new())?;
                crate::paths::rebase_file(&mut r, file.parent().unwrap_or(Path::new("/")));
                match included.as_mut() {
                    None => included = Some(r),
                    Some(m) => merge_files(m, r),
                }
            }
            let Some(included) = included else { continue };
            for section in ["services", "networks", "volumes", "secrets", "configs"] {
                let Some(Node {
                    value: Value::Map(entries),
                    ..
                }) = included.get(section).cloned()
                else {
                    continue;
                };
                if root.get(section).is_none() {
                    root.set(section, Node::new(Value::Map(Vec::new())));
                }
                let Some(Node {
                    value: Value::Map(target),
                    ..
                }) = root.get_mut(section)
                else {
                    continue;
                };
                for (k, v) in entries {
                    if let Some((own, _)) = target.iter().find(|(t, _)| t.name == k.name) {
                        let loc = own.loc;
                        return Err(self.invalid(
                            loc,
                            &format!("{section}.{}", k.name),
                            format!(
                                "{} \"{}\" is also defined by included file(s) of {ipath}",
                                &section[..section.len() - 1],
                                k.name
                            ),
                        ));
                    }
                    target.push((k, v));
                }
            }
        }
        Ok(())
    }

    /// Replaces every service's `extends` by the merge of its base and itself.
    fn resolve_extends(
        &mut self,
        root: &mut Node,
        path: &Path,
        stack: &mut Vec<(PathBuf, String)>,
    ) -> Result<()> {
        let names: Vec<String> = match root.get("services").map(|s| &s.value) {
            Some(Value::Map(m)) => m.iter().map(|(k, _)| k.name.clone()).collect(),
            _ => return Ok(()),
        };
        for name in names {
            self.resolve_service(root, path, &name, stack)?;
        }
        Ok(())
    }

    fn resolve_service(
        &mut self,
        root: &mut Node,
        path: &Path,
        name: &str,
        stack: &mut Vec<(PathBuf, String)>,
    ) -> Result<()> {
        let Some(svc) = root.get("services").and_then(|s| s.get(name)) else {
            return Ok(());
        };
        let Some(ext) = svc.get("extends").cloned() else {
            return Ok(());
        };
        let spath = format!("services.{name}.extends");
        let (base_name, base_file) = match &ext.value {
            Value::Str(s) => (s.clone(), None),
            Value::Map(_) => {
                let service = ext
                    .get("service")
                    .and_then(Node::as_scalar_string)
                    .ok_or_else(|| self.invalid(ext.loc, &spath, "extends needs a service"))?;
                if let Value::Map(m) = &ext.value {
                    if let Some((k, _)) = m
                        .iter()
                        .find(|(k, _)| k.name != "service" && k.name != "file")
                    {
                        return Err(self.invalid(
                            k.loc,
                            &format!("{spath}.{}", k.name),
                            format!("unknown key \"{}\"", k.name),
                        ));
                    }
                }
                (service, ext.get("file").and_then(Node::as_scalar_string))
            }
            _ => {
                return Err(self.invalid(
                    ext.loc,
                    &spath,
                    "extends must be a service name or a mapping",
                ))
            }
        };
        let me = (path.to_path_buf(), name.to_string());
        if stack.contains(&me) {
            let chain: Vec<String> = stack.iter().map(|(_, s)| s.clone()).collect();
            return Err(self.invalid(
                ext.loc,
                &spath,
                format!("circular extends: {} -> {name}", chain.join(" -> ")),
            ));
        }
        stack.push(me);
        let base = match base_file {
            None => {
                self.resolve_service(root, path, &base_name, stack)?;
                root.get("services")
                    .and_then(|s| s.get(&base_name))
                    .cloned()
                    .ok_or_else(|| {
                        self.invalid(
                            ext.loc,
                            &spath,
                            format!("cannot extend service \"{base_name}\": no such service"),
                        )
                    })?
            }
            Some(file) => {
                let dir = path.parent().unwrap_or(Path::new("/"));
                let other = lexical_clean(&dir.join(&file));
                let mut other_root = self.read_file(&other).map_err(|e| match e {
                    Error::Read { source, .. } => self.invalid(
                        ext.loc,
                        &spath,
                        format!("cannot read extended file {}: {source}", other.display()),
                    ),
                    e => e,
                })?;
                self.resolve_service(&mut other_root, &other, &base_name, stack)?;
                let mut base = other_root
                    .get("services")
                    .and_then(|s| s.get(&base_name))
                    .cloned()
                    .ok_or_else(|| {
                        self.invalid(
                            ext.loc,
                            &spath,
                            format!(
                                "cannot extend service \"{base_name}\": not found in {}",
                                other.display()
                            ),
                        )
                    })?;
                // Its relative paths are relative to its own file.
                crate::paths::rebase_service(&mut base, other.parent().unwrap_or(Path::new("/")));
                base
            }
        };
        stack.pop();
        let Some(svc) = root.get_mut("services").and_then(|s| s.get_mut(name)) else {
            return Ok(());
        };
        let mut own = svc.clone();
        own.remove("extends");
        let mut result = base;
        result.remove("extends");
        normalize_service(&mut result);
        merge_service(&mut result, own);
        *svc = result;
        Ok(())
    }
}

/// Removes `x-` keys: the top-level ones are returned (they appear in `config`), the
/// ones inside services, networks, volumes, secrets and configs are dropped.
fn take_extensions(root: &mut Node) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    if let Value::Map(m) = &mut root.value {
        m.retain(|(k, v)| {
            if k.name.starts_with("x-") {
                out.insert(k.name.clone(), v.to_json());
                false
            } else {
                true
            }
        });
        for (k, section) in m.iter_mut() {
            if !matches!(
                k.name.as_str(),
                "services" | "networks" | "volumes" | "secrets" | "configs"
            ) {
                continue;
            }
            if let Value::Map(entries) = &mut section.value {
                entries.retain(|(k, _)| !k.name.starts_with("x-"));
                for (_, e) in entries.iter_mut() {
                    if let Value::Map(fields) = &mut e.value {
                        fields.retain(|(k, _)| !k.name.starts_with("x-"));
                    }
                }
            }
        }
    }
    out
}

/// Compose's rule for names it derives from a directory: lower case, only
/// `[a-z0-9_-]` kept, no leading `_` or `-`.
pub fn normalize_project_name(s: &str) -> String {
    let s: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    s.trim_start_matches(['_', '-']).to_string()
}

/// True for names compose accepts as given: `^[a-z0-9][a-z0-9_-]*$`.
pub fn is_valid_project_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn project_name(
    opts: &LoadOptions,
    loader: &Loader<'_>,
    file: &ProjectFile,
    project_dir: &Path,
    root: &Node,
) -> Result<String> {
    let explicit = |name: &str, origin: &str, loc: Loc| -> Result<String> {
        if is_valid_project_name(name) {
            Ok(name.to_string())
        } else {
            let mut e = loader.invalid(
                loc,
                if origin == "name" { "name" } else { "" },
                format!(
                    "invalid project name {name:?} (from {origin}): it must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit"
                ),
            );
            if origin != "name" {
                if let Error::Invalid(d) = &mut e {
                    d.file.clear();
                }
            }
            Err(e)
        }
    };
    if let Some(p) = opts.project_name.as_deref().filter(|s| !s.is_empty()) {
        return explicit(p, "-p", Loc::default());
    }
    if let Some(p) = loader
        .vars
        .get("COMPOSE_PROJECT_NAME")
        .filter(|s| !s.is_empty())
    {
        return explicit(p, "COMPOSE_PROJECT_NAME", Loc::default());
    }
    if let Some(n) = file.name.as_deref().filter(|s| !s.is_empty()) {
        let loc = root.get("name").map(|n| n.loc).unwrap_or_default();
        return explicit(n, "name", loc);
    }
    let base = project_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let n = normalize_project_name(base);
    if n.is_empty() {
        return Err(Error::Invalid(Diagnostic {
            file: String::new(),
            line: 0,
            column: 0,
            path: String::new(),
            message: format!(
                "project name derived from directory {:?} is empty: set one with -p or name:",
                project_dir.display()
            ),
        }));
    }
    Ok(n)
}

/// Fills what the file leaves implicit: env files, variables taken from the
/// environment, absolute paths, the default network, engine-side names.
fn resolve(
    project: &mut Project,
    loader: &Loader<'_>,
    project_dir: &Path,
    ctx: &validate::Ctx<'_>,
) -> Result<()> {
    let home = loader.vars.get("HOME").cloned();
    let absolutize = |p: &str| -> String {
        if let (Some(rest), Some(home)) = (p.strip_prefix('~'), home.as_deref()) {
            if rest.is_empty() || rest.starts_with('/') {
                return format!("{home}{rest}");
            }
        }
        lexical_clean(&project_dir.join(p)).display().to_string()
    };
    let mut uses_default = false;
    let names: BTreeSet<String> = project.services.keys().cloned().collect();
    for (name, svc) in project.services.iter_mut() {
        // env_file first, then `environment` on top, then bare names from the variables.
        let mut env: BTreeMap<String, Option<String>> = BTreeMap::new();
        for ef in svc.env_file.iter_mut() {
            let path = PathBuf::from(absolutize(&ef.path));
            ef.path = path.display().to_string();
            if !loader.src.exists(&path) {
                if ef.required {
                    let p = format!("services.{name}.env_file");
                    let loc = ctx.loc(&["services", name, "env_file"]);
                    return Err(loader.invalid(
                        loc,
                        &p,
                        format!("env file {} not found", path.display()),
                    ));
                }
                continue;
            }
            let text = loader.src.read(&path).map_err(|source| Error::Read {
                path: path.display().to_string(),
                source,
            })?;
            let lookup = |k: &str| loader.vars.get(k).cloned();
            let parsed = dotenv::parse(&text, &lookup).map_err(|e| {
                Error::EnvFile(Diagnostic {
                    file: path.display().to_string(),
                    line: e.line,
                    column: 0,
                    path: String::new(),
                    message: e.message,
                })
            })?;
            env.extend(parsed.into_iter().map(|(k, v)| (k, Some(v))));
        }
        env.extend(std::mem::take(&mut svc.environment));
        svc.environment = env
            .into_iter()
            .filter_map(|(k, v)| match v {
                Some(v) => Some((k, Some(v))),
                None => loader.vars.get(&k).cloned().map(|v| (k, Some(v))),
            })
            .collect();
        for v in svc.volumes.iter_mut() {
            if v.kind == "bind" {
                if let Some(s) = v.source.as_mut() {
                    *s = absolutize(s);
                }
            }
        }
        // `network_mode: service:x` and `links` imply a dependency, as in compose.
        let implied: Vec<String> = svc
            .network_mode
            .as_deref()
            .and_then(|m| m.strip_prefix("service:"))
            .map(str::to_string)
            .into_iter()
            .chain(
                svc.links
                    .iter()
                    .map(|l| l.split_once(':').map_or(l.as_str(), |(t, _)| t).to_string()),
            )
            .collect();
        // Unknown names are left to validation, which reports them where written.
        for d in implied.into_iter().filter(|d| names.contains(d)) {
            svc.depends_on.entry(d).or_default();
        }
        if svc.networks.is_empty() && svc.network_mode.is_none() {
            svc.networks.insert("default".to_string(), None);
        }
        if svc.networks.contains_key("default") {
            uses_default = true;
        }
    }
    if uses_default {
        project.networks.entry("default".to_string()).or_default();
    }
    let pname = project.name.clone();
    for (key, n) in project.networks.iter_mut() {
        if n.name.is_none() {
            n.name = Some(if n.external {
                key.clone()
            } else {
                format!("{pname}_{key}")
            });
        }
    }
    for (key, v) in project.volumes.iter_mut() {
        if v.name.is_none() {
            v.name = Some(if v.external {
                key.clone()
            } else {
                format!("{pname}_{key}")
            });
        }
    }
    let used: BTreeSet<(&str, String)> = project
        .services
        .values()
        .flat_map(|s| {
            s.secrets
                .iter()
                .map(|r| ("secrets", r.source.clone()))
                .chain(s.configs.iter().map(|r| ("configs", r.source.clone())))
        })
        .collect();
    for (section, objs) in [
        ("secrets", &mut project.secrets),
        ("configs", &mut project.configs),
    ] {
        for (key, o) in objs.iter_mut() {
            if let Some(f) = o.file.as_mut() {
                *f = absolutize(f);
                if used.contains(&(section, key.clone())) && !loader.src.exists(Path::new(f)) {
                    let loc = ctx.loc(&[section, key, "file"]);
                    return Err(loader.invalid(
                        loc,
                        &format!("{section}.{key}.file"),
                        format!("file {f} not found"),
                    ));
                }
            }
            if o.name.is_none() && !o.external {
                o.name = Some(format!("{pname}_{key}"));
            }
        }
    }
    Ok(())
}

fn apply_profiles(project: &mut Project, opts: &LoadOptions, vars: &BTreeMap<String, String>) {
    let mut active: BTreeSet<String> = opts.profiles.iter().cloned().collect();
    if let Some(p) = vars.get("COMPOSE_PROFILES") {
        active.extend(
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    let all = active.contains("*");
    let mut enabled: BTreeSet<String> = project
        .services
        .iter()
        .filter(|(_, s)| {
            s.profiles.is_empty() || all || s.profiles.iter().any(|p| active.contains(p))
        })
        .map(|(n, _)| n.clone())
        .collect();
    // Named services and everything they depend on are enabled.
    let mut todo: Vec<String> = opts.enabled_services.clone();
    while let Some(n) = todo.pop() {
        if let Some(s) = project.services.get(&n) {
            if enabled.insert(n.clone()) || opts.enabled_services.contains(&n) {
                todo.extend(
                    s.depends_on
                        .keys()
                        .filter(|d| !enabled.contains(*d))
                        .cloned(),
                );
            }
        }
    }
    let names: Vec<String> = project.services.keys().cloned().collect();
    for n in names {
        if !enabled.contains(&n) {
            if let Some(s) = project.services.remove(&n) {
                project.disabled_services.insert(n, s);
            }
        }
    }
}

/// Resolves `.` and `..` without touching the filesystem.
pub fn lexical_clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemSource;

    fn opts(dir: &str) -> LoadOptions {
        LoadOptions {
            working_dir: PathBuf::from(dir),
            ..LoadOptions::default()
        }
    }

    const APP: &str = "services:\n  web:\n    image: busybox:${TAG:-latest}\n";

    #[test]
    fn project_name_precedence() {
        let src = MemSource::new().with_file(
            "/srv/My App/compose.yaml",
            "name: from-file\nservices:\n  a:\n    image: x\n",
        );
        let mut o = opts("/srv/My App");
        assert_eq!(load(&o, &src).unwrap().project.name, "from-file");
        o.environment
            .insert("COMPOSE_PROJECT_NAME".into(), "from-env".into());
        assert_eq!(load(&o, &src).unwrap().project.name, "from-env");
        o.project_name = Some("from-flag".into());
        assert_eq!(load(&o, &src).unwrap().project.name, "from-flag");

        let src = MemSource::new().with_file("/srv/My App/compose.yaml", APP);
        assert_eq!(
            load(&opts("/srv/My App"), &src).unwrap().project.name,
            "myapp"
        );
        let src = MemSource::new().with_file("/srv/_x.Y/compose.yaml", APP);
        assert_eq!(load(&opts("/srv/_x.Y"), &src).unwrap().project.name, "xy");
    }

    #[test]
    fn env_file_flag_replaces_dotenv_and_environment_wins() {
        let src = MemSource::new()
            .with_file("/p/compose.yaml", APP)
            .with_file("/p/.env", "TAG=dotenv\n")
            .with_file("/p/prod.env", "TAG=prod\n");
        let image = |o: &LoadOptions| load(o, &src).unwrap().project.services["web"].image.clone();
        let mut o = opts("/p");
        assert_eq!(image(&o).as_deref(), Some("busybox:dotenv"));
        o.env_files = vec![PathBuf::from("prod.env")];
        assert_eq!(image(&o).as_deref(), Some("busybox:prod"));
        o.environment.insert("TAG".into(), "shell".into());
        assert_eq!(image(&o).as_deref(), Some("busybox:shell"));
        o.env_files = vec![PathBuf::from("missing.env")];
        assert!(matches!(load(&o, &src), Err(Error::Read { .. })));
    }

    #[test]
    fn finds_default_file_and_its_override() {
        let src = MemSource::new()
            .with_file("/p/docker-compose.yml", APP)
            .with_file(
                "/p/docker-compose.override.yml",
                "services:\n  web:\n    user: nobody\n",
            );
        let l = load(&opts("/p"), &src).unwrap();
        assert_eq!(l.project.services["web"].user.as_deref(), Some("nobody"));
        assert_eq!(
            l.project.config_files,
            vec!["/p/docker-compose.yml", "/p/docker-compose.override.yml"]
        );
        assert!(matches!(load(&opts("/empty"), &src), Err(Error::NoFile(_))));
    }

    #[test]
    fn files_are_relative_to_the_working_dir_and_set_the_project_dir() {
        let src = MemSource::new().with_file("/a/b/c.yml", APP);
        let mut o = opts("/a");
        o.files = vec![PathBuf::from("b/../b/c.yml")];
        let l = load(&o, &src).unwrap();
        assert_eq!(l.project.working_dir, "/a/b");
        assert_eq!(l.project.name, "b");
    }

    #[test]
    fn warns_about_unset_variables() {
        let src =
            MemSource::new().with_file("/p/compose.yaml", "services:\n  a:\n    image: x$NOPE\n");
        let l = load(&opts("/p"), &src).unwrap();
        assert_eq!(
            l.warnings,
            vec!["The \"NOPE\" variable is not set. Defaulting to a blank string."]
        );
    }

    #[test]
    fn warns_that_version_is_obsolete() {
        let src = MemSource::new().with_file(
            "/p/compose.yaml",
            "version: '3.8'\nservices:\n  a:\n    image: x\n",
        );
        let l = load(&opts("/p"), &src).unwrap();
        assert_eq!(l.warnings.len(), 1);
        assert!(l.warnings[0].contains("`version` is obsolete"));
    }

    #[test]
    fn profiles_disable_services_unless_named() {
        let text = "services:\n  a:\n    image: x\n  b:\n    image: x\n    profiles: [p]\n";
        let src = MemSource::new().with_file("/p/compose.yaml", text);
        let l = load(&opts("/p"), &src).unwrap();
        assert!(l.project.services.contains_key("a"));
        assert!(l.project.disabled_services.contains_key("b"));
        let mut o = opts("/p");
        o.enabled_services = vec!["b".into()];
        assert!(load(&o, &src).unwrap().project.services.contains_key("b"));
        let mut o = opts("/p");
        o.environment.insert("COMPOSE_PROFILES".into(), "p".into());
        assert!(load(&o, &src).unwrap().project.services.contains_key("b"));
    }

    #[test]
    fn config_hash_ignores_scale_but_not_config() {
        let src = MemSource::new().with_file("/p/compose.yaml", APP);
        let p = load(&opts("/p"), &src).unwrap().project;
        let web = &p.services["web"];
        let h = crate::config_hash(web);
        let mut scaled = web.clone();
        scaled.scale = Some(5);
        assert_eq!(crate::config_hash(&scaled), h);
        let mut changed = web.clone();
        changed.command = Some(vec!["true".into()]);
        assert_ne!(crate::config_hash(&changed), h);
    }

    #[test]
    fn service_environment_resolves_bare_names_and_env_files() {
        let text = "services:\n  a:\n    image: x\n    env_file: [a.env]\n    environment: [FROM_SHELL, MISSING, OVER=compose]\n";
        let src = MemSource::new()
            .with_file("/p/compose.yaml", text)
            .with_file("/p/a.env", "OVER=file\nONLY_FILE=1\n");
        let mut o = opts("/p");
        o.environment.insert("FROM_SHELL".into(), "s".into());
        let env = load(&o, &src).unwrap().project.services["a"]
            .environment
            .clone();
        let got: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("FROM_SHELL".to_string(), "s".to_string()),
                ("ONLY_FILE".to_string(), "1".to_string()),
                ("OVER".to_string(), "compose".to_string()),
            ]
        );
    }
}
