//! Container root filesystems: an overlay of image layers plus a per-container upper dir,
//! under `<root>/containers/<id>/{upper,work,rootfs}`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use corral_oci::Digest;
use corral_sys::mount::{Mounts, OverlayOptions, VOLATILE_MARKER};

use crate::error::{Error, Result};

/// The directories of one container's rootfs; plain data, built by
/// [`Snapshotter::prepare`] and applied by [`Snapshotter::mount`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsPlan {
    /// The container.
    pub id: String,
    /// Layer directories, top-most first (overlayfs `lowerdir` order).
    pub lower: Vec<PathBuf>,
    /// The container's writable layer.
    pub upper: PathBuf,
    /// overlayfs work dir (same file system as `upper`).
    pub work: PathBuf,
    /// Where the merged view is mounted.
    pub rootfs: PathBuf,
    /// Mount the overlay `volatile` ([`OverlayOptions::volatile`]): set for a writable
    /// layer removed with its container when it ends (`--rm`).
    pub volatile: bool,
}

/// Prepares, mounts and removes container root filesystems.
pub struct Snapshotter {
    layers: PathBuf,
    containers: PathBuf,
    mounts: Arc<dyn Mounts>,
}

impl std::fmt::Debug for Snapshotter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshotter")
            .field("containers", &self.containers)
            .finish_non_exhaustive()
    }
}

// === impl Snapshotter ===

impl Snapshotter {
    /// A snapshotter over the image store at `root` (layers in `<root>/layers/sha256`).
    ///
    /// # Errors
    /// [`Error::Io`] when `<root>/containers` cannot be created.
    pub fn new(root: &Path, mounts: Arc<dyn Mounts>) -> Result<Self> {
        let containers = root.join("containers");
        fs::create_dir_all(&containers).map_err(Error::io("create dir", &containers))?;
        Ok(Snapshotter {
            layers: root.join("layers").join("sha256"),
            containers,
            mounts,
        })
    }

    /// Creates the container's directories (idempotent) and returns the plan.
    /// `diff_ids` are lowest-first, as in an image config. An image without layers gets an
    /// empty lower dir.
    ///
    /// # Errors
    /// [`Error::InvalidId`], [`Error::LayerNotFound`] when a layer is not unpacked,
    /// [`Error::Io`].
    pub fn prepare(&self, container_id: &str, diff_ids: &[Digest]) -> Result<RootfsPlan> {
        let dir = self.container_dir(container_id)?;
        let mut lower = Vec::with_capacity(diff_ids.len().max(1));
        for d in diff_ids.iter().rev() {
            let p = self.layers.join(d.hex());
            if !p.is_dir() {
                return Err(Error::LayerNotFound(d.to_string()));
            }
            lower.push(p);
        }
        let plan = RootfsPlan {
            id: container_id.to_owned(),
            lower,
            upper: dir.join("upper"),
            work: dir.join("work"),
            rootfs: dir.join("rootfs"),
            volatile: false,
        };
        let mut dirs = vec![&plan.upper, &plan.work, &plan.rootfs];
        let empty = dir.join("empty");
        if plan.lower.is_empty() {
            dirs.push(&empty);
        }
        for d in dirs {
            fs::create_dir_all(d).map_err(Error::io("create dir", d))?;
        }
        let mut plan = plan;
        if plan.lower.is_empty() {
            plan.lower.push(empty);
        }
        Ok(plan)
    }

    /// Mounts the plan's overlay on its `rootfs`; a no-op when already mounted.
    ///
    /// # Errors
    /// [`Error::Mount`].
    pub fn mount(&self, plan: &RootfsPlan) -> Result<()> {
        let mount_err = |op, source| Error::Mount {
            op,
            id: plan.id.clone(),
            source,
        };
        if self
            .mounts
            .is_mounted(&plan.rootfs)
            .map_err(|e| mount_err("inspect", e))?
        {
            return Ok(());
        }
        if plan.volatile {
            // A disposable layer mounted volatile before (a restart): the kernel's marker
            // stays after the unmount and would make it refuse the upper.
            let marker = plan.work.join(VOLATILE_MARKER);
            match fs::remove_dir_all(&marker) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("remove overlay volatile marker", &marker)(e));
                }
                _ => {}
            }
        }
        self.mounts
            .mount_overlay_with(
                &plan.lower,
                &plan.upper,
                &plan.work,
                &plan.rootfs,
                OverlayOptions {
                    volatile: plan.volatile,
                },
            )
            .map_err(|e| mount_err("mount", e))
    }

    /// The rootfs path of `container_id`.
    ///
    /// # Errors
    /// [`Error::InvalidId`].
    pub fn rootfs(&self, container_id: &str) -> Result<PathBuf> {
        Ok(self.container_dir(container_id)?.join("rootfs"))
    }

    /// Unmounts the container's rootfs; a no-op when not mounted.
    ///
    /// # Errors
    /// [`Error::InvalidId`], [`Error::Mount`].
    pub fn unmount(&self, container_id: &str) -> Result<()> {
        let rootfs = self.rootfs(container_id)?;
        let mount_err = |op, source| Error::Mount {
            op,
            id: container_id.to_owned(),
            source,
        };
        if self
            .mounts
            .is_mounted(&rootfs)
            .map_err(|e| mount_err("inspect", e))?
        {
            self.mounts
                .unmount(&rootfs)
                .map_err(|e| mount_err("unmount", e))?;
        }
        Ok(())
    }

    /// Unmounts (if needed) and deletes the container's directories, including its
    /// writable layer. Removing a container that has none is not an error.
    ///
    /// # Errors
    /// [`Error::InvalidId`], [`Error::Mount`] (nothing is deleted then), [`Error::Io`].
    pub fn remove(&self, container_id: &str) -> Result<()> {
        let dir = self.container_dir(container_id)?;
        if !dir.exists() {
            return Ok(());
        }
        self.unmount(container_id)?;
        fs::remove_dir_all(&dir).map_err(Error::io("remove container dir", &dir))
    }

    /// [`Snapshotter::remove`], except that the directories are moved into `trash` (see
    /// [`crate::trash`]) rather than deleted: returns where they went, for the caller to
    /// delete off the request's path; `None` when there was nothing to remove or the move
    /// failed and they were deleted in place.
    ///
    /// # Errors
    /// As [`Snapshotter::remove`].
    pub fn remove_into(&self, container_id: &str, trash: &Path) -> Result<Option<PathBuf>> {
        let dir = self.container_dir(container_id)?;
        if !dir.exists() {
            return Ok(None);
        }
        self.unmount(container_id)?;
        if let Some(moved) = crate::trash::move_into(&dir, trash) {
            return Ok(Some(moved));
        }
        fs::remove_dir_all(&dir).map_err(Error::io("remove container dir", &dir))?;
        Ok(None)
    }

    fn container_dir(&self, id: &str) -> Result<PathBuf> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !id.starts_with('.');
        if !ok {
            return Err(Error::InvalidId(id.to_owned()));
        }
        Ok(self.containers.join(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_sys::mount::{FakeMounts, LinuxMounts, MountCall, MountOp};

    use crate::testutil::{require_root, TarBuilder};
    use crate::ImageStore;

    fn store_with_layers(root: &Path, tars: Vec<Vec<u8>>) -> Vec<Digest> {
        let store = ImageStore::open(root).unwrap();
        tars.into_iter()
            .map(|t| store.import_layer(t.as_slice()).unwrap().0)
            .collect()
    }

    fn two_layers(root: &Path) -> Vec<Digest> {
        let mut low = TarBuilder::new();
        low.file("kept", b"k")
            .file("gone", b"g")
            .file("dir/old", b"o")
            .file("over", b"low");
        let mut high = TarBuilder::new();
        high.file(".wh.gone", b"")
            .dir("dir/")
            .file("dir/.wh..wh..opq", b"")
            .file("dir/new", b"n")
            .file("over", b"high");
        store_with_layers(root, vec![low.finish(), high.finish()])
    }

    fn simple_layers(root: &Path) -> Vec<Digest> {
        let mut a = TarBuilder::new();
        a.file("a", b"a");
        let mut b = TarBuilder::new();
        b.file("b", b"b");
        store_with_layers(root, vec![a.finish(), b.finish()])
    }

    #[test]
    fn prepare_lists_lowers_top_most_first_and_creates_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let layers = simple_layers(dir.path());
        let snap = Snapshotter::new(dir.path(), Arc::new(FakeMounts::new())).unwrap();
        let plan = snap.prepare("c1", &layers).unwrap();
        let l = |d: &Digest| dir.path().join("layers/sha256").join(d.hex());
        assert_eq!(plan.lower, vec![l(&layers[1]), l(&layers[0])]);
        let c = dir.path().join("containers/c1");
        assert_eq!(
            (plan.upper.clone(), plan.work.clone(), plan.rootfs.clone()),
            (c.join("upper"), c.join("work"), c.join("rootfs"))
        );
        assert!(plan.upper.is_dir() && plan.work.is_dir() && plan.rootfs.is_dir());
        // Idempotent.
        assert_eq!(snap.prepare("c1", &layers).unwrap(), plan);
    }

    #[test]
    fn prepare_rejects_missing_layers_and_bad_ids() {
        let dir = tempfile::tempdir().unwrap();
        let snap = Snapshotter::new(dir.path(), Arc::new(FakeMounts::new())).unwrap();
        let missing = Digest::sha256_of(b"nope");
        assert!(matches!(
            snap.prepare("c1", &[missing]),
            Err(Error::LayerNotFound(_))
        ));
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(
                matches!(snap.prepare(bad, &[]), Err(Error::InvalidId(_))),
                "{bad}"
            );
        }
        let plan = snap.prepare("empty", &[]).unwrap();
        assert_eq!(plan.lower, vec![dir.path().join("containers/empty/empty")]);
        assert!(plan.lower[0].is_dir());
    }

    #[test]
    fn mount_unmount_remove_against_fake() {
        let dir = tempfile::tempdir().unwrap();
        let layers = simple_layers(dir.path());
        let fake = Arc::new(FakeMounts::new());
        let snap = Snapshotter::new(dir.path(), fake.clone()).unwrap();
        let plan = snap.prepare("c1", &layers).unwrap();
        snap.mount(&plan).unwrap();
        snap.mount(&plan).unwrap(); // already mounted: no second mount
        snap.unmount("c1").unwrap();
        snap.unmount("c1").unwrap(); // not mounted: no unmount call
        snap.mount(&plan).unwrap();
        snap.remove("c1").unwrap();
        assert!(!dir.path().join("containers/c1").exists());
        snap.remove("c1").unwrap();

        let r = plan.rootfs.clone();
        let overlay = MountCall::Overlay {
            lower: plan.lower.clone(),
            upper: plan.upper.clone(),
            work: plan.work.clone(),
            target: r.clone(),
            volatile: false,
        };
        let is = MountCall::IsMounted { target: r.clone() };
        let um = MountCall::Unmount { target: r.clone() };
        assert_eq!(
            fake.calls(),
            vec![
                is.clone(),
                overlay.clone(), // mount
                is.clone(),      // mount again
                is.clone(),
                um.clone(), // unmount
                is.clone(), // unmount again
                is.clone(),
                overlay, // mount
                is,
                um, // remove
            ]
        );
        assert!(fake.mounted().is_empty());
    }

    #[test]
    fn mount_failure_is_reported_and_remove_keeps_data_when_unmount_fails() {
        let dir = tempfile::tempdir().unwrap();
        let layers = simple_layers(dir.path());
        let fake = Arc::new(FakeMounts::new());
        let snap = Snapshotter::new(dir.path(), fake.clone()).unwrap();
        let plan = snap.prepare("c1", &layers).unwrap();
        fake.fail_next(MountOp::Overlay, libc_ebusy());
        let err = snap.mount(&plan).unwrap_err();
        assert!(matches!(err, Error::Mount { op: "mount", .. }), "{err}");
        assert_eq!(err.to_string(), "mount rootfs of container c1");
        snap.mount(&plan).unwrap();
        fake.fail_next(MountOp::Unmount, libc_ebusy());
        assert!(matches!(
            snap.remove("c1"),
            Err(Error::Mount { op: "unmount", .. })
        ));
        assert!(
            plan.upper.is_dir(),
            "writable layer must survive a failed unmount"
        );
    }

    fn libc_ebusy() -> i32 {
        16
    }

    /// Unmounts on drop so a failing assertion does not leak a mount.
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let m = LinuxMounts::new();
            if m.is_mounted(&self.0).unwrap_or(false) {
                let _ = m.unmount(&self.0);
            }
        }
    }

    #[test]
    #[ignore = "needs root: mounts overlayfs"]
    fn real_overlay_of_two_layers_honours_whiteout_and_opaque_dir() {
        require_root();
        let dir = tempfile::tempdir().unwrap();
        let layers = two_layers(dir.path());
        let snap = Snapshotter::new(dir.path(), Arc::new(LinuxMounts::new())).unwrap();
        let plan = snap.prepare("real", &layers).unwrap();
        snap.mount(&plan).unwrap();
        let _guard = Unmount(plan.rootfs.clone());
        let r = &plan.rootfs;
        assert_eq!(fs::read_to_string(r.join("kept")).unwrap(), "k");
        assert_eq!(fs::read_to_string(r.join("over")).unwrap(), "high");
        assert!(
            !r.join("gone").exists(),
            "whiteout must hide the lower file"
        );
        assert!(
            !r.join("dir/old").exists(),
            "opaque dir must hide lower contents"
        );
        assert_eq!(fs::read_to_string(r.join("dir/new")).unwrap(), "n");
        fs::write(r.join("written"), "w").unwrap();
        assert!(plan.upper.join("written").is_file());
        snap.unmount("real").unwrap();
        assert!(!r.join("kept").exists());
        snap.remove("real").unwrap();
        assert!(!dir.path().join("containers/real").exists());
    }
}
