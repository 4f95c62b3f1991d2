//! Runs the compose corpus in `testdata/compose/`:
//! - `valid/<case>/`: `compose.yaml` (and whatever else the case needs), an optional
//!   `args` file (`-f FILE`, `-p NAME`, `--env-file FILE`, `--profile P`, `service S`,
//!   `env K=V`, one per line) and `expected.yaml`, the `config` output with the case
//!   directory written as `$DIR`;
//! - `broken/<case>.yaml` (or `broken/<case>/` with `args`) and `<case>.err`: the
//!   exact error message, with the case directory as `$DIR`.
//!
//! `CORRAL_BLESS=1` rewrites the expected files from the current output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use corral_compose::{load, to_yaml, FsSource, LoadOptions};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/compose")
}

fn options(dir: &Path) -> LoadOptions {
    let mut opts = LoadOptions {
        working_dir: dir.to_path_buf(),
        ..LoadOptions::default()
    };
    opts.environment
        .insert("HOME".to_string(), "/home/user".to_string());
    let Ok(args) = std::fs::read_to_string(dir.join("args")) else {
        return opts;
    };
    for line in args.lines().filter(|l| !l.trim().is_empty()) {
        let (flag, value) = line.split_once(' ').unwrap_or((line, ""));
        match flag {
            "-f" => opts.files.push(PathBuf::from(value)),
            "-p" => opts.project_name = Some(value.to_string()),
            "--env-file" => opts.env_files.push(PathBuf::from(value)),
            "--profile" => opts.profiles.push(value.to_string()),
            "service" => opts.enabled_services.push(value.to_string()),
            "env" => {
                let (k, v) = value.split_once('=').unwrap_or((value, ""));
                opts.environment.insert(k.to_string(), v.to_string());
            }
            other => panic!("{}: unknown args line {other:?}", dir.display()),
        }
    }
    opts
}

fn bless() -> bool {
    std::env::var_os("CORRAL_BLESS").is_some()
}

fn canonical_dir(dir: &Path) -> String {
    corral_compose::lexical_clean(dir).display().to_string()
}

#[test]
fn valid_projects_resolve_to_their_expected_config() {
    let mut failures = Vec::new();
    let mut count = 0;
    let mut entries: Vec<_> = std::fs::read_dir(corpus().join("valid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for dir in entries {
        count += 1;
        let loaded = match load(&options(&dir), &FsSource) {
            Ok(l) => l,
            Err(e) => {
                failures.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        let yaml = to_yaml(&loaded.project)
            .unwrap()
            .replace(&canonical_dir(&dir), "$DIR");
        let expected_path = dir.join("expected.yaml");
        if bless() {
            std::fs::write(&expected_path, &yaml).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} is missing", expected_path.display()));
        if yaml != expected {
            failures.push(format!(
                "{}: config differs\n--- expected\n{expected}\n--- actual\n{yaml}",
                dir.display()
            ));
        }
    }
    assert!(count >= 5, "corpus not found");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn broken_files_fail_with_their_expected_error() {
    let mut failures = Vec::new();
    let mut cases: BTreeMap<String, (PathBuf, LoadOptions)> = BTreeMap::new();
    let root = corpus().join("broken");
    for e in std::fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            let opts = options(&p);
            cases.insert(name, (p, opts));
        } else if p.extension().is_some_and(|x| x == "yaml") {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            let mut opts = options(&root);
            opts.files = vec![p.clone()];
            opts.project_name = Some("broken".to_string());
            cases.insert(name, (p, opts));
        }
    }
    assert!(cases.len() >= 10, "corpus not found");
    for (name, (path, opts)) in cases {
        let dir = if path.is_dir() {
            path.clone()
        } else {
            root.clone()
        };
        let got = match load(&opts, &FsSource) {
            Ok(_) => {
                failures.push(format!("{name}: loaded without error"));
                continue;
            }
            Err(e) => e.to_string().replace(&canonical_dir(&dir), "$DIR"),
        };
        let err_path = root.join(format!("{name}.err"));
        if bless() {
            std::fs::write(&err_path, format!("{got}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&err_path)
            .unwrap_or_else(|_| panic!("{} is missing", err_path.display()));
        if got != expected.trim_end() {
            failures.push(format!(
                "{name}:\n  expected: {}\n  actual:   {got}",
                expected.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A cheap stand-in for a fuzzer: thousands of mutated corpus files (YAML
/// punctuation inserted, bytes dropped, slices repeated) must load or fail with an
/// error, never panic.
#[test]
fn mutated_corpus_files_never_panic() {
    use corral_compose::MemSource;
    let mut files: Vec<String> = Vec::new();
    for sub in ["valid", "broken"] {
        for e in std::fs::read_dir(corpus().join(sub)).unwrap() {
            let p = e.unwrap().path();
            let f = if p.is_dir() {
                p.join("compose.yaml")
            } else {
                p
            };
            // The alias bomb takes its whole budget each time; one run of it is enough.
            let bomb = f.file_name().is_some_and(|n| n == "billion-laughs.yaml");
            if f.extension().is_some_and(|x| x == "yaml") && !bomb {
                if let Ok(t) = std::fs::read_to_string(&f) {
                    files.push(t);
                }
            }
        }
    }
    assert!(files.len() > 10);
    let alphabet = b":{}[]-&*$'\"\n #!|>,?~0";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut loaded = 0;
    for text in &files {
        for _ in 0..100 {
            let mut b = text.clone().into_bytes();
            for _ in 0..1 + next() % 3 {
                if b.is_empty() {
                    break;
                }
                let i = usize::try_from(next() % b.len() as u64).unwrap();
                match next() % 3 {
                    0 => b[i] = alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap()],
                    1 => {
                        b.remove(i);
                    }
                    _ => {
                        let end = (i + 1 + usize::try_from(next() % 16).unwrap()).min(b.len());
                        let slice = b[i..end].to_vec();
                        b.splice(i..i, slice);
                    }
                }
            }
            let text = String::from_utf8_lossy(&b).into_owned();
            let src = MemSource::new().with_file("/p/compose.yaml", text);
            let opts = LoadOptions {
                working_dir: PathBuf::from("/p"),
                ..LoadOptions::default()
            };
            if load(&opts, &src).is_ok() {
                loaded += 1;
            }
        }
    }
    // Some mutations are harmless (inside comments or strings).
    assert!(loaded > 0);
}
