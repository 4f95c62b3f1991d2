//! `.env` and `env_file` files in compose's format: `KEY=VALUE` lines, optional
//! `export ` prefix, `#` comments, single quotes (literal), double quotes (escapes,
//! interpolation) and unquoted values (interpolation, trailing ` #comment` dropped).
//! A bare `KEY` takes its value from the lookup (the process environment).

use std::collections::{BTreeMap, BTreeSet};

use crate::interpolate::interpolate;

/// A parse error at a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileError {
    /// 1-based line.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// Parses `text`. Values may refer to variables set earlier in the file or known to
/// `lookup`. Keys without `=` are resolved through `lookup` and dropped when unknown.
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, EnvFileError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, raw)) = lines.next() {
        let line_no = n as u64 + 1;
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, rest) = match line.find('=') {
            Some(i) => (line[..i].trim_end(), Some(&line[i + 1..])),
            None => (line.trim_end(), None),
        };
        if key.is_empty() || key.chars().any(|c| c.is_whitespace()) {
            return Err(EnvFileError {
                line: line_no,
                message: format!("invalid variable name {key:?}"),
            });
        }
        let Some(rest) = rest else {
            if let Some(v) = seen.get(key).cloned().or_else(|| lookup(key)) {
                seen.insert(key.to_string(), v.clone());
                out.push((key.to_string(), v));
            }
            continue;
        };
        let lookup_here = |k: &str| seen.get(k).cloned().or_else(|| lookup(k));
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('\'') {
            let mut body = body.to_string();
            // A quoted value may span lines.
            while !body.contains('\'') {
                match lines.next() {
                    Some((_, l)) => {
                        body.push('\n');
                        body.push_str(l);
                    }
                    None => {
                        return Err(EnvFileError {
                            line: line_no,
                            message: format!("unterminated single quote in value of {key}"),
                        })
                    }
                }
            }
            let end = body.find('\'').unwrap_or(body.len());
            body[..end].to_string()
        } else if let Some(body) = rest.strip_prefix('"') {
            let mut body = body.to_string();
            while closing_double_quote(&body).is_none() {
                match lines.next() {
                    Some((_, l)) => {
                        body.push('\n');
                        body.push_str(l);
                    }
                    None => {
                        return Err(EnvFileError {
                            line: line_no,
                            message: format!("unterminated double quote in value of {key}"),
                        })
                    }
                }
            }
            let end = closing_double_quote(&body).unwrap_or(body.len());
            let unescaped = unescape(&body[..end]);
            interpolate(&unescaped, &lookup_here, &mut BTreeSet::new()).map_err(|e| {
                EnvFileError {
                    line: line_no,
                    message: e.to_string(),
                }
            })?
        } else {
            let v = match rest.find(" #") {
                Some(i) => &rest[..i],
                None => rest,
            };
            interpolate(v.trim_end(), &lookup_here, &mut BTreeSet::new()).map_err(|e| {
                EnvFileError {
                    line: line_no,
                    message: e.to_string(),
                }
            })?
        };
        seen.insert(key.to_string(), value.clone());
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn closing_double_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(c @ ('"' | '\\' | '$')) => {
                if c == '$' {
                    out.push_str("$$");
                } else {
                    out.push(c);
                }
            }
            Some(c) => {
                out.push('\\');
                out.push(c);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(String, String)> {
        parse(s, &|k| (k == "HOSTVAR").then(|| "fromhost".to_string())).unwrap()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_common_forms() {
        let text = "# comment\n\nA=1\nexport B=two words\nC='single $A'\nD=\"double ${A}\\n\"\nE=x #comment\nF=\nHOSTVAR\nMISSING\nG=${A}-$B\n";
        assert_eq!(
            p(text),
            pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "single $A"),
                ("D", "double 1\n"),
                ("E", "x"),
                ("F", ""),
                ("HOSTVAR", "fromhost"),
                ("G", "1-two words"),
            ])
        );
    }

    #[test]
    fn multi_line_quoted_values() {
        assert_eq!(p("K=\"a\nb\"\nL=2\n"), pairs(&[("K", "a\nb"), ("L", "2")]));
    }

    #[test]
    fn reports_the_line_of_a_bad_entry() {
        let e = parse("A=1\nB C=2\n", &|_| None).unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("A=1\nB='open\n", &|_| None).unwrap_err();
        assert_eq!(e.line, 2);
    }
}
