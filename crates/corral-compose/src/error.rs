//! Errors of compose loading. Every problem found in a file carries a [`Diagnostic`]:
//! the file, line and column (when known) and the key path, printed as
//! `file:line:column: services.web.ports[0]: message`.

use std::fmt;

/// A problem at a place in a compose file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// File name as given (empty when the problem is not in a file).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// Key path such as `services.web.ports[0]`; empty at the top.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            f.write_str(&self.file)?;
            if self.line > 0 {
                write!(f, ":{}:{}", self.line, self.column)?;
            }
            f.write_str(": ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Errors of loading a compose project.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No compose file was given and none of the default names exists.
    #[error("no configuration file provided: not found (looked for {0})")]
    NoFile(String),
    /// The file is not valid YAML (or exceeds the parser's budget).
    #[error("{0}")]
    Yaml(Diagnostic),
    /// A `${VAR:?message}` variable is unset, or a substitution is malformed.
    #[error("{0}")]
    Interpolation(Diagnostic),
    /// A value has the wrong type, an unknown key or an invalid spelling.
    #[error("{0}")]
    Schema(Diagnostic),
    /// The project is inconsistent (unknown dependency, cycle, undefined network...).
    #[error("{0}")]
    Invalid(Diagnostic),
    /// An `.env` or `env_file` line cannot be parsed.
    #[error("{0}")]
    EnvFile(Diagnostic),
}

impl Error {
    /// The diagnostic of errors found in a file.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            Error::Yaml(d)
            | Error::Interpolation(d)
            | Error::Schema(d)
            | Error::Invalid(d)
            | Error::EnvFile(d) => Some(d),
            Error::Read { .. } | Error::NoFile(_) => None,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The candidate closest to `word` (Levenshtein distance at most 1/3 of its length, at
/// least 2), for "did you mean" hints.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(suggest("imgae", ["image", "command"]), Some("image"));
        assert_eq!(
            suggest("enviroment", ["environment", "env_file"]),
            Some("environment")
        );
        assert_eq!(suggest("zzz", ["image", "command"]), None);
    }

    #[test]
    fn prints_file_line_column_and_path() {
        let d = Diagnostic {
            file: "a.yml".into(),
            line: 3,
            column: 5,
            path: "services.web".into(),
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "a.yml:3:5: services.web: bad");
    }
}
