//! `GET /events`: replay of retained events in `[since, until]`, then the live stream until
//! `until` passes or the client goes away, with dockerd's filters and wire format.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use corral_engine::Event;
use corral_oci::Reference;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::filters::Filters;
use crate::AppState;

/// Filter keys dockerd accepts on `/events`.
const EVENT_FILTERS: &[&str] = &[
    "type",
    "event",
    "container",
    "image",
    "label",
    "network",
    "volume",
    "daemon",
    "plugin",
    "node",
    "service",
    "secret",
    "config",
    "scope",
];

#[derive(Deserialize)]
pub(crate) struct EventsQuery {
    since: Option<String>,
    until: Option<String>,
    filters: Option<String>,
}

/// One event as dockerd encodes it, with the deprecated `status`/`id`/`from` fields for
/// container and image events.
pub(crate) fn event_json(e: &Event) -> Value {
    let nanos = e.time.timestamp_nanos_opt().unwrap_or(0);
    let mut v = json!({
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": e.actor_id, "Attributes": e.attributes},
        "scope": "local",
        "time": e.time.timestamp(),
        "timeNano": nanos,
    });
    match e.kind.as_str() {
        "container" => {
            v["status"] = json!(e.action);
            v["id"] = json!(e.actor_id);
            if let Some(img) = e.attributes.get("image") {
                v["from"] = json!(img);
            }
        }
        "image" => {
            v["status"] = json!(e.action);
            v["id"] = json!(e.actor_id);
        }
        _ => {}
    }
    v
}

/// An image reference without its tag (dockerd's `stripTag`); unparsable ones unchanged.
fn strip_tag(image: &str) -> String {
    Reference::parse(image).map_or_else(|_| image.to_owned(), |r| r.familiar_name())
}

/// Whether `f` holds no values for `key`, or `source` is one of them.
fn exact(f: &Filters, key: &str, source: &str) -> bool {
    f.get(key)
        .is_none_or(|vals| vals.is_empty() || vals.iter().any(|v| v == source))
}

/// [`exact`], or `source` starts with one of the values (dockerd's `FuzzyMatch`).
fn fuzzy(f: &Filters, key: &str, source: &str) -> bool {
    exact(f, key, source)
        || f.get(key)
            .is_some_and(|vals| vals.iter().any(|v| source.starts_with(v.as_str())))
}

/// dockerd's `events.Filter.Include`: every filter key present must match the event,
/// whatever its type (a `container=` filter excludes image events).
pub(crate) fn event_matches(e: &Event, f: &Filters) -> bool {
    let attr = |k: &str| e.attributes.get(k).map(String::as_str).unwrap_or("");
    let by_name = |key: &str| fuzzy(f, key, &e.actor_id) || fuzzy(f, key, attr("name"));
    // `event=health_status` (or exec_create/exec_start) without the `: …` suffix matches
    // by prefix, as in dockerd (#25798).
    let event_ok = match f.get("event") {
        Some(vals)
            if vals
                .iter()
                .any(|v| ["health_status", "exec_create", "exec_start"].contains(&v.as_str())) =>
        {
            fuzzy(f, "event", &e.action)
        }
        _ => exact(f, "event", &e.action),
    };
    let image_name = if e.kind == "image" {
        attr("name")
    } else {
        attr("image")
    };
    let image_ok = exact(f, "image", &e.actor_id)
        || exact(f, "image", image_name)
        || exact(f, "image", &strip_tag(&e.actor_id))
        || exact(f, "image", &strip_tag(image_name));
    event_ok
        && exact(f, "type", &e.kind)
        && exact(f, "scope", "local")
        && by_name("daemon")
        && by_name("container")
        && by_name("plugin")
        && by_name("volume")
        && by_name("network")
        && image_ok
        && f.labels_match(&e.attributes)
}

/// Parses `since`/`until`: unix seconds with an optional fraction (what the docker CLI
/// sends), RFC 3339, or a duration before now (`10m`, `1h30m`, as the CLI accepts them).
pub(crate) fn parse_event_time(s: &str, now: DateTime<Utc>) -> ApiResult<Option<DateTime<Utc>>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let bad = || ApiError::bad_request(format!("invalid time value {s:?}"));
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if let Ok(secs) = whole.parse::<i64>() {
        if frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()) {
            let nanos: u32 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
            return DateTime::from_timestamp(secs, nanos)
                .map(Some)
                .ok_or_else(bad);
        }
        return Err(bad());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let d = parse_go_duration(s).ok_or_else(bad)?;
    Ok(Some(now - d))
}

/// Go's `time.ParseDuration` for non-negative values.
fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    corral_core::duration::parse_go_duration(s)
        .filter(|ns| *ns >= 0)
        .map(chrono::Duration::nanoseconds)
}

pub(crate) async fn events(
    State(st): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Response> {
    let f = Filters::parse(q.filters.as_deref())?;
    f.validate(EVENT_FILTERS)?;
    let now = Utc::now();
    let since = parse_event_time(q.since.as_deref().unwrap_or(""), now)?;
    let until = parse_event_time(q.until.as_deref().unwrap_or(""), now)?;
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(ApiError::bad_request(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                q.since.as_deref().unwrap_or(""),
                q.until.as_deref().unwrap_or("")
            )));
        }
    }
    // dockerd replays retained events when either bound is given (`until` alone replays
    // everything before it).
    let replay_from = since.or(until.map(|_| DateTime::<Utc>::MIN_UTC));
    let (replay, rx) = st.engine.events(replay_from).await?;
    let replay_items: Vec<String> = replay
        .into_iter()
        .filter(|e| until.is_none_or(|u| e.time <= u) && event_matches(e, &f))
        .map(|e| format!("{}\n", event_json(&e)))
        .collect();
    let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |r| {
        let out = match r {
            Ok(e) if event_matches(&e, &f) => Some(format!("{}\n", event_json(&e))),
            Ok(_) => None,
            Err(lagged) => {
                tracing::warn!(error = %lagged, "events subscriber lagged; events dropped");
                None
            }
        };
        async move { out }
    });
    let body: futures::stream::BoxStream<'static, String> = match until {
        // A past `until` only replays; a future one streams until then.
        Some(u) if u <= Utc::now() => futures::stream::iter(replay_items).boxed(),
        Some(u) => {
            let dur = (u - Utc::now()).to_std().unwrap_or_default();
            let deadline = tokio::time::sleep(dur);
            futures::stream::iter(replay_items)
                .chain(live.take_until(deadline))
                .boxed()
        }
        None => futures::stream::iter(replay_items).chain(live).boxed(),
    };
    let mut resp = Body::from_stream(body.map(Ok::<_, std::io::Error>)).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            kind: kind.into(),
            action: action.into(),
            actor_id: id.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            time: DateTime::from_timestamp(1_700_000_000, 123).unwrap(),
        }
    }

    fn filters(raw: &str) -> Filters {
        Filters::parse(Some(raw)).unwrap()
    }

    #[test]
    fn both_filter_forms_select_the_same_events() {
        let a = filters(r#"{"type":["container"],"event":["die"]}"#);
        let b = filters(r#"{"type":{"container":true},"event":{"die":true}}"#);
        let die = ev(
            "container",
            "die",
            "abc",
            &[("name", "web"), ("image", "busybox")],
        );
        let start = ev("container", "start", "abc", &[("name", "web")]);
        for f in [&a, &b] {
            assert!(event_matches(&die, f));
            assert!(!event_matches(&start, f));
        }
    }

    #[test]
    fn object_filters_match_id_prefix_or_name_and_exclude_other_types() {
        let c = ev(
            "container",
            "start",
            "abcdef",
            &[("name", "web"), ("image", "busybox")],
        );
        let v = ev("volume", "create", "data", &[("driver", "local")]);
        let n = ev(
            "network",
            "create",
            "0123",
            &[("name", "front"), ("type", "bridge")],
        );
        assert!(event_matches(&c, &filters(r#"{"container":["abc"]}"#)));
        assert!(event_matches(&c, &filters(r#"{"container":["web"]}"#)));
        assert!(!event_matches(&c, &filters(r#"{"container":["other"]}"#)));
        assert!(!event_matches(&v, &filters(r#"{"container":["web"]}"#)));
        assert!(event_matches(&v, &filters(r#"{"volume":["data"]}"#)));
        assert!(event_matches(&n, &filters(r#"{"network":["front"]}"#)));
        assert!(event_matches(&n, &filters(r#"{"type":["network"]}"#)));
        assert!(!event_matches(&c, &filters(r#"{"type":["network"]}"#)));
    }

    #[test]
    fn image_filter_matches_container_image_and_image_name_without_tag() {
        let c = ev(
            "container",
            "create",
            "abc",
            &[("name", "web"), ("image", "busybox:latest")],
        );
        let i = ev("image", "tag", "sha256:11", &[("name", "reg/x:1")]);
        assert!(event_matches(&c, &filters(r#"{"image":["busybox"]}"#)));
        assert!(event_matches(
            &c,
            &filters(r#"{"image":["busybox:latest"]}"#)
        ));
        assert!(!event_matches(&c, &filters(r#"{"image":["alpine"]}"#)));
        assert!(event_matches(&i, &filters(r#"{"image":["reg/x"]}"#)));
        assert!(event_matches(&i, &filters(r#"{"image":["sha256:11"]}"#)));
    }

    #[test]
    fn health_and_exec_events_match_without_their_suffix() {
        let h = ev("container", "health_status: healthy", "abc", &[]);
        let e = ev("container", "exec_start: sh -c true", "abc", &[]);
        assert!(event_matches(
            &h,
            &filters(r#"{"event":["health_status"]}"#)
        ));
        assert!(event_matches(
            &h,
            &filters(r#"{"event":["health_status: healthy"]}"#)
        ));
        assert!(!event_matches(
            &h,
            &filters(r#"{"event":["health_status: unhealthy"]}"#)
        ));
        assert!(event_matches(&e, &filters(r#"{"event":["exec_start"]}"#)));
        assert!(!event_matches(&e, &filters(r#"{"event":["exec"]}"#)));
    }

    #[test]
    fn label_filters_read_actor_attributes() {
        let c = ev(
            "container",
            "start",
            "abc",
            &[("name", "web"), ("tier", "front")],
        );
        assert!(event_matches(&c, &filters(r#"{"label":["tier=front"]}"#)));
        assert!(event_matches(&c, &filters(r#"{"label":["tier"]}"#)));
        assert!(!event_matches(&c, &filters(r#"{"label":["tier=back"]}"#)));
    }

    #[test]
    fn wire_format_has_legacy_fields_for_containers_and_images_only() {
        let c = event_json(&ev(
            "container",
            "die",
            "abc",
            &[("image", "busybox"), ("exitCode", "0")],
        ));
        assert_eq!(c["status"], "die");
        assert_eq!(c["id"], "abc");
        assert_eq!(c["from"], "busybox");
        assert_eq!(c["Actor"]["Attributes"]["exitCode"], "0");
        assert_eq!(c["scope"], "local");
        assert_eq!(c["time"], 1_700_000_000);
        assert_eq!(c["timeNano"], 1_700_000_000_000_000_123i64);
        let i = event_json(&ev(
            "image",
            "pull",
            "busybox:latest",
            &[("name", "busybox:latest")],
        ));
        assert_eq!(i["status"], "pull");
        assert!(i.get("from").is_none());
        let v = event_json(&ev("volume", "create", "data", &[]));
        assert!(v.get("status").is_none() && v.get("id").is_none());
    }

    #[test]
    fn times_parse_as_the_cli_and_api_send_them() {
        let now = DateTime::from_timestamp(1_700_000_100, 0).unwrap();
        let p = |s: &str| parse_event_time(s, now).unwrap();
        assert_eq!(p(""), None);
        assert_eq!(p("0"), DateTime::from_timestamp(0, 0));
        assert_eq!(p("1700000000"), DateTime::from_timestamp(1_700_000_000, 0));
        assert_eq!(
            p("1700000000.000000005"),
            DateTime::from_timestamp(1_700_000_000, 5)
        );
        assert_eq!(
            p("1700000000.5"),
            DateTime::from_timestamp(1_700_000_000, 500_000_000)
        );
        assert_eq!(
            p("2023-11-14T22:13:20Z"),
            DateTime::from_timestamp(1_700_000_000, 0)
        );
        assert_eq!(p("100s"), DateTime::from_timestamp(1_700_000_000, 0));
        assert_eq!(p("1m40s"), DateTime::from_timestamp(1_700_000_000, 0));
        assert!(parse_event_time("yesterday", now).is_err());
        assert!(parse_event_time("12.x", now).is_err());
    }
}
