//! `docker build` with the classic builder (`POST /build`): the CLI 28 without buildx
//! sends the context tar; each expectation was checked against dockerd 20.10.

use std::path::Path;

use crate::common::{assert_contains, Env};

/// Writes `files` (path, contents) under a new context directory.
fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("context dir");
    for (p, c) in files {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, c).expect("write context file");
    }
    dir
}

fn build(env: &Env, tag: &str, ctx: &Path, extra: &[&str]) -> corral_testkit::Output {
    let mut args = vec!["build", "-t", tag];
    args.extend_from_slice(extra);
    let ctx = ctx.to_str().expect("utf-8 path");
    args.push(ctx);
    env.docker(&args)
}

#[test]
#[ignore = "needs root: starts an engine"]
fn build_runs_instructions_and_the_image_runs() {
    let env = Env::new();
    let tag = format!("{}:v1", env.name("built").to_ascii_lowercase());
    env.track_image(&tag);
    let df = format!(
        "# a comment\n\
         ARG BASE={base}\n\
         FROM $BASE\n\
         ARG GREETING=hello\n\
         ENV APP_HOME=/srv/app \\\n    MODE=prod\n\
         WORKDIR $APP_HOME\n\
         COPY hello.txt ./\n\
         COPY dir/ sub/\n\
         RUN echo \"$GREETING from run\" > run.txt && mkdir -p /made && echo ok\n\
         LABEL org.example.name=\"demo app\" version=1\n\
         EXPOSE 8080 53/udp\n\
         USER 1000:1000\n\
         CMD [\"cat\", \"run.txt\"]\n",
        base = env.image
    );
    let ctx = context(&[
        ("Dockerfile", &df),
        ("hello.txt", "hi there\n"),
        ("dir/a.txt", "A\n"),
        ("dir/deep/b.txt", "B\n"),
    ]);
    let out = build(&env, &tag, ctx.path(), &["--build-arg", "GREETING=howdy"]);
    out.ok();
    let text = out.out();
    assert_contains(text, "Step 1/12 : ARG BASE=");
    assert_contains(text, "Step 2/12 : FROM ");
    assert_contains(text, " ---> Running in ");
    assert_contains(text, "\nok\n");
    assert_contains(text, "Removing intermediate container ");
    assert_contains(text, "Successfully built ");
    assert_contains(text, &format!("Successfully tagged {tag}"));
    // The image runs with the built config.
    let run = env.docker(&["run", "--rm", "--network", "none", &tag]);
    assert_eq!(run.ok().out(), "howdy from run");
    let run = env.docker(&[
        "run", "--rm", "--network", "none", &tag, "sh", "-c",
        "pwd; id -u; echo $MODE; cat hello.txt sub/a.txt sub/deep/b.txt; ls -d /made; stat -c %u hello.txt",
    ]);
    assert_eq!(
        run.ok().out(),
        "/srv/app\n1000\nprod\nhi there\nA\nB\n/made\n0"
    );
    assert_eq!(
        env.inspect("{{json .Config.Labels}}", &tag),
        r#"{"org.example.name":"demo app","version":"1"}"#
    );
    assert_eq!(
        env.inspect("{{json .Config.ExposedPorts}}", &tag),
        r#"{"53/udp":{},"8080/tcp":{}}"#
    );
    assert_eq!(
        env.inspect("{{json .Config.Cmd}}", &tag),
        r#"["cat","run.txt"]"#
    );
    assert_eq!(env.inspect("{{.Config.User}}", &tag), "1000:1000");
    // Build args never reach the image's environment.
    let envs = env.inspect("{{json .Config.Env}}", &tag);
    assert!(!envs.contains("GREETING"), "{envs}");
    assert_contains(&envs, "APP_HOME=/srv/app");
    // History: the RUN line with its build args, empty layers for config steps.
    let hist = env
        .docker(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", &tag])
        .ok()
        .out()
        .to_owned();
    assert_contains(
        &hist,
        "|1 GREETING=howdy /bin/sh -c echo \"$GREETING from run\"",
    );
    assert_contains(&hist, "/bin/sh -c #(nop)  EXPOSE 53/udp 8080");
    assert_contains(&hist, "/bin/sh -c #(nop) WORKDIR /srv/app");
    assert_contains(&hist, " in sub/ ");
    assert_contains(&hist, "/bin/sh -c #(nop)  CMD [\"cat\" \"run.txt\"]");
    // No intermediate container is left.
    let ps = env.docker(&["ps", "-aq"]).ok().out().to_owned();
    assert_eq!(ps, "", "leftover containers: {ps}");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn failing_run_stops_the_build_with_dockerds_message() {
    let env = Env::new();
    let tag = env.name("fails").to_ascii_lowercase();
    let ctx = context(&[(
        "Dockerfile",
        &format!(
            "FROM {}\nRUN echo before\nRUN false\nRUN echo never\n",
            env.image
        ),
    )]);
    let out = build(&env, &tag, ctx.path(), &[]);
    assert!(!out.success(), "{out}");
    assert_contains(out.out(), "Step 3/4 : RUN false");
    assert!(!out.out().contains("never"), "{out}");
    assert_contains(
        out.err(),
        "The command '/bin/sh -c false' returned a non-zero code: 1",
    );
    assert!(!env.docker(&["image", "inspect", &tag]).success());
    // As dockerd with --rm (not --force-rm): the failed step's container stays.
    let ps = env
        .docker(&["ps", "-a", "--format", "{{.Command}} {{.Status}}"])
        .ok()
        .out()
        .to_owned();
    assert_contains(&ps, "\"/bin/sh -c false\" Exited (1)");
    for id in env.docker(&["ps", "-aq"]).ok().out().lines() {
        env.docker(&["rm", "-f", id]).ok();
    }
    // --force-rm removes it too.
    let out = build(&env, &tag, ctx.path(), &["--force-rm"]);
    assert!(!out.success());
    assert_eq!(env.docker(&["ps", "-aq"]).ok().out(), "");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn bad_dockerfiles_are_refused_clearly() {
    let env = Env::new();
    let tag = env.name("bad").to_ascii_lowercase();
    let ctx = context(&[("Dockerfile", &format!("FROM {}\n\nFOO bar\n", env.image))]);
    let out = build(&env, &tag, ctx.path(), &[]);
    assert!(!out.success());
    assert_contains(
        out.err(),
        "dockerfile parse error line 3: unknown instruction: FOO",
    );
    let ctx = context(&[(
        "Dockerfile",
        &format!("FROM {}\nCOPY missing.txt /\n", env.image),
    )]);
    let out = build(&env, &tag, ctx.path(), &[]);
    assert!(!out.success());
    assert_contains(out.err(), "missing.txt");
    // A Dockerfile that is not there (named in the context sent on stdin).
    let ctx = context(&[("Dockerfile", "FROM x\n")]);
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", ctx.path()).unwrap();
    let tar = tar.into_inner().unwrap();
    let out = env.docker_stdin(&["build", "-f", "Other", "-"], &tar);
    assert!(!out.success());
    assert_contains(out.err(), "Cannot locate specified Dockerfile: Other");
    assert_eq!(env.docker(&["ps", "-aq"]).ok().out(), "");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn dockerignore_and_globs_select_what_is_copied() {
    let env = Env::new();
    let tag = env.name("ignore").to_ascii_lowercase();
    env.track_image(&tag);
    let ctx = context(&[
        (
            "Dockerfile",
            &format!("FROM {}\nCOPY . /ctx/\nCOPY *.md /docs/\n", env.image),
        ),
        (".dockerignore", "*.log\nsecret\n!keep.log\n"),
        ("a.md", "a"),
        ("b.md", "b"),
        ("x.log", "x"),
        ("keep.log", "k"),
        ("secret/key", "s"),
    ]);
    build(&env, &tag, ctx.path(), &[]).ok();
    let out = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &tag,
        "sh",
        "-c",
        "ls -A /ctx /docs",
    ]);
    assert_eq!(
        out.ok().out(),
        "/ctx:\n.dockerignore\nDockerfile\na.md\nb.md\nkeep.log\n\n/docs:\na.md\nb.md"
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn multi_stage_copy_from_target_chown_and_add_tar() {
    let env = Env::new();
    let tag = env.name("stages").to_ascii_lowercase();
    env.track_image(&tag);
    // A tar for ADD to extract.
    let mut tb = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    tb.append_data(&mut h, "inner/x.txt", &b"xyz"[..]).unwrap();
    let tarball = tb.into_inner().unwrap();
    let dir = context(&[(
        "Dockerfile",
        &format!(
            "FROM {img} AS builder\n\
             RUN mkdir /out && echo artefact > /out/a.bin\n\
             FROM {img} AS final\n\
             COPY --from=builder /out/a.bin /app/\n\
             COPY --chown=1234:5678 Dockerfile /owned\n\
             ADD t.tar /unpacked/\n\
             FROM {img} AS later\n\
             RUN false\n",
            img = env.image
        ),
    )]);
    std::fs::write(dir.path().join("t.tar"), &tarball).unwrap();
    let out = build(&env, &tag, dir.path(), &["--target", "nosuch"]);
    assert!(!out.success(), "no such stage: {out}");
    assert_contains(
        out.err(),
        "failed to reach build target nosuch in Dockerfile",
    );
    // --target stops before the failing last stage.
    build(&env, &tag, dir.path(), &["--target", "final"]).ok();
    let run = env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &tag,
        "sh",
        "-c",
        "cat /app/a.bin /unpacked/inner/x.txt; echo; stat -c %u:%g /owned",
    ]);
    assert_eq!(run.ok().out(), "artefact\nxyz\n1234:5678");
}
