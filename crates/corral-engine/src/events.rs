//! Engine events (Docker's `/events`): a bounded history in memory, a broadcast channel for
//! live subscribers, and a bounded table in the state store so `--since` replays survive a
//! daemon restart.
//!
//! Publishing never blocks on SQLite: events go through a bounded channel to one writer
//! thread that commits them in batches. Replays read the memory history first and the
//! store only for what memory no longer holds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc;
use std::sync::Arc;

use chrono::{DateTime, Utc};
pub use corral_core::Event;
use corral_store::StateStore;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::error::{Error, Result};

/// How many events are kept in memory.
const HISTORY: usize = 1024;
/// How many events the state store keeps.
const PERSISTED: usize = 4096;
/// Events waiting for the writer; beyond this, events are still delivered live and kept in
/// memory, but not persisted (the writer is far behind).
const WRITE_QUEUE: usize = 4096;
/// Most events committed in one transaction.
const WRITE_BATCH: usize = 512;
/// How long the writer gathers events after the first of a batch (a `docker run` emits
/// several within this window; one commit takes them all).
const WRITE_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

/// Publishes events to live subscribers and keeps a bounded history.
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    state: Mutex<History>,
    persist: Option<Persist>,
}

struct History {
    /// The sequence number the next event gets.
    next_seq: u64,
    /// `(seq, event)`, oldest first.
    events: VecDeque<(u64, Event)>,
}

/// The writer thread and the way to reach it.
struct Persist {
    store: Arc<dyn StateStore>,
    /// Events not persisted because the writer was behind.
    dropped: std::sync::atomic::AtomicU64,
    queue: Mutex<Option<mpsc::SyncSender<(u64, Event)>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

// === impl EventBus ===

impl Default for EventBus {
    /// A bus without persistence.
    fn default() -> Self {
        Self::with_history(0, VecDeque::new(), None)
    }
}

impl EventBus {
    fn with_history(
        next_seq: u64,
        events: VecDeque<(u64, Event)>,
        persist: Option<Persist>,
    ) -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            tx,
            state: Mutex::new(History { next_seq, events }),
            persist,
        }
    }

    /// Opens the bus on a state store: loads the newest persisted events into memory and
    /// starts the writer thread. Blocking: call it off the async workers.
    pub fn open(store: Arc<dyn StateStore>) -> Result<Self> {
        let recent = store.events(None, u64::MAX, HISTORY)?;
        let next_seq = recent.last().map_or(1, |(seq, _)| seq + 1);
        let (queue, rx) = mpsc::sync_channel(WRITE_QUEUE);
        let writer_store = store.clone();
        let writer = std::thread::Builder::new()
            .name("corral-events".into())
            .spawn(move || write_loop(writer_store.as_ref(), &rx))
            .map_err(|e| Error::Internal(format!("starting the event writer: {e}")))?;
        Ok(Self::with_history(
            next_seq,
            recent.into_iter().collect(),
            Some(Persist {
                store,
                dropped: std::sync::atomic::AtomicU64::new(0),
                queue: Mutex::new(Some(queue)),
                writer: Mutex::new(Some(writer)),
            }),
        ))
    }

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
        // Sequence, history and broadcast under one lock so every subscriber sees events in
        // sequence order and a replay never misses one that was sent meanwhile.
        let mut h = self.state.lock();
        let seq = h.next_seq;
        h.next_seq += 1;
        if h.events.len() == HISTORY {
            h.events.pop_front();
        }
        h.events.push_back((seq, ev.clone()));
        if let Some(p) = &self.persist {
            if let Some(q) = p.queue.lock().as_ref() {
                if q.try_send((seq, ev.clone())).is_err() {
                    let n = p.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n % 1000 == 0 {
                        tracing::warn!(
                            seq,
                            dropped = n + 1,
                            "event writer is behind; events not persisted"
                        );
                    }
                }
            }
        }
        // No receivers is fine: nobody is listening.
        let _ = self.tx.send(ev);
    }

    /// Events at or after `since` (none when `None`), oldest first, and a receiver for what
    /// follows; no event falls between the two or appears in both. Events older than the
    /// memory history come from the state store (blocking: run off the async workers).
    pub fn subscribe(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<(Vec<Event>, broadcast::Receiver<Event>)> {
        let (mut replay, first_seq, rx) = {
            let h = self.state.lock();
            let rx = self.tx.subscribe();
            let Some(t) = since else {
                return Ok((Vec::new(), rx));
            };
            let first_seq = h.events.front().map_or(h.next_seq, |(seq, _)| *seq);
            let from_memory: Vec<Event> = h
                .events
                .iter()
                .filter(|(_, e)| e.time >= t)
                .map(|(_, e)| e.clone())
                .collect();
            // Memory holds everything since `t` unless its oldest event is at or after `t`.
            let complete = h.events.front().is_some_and(|(_, e)| e.time < t);
            (from_memory, (!complete).then_some(first_seq), rx)
        };
        if let (Some(first_seq), Some(p)) = (first_seq, &self.persist) {
            let older = p.store.events(since, first_seq, PERSISTED)?;
            let mut all: Vec<Event> = older.into_iter().map(|(_, e)| e).collect();
            all.append(&mut replay);
            replay = all;
        }
        Ok((replay, rx))
    }

    /// Stops the writer after it committed what is queued.
    pub fn close(&self) {
        if let Some(p) = &self.persist {
            p.queue.lock().take();
            if let Some(w) = p.writer.lock().take() {
                if w.join().is_err() {
                    tracing::warn!("event writer panicked");
                }
            }
        }
    }
}

impl Drop for EventBus {
    fn drop(&mut self) {
        if let Some(p) = &self.persist {
            // Closing the queue ends the writer; it finishes on its own.
            p.queue.lock().take();
        }
    }
}

/// The writer thread: commits queued events in batches until the queue closes.
fn write_loop(store: &dyn StateStore, rx: &mpsc::Receiver<(u64, Event)>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + WRITE_WINDOW;
        while batch.len() < WRITE_BATCH {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(ev) => batch.push(ev),
                Err(_) => break,
            }
        }
        if let Err(e) = store.append_events(&batch, PERSISTED) {
            tracing::warn!(error = %e, count = batch.len(), "persisting events");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_store::SqliteStore;

    #[tokio::test]
    async fn replays_since_and_streams_live() {
        let bus = EventBus::default();
        let t0 = Utc::now() - chrono::Duration::seconds(1);
        bus.publish("container", "create", "a", BTreeMap::new());
        let (replay, mut rx) = bus.subscribe(Some(t0)).unwrap();
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].action, "create");
        bus.publish("container", "start", "a", BTreeMap::new());
        assert_eq!(rx.recv().await.unwrap().action, "start");
        let (none, _) = bus.subscribe(None).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn history_is_bounded() {
        let bus = EventBus::default();
        for _ in 0..HISTORY + 10 {
            bus.publish("image", "pull", "x", BTreeMap::new());
        }
        let (replay, _) = bus.subscribe(Some(DateTime::<Utc>::MIN_UTC)).unwrap();
        assert_eq!(replay.len(), HISTORY);
    }

    #[test]
    fn persisted_events_replay_after_reopen_and_beyond_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&path).unwrap());
        let t0 = Utc::now() - chrono::Duration::seconds(1);
        {
            let bus = EventBus::open(store.clone()).unwrap();
            for i in 0..HISTORY + 5 {
                bus.publish("container", "create", &format!("c{i}"), BTreeMap::new());
            }
            // Older than memory holds: the first five come from the store.
            bus.close();
            let (replay, _) = bus.subscribe(Some(t0)).unwrap();
            assert_eq!(replay.len(), HISTORY + 5);
            assert_eq!(replay[0].actor_id, "c0");
            assert_eq!(replay[HISTORY + 4].actor_id, format!("c{}", HISTORY + 4));
        }
        let bus = EventBus::open(store).unwrap();
        bus.publish("container", "start", "after", BTreeMap::new());
        let (replay, _) = bus.subscribe(Some(t0)).unwrap();
        assert_eq!(replay.len(), HISTORY + 6);
        assert_eq!(replay[0].actor_id, "c0");
        assert_eq!(replay.last().unwrap().actor_id, "after");
        bus.close();
    }
}
