//! Layer descriptions and their deterministic tar encoding.

use std::path::Path;

use anyhow::{Context, Result};

use super::FIXED_MTIME;

#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryKind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    Hardlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: String,
    kind: EntryKind,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// Describes one layer: entries are written to the tar in the order they were added.
///
/// Paths may start with `/`; it is stripped. Parent directories are not added implicitly
/// (adding them would reset the mode and owner of directories from lower layers).
#[derive(Debug, Clone, Default)]
pub struct LayerBuilder {
    entries: Vec<Entry>,
    pub(super) created_by: Option<String>,
}

impl LayerBuilder {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(mut self, path: &str, kind: EntryKind, mode: u32, uid: u64, gid: u64) -> Self {
        self.entries.push(Entry {
            path: path
                .trim_start_matches('/')
                .trim_end_matches('/')
                .to_owned(),
            kind,
            mode,
            uid,
            gid,
        });
        self
    }

    /// A regular file owned by root.
    pub fn file(self, path: &str, contents: impl AsRef<[u8]>, mode: u32) -> Self {
        self.file_owned(path, contents, mode, 0, 0)
    }

    /// A regular file with an explicit owner.
    pub fn file_owned(
        self,
        path: &str,
        contents: impl AsRef<[u8]>,
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> Self {
        let data = contents.as_ref().to_vec();
        self.push(path, EntryKind::File(data), mode, uid, gid)
    }

    /// A directory owned by root.
    pub fn dir(self, path: &str, mode: u32) -> Self {
        self.dir_owned(path, mode, 0, 0)
    }

    /// A directory with an explicit owner.
    pub fn dir_owned(self, path: &str, mode: u32, uid: u64, gid: u64) -> Self {
        self.push(path, EntryKind::Dir, mode, uid, gid)
    }

    /// A symlink at `path` pointing to `target` (stored verbatim).
    pub fn symlink(self, path: &str, target: &str) -> Self {
        self.push(path, EntryKind::Symlink(target.to_owned()), 0o777, 0, 0)
    }

    /// A hard link at `path` to the earlier entry `target` (a path inside the layer).
    pub fn hardlink(self, path: &str, target: &str) -> Self {
        let target = target.trim_start_matches('/').to_owned();
        self.push(path, EntryKind::Hardlink(target), 0o644, 0, 0)
    }

    /// Deletes `path` of a lower layer: writes the `.wh.<name>` whiteout file.
    pub fn whiteout(self, path: &str) -> Self {
        let p = Path::new(path.trim_start_matches('/'));
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let wh = match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => {
                format!("{}/.wh.{name}", parent.display())
            }
            _ => format!(".wh.{name}"),
        };
        self.push(&wh, EntryKind::File(Vec::new()), 0o644, 0, 0)
    }

    /// Hides everything lower layers put in `dir`: writes `dir/.wh..wh..opq`.
    pub fn opaque(self, dir: &str) -> Self {
        let dir = dir.trim_start_matches('/').trim_end_matches('/');
        let path = format!("{dir}/.wh..wh..opq");
        self.push(&path, EntryKind::File(Vec::new()), 0o644, 0, 0)
    }

    /// The `created_by` text shown by `docker history` for this layer.
    pub fn created_by(mut self, text: &str) -> Self {
        self.created_by = Some(text.to_owned());
        self
    }

    /// The uncompressed tar of this layer.
    pub fn to_tar(&self) -> Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        for e in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(FIXED_MTIME);
            h.set_uid(e.uid);
            h.set_gid(e.gid);
            h.set_mode(e.mode);
            let data: &[u8] = match &e.kind {
                EntryKind::File(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    d
                }
                EntryKind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    &[]
                }
                EntryKind::Symlink(t) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    h.set_link_name(t)
                        .with_context(|| format!("symlink target of {}", e.path))?;
                    &[]
                }
                EntryKind::Hardlink(t) => {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    h.set_link_name(t)
                        .with_context(|| format!("hard link target of {}", e.path))?;
                    &[]
                }
            };
            let path = if e.kind == EntryKind::Dir {
                format!("{}/", e.path)
            } else {
                e.path.clone()
            };
            // append_data sets the path (with GNU long-name support) and the checksum.
            b.append_data(&mut h, &path, data)
                .with_context(|| format!("tar entry {path}"))?;
        }
        b.into_inner().context("finish layer tar")
    }
}
