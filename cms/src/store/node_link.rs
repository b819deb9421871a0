//! What the fleet link writes about nodes: enrolment, node tokens, liveness and health,
//! the desired-state version each node runs, transitions, and play logs.

use protocol::link::PlayLogEntry;
use rusqlite::{Connection, OptionalExtension, params};

use super::now_ms;
use crate::error::Result;
use crate::model::{NodeEvent, ms_to_time};

/// A node proven by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    pub id: i64,
    pub commune_id: i64,
    pub name: String,
    pub village_id: i64,
    /// Its commune's slug: the commune's segment of its topics on a broker.
    pub commune_slug: String,
}

const IDENTITY: &str = "SELECT n.id, n.commune_id, n.name, n.village_id, c.slug
     FROM nodes n JOIN communes c ON c.id = n.commune_id";

fn identity(r: &rusqlite::Row<'_>) -> rusqlite::Result<NodeIdentity> {
    Ok(NodeIdentity {
        id: r.get(0)?,
        commune_id: r.get(1)?,
        name: r.get(2)?,
        village_id: r.get(3)?,
        commune_slug: r.get(4)?,
    })
}

/// How long a one-time enrolment code can be used.
pub const CODE_VALID_MS: i64 = 7 * 24 * 3_600_000;

/// What became of an enrolment code.
pub enum Enrolment {
    Enrolled(NodeIdentity),
    /// The code was issued but is past its week: ask for a new one.
    Expired,
    /// No node has that code (wrong, or already used).
    Unknown,
}

/// Trades a one-time enrolment code (by hash) for a token (by hash), in one statement:
/// of two requests with the same code, one enrols and the other finds it used.
pub fn enroll(conn: &Connection, code_hash: &str, token_hash: &str) -> Result<Enrolment> {
    let now = now_ms();
    let found = conn
        .prepare_cached(
            "UPDATE nodes SET token_hash = ?2, enrollment_code_hash = NULL,
                    enrollment_code_expires_at = NULL, enrolled_at = ?3
             WHERE enrollment_code_hash = ?1
               AND (enrollment_code_expires_at IS NULL OR enrollment_code_expires_at > ?3)
             RETURNING id",
        )?
        .query_row(params![code_hash, token_hash, now], |r| r.get::<_, i64>(0))
        .optional()?;
    let found = match found {
        Some(id) => Some(
            conn.prepare_cached(&format!("{IDENTITY} WHERE n.id = ?1"))?
                .query_row([id], identity)?,
        ),
        None => None,
    };
    if let Some(n) = found {
        event(conn, n.id, "enrolled", "")?;
        return Ok(Enrolment::Enrolled(n));
    }
    let expired = conn
        .prepare_cached("SELECT 1 FROM nodes WHERE enrollment_code_hash = ?1")?
        .exists([code_hash])?;
    Ok(if expired {
        Enrolment::Expired
    } else {
        Enrolment::Unknown
    })
}

pub fn by_token(conn: &Connection, token_hash: &str) -> Result<Option<NodeIdentity>> {
    Ok(conn
        .prepare_cached(&format!("{IDENTITY} WHERE n.token_hash = ?1"))?
        .query_row([token_hash], identity)
        .optional()?)
}

/// Every enrolled node, by id (a broker's users and ACL are made from them).
pub fn enrolled(conn: &Connection) -> Result<Vec<NodeIdentity>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{IDENTITY} WHERE n.token_hash IS NOT NULL ORDER BY n.id"
    ))?;
    let rows = stmt.query_map([], identity)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Ends a node's enrolment: its token stops working. With `code_hash`, a new one-time
/// code replaces any earlier one.
pub fn revoke(conn: &Connection, id: i64, code_hash: Option<&str>) -> Result<()> {
    conn.execute(
        "UPDATE nodes SET token_hash = NULL, enrollment_code_hash = ?2,
                enrollment_code_expires_at = CASE WHEN ?2 IS NULL THEN NULL ELSE ?3 END
         WHERE id = ?1",
        params![id, code_hash, now_ms() + CODE_VALID_MS],
    )?;
    event(
        conn,
        id,
        if code_hash.is_some() {
            "new_code"
        } else {
            "revoked"
        },
        "",
    )
}

/// The node was heard from; `health` is its latest heartbeat (JSON).
pub fn seen(conn: &Connection, id: i64, health: Option<&str>) -> Result<()> {
    conn.prepare_cached(
        "UPDATE nodes SET last_seen = ?2, health = COALESCE(?3, health) WHERE id = ?1",
    )?
    .execute(params![id, now_ms(), health])?;
    Ok(())
}

pub fn set_applied(conn: &Connection, id: i64, version: &str) -> Result<()> {
    conn.prepare_cached("UPDATE nodes SET applied_version = ?2 WHERE id = ?1")?
        .execute(params![id, version])?;
    Ok(())
}

pub fn event(conn: &Connection, id: i64, event: &str, detail: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO node_events (node_id, at, event, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![id, now_ms(), event, detail])?;
    Ok(())
}

pub fn events(conn: &Connection, node_id: i64, limit: u32) -> Result<Vec<NodeEvent>> {
    let mut st = conn.prepare_cached(
        "SELECT at, event, detail FROM node_events WHERE node_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![node_id, limit], |r| {
        Ok(NodeEvent {
            at: ms_to_time(r.get(0)?),
            event: r.get(1)?,
            detail: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Stores play log entries from one node; ids already stored are skipped, so a re-sent
/// batch is counted once. Returns every id of the batch (all are now stored).
pub fn insert_playlogs(
    conn: &Connection,
    node_id: i64,
    entries: &[PlayLogEntry],
) -> Result<(Vec<String>, Vec<&'static str>)> {
    let mut st = conn.prepare_cached(
        "INSERT OR IGNORE INTO playlogs
         (id, node_id, content_id, schedule_id, scheduled_at, started_at, ended_at, outcome, reason, received_at, rejected)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let now = now_ms();
    let mut new = Vec::new();
    let ms = |t: &Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.timestamp_millis());
    for e in entries {
        // Ids are the node's own: scoped by node so one node cannot shadow another's.
        let inserted = st.execute(params![
            playlog_id(node_id, &e.id),
            node_id,
            e.content_id,
            e.schedule_id,
            ms(&e.scheduled_at),
            ms(&e.started_at),
            ms(&e.ended_at),
            e.outcome.as_str(),
            e.reason,
            now,
            untrusted(conn, node_id, e)?
        ])?;
        if inserted > 0 {
            new.push(e.outcome.as_str());
        }
    }
    Ok((entries.iter().map(|e| e.id.clone()).collect(), new))
}

/// Why a node's play log is not to be believed, if it is not: it names a schedule, or an
/// item of a schedule, or an item played by command, that the node was never sent.
fn untrusted(conn: &Connection, node_id: i64, e: &PlayLogEntry) -> Result<Option<&'static str>> {
    let sent = |schedule: i64, content: i64| -> Result<bool> {
        Ok(conn
            .prepare_cached(
                "SELECT 1 FROM node_sent WHERE node_id = ?1 AND schedule_id = ?2 AND content_id = ?3",
            )?
            .exists(params![node_id, schedule, content])?)
    };
    Ok(match (e.schedule_id, e.content_id) {
        (Some(s), _) if s <= 0 || !sent(s, 0)? => Some("schedule never sent to this node"),
        (Some(s), Some(c)) if !sent(s, c)? => Some("item not in a schedule sent to this node"),
        (None, Some(c)) if !sent(0, c)? => Some("item never sent to this node by command"),
        _ => None,
    })
}

/// Records what a node was sent: each schedule (item 0) with each of its items.
pub fn record_sent(conn: &Connection, node_id: i64, pairs: &[(i64, i64)]) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT OR IGNORE INTO node_sent (node_id, schedule_id, content_id) VALUES (?1, ?2, ?3)",
    )?;
    for (schedule, content) in pairs {
        st.execute(params![node_id, schedule, content])?;
    }
    Ok(())
}

fn playlog_id(node_id: i64, local: &str) -> String {
    format!("{node_id}-{local}")
}
