//! Per-key locks so that work on one digest happens once at a time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

/// Async per-key mutexes; entries disappear when nobody holds or waits for them.
#[derive(Debug, Default)]
pub(crate) struct AsyncKeyedLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while the key is locked.
pub(crate) struct AsyncKeyGuard<'a> {
    locks: &'a AsyncKeyedLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl AsyncKeyedLocks {
    pub(crate) async fn lock(&self, key: &str) -> AsyncKeyGuard<'_> {
        let m = self.map.lock().entry(key.to_owned()).or_default().clone();
        let guard = m.lock_owned().await;
        AsyncKeyGuard {
            locks: self,
            key: key.to_owned(),
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}

impl Drop for AsyncKeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.map.lock();
        // Every clone of the Arc is made under the map lock, so a count of one (the map's)
        // means nobody holds or waits for this key.
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

/// Blocking per-key locks for work that runs on blocking threads.
#[derive(Debug, Default)]
pub(crate) struct KeyedLocks {
    busy: Mutex<HashSet<String>>,
    freed: Condvar,
}

/// Held while the key is locked.
pub(crate) struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
}

impl KeyedLocks {
    pub(crate) fn lock(&self, key: &str) -> KeyGuard<'_> {
        let mut busy = self.busy.lock();
        while busy.contains(key) {
            self.freed.wait(&mut busy);
        }
        busy.insert(key.to_owned());
        KeyGuard {
            locks: self,
            key: key.to_owned(),
        }
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.locks.busy.lock().remove(&self.key);
        self.locks.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn async_lock_serialises_same_key_and_cleans_up() {
        let locks = Arc::new(AsyncKeyedLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (locks, inside, max) = (locks.clone(), inside.clone(), max.clone());
            set.spawn(async move {
                let _g = locks.lock("k").await;
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
        assert_eq!(max.load(Ordering::SeqCst), 1);
        assert_eq!(locks.len(), 0);
    }

    #[test]
    fn blocking_lock_serialises_same_key() {
        let locks = Arc::new(KeyedLocks::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (locks, inside, max) = (locks.clone(), inside.clone(), max.clone());
                std::thread::spawn(move || {
                    let _g = locks.lock("k");
                    let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(n, Ordering::SeqCst);
                    std::thread::yield_now();
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(max.load(Ordering::SeqCst), 1);
        assert!(locks.busy.lock().is_empty());
    }
}
