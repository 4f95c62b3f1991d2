//! `/volumes`: list, inspect, create, remove and prune, in dockerd's JSON shapes.

use std::collections::BTreeMap;

use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::SecondsFormat;
use corral_engine::{VolumeCreate, VolumeInfo, VolumePrune};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::filters::Filters;
use crate::version::ApiVersion;
use crate::AppState;

/// A volume as dockerd renders it; `UsageData` only when `usage` is set.
pub(crate) fn volume_json(v: &VolumeInfo, usage: bool) -> Value {
    let r = &v.record;
    let mut out = json!({
        "CreatedAt": r.created.to_rfc3339_opts(SecondsFormat::Secs, true),
        "Driver": r.driver,
        "Labels": r.labels,
        "Mountpoint": v.mountpoint,
        "Name": r.name,
        "Options": r.options,
        "Scope": "local",
    });
    if usage {
        out["UsageData"] = json!({
            "Size": v.size.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX)),
            "RefCount": v.containers.len(),
        });
    }
    out
}

fn truthy(s: &str) -> Option<bool> {
    match s {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Query of `GET /volumes` and `POST /volumes/prune`.
#[derive(Deserialize)]
pub(crate) struct FilterQuery {
    filters: Option<String>,
}

pub(crate) async fn list(
    State(st): State<AppState>,
    Query(q): Query<FilterQuery>,
) -> ApiResult<Json<Value>> {
    let f = Filters::parse(q.filters.as_deref())?;
    f.validate(&["dangling", "driver", "label", "label!", "name"])?;
    let dangling = match f.get("dangling") {
        Some(vals) => {
            let mut want = None;
            for v in vals {
                want = Some(truthy(v).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid filter 'dangling={v}': invalid value for dangling (expected 'true' or 'false')"
                    ))
                })?);
            }
            want
        }
        None => None,
    };
    let vols = st.engine.volumes(false).await?;
    let out: Vec<Value> = vols
        .iter()
        .filter(|v| dangling.is_none_or(|d| d == v.containers.is_empty()))
        .filter(|v| f.any("name", |n| v.record.name.contains(n)))
        .filter(|v| f.any("driver", |d| v.record.driver == d))
        .filter(|v| f.labels_match(&v.record.labels))
        .map(|v| volume_json(v, false))
        .collect();
    Ok(Json(json!({"Volumes": out, "Warnings": null})))
}

pub(crate) async fn inspect(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let v = st.engine.volume(&name).await?;
    Ok(Json(volume_json(&v, false)))
}

/// Body of `POST /volumes/create`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct CreateBody {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Driver")]
    driver: Option<String>,
    #[serde(rename = "DriverOpts")]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
}

pub(crate) async fn create(
    State(st): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let b: CreateBody = if body.is_empty() {
        CreateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    let v = st
        .engine
        .create_volume(VolumeCreate {
            name: b.name,
            driver: b.driver.filter(|d| !d.is_empty()),
            labels: b.labels.unwrap_or_default(),
            options: b.driver_opts.unwrap_or_default(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(volume_json(&v, false))))
}

/// Query of `DELETE /volumes/{name}`.
#[derive(Deserialize)]
pub(crate) struct RemoveQuery {
    force: Option<String>,
}

pub(crate) async fn remove(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<StatusCode> {
    let force = q.force.as_deref().and_then(truthy).unwrap_or(false);
    st.engine.remove_volume(&name, force).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn prune(
    State(st): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Query(q): Query<FilterQuery>,
) -> ApiResult<Json<Value>> {
    let f = Filters::parse(q.filters.as_deref())?;
    f.validate(&["label", "label!", "all"])?;
    // Before API 1.42 prune removed every unused volume; since, only anonymous ones
    // unless `all` is set.
    let all = match f.get("all") {
        Some(vals) if version.at_least(1, 42) => vals.iter().any(|v| truthy(v) == Some(true)),
        Some(_) => {
            return Err(ApiError::bad_request("invalid filter 'all'"));
        }
        None => !version.at_least(1, 42),
    };
    let (removed, freed) = st
        .engine
        .prune_volumes(VolumePrune {
            all,
            labels: f.get("label").map(<[String]>::to_vec).unwrap_or_default(),
            not_labels: f.get("label!").map(<[String]>::to_vec).unwrap_or_default(),
        })
        .await?;
    let deleted = if removed.is_empty() {
        Value::Null
    } else {
        json!(removed)
    };
    Ok(Json(
        json!({"VolumesDeleted": deleted, "SpaceReclaimed": freed}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use corral_core::VolumeRecord;

    #[test]
    fn renders_dockerd_shape() {
        let v = VolumeInfo {
            record: VolumeRecord {
                name: "data".into(),
                driver: "local".into(),
                created: Utc::now(),
                labels: [("a".to_owned(), "b".to_owned())].into(),
                options: BTreeMap::new(),
            },
            mountpoint: "/var/lib/corral/volumes/data/_data".into(),
            containers: vec!["x".into()],
            size: Some(5),
        };
        let j = volume_json(&v, false);
        assert_eq!(j["Name"], "data");
        assert_eq!(j["Scope"], "local");
        assert_eq!(j["Labels"]["a"], "b");
        assert!(j["CreatedAt"].as_str().unwrap().ends_with('Z'));
        assert!(j.get("UsageData").is_none());
        let j = volume_json(&v, true);
        assert_eq!(j["UsageData"], json!({"Size": 5, "RefCount": 1}));
    }
}
