//! The embedded SQLite back end.

use std::path::Path;

use chrono::{DateTime, Utc};
use corral_core::{ContainerId, ContainerRecord, Event, ImageRecord, VolumeRecord};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{sql, Error, Result};
use crate::StateStore;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers (
    id     TEXT PRIMARY KEY,
    name   TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id     TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volumes (
    name   TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY,
    time_nano INTEGER NOT NULL,
    event     TEXT NOT NULL
);
";

/// A [`StateStore`] in one SQLite file (WAL mode, `synchronous=NORMAL`).
///
/// Durability: a committed transaction is in the write-ahead log (the kernel's page cache)
/// before the call returns, so it survives the daemon crashing or being killed at any
/// point. Commits do not wait for an fsync: the log is synced at checkpoints, so a power
/// cut or kernel crash can lose the commits made since the last checkpoint (the database
/// stays consistent: it rolls back to that point). After such a loss, a container created
/// or removed just before the cut can be missing or listed again. `synchronous=FULL` cost
/// one fsync per container state change, four per `docker run --rm`; the lead chose
/// NORMAL (docs/architecture.md, "State store").
///
/// Events go through a second connection: they are a bounded, best-effort history, so
/// their commits never hold the records' connection.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    events_conn: Option<Mutex<Connection>>,
}

// === impl SqliteStore ===

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(sql("open"))?;
        let mut store = Self::init(conn)?;
        let events = Connection::open(path).map_err(sql("open"))?;
        events
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql("set synchronous"))?;
        events
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql("set busy timeout"))?;
        store.events_conn = Some(Mutex::new(events));
        Ok(store)
    }

    /// The connection events are read and written through.
    fn events_conn(&self) -> &Mutex<Connection> {
        self.events_conn.as_ref().unwrap_or(&self.conn)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(sql("open"))?)
    }

    fn init(conn: Connection) -> Result<Self> {
        // WAL + NORMAL sync: a committed transaction survives a daemon crash; only a power
        // cut can lose the last ones (see the type's documentation).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("set journal mode"))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql("set synchronous"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql("set busy timeout"))?;
        conn.execute_batch(SCHEMA).map_err(sql("create schema"))?;
        Ok(Self {
            conn: Mutex::new(conn),
            events_conn: None,
        })
    }
}

fn to_json<T: serde::Serialize>(what: &str, v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|source| Error::Corrupt {
        what: what.to_owned(),
        source,
    })
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|source| Error::Corrupt {
        what: what.to_owned(),
        source,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

impl StateStore for SqliteStore {
    fn containers(&self) -> Result<Vec<ContainerRecord>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached("SELECT id, record FROM containers")
            .map_err(sql("list containers"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(sql("list containers"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, rec) = row.map_err(sql("list containers"))?;
            out.push(from_json(&format!("container {id}"), &rec)?);
        }
        Ok(out)
    }

    fn insert_container(&self, record: &ContainerRecord) -> Result<()> {
        let json = to_json("container", record)?;
        let conn = self.conn.lock();
        conn.execute(
            "INSERT INTO containers (id, name, record) VALUES (?1, ?2, ?3)",
            params![record.id.as_str(), record.name.as_str(), json],
        )
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict(format!("container name \"/{}\"", record.name))
            } else {
                sql("insert container")(e)
            }
        })?;
        Ok(())
    }

    fn update_container(&self, record: &ContainerRecord) -> Result<()> {
        let json = to_json("container", record)?;
        let conn = self.conn.lock();
        let n = conn
            .execute(
                "UPDATE containers SET name = ?2, record = ?3 WHERE id = ?1",
                params![record.id.as_str(), record.name.as_str(), json],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::Conflict(format!("container name \"/{}\"", record.name))
                } else {
                    sql("update container")(e)
                }
            })?;
        if n == 0 {
            return Err(Error::NotFound(record.id.to_string()));
        }
        Ok(())
    }

    fn delete_container(&self, id: &ContainerId) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute("DELETE FROM containers WHERE id = ?1", params![id.as_str()])
            .map_err(sql("delete container"))?;
        Ok(())
    }

    fn images(&self) -> Result<Vec<ImageRecord>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached("SELECT id, record FROM images")
            .map_err(sql("list images"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(sql("list images"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, rec) = row.map_err(sql("list images"))?;
            out.push(from_json(&format!("image {id}"), &rec)?);
        }
        Ok(out)
    }

    fn put_image(&self, record: &ImageRecord) -> Result<Vec<ImageRecord>> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin"))?;
        let mut changed = Vec::new();
        {
            let mut stmt = tx
                .prepare("SELECT id, record FROM images WHERE id != ?1")
                .map_err(sql("list images"))?;
            let rows = stmt
                .query_map(params![record.id], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(sql("list images"))?;
            for row in rows {
                let (id, rec) = row.map_err(sql("list images"))?;
                let mut other: ImageRecord = from_json(&format!("image {id}"), &rec)?;
                let before = other.repo_tags.len();
                other.repo_tags.retain(|t| !record.repo_tags.contains(t));
                if other.repo_tags.len() != before {
                    changed.push(other);
                }
            }
        }
        for other in &changed {
            tx.execute(
                "UPDATE images SET record = ?2 WHERE id = ?1",
                params![other.id, to_json("image", other)?],
            )
            .map_err(sql("update image"))?;
        }
        tx.execute(
            "INSERT INTO images (id, record) VALUES (?1, ?2)
             ON CONFLICT(id) DO UPDATE SET record = excluded.record",
            params![record.id, to_json("image", record)?],
        )
        .map_err(sql("put image"))?;
        tx.commit().map_err(sql("commit"))?;
        Ok(changed)
    }

    fn delete_image(&self, id: &str) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute("DELETE FROM images WHERE id = ?1", params![id])
            .map_err(sql("delete image"))?;
        Ok(())
    }

    fn put_meta(&self, key: &str, value: &str) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )
        .map_err(sql("put meta"))?;
        Ok(())
    }

    fn append_events(&self, events: &[(u64, Event)], keep: usize) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut conn = self.events_conn().lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin"))?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO events (seq, time_nano, event) VALUES (?1, ?2, ?3)",
                )
                .map_err(sql("insert event"))?;
            for (seq, ev) in events {
                let nanos = ev.time.timestamp_nanos_opt().unwrap_or(i64::MAX);
                let seq = i64::try_from(*seq).unwrap_or(i64::MAX);
                stmt.execute(params![seq, nanos, to_json("event", ev)?])
                    .map_err(sql("insert event"))?;
            }
        }
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?1",
            params![keep],
        )
        .map_err(sql("trim events"))?;
        tx.commit().map_err(sql("commit"))
    }

    fn events(
        &self,
        since: Option<DateTime<Utc>>,
        before_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Event)>> {
        let since = since.map_or(i64::MIN, |t| t.timestamp_nanos_opt().unwrap_or(i64::MIN));
        let before = i64::try_from(before_seq).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.events_conn().lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, event FROM events WHERE seq < ?1 AND time_nano >= ?2 \
                 ORDER BY seq DESC LIMIT ?3",
            )
            .map_err(sql("list events"))?;
        let rows = stmt
            .query_map(params![before, since, limit], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(sql("list events"))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, text) = row.map_err(sql("list events"))?;
            out.push((u64::try_from(seq).unwrap_or(0), from_json("event", &text)?));
        }
        out.reverse();
        Ok(out)
    }

    fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let conn = self.conn.lock();
        conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql("get meta"))
    }

    fn volumes(&self) -> Result<Vec<VolumeRecord>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached("SELECT name, record FROM volumes")
            .map_err(sql("list volumes"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(sql("list volumes"))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, rec) = row.map_err(sql("list volumes"))?;
            out.push(from_json(&format!("volume {name}"), &rec)?);
        }
        Ok(out)
    }

    fn insert_volume(&self, record: &VolumeRecord) -> Result<()> {
        let json = to_json("volume", record)?;
        let conn = self.conn.lock();
        conn.execute(
            "INSERT INTO volumes (name, record) VALUES (?1, ?2)",
            params![record.name, json],
        )
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict(format!("volume {}", record.name))
            } else {
                sql("insert volume")(e)
            }
        })?;
        Ok(())
    }

    fn delete_volume(&self, name: &str) -> Result<()> {
        let conn = self.conn.lock();
        conn.execute("DELETE FROM volumes WHERE name = ?1", params![name])
            .map_err(sql("delete volume"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use corral_core::{ContainerName, ContainerSpec, ContainerState};

    fn container(name: &str) -> ContainerRecord {
        ContainerRecord {
            id: ContainerId::random(),
            name: ContainerName::parse(name).unwrap(),
            created: Utc::now(),
            spec: ContainerSpec {
                image: "busybox".into(),
                ..Default::default()
            },
            image_id: "sha256:00".into(),
            path: "sh".into(),
            args: vec![],
            env: vec![],
            runtime: "runc".into(),
            state: ContainerState::default(),
            volume_mounts: vec![],
        }
    }

    fn image(id: &str, tags: &[&str]) -> ImageRecord {
        ImageRecord {
            id: id.into(),
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![],
            created: Utc::now(),
            size: 1,
            config: serde_json::json!({}),
            layers: vec![],
        }
    }

    #[test]
    fn container_roundtrip_and_name_conflict() {
        let s = SqliteStore::in_memory().unwrap();
        let a = container("web");
        s.insert_container(&a).unwrap();
        let err = s.insert_container(&container("web")).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
        assert_eq!(s.containers().unwrap(), vec![a.clone()]);
        let mut b = a.clone();
        b.state.exit_code = 3;
        s.update_container(&b).unwrap();
        assert_eq!(s.containers().unwrap()[0].state.exit_code, 3);
        s.delete_container(&a.id).unwrap();
        assert!(s.containers().unwrap().is_empty());
    }

    #[test]
    fn rename_onto_taken_name_is_a_conflict_and_keeps_both() {
        let s = SqliteStore::in_memory().unwrap();
        let a = container("one");
        let b = container("two");
        s.insert_container(&a).unwrap();
        s.insert_container(&b).unwrap();
        let mut a2 = a.clone();
        a2.name = ContainerName::parse("two").unwrap();
        assert!(matches!(s.update_container(&a2), Err(Error::Conflict(_))));
        let names: Vec<_> = s
            .containers()
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn put_image_moves_tags_atomically() {
        let s = SqliteStore::in_memory().unwrap();
        s.put_image(&image("sha256:a", &["x:1", "x:latest"]))
            .unwrap();
        let changed = s.put_image(&image("sha256:b", &["x:latest"])).unwrap();
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].repo_tags, vec!["x:1".to_string()]);
        let mut all = s.images().unwrap();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(all[0].repo_tags, vec!["x:1".to_string()]);
        assert_eq!(all[1].repo_tags, vec!["x:latest".to_string()]);
    }

    #[test]
    fn volume_roundtrip_conflict_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let mut v = VolumeRecord {
            name: "data".into(),
            driver: "local".into(),
            created: Utc::now(),
            labels: [("a".to_owned(), "b".to_owned())].into(),
            options: Default::default(),
        };
        {
            let s = SqliteStore::open(&path).unwrap();
            s.insert_volume(&v).unwrap();
            let err = s.insert_volume(&v).unwrap_err();
            assert!(matches!(err, Error::Conflict(_)), "{err}");
            v.name = "other".into();
            s.insert_volume(&v).unwrap();
            s.delete_volume("other").unwrap();
            s.delete_volume("missing").unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let all = s.volumes().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].name, "data");
        assert_eq!(all[0].labels.get("a").map(String::as_str), Some("b"));
    }

    fn event(action: &str, secs: i64) -> Event {
        Event {
            kind: "container".into(),
            action: action.into(),
            actor_id: "abc".into(),
            attributes: [("name".to_owned(), "x".to_owned())].into(),
            time: DateTime::from_timestamp(secs, 5).unwrap(),
        }
    }

    #[test]
    fn events_are_bounded_ordered_and_filtered_by_time_and_seq() {
        let s = SqliteStore::in_memory().unwrap();
        let batch: Vec<(u64, Event)> = (1..=10)
            .map(|i| (i, event(&format!("a{i}"), i as i64 * 10)))
            .collect();
        s.append_events(&batch[..4], 6).unwrap();
        s.append_events(&batch[4..], 6).unwrap();
        let all = s.events(None, u64::MAX, 100).unwrap();
        let seqs: Vec<u64> = all.iter().map(|(q, _)| *q).collect();
        assert_eq!(seqs, vec![5, 6, 7, 8, 9, 10]);
        assert_eq!(all[0].1, batch[4].1);
        let since = DateTime::from_timestamp(70, 0);
        let some = s.events(since, 9, 100).unwrap();
        let seqs: Vec<u64> = some.iter().map(|(q, _)| *q).collect();
        assert_eq!(seqs, vec![7, 8]);
        let newest = s.events(None, u64::MAX, 2).unwrap();
        let seqs: Vec<u64> = newest.iter().map(|(q, _)| *q).collect();
        assert_eq!(seqs, vec![9, 10]);
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = container("persist");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.insert_container(&a).unwrap();
            s.put_meta("k", "v").unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.containers().unwrap(), vec![a]);
        assert_eq!(s.get_meta("k").unwrap().as_deref(), Some("v"));
    }
}
