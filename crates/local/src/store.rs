//! The runs table in SQLite: one row per run, the whole TrainingRun as JSON, and a
//! resourceVersion counter. Every call is synchronous; [`crate::LocalRuns`] calls them from
//! `spawn_blocking` so the async runtime never waits on the disk.

use std::path::Path;

use kubetrain_api::TrainingRun;
use rusqlite::{Connection, OptionalExtension, params};

/// A failure of the database itself (disk, corruption, a JSON body that does not parse).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A stored run does not parse.
    #[error("stored run is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The open database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

/// Whether an insert found the name taken.
#[derive(Debug)]
pub enum Inserted {
    /// The run as stored, with its uid and resourceVersion.
    Created(Box<TrainingRun>),
    /// A run of that name exists.
    Exists,
}

impl Store {
    /// Open (or create) `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL with synchronous=NORMAL stays consistent on power loss and loses at most the last
        // commits, which is the trade every local state store makes.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS runs (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 namespace TEXT NOT NULL,
                 name TEXT NOT NULL,
                 uid TEXT NOT NULL,
                 resource_version INTEGER NOT NULL,
                 body TEXT NOT NULL,
                 UNIQUE (namespace, name)
             );
             CREATE TABLE IF NOT EXISTS counters (
                 name TEXT PRIMARY KEY,
                 value INTEGER NOT NULL
             );
             INSERT OR IGNORE INTO counters (name, value) VALUES ('resourceVersion', 0);",
        )?;
        Ok(Self { conn })
    }

    fn next_resource_version(tx: &rusqlite::Transaction<'_>) -> Result<i64, StoreError> {
        Ok(tx.query_row(
            "UPDATE counters SET value = value + 1 WHERE name = 'resourceVersion' RETURNING value",
            [],
            |row| row.get(0),
        )?)
    }

    /// Insert a new run, setting its resourceVersion.
    pub fn insert(&mut self, mut run: TrainingRun) -> Result<Inserted, StoreError> {
        let namespace = run.metadata.namespace.clone().unwrap_or_default();
        let name = run.metadata.name.clone().unwrap_or_default();
        let tx = self.conn.transaction()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT seq FROM runs WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
                |row| row.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Ok(Inserted::Exists);
        }
        let version = Self::next_resource_version(&tx)?;
        run.metadata.resource_version = Some(version.to_string());
        tx.execute(
            "INSERT INTO runs (namespace, name, uid, resource_version, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                namespace,
                name,
                run.metadata.uid.clone().unwrap_or_default(),
                version,
                serde_json::to_string(&run)?
            ],
        )?;
        tx.commit()?;
        Ok(Inserted::Created(Box::new(run)))
    }

    /// The run `namespace/name`.
    pub fn get(&self, namespace: &str, name: &str) -> Result<Option<TrainingRun>, StoreError> {
        let body: Option<String> = self
            .conn
            .query_row(
                "SELECT body FROM runs WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
                |row| row.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Every run in `namespace` (every namespace when `None`), in creation order.
    pub fn all(&self, namespace: Option<&str>) -> Result<Vec<TrainingRun>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT body FROM runs WHERE ?1 IS NULL OR namespace = ?1 ORDER BY seq",
        )?;
        let bodies = statement
            .query_map(params![namespace], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(bodies
            .iter()
            .map(|b| serde_json::from_str(b))
            .collect::<Result<_, _>>()?)
    }

    /// Change the run with `change`, which returns whether it changed anything; a change bumps
    /// the resourceVersion. Returns the run after the change and whether it changed, or `None`
    /// when there is no such run.
    pub fn update(
        &mut self,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut TrainingRun) -> bool,
    ) -> Result<Option<(TrainingRun, bool)>, StoreError> {
        let tx = self.conn.transaction()?;
        let body: Option<String> = tx
            .query_row(
                "SELECT body FROM runs WHERE namespace = ?1 AND name = ?2",
                params![namespace, name],
                |row| row.get(0),
            )
            .optional()?;
        let Some(body) = body else {
            return Ok(None);
        };
        let mut run: TrainingRun = serde_json::from_str(&body)?;
        if !change(&mut run) {
            return Ok(Some((run, false)));
        }
        let version = Self::next_resource_version(&tx)?;
        run.metadata.resource_version = Some(version.to_string());
        tx.execute(
            "UPDATE runs SET resource_version = ?3, body = ?4 WHERE namespace = ?1 AND name = ?2",
            params![namespace, name, version, serde_json::to_string(&run)?],
        )?;
        tx.commit()?;
        Ok(Some((run, true)))
    }

    /// Delete the run; returns it as it was.
    pub fn delete(
        &mut self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<TrainingRun>, StoreError> {
        let body: Option<String> = self
            .conn
            .query_row(
                "DELETE FROM runs WHERE namespace = ?1 AND name = ?2 RETURNING body",
                params![namespace, name],
                |row| row.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn run(name: &str) -> TrainingRun {
        TrainingRun::test(name).for_create().in_ns("default")
    }

    #[test]
    fn survives_reopening_and_counts_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let mut store = Store::open(&path).unwrap();
            assert!(matches!(
                store.insert(run("a")).unwrap(),
                Inserted::Created(_)
            ));
            assert!(matches!(store.insert(run("a")).unwrap(), Inserted::Exists));
            assert!(matches!(
                store.insert(run("b")).unwrap(),
                Inserted::Created(_)
            ));
            let (changed, did) = store
                .update("default", "a", |r| {
                    r.spec.cancel = true;
                    true
                })
                .unwrap()
                .unwrap();
            assert!(did);
            assert_eq!(changed.metadata.resource_version.as_deref(), Some("3"));
            assert!(store.update("default", "zzz", |_| true).unwrap().is_none());
        }
        let mut store = Store::open(&path).unwrap();
        let names: Vec<_> = store
            .all(None)
            .unwrap()
            .into_iter()
            .map(|r| r.metadata.name.unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(store.get("default", "a").unwrap().unwrap().spec.cancel);
        assert!(store.delete("default", "a").unwrap().is_some());
        assert!(store.get("default", "a").unwrap().is_none());
        let Inserted::Created(again) = store.insert(run("a")).unwrap() else {
            panic!("name is free again")
        };
        assert_eq!(again.metadata.resource_version.as_deref(), Some("4"));
    }
}
