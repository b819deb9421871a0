//! Emergencies and each targeted node's reach of them.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{CmsError, Result};
use crate::model::{Emergency, EmergencyNode, Targets, ms_to_time};

pub struct NewEmergency<'a> {
    pub commune_id: i64,
    pub schedule_id: i64,
    pub title: &'a str,
    /// `None`: spoken live (the schedule is a live session's).
    pub content_id: Option<i64>,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: Option<i64>,
    pub created_at_ms: i64,
}

pub fn insert(tx: &Connection, e: &NewEmergency, nodes: &[i64]) -> Result<i64> {
    tx.execute(
        "INSERT INTO emergencies (commune_id, schedule_id, title, content_id, starts_at, ends_at, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            e.commune_id,
            e.schedule_id,
            e.title,
            e.content_id,
            e.starts_at_ms,
            e.ends_at_ms,
            e.created_by,
            e.created_at_ms
        ],
    )?;
    let id = tx.last_insert_rowid();
    let mut add = tx.prepare_cached(
        "INSERT INTO emergency_nodes (emergency_id, node_id, updated_at) VALUES (?1, ?2, ?3)",
    )?;
    for n in nodes {
        add.execute(params![id, n, e.created_at_ms])?;
    }
    Ok(id)
}

/// Enrolled nodes of the commune that the targets reach (through a village, a group of
/// villages, or by name), in id order.
pub fn targeted_nodes(conn: &Connection, commune_id: i64, t: &Targets) -> Result<Vec<i64>> {
    let list = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!(
        "SELECT id FROM nodes WHERE commune_id = ?1 AND token_hash IS NOT NULL AND (
           village_id IN ({v})
           OR village_id IN (SELECT village_id FROM village_group_members WHERE group_id IN ({g}))
           OR id IN ({n}))
         ORDER BY id",
        v = list(&t.villages),
        g = list(&t.groups),
        n = list(&t.nodes)
    );
    let mut st = conn.prepare(&sql)?;
    let ids = st
        .query_map([commune_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

const COLS: &str = "e.id, e.commune_id, e.schedule_id, e.title, e.content_id, e.starts_at, e.ends_at, e.created_by, u.username, e.created_at, e.stopped_at, e.stopped_by,
    (SELECT count(*) FROM emergency_nodes n WHERE n.emergency_id = e.id AND n.reached_at IS NOT NULL),
    (SELECT count(*) FROM emergency_nodes n WHERE n.emergency_id = e.id),
    EXISTS (SELECT 1 FROM live_sessions l WHERE l.id = e.schedule_id)";

fn row(r: &Row) -> rusqlite::Result<Emergency> {
    Ok(Emergency {
        id: r.get(0)?,
        commune_id: r.get(1)?,
        schedule_id: r.get(2)?,
        title: r.get(3)?,
        content_id: r.get(4)?,
        starts_at: ms_to_time(r.get(5)?),
        ends_at: ms_to_time(r.get(6)?),
        created_by: r.get(7)?,
        created_by_name: r.get(8)?,
        created_at: ms_to_time(r.get(9)?),
        stopped_at: r.get::<_, Option<i64>>(10)?.map(ms_to_time),
        stopped_by: r.get(11)?,
        active: false,
        reached: r.get(12)?,
        total: r.get(13)?,
        live: r.get(14)?,
        nodes: Vec::new(),
    })
}

fn not_found() -> CmsError {
    CmsError::not_found("Không tìm thấy tin khẩn cấp", "Emergency")
}

/// One emergency with every node's reach (nodes not reached first, then by name).
pub fn get(conn: &Connection, id: i64) -> Result<Emergency> {
    let mut e = conn
        .prepare_cached(&format!(
            "SELECT {COLS} FROM emergencies e LEFT JOIN users u ON u.id = e.created_by WHERE e.id = ?1"
        ))?
        .query_row([id], row)
        .optional()?
        .ok_or_else(not_found)?;
    let mut st = conn.prepare_cached(
        "SELECT n.node_id, d.name, d.village_id, v.name, n.state, n.message, n.reached_at, n.updated_at
         FROM emergency_nodes n JOIN nodes d ON d.id = n.node_id JOIN villages v ON v.id = d.village_id
         WHERE n.emergency_id = ?1 ORDER BY n.reached_at IS NOT NULL, v.name, d.name",
    )?;
    e.nodes = st
        .query_map([id], |r| {
            Ok(EmergencyNode {
                node_id: r.get(0)?,
                name: r.get(1)?,
                village_id: r.get(2)?,
                village: r.get(3)?,
                state: r.get(4)?,
                message: r.get(5)?,
                reached_at: r.get::<_, Option<i64>>(6)?.map(ms_to_time),
                updated_at: ms_to_time(r.get(7)?),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(e)
}

/// The commune's latest emergencies, newest first (without their node lists).
pub fn list(conn: &Connection, commune_id: i64, limit: u32) -> Result<Vec<Emergency>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM emergencies e LEFT JOIN users u ON u.id = e.created_by
         WHERE e.commune_id = ?1 ORDER BY e.id DESC LIMIT ?2"
    ))?;
    let rows = st
        .query_map(params![commune_id, limit], row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

pub fn stop(tx: &Connection, id: i64, at_ms: i64, by: i64) -> Result<()> {
    let n = tx.execute(
        "UPDATE emergencies SET stopped_at = ?2, stopped_by = ?3 WHERE id = ?1 AND stopped_at IS NULL",
        params![id, at_ms, by],
    )?;
    if n == 0 {
        return Err(not_found());
    }
    Ok(())
}

/// A node says where the play of `schedule_id` stands. Counted only for a schedule that
/// carries an emergency of the node's own commune; returns that emergency's id. A node of
/// the commune the list did not have (moved into a chosen village since) joins it.
pub fn report(
    conn: &Connection,
    node_id: i64,
    schedule_id: i64,
    state: &str,
    message: &str,
    at_ms: i64,
) -> Result<Option<i64>> {
    let emergency: Option<i64> = conn
        .prepare_cached(
            "SELECT e.id FROM emergencies e JOIN nodes d ON d.commune_id = e.commune_id
             WHERE e.schedule_id = ?1 AND d.id = ?2",
        )?
        .query_row(params![schedule_id, node_id], |r| r.get(0))
        .optional()?;
    let Some(id) = emergency else {
        return Ok(None);
    };
    conn.prepare_cached(
        "INSERT INTO emergency_nodes (emergency_id, node_id, state, message, reached_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, CASE WHEN ?3 = 'playing' THEN ?5 END, ?5)
         ON CONFLICT (emergency_id, node_id) DO UPDATE SET state = ?3, message = ?4,
           reached_at = coalesce(reached_at, CASE WHEN ?3 = 'playing' THEN ?5 END), updated_at = ?5",
    )?
    .execute(params![id, node_id, state, message, at_ms])?;
    Ok(Some(id))
}

/// The emergency a schedule carries, if any.
pub fn of_schedule(conn: &Connection, schedule_id: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM emergencies WHERE schedule_id = ?1")?
        .query_row([schedule_id], |r| r.get(0))
        .optional()?)
}
