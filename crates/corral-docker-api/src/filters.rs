//! Docker's `filters` query parameter: JSON `map[string][]string`, or the older
//! `map[string]map[string]bool`; both are accepted.

use std::collections::BTreeMap;

use crate::error::ApiError;

/// Parsed filters: key → accepted values.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    /// Parses the raw query value (`None` or empty means no filters).
    pub(crate) fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let Some(raw) = raw.filter(|s| !s.is_empty()) else {
            return Ok(Self::default());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid filter: not a JSON object"))?;
        let mut out = BTreeMap::new();
        for (k, vals) in obj {
            let list: Vec<String> = match vals {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| ApiError::bad_request(format!("invalid filter '{k}'")))?,
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(false))
                    .map(|(name, _)| name.clone())
                    .collect(),
                _ => return Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
            };
            out.insert(k.clone(), list);
        }
        Ok(Self(out))
    }

    /// Fails with dockerd's message when a key is not in `allowed`.
    pub(crate) fn validate(&self, allowed: &[&str]) -> Result<(), ApiError> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
            }
        }
        Ok(())
    }

    /// The values for `key`, if the filter is present.
    pub(crate) fn get(&self, key: &str) -> Option<&[String]> {
        self.0.get(key).map(Vec::as_slice)
    }

    /// True when `key` is absent or any of its values satisfies `pred`.
    pub(crate) fn any(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        match self.0.get(key) {
            None => true,
            Some(vals) => vals.iter().any(|v| pred(v)),
        }
    }

    /// Label filters: every `key` or `key=value` (or `key!=value` for `label!`) must hold.
    pub(crate) fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        let pos = self.0.get("label").map(Vec::as_slice).unwrap_or(&[]);
        let neg = self.0.get("label!").map(Vec::as_slice).unwrap_or(&[]);
        let matches = |f: &str| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f),
        };
        pos.iter().all(|f| matches(f)) && !neg.iter().any(|f| matches(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_wire_forms() {
        let a = Filters::parse(Some(r#"{"status":["exited"]}"#)).unwrap();
        let b = Filters::parse(Some(r#"{"status":{"exited":true}}"#)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("status").unwrap(), &["exited".to_string()]);
    }

    #[test]
    fn rejects_garbage_and_unknown_keys() {
        assert!(Filters::parse(Some("{")).is_err());
        assert!(Filters::parse(Some("[1]")).is_err());
        let f = Filters::parse(Some(r#"{"bogus":["x"]}"#)).unwrap();
        let err = f.validate(&["status"]).unwrap_err();
        assert_eq!(err.message(), "invalid filter 'bogus'");
    }

    #[test]
    fn label_filters_need_all_positive_and_no_negative() {
        let f = Filters::parse(Some(r#"{"label":["a","b=2"],"label!":["c"]}"#)).unwrap();
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        l.insert("b".to_string(), "2".to_string());
        assert!(f.labels_match(&l));
        l.insert("c".to_string(), "x".to_string());
        assert!(!f.labels_match(&l));
        l.remove("c");
        l.insert("b".to_string(), "3".to_string());
        assert!(!f.labels_match(&l));
    }
}

/// A boolean query parameter read as dockerd's `httputils.BoolValueOrDefault`: absent or
/// empty gives `default`; `0`, `no`, `false` and `none` (any case) are false; anything else,
/// including Python's `True` that docker-py sends, is true.
pub(crate) fn query_bool(v: Option<&str>, default: bool) -> bool {
    match v.map(|s| s.trim().to_ascii_lowercase()) {
        None => default,
        Some(s) if s.is_empty() => default,
        Some(s) => !matches!(s.as_str(), "0" | "no" | "false" | "none"),
    }
}

#[cfg(test)]
mod query_bool_tests {
    use super::query_bool;

    #[test]
    fn reads_booleans_as_dockerd() {
        for t in ["1", "true", "True", "yes", "on"] {
            assert!(query_bool(Some(t), false), "{t}");
        }
        for f in ["0", "false", "False", "no", "NONE"] {
            assert!(!query_bool(Some(f), true), "{f}");
        }
        assert!(query_bool(None, true));
        assert!(!query_bool(Some(""), false));
    }
}

/// Every `changes` value of the query string, in order (the CLI repeats the key for each
/// `--change`). Blank values are kept: dockerd answers them with "file with no
/// instructions".
pub(crate) fn changes_in(uri: &axum::http::Uri) -> Vec<String> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| {
            q.0.into_iter()
                .filter(|(k, _)| k == "changes")
                .map(|(_, v)| v)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod changes_tests {
    use super::changes_in;

    #[test]
    fn reads_repeated_changes_from_the_query() {
        let uri: axum::http::Uri =
            "/commit?container=c&changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3D1&changes="
                .parse()
                .unwrap();
        assert_eq!(changes_in(&uri), ["CMD [\"sh\"]", "ENV A=1", ""]);
        let uri: axum::http::Uri = "/commit?container=c".parse().unwrap();
        assert!(changes_in(&uri).is_empty());
    }
}
