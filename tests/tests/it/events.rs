//! `docker events`: the order of a `run --rm`, `--since`/`--until` replay (also across a
//! daemon restart), filters in both JSON forms, `--format '{{json .}}'`, and `--until`
//! ending a live stream.

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use corral_testkit::{assert_eventually, http_get_unix, SubjectKind, DOCKER_CLI};
use serde_json::Value;

use crate::common::{assert_contains, Env};

/// Now as the docker CLI sends times: unix seconds with nanoseconds.
pub(crate) fn unix_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// `docker events --since S --until U --filter F… --format FORMAT`, one entry per line.
pub(crate) fn events_between(
    env: &Env,
    since: &str,
    until: &str,
    filters: &[&str],
    format: &str,
) -> Vec<String> {
    let mut args = vec![
        "events", "--since", since, "--until", until, "--format", format,
    ];
    for f in filters {
        args.extend_from_slice(&["--filter", f]);
    }
    env.docker(&args)
        .ok()
        .out()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
#[ignore = "needs root: starts an engine"]
fn run_rm_emits_container_events_in_dockers_order() {
    let env = Env::new();
    let since = unix_now();
    let c = env.name("rmorder");
    env.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        &c,
        &env.image,
        "true",
    ])
    .ok();
    let filter = format!("container={c}");
    let mut got = Vec::new();
    // `destroy` may follow the CLI's exit (the daemon removes the container).
    assert_eventually!(
        {
            got = events_between(
                &env,
                &since,
                &unix_now(),
                &[&filter],
                "{{.Type}} {{.Action}}",
            );
            got.last().map(String::as_str) == Some("container destroy")
        },
        "{got:?}"
    );
    assert_eq!(
        got,
        vec![
            "container create",
            "container attach",
            "container start",
            "container die",
            "container destroy"
        ]
    );
    let die = events_between(
        &env,
        &since,
        &unix_now(),
        &[&filter, "event=die"],
        "{{json .}}",
    );
    assert_eq!(die.len(), 1, "{die:?}");
    let v: Value = serde_json::from_str(&die[0]).unwrap();
    assert_eq!(v["Type"], "container");
    assert_eq!(v["Action"], "die");
    assert_eq!(v["status"], "die");
    assert_eq!(v["scope"], "local");
    assert_eq!(v["from"], env.image.as_str());
    assert_eq!(v["id"], v["Actor"]["ID"]);
    let attrs = &v["Actor"]["Attributes"];
    assert_eq!(attrs["name"], c.as_str());
    assert_eq!(attrs["image"], env.image.as_str());
    assert_eq!(attrs["exitCode"], "0");
    let (time, nanos) = (v["time"].as_i64().unwrap(), v["timeNano"].as_i64().unwrap());
    assert_eq!(nanos / 1_000_000_000, time);
}

#[test]
#[ignore = "needs root: starts an engine"]
fn since_until_and_filters_select_events() {
    let env = Env::new();
    let since = unix_now();
    let vol = format!("e2e-evvol-{}", std::process::id());
    env.docker(&["volume", "create", &vol]).ok();
    let c = env.name("evfilter");
    env.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        &c,
        "--label",
        "team=blue",
        "-v",
        &format!("{vol}:/data"),
        &env.image,
        "sh",
        "-c",
        "exit 3",
    ])
    .ok();
    env.docker(&["start", &c]).ok();
    assert_eq!(env.docker(&["wait", &c]).ok().out(), "3");
    let renamed = env.name("evrenamed");
    env.docker(&["rename", &c, &renamed]).ok();
    let tag = format!("{}:evtag", env.image.rsplit_once(':').unwrap().0);
    env.docker(&["tag", &env.image, &tag]).ok();
    env.docker(&["rmi", &tag]).ok();
    env.docker(&["rm", &renamed]).ok();
    env.docker(&["volume", "rm", &vol]).ok();
    let until = unix_now();

    let vol_events = events_between(
        &env,
        &since,
        &until,
        &[&format!("volume={vol}")],
        "{{.Type}} {{.Action}} {{.Actor.Attributes.driver}}",
    );
    // dockerd announces `create` again when a container's `-v` names an existing volume.
    assert_eq!(
        vol_events,
        vec![
            "volume create local",
            "volume create local",
            "volume mount local",
            "volume unmount local",
            "volume destroy local"
        ]
    );
    let mount = events_between(
        &env,
        &since,
        &until,
        &[&format!("volume={vol}"), "event=mount"],
        "{{json .Actor.Attributes}}",
    );
    let m: Value = serde_json::from_str(&mount[0]).unwrap();
    assert_eq!(m["destination"], "/data");
    assert_eq!(m["read/write"], "true");
    assert_eq!(m["driver"], "local");
    assert_eq!(m["container"].as_str().unwrap().len(), 64);

    // `--until` alone replays everything retained before it.
    let until_only = env
        .docker(&[
            "events",
            "--until",
            &until,
            "--filter",
            &format!("volume={vol}"),
            "--format",
            "{{.Action}}",
        ])
        .ok()
        .out()
        .to_owned();
    assert_eq!(until_only, "create\ncreate\nmount\nunmount\ndestroy");
    // The 20.10 CLI too.
    if let Some(out) = corral_testkit::docker20(
        &env.subject,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=volume",
            "--filter",
            "event=destroy",
            "--format",
            "{{.Actor.ID}}",
        ],
    ) {
        assert_eq!(out.ok().out(), vol);
    }
    let labelled = events_between(&env, &since, &until, &["label=team=blue"], "{{.Action}}");
    assert_eq!(
        labelled,
        vec!["create", "start", "die", "rename", "destroy"]
    );
    let renames = events_between(
        &env,
        &since,
        &until,
        &[&format!("container={renamed}"), "event=rename"],
        "{{.Actor.Attributes.oldName}}",
    );
    assert_eq!(renames, vec![format!("/{c}")]);
    let dies = events_between(
        &env,
        &since,
        &until,
        &["type=container", "event=die"],
        "{{.Actor.Attributes.exitCode}}",
    );
    assert_eq!(dies, vec!["3"]);
    let images = events_between(
        &env,
        &since,
        &until,
        &["type=image"],
        "{{.Action}} {{.Actor.Attributes.name}}",
    );
    // `untag` names the image id, not the reference (as dockerd does).
    let image_id = env.inspect("{{.Id}}", &env.image);
    assert_eq!(
        images,
        vec![format!("tag {tag}"), format!("untag {image_id}")]
    );
    // Several values of one key are alternatives; different keys must all hold.
    let two = events_between(
        &env,
        &since,
        &until,
        &["event=create", "event=destroy", "type=volume"],
        "{{.Action}}",
    );
    assert_eq!(two, vec!["create", "create", "destroy"]);
    assert!(events_between(
        &env,
        &since,
        &until,
        &["type=network", "event=destroy"],
        "{{.Action}}"
    )
    .iter()
    .all(|a| a == "destroy"));

    // The API takes both JSON forms of `filters`.
    let socket = env.subject.socket();
    let query = |filters: &str| {
        let path = format!(
            "/events?since={}&until={}&filters={}",
            encode(&since),
            encode(&until),
            encode(filters)
        );
        let (code, body) = http_get_unix(&socket, &path).unwrap();
        assert_eq!(code, 200, "{body}");
        body.lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                format!(
                    "{} {}",
                    v["Type"].as_str().unwrap(),
                    v["Action"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
    };
    let list = query(&format!(r#"{{"type":["volume"],"volume":["{vol}"]}}"#));
    let map = query(&format!(
        r#"{{"type":{{"volume":true}},"volume":{{"{vol}":true}}}}"#
    ));
    assert_eq!(list.len(), 5, "{list:?}");
    assert_eq!(list, map);
    let (code, body) = http_get_unix(
        &socket,
        &format!("/events?since={}&until={}", encode(&until), encode(&since)),
    )
    .unwrap();
    assert_eq!(code, 400, "{body}");
    assert_contains(&body, "cannot be after `until` time");
}

#[test]
#[ignore = "needs root: starts an engine"]
fn a_future_until_streams_live_events_then_ends() {
    let env = Env::new();
    let since = unix_now();
    let until = {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_secs(4);
        format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
    };
    let vol = format!("e2e-evlive-{}", std::process::id());
    let child = env
        .subject
        .command(DOCKER_CLI)
        .args([
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=volume",
            "--format",
            "{{.Action}} {{.Actor.ID}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    env.docker(&["volume", "create", &vol]).ok();
    env.docker(&["volume", "rm", &vol]).ok();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec![format!("create {vol}"), format!("destroy {vol}")]
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn since_replays_events_from_before_a_daemon_restart() {
    if SubjectKind::from_env().ok() == Some(SubjectKind::Docker) {
        eprintln!(
            "skipped: dockerd keeps events in memory only; persistence across restarts is Corral's"
        );
        return;
    }
    let mut env = Env::new();
    let since = unix_now();
    let vol = format!("e2e-evpersist-{}", std::process::id());
    env.docker(&["volume", "create", &vol]).ok();
    let c = env.name("evpersist");
    env.docker(&[
        "create",
        "--network",
        "none",
        "--name",
        &c,
        &env.image,
        "true",
    ])
    .ok();
    // Let the writer commit before the crash (it batches in the background).
    std::thread::sleep(Duration::from_millis(500));
    env.subject
        .corral()
        .expect("corral daemon")
        .kill9_and_restart()
        .expect("restart the daemon");
    env.docker(&["volume", "rm", &vol]).ok();
    let got = events_between(
        &env,
        &since,
        &unix_now(),
        &["type=container", "type=volume"],
        "{{.Type}} {{.Action}}",
    );
    assert_eq!(
        got,
        vec!["volume create", "container create", "volume destroy"]
    );
}

#[test]
#[ignore = "needs root: starts an engine"]
fn lifecycle_and_image_events_come_in_dockers_order() {
    let env = Env::new();
    let since = unix_now();
    let c = env.sleeper("evlife", &["--label", "tier=web"]);
    env.docker(&["pause", &c]).ok();
    env.docker(&["unpause", &c]).ok();
    env.docker(&["kill", "-s", "USR1", &c]).ok();
    env.docker(&["stop", "-t", "1", &c]).ok();
    env.docker(&["start", &c]).ok();
    env.docker(&["restart", "-t", "1", &c]).ok();
    env.docker(&["rm", "-f", &c]).ok();
    let filter = format!("container={c}");
    let mut got = Vec::new();
    assert_eventually!(
        {
            got = events_between(
                &env,
                &since,
                &unix_now(),
                &[&filter],
                "{{.Action}} {{.Actor.Attributes.signal}}{{.Actor.Attributes.exitCode}} {{.Actor.Attributes.tier}}",
            );
            got.last().is_some_and(|l| l.starts_with("destroy"))
        },
        "{got:?}"
    );
    // The CLI prints `<no value>` for attributes an event does not have.
    let got: Vec<String> = got.iter().map(|l| l.replace("<no value>", "")).collect();
    assert_eq!(
        got,
        vec![
            "create  web",
            "start  web",
            "pause  web",
            "unpause  web",
            "kill 10 web",
            "kill 15 web",
            "kill 9 web",
            "die 137 web",
            "stop  web",
            "start  web",
            "kill 15 web",
            "kill 9 web",
            "die 137 web",
            "stop  web",
            "start  web",
            "restart  web",
            "kill 9 web",
            "die 137 web",
            "destroy  web",
        ]
    );
    let since = unix_now();
    let saved = tempfile::tempdir().unwrap();
    let tar = saved.path().join("img.tar");
    env.docker(&["save", "-o", tar.to_str().unwrap(), &env.image])
        .ok();
    let image_id = env.inspect("{{.Id}}", &env.image);
    let images = events_between(
        &env,
        &since,
        &unix_now(),
        &["type=image"],
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    );
    assert_eq!(images, vec![format!("save {image_id} {image_id}")]);
}
