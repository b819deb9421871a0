//! SQLite storage: one database file in the data directory, WAL, foreign keys on,
//! versioned migrations at start-up (rusqlite_migration, `user_version`).
//!
//! A small fixed pool of connections; every query runs on tokio's blocking pool through
//! [`Store::call`], so database work never blocks the async executor. SQLite errors become
//! [`CmsError`]s here, at the storage boundary.
//!
//! Query functions are grouped by table family; each takes a `&Connection` so the service
//! layer composes them inside one transaction (a `Transaction` derefs to one).

mod audit;
pub mod content;
pub mod emergencies;
pub mod history;
mod migrations;
pub mod node_link;
pub mod places;
pub mod playlogs;
pub mod reports;
pub mod schedules;
pub mod users;

pub use audit::AuditRecord;
pub use content::{BlobReader, ContentFilter, NewContent, Readable};
pub use places::NodeUpdate;
pub use schedules::ScheduleRow;
pub use users::{NewUser, TokenKind};

pub use audit::{entries as audit_entries, record as audit};

/// The commune requests default to: the configured one when the database has it; else,
/// in a database that already has communes, the first of them (the slug only names the
/// commune a *new* data directory starts with, docs/INTERFACES.md); else a new one.
pub fn ensure_commune_for_config(
    conn: &mut rusqlite::Connection,
    slug: &str,
    name: &str,
) -> Result<i64> {
    let existing = users::communes(conn)?;
    if let Some(c) = existing
        .iter()
        .find(|c| c.slug == slug)
        .or(existing.first())
    {
        return Ok(c.id);
    }
    Ok(users::ensure_commune(conn, slug, name)?.id)
}

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{CmsError, Result};

/// Readers run side by side in WAL mode; SQLite serialises the writers (busy timeout).
const POOL_SIZE: usize = 4;
/// Connections the fleet's traffic may hold at once: one is always left for people.
const FLEET_CONNS: usize = POOL_SIZE - 1;

tokio::task_local! {
    /// Set while a node's traffic runs (its link session, its blob fetches).
    static FLEET: ();
}

/// Runs `f` as fleet traffic: its database calls queue in the fleet's lane, which never
/// takes the last connection. When 1,000 nodes fetch a new item and report at once (a few
/// thousand calls in a second), a person's request waits for one connection, not behind
/// the lot.
pub async fn as_fleet<F: std::future::Future>(f: F) -> F::Output {
    FLEET.scope((), f).await
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Pool>,
}

struct Pool {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
    /// Calls running, first come first served (at most one per connection)...
    running: tokio::sync::Semaphore,
    /// ...and of those, the fleet's.
    fleet: tokio::sync::Semaphore,
}

impl Store {
    /// Opens (creating if needed) `path`, applies pending migrations.
    pub fn open(path: &Path) -> Result<Store> {
        let mut first = open_conn(path)?;
        migrations::apply(&mut first)?;
        let mut conns = vec![Mutex::new(first)];
        for _ in 1..POOL_SIZE {
            conns.push(Mutex::new(open_conn(path)?));
        }
        Ok(Store {
            inner: Arc::new(Pool {
                conns,
                next: AtomicUsize::new(0),
                running: tokio::sync::Semaphore::new(POOL_SIZE),
                fleet: tokio::sync::Semaphore::new(FLEET_CONNS),
            }),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        let n = self.inner.conns.len();
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(guard) = self.inner.conns[(start + i) % n].try_lock() {
                return guard;
            }
        }
        // All busy: wait for "ours". A panic while holding a connection leaves it usable
        // (SQLite rolls back an open transaction when the statement is dropped).
        self.inner.conns[start % n]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` with a connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let closed = || CmsError::Storage("database closed".into());
        let _fleet = match FLEET.try_with(|_| ()) {
            Ok(()) => Some(self.inner.fleet.acquire().await.map_err(|_| closed())?),
            Err(_) => None,
        };
        let _running = self.inner.running.acquire().await.map_err(|_| closed())?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&mut store.conn()))
            .await
            .map_err(|e| CmsError::Storage(format!("database task failed: {e}")))?
    }

    /// The same, from synchronous code (CLI commands, tests).
    pub fn call_sync<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut self.conn())
    }
}

fn open_conn(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path)
        .map_err(|e| CmsError::Storage(format!("cannot open database {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // Every transaction here writes. Taken IMMEDIATE, it waits (busy timeout) for the write
    // lock up front; a DEFERRED one that read first and then writes cannot wait — SQLite
    // answers "database is locked" at once when another connection wrote in between
    // (found by schemathesis with two workers).
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
