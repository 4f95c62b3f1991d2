//! Mounts (overlayfs, read-only binds) behind the [`Mounts`] trait, plus the two overlayfs
//! on-disk markers (whiteout device, opaque xattr) that layer unpacking writes.
//!
//! The option string of an overlay mount is copied by the kernel into a single page
//! (`mount(2)`: "data ... is at most one page"). runc and containerd work around long
//! `lowerdir=` lists by `chdir`-ing into the layer root and using short relative paths, but
//! the working directory is process-wide, so a multithreaded daemon must not do that.
//! [`plan_overlay`] therefore refuses an option string that does not fit in a page with a
//! clear error; with 64-hex layer directories under a short root that allows roughly 50
//! layers on a 4 KiB page, which covers real images.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// Default location of the mount table of the calling process.
pub const PROC_SELF_MOUNTINFO: &str = "/proc/self/mountinfo";

/// The xattr overlayfs reads to treat a directory of an upper or lower layer as opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Page size assumed when `sysconf(_SC_PAGESIZE)` cannot answer.
const FALLBACK_PAGE_SIZE: usize = 4096;

/// Where, below an overlay's work dir, the kernel marks an upper that was mounted
/// `volatile`; it refuses to mount that upper again while the marker exists.
pub const VOLATILE_MARKER: &str = "work/incompat/volatile";

/// Options of a writable overlay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OverlayOptions {
    /// overlayfs `volatile` (Linux 5.10+): no sync of the upper layer, also not the one at
    /// unmount, which otherwise waits for a journal commit of the upper file system. For a
    /// writable layer that is discarded when the container ends (`--rm`): after a crash the
    /// kernel refuses to mount such an upper again. Where the kernel refuses the option the
    /// overlay is mounted without it.
    pub volatile: bool,
}

/// Mount operations a container rootfs needs.
pub trait Mounts: Send + Sync {
    /// Mounts an overlay of `lower` (top-most first) with `upper`/`work` on `target`.
    ///
    /// An empty `upper` path means "no writable layer": several lowers give a read-only
    /// overlay, a single lower a read-only bind of it; `work` is then ignored.
    ///
    /// # Errors
    /// `InvalidInput` when there is no lower dir, a path is relative or contains `,` `:` or
    /// a newline, or the option string would not fit in a page (see the module docs);
    /// otherwise the `mount(2)` error.
    fn mount_overlay(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> io::Result<()> {
        self.mount_overlay_with(lower, upper, work, target, OverlayOptions::default())
    }

    /// [`Mounts::mount_overlay`] with options.
    ///
    /// # Errors
    /// As [`Mounts::mount_overlay`].
    fn mount_overlay_with(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
        options: OverlayOptions,
    ) -> io::Result<()>;

    /// Mounts a filesystem as [`plan_fs_mount`] planned it (a device, a tmpfs, a bind):
    /// `mount(2)` with the plan's flags and data, then the propagation change and the
    /// read-only remount a bind needs, each as its own call as `mount(8)` does.
    ///
    /// # Errors
    /// The failing `mount(2)` error, its message naming source, target, flags and data
    /// (e.g. `mount /dev/x:/mnt, flags: 0x1000: no such file or directory`). A failure
    /// after the first call detaches the mount again, so nothing stays mounted.
    fn mount_fs(&self, plan: &FsMount, target: &Path) -> io::Result<()>;

    /// Detaches the mount at `target` (lazy: `MNT_DETACH`).
    ///
    /// # Errors
    /// The `umount2(2)` error; `EINVAL` when `target` is not a mount point.
    fn unmount(&self, target: &Path) -> io::Result<()>;

    /// Whether `target` is a mount point, according to the mount table.
    ///
    /// # Errors
    /// Reading the mount table failed.
    fn is_mounted(&self, target: &Path) -> io::Result<bool>;
}

/// What [`Mounts::mount_overlay`] will do, computed without touching the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayPlan {
    /// `mount -t overlay overlay -o <data> target`, read-only when there is no upper dir.
    Overlay {
        /// The option string.
        data: String,
        /// Mount with `MS_RDONLY`.
        read_only: bool,
    },
    /// A single lower and no upper: bind `source` read-only.
    ReadOnlyBind {
        /// The lower directory.
        source: PathBuf,
    },
}

/// Builds the mount for [`Mounts::mount_overlay`]; `page_size` bounds the option string.
///
/// # Errors
/// `InvalidInput` as documented on [`Mounts::mount_overlay`].
pub fn plan_overlay(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    page_size: usize,
) -> io::Result<OverlayPlan> {
    if lower.is_empty() {
        return Err(invalid("overlay needs at least one lower directory".into()));
    }
    for p in lower.iter().map(PathBuf::as_path).chain([upper, work]) {
        if p.as_os_str().is_empty() {
            continue;
        }
        check_overlay_path(p)?;
    }
    let has_upper = !upper.as_os_str().is_empty();
    if !has_upper && lower.len() == 1 {
        return Ok(OverlayPlan::ReadOnlyBind {
            source: lower[0].clone(),
        });
    }
    if has_upper && work.as_os_str().is_empty() {
        return Err(invalid(
            "overlay with an upper directory needs a work directory".into(),
        ));
    }
    let lowers: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
    let mut data = format!("lowerdir={}", lowers.join(":"));
    if has_upper {
        data.push_str(&format!(
            ",upperdir={},workdir={}",
            upper.display(),
            work.display()
        ));
    }
    // The kernel copies one page including the terminating NUL.
    if data.len() >= page_size {
        return Err(invalid(format!(
            "overlay options for {} layers are {} bytes, more than fit in one page ({page_size}); \
             use a shorter data root or fewer layers",
            lower.len(),
            data.len()
        )));
    }
    Ok(OverlayPlan::Overlay {
        data,
        read_only: !has_upper,
    })
}

/// A filesystem mount computed from `mount(8)`-style arguments by [`plan_fs_mount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsMount {
    /// What to mount: a device path, `tmpfs`, or the directory of a bind.
    pub source: String,
    /// The filesystem type (`ext4`, `tmpfs`; ignored by the kernel for a bind).
    pub fstype: String,
    /// Flags of the first `mount(2)` call (propagation flags excluded).
    pub flags: MsFlags,
    /// Propagation flags applied by a second call (`MS_SHARED`, `MS_PRIVATE`, ...), if any.
    pub propagation: MsFlags,
    /// The comma-separated options the filesystem itself parses (`size=100m,uid=1000`).
    pub data: String,
}

/// Option words that are `mount(2)` flags rather than filesystem data: (word, flag, clears).
/// The list is `mount(8)`'s (util-linux `libmount/src/optmap.c`), restricted to words that
/// map to `MS_*` flags; every other word goes to the filesystem as data.
const FLAG_WORDS: &[(&str, MsFlags, bool)] = &[
    ("defaults", MsFlags::empty(), false),
    ("ro", MsFlags::MS_RDONLY, false),
    ("rw", MsFlags::MS_RDONLY, true),
    ("nosuid", MsFlags::MS_NOSUID, false),
    ("suid", MsFlags::MS_NOSUID, true),
    ("nodev", MsFlags::MS_NODEV, false),
    ("dev", MsFlags::MS_NODEV, true),
    ("noexec", MsFlags::MS_NOEXEC, false),
    ("exec", MsFlags::MS_NOEXEC, true),
    ("sync", MsFlags::MS_SYNCHRONOUS, false),
    ("async", MsFlags::MS_SYNCHRONOUS, true),
    ("dirsync", MsFlags::MS_DIRSYNC, false),
    ("remount", MsFlags::MS_REMOUNT, false),
    ("mand", MsFlags::MS_MANDLOCK, false),
    ("nomand", MsFlags::MS_MANDLOCK, true),
    ("noatime", MsFlags::MS_NOATIME, false),
    ("atime", MsFlags::MS_NOATIME, true),
    ("nodiratime", MsFlags::MS_NODIRATIME, false),
    ("diratime", MsFlags::MS_NODIRATIME, true),
    ("relatime", MsFlags::MS_RELATIME, false),
    ("norelatime", MsFlags::MS_RELATIME, true),
    ("strictatime", MsFlags::MS_STRICTATIME, false),
    ("nostrictatime", MsFlags::MS_STRICTATIME, true),
    ("bind", MsFlags::MS_BIND, false),
    ("rbind", MsFlags::MS_BIND.union(MsFlags::MS_REC), false),
    ("unbindable", MsFlags::MS_UNBINDABLE, false),
    (
        "runbindable",
        MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC),
        false,
    ),
    ("private", MsFlags::MS_PRIVATE, false),
    (
        "rprivate",
        MsFlags::MS_PRIVATE.union(MsFlags::MS_REC),
        false,
    ),
    ("shared", MsFlags::MS_SHARED, false),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC), false),
    ("slave", MsFlags::MS_SLAVE, false),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC), false),
];

/// The propagation flags, which `mount(2)` only accepts in a call of their own.
const PROPAGATION: MsFlags = MsFlags::MS_SHARED
    .union(MsFlags::MS_PRIVATE)
    .union(MsFlags::MS_SLAVE)
    .union(MsFlags::MS_UNBINDABLE);

/// Splits `mount(8)`-style `options` (`o=` of a volume) into `mount(2)` flags and the
/// filesystem's data string, as `mount -t fstype -o options source target` would.
pub fn plan_fs_mount(source: &str, fstype: &str, options: &str) -> FsMount {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for word in options.split(',').filter(|w| !w.is_empty()) {
        match FLAG_WORDS.iter().find(|(w, _, _)| *w == word) {
            Some((_, f, true)) => flags.remove(*f),
            Some((_, f, false)) => flags.insert(*f),
            None => data.push(word),
        }
    }
    let propagation = flags & PROPAGATION;
    // MS_REC belongs to the propagation call too when it came with a propagation word
    // and there is no bind for it to apply to.
    let rec = if !propagation.is_empty() && !flags.contains(MsFlags::MS_BIND) {
        flags & MsFlags::MS_REC
    } else {
        MsFlags::empty()
    };
    FsMount {
        source: source.to_owned(),
        fstype: fstype.to_owned(),
        flags: flags - PROPAGATION - rec,
        propagation: if propagation.is_empty() {
            propagation
        } else {
            propagation | (flags & MsFlags::MS_REC)
        },
        data: data.join(","),
    }
}

// === impl FsMount ===

impl FsMount {
    /// Whether this is a read-only bind, which needs a remount to become read-only.
    pub fn needs_ro_remount(&self) -> bool {
        self.flags
            .contains(MsFlags::MS_BIND.union(MsFlags::MS_RDONLY))
    }

    /// How `mount(8)` would describe the call in an error: `mount SRC:TARGET, flags: 0x..,
    /// data: ..`. The value of a `password=` option is hidden, as it may be a secret.
    pub fn describe(&self, target: &Path) -> String {
        let mut s = format!("mount {}:{}", self.source, target.display());
        if !self.flags.is_empty() {
            s.push_str(&format!(", flags: {:#x}", self.flags.bits()));
        }
        if !self.data.is_empty() {
            let data: Vec<String> = self
                .data
                .split(',')
                .map(|w| match w.split_once('=') {
                    Some(("password", _)) => "password=********".to_owned(),
                    _ => w.to_owned(),
                })
                .collect();
            s.push_str(&format!(", data: {}", data.join(",")));
        }
        s
    }
}

fn check_overlay_path(p: &Path) -> io::Result<()> {
    let bytes = p.as_os_str().as_bytes();
    if !p.is_absolute() {
        return Err(invalid(format!(
            "overlay path {} is not absolute",
            p.display()
        )));
    }
    if bytes
        .iter()
        .any(|b| matches!(b, b',' | b':' | b'\n' | b'\\'))
    {
        return Err(invalid(format!(
            "overlay path {} contains a character overlayfs treats as a separator",
            p.display()
        )));
    }
    Ok(())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn with_context(e: nix::Error, what: &str, path: &Path) -> io::Error {
    let io = io::Error::from(e);
    io::Error::new(io.kind(), format!("{what} {}: {io}", path.display()))
}

/// Mount points listed in a `/proc/<pid>/mountinfo` text (field 5, octal escapes decoded).
pub fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(std::ffi::OsString::from_vec(unescape_octal(field))))
        .collect()
}

/// Decodes the `\040`-style escapes the kernel uses for space, tab, newline and backslash.
fn unescape_octal(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The kernel's page size.
pub fn page_size() -> usize {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(n)) => usize::try_from(n).unwrap_or(FALLBACK_PAGE_SIZE),
        _ => FALLBACK_PAGE_SIZE,
    }
}

/// Creates an overlayfs whiteout at `path`: a character device 0:0 (overlayfs docs,
/// "whiteouts and opaque directories"). Needs `CAP_MKNOD`.
///
/// # Errors
/// The `mknod(2)` error, e.g. `EPERM` without privilege or `EEXIST`.
pub fn create_whiteout(path: &Path) -> io::Result<()> {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        nix::sys::stat::makedev(0, 0),
    )
    .map_err(|e| with_context(e, "create whiteout", path))
}

/// Marks directory `dir` opaque for overlayfs (`trusted.overlay.opaque=y`). Needs
/// `CAP_SYS_ADMIN`; never follows a symlink at `dir`.
///
/// # Errors
/// The `lsetxattr(2)` error.
pub fn set_opaque(dir: &Path) -> io::Result<()> {
    let cpath = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| invalid(format!("path {} contains a NUL byte", dir.display())))?;
    let name = CString::new(OVERLAY_OPAQUE_XATTR)
        .map_err(|_| invalid("xattr name contains a NUL byte".into()))?;
    let value = b"y";
    // SAFETY: `cpath` and `name` are NUL-terminated strings that outlive the call; `value`
    // points to `value.len()` readable bytes; lsetxattr does not retain any pointer.
    let rc = unsafe {
        libc::lsetxattr(
            cpath.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(
            e.kind(),
            format!("set {OVERLAY_OPAQUE_XATTR} on {}: {e}", dir.display()),
        ))
    }
}

/// Whether `dir` carries `trusted.overlay.opaque=y`.
///
/// # Errors
/// The `lgetxattr(2)` error other than "no such attribute".
pub fn is_opaque(dir: &Path) -> io::Result<bool> {
    let cpath = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| invalid(format!("path {} contains a NUL byte", dir.display())))?;
    let name = CString::new(OVERLAY_OPAQUE_XATTR)
        .map_err(|_| invalid("xattr name contains a NUL byte".into()))?;
    let mut buf = [0u8; 8];
    // SAFETY: `cpath` and `name` are NUL-terminated and live across the call; `buf` is a
    // writable buffer of `buf.len()` bytes; the kernel writes at most that many.
    let rc = unsafe {
        libc::lgetxattr(
            cpath.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) => Ok(false),
            _ => Err(e),
        };
    }
    let n = usize::try_from(rc).unwrap_or(0).min(buf.len());
    Ok(&buf[..n] == b"y")
}

// === impl LinuxMounts ===

/// [`Mounts`] through `mount(2)`/`umount2(2)`, reading the mount table from a path the
/// caller chooses (default [`PROC_SELF_MOUNTINFO`]).
#[derive(Debug, Clone)]
pub struct LinuxMounts {
    mountinfo: PathBuf,
}

impl LinuxMounts {
    /// Uses `/proc/self/mountinfo`.
    pub fn new() -> Self {
        Self::with_mountinfo(PROC_SELF_MOUNTINFO)
    }

    /// Reads the mount table from `path` (tests pass a fixture).
    pub fn with_mountinfo(path: impl Into<PathBuf>) -> Self {
        LinuxMounts {
            mountinfo: path.into(),
        }
    }
}

impl Default for LinuxMounts {
    fn default() -> Self {
        Self::new()
    }
}

impl Mounts for LinuxMounts {
    fn mount_overlay_with(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
        options: OverlayOptions,
    ) -> io::Result<()> {
        match plan_overlay(lower, upper, work, page_size())? {
            OverlayPlan::Overlay { data, read_only } => {
                let flags = if read_only {
                    MsFlags::MS_RDONLY
                } else {
                    MsFlags::empty()
                };
                let mount = |data: &str| {
                    tracing::debug!(target = %target.display(), %data, "mounting overlay");
                    nix::mount::mount(Some("overlay"), target, Some("overlay"), flags, Some(data))
                };
                let volatile = format!("{data},volatile");
                if options.volatile && !read_only && volatile.len() < page_size() {
                    match mount(&volatile) {
                        // A kernel without the option (before 5.10) says EINVAL.
                        Err(nix::errno::Errno::EINVAL) => {
                            tracing::debug!("overlayfs refused volatile; mounting without it");
                        }
                        res => return res.map_err(|e| with_context(e, "mount overlay on", target)),
                    }
                }
                mount(&data).map_err(|e| with_context(e, "mount overlay on", target))
            }
            OverlayPlan::ReadOnlyBind { source } => {
                nix::mount::mount(
                    Some(&source),
                    target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| with_context(e, "bind mount on", target))?;
                // A bind ignores MS_RDONLY on creation; read-only needs a remount.
                let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                if let Err(e) =
                    nix::mount::mount(None::<&str>, target, None::<&str>, ro, None::<&str>)
                {
                    let err = with_context(e, "remount read-only", target);
                    if let Err(u) = nix::mount::umount2(target, MntFlags::MNT_DETACH) {
                        tracing::warn!(target = %target.display(), error = %u, "rollback of bind mount failed");
                    }
                    return Err(err);
                }
                Ok(())
            }
        }
    }

    fn mount_fs(&self, plan: &FsMount, target: &Path) -> io::Result<()> {
        // The errno text in lower case and without "(os error N)", as dockerd prints it.
        let fail = |e: nix::Error| {
            let mut desc = e.desc().to_owned();
            if let Some(first) = desc.get_mut(..1) {
                first.make_ascii_lowercase();
            }
            io::Error::new(
                io::Error::from(e).kind(),
                format!("{}: {desc}", plan.describe(target)),
            )
        };
        let data = (!plan.data.is_empty()).then_some(plan.data.as_str());
        tracing::debug!(target = %target.display(), source = %plan.source, fstype = %plan.fstype, "mounting filesystem");
        nix::mount::mount(
            Some(plan.source.as_str()),
            target,
            Some(plan.fstype.as_str()),
            plan.flags,
            data,
        )
        .map_err(fail)?;
        let mut follow_ups = Vec::new();
        if !plan.propagation.is_empty() {
            follow_ups.push(plan.propagation);
        }
        // A bind ignores MS_RDONLY on creation; read-only needs a remount.
        if plan.needs_ro_remount() {
            follow_ups.push(plan.flags | MsFlags::MS_REMOUNT);
        }
        for flags in follow_ups {
            if let Err(e) =
                nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
            {
                if let Err(u) = nix::mount::umount2(target, MntFlags::MNT_DETACH) {
                    tracing::warn!(target = %target.display(), error = %u, "rollback of mount failed");
                }
                return Err(fail(e));
            }
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        nix::mount::umount2(target, MntFlags::MNT_DETACH)
            .map_err(|e| with_context(e, "unmount", target))
    }

    fn is_mounted(&self, target: &Path) -> io::Result<bool> {
        // The own mount table: one `statx` answers (the daemon's table grows with every
        // running container, and was parsed twice per container run).
        if self.mountinfo == Path::new(PROC_SELF_MOUNTINFO) {
            match mount_root_attribute(target) {
                Ok(Some(root)) => return Ok(root),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                // Too old a kernel for the attribute, or another failure: read the table.
                Ok(None) | Err(_) => {}
            }
        }
        let text = std::fs::read_to_string(&self.mountinfo)?;
        // The table holds resolved paths; a missing target is not mounted.
        let target = match std::fs::canonicalize(target) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(_) => target.to_path_buf(),
        };
        Ok(parse_mountinfo(&text).contains(&target))
    }
}

/// Whether `path` (its final symlink followed, as the mount table lists resolved paths) is
/// the root of a mount, from `statx`'s `STATX_ATTR_MOUNT_ROOT` (Linux 5.8+); `None` when the
/// kernel does not report that attribute.
fn mount_root_attribute(path: &Path) -> io::Result<Option<bool>> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: zeroed `statx` is a valid output buffer for the call below.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `stx` is a writable `statx`; both outlive the
    // call.
    let rc = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::AT_NO_AUTOMOUNT,
            libc::STATX_TYPE,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let flag = libc::STATX_ATTR_MOUNT_ROOT as u64;
    if stx.stx_attributes_mask & flag == 0 {
        return Ok(None);
    }
    Ok(Some(stx.stx_attributes & flag != 0))
}

// === impl FakeMounts ===

/// One call made to [`FakeMounts`].
#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountCall {
    /// [`Mounts::mount_overlay`].
    Overlay {
        /// Lower dirs, top-most first.
        lower: Vec<PathBuf>,
        /// Upper dir (empty for none).
        upper: PathBuf,
        /// Work dir.
        work: PathBuf,
        /// Mount point.
        target: PathBuf,
        /// [`OverlayOptions::volatile`].
        volatile: bool,
    },
    /// [`Mounts::mount_fs`].
    Fs {
        /// The plan.
        plan: FsMount,
        /// Mount point.
        target: PathBuf,
    },
    /// [`Mounts::unmount`].
    Unmount {
        /// Mount point.
        target: PathBuf,
    },
    /// [`Mounts::is_mounted`].
    IsMounted {
        /// Queried path.
        target: PathBuf,
    },
}

/// Which operation a planned failure applies to.
#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountOp {
    /// [`Mounts::mount_overlay`].
    Overlay,
    /// [`Mounts::mount_fs`].
    Fs,
    /// [`Mounts::unmount`].
    Unmount,
    /// [`Mounts::is_mounted`].
    IsMounted,
}

#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<MountCall>,
    mounted: std::collections::BTreeSet<PathBuf>,
    failures: Vec<(MountOp, i32)>,
}

/// A [`Mounts`] that records calls in order, tracks what is "mounted", and fails a call on
/// request. Validation ([`plan_overlay`]) still runs so bad arguments fail as on Linux.
#[cfg(any(test, feature = "fake"))]
#[derive(Debug, Default)]
pub struct FakeMounts {
    state: std::sync::RwLock<FakeState>,
}

#[cfg(any(test, feature = "fake"))]
impl FakeMounts {
    /// An empty fake.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::RwLockWriteGuard<'_, FakeState> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every call so far, in order (failed ones included).
    pub fn calls(&self) -> Vec<MountCall> {
        self.state().calls.clone()
    }

    /// Targets currently mounted.
    pub fn mounted(&self) -> Vec<PathBuf> {
        self.state().mounted.iter().cloned().collect()
    }

    /// Makes the next call of `op` fail with OS error `errno` (e.g. `libc::EBUSY`).
    pub fn fail_next(&self, op: MountOp, errno: i32) {
        self.state().failures.push((op, errno));
    }

    fn record(
        &self,
        call: MountCall,
        op: MountOp,
    ) -> io::Result<std::sync::RwLockWriteGuard<'_, FakeState>> {
        let mut st = self.state();
        st.calls.push(call);
        if let Some(i) = st.failures.iter().position(|(o, _)| *o == op) {
            let (_, errno) = st.failures.remove(i);
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(st)
    }
}

#[cfg(any(test, feature = "fake"))]
impl Mounts for FakeMounts {
    fn mount_overlay_with(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
        options: OverlayOptions,
    ) -> io::Result<()> {
        let call = MountCall::Overlay {
            lower: lower.to_vec(),
            upper: upper.to_path_buf(),
            work: work.to_path_buf(),
            target: target.to_path_buf(),
            volatile: options.volatile,
        };
        let mut st = self.record(call, MountOp::Overlay)?;
        plan_overlay(lower, upper, work, FALLBACK_PAGE_SIZE)?;
        st.mounted.insert(target.to_path_buf());
        Ok(())
    }

    fn mount_fs(&self, plan: &FsMount, target: &Path) -> io::Result<()> {
        let call = MountCall::Fs {
            plan: plan.clone(),
            target: target.to_path_buf(),
        };
        let mut st = self
            .record(call, MountOp::Fs)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", plan.describe(target))))?;
        st.mounted.insert(target.to_path_buf());
        Ok(())
    }

    fn unmount(&self, target: &Path) -> io::Result<()> {
        let call = MountCall::Unmount {
            target: target.to_path_buf(),
        };
        let mut st = self.record(call, MountOp::Unmount)?;
        if st.mounted.remove(target) {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        }
    }

    fn is_mounted(&self, target: &Path) -> io::Result<bool> {
        let call = MountCall::IsMounted {
            target: target.to_path_buf(),
        };
        let st = self.record(call, MountOp::IsMounted)?;
        Ok(st.mounted.contains(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn plans_overlay_with_upper_lower_first() {
        let plan = plan_overlay(&[p("/l/top"), p("/l/bottom")], &p("/u"), &p("/w"), 4096).unwrap();
        assert_eq!(
            plan,
            OverlayPlan::Overlay {
                data: "lowerdir=/l/top:/l/bottom,upperdir=/u,workdir=/w".into(),
                read_only: false
            }
        );
    }

    #[test]
    fn plans_read_only_without_upper() {
        let plan = plan_overlay(&[p("/a"), p("/b")], Path::new(""), Path::new(""), 4096).unwrap();
        assert_eq!(
            plan,
            OverlayPlan::Overlay {
                data: "lowerdir=/a:/b".into(),
                read_only: true
            }
        );
        let plan = plan_overlay(&[p("/a")], Path::new(""), Path::new(""), 4096).unwrap();
        assert_eq!(plan, OverlayPlan::ReadOnlyBind { source: p("/a") });
    }

    #[test]
    fn rejects_bad_overlay_arguments() {
        let kind = |r: io::Result<OverlayPlan>| r.unwrap_err().kind();
        assert_eq!(
            kind(plan_overlay(&[], &p("/u"), &p("/w"), 4096)),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(plan_overlay(&[p("rel")], &p("/u"), &p("/w"), 4096)),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(plan_overlay(&[p("/a:b")], &p("/u"), &p("/w"), 4096)),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(plan_overlay(&[p("/a,b")], &p("/u"), &p("/w"), 4096)),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(plan_overlay(&[p("/a")], &p("/u"), Path::new(""), 4096)),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn rejects_option_string_longer_than_a_page() {
        let lowers: Vec<PathBuf> = (0..80)
            .map(|i| p(&format!("/var/lib/corral/layers/sha256/{i:064}")))
            .collect();
        let err = plan_overlay(&lowers, &p("/u"), &p("/w"), 4096).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("more than fit in one page"),
            "{err}"
        );
        assert!(plan_overlay(&lowers[..40], &p("/u"), &p("/w"), 4096).is_ok());
    }

    #[test]
    fn parses_mountinfo_with_escapes() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    90 22 0:50 / /run/with\\040space rw - tmpfs tmpfs rw\n\
                    91 22 0:51 / /var/lib/corral/containers/abc/rootfs rw - overlay overlay rw,lowerdir=/a\n";
        let mounts = parse_mountinfo(text);
        assert_eq!(
            mounts,
            vec![
                p("/"),
                p("/run/with space"),
                p("/var/lib/corral/containers/abc/rootfs")
            ]
        );
        assert_eq!(unescape_octal("a\\134b\\011"), b"a\\b\t");
        assert_eq!(unescape_octal("trailing\\04"), b"trailing\\04");
    }

    #[test]
    fn linux_is_mounted_reads_the_given_table() {
        let dir = std::env::temp_dir().join(format!("corral-mountinfo-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("m")).unwrap();
        let target = std::fs::canonicalize(dir.join("m")).unwrap();
        let table = dir.join("mountinfo");
        std::fs::write(
            &table,
            format!(
                "91 22 0:51 / {} rw - overlay overlay rw\n",
                target.display()
            ),
        )
        .unwrap();
        let mounts = LinuxMounts::with_mountinfo(&table);
        assert!(mounts.is_mounted(&target).unwrap());
        assert!(!mounts.is_mounted(&dir).unwrap());
        assert!(!mounts.is_mounted(&dir.join("missing")).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn linux_is_mounted_knows_mount_roots_of_its_own_table() {
        let mounts = LinuxMounts::new();
        // `/proc` is a mount root wherever the tests run; a directory inside it is not.
        assert!(mounts.is_mounted(Path::new("/proc")).unwrap());
        assert!(!mounts.is_mounted(Path::new("/proc/self/fd")).unwrap());
        assert!(!mounts
            .is_mounted(Path::new("/nonexistent-corral-mount-test"))
            .unwrap());
    }

    #[test]
    fn fake_records_calls_in_order_and_tracks_state() {
        let f = FakeMounts::new();
        f.mount_overlay(&[p("/l")], &p("/u"), &p("/w"), &p("/t"))
            .unwrap();
        assert!(f.is_mounted(&p("/t")).unwrap());
        f.unmount(&p("/t")).unwrap();
        assert!(!f.is_mounted(&p("/t")).unwrap());
        assert_eq!(
            f.unmount(&p("/t")).unwrap_err().raw_os_error(),
            Some(libc::EINVAL)
        );
        let calls = f.calls();
        assert_eq!(calls.len(), 5);
        assert!(matches!(&calls[0], MountCall::Overlay { target, .. } if target == &p("/t")));
        assert_eq!(calls[2], MountCall::Unmount { target: p("/t") });
        assert!(f.mounted().is_empty());
    }

    #[test]
    fn fake_fails_the_chosen_call_once() {
        let f = FakeMounts::new();
        f.fail_next(MountOp::Overlay, libc::EBUSY);
        let err = f
            .mount_overlay(&[p("/l")], &p("/u"), &p("/w"), &p("/t"))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBUSY));
        assert!(f.mounted().is_empty());
        f.mount_overlay(&[p("/l")], &p("/u"), &p("/w"), &p("/t"))
            .unwrap();
        assert_eq!(f.mounted(), vec![p("/t")]);
        assert_eq!(f.calls().len(), 2);
    }

    fn require_root() {
        assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    }

    /// A scratch directory removed (after unmounting `target`) on drop, even on panic.
    struct Scratch {
        dir: PathBuf,
        target: PathBuf,
    }

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("corral-sys-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let target = dir.join("merged");
            Scratch { dir, target }
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.target, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    #[ignore = "needs root: mounts overlayfs"]
    fn linux_mounts_overlay_with_whiteout_and_opaque_dir() {
        require_root();
        let s = Scratch::new("overlay");
        let d = |n: &str| {
            let p = s.dir.join(n);
            std::fs::create_dir_all(&p).unwrap();
            p
        };
        let (low, high, upper, work, target) =
            (d("low"), d("high"), d("upper"), d("work"), d("merged"));
        std::fs::write(low.join("gone"), "x").unwrap();
        std::fs::create_dir(low.join("dir")).unwrap();
        std::fs::write(low.join("dir/old"), "x").unwrap();
        std::fs::write(low.join("kept"), "k").unwrap();
        create_whiteout(&high.join("gone")).unwrap();
        std::fs::create_dir(high.join("dir")).unwrap();
        set_opaque(&high.join("dir")).unwrap();
        assert!(is_opaque(&high.join("dir")).unwrap());
        assert!(!is_opaque(&low.join("dir")).unwrap());
        std::fs::write(high.join("dir/new"), "n").unwrap();

        let m = LinuxMounts::new();
        m.mount_overlay(&[high.clone(), low.clone()], &upper, &work, &target)
            .unwrap();
        assert!(m.is_mounted(&target).unwrap());
        assert!(!target.join("gone").exists());
        assert!(!target.join("dir/old").exists());
        assert!(target.join("dir/new").exists());
        assert_eq!(std::fs::read_to_string(target.join("kept")).unwrap(), "k");
        std::fs::write(target.join("written"), "w").unwrap();
        assert!(upper.join("written").exists());
        m.unmount(&target).unwrap();
        assert!(!m.is_mounted(&target).unwrap());

        // Volatile: the option reaches the kernel (this kernel has it), the overlay works.
        let options = |target: &Path| {
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .find(|l| l.split(' ').nth(4) == Some(target.to_str().unwrap()))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        m.mount_overlay_with(
            &[high.clone(), low.clone()],
            &upper,
            &work,
            &target,
            OverlayOptions { volatile: true },
        )
        .unwrap();
        // Shown as `volatile` or, since Linux 6.6, `fsync=volatile`.
        assert!(
            options(&target).contains("volatile"),
            "{}",
            options(&target)
        );
        assert_eq!(
            std::fs::read_to_string(target.join("written")).unwrap(),
            "w"
        );
        m.unmount(&target).unwrap();
        // The kernel leaves its marker even after a clean unmount and refuses the upper
        // until it is removed (the snapshotter does that for a disposable layer).
        let marker = work.join(VOLATILE_MARKER);
        assert!(marker.is_dir(), "{} expected", marker.display());
        std::fs::remove_dir_all(&marker).unwrap();
        m.mount_overlay(&[high.clone(), low.clone()], &upper, &work, &target)
            .unwrap_or_else(|e| panic!("the upper mounts again without the marker: {e}"));
        assert!(!options(&target).contains("volatile"));
        m.unmount(&target).unwrap();

        // Single lower, no upper: a read-only bind.
        m.mount_overlay(
            std::slice::from_ref(&low),
            Path::new(""),
            Path::new(""),
            &target,
        )
        .unwrap();
        assert!(target.join("kept").exists());
        let err = std::fs::write(target.join("nope"), "x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
        m.unmount(&target).unwrap();
    }

    #[test]
    fn plans_fs_mount_like_mount8() {
        let t = plan_fs_mount("tmpfs", "tmpfs", "size=100m,uid=1000,noexec");
        assert_eq!(t.flags, MsFlags::MS_NOEXEC);
        assert_eq!(t.data, "size=100m,uid=1000");
        assert!(t.propagation.is_empty());
        assert!(!t.needs_ro_remount());

        let b = plan_fs_mount("/srv", "none", "bind,ro");
        assert_eq!(b.flags, MsFlags::MS_BIND | MsFlags::MS_RDONLY);
        assert!(b.needs_ro_remount());
        assert_eq!(b.data, "");

        let r = plan_fs_mount("/srv", "none", "rbind,rprivate,rw");
        assert_eq!(r.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(r.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);

        let p = plan_fs_mount("/dev/sdb1", "ext4", "rshared,ro,errors=remount-ro");
        assert_eq!(p.flags, MsFlags::MS_RDONLY);
        assert_eq!(p.propagation, MsFlags::MS_SHARED | MsFlags::MS_REC);
        assert_eq!(p.data, "errors=remount-ro");

        let e = plan_fs_mount("tmpfs", "tmpfs", "");
        assert!(e.flags.is_empty() && e.data.is_empty());
    }

    #[test]
    fn describes_fs_mount_and_hides_passwords() {
        let b = plan_fs_mount("/nonexistent", "none", "bind");
        assert_eq!(
            b.describe(&p("/v/_data")),
            "mount /nonexistent:/v/_data, flags: 0x1000"
        );
        let c = plan_fs_mount("//h/s", "cifs", "username=u,password=secret,vers=3.0");
        assert_eq!(
            c.describe(&p("/t")),
            "mount //h/s:/t, data: username=u,password=********,vers=3.0"
        );
    }

    #[test]
    fn fake_records_and_fails_fs_mounts() {
        let f = FakeMounts::new();
        let plan = plan_fs_mount("tmpfs", "tmpfs", "size=1m");
        f.fail_next(MountOp::Fs, libc::EINVAL);
        let err = f.mount_fs(&plan, &p("/t")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(
            err.to_string()
                .starts_with("mount tmpfs:/t, data: size=1m: "),
            "{err}"
        );
        assert!(f.mounted().is_empty());
        f.mount_fs(&plan, &p("/t")).unwrap();
        assert_eq!(f.mounted(), vec![p("/t")]);
        assert_eq!(
            f.calls()[1],
            MountCall::Fs {
                plan,
                target: p("/t")
            }
        );
    }

    #[test]
    #[ignore = "needs root: mounts tmpfs and binds"]
    fn linux_mounts_tmpfs_and_read_only_bind() {
        require_root();
        let s = Scratch::new("fsmount");
        std::fs::create_dir_all(&s.target).unwrap();
        let m = LinuxMounts::new();
        m.mount_fs(
            &plan_fs_mount("tmpfs", "tmpfs", "size=1m,mode=0700"),
            &s.target,
        )
        .unwrap();
        assert!(m.is_mounted(&s.target).unwrap());
        let text = std::fs::read_to_string(PROC_SELF_MOUNTINFO).unwrap();
        let line = text
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(s.target.to_str().unwrap()))
            .unwrap();
        assert!(
            line.contains(" - tmpfs tmpfs ") && line.contains("size=1024k"),
            "{line}"
        );
        m.unmount(&s.target).unwrap();
        assert!(!m.is_mounted(&s.target).unwrap());

        let src = s.dir.join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("f"), "x").unwrap();
        m.mount_fs(
            &plan_fs_mount(src.to_str().unwrap(), "none", "bind,ro"),
            &s.target,
        )
        .unwrap();
        assert_eq!(std::fs::read(s.target.join("f")).unwrap(), b"x");
        let err = std::fs::write(s.target.join("g"), "x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
        m.unmount(&s.target).unwrap();

        let err = m
            .mount_fs(
                &plan_fs_mount("/nonexistent-corral", "none", "bind"),
                &s.target,
            )
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().starts_with("mount /nonexistent-corral:"),
            "{err}"
        );
        assert!(!m.is_mounted(&s.target).unwrap());
    }

    #[test]
    fn page_size_is_sane() {
        let n = page_size();
        assert!(n >= 4096 && n.is_power_of_two());
    }
}
