//! The Dockerfile grammar of dockerd's classic builder: parser directives (`# escape`,
//! `# syntax`), line continuations, comments, instructions with their `--flags`, JSON and
//! shell forms, and the shell-word expansion (`$VAR`, `${VAR}`, `${VAR:-word}`,
//! `${VAR:+word}`, quotes and escapes) applied to the instructions dockerd expands.
//!
//! Pure: no I/O, so the decisions are testable without root.

use std::collections::BTreeMap;

/// A parse failure, worded as dockerd words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error line {line}: {message}")]
pub struct ParseError {
    /// 1-based line the instruction starts on.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The instructions the classic builder knows.
const KNOWN: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// One instruction of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line the instruction starts on.
    pub line: usize,
    /// Upper-case keyword (`RUN`, `COPY`, …).
    pub keyword: String,
    /// `--name=value` flags before the arguments (`--from`, `--chown`, …).
    pub flags: Vec<(String, String)>,
    /// The arguments after the keyword and flags, continuation lines joined.
    pub rest: String,
    /// The instruction as written (continuations joined), for `Step N/M : …`.
    pub original: String,
}

impl Instruction {
    /// The JSON (exec) form's words if `rest` is a JSON array of strings.
    pub fn json_args(&self) -> Option<Vec<String>> {
        json_array(&self.rest)
    }

    /// The value of flag `name`, if given.
    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
    /// The instructions in order.
    pub instructions: Vec<Instruction>,
}

/// The JSON form if `rest` is a JSON array of strings.
pub fn json_array(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(t).ok()?;
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_owned))
        .collect()
}

/// Parses a Dockerfile.
///
/// # Errors
/// An unknown instruction, an instruction without its arguments, a bad `# escape`, or no
/// instruction at all.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let df = parse_instructions(text)?;
    for ins in &df.instructions {
        if !KNOWN.contains(&ins.keyword.as_str()) {
            return Err(ParseError {
                line: ins.line,
                message: format!("unknown instruction: {}", ins.keyword),
            });
        }
        check_instruction(ins).map_err(|message| ParseError {
            line: ins.line,
            message,
        })?;
    }
    Ok(df)
}

/// Checks what dockerd's instruction parser checks before anything runs: that `ins` has
/// the arguments its instruction needs (`CMD` and `ENTRYPOINT` may be empty) and that an
/// `ONBUILD` trigger is allowed.
///
/// # Errors
/// dockerd's message (`USER requires exactly one argument`), without a line.
pub fn check_instruction(ins: &Instruction) -> Result<(), String> {
    let kw = ins.keyword.as_str();
    if ins.rest.trim().is_empty() {
        return match kw {
            "CMD" | "ENTRYPOINT" => Ok(()),
            "USER" | "WORKDIR" | "STOPSIGNAL" | "MAINTAINER" => {
                Err(format!("{kw} requires exactly one argument"))
            }
            _ => Err(format!("{kw} requires at least one argument")),
        };
    }
    if kw == "ONBUILD" {
        let trigger = ins
            .rest
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match trigger.as_str() {
            "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
            "FROM" | "MAINTAINER" => {
                return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Splits a Dockerfile into its instructions (parser directives, continuation lines and
/// comments handled) without checking the keywords or their arguments: [`parse`] does,
/// and `docker commit --change` checks them its own way.
///
/// # Errors
/// A bad `# escape`, or no instruction at all.
pub fn parse_instructions(text: &str) -> Result<Dockerfile, ParseError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut escape = '\\';
    let mut i = 0;
    // Parser directives: `# key=value` lines at the very top.
    while i < lines.len() {
        let l = lines[i].trim();
        let Some(body) = l.strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = body.split_once('=') else {
            break;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k.contains(char::is_whitespace) {
            break;
        }
        match k.as_str() {
            "escape" => {
                escape = match v {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError {
                            line: i + 1,
                            message: format!("invalid ESCAPE '{v}'. Must be ` or \\"),
                        })
                    }
                }
            }
            "syntax" => {}
            _ => break,
        }
        i += 1;
    }
    let mut out = Vec::new();
    while i < lines.len() {
        let start = i;
        let first = lines[i];
        i += 1;
        let t = first.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let mut joined = String::new();
        let mut cur = first.trim_start().to_owned();
        loop {
            let trimmed = cur.trim_end();
            if let Some(head) = trimmed.strip_suffix(escape) {
                joined.push_str(head);
                // Continuation: skip comment and empty lines, as dockerd does.
                let mut next = None;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let lt = l.trim();
                    if lt.is_empty() || lt.starts_with('#') {
                        continue;
                    }
                    next = Some(l.to_owned());
                    break;
                }
                match next {
                    Some(n) => cur = n,
                    None => break,
                }
            } else {
                joined.push_str(trimmed);
                break;
            }
        }
        out.push(instruction(start + 1, &joined));
    }
    if out.is_empty() {
        return Err(ParseError {
            line: 1,
            message: "file with no instructions".into(),
        });
    }
    Ok(Dockerfile {
        escape,
        instructions: out,
    })
}

fn instruction(line: usize, text: &str) -> Instruction {
    let text = text.trim();
    let (kw, rest) = text
        .split_once(char::is_whitespace)
        .map_or((text, ""), |(k, r)| (k, r.trim_start()));
    let keyword = kw.to_ascii_uppercase();
    let mut flags = Vec::new();
    let mut rest = rest;
    // Flags only where dockerd takes them; `ONBUILD`'s trigger keeps its own.
    if !matches!(keyword.as_str(), "ONBUILD") {
        while let Some(f) = rest.strip_prefix("--") {
            let (word, tail) = f
                .split_once(char::is_whitespace)
                .map_or((f, ""), |(w, t)| (w, t.trim_start()));
            if word.is_empty() {
                break;
            }
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            flags.push((k.to_owned(), v.to_owned()));
            rest = tail;
        }
    }
    Instruction {
        line,
        keyword,
        flags,
        rest: rest.to_owned(),
        original: text.to_owned(),
    }
}

/// Splits `s` into words on whitespace outside quotes, keeping quotes and escapes for
/// [`expand`] to process.
pub fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// An expansion failure (`${VAR:?message}` or an unterminated `${`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpandError(pub String);

/// Expands one shell word as dockerd's lexer does: quotes are removed (no expansion inside
/// single quotes), the escape character takes the next character literally, and `$VAR`,
/// `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`
/// are replaced from `vars` (unset variables expand to nothing).
///
/// # Errors
/// An unterminated `${`, or `${VAR:?msg}` with `VAR` unset.
pub fn expand(
    word: &str,
    vars: &BTreeMap<String, String>,
    escape: char,
) -> Result<String, ExpandError> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let mut dq = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' && !dq {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else if c == '"' {
            dq = !dq;
            i += 1;
        } else if c == escape {
            if let Some(&n) = chars.get(i + 1) {
                // Inside double quotes only `"`, `$` and the escape itself are escaped.
                if dq && !matches!(n, '"' | '$') && n != escape {
                    out.push(c);
                }
                out.push(n);
                i += 2;
            } else {
                out.push(c);
                i += 1;
            }
        } else if c == '$' {
            i += 1;
            let (val, next) = variable(&chars, i, vars, escape)?;
            out.push_str(&val);
            i = next;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The value of the variable reference starting after a `$` at `i`, and the index after it.
fn variable(
    chars: &[char],
    mut i: usize,
    vars: &BTreeMap<String, String>,
    escape: char,
) -> Result<(String, usize), ExpandError> {
    match chars.get(i) {
        Some('{') => {
            i += 1;
            let start = i;
            while i < chars.len() && is_name(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            let value = vars.get(&name);
            match chars.get(i) {
                Some('}') => Ok((value.cloned().unwrap_or_default(), i + 1)),
                Some(&c) if c == ':' || c == '-' || c == '+' || c == '?' => {
                    let colon = c == ':';
                    if colon {
                        i += 1;
                    }
                    let op = *chars
                        .get(i)
                        .ok_or_else(|| ExpandError("missing '}'".into()))?;
                    i += 1;
                    // The word runs to the matching `}`.
                    let wstart = i;
                    let mut depth = 1;
                    while i < chars.len() {
                        match chars[i] {
                            '{' => depth += 1,
                            '}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                    if i >= chars.len() {
                        return Err(ExpandError("missing '}'".into()));
                    }
                    let word: String = chars[wstart..i].iter().collect();
                    let set = match value {
                        Some(v) => !colon || !v.is_empty(),
                        None => false,
                    };
                    let v = match op {
                        '-' if set => value.cloned().unwrap_or_default(),
                        '-' => expand(&word, vars, escape)?,
                        '+' if set => expand(&word, vars, escape)?,
                        '+' => String::new(),
                        '?' if set => value.cloned().unwrap_or_default(),
                        '?' => {
                            let msg = expand(&word, vars, escape)?;
                            return Err(ExpandError(if msg.is_empty() {
                                format!("{name}: is not allowed to be unset")
                            } else {
                                format!("{name}: {msg}")
                            }));
                        }
                        other => {
                            return Err(ExpandError(format!(
                                "unsupported modifier ({other}) in substitution"
                            )))
                        }
                    };
                    Ok((v, i + 1))
                }
                _ => Err(ExpandError("missing '}'".into())),
            }
        }
        Some(&c) if is_name(c) => {
            let start = i;
            while i < chars.len() && is_name(chars[i]) {
                i += 1;
            }
            let name: String = chars[start..i].iter().collect();
            Ok((vars.get(&name).cloned().unwrap_or_default(), i))
        }
        _ => Ok(("$".into(), i)),
    }
}

/// Expands every word of `s` (split as [`split_words`]).
///
/// # Errors
/// As [`expand`].
pub fn expand_words(
    s: &str,
    vars: &BTreeMap<String, String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    split_words(s, escape)
        .iter()
        .map(|w| expand(w, vars, escape))
        .collect()
}

/// The `key=value` pairs of `ENV` and `LABEL` (or the legacy `KEY value` form), expanded.
///
/// # Errors
/// As [`key_value_words`], or an expansion error.
pub fn key_values(
    keyword: &str,
    rest: &str,
    vars: &BTreeMap<String, String>,
    escape: char,
) -> Result<Vec<(String, String)>, ExpandError> {
    key_value_words(keyword, rest, escape)?
        .iter()
        .map(|(k, v)| Ok((expand(k, vars, escape)?, expand(v, vars, escape)?)))
        .collect()
}

/// The `key=value` pairs of `ENV` and `LABEL` (or the legacy `KEY value` form) as
/// written, not expanded: the syntax dockerd's parser checks before anything expands.
///
/// # Errors
/// No arguments, a legacy form without a value, or a word without `=` in the pair form.
pub fn key_value_words(
    keyword: &str,
    rest: &str,
    escape: char,
) -> Result<Vec<(String, String)>, ExpandError> {
    let words = split_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(ExpandError(format!(
            "{keyword} requires at least one argument"
        )));
    };
    if !first.contains('=') {
        // Legacy form: `ENV KEY the rest of the line`.
        let value = rest.trim_start()[first.len()..].trim();
        if value.is_empty() {
            return Err(ExpandError(format!("{keyword} must have two arguments")));
        }
        return Ok(vec![(first.clone(), value.to_owned())]);
    }
    words
        .iter()
        .map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    ExpandError(format!(
                        "Syntax error - can't find = in \"{w}\". Must be of the form: name=value"
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn joins_continuations_and_skips_comments() {
        let df = parse(
            "# syntax=docker/dockerfile:1\n# a comment\nFROM busybox AS base\n\nRUN echo a \\\n  # inner comment\n  && echo b\ncmd [\"sh\"]\n",
        )
        .unwrap();
        let i = &df.instructions;
        assert_eq!(i.len(), 3);
        assert_eq!(i[0].keyword, "FROM");
        assert_eq!(i[0].rest, "busybox AS base");
        assert_eq!(i[1].line, 5);
        assert_eq!(i[1].rest, "echo a   && echo b");
        assert_eq!(i[2].keyword, "CMD");
        assert_eq!(i[2].json_args().unwrap(), ["sh"]);
    }

    #[test]
    fn unknown_instruction_names_its_line() {
        let e = parse("FROM busybox\n\nFOO bar\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "dockerfile parse error line 3: unknown instruction: FOO"
        );
        assert!(parse("# only a comment\n").is_err());
    }

    #[test]
    fn arguments_are_checked_as_dockerd_checks_them() {
        let err = |df: &str| parse(df).unwrap_err().to_string();
        assert_eq!(
            err("FROM b\nUSER\n"),
            "dockerfile parse error line 2: USER requires exactly one argument"
        );
        assert_eq!(
            err("FROM b\nHEALTHCHECK --interval=5s\n"),
            "dockerfile parse error line 2: HEALTHCHECK requires at least one argument"
        );
        assert_eq!(
            err("FROM b\nONBUILD onbuild RUN x\n"),
            "dockerfile parse error line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
        );
        assert_eq!(
            err("FROM b\nONBUILD from x\n"),
            "dockerfile parse error line 2: FROM isn't allowed as an ONBUILD trigger"
        );
        // CMD and ENTRYPOINT may be empty.
        assert_eq!(
            parse("FROM b\nCMD\nENTRYPOINT\n")
                .unwrap()
                .instructions
                .len(),
            3
        );
        // Unknown keywords pass `parse_instructions`, for `--change` to name them.
        let df = parse_instructions("foo bar\nRUN\n").unwrap();
        assert_eq!(df.instructions[0].keyword, "FOO");
        assert_eq!(df.instructions[1].rest, "");
    }

    #[test]
    fn escape_directive_changes_the_continuation_character() {
        let df = parse("# escape=`\nFROM busybox\nRUN echo C:\\dir `\n  x\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].rest, "echo C:\\dir   x");
    }

    #[test]
    fn flags_are_split_from_the_arguments() {
        let df = parse("FROM b\nCOPY --from=build --chown=1:2 /a /b\n").unwrap();
        let c = &df.instructions[1];
        assert_eq!(c.flag("from"), Some("build"));
        assert_eq!(c.flag("chown"), Some("1:2"));
        assert_eq!(c.rest, "/a /b");
    }

    #[test]
    fn expands_variables_like_dockerds_lexer() {
        let v = vars(&[("A", "x"), ("E", "")]);
        let ex = |s: &str| expand(s, &v, '\\').unwrap();
        assert_eq!(ex("$A/${A}/$B"), "x/x/");
        assert_eq!(ex("${B:-def}"), "def");
        assert_eq!(ex("${E:-def}|${E-def}"), "def|");
        assert_eq!(ex("${A:+set}|${B:+set}"), "set|");
        assert_eq!(ex("'$A' \"$A\" \\$A"), "$A x $A");
        assert_eq!(ex("a\\ b"), "a b");
        assert!(expand("${B:?needed}", &v, '\\').is_err());
        assert!(expand("${A", &v, '\\').is_err());
    }

    #[test]
    fn env_and_label_pairs_and_legacy_form() {
        let v = vars(&[("A", "x")]);
        assert_eq!(
            key_values("ENV", "K=\"a b\" L=$A M=${A}y", &v, '\\').unwrap(),
            [
                ("K".into(), "a b".into()),
                ("L".into(), "x".into()),
                ("M".into(), "xy".into())
            ]
        );
        assert_eq!(
            key_values("ENV", "K hello  world $A", &v, '\\').unwrap(),
            [("K".into(), "hello  world x".into())]
        );
        assert!(key_values("LABEL", "a=b c", &v, '\\').is_err());
        // Every word is checked for `=` before anything expands, as dockerd's parser does.
        assert_eq!(
            key_values("ENV", "X=${UNSET:?must be set}", &v, '\\')
                .unwrap_err()
                .to_string(),
            "Syntax error - can't find = in \"be\". Must be of the form: name=value"
        );
    }

    #[test]
    fn words_keep_quoted_spaces() {
        assert_eq!(
            expand_words("a \"b c\" 'd e' f\\ g", &BTreeMap::new(), '\\').unwrap(),
            ["a", "b c", "d e", "f g"]
        );
    }
}
