//! Filesystem views of a container: diff, export and cp.

use crate::common::{assert_contains, Env};

#[test]
#[ignore = "needs root: starts an engine"]
fn diff_lists_added_changed_and_deleted_paths() {
    let env = Env::new();
    let c = env.name("diff");
    env.docker(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "mkdir /newdir && echo x > /newdir/f && rm /bin/yes && echo y >> /etc/passwd",
    ])
    .ok();
    let out = env.docker(&["diff", &c]);
    let mut lines: Vec<&str> = out.ok().out().lines().collect();
    lines.sort_unstable();
    // Docker hides the files it manages itself (/etc/hosts, /etc/hostname, /etc/resolv.conf).
    assert_eq!(
        lines,
        [
            "A /newdir",
            "A /newdir/f",
            "C /bin",
            "C /etc",
            "C /etc/passwd",
            "D /bin/yes"
        ]
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn export_writes_the_merged_rootfs_as_tar() {
    let env = Env::new();
    let c = env.name("export");
    env.docker(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "mkdir /newdir && echo x > /newdir/f && rm /bin/yes",
    ])
    .ok();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.tar");
    env.docker(&["export", "-o", file.to_str().unwrap(), &c])
        .ok();
    let mut ar = tar::Archive::new(std::fs::File::open(&file).unwrap());
    let mut names = Vec::new();
    let mut f_contents = String::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "newdir/f" {
            std::io::Read::read_to_string(&mut e, &mut f_contents).unwrap();
        }
        names.push(name);
    }
    for want in [
        "bin/busybox",
        "bin/sh",
        "etc/passwd",
        "newdir/",
        "newdir/f",
        "tmp/",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n == "bin/yes"),
        "deleted file exported"
    );
    assert!(
        !names.iter().any(|n| n.contains(".wh.")),
        "whiteout exported"
    );
    assert_eq!(f_contents, "x\n");
    // Exporting to stdout gives the same archive.
    let out = env.docker(&["export", &c]);
    assert!(out.ok().stdout_bytes.len() > 1_000_000);
}

#[test]
#[ignore = "needs root: starts an engine"]
fn cp_copies_files_in_and_out() {
    let env = Env::new();
    let c = env.name("cp");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "echo inside > /tmp/out.txt; mkdir -p /tmp/d/sub; echo deep > /tmp/d/sub/f; sleep 1000",
    ])
    .ok();
    corral_testkit::assert_eventually!(env
        .docker(&["exec", &c, "test", "-f", "/tmp/d/sub/f"])
        .success());
    let host = tempfile::tempdir().unwrap();
    let hp = host.path();
    std::fs::write(hp.join("in.txt"), "hostdata\n").unwrap();
    env.docker(&[
        "cp",
        hp.join("in.txt").to_str().unwrap(),
        &format!("{c}:/tmp/in.txt"),
    ])
    .ok();
    assert_eq!(
        env.docker(&["exec", &c, "cat", "/tmp/in.txt"]).ok().out(),
        "hostdata"
    );
    env.docker(&[
        "cp",
        &format!("{c}:/tmp/out.txt"),
        hp.join("out.txt").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(hp.join("out.txt")).unwrap(),
        "inside\n"
    );
    // Directories copy recursively.
    env.docker(&["cp", &format!("{c}:/tmp/d"), hp.join("d").to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read_to_string(hp.join("d/sub/f")).unwrap(),
        "deep\n"
    );
    // Works on stopped containers too.
    env.docker(&["kill", &c]).ok();
    env.docker(&[
        "cp",
        &format!("{c}:/tmp/in.txt"),
        hp.join("back.txt").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(hp.join("back.txt")).unwrap(),
        "hostdata\n"
    );
}

/// A created container's rootfs is mounted ahead of its start (Corral) or not at all
/// (dockerd): either way a file copied in before the start is there when it runs, and a
/// created container removed without ever starting leaves no mount behind.
#[test]
#[ignore = "needs root: starts an engine"]
fn cp_into_created_container_then_start_and_rm_unstarted_leaves_no_mount() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "before-start\n").unwrap();
    let c = env.name("cp-created");
    env.docker(&[
        "create",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "cat",
        "/in.txt",
    ])
    .ok();
    env.docker(&[
        "cp",
        host.path().join("in.txt").to_str().unwrap(),
        &format!("{c}:/in.txt"),
    ])
    .ok();
    assert_eq!(env.docker(&["start", "-a", &c]).ok().out(), "before-start");
    // Never started: created, then removed.
    let unstarted = env.name("rm-created");
    env.docker(&[
        "create",
        "--name",
        &unstarted,
        "--network",
        "none",
        &env.image,
        "true",
    ])
    .ok();
    let id = env.inspect("{{.Id}}", &unstarted);
    env.docker(&["rm", &unstarted]).ok();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.lines().any(|l| l.contains(&id)),
        "a mount of removed container {id} is left:\n{mounts}"
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn cp_of_missing_path_fails() {
    let env = Env::new();
    let c = env.sleeper("cp-missing", &[]);
    let host = tempfile::tempdir().unwrap();
    let out = env.docker(&["cp", &format!("{c}:/nope"), host.path().to_str().unwrap()]);
    out.failed();
    assert_contains(
        &out.stderr,
        &format!("Could not find the file /nope in container {c}"),
    );
    let src = host.path().join("x");
    std::fs::write(&src, "x").unwrap();
    let out = env.docker(&[
        "cp",
        src.to_str().unwrap(),
        &format!("{c}:/nonexistent/dir/x"),
    ]);
    out.failed();
    assert_contains(
        &out.stderr,
        &format!("Could not find the file /nonexistent/dir in container {c}"),
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn cp_resolves_symlinks_inside_the_container_root() {
    let env = Env::new();
    let c = env.name("cp-escape");
    env.docker(&[
        "run",
        "-d",
        "--name",
        &c,
        "--network",
        "none",
        &env.image,
        "sh",
        "-c",
        "ln -s ../../../../../../etc /tmp/etclink; ln -s /etc/passwd /tmp/pwlink; \
         ln -s / /tmp/rootlink; sleep 1000",
    ])
    .ok();
    corral_testkit::assert_eventually!(env
        .docker(&["exec", &c, "test", "-L", "/tmp/rootlink"])
        .success());
    let host = tempfile::tempdir().unwrap();
    let hp = host.path();
    let marker = format!("e2e-evil-{}", std::process::id());

    // Copying in through a symlink that points "above" / lands inside the container.
    std::fs::write(hp.join("evil"), "evil\n").unwrap();
    env.docker(&[
        "cp",
        hp.join("evil").to_str().unwrap(),
        &format!("{c}:/tmp/etclink/{marker}"),
    ])
    .ok();
    assert!(
        !std::path::Path::new("/etc").join(&marker).exists(),
        "cp wrote to the host /etc"
    );
    env.docker(&["exec", &c, "test", "-f", &format!("/etc/{marker}")])
        .ok();
    env.docker(&[
        "cp",
        hp.join("evil").to_str().unwrap(),
        &format!("{c}:/tmp/rootlink/{marker}"),
    ])
    .ok();
    assert!(
        !std::path::Path::new("/").join(&marker).exists(),
        "cp wrote to the host /"
    );

    // Copying out through such a symlink reads the container's file, not the host's.
    env.docker(&[
        "cp",
        &format!("{c}:/tmp/etclink/passwd"),
        hp.join("pw").to_str().unwrap(),
    ])
    .ok();
    let pw = std::fs::read_to_string(hp.join("pw")).unwrap();
    assert_contains(&pw, "app:x:1000:1000:app:/home/app:/bin/sh");
    // The last path element is copied as the symlink itself, never followed to the host.
    env.docker(&[
        "cp",
        &format!("{c}:/tmp/pwlink"),
        hp.join("pwlink").to_str().unwrap(),
    ])
    .ok();
    let meta = std::fs::symlink_metadata(hp.join("pwlink")).unwrap();
    assert!(meta.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(hp.join("pwlink")).unwrap(),
        std::path::Path::new("/etc/passwd")
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn cp_reaches_bind_mounts_and_volumes_running_or_stopped() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    let hp = host.path();
    let bind = hp.join("bind");
    std::fs::create_dir(&bind).unwrap();
    std::fs::write(bind.join("h"), "on-host\n").unwrap();
    let v = format!("e2e-cpvol-{}", std::process::id());
    let t = format!("e2e-cptmpfs-{}", std::process::id());
    env.docker(&["volume", "create", &v]).ok();
    env.docker(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        &t,
    ])
    .ok();
    let c = env.sleeper(
        "cpmounts",
        &[
            "-v",
            &format!("{}:/hb", bind.display()),
            "-v",
            &format!("{v}:/vol"),
            "-v",
            &format!("{v}:/volro:ro"),
            "--mount",
            &format!("type=bind,src={},dst=/hbro,readonly", bind.display()),
            "-v",
            &format!("{t}:/tm"),
        ],
    );
    std::fs::write(hp.join("in"), "copied\n").unwrap();
    let inp = hp.join("in");
    let inp = inp.to_str().unwrap();
    // Copy in: into the bind's host directory and the volume's data.
    env.docker(&["cp", inp, &format!("{c}:/hb/")]).ok();
    assert_eq!(
        std::fs::read_to_string(bind.join("in")).unwrap(),
        "copied\n"
    );
    env.docker(&["cp", inp, &format!("{c}:/vol/")]).ok();
    assert_eq!(
        env.docker(&["exec", &c, "cat", "/volro/in"]).ok().out(),
        "copied"
    );
    env.docker(&["cp", inp, &format!("{c}:/tm/")]).ok();
    assert_eq!(
        env.docker(&["exec", &c, "cat", "/tm/in"]).ok().out(),
        "copied"
    );
    // Read-only mounts refuse, with dockerd's message.
    for dst in ["/volro/", "/hbro/"] {
        let out = env.docker(&["cp", inp, &format!("{c}:{dst}")]);
        assert_contains(out.failed().err(), "mounted volume is marked read-only");
    }
    // Copy out.
    let out = env.docker(&["cp", &format!("{c}:/hb/h"), hp.join("h1").to_str().unwrap()]);
    out.ok();
    assert_eq!(std::fs::read_to_string(hp.join("h1")).unwrap(), "on-host\n");
    // The mount point itself copies out under its own name.
    env.docker(&[
        "cp",
        &format!("{c}:/vol"),
        hp.join("volcopy").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(hp.join("volcopy/in")).unwrap(),
        "copied\n"
    );
    // Stopped: the volume is still reached; the tmpfs volume is mounted afresh (empty).
    env.docker(&["stop", "-t", "0", &c]).ok();
    env.docker(&[
        "cp",
        &format!("{c}:/volro/in"),
        hp.join("in2").to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(hp.join("in2")).unwrap(), "copied\n");
    let out = env.docker(&[
        "cp",
        &format!("{c}:/tm/in"),
        hp.join("in3").to_str().unwrap(),
    ]);
    assert_contains(out.failed().err(), "Could not find the file /tm/in");
    env.docker(&["cp", inp, &format!("{c}:/hb/again")]).ok();
    assert_eq!(
        std::fs::read_to_string(bind.join("again")).unwrap(),
        "copied\n"
    );
    // A writable volume of a read-only rootfs takes copies; the rootfs does not.
    let r = env.sleeper("cpro", &["--read-only", "-v", &format!("{v}:/vol")]);
    env.docker(&["cp", inp, &format!("{r}:/vol/ro-ok")]).ok();
    let out = env.docker(&["cp", inp, &format!("{r}:/")]);
    assert_contains(out.failed().err(), "container rootfs is marked read-only");
    env.docker(&["rm", "-f", &c, &r]).ok();
    env.docker(&["volume", "rm", &v, &t]).ok();
}
