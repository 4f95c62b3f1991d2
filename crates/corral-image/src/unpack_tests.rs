//! The layer-unpacking corpus: hostile tarballs that must stay inside the layer directory.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use corral_oci::media_type;
use corral_oci::Digest;
use tar::EntryType;

use crate::error::Error;
use crate::layer::LayerStore;
use crate::testutil::{gzip, listing, require_root, zstd, TarBuilder};

/// A store root plus a sentinel directory beside it that no layer may touch.
struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
    store: LayerStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("sentinel"), "original").unwrap();
        fs::create_dir_all(&root).unwrap();
        let store = LayerStore::open(&root).unwrap();
        Fixture {
            _dir: dir,
            root,
            outside,
            store,
        }
    }

    fn blob(&self, name: &str, data: &[u8]) -> std::path::PathBuf {
        let p = self.root.join(name);
        fs::write(&p, data).unwrap();
        p
    }

    fn assert_outside_untouched(&self) {
        assert_eq!(listing(&self.outside), vec!["sentinel".to_string()]);
        assert_eq!(
            fs::read_to_string(self.outside.join("sentinel")).unwrap(),
            "original"
        );
        assert_eq!(
            fs::metadata(self.outside.join("sentinel")).unwrap().nlink(),
            1
        );
    }
}

fn hostile_corpus(outside: &Path) -> Vec<u8> {
    let out = outside.display().to_string();
    let mut t = TarBuilder::new();
    // Layer temp dirs live at <tmp>/root/layers/tmp/layer-XXXX, so four `..` reach <tmp>.
    t.file("../../../../outside/sentinel", b"pwned")
        .file("../../etc/x", b"x")
        .file("/abs", b"abs")
        // Symlink out, then write through it (absolute and relative targets).
        .symlink("evil", "/")
        .file("evil/etc/passwd", b"pwned")
        .symlink("evil2", &out)
        .file("evil2/sentinel", b"pwned")
        .file("evil2/new", b"pwned")
        .symlink("rel", "../../../../outside")
        .file("rel/sentinel", b"pwned")
        // A symlink chain that ends outside.
        .symlink("a", "b")
        .symlink("b", "c")
        .symlink("c", &out)
        .file("a/sentinel", b"pwned")
        .hardlink("hl_chain", "a/sentinel")
        // Hard links to host files and out of the layer.
        .hardlink("hl_passwd", "/etc/passwd")
        .hardlink("hl_up", "../x")
        .hardlink("hl_out", &format!("{out}/sentinel"))
        // A hard link inside the layer is fine, also when its name needed cleaning.
        .hardlink("hl_in", "../etc/x")
        // A regular file replacing a symlink must not write through it.
        .symlink("over", &format!("{out}/sentinel"))
        .file("over", b"replaced")
        // Devices are skipped.
        .device(EntryType::Char, "dev/null", 1, 3)
        .device(EntryType::Block, "dev/sda", 8, 0)
        .device(EntryType::Fifo, "dev/fifo", 0, 0)
        // Whiteouts naming the directory itself or its parent are malformed.
        .file(".wh.", b"")
        .file("etc/.wh..", b"")
        .file("etc/.wh...", b"")
        // setuid is fine.
        .file_mode("bin/su", b"#!", 0o4755);
    t.finish()
}

#[test]
fn hostile_layer_stays_inside_the_layer_dir() {
    let f = Fixture::new();
    let tar = hostile_corpus(&f.outside);
    let diff_id = Digest::sha256_of(&tar);
    let blob = f.blob("blob", &gzip(&tar));
    let got = f
        .store
        .unpack(&blob, media_type::OCI_LAYER_GZIP, &diff_id)
        .unwrap();
    assert!(got.extracted);
    // The size is file content (moby's diff size), not the tar's length.
    assert!(got.size > 0 && got.size < tar.len() as u64, "{}", got.size);
    f.assert_outside_untouched();
    let layer = f.store.path(&diff_id);
    assert_eq!(
        listing(&layer),
        vec![
            "a@",
            "abs",
            "b@",
            "bin/",
            "bin/su",
            "c@",
            "dev/",
            "etc/",
            "etc/x",
            "evil2@",
            "evil@",
            "hl_in",
            "outside/",
            "outside/sentinel",
            "over",
            "rel@",
        ]
    );
    assert_eq!(
        fs::read_to_string(layer.join("outside/sentinel")).unwrap(),
        "pwned"
    );
    assert_eq!(fs::read_to_string(layer.join("over")).unwrap(), "replaced");
    assert_eq!(fs::read_link(layer.join("evil2")).unwrap(), f.outside);
    assert_eq!(
        fs::metadata(layer.join("hl_in")).unwrap().ino(),
        fs::metadata(layer.join("etc/x")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(layer.join("bin/su"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o4755
    );
    // Nothing escaped to the store root either.
    assert!(!f.root.join("etc").exists() && !f.root.join("abs").exists());
}

#[test]
fn plain_and_zstd_layers_unpack_and_report_their_size() {
    let f = Fixture::new();
    let mut t = TarBuilder::new();
    t.dir("d/").file("d/f", b"hello").symlink("l", "d/f");
    let tar = t.finish();
    let diff_id = Digest::sha256_of(&tar);
    let blob = f.blob("z", &zstd(&tar));
    let got = f
        .store
        .unpack(&blob, media_type::OCI_LAYER_ZSTD, &diff_id)
        .unwrap();
    // "hello": the only regular file's content.
    assert_eq!(got.size, 5);
    assert_eq!(f.store.size(&diff_id).unwrap(), 5);
    let layer = f.store.path(&diff_id);
    assert_eq!(fs::read_to_string(layer.join("l")).unwrap(), "hello");
    assert_eq!(
        fs::symlink_metadata(layer.join("d/f")).unwrap().mtime(),
        1_600_000_000
    );
    // Unpacking again is a no-op.
    let again = f
        .store
        .unpack(&blob, media_type::OCI_LAYER_ZSTD, &diff_id)
        .unwrap();
    assert!(!again.extracted);

    let plain = f.blob("p", &tar);
    f.store.remove(&diff_id).unwrap();
    assert!(!f.store.contains(&diff_id));
    assert!(f.store.size(&diff_id).is_err());
    f.store
        .unpack(&plain, media_type::DOCKER_LAYER_TAR, &diff_id)
        .unwrap();
    assert!(f.store.contains(&diff_id));
}

#[test]
fn diff_id_mismatch_leaves_nothing_behind() {
    let f = Fixture::new();
    let mut t = TarBuilder::new();
    t.file("f", b"content");
    let tar = t.finish();
    let wrong = Digest::sha256_of(b"something else");
    let blob = f.blob("blob", &gzip(&tar));
    let err = f
        .store
        .unpack(&blob, media_type::DOCKER_LAYER_GZIP, &wrong)
        .unwrap_err();
    match &err {
        Error::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, wrong.as_str());
            assert_eq!(actual, Digest::sha256_of(&tar).as_str());
        }
        other => panic!("unexpected {other}"),
    }
    for sub in ["layers/sha256", "layers/tmp", "layers/meta"] {
        assert!(listing(&f.root.join(sub)).is_empty(), "{sub} not empty");
    }
}

#[test]
fn rejects_unknown_media_type_and_corrupt_blob() {
    let f = Fixture::new();
    let blob = f.blob("blob", b"not a tarball at all, and not gzip either");
    let d = Digest::sha256_of(b"x");
    assert!(matches!(
        f.store.unpack(&blob, "application/octet-stream", &d),
        Err(Error::UnsupportedMediaType(_))
    ));
    assert!(f
        .store
        .unpack(&blob, media_type::OCI_LAYER_GZIP, &d)
        .is_err());
    assert!(listing(&f.root.join("layers/tmp")).is_empty());
}

#[test]
fn concurrent_unpacks_of_one_layer_extract_once() {
    let f = Arc::new(Fixture::new());
    let mut t = TarBuilder::new();
    for i in 0..50 {
        t.file(&format!("f{i}"), &[b'x'; 4096]);
    }
    let tar = t.finish();
    let diff_id = Digest::sha256_of(&tar);
    let blob = f.blob("blob", &gzip(&tar));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (f, blob, d) = (f.clone(), blob.clone(), diff_id.clone());
            std::thread::spawn(move || {
                f.store
                    .unpack(&blob, media_type::OCI_LAYER_GZIP, &d)
                    .unwrap()
            })
        })
        .collect();
    let extracted = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|l| l.extracted)
        .count();
    assert_eq!(extracted, 1);
    assert_eq!(listing(&f.store.path(&diff_id)).len(), 50);
}

#[test]
fn import_computes_diff_id_of_uncompressed_stream() {
    let f = Fixture::new();
    let mut t = TarBuilder::new();
    t.file("etc/hostname", b"corral");
    let tar = t.finish();
    let got = f.store.import(gzip(&tar).as_slice()).unwrap();
    assert_eq!(got.diff_id, Digest::sha256_of(&tar));
    assert_eq!(got.size, "corral".len() as u64);
    assert!(got.extracted);
    let again = f.store.import(tar.as_slice()).unwrap();
    assert_eq!(again.diff_id, got.diff_id);
    assert!(!again.extracted);
    let z = f.store.import(zstd(&tar).as_slice()).unwrap();
    assert_eq!(z.diff_id, got.diff_id);
    assert!(listing(&f.root.join("layers/tmp")).is_empty());
}

#[test]
#[ignore = "needs root: creates whiteout devices and trusted xattrs"]
fn converts_whiteouts_to_overlay_form() {
    require_root();
    let f = Fixture::new();
    let mut t = TarBuilder::new();
    t.dir("dir/")
        .file("dir/.wh..wh..opq", b"")
        .file("dir/new", b"n")
        .file(".wh.gone", b"")
        .file("sub/.wh.deleted", b"")
        .file("sub/.wh..wh.plnk", b"");
    let tar = t.finish();
    let diff_id = Digest::sha256_of(&tar);
    let blob = f.blob("blob", &tar);
    f.store
        .unpack(&blob, media_type::OCI_LAYER_TAR, &diff_id)
        .unwrap();
    let layer = f.store.path(&diff_id);
    assert_eq!(
        listing(&layer),
        vec!["dir/", "dir/new", "gone%", "sub/", "sub/deleted%"]
    );
    let m = fs::symlink_metadata(layer.join("gone")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), 0);
    assert!(corral_sys::mount::is_opaque(&layer.join("dir")).unwrap());
    assert!(!corral_sys::mount::is_opaque(&layer.join("sub")).unwrap());
}

#[test]
#[ignore = "needs root: chown to other users"]
fn preserves_ownership_mode_and_drops_trusted_xattrs() {
    require_root();
    let f = Fixture::new();
    let mut t = TarBuilder::new();
    t.file_owned("usr/bin/tool", b"bin", 0o4750, 1234, 5678);
    let mut tar = t.finish();
    // Append a PAX header carrying xattrs before one more file.
    let mut b = tar::Builder::new(Vec::new());
    let pax: Vec<(&str, &[u8])> = vec![
        ("SCHILY.xattr.user.note", b"hi"),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
    ];
    b.append_pax_extensions(pax).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("tagged").unwrap();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"t"[..]).unwrap();
    let extra = b.into_inner().unwrap();
    tar.truncate(tar.len() - 1024);
    tar.extend_from_slice(&extra);
    let diff_id = Digest::sha256_of(&tar);
    let blob = f.blob("blob", &tar);
    f.store
        .unpack(&blob, media_type::OCI_LAYER_TAR, &diff_id)
        .unwrap();
    let layer = f.store.path(&diff_id);
    let m = fs::metadata(layer.join("usr/bin/tool")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    assert_eq!(m.permissions().mode() & 0o7777, 0o4750);
    assert_eq!(
        xattr::get(layer.join("tagged"), "user.note").unwrap(),
        Some(b"hi".to_vec())
    );
    assert_eq!(
        xattr::get(layer.join("tagged"), "trusted.overlay.redirect").unwrap(),
        None
    );
}

#[test]
fn directory_replaced_by_a_symlink_does_not_chmod_through_it() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let sentinel = f.outside.join("sentinel");
    fs::set_permissions(&sentinel, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&f.outside, fs::Permissions::from_mode(0o700)).unwrap();
    let target = sentinel.display().to_string();
    let mut t = TarBuilder::new();
    // `x/` and `d/` are recorded (mode 0755) for the end of extraction, then replaced by links out.
    t.dir("x/")
        .symlink("x", &target)
        .dir("d/")
        .dir("d/e/")
        .symlink("d", &f.outside.display().to_string());
    let tar = t.finish();
    let diff_id = Digest::sha256_of(&tar);
    let blob = f.blob("swap", &tar);
    f.store
        .unpack(&blob, media_type::OCI_LAYER_TAR, &diff_id)
        .unwrap();
    let mode = fs::metadata(&sentinel).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600, "chmod went through the symlink");
    let outside_mode = fs::metadata(&f.outside).unwrap().permissions().mode() & 0o7777;
    assert_eq!(outside_mode, 0o700, "chmod went through the symlinked dir");
    f.assert_outside_untouched();
}
