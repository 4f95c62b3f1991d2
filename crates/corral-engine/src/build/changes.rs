//! The `changes` of `docker commit --change` and `docker import --change`: Dockerfile
//! instructions applied to an image `Config`, as dockerd's `BuildFromConfig` does. They go
//! through the builder's parser ([`super::dockerfile`]) and instruction code
//! ([`Stage::apply`]), so an instruction means the same here as in a build.
//!
//! Pure: no I/O.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::dockerfile::{check_instruction, key_value_words, parse_instructions};
use super::plan::{BuildError, Stage};

/// The instructions dockerd 20.10 accepts as a change (its `validCommitCommands`).
/// `HEALTHCHECK` is one of them; `STOPSIGNAL` is not.
pub const CHANGE_INSTRUCTIONS: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// The flags `HEALTHCHECK` takes; no other change instruction takes any.
const HEALTHCHECK_FLAGS: &[&str] = &["interval", "timeout", "start-period", "retries"];

/// Applies `changes` to `config` (Docker `Config` keys) and returns the new config.
///
/// The changes are read as one Dockerfile, one change a line, as dockerd joins them (so a
/// change ending in `\` continues on the next). Every instruction is checked before any is
/// applied; variables expand from the config's `Env` as the instructions apply; `WORKDIR`
/// only sets the directory. No changes leave `config` as it is.
///
/// # Errors
/// dockerd's message ([`BuildError::invalid`]): `run is not a valid change command`,
/// `ENV must have two arguments`, `Unknown flag: x`, `file with no instructions` for
/// blank changes, and so on.
pub fn apply_changes(
    config: Map<String, Value>,
    changes: &[String],
) -> Result<Map<String, Value>, BuildError> {
    if changes.is_empty() {
        return Ok(config);
    }
    let df = parse_instructions(&changes.join("\n")).map_err(|e| BuildError::invalid(e.message))?;
    // dockerd's parser reads `ENV` and `LABEL` pairs before it checks the instructions.
    for ins in &df.instructions {
        if matches!(ins.keyword.as_str(), "ENV" | "LABEL") && !ins.rest.trim().is_empty() {
            key_value_words(&ins.keyword, &ins.rest, df.escape)
                .map_err(|e| BuildError::invalid(e.0))?;
        }
    }
    if let Some(ins) = df
        .instructions
        .iter()
        .find(|i| !CHANGE_INSTRUCTIONS.contains(&i.keyword.as_str()))
    {
        // dockerd names the instruction by its lower-case AST node.
        return Err(BuildError::invalid(format!(
            "{} is not a valid change command",
            ins.keyword.to_ascii_lowercase()
        )));
    }
    for ins in &df.instructions {
        check_instruction(ins).map_err(BuildError::invalid)?;
        let allowed: &[&str] = if ins.keyword == "HEALTHCHECK" {
            HEALTHCHECK_FLAGS
        } else {
            &[]
        };
        if let Some((k, _)) = ins
            .flags
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            return Err(BuildError::invalid(format!("Unknown flag: {k}")));
        }
    }
    let mut stage = Stage {
        config,
        escape: df.escape,
        ..Stage::default()
    };
    let none = BTreeMap::new();
    for ins in &df.instructions {
        stage.apply(ins, &none, &none, &mut Vec::new())?;
    }
    Ok(stage.config)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn apply_to(config: Value, changes: &[&str]) -> Result<Value, String> {
        let c: Vec<String> = changes.iter().map(|s| (*s).to_owned()).collect();
        let config = config.as_object().cloned().unwrap_or_default();
        apply_changes(config, &c)
            .map(Value::Object)
            .map_err(|e| e.message)
    }

    fn apply(changes: &[&str]) -> Value {
        apply_to(json!({}), changes).unwrap()
    }

    fn error(changes: &[&str]) -> String {
        apply_to(json!({}), changes).unwrap_err()
    }

    #[test]
    fn applies_exec_and_shell_forms() {
        let c = apply(&[r#"CMD ["cat", "/marker"]"#, "ENTRYPOINT echo hi"]);
        assert_eq!(c["Cmd"], json!(["cat", "/marker"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "echo hi"]));
        // Malformed JSON is the shell form; an empty CMD is the bare shell.
        assert_eq!(
            apply(&[r#"CMD ["a""#])["Cmd"],
            json!(["/bin/sh", "-c", r#"["a""#])
        );
        assert_eq!(apply(&["CMD"])["Cmd"], json!(["/bin/sh", "-c"]));
    }

    #[test]
    fn entrypoint_drops_the_configs_cmd() {
        let c = apply_to(json!({"Cmd": ["-c", "x"]}), &[r#"ENTRYPOINT ["/e"]"#]).unwrap();
        assert_eq!(c["Entrypoint"], json!(["/e"]));
        assert_eq!(c["Cmd"], Value::Null);
        let c = apply(&[r#"CMD ["a"]"#, r#"ENTRYPOINT ["/e"]"#]);
        assert_eq!(c["Cmd"], json!(["a"]));
    }

    #[test]
    fn applies_env_labels_ports_and_volumes() {
        let c = apply(&[
            "ENV A=1 B=\"two words\"",
            "ENV A 3",
            "LABEL x=y \"a b\"=c",
            "EXPOSE 80 53/udp 8080-8081 81/SCTP",
            "VOLUME /data",
            r#"VOLUME ["/a", "/b"]"#,
            "USER app",
            "WORKDIR /w",
            "WORKDIR ../x/./y/",
        ]);
        assert_eq!(c["Env"], json!(["A=3", "B=two words"]));
        assert_eq!(c["Labels"], json!({"x": "y", "a b": "c"}));
        assert_eq!(
            c["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "8080/tcp": {}, "8081/tcp": {}, "81/sctp": {}})
        );
        assert_eq!(c["Volumes"], json!({"/data": {}, "/a": {}, "/b": {}}));
        assert_eq!(c["User"], "app");
        assert_eq!(c["WorkingDir"], "/x/y");
    }

    #[test]
    fn expands_variables_from_the_configs_env() {
        let c = apply_to(
            json!({"Env": ["FOO=bar", "KEEP=k"], "WorkingDir": "/cw"}),
            &[
                "ENV C=$FOO-x D=${KEEP:+set}",
                "ENV FOO=new",
                "USER $FOO:${KEEP}",
                "WORKDIR $KEEP",
                "LABEL l=$C",
                "EXPOSE $UNSET",
            ],
        )
        .unwrap();
        assert_eq!(c["Env"], json!(["FOO=new", "KEEP=k", "C=bar-x", "D=set"]));
        assert_eq!(c["User"], "new:k");
        assert_eq!(c["WorkingDir"], "/cw/k");
        assert_eq!(c["Labels"], json!({"l": "bar-x"}));
        assert!(c.get("ExposedPorts").is_none(), "{c}");
        // A relative WORKDIR without a base starts at /.
        assert_eq!(apply(&["WORKDIR rel"])["WorkingDir"], "/rel");
    }

    #[test]
    fn keeps_onbuild_triggers_as_written() {
        let c = apply(&[
            "ONBUILD run echo hi",
            "onbuild   Env A=1",
            "ONBUILD RUN --mount=x y",
        ]);
        assert_eq!(
            c["OnBuild"],
            json!(["run echo hi", "Env A=1", "RUN --mount=x y"])
        );
        assert_eq!(
            error(&["ONBUILD onbuild x"]),
            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
        assert_eq!(
            error(&["ONBUILD maintainer x"]),
            "MAINTAINER isn't allowed as an ONBUILD trigger"
        );
    }

    #[test]
    fn applies_healthcheck() {
        let c = apply(&[r#"HEALTHCHECK --interval=5s --retries=2 CMD ["true"]"#]);
        assert_eq!(
            c["Healthcheck"],
            json!({"Test": ["CMD", "true"], "Interval": 5_000_000_000_i64, "Retries": 2})
        );
        assert_eq!(
            apply(&["HEALTHCHECK NONE"])["Healthcheck"],
            json!({"Test": ["NONE"]})
        );
        assert_eq!(
            error(&["HEALTHCHECK --bogus=1 CMD true"]),
            "Unknown flag: bogus"
        );
    }

    #[test]
    fn joins_changes_like_dockerfile_lines() {
        let c = apply(&["# a comment", "ENV A=1 \\", "B=2", "expose 80"]);
        assert_eq!(c["Env"], json!(["A=1", "B=2"]));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}}));
        let c = apply(&["# escape=`", "ENV A=1 `", "B=2"]);
        assert_eq!(c["Env"], json!(["A=1", "B=2"]));
    }

    #[test]
    fn rejects_instructions_commit_cannot_apply() {
        assert_eq!(
            error(&["RUN rm -rf /"]),
            "run is not a valid change command"
        );
        assert_eq!(
            error(&["ENV A=1", "run x"]),
            "run is not a valid change command"
        );
        assert_eq!(error(&["FOO bar"]), "foo is not a valid change command");
        for i in [
            "ARG x",
            "SHELL [\"sh\"]",
            "FROM x",
            "MAINTAINER me",
            "STOPSIGNAL 9",
        ] {
            let kw = i.split(' ').next().unwrap().to_ascii_lowercase();
            assert_eq!(error(&[i]), format!("{kw} is not a valid change command"));
        }
    }

    #[test]
    fn rejects_bad_arguments_in_dockerds_words() {
        assert_eq!(error(&["USER"]), "USER requires exactly one argument");
        assert_eq!(error(&["WORKDIR"]), "WORKDIR requires exactly one argument");
        assert_eq!(error(&["ENV"]), "ENV requires at least one argument");
        assert_eq!(error(&["VOLUME"]), "VOLUME requires at least one argument");
        assert_eq!(
            error(&["HEALTHCHECK"]),
            "HEALTHCHECK requires at least one argument"
        );
        assert_eq!(error(&["ENV A"]), "ENV must have two arguments");
        // The parser reads ENV pairs before the instructions are checked.
        assert_eq!(error(&["ENV A", "RUN x"]), "ENV must have two arguments");
        assert_eq!(
            error(&["LABEL a=b c"]),
            "Syntax error - can't find = in \"c\". Must be of the form: name=value"
        );
        assert_eq!(error(&["EXPOSE abc"]), "Invalid containerPort: abc");
        assert_eq!(error(&["EXPOSE 70000"]), "Invalid containerPort: 70000");
        assert_eq!(error(&["EXPOSE 80/xyz"]), "Invalid proto: xyz");
        assert_eq!(
            error(&["VOLUME \"\""]),
            "VOLUME specified can not be an empty string"
        );
        assert_eq!(error(&["CMD --foo x"]), "Unknown flag: foo");
        assert_eq!(error(&[""]), "file with no instructions");
    }

    #[test]
    fn no_changes_leave_the_config_alone() {
        let c = json!({"Cmd": ["x"], "Env": ["A=1"]});
        assert_eq!(apply_to(c.clone(), &[]).unwrap(), c);
    }
}
