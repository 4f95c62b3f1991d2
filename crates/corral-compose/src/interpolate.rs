//! Variable interpolation as the compose specification defines it
//! (<https://github.com/compose-spec/compose-spec/blob/main/spec.md#interpolation>):
//! `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`,
//! `${VAR:+alt}`, `${VAR+alt}` and `$$` for a literal `$`. Defaults and alternatives may
//! themselves contain substitutions. Only string values are interpolated, never keys.

use std::collections::BTreeSet;

use crate::node::{Node, Value};

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolationError {
    /// `${VAR:?msg}` or `${VAR?msg}` with the variable unset (or empty for `:?`).
    Required {
        /// The variable.
        name: String,
        /// The author's message.
        message: String,
    },
    /// A `$` that starts no valid substitution, or an unterminated `${`.
    Syntax(String),
}

impl std::fmt::Display for InterpolationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InterpolationError::Required { name, message } => {
                if message.is_empty() {
                    write!(f, "required variable {name} is missing a value")
                } else {
                    write!(f, "required variable {name} is missing a value: {message}")
                }
            }
            InterpolationError::Syntax(s) => write!(
                f,
                "invalid interpolation format for {s:?}: you may need to escape any $ with another $"
            ),
        }
    }
}

/// Substitutes variables in `input`. `lookup` answers a variable's value; `unset`
/// collects the names of variables that were unset and defaulted to "" (compose warns).
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeSet<String>,
) -> Result<String, InterpolationError> {
    if !input.contains('$') {
        return Ok(input.to_string());
    }
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let end = matching_brace(&chars, i + 2)
                    .ok_or_else(|| InterpolationError::Syntax(input.to_string()))?;
                let body: String = chars[i + 2..end].iter().collect();
                out.push_str(&braced(&body, input, lookup, unset)?);
                i = end + 1;
            }
            Some(c) if is_name_start(*c) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match lookup(&name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        unset.insert(name);
                    }
                }
                i = j;
            }
            _ => return Err(InterpolationError::Syntax(input.to_string())),
        }
    }
    Ok(out)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Index of the `}` closing a `${` whose body starts at `start`, counting nested `${`.
fn matching_brace(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            '$' if chars.get(i + 1) == Some(&'$') => {
                i += 2;
                continue;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn braced(
    body: &str,
    whole: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeSet<String>,
) -> Result<String, InterpolationError> {
    let name_len = body
        .char_indices()
        .find(|(_, c)| !is_name_char(*c))
        .map_or(body.len(), |(i, _)| i);
    let (name, rest) = body.split_at(name_len);
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(InterpolationError::Syntax(whole.to_string()));
    }
    let value = lookup(name);
    let (op, arg) = if rest.is_empty() {
        ("", "")
    } else if let Some(op) = [":-", ":?", ":+"].iter().find(|op| rest.starts_with(*op)) {
        (*op, &rest[2..])
    } else if let Some(op) = ["-", "?", "+"].iter().find(|op| rest.starts_with(*op)) {
        (*op, &rest[1..])
    } else {
        return Err(InterpolationError::Syntax(whole.to_string()));
    };
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    match op {
        "" => match value {
            Some(v) => Ok(v),
            None => {
                unset.insert(name.to_string());
                Ok(String::new())
            }
        },
        ":-" if set_nonempty => Ok(value.unwrap_or_default()),
        "-" if value.is_some() => Ok(value.unwrap_or_default()),
        ":-" | "-" => interpolate(arg, lookup, unset),
        ":?" if set_nonempty => Ok(value.unwrap_or_default()),
        "?" if value.is_some() => Ok(value.unwrap_or_default()),
        ":?" | "?" => Err(InterpolationError::Required {
            name: name.to_string(),
            message: interpolate(arg, lookup, unset)?,
        }),
        ":+" if set_nonempty => interpolate(arg, lookup, unset),
        "+" if value.is_some() => interpolate(arg, lookup, unset),
        _ => Ok(String::new()),
    }
}

/// Interpolates every string value below `node` (keys are left alone). On failure
/// returns the error with the offending node.
pub(crate) fn interpolate_tree<'a>(
    node: &'a mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut BTreeSet<String>,
    path: &str,
) -> Result<(), (InterpolationError, crate::node::Loc, String)> {
    match &mut node.value {
        Value::Str(s) => match interpolate(s, lookup, unset) {
            Ok(v) => {
                *s = v;
                Ok(())
            }
            Err(e) => Err((e, node.loc, path.to_string())),
        },
        Value::Seq(items) => {
            for (i, n) in items.iter_mut().enumerate() {
                interpolate_tree(n, lookup, unset, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        Value::Map(entries) => {
            for (k, n) in entries.iter_mut() {
                let p = if path.is_empty() {
                    k.name.clone()
                } else {
                    format!("{path}.{}", k.name)
                };
                interpolate_tree(n, lookup, unset, &p)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> Result<String, InterpolationError> {
        let lookup = |k: &str| match k {
            "SET" => Some("value".to_string()),
            "EMPTY" => Some(String::new()),
            "NESTED" => Some("n".to_string()),
            _ => None,
        };
        interpolate(s, &lookup, &mut BTreeSet::new())
    }

    #[test]
    fn plain_forms() {
        assert_eq!(run("$SET").unwrap(), "value");
        assert_eq!(run("${SET}").unwrap(), "value");
        assert_eq!(run("a-${SET}-b").unwrap(), "a-value-b");
        assert_eq!(run("$SET.x").unwrap(), "value.x");
        assert_eq!(run("${UNSET}").unwrap(), "");
        assert_eq!(run("$UNSET").unwrap(), "");
        assert_eq!(run("$$SET").unwrap(), "$SET");
        assert_eq!(run("$${SET}").unwrap(), "${SET}");
        assert_eq!(run("no vars").unwrap(), "no vars");
    }

    #[test]
    fn default_forms_tell_unset_from_empty() {
        assert_eq!(run("${UNSET:-d}").unwrap(), "d");
        assert_eq!(run("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(run("${SET:-d}").unwrap(), "value");
        assert_eq!(run("${UNSET-d}").unwrap(), "d");
        assert_eq!(run("${EMPTY-d}").unwrap(), "");
        assert_eq!(run("${UNSET:-}").unwrap(), "");
    }

    #[test]
    fn alternative_forms() {
        assert_eq!(run("${SET:+alt}").unwrap(), "alt");
        assert_eq!(run("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(run("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(run("${UNSET+alt}").unwrap(), "");
    }

    #[test]
    fn required_forms() {
        assert_eq!(run("${SET:?boom}").unwrap(), "value");
        assert_eq!(run("${EMPTY?boom}").unwrap(), "");
        let e = run("${EMPTY:?must be set}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "required variable EMPTY is missing a value: must be set"
        );
        assert!(matches!(
            run("${UNSET?x}"),
            Err(InterpolationError::Required { .. })
        ));
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(run("${UNSET:-${SET}}").unwrap(), "value");
        assert_eq!(run("${UNSET:-a${UNSET2:-${NESTED}}b}").unwrap(), "anb");
        assert_eq!(run("${UNSET:-$$}").unwrap(), "$");
    }

    #[test]
    fn rejects_bad_syntax() {
        for s in [
            "${", "${SET", "${}", "$", "a $ b", "${1A}", "${SET%x}", "$1",
        ] {
            assert!(
                matches!(run(s), Err(InterpolationError::Syntax(_))),
                "{s} should fail"
            );
        }
    }

    #[test]
    fn collects_unset_names() {
        let mut unset = BTreeSet::new();
        interpolate("${A} $B ${C:-x}", &|_| None, &mut unset).unwrap();
        assert_eq!(unset.into_iter().collect::<Vec<_>>(), vec!["A", "B"]);
    }
}
