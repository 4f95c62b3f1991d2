//! `.dockerignore` and COPY source globs: Go `filepath.Match` patterns (`*`, `?`, `[…]`)
//! plus `**` across directories, `!` exceptions, and a path excluded when it or one of its
//! parent directories matches (dockerd's `PatternMatcher.MatchesOrParentMatches`).

/// One `.dockerignore` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    parts: Vec<String>,
    negated: bool,
}

/// The patterns of a `.dockerignore` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

/// Cleans a context-relative path: no leading `/` or `./`, no empty or `.` elements.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl Ignore {
    /// Parses a `.dockerignore` file (comments `#`, blank lines skipped).
    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let (negated, p) = match l.strip_prefix('!') {
                    Some(p) => (true, p.trim()),
                    None => (false, l),
                };
                let c = clean(p);
                (!c.is_empty()).then(|| Pattern {
                    parts: c.split('/').map(str::to_owned).collect(),
                    negated,
                })
            })
            .collect();
        Ignore { patterns }
    }

    /// Whether the context-relative `path` is excluded.
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        if path.is_empty() {
            return false;
        }
        let elems: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for p in &self.patterns {
            // The path itself or any of its parents.
            let hit = (1..=elems.len()).any(|n| match_parts(&p.parts, &elems[..n]));
            if hit {
                excluded = !p.negated;
            }
        }
        excluded
    }
}

/// Whether the pattern elements match the path elements (`**` matches zero or more).
pub fn match_parts(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_parts(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, prest)) => glob(first, p) && match_parts(rest, prest),
            None => false,
        },
    }
}

/// Go's `filepath.Match` for one path element.
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> bool {
    match p.first() {
        None => n.is_empty(),
        Some('*') => (0..=n.len()).any(|k| glob_at(&p[1..], &n[k..])),
        Some('?') => !n.is_empty() && glob_at(&p[1..], &n[1..]),
        Some('[') => {
            let Some(end) = p.iter().skip(1).position(|&c| c == ']').map(|e| e + 1) else {
                return n.first() == Some(&'[') && glob_at(&p[1..], &n[1..]);
            };
            let Some(&c) = n.first() else { return false };
            let mut class = &p[1..end];
            let negate = matches!(class.first(), Some('^' | '!'));
            if negate {
                class = &class[1..];
            }
            let mut hit = false;
            let mut k = 0;
            while k < class.len() {
                if k + 2 < class.len() && class[k + 1] == '-' {
                    hit |= class[k] <= c && c <= class[k + 2];
                    k += 3;
                } else {
                    hit |= class[k] == c;
                    k += 1;
                }
            }
            hit != negate && glob_at(&p[end + 1..], &n[1..])
        }
        Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && glob_at(&p[2..], &n[1..]),
        Some(&c) => n.first() == Some(&c) && glob_at(&p[1..], &n[1..]),
    }
}

/// Whether a COPY source contains glob characters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_follow_go_filepath_match() {
        assert!(glob("*.txt", "a.txt"));
        assert!(!glob("*.txt", "a.txt.bak"));
        assert!(glob("f?le", "file"));
        assert!(glob("[a-c]x", "bx"));
        assert!(!glob("[^a-c]x", "bx"));
    }

    #[test]
    fn dockerignore_excludes_parents_and_honours_exceptions() {
        let ig = Ignore::parse("# comment\n*.log\n/secret\nbuild/**\n!build/keep.txt\n**/tmp\n");
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("dir/a.log"), "*.log matches only at the top");
        assert!(ig.excluded("secret"));
        assert!(ig.excluded("secret/inner/file"));
        assert!(ig.excluded("build/x.o"));
        assert!(!ig.excluded("build/keep.txt"));
        assert!(ig.excluded("deep/er/tmp/f"));
        assert!(!ig.excluded("Dockerfile"));
    }

    #[test]
    fn clean_strips_dots_and_leading_slashes() {
        assert_eq!(clean("./a//b/./c"), "a/b/c");
        assert_eq!(clean("/a/../b"), "b");
        assert_eq!(clean("../../x"), "x");
    }
}
