//! Helpers shared by this crate's unit tests: crafted tarballs and privilege checks.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tar::{EntryType, Header};

/// Panics unless running as root (privileged tests must not pass vacuously).
pub(crate) fn require_root() {
    let uid = std::fs::metadata("/proc/self")
        .expect("stat /proc/self")
        .uid();
    assert_eq!(uid, 0, "this test needs root");
}

/// Builds tarballs entry by entry with raw (unvalidated) names, as an attacker would.
pub(crate) struct TarBuilder {
    b: tar::Builder<Vec<u8>>,
}

impl TarBuilder {
    pub(crate) fn new() -> Self {
        TarBuilder {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: EntryType, path: &str, link: Option<&str>, size: u64, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let old = h.as_old_mut();
        assert!(path.len() < old.name.len());
        old.name.fill(0);
        old.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            old.linkname.fill(0);
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h
    }

    pub(crate) fn raw(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub(crate) fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.file_mode(path, data, 0o644)
    }

    pub(crate) fn file_mode(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        let h = Self::header(EntryType::Regular, path, None, data.len() as u64, mode);
        self.raw(h, data)
    }

    pub(crate) fn file_owned(
        &mut self,
        path: &str,
        data: &[u8],
        mode: u32,
        uid: u64,
        gid: u64,
    ) -> &mut Self {
        let mut h = Self::header(EntryType::Regular, path, None, data.len() as u64, mode);
        h.set_uid(uid);
        h.set_gid(gid);
        self.raw(h, data)
    }

    pub(crate) fn dir(&mut self, path: &str) -> &mut Self {
        let h = Self::header(EntryType::Directory, path, None, 0, 0o755);
        self.raw(h, &[])
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let h = Self::header(EntryType::Symlink, path, Some(target), 0, 0o777);
        self.raw(h, &[])
    }

    pub(crate) fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let h = Self::header(EntryType::Link, path, Some(target), 0, 0o644);
        self.raw(h, &[])
    }

    pub(crate) fn device(
        &mut self,
        kind: EntryType,
        path: &str,
        major: u32,
        minor: u32,
    ) -> &mut Self {
        let mut h = Self::header(kind, path, None, 0, 0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.raw(h, &[])
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// Every path under `dir`, relative, sorted, with a type suffix: `/` dir, `@` symlink,
/// `%` char device.
pub(crate) fn listing(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(base).unwrap().display().to_string();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.push(format!("{rel}/"));
                walk(base, &e.path(), out);
            } else if ft.is_symlink() {
                out.push(format!("{rel}@"));
            } else if ft.is_char_device() {
                out.push(format!("{rel}%"));
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
