//! Writing file trees as tar streams, as dockerd's archive package lays them out: sorted
//! depth-first, directories named with a trailing `/`, hard links kept as links, sockets
//! skipped; for a layer, overlayfs whiteouts turned back into `.wh.` entries.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

use super::changes::{is_hidden, is_opaque, is_whiteout, sorted_entries};

/// Prefix of a whiteout entry in a layer tar (OCI image spec, layer.md).
pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
/// The entry marking its directory opaque in a layer tar.
pub(crate) const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// The only xattr dockerd's archiver carries (file capabilities).
const CAPABILITY_XATTR: &str = "security.capability";

/// A tar writer over file trees.
pub(crate) struct TreeWriter<W: Write> {
    b: tar::Builder<W>,
    /// First archive name of each multiply-linked inode, keyed by (dev, ino).
    links: HashMap<(u64, u64), String>,
    /// Host user and group names by id, as Go's `tar.FileInfoHeader` fills them in.
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

/// `name:x:id:…` lines of a passwd(5) or group(5) file as an id → name map.
fn id_names(path: &str) -> HashMap<u32, String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((id, name.to_owned()))
        })
        .collect()
}

/// Reads exactly `left` bytes: truncates a file that grew and pads one that shrank since
/// it was stat'ed, so the tar stays well formed while a container writes.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        let n = if n == 0 {
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// Linux `major(3)`/`minor(3)` of a device number.
fn dev_parts(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (
        u32::try_from(major).unwrap_or(0),
        u32::try_from(minor).unwrap_or(0),
    )
}

fn bare_header(meta: &Metadata, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

/// A PAX extended header record, `"<len> <key>=<value>\n"` where `len` counts itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() + body != len {
        len = body + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

// === impl TreeWriter ===

impl<W: Write> TreeWriter<W> {
    /// A writer producing a tar stream into `w`.
    pub(crate) fn new(w: W) -> Self {
        let mut b = tar::Builder::new(w);
        b.mode(tar::HeaderMode::Complete);
        TreeWriter {
            b,
            links: HashMap::new(),
            users: id_names("/etc/passwd"),
            groups: id_names("/etc/group"),
        }
    }

    fn header(&self, meta: &Metadata, kind: EntryType) -> Header {
        let mut h = bare_header(meta, kind);
        if let Some(u) = self.users.get(&meta.uid()) {
            let _ = h.set_username(u);
        }
        if let Some(g) = self.groups.get(&meta.gid()) {
            let _ = h.set_groupname(g);
        }
        h
    }

    /// Ends the archive and returns the sink.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.b.into_inner()
    }

    /// Appends the object at `src` (already `lstat`ed as `meta`) named `name`. Vanished
    /// files are skipped; sockets too, as dockerd does.
    pub(crate) fn append(&mut self, src: &Path, name: &str, meta: &Metadata) -> io::Result<()> {
        let ft = meta.file_type();
        if ft.is_dir() {
            let mut h = self.header(meta, EntryType::Directory);
            let dir_name = if name.ends_with('/') {
                name.to_owned()
            } else {
                format!("{name}/")
            };
            return self.b.append_data(&mut h, dir_name, io::empty());
        }
        if ft.is_symlink() {
            let target = match std::fs::read_link(src) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            let mut h = self.header(meta, EntryType::Symlink);
            return self.b.append_link(&mut h, name, target);
        }
        if ft.is_socket() {
            return Ok(());
        }
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                let first = first.clone();
                let mut h = self.header(meta, EntryType::Link);
                return self.b.append_link(&mut h, name, first);
            }
            self.links.insert(key, name.to_owned());
        }
        if ft.is_file() {
            let file = match std::fs::File::open(src) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            if let Ok(Some(cap)) = xattr::get(src, CAPABILITY_XATTR) {
                let rec = pax_record(&format!("SCHILY.xattr.{CAPABILITY_XATTR}"), &cap);
                let mut ph = Header::new_ustar();
                ph.set_entry_type(EntryType::XHeader);
                ph.set_mode(0o644);
                ph.set_size(rec.len() as u64);
                ph.set_path("PaxHeaders/x")?;
                ph.set_cksum();
                self.b.append(&ph, rec.as_slice())?;
            }
            let mut h = self.header(meta, EntryType::Regular);
            h.set_size(meta.len());
            let data = Exact {
                inner: file,
                left: meta.len(),
            };
            return self.b.append_data(&mut h, name, data);
        }
        let kind = if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else {
            EntryType::Fifo
        };
        let mut h = self.header(meta, kind);
        if kind != EntryType::Fifo {
            let (major, minor) = dev_parts(meta.rdev());
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
        }
        self.b.append_data(&mut h, name, io::empty())
    }

    /// Appends `src` named `name` and, for a directory, everything below it as
    /// `name/child…`. An empty `name` writes only the contents (names relative to `src`),
    /// as `docker export` does.
    pub(crate) fn append_tree(&mut self, src: &Path, name: &str) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(src)?;
        if !name.is_empty() {
            self.append(src, name, &meta)?;
        }
        if !meta.is_dir() {
            return Ok(());
        }
        let names = match sorted_entries(src) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for child in names {
            let child_src = src.join(&child);
            let child_name = if name.is_empty() {
                child.to_string_lossy().into_owned()
            } else {
                format!("{}/{}", name.trim_end_matches('/'), child.to_string_lossy())
            };
            match std::fs::symlink_metadata(&child_src) {
                Ok(m) if m.is_dir() => self.append_tree(&child_src, &child_name)?,
                Ok(m) => self.append(&child_src, &child_name, &m)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Appends the container's writable layer `upper` as a layer tar: whiteouts become
    /// `.wh.NAME` files, opaque directories get a `.wh..wh..opq` entry, and the files the
    /// runtime manages are left out.
    pub(crate) fn append_layer(&mut self, upper: &Path) -> io::Result<()> {
        self.layer_dir(upper, Path::new(""))
    }

    fn layer_dir(&mut self, upper: &Path, rel: &Path) -> io::Result<()> {
        for child in sorted_entries(&upper.join(rel))? {
            let r = rel.join(&child);
            if is_hidden(&r) {
                continue;
            }
            let src = upper.join(&r);
            let meta = match std::fs::symlink_metadata(&src) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let name = r.to_string_lossy().into_owned();
            if is_whiteout(&meta) {
                let wh = match rel.as_os_str().is_empty() {
                    true => format!("{WHITEOUT_PREFIX}{}", child.to_string_lossy()),
                    false => format!(
                        "{}/{WHITEOUT_PREFIX}{}",
                        rel.display(),
                        child.to_string_lossy()
                    ),
                };
                let mut h = self.header(&meta, EntryType::Regular);
                h.set_mode(0o600);
                self.b.append_data(&mut h, wh, io::empty())?;
                continue;
            }
            self.append(&src, &name, &meta)?;
            if meta.is_dir() {
                if is_opaque(&src) {
                    let mut h = self.header(&meta, EntryType::Regular);
                    h.set_mode(meta.mode() & 0o777);
                    h.set_mtime(0);
                    self.b
                        .append_data(&mut h, format!("{name}/{WHITEOUT_OPAQUE}"), io::empty())?;
                }
                self.layer_dir(upper, &r)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn entries(tar_bytes: &[u8]) -> Vec<(String, EntryType, Vec<u8>)> {
        let mut ar = tar::Archive::new(tar_bytes);
        ar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let kind = e.header().entry_type();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (name, kind, data)
            })
            .collect()
    }

    #[test]
    fn writes_trees_sorted_with_dir_slashes_links_and_hardlinks() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("b/sub")).unwrap();
        fs::write(root.join("b/sub/f"), "deep").unwrap();
        fs::write(root.join("a"), "A").unwrap();
        fs::hard_link(root.join("a"), root.join("c")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("l")).unwrap();
        let mut w = TreeWriter::new(Vec::new());
        w.append_tree(root, "").unwrap();
        let got = entries(&w.finish().unwrap());
        let names: Vec<_> = got.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
        assert_eq!(
            names,
            [
                ("a", EntryType::Regular),
                ("b/", EntryType::Directory),
                ("b/sub/", EntryType::Directory),
                ("b/sub/f", EntryType::Regular),
                ("c", EntryType::Link),
                ("l", EntryType::Symlink),
            ]
        );
        assert_eq!(got[3].2, b"deep");

        // Rebased under a top-level name, as `docker cp` asks.
        let mut w = TreeWriter::new(Vec::new());
        w.append_tree(&root.join("b"), "d").unwrap();
        let got = entries(&w.finish().unwrap());
        let names: Vec<_> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["d/", "d/sub/", "d/sub/f"]);
    }

    #[test]
    fn pads_a_file_that_shrank_after_stat() {
        let mut r = Exact {
            inner: &b"ab"[..],
            left: 4,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab\0\0");
        let mut r = Exact {
            inner: &b"abcdef"[..],
            left: 3,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
    }

    #[test]
    fn pax_records_count_their_own_length() {
        let r = pax_record("k", b"v");
        assert_eq!(r, b"6 k=v\n");
        let long = vec![b'x'; 95];
        let r = pax_record("k", &long);
        assert_eq!(r.len().to_string(), String::from_utf8_lossy(&r[..3]));
    }

    #[test]
    fn splits_device_numbers() {
        assert_eq!(dev_parts(0), (0, 0));
        // makedev(1, 3) = /dev/null.
        assert_eq!(dev_parts((1 << 8) | 3), (1, 3));
    }

    #[test]
    fn layer_leaves_out_runtime_files() {
        let t = tempfile::tempdir().unwrap();
        let up = t.path();
        fs::create_dir_all(up.join("etc")).unwrap();
        fs::write(up.join("etc/hosts"), "").unwrap();
        fs::write(up.join("etc/passwd"), "p").unwrap();
        fs::create_dir_all(up.join("proc")).unwrap();
        let mut w = TreeWriter::new(Vec::new());
        w.append_layer(up).unwrap();
        let got = entries(&w.finish().unwrap());
        let names: Vec<_> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, ["etc/", "etc/passwd"]);
    }

    #[test]
    #[ignore = "needs root: creates overlayfs whiteouts and opaque dirs"]
    fn layer_turns_whiteouts_and_opaque_dirs_into_oci_markers() {
        crate::local::files::tests::require_root();
        let t = tempfile::tempdir().unwrap();
        let up = t.path();
        fs::create_dir_all(up.join("bin")).unwrap();
        corral_sys::mount::create_whiteout(&up.join("bin/yes")).unwrap();
        fs::create_dir_all(up.join("opq")).unwrap();
        corral_sys::mount::set_opaque(&up.join("opq")).unwrap();
        fs::write(up.join("opq/new"), "n").unwrap();
        let mut w = TreeWriter::new(Vec::new());
        w.append_layer(up).unwrap();
        let got = entries(&w.finish().unwrap());
        let names: Vec<_> = got.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
        assert_eq!(
            names,
            [
                ("bin/", EntryType::Directory),
                ("bin/.wh.yes", EntryType::Regular),
                ("opq/", EntryType::Directory),
                ("opq/.wh..wh..opq", EntryType::Regular),
                ("opq/new", EntryType::Regular),
            ]
        );
    }
}
