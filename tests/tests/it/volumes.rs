//! Volumes: named and anonymous, population from the image, `rm -v`, in-use refusal,
//! inspect, `ls` filters and prune.

use std::sync::atomic::{AtomicU32, Ordering};

use corral_testkit::{BusyboxImage, SubjectKind};

use crate::common::{assert_contains, Env};

/// A unique volume name; tests remove their named volumes themselves.
fn vol_name(base: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "e2e-{base}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `volume ls -q` with filters, sorted.
fn volume_names(env: &Env, filter: &[&str]) -> Vec<String> {
    let mut args = vec!["volume", "ls", "-q"];
    for f in filter {
        args.push("--filter");
        args.push(f);
    }
    let mut v: Vec<String> = env
        .docker(&args)
        .ok()
        .out()
        .lines()
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "needs root: starts an engine"]
fn named_volume_data_outlives_containers_and_rm_refuses_in_use() {
    let env = Env::new();
    let v = vol_name("data");
    // Auto-created on first use.
    env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{v}:/data"),
        &env.image,
        "sh",
        "-c",
        "echo hello > /data/f",
    ])
    .ok();
    let mut lines = volume_names(&env, &[]);
    lines.retain(|n| n == &v);
    assert_eq!(lines, vec![v.clone()], "volume survives container removal");
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        &format!("type=volume,source={v},target=/m,readonly"),
        &env.image,
        "sh",
        "-c",
        "cat /m/f; touch /m/g 2>/dev/null && echo writable || echo readonly",
    ]);
    assert_eq!(out.ok().out(), "hello\nreadonly");

    let c = env.sleeper("vol-user", &["-v", &format!("{v}:/data")]);
    let id = env.inspect("{{.Id}}", &c);
    assert_eq!(
        env.inspect(
            "{{range .Mounts}}{{.Type}} {{.Name}} {{.Driver}} {{.Mode}} {{.RW}}{{end}}",
            &c
        ),
        format!("volume {v} local z true")
    );
    let err = env.docker(&["volume", "rm", &v]);
    err.failed();
    assert_contains(err.err(), &format!("remove {v}: volume is in use - [{id}]"));
    // Stopped containers still hold it.
    env.docker(&["stop", "-t", "0", &c]).ok();
    env.docker(&["volume", "rm", &v]).failed();
    env.docker(&["rm", "-v", &c]).ok();
    // `rm -v` keeps named volumes.
    assert_eq!(env.inspect("{{.Name}}", &v), v);
    env.docker(&["volume", "rm", &v]).ok();
    let err = env.docker(&["volume", "inspect", &v]);
    err.failed();
    assert_contains(err.err(), "no such volume");
    let err = env.docker(&["volume", "rm", &v]);
    err.failed();
    assert_contains(err.err(), &format!("get {v}: no such volume"));
    env.docker(&["volume", "rm", "-f", &v]).ok();
}

#[test]
#[ignore = "needs root: starts an engine"]
fn new_volume_is_populated_from_the_image_once() {
    let env = Env::new();
    let img = env.pull(
        BusyboxImage::new()
            .with_layer(|l| {
                l.dir_owned("/seed", 0o750, 1000, 1001).file_owned(
                    "/seed/a.txt",
                    "from image",
                    0o640,
                    1000,
                    1001,
                )
            })
            .volume("/seed"),
        "vol/seeded:latest",
    );
    let v = vol_name("pop");
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{v}:/seed"),
        &img,
        "sh",
        "-c",
        "cat /seed/a.txt; echo; stat -c '%u:%g %a' /seed /seed/a.txt; echo changed > /seed/a.txt",
    ]);
    assert_eq!(out.ok().out(), "from image\n1000:1001 750\n1000:1001 640");
    // Not empty any more: the image content is not copied again.
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{v}:/seed"),
        &img,
        "cat",
        "/seed/a.txt",
    ]);
    assert_eq!(out.ok().out(), "changed");
    // The same volume mounted elsewhere in a plain image shows the data.
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &format!("{v}:/x"),
        &env.image,
        "cat",
        "/x/a.txt",
    ]);
    assert_eq!(out.ok().out(), "changed");
    env.docker(&["volume", "rm", &v]).ok();
}

#[test]
#[ignore = "needs root: starts an engine"]
fn anonymous_volumes_come_from_image_volume_and_go_with_rm_v() {
    let env = Env::new();
    let img = env.pull(
        BusyboxImage::new()
            .with_layer(|l| l.dir("/vol", 0o755).file("/vol/seed", "s", 0o644))
            .volume("/vol"),
        "vol/anon:latest",
    );
    let before = volume_names(&env, &[]);
    let c = env.name("anon");
    env.docker(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        "-v",
        "/extra",
        &img,
        "sh",
        "-c",
        "cat /vol/seed; touch /extra/x",
    ])
    .ok();
    let mut after = volume_names(&env, &[]);
    after.retain(|n| !before.contains(n));
    assert_eq!(
        after.len(),
        2,
        "one for VOLUME /vol, one for -v /extra: {after:?}"
    );
    for n in &after {
        assert_eq!(n.len(), 64, "anonymous names are 64 hex digits: {n}");
    }
    // Inspect's Mounts list both as volumes.
    let mounts = env.inspect(
        "{{range .Mounts}}{{.Type}} {{.Destination}} {{.Driver}} {{.RW}} {{.Mode}}{{.Propagation}}|{{end}}",
        &c,
    );
    let mut parts: Vec<&str> = mounts.split('|').filter(|s| !s.is_empty()).collect();
    parts.sort_unstable();
    assert_eq!(
        parts,
        ["volume /extra local true ", "volume /vol local true "]
    );
    let name_of_vol = env.inspect(
        "{{range .Mounts}}{{if eq .Destination \"/vol\"}}{{.Name}} {{.Source}}{{end}}{{end}}",
        &c,
    );
    let (name, source) = name_of_vol.split_once(' ').unwrap();
    assert!(after.contains(&name.to_owned()));
    assert!(
        source.ends_with(&format!("/volumes/{name}/_data")),
        "{source}"
    );
    // Anonymous volumes in use are not dangling.
    let dangling = volume_names(&env, &["dangling=true"]);
    assert!(!dangling.iter().any(|d| after.contains(d)));
    env.docker(&["rm", "-v", &c]).ok();
    let mut left = volume_names(&env, &[]);
    left.retain(|n| !before.contains(n));
    assert!(left.is_empty(), "rm -v removes anonymous volumes: {left:?}");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn volume_create_inspect_ls_filters_and_prune() {
    let env = Env::new();
    let a = vol_name("lsa");
    let b = vol_name("lsb");
    env.docker(&[
        "volume", "create", "--label", "team=x", "--label", "tier", &a,
    ])
    .ok();
    env.docker(&["volume", "create", &b]).ok();
    // Creating an existing volume again succeeds and keeps it.
    assert_eq!(env.docker(&["volume", "create", &b]).ok().out(), b);
    let shown = env.inspect(
        "{{.Name}} {{.Driver}} {{.Scope}} {{index .Labels \"team\"}}",
        &a,
    );
    assert_eq!(shown, format!("{a} local local x"));
    let mp = env.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &a]);
    assert!(mp.ok().out().ends_with(&format!("/volumes/{a}/_data")));
    let created = env.docker(&["volume", "inspect", "-f", "{{.CreatedAt}}", &a]);
    let created = created.ok().out();
    assert!(
        created.len() >= 20 && created.as_bytes()[10] == b'T',
        "RFC 3339: {created}"
    );

    assert_eq!(volume_names(&env, &["label=team=x"]), vec![a.clone()]);
    assert_eq!(volume_names(&env, &["label=tier"]), vec![a.clone()]);
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    let mut named = volume_names(&env, &[&format!("name={}", &a[..a.len() - 2])]);
    named.retain(|n| both.contains(n));
    assert!(named.contains(&a));
    let mut local = volume_names(&env, &["driver=local"]);
    local.retain(|n| both.contains(n));
    assert_eq!(local, both);
    let c = env.sleeper("ls-user", &["-v", &format!("{b}:/b")]);
    let mut dangling = volume_names(&env, &["dangling=true"]);
    dangling.retain(|n| both.contains(n));
    assert_eq!(dangling, vec![a.clone()]);
    let mut used = volume_names(&env, &["dangling=false"]);
    used.retain(|n| both.contains(n));
    assert_eq!(used, vec![b.clone()]);

    let bad = env.docker(&["volume", "create", "a@b"]);
    bad.failed();
    assert_contains(
        bad.err(),
        "\"a@b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed",
    );

    // Prune with a label filter removes only matching unused volumes. The reference
    // dockerd speaks API 1.41, where prune covers every unused volume; from API 1.42 on
    // only anonymous ones unless `--all`.
    let out = if env.subject.kind() == SubjectKind::Docker {
        env.docker(&["volume", "prune", "-f", "--filter", "label=team=x"])
    } else {
        let kept = env.docker(&["volume", "prune", "-f", "--filter", "label=team=x"]);
        assert!(!kept.ok().out().contains(&a), "{kept}");
        assert!(volume_names(&env, &[]).contains(&a));
        env.docker(&["volume", "prune", "-f", "--all", "--filter", "label=team=x"])
    };
    assert_contains(out.ok().out(), &a);
    let mut left = volume_names(&env, &[]);
    left.retain(|n| both.contains(n));
    assert_eq!(left, vec![b.clone()], "in-use volume is kept");
    env.docker(&["rm", "-f", &c]).ok();
    env.docker(&["volume", "rm", &b]).ok();
}

#[test]
#[ignore = "needs root: starts an engine"]
fn volume_events_carry_dockerd_attributes() {
    let env = Env::new();
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let v = vol_name("ev");
    env.docker(&["volume", "create", &v]).ok();
    let c = env.name("ev");
    env.docker(&[
        "run",
        "--name",
        &c,
        "--network",
        "none",
        "-v",
        &format!("{v}:/d:ro"),
        &env.image,
        "true",
    ])
    .ok();
    let id = env.inspect("{{.Id}}", &c);
    env.docker(&["rm", &c]).ok();
    env.docker(&["volume", "rm", &v]).ok();
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = env.docker(&[
        "events",
        "--since",
        &start.to_string(),
        "--until",
        &end.to_string(),
        "--filter",
        "type=volume",
        "--filter",
        &format!("volume={v}"),
        "--format",
        "{{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
    ]);
    let lines: Vec<String> = out
        .ok()
        .out()
        .lines()
        .map(|l| l.replace(&id, "ID"))
        .collect();
    assert_eq!(
        lines,
        [
            format!("create {v} {{\"driver\":\"local\"}}"),
            // dockerd reports `create` again when a container references the volume.
            format!("create {v} {{\"driver\":\"local\"}}"),
            format!("mount {v} {{\"container\":\"ID\",\"destination\":\"/d\",\"driver\":\"local\",\"propagation\":\"\",\"read/write\":\"false\"}}"),
            format!("unmount {v} {{\"container\":\"ID\",\"driver\":\"local\"}}"),
            format!("destroy {v} {{\"driver\":\"local\"}}"),
        ]
    );
}
