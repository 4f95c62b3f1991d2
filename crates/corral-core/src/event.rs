//! Engine events (Docker's `/events` messages) as plain data.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One event, shaped like Docker's `EventMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `container`, `image`, `network`, `volume`, `daemon`.
    pub kind: String,
    /// `create`, `start`, `die`, `pull`, `health_status: healthy`, …
    pub action: String,
    /// Object id (or image reference for image events).
    pub actor_id: String,
    /// Actor attributes (name, image, exitCode, labels).
    pub attributes: BTreeMap<String, String>,
    /// When it happened.
    pub time: DateTime<Utc>,
}
