//! `cp`: copy between a container and the local filesystem through the archive
//! endpoints (`GET`/`PUT`/`HEAD /containers/{id}/archive`), with docker's naming rules.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, DownloadFromContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use clap::Args;
use futures::StreamExt;

use super::client::{api_status, from_bollard, Ctx};
use super::units;

/// `cp` arguments.
#[derive(Args, Debug)]
pub(crate) struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short = 'a', long)]
    pub(crate) archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    pub(crate) follow_link: bool,
    /// Suppress progress output during copy.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Source: CONTAINER:SRC_PATH, a local path or `-`.
    pub(crate) src: String,
    /// Destination: CONTAINER:DEST_PATH, a local path or `-`.
    pub(crate) dst: String,
}

/// One side of a copy.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `CONTAINER:PATH`.
    Container(String, String),
    /// A local path (or `-`).
    Local(String),
}

/// docker's `splitCpArg`: local when absolute or starting with `.`, else `c:path`.
pub(crate) fn split_arg(arg: &str) -> Endpoint {
    if arg.starts_with('/') || arg.starts_with('.') {
        return Endpoint::Local(arg.to_string());
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => Endpoint::Container(c.to_string(), p.to_string()),
        _ => Endpoint::Local(arg.to_string()),
    }
}

/// The last path element, ignoring a trailing `/` or `/.`.
fn base_name(p: &str) -> String {
    let t = p.trim_end_matches("/.").trim_end_matches('/');
    Path::new(t)
        .file_name()
        .map_or_else(|| t.to_string(), |n| n.to_string_lossy().to_string())
}

/// Rewrites the first component of a tar entry path from `from` to `to`, rejecting
/// entries that would escape the destination.
pub(crate) fn rebase(entry: &Path, from: &str, to: Option<&str>) -> Option<PathBuf> {
    let mut comps = entry
        .components()
        .filter(|c| !matches!(c, Component::CurDir));
    let first = comps.next()?;
    let mut out = PathBuf::new();
    match to {
        Some(t) if first.as_os_str() == from => {
            if !t.is_empty() {
                out.push(t);
            }
        }
        _ => out.push(first.as_os_str()),
    }
    for c in comps {
        match c {
            Component::Normal(n) => out.push(n),
            _ => return None,
        }
    }
    if matches!(
        first,
        Component::ParentDir | Component::RootDir | Component::Prefix(_)
    ) {
        return None;
    }
    Some(out)
}

fn unpack(tar_bytes: &[u8], dest_dir: &Path, from: &str, to: Option<&str>) -> anyhow::Result<()> {
    let mut ar = tar::Archive::new(tar_bytes);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    for entry in ar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_path_buf();
        let Some(rel) = rebase(&path, from, to) else {
            anyhow::bail!(
                "refusing to extract {}: path escapes the destination",
                path.display()
            );
        };
        let target = dest_dir.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        entry.unpack(&target)?;
    }
    Ok(())
}

/// Copies `src` (in the container) to the local `dst`.
async fn from_container(
    ctx: &Ctx,
    container: &str,
    src: &str,
    dst: &str,
    quiet: bool,
) -> anyhow::Result<()> {
    let opts = DownloadFromContainerOptionsBuilder::new().path(src).build();
    let mut s = ctx
        .docker_slow
        .download_from_container(container, Some(opts));
    let mut data = Vec::new();
    while let Some(chunk) = s.next().await {
        data.extend_from_slice(&chunk.map_err(from_bollard)?);
    }
    if dst == "-" {
        std::io::stdout().write_all(&data)?;
        return Ok(());
    }
    let src_base = base_name(src);
    let contents_only = src.ends_with("/.");
    let dst_path = Path::new(dst);
    if dst_path.is_dir() {
        if contents_only {
            unpack(&data, dst_path, &src_base, Some(""))?;
        } else {
            unpack(&data, dst_path, &src_base, None)?;
        }
    } else {
        if dst.ends_with('/') {
            anyhow::bail!("destination directory \"{dst}\" must exist");
        }
        let parent = dst_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            anyhow::bail!("no such directory: {}", parent.display());
        }
        unpack(&data, parent, &src_base, Some(&base_name(dst)))?;
    }
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "Successfully copied {} to {dst}",
            units::human_size_prec(data.len() as f64, 3)
        );
    }
    Ok(())
}

fn build_tar(src: &Path, name: &str, contents_only: bool, follow: bool) -> anyhow::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(follow);
    let meta = if follow {
        std::fs::metadata(src)?
    } else {
        std::fs::symlink_metadata(src)?
    };
    if meta.is_dir() {
        b.append_dir_all(if contents_only { "." } else { name }, src)?;
    } else {
        b.append_path_with_name(src, name)?;
    }
    Ok(b.into_inner()?)
}

/// Copies the local `src` into the container at `dst`.
async fn to_container(
    ctx: &Ctx,
    src: &str,
    container: &str,
    dst: &str,
    follow: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let (tar_bytes, target_dir) = if src == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        (buf, dst.to_string())
    } else {
        let src_path = Path::new(src);
        if std::fs::symlink_metadata(src_path).is_err() {
            anyhow::bail!("stat {src}: no such file or directory");
        }
        let contents_only = src.ends_with("/.");
        let info = ctx
            .docker
            .get_container_archive_info(
                container,
                Some(ContainerArchiveInfoOptionsBuilder::new().path(dst).build()),
            )
            .await
            .map_err(from_bollard);
        let dst_is_dir = match info {
            Ok(stat) => stat.file_mode & (1 << 31) != 0,
            Err(e) if api_status(&e) == Some(404) => false,
            Err(e) => return Err(e),
        };
        if dst_is_dir {
            (
                build_tar(src_path, &base_name(src), contents_only, follow)?,
                dst.to_string(),
            )
        } else {
            let t = dst.trim_end_matches('/');
            let parent = match t.rfind('/') {
                Some(0) => "/".to_string(),
                Some(i) => t[..i].to_string(),
                None => ".".to_string(),
            };
            (
                build_tar(src_path, &base_name(dst), contents_only, follow)?,
                parent,
            )
        }
    };
    let size = tar_bytes.len();
    let opts = UploadToContainerOptionsBuilder::new()
        .path(&target_dir)
        .no_overwrite_dir_non_dir("true")
        .build();
    ctx.docker_slow
        .upload_to_container(container, Some(opts), bollard::body_full(tar_bytes.into()))
        .await
        .map_err(from_bollard)?;
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "Successfully copied {} to {container}:{dst}",
            units::human_size_prec(size as f64, 3)
        );
    }
    Ok(())
}

/// `cp`.
pub(crate) async fn cp(ctx: &Ctx, a: CpArgs) -> anyhow::Result<()> {
    match (split_arg(&a.src), split_arg(&a.dst)) {
        (Endpoint::Container(c, p), Endpoint::Local(l)) => {
            from_container(ctx, &c, &p, &l, a.quiet).await
        }
        (Endpoint::Local(l), Endpoint::Container(c, p)) => {
            to_container(ctx, &l, &c, &p, a.follow_link, a.quiet).await
        }
        (Endpoint::Container(..), Endpoint::Container(..)) => {
            anyhow::bail!("copying between containers is not supported")
        }
        (Endpoint::Local(_), Endpoint::Local(_)) => {
            anyhow::bail!("must specify at least one container source")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_arg_follows_docker_rules() {
        assert_eq!(
            split_arg("c1:/etc/hosts"),
            Endpoint::Container("c1".into(), "/etc/hosts".into())
        );
        assert_eq!(split_arg("./a:b"), Endpoint::Local("./a:b".into()));
        assert_eq!(split_arg("/abs:x"), Endpoint::Local("/abs:x".into()));
        assert_eq!(split_arg("file"), Endpoint::Local("file".into()));
        assert_eq!(split_arg("-"), Endpoint::Local("-".into()));
    }

    #[test]
    fn rebase_renames_root_and_rejects_escapes() {
        assert_eq!(
            rebase(Path::new("hosts"), "hosts", Some("h2")),
            Some(PathBuf::from("h2"))
        );
        assert_eq!(
            rebase(Path::new("dir/a/b"), "dir", Some("new")),
            Some(PathBuf::from("new/a/b"))
        );
        assert_eq!(
            rebase(Path::new("dir/a"), "dir", Some("")),
            Some(PathBuf::from("a"))
        );
        assert_eq!(
            rebase(Path::new("dir/a"), "dir", None),
            Some(PathBuf::from("dir/a"))
        );
        assert_eq!(rebase(Path::new("dir/../../x"), "dir", None), None);
        assert_eq!(rebase(Path::new("../x"), "dir", None), None);
    }

    #[test]
    fn tar_round_trip_renames_into_destination() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("d")).unwrap();
        std::fs::write(src.path().join("d/f.txt"), b"hello").unwrap();
        let tar_bytes = build_tar(&src.path().join("d"), "d", false, false).unwrap();
        let dst = tempfile::tempdir().unwrap();
        unpack(&tar_bytes, dst.path(), "d", Some("renamed")).unwrap();
        assert_eq!(
            std::fs::read(dst.path().join("renamed/f.txt")).unwrap(),
            b"hello"
        );
        assert_eq!(base_name("/a/b/"), "b");
        assert_eq!(base_name("/a/b/."), "b");
    }
}
