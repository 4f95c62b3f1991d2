//! The build context on disk: unpacking the request's tar, `.dockerignore`, resolving
//! `COPY` sources inside it, and the tars the builder puts into containers.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::Digest as _;
use tokio::io::AsyncWriteExt;

use super::ignore::{self, Ignore};
use super::plan::BuildError;
use crate::api::BoxRead;

/// Unpacks the context tar (plain or gzip) from `body` into a new temporary directory.
///
/// # Errors
/// A body that is not a (gzipped) tar.
pub async fn unpack_context(mut body: BoxRead) -> Result<tempfile::TempDir, BuildError> {
    let bad = |e: io::Error| BuildError::invalid(format!("failed to read the build context: {e}"));
    let dir = tempfile::Builder::new()
        .prefix("corral-build-")
        .tempdir()
        .map_err(bad)?;
    let archive = dir.path().join(".context.tar");
    let mut f = tokio::fs::File::create(&archive).await.map_err(bad)?;
    tokio::io::copy(&mut body, &mut f).await.map_err(bad)?;
    f.flush().await.map_err(bad)?;
    drop(f);
    let root = dir.path().join("ctx");
    let (a, r) = (archive.clone(), root.clone());
    tokio::task::spawn_blocking(move || -> io::Result<()> {
        std::fs::create_dir(&r)?;
        let mut f = File::open(&a)?;
        let mut head = [0u8; 2];
        let n = f.read(&mut head)?;
        f.rewind()?;
        if n == 0 {
            return Ok(());
        }
        let reader: Box<dyn Read> = if head == [0x1f, 0x8b] {
            Box::new(flate2::read::GzDecoder::new(io::BufReader::new(f)))
        } else {
            Box::new(io::BufReader::new(f))
        };
        let mut ar = tar::Archive::new(reader);
        ar.set_preserve_permissions(true);
        ar.set_preserve_mtime(true);
        ar.set_overwrite(true);
        ar.unpack(&r)?;
        std::fs::remove_file(&a)
    })
    .await
    .map_err(|e| BuildError::failed(e.to_string()))?
    .map_err(bad)?;
    Ok(dir)
}

/// An unpacked context with its `.dockerignore`.
pub(super) struct Context {
    root: PathBuf,
    ignore: Ignore,
}

/// One `COPY` source.
pub(super) enum Source {
    /// A path in the context (absolute on the host) and its base name.
    Path(PathBuf, String),
    /// A tar of one path read out of a container (`COPY --from`).
    Tar(Vec<u8>),
}

impl Context {
    /// The context unpacked under `dir` (as [`unpack_context`] made it).
    pub(super) fn open(dir: &Path) -> Result<Context, BuildError> {
        let root = dir.join("ctx");
        let root = if root.is_dir() { root } else { dir.to_owned() };
        let root = root
            .canonicalize()
            .map_err(|e| BuildError::failed(e.to_string()))?;
        let ignore = std::fs::read_to_string(root.join(".dockerignore"))
            .map(|t| Ignore::parse(&t))
            .unwrap_or_default();
        Ok(Context { root, ignore })
    }

    /// Reads the Dockerfile `name`, then removes what `.dockerignore` excludes from the
    /// context (the Dockerfile itself is read even when excluded, as dockerd does).
    pub(super) fn dockerfile(&self, name: &str) -> Result<String, BuildError> {
        let missing = || BuildError::invalid(format!("Cannot locate specified Dockerfile: {name}"));
        let rel = ignore::clean(name);
        if rel.is_empty() {
            return Err(missing());
        }
        let path = self.inside(&rel).ok_or_else(missing)?;
        let text = std::fs::read_to_string(&path).map_err(|_| missing())?;
        self.prune(&self.root, "")
            .map_err(|e| BuildError::failed(format!("applying .dockerignore: {e}")))?;
        Ok(text)
    }

    fn prune(&self, dir: &Path, rel: &str) -> io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let ft = e.file_type()?;
            if self.ignore.excluded(&r) {
                if ft.is_dir() {
                    // An exception below may keep part of it.
                    self.prune(&e.path(), &r)?;
                    if std::fs::read_dir(e.path())?.next().is_none() {
                        std::fs::remove_dir(e.path())?;
                    }
                } else {
                    std::fs::remove_file(e.path())?;
                }
            } else if ft.is_dir() {
                self.prune(&e.path(), &r)?;
            }
        }
        Ok(())
    }

    /// The host path of context-relative `rel` if its parent resolves inside the context.
    fn inside(&self, rel: &str) -> Option<PathBuf> {
        let p = self.root.join(rel);
        let parent = p.parent()?.canonicalize().ok()?;
        parent
            .starts_with(&self.root)
            .then(|| parent.join(p.file_name().unwrap_or_default()))
    }

    /// The sources of a `COPY`/`ADD`: paths, or globs matched against the context.
    pub(super) fn sources(&self, kw: &str, srcs: &[String]) -> Result<Vec<Source>, BuildError> {
        let mut out = Vec::new();
        for s in srcs {
            // Leaving the context with `..` is refused before cleaning hides it.
            let mut depth: i64 = 0;
            for part in s.trim_start_matches('/').split('/') {
                match part {
                    "" | "." => {}
                    ".." => depth -= 1,
                    _ => depth += 1,
                }
                if depth < 0 {
                    return Err(BuildError::failed(format!(
                        "Forbidden path outside the build context: {s} ()"
                    )));
                }
            }
            let rel = ignore::clean(s);
            if ignore::has_glob(&rel) {
                let pat: Vec<String> = rel.split('/').map(str::to_owned).collect();
                let mut hits = Vec::new();
                self.glob(&self.root, &[], &pat, &mut hits);
                hits.sort();
                if hits.is_empty() {
                    return Err(BuildError::failed(format!(
                        "{kw} failed: no source files were specified"
                    )));
                }
                for h in hits {
                    let name = h.rsplit('/').next().unwrap_or(&h).to_owned();
                    out.push(Source::Path(self.root.join(&h), name));
                }
                continue;
            }
            let path = if rel.is_empty() {
                Some(self.root.clone())
            } else {
                self.inside(&rel)
            };
            let path = path.filter(|p| p.symlink_metadata().is_ok()).ok_or_else(|| {
                BuildError::failed(format!(
                    "{kw} failed: file not found in build context or excluded by .dockerignore: stat {rel}: file does not exist"
                ))
            })?;
            let name = rel.rsplit('/').next().unwrap_or(&rel).to_owned();
            out.push(Source::Path(path, name));
        }
        Ok(out)
    }

    fn glob(&self, dir: &Path, rel: &[String], pat: &[String], hits: &mut Vec<String>) {
        let Some((first, rest)) = pat.split_first() else {
            return;
        };
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !ignore::glob(first, &name) {
                continue;
            }
            let mut r = rel.to_vec();
            r.push(name);
            if rest.is_empty() {
                hits.push(r.join("/"));
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                self.glob(&e.path(), &r, rest, hits);
            }
        }
    }
}

fn header(
    kind: tar::EntryType,
    mode: u32,
    mtime: u64,
    owner: (u64, u64),
    size: u64,
) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode & 0o7777);
    h.set_mtime(mtime);
    h.set_uid(owner.0);
    h.set_gid(owner.1);
    h.set_size(size);
    h
}

/// A tar of directories (absolute paths), each 0755 and owned by `owner`.
pub(super) fn dirs_tar(dirs: &[String], owner: (u64, u64)) -> io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for d in dirs {
        let mut h = header(tar::EntryType::Directory, 0o755, now, owner, 0);
        b.append_data(
            &mut h,
            format!("{}/", d.trim_start_matches('/')),
            io::empty(),
        )?;
    }
    b.into_inner()
}

fn join(dest: &str, name: &str) -> String {
    let d = dest.trim_matches('/');
    if d.is_empty() {
        name.to_owned()
    } else if name.is_empty() {
        d.to_owned()
    } else {
        format!("{d}/{name}")
    }
}

/// Appends the host tree at `src` as `target` (relative), recursing into directories.
fn append_tree(
    b: &mut tar::Builder<File>,
    src: &Path,
    target: &str,
    owner: (u64, u64),
) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = src.symlink_metadata()?;
    let mtime = u64::try_from(m.mtime()).unwrap_or(0);
    let ft = m.file_type();
    if ft.is_dir() {
        if !target.is_empty() {
            let mut h = header(tar::EntryType::Directory, m.mode(), mtime, owner, 0);
            b.append_data(&mut h, format!("{target}/"), io::empty())?;
        }
        let mut names: Vec<_> = std::fs::read_dir(src)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            let child = join(target, &n.to_string_lossy());
            append_tree(b, &src.join(&n), &child, owner)?;
        }
    } else if ft.is_symlink() {
        let link = std::fs::read_link(src)?;
        let mut h = header(tar::EntryType::Symlink, 0o777, mtime, owner, 0);
        b.append_link(&mut h, target, link)?;
    } else if ft.is_file() {
        let mut h = header(tar::EntryType::Regular, m.mode(), mtime, owner, m.len());
        b.append_data(&mut h, target, File::open(src)?)?;
    }
    Ok(())
}

/// Whether the file starts like a tar (plain or gzip) that `ADD` extracts.
fn archive_kind(path: &Path) -> io::Result<Option<bool>> {
    let mut f = File::open(path)?;
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        let k = f.read(&mut head[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    if n >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        return Ok(Some(true));
    }
    if n >= 262 && &head[257..262] == b"ustar" {
        return Ok(Some(false));
    }
    Ok(None)
}

/// Re-roots the entries of `ar` under `dest` (dropping the first `strip` path elements).
fn append_archive<R: Read>(
    b: &mut tar::Builder<File>,
    ar: &mut tar::Archive<R>,
    dest: &str,
    strip: usize,
    single_target: Option<&str>,
    owner: Option<(u64, u64)>,
) -> io::Result<()> {
    for e in ar.entries()? {
        let mut e = e?;
        let path = e.path()?.to_string_lossy().into_owned();
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") {
            continue;
        }
        let target = match single_target {
            Some(t) => t.to_owned(),
            None if parts.len() <= strip => {
                if strip > 0 {
                    continue;
                }
                dest.trim_matches('/').to_owned()
            }
            None => join(dest, &parts[strip..].join("/")),
        };
        if target.is_empty() {
            continue;
        }
        let mut h = e.header().clone();
        if let Some(o) = owner {
            h.set_uid(o.0);
            h.set_gid(o.1);
        }
        match h.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = e.link_name()?.map(|l| l.into_owned()).unwrap_or_default();
                if h.entry_type() == tar::EntryType::Link {
                    // Hard links inside the re-rooted tree.
                    let lp = link.to_string_lossy().into_owned();
                    let lparts: Vec<&str> = lp.split('/').filter(|p| !p.is_empty()).collect();
                    let ltarget = join(dest, &lparts[strip.min(lparts.len())..].join("/"));
                    b.append_link(&mut h, &target, ltarget)?;
                } else {
                    b.append_link(&mut h, &target, link)?;
                }
            }
            tar::EntryType::Directory => {
                b.append_data(&mut h, format!("{target}/"), io::empty())?;
            }
            _ => {
                b.append_data(&mut h, &target, &mut e)?;
            }
        }
    }
    Ok(())
}

/// The tar a `COPY`/`ADD` puts at `/`, and a digest of it for the history.
pub(super) fn copy_tar(
    sources: &[Source],
    dest: &str,
    into_dir: bool,
    owner: Option<(u64, u64)>,
    add: bool,
    parents: &[String],
) -> io::Result<(File, String)> {
    let file = tempfile::tempfile()?;
    let mut b = tar::Builder::new(file);
    let root_owner = owner.unwrap_or((0, 0));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for d in parents {
        let mut h = header(tar::EntryType::Directory, 0o755, now, root_owner, 0);
        b.append_data(
            &mut h,
            format!("{}/", d.trim_start_matches('/')),
            io::empty(),
        )?;
    }
    let dest_dir = dest.trim_end_matches('/');
    for s in sources {
        match s {
            Source::Path(p, name) => {
                let m = p.symlink_metadata()?;
                if m.is_dir() {
                    append_tree(&mut b, p, dest_dir.trim_start_matches('/'), root_owner)?;
                    continue;
                }
                if add && m.is_file() {
                    if let Some(gz) = archive_kind(p)? {
                        let f = io::BufReader::new(File::open(p)?);
                        let r: Box<dyn Read> = if gz {
                            Box::new(flate2::read::GzDecoder::new(f))
                        } else {
                            Box::new(f)
                        };
                        let mut ar = tar::Archive::new(r);
                        append_archive(&mut b, &mut ar, dest_dir, 0, None, owner)?;
                        continue;
                    }
                }
                let target = if into_dir {
                    join(dest_dir, name)
                } else {
                    dest_dir.trim_start_matches('/').to_owned()
                };
                append_tree(&mut b, p, &target, root_owner)?;
            }
            Source::Tar(buf) => {
                let first_is_dir = {
                    let mut ar = tar::Archive::new(io::Cursor::new(buf));
                    let mut entries = ar.entries()?;
                    match entries.next() {
                        Some(e) => e?.header().entry_type() == tar::EntryType::Directory,
                        None => continue,
                    }
                };
                let mut ar = tar::Archive::new(io::Cursor::new(buf));
                if first_is_dir {
                    append_archive(&mut b, &mut ar, dest_dir, 1, None, owner)?;
                } else {
                    let single = if into_dir {
                        None
                    } else {
                        Some(dest_dir.trim_start_matches('/').to_owned())
                    };
                    append_archive(&mut b, &mut ar, dest_dir, 0, single.as_deref(), owner)?;
                }
            }
        }
    }
    let mut file = b.into_inner()?;
    file.flush()?;
    file.rewind()?;
    let mut hasher = sha2::Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    file.rewind()?;
    let digest = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    Ok((file, digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(f: File) -> Vec<String> {
        let mut ar = tar::Archive::new(f);
        ar.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn copy_tar_places_files_and_directory_contents() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("ctx/src/sub")).unwrap();
        std::fs::write(root.join("ctx/src/a.txt"), "a").unwrap();
        std::fs::write(root.join("ctx/src/sub/b.txt"), "b").unwrap();
        std::fs::write(root.join("ctx/one"), "1").unwrap();
        std::fs::write(root.join("ctx/.dockerignore"), "src/sub\n").unwrap();
        std::fs::write(root.join("ctx/Dockerfile"), "FROM x\n").unwrap();
        let ctx = Context::open(root).unwrap();
        assert_eq!(ctx.dockerfile("Dockerfile").unwrap(), "FROM x\n");
        let srcs = ctx.sources("COPY", &["src".into()]).unwrap();
        let (f, _) = copy_tar(&srcs, "/app", true, None, false, &[]).unwrap();
        assert_eq!(
            names(f),
            ["app/", "app/a.txt"],
            "the ignored subdir is gone"
        );
        let srcs = ctx.sources("COPY", &["one".into()]).unwrap();
        let (f, _) = copy_tar(&srcs, "/etc/renamed", false, None, false, &[]).unwrap();
        assert_eq!(names(f), ["etc/renamed"]);
        let srcs = ctx.sources("COPY", &["src/*.txt".into()]).unwrap();
        let (f, _) = copy_tar(&srcs, "/d/", true, None, false, &[]).unwrap();
        assert_eq!(names(f), ["d/a.txt"]);
        let e = ctx
            .sources("COPY", &["../etc/passwd".into()])
            .err()
            .unwrap();
        assert!(
            e.message
                .starts_with("Forbidden path outside the build context"),
            "{e}"
        );
        let e = ctx
            .sources("COPY", &["src/sub/b.txt".into()])
            .err()
            .unwrap();
        assert!(e.message.contains("file not found in build context"), "{e}");
        assert!(
            ctx.dockerfile("Nope").err().unwrap().message
                == "Cannot locate specified Dockerfile: Nope"
        );
    }
}
