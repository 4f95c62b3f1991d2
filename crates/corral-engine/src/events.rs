//! Engine events (Docker's `/events`): a bounded history plus a broadcast channel.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::broadcast;

/// How many events are retained for `--since` replay.
const HISTORY: usize = 1024;

/// One event, shaped like Docker's `EventMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `container`, `image`, `network`, `volume`, `daemon`.
    pub kind: String,
    /// `create`, `start`, `die`, `pull`, …
    pub action: String,
    /// Object id (or image reference for image events).
    pub actor_id: String,
    /// Actor attributes (name, image, exitCode, labels).
    pub attributes: BTreeMap<String, String>,
    /// When it happened.
    pub time: DateTime<Utc>,
}

/// Publishes events to live subscribers and keeps a bounded history.
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

// === impl EventBus ===

impl Default for EventBus {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            tx,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }
}

impl EventBus {
    /// Publishes an event now.
    pub fn publish(
        &self,
        kind: &str,
        action: &str,
        actor_id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let ev = Event {
            kind: kind.to_owned(),
            action: action.to_owned(),
            actor_id: actor_id.to_owned(),
            attributes,
            time: Utc::now(),
        };
        {
            let mut h = self.history.lock();
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        // No receivers is fine: nobody is listening.
        let _ = self.tx.send(ev);
    }

    /// Retained events at or after `since` (all when `None` is given as an empty replay),
    /// and a receiver for what follows. Subscribing before copying the history means no event
    /// falls between the two; one may appear in both, which callers tolerate.
    pub fn subscribe(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let rx = self.tx.subscribe();
        let replay = match since {
            Some(t) => self
                .history
                .lock()
                .iter()
                .filter(|e| e.time >= t)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        (replay, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replays_since_and_streams_live() {
        let bus = EventBus::default();
        let t0 = Utc::now() - chrono::Duration::seconds(1);
        bus.publish("container", "create", "a", BTreeMap::new());
        let (replay, mut rx) = bus.subscribe(Some(t0));
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].action, "create");
        bus.publish("container", "start", "a", BTreeMap::new());
        assert_eq!(rx.recv().await.unwrap().action, "start");
        let (none, _) = bus.subscribe(None);
        assert!(none.is_empty());
    }

    #[test]
    fn history_is_bounded() {
        let bus = EventBus::default();
        for _ in 0..HISTORY + 10 {
            bus.publish("image", "pull", "x", BTreeMap::new());
        }
        let (replay, _) = bus.subscribe(Some(DateTime::<Utc>::MIN_UTC));
        assert_eq!(replay.len(), HISTORY);
    }
}
