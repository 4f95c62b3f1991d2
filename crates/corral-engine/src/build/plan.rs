//! What each instruction does to a build stage: the image config it changes, the command a
//! `RUN` runs, the sources and destination of a `COPY`. Pure: the executor acts on it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::dockerfile::{expand, expand_words, json_array, key_values, split_words, Instruction};

/// A build failure, worded as dockerd words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    /// The message clients show.
    pub message: String,
    /// The exit code of a failed `RUN`.
    pub code: Option<i64>,
    /// Whether the request itself is bad (HTTP 400 before any output).
    pub invalid: bool,
}

impl BuildError {
    /// A bad Dockerfile or request.
    pub fn invalid(message: impl Into<String>) -> BuildError {
        BuildError {
            message: message.into(),
            code: None,
            invalid: true,
        }
    }

    /// A failure while building.
    pub fn failed(message: impl Into<String>) -> BuildError {
        BuildError {
            message: message.into(),
            code: None,
            invalid: false,
        }
    }
}

/// The state of the stage being built.
#[derive(Debug, Clone, Default)]
pub struct Stage {
    /// The image `config` object (Docker `Config` keys).
    pub config: Map<String, Value>,
    /// The stage's declared build args and their values (`None`: declared, no value).
    pub args: BTreeMap<String, Option<String>>,
    /// `CMD` was set in this stage (`ENTRYPOINT` then keeps it).
    pub cmd_set: bool,
    /// The escape character.
    pub escape: char,
}

/// What the executor does for one instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Commit the changed config without a layer; `comment` follows `#(nop) `.
    Config {
        /// The history text after `/bin/sh -c #(nop) `.
        comment: String,
    },
    /// `WORKDIR`: create the directory, then commit.
    Workdir {
        /// Absolute directory.
        dir: String,
    },
    /// Run a command in a container and commit its changes.
    Run {
        /// The command the container runs.
        cmd: Vec<String>,
        /// The history `created_by` words (`|N a=b` prefix when build args are used).
        save_cmd: Vec<String>,
        /// Extra environment (the build args).
        env: Vec<String>,
    },
    /// Copy files into a new layer.
    Copy {
        /// `ADD` (local archives are extracted).
        add: bool,
        /// Source paths (context-relative, or in the `from` image).
        sources: Vec<String>,
        /// Destination, absolute (a trailing `/` kept).
        dest: String,
        /// `--from` stage or image.
        from: Option<String>,
        /// `--chown` as written (expanded).
        chown: Option<String>,
        /// The destination as written (for the history).
        written: String,
    },
}

/// Go's `%q` of a string slice, as dockerd writes `CMD` and friends in the history.
fn go_list(words: &[String]) -> String {
    let q: Vec<String> = words.iter().map(|w| format!("{w:?}")).collect();
    format!("[{}]", q.join(" "))
}

/// The shell for shell forms: `SHELL`, or `/bin/sh -c`.
pub(crate) fn shell(stage: &Stage) -> Vec<String> {
    stage
        .config
        .get("Shell")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

impl Stage {
    /// The variables instructions expand: build args with values, overridden by `ENV`.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut m: BTreeMap<String, String> = self
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        for e in self.env() {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            m.insert(k.to_owned(), v.to_owned());
        }
        m
    }

    /// The config's `Env`.
    pub fn env(&self) -> Vec<String> {
        self.config
            .get("Env")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The config's `WorkingDir` (`/` when unset).
    pub fn workdir(&self) -> String {
        self.config
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_owned()
    }

    /// The config's `User`.
    pub fn user(&self) -> Option<String> {
        self.config
            .get("User")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.env();
        let item = format!("{key}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            Some(e) => *e = item,
            None => env.push(item),
        }
        self.config.insert("Env".into(), json!(env));
    }

    fn map_insert(&mut self, key: &str, k: String, v: Value) {
        let m = self
            .config
            .entry(key.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !m.is_object() {
            *m = Value::Object(Map::new());
        }
        if let Some(m) = m.as_object_mut() {
            m.insert(k, v);
        }
    }

    /// Build args a `RUN` sees: declared with a value and not overridden by `ENV`.
    fn run_args(&self) -> Vec<String> {
        let env_keys: Vec<String> = self
            .env()
            .iter()
            .map(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_owned())
            .collect();
        self.args
            .iter()
            .filter(|(k, _)| !env_keys.contains(k))
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }

    /// Applies `ins` (not `FROM`) to the stage; `build_args` are the request's
    /// `buildargs`, `global` the values of the ARGs declared before the first `FROM`, and
    /// `used` collects the build args consumed.
    ///
    /// # Errors
    /// A malformed instruction or a failed expansion.
    pub fn apply(
        &mut self,
        ins: &Instruction,
        build_args: &BTreeMap<String, Option<String>>,
        global: &BTreeMap<String, Option<String>>,
        used: &mut Vec<String>,
    ) -> Result<Action, BuildError> {
        let esc = self.escape;
        let bad = |m: String| BuildError::invalid(m);
        let vars = self.vars();
        let ex = |s: &str| expand(s, &vars, esc).map_err(|e| bad(e.to_string()));
        let exw = |s: &str| expand_words(s, &vars, esc).map_err(|e| bad(e.to_string()));
        let kw = ins.keyword.as_str();
        if !ins.flags.is_empty() && !matches!(kw, "COPY" | "ADD" | "HEALTHCHECK") {
            let (k, _) = &ins.flags[0];
            return Err(bad(format!(
                "dockerfile parse error line {}: Unknown flag: {k}{}",
                ins.line,
                if kw == "RUN" {
                    " (RUN --mount, --network and --security need BuildKit, which corral does not have)"
                } else {
                    ""
                }
            )));
        }
        let nop = |comment: String| Ok(Action::Config { comment });
        match kw {
            "ENV" => {
                let pairs =
                    key_values(kw, &ins.rest, &vars, esc).map_err(|e| bad(e.to_string()))?;
                let mut comment = String::from("ENV");
                for (k, v) in pairs {
                    self.set_env(&k, &v);
                    comment.push_str(&format!(" {k}={v}"));
                }
                nop(comment)
            }
            "LABEL" => {
                let pairs =
                    key_values(kw, &ins.rest, &vars, esc).map_err(|e| bad(e.to_string()))?;
                let mut comment = String::from("LABEL");
                for (k, v) in pairs {
                    comment.push_str(&format!(" {k}={v}"));
                    self.map_insert("Labels", k, json!(v));
                }
                nop(comment)
            }
            "MAINTAINER" => nop(format!("MAINTAINER {}", ins.rest.trim())),
            "ARG" => {
                let mut comment = String::from("ARG");
                for w in split_words(&ins.rest, esc) {
                    let (name, default) = match w.split_once('=') {
                        Some((n, d)) => (n.to_owned(), Some(ex(d)?)),
                        None => (w.clone(), None),
                    };
                    let value = match build_args.get(&name) {
                        Some(Some(v)) => {
                            used.push(name.clone());
                            Some(v.clone())
                        }
                        _ => default.or_else(|| global.get(&name).cloned().flatten()),
                    };
                    comment.push(' ');
                    comment.push_str(&w);
                    self.args.insert(name, value);
                }
                nop(comment)
            }
            "EXPOSE" => {
                // A word that expands to nothing exposes nothing, as in dockerd.
                let mut written: Vec<String> = exw(&ins.rest)?
                    .into_iter()
                    .filter(|w| !w.is_empty())
                    .collect();
                written.sort();
                for w in &written {
                    for p in exposed_ports(w).map_err(bad)? {
                        self.map_insert("ExposedPorts", p, json!({}));
                    }
                }
                nop(format!("EXPOSE {}", written.join(" ")))
            }
            "USER" => {
                let u = ex(ins.rest.trim())?;
                self.config.insert("User".into(), json!(u));
                nop(format!("USER {u}"))
            }
            "STOPSIGNAL" => {
                let s = ex(ins.rest.trim())?;
                self.config.insert("StopSignal".into(), json!(s));
                nop(format!("STOPSIGNAL {s}"))
            }
            "WORKDIR" => {
                let w = ex(ins.rest.trim())?;
                let dir = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", self.workdir().trim_end_matches('/'))
                };
                let dir = format!("/{}", super::ignore::clean(&dir));
                self.config.insert("WorkingDir".into(), json!(dir));
                Ok(Action::Workdir { dir })
            }
            "VOLUME" => {
                let vols = match json_array(&ins.rest) {
                    Some(v) => v,
                    None => exw(&ins.rest)?,
                };
                for v in &vols {
                    if v.trim().is_empty() {
                        return Err(bad("VOLUME specified can not be an empty string".into()));
                    }
                    self.map_insert("Volumes", v.clone(), json!({}));
                }
                nop(format!("VOLUME {}", go_list(&vols)))
            }
            "SHELL" => {
                let s = json_array(&ins.rest)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| bad("SHELL requires the arguments to be in JSON form".into()))?;
                self.config.insert("Shell".into(), json!(s));
                nop(format!("SHELL {}", go_list(&s)))
            }
            "CMD" | "ENTRYPOINT" => {
                let empty = ins.rest.trim().is_empty();
                let words = match ins.json_args() {
                    Some(v) => Some(v),
                    // An empty `ENTRYPOINT` unsets it; an empty `CMD` is the bare shell.
                    None if empty && kw == "ENTRYPOINT" => None,
                    None => {
                        let mut s = shell(self);
                        if !empty {
                            s.push(ins.rest.clone());
                        }
                        Some(s)
                    }
                };
                let key = if kw == "CMD" { "Cmd" } else { "Entrypoint" };
                self.config.insert(key.into(), json!(words));
                if kw == "CMD" {
                    self.cmd_set = true;
                } else if !self.cmd_set {
                    self.config.insert("Cmd".into(), Value::Null);
                }
                nop(format!("{kw} {}", go_list(&words.unwrap_or_default())))
            }
            "ONBUILD" => {
                // The trigger is kept as written (dockerd does not upper-case it); which
                // triggers are allowed is checked with the arguments
                // ([`super::dockerfile::check_instruction`]).
                let text = ins.rest.trim().to_owned();
                let mut list = self
                    .config
                    .get("OnBuild")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                list.push(json!(text));
                self.config.insert("OnBuild".into(), Value::Array(list));
                nop(format!("ONBUILD {text}"))
            }
            "HEALTHCHECK" => self.healthcheck(ins),
            "RUN" => {
                let cmd = match ins.json_args() {
                    Some(v) => v,
                    None => {
                        let mut s = shell(self);
                        s.push(ins.rest.clone());
                        s
                    }
                };
                let env = self.run_args();
                let mut save_cmd = cmd.clone();
                if !env.is_empty() {
                    let mut pre = vec![format!("|{}", env.len())];
                    pre.extend(env.iter().cloned());
                    pre.extend(save_cmd);
                    save_cmd = pre;
                }
                Ok(Action::Run { cmd, save_cmd, env })
            }
            "COPY" | "ADD" => {
                for (k, _) in &ins.flags {
                    if !matches!(k.as_str(), "from" | "chown") || (kw == "ADD" && k == "from") {
                        return Err(bad(format!(
                            "dockerfile parse error line {}: Unknown flag: {k}",
                            ins.line
                        )));
                    }
                }
                let mut words = match ins.json_args() {
                    Some(v) => v.iter().map(|w| ex(w)).collect::<Result<Vec<_>, _>>()?,
                    None => exw(&ins.rest)?,
                };
                if words.len() < 2 {
                    return Err(bad(format!("{kw} requires at least two arguments")));
                }
                let dest = words.pop().unwrap_or_default();
                let written = dest.clone();
                let dest = if dest.starts_with('/') {
                    dest
                } else {
                    let mut d = format!("{}/{dest}", self.workdir().trim_end_matches('/'));
                    if dest == "." || dest.ends_with("/.") {
                        d.push('/');
                    }
                    d
                };
                let from = ins.flag("from").map(ex).transpose()?;
                let chown = ins.flag("chown").map(ex).transpose()?;
                Ok(Action::Copy {
                    written,
                    add: kw == "ADD",
                    sources: words,
                    dest,
                    from,
                    chown,
                })
            }
            other => Err(bad(format!("{other} is not supported here"))),
        }
    }

    fn healthcheck(&mut self, ins: &Instruction) -> Result<Action, BuildError> {
        let bad = |m: String| BuildError::invalid(m);
        let rest = ins.rest.trim();
        if rest.eq_ignore_ascii_case("NONE") {
            if !ins.flags.is_empty() {
                return Err(bad("HEALTHCHECK NONE takes no arguments".into()));
            }
            self.config
                .insert("Healthcheck".into(), json!({"Test": ["NONE"]}));
            return Ok(Action::Config {
                comment: "HEALTHCHECK NONE".into(),
            });
        }
        let Some((_, cmd)) = rest
            .split_once(char::is_whitespace)
            .filter(|(k, _)| k.eq_ignore_ascii_case("CMD"))
        else {
            let typ = rest.split_whitespace().next().unwrap_or("");
            return Err(bad(format!(
                "Unknown type \"{}\" in HEALTHCHECK (try CMD)",
                typ.to_ascii_uppercase()
            )));
        };
        let test = match json_array(cmd) {
            Some(v) => {
                let mut t = vec!["CMD".to_owned()];
                t.extend(v);
                t
            }
            None => vec!["CMD-SHELL".to_owned(), cmd.trim().to_owned()],
        };
        let mut hc = Map::new();
        hc.insert("Test".into(), json!(test));
        for (k, v) in &ins.flags {
            let key = match k.as_str() {
                "interval" => "Interval",
                "timeout" => "Timeout",
                "start-period" => "StartPeriod",
                "retries" => {
                    let n: i64 = v
                        .parse()
                        .map_err(|_| bad(format!("invalid --retries value {v:?}")))?;
                    hc.insert("Retries".into(), json!(n));
                    continue;
                }
                other => {
                    return Err(bad(format!(
                        "dockerfile parse error line {}: Unknown flag: {other}",
                        ins.line
                    )))
                }
            };
            let ns = duration_ns(v).ok_or_else(|| bad(format!("time: invalid duration {v:?}")))?;
            hc.insert(key.into(), json!(ns));
        }
        self.config.insert("Healthcheck".into(), Value::Object(hc));
        Ok(Action::Config {
            comment: format!("HEALTHCHECK {}", json!(test)),
        })
    }
}

/// The `ExposedPorts` keys of one `EXPOSE` word, as dockerd's `nat.ParsePortSpecs` reads
/// it: `port`, `port/proto` or a range `start-end[/proto]` (one key per port); the
/// protocol is `tcp` unless given, and must be `tcp`, `udp` or `sctp`.
///
/// # Errors
/// dockerd's message for a bad port (`Invalid containerPort: 0x50`) or protocol.
pub fn exposed_ports(word: &str) -> Result<Vec<String>, String> {
    let (port, proto) = word.split_once('/').unwrap_or((word, "tcp"));
    let invalid = || format!("Invalid containerPort: {port}");
    let number = |s: &str| -> Result<u16, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        s.parse().map_err(|_| invalid())
    };
    let (start, end) = match port.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let n = number(port)?;
            (n, n)
        }
    };
    if end < start {
        return Err(invalid());
    }
    let proto_lc = proto.to_ascii_lowercase();
    if !matches!(proto_lc.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("Invalid proto: {proto}"));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto_lc}")).collect())
}

/// A non-negative Go duration (`30s`, `1m30s`, `500ms`, `2h`) in nanoseconds.
pub fn duration_ns(s: &str) -> Option<i64> {
    corral_core::duration::parse_go_duration(s.trim()).filter(|ns| *ns >= 0)
}

#[cfg(test)]
mod tests {
    use super::super::dockerfile::parse;
    use super::*;

    fn run(df: &str, build_args: &[(&str, &str)]) -> (Stage, Vec<Action>, Vec<String>) {
        let df = parse(df).unwrap();
        let mut st = Stage {
            escape: '\\',
            ..Stage::default()
        };
        let ba = build_args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
            .collect();
        let mut used = Vec::new();
        let acts = df
            .instructions
            .iter()
            .skip(1)
            .map(|i| st.apply(i, &ba, &BTreeMap::new(), &mut used).unwrap())
            .collect();
        (st, acts, used)
    }

    #[test]
    fn config_instructions_change_the_config() {
        let (st, acts, _) = run(
            "FROM b\nENV A=1 B=\"two words\"\nENV C $A-x\nLABEL l=$B\nEXPOSE 80 53/udp\nWORKDIR /app\nWORKDIR sub\nUSER nobody\nCMD echo hi\nENTRYPOINT [\"/e\"]\nSTOPSIGNAL SIGINT\nVOLUME /data\nHEALTHCHECK --interval=5s --retries=2 CMD true\n",
            &[],
        );
        let c = &st.config;
        assert_eq!(c["Env"], json!(["A=1", "B=two words", "C=1-x"]));
        assert_eq!(c["Labels"], json!({"l": "two words"}));
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["WorkingDir"], "/app/sub");
        assert_eq!(c["User"], "nobody");
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/e"]));
        assert_eq!(c["StopSignal"], "SIGINT");
        assert_eq!(c["Volumes"], json!({"/data": {}}));
        assert_eq!(
            c["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000_i64, "Retries": 2})
        );
        assert_eq!(
            acts[0],
            Action::Config {
                comment: "ENV A=1 B=two words".into()
            }
        );
        assert_eq!(acts[4], Action::Workdir { dir: "/app".into() });
    }

    #[test]
    fn entrypoint_drops_an_inherited_cmd() {
        let (st, _, _) = run("FROM b\nENTRYPOINT [\"/e\"]\n", &[]);
        assert_eq!(st.config["Cmd"], Value::Null);
        let (st, _, _) = run("FROM b\nCMD [\"x\"]\nENTRYPOINT [\"/e\"]\n", &[]);
        assert_eq!(st.config["Cmd"], json!(["x"]));
    }

    #[test]
    fn build_args_reach_run_and_expansion() {
        let (st, acts, used) = run(
            "FROM b\nARG V=def\nARG W\nARG X=keep\nRUN echo $V\nCOPY a${V}.txt dst/\n",
            &[("V", "given"), ("W", "w")],
        );
        assert_eq!(used, ["V", "W"]);
        assert!(
            st.config.get("Env").is_none(),
            "args never reach the image env"
        );
        assert_eq!(
            acts[3],
            Action::Run {
                cmd: vec!["/bin/sh".into(), "-c".into(), "echo $V".into()],
                save_cmd: vec![
                    "|3".into(),
                    "V=given".into(),
                    "W=w".into(),
                    "X=keep".into(),
                    "/bin/sh".into(),
                    "-c".into(),
                    "echo $V".into()
                ],
                env: vec!["V=given".into(), "W=w".into(), "X=keep".into()],
            }
        );
        assert_eq!(
            acts[4],
            Action::Copy {
                add: false,
                sources: vec!["agiven.txt".into()],
                dest: "/dst/".into(),
                from: None,
                chown: None,
                written: "dst/".into(),
            }
        );
    }

    #[test]
    fn buildkit_only_flags_are_refused() {
        let df = parse("FROM b\nRUN --mount=type=cache,target=/x true\n").unwrap();
        let mut st = Stage::default();
        let e = st
            .apply(
                &df.instructions[1],
                &BTreeMap::new(),
                &BTreeMap::new(),
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(e.message.contains("Unknown flag: mount"), "{e}");
    }

    #[test]
    fn expose_reads_ports_ranges_and_protocols_like_dockerd() {
        assert_eq!(
            exposed_ports("8080-8082/UDP").unwrap(),
            ["8080/udp", "8081/udp", "8082/udp"]
        );
        assert_eq!(exposed_ports("53").unwrap(), ["53/tcp"]);
        assert_eq!(
            exposed_ports("0x50").unwrap_err(),
            "Invalid containerPort: 0x50"
        );
        assert_eq!(
            exposed_ports("70000").unwrap_err(),
            "Invalid containerPort: 70000"
        );
        assert_eq!(
            exposed_ports("9-8").unwrap_err(),
            "Invalid containerPort: 9-8"
        );
        assert_eq!(exposed_ports("80/xyz").unwrap_err(), "Invalid proto: xyz");
        // A word that expands to nothing exposes nothing.
        let (st, acts, _) = run("FROM b\nEXPOSE $NONE 81\n", &[]);
        assert_eq!(st.config["ExposedPorts"], json!({"81/tcp": {}}));
        assert_eq!(
            acts[0],
            Action::Config {
                comment: "EXPOSE 81".into()
            }
        );
    }

    #[test]
    fn empty_cmd_is_the_shell_and_empty_entrypoint_unsets() {
        let (st, _, _) = run("FROM b\nCMD\n", &[]);
        assert_eq!(st.config["Cmd"], json!(["/bin/sh", "-c"]));
        let (st, _, _) = run("FROM b\nENTRYPOINT [\"/e\"]\nENTRYPOINT\n", &[]);
        assert_eq!(st.config["Entrypoint"], Value::Null);
    }

    #[test]
    fn onbuild_keeps_the_trigger_as_written() {
        let (st, acts, _) = run("FROM b\nonbuild   run echo hi\n", &[]);
        assert_eq!(st.config["OnBuild"], json!(["run echo hi"]));
        assert_eq!(
            acts[0],
            Action::Config {
                comment: "ONBUILD run echo hi".into()
            }
        );
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(duration_ns("500ms"), Some(500_000_000));
        assert_eq!(duration_ns("x"), None);
    }
}
