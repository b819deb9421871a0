//! Schedules: rule and program as JSON columns, targets and content as link tables.

use std::collections::HashMap;

use protocol::schedule::{Priority, Rule};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_ms;
use crate::error::{CmsError, Result};
use crate::model::{Schedule, StoredProgram, Targets, ms_to_time};

/// A schedule as written by the service layer.
pub struct ScheduleRow<'a> {
    pub commune_id: i64,
    pub title: &'a str,
    pub priority: Priority,
    pub volume: u8,
    pub rule: &'a Rule,
    pub program: &'a StoredProgram,
    pub targets: &'a Targets,
    pub max_delay_ms: Option<u64>,
    pub created_by: Option<i64>,
}

const COLS: &str = "id, commune_id, title, priority, volume, rule, program, max_delay_ms, enabled, created_by, created_at, updated_at, stopped_at";

fn row(r: &Row) -> rusqlite::Result<Schedule> {
    let priority: String = r.get(3)?;
    let rule: String = r.get(5)?;
    let program: String = r.get(6)?;
    let bad = |e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    };
    Ok(Schedule {
        id: r.get(0)?,
        commune_id: r.get(1)?,
        title: r.get(2)?,
        priority: Priority::parse(&priority).unwrap_or(Priority::Normal),
        volume: r.get(4)?,
        rule: serde_json::from_str(&rule).map_err(bad)?,
        program: serde_json::from_str(&program).map_err(bad)?,
        targets: Targets::default(),
        max_delay_ms: r.get(7)?,
        enabled: r.get(8)?,
        created_by: r.get(9)?,
        created_at: ms_to_time(r.get(10)?),
        updated_at: ms_to_time(r.get(11)?),
        stopped_at: r.get::<_, Option<i64>>(12)?.map(ms_to_time),
    })
}

/// Inserts a schedule with its links; the caller holds the transaction.
pub fn insert(tx: &Connection, s: &ScheduleRow) -> Result<i64> {
    let now = now_ms();
    tx.execute(
        "INSERT INTO schedules (commune_id, title, priority, volume, rule, program, max_delay_ms, created_by, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        params![
            s.commune_id,
            s.title,
            s.priority.as_str(),
            s.volume,
            json(s.rule)?,
            json(s.program)?,
            s.max_delay_ms,
            s.created_by,
            now
        ],
    )?;
    let id = tx.last_insert_rowid();
    write_links(tx, id, s)?;
    Ok(id)
}

pub fn update(tx: &Connection, id: i64, s: &ScheduleRow) -> Result<()> {
    let n = tx.execute(
        "UPDATE schedules SET title = ?2, priority = ?3, volume = ?4, rule = ?5, program = ?6, max_delay_ms = ?7, updated_at = ?8
         WHERE id = ?1",
        params![id, s.title, s.priority.as_str(), s.volume, json(s.rule)?, json(s.program)?, s.max_delay_ms, now_ms()],
    )?;
    if n == 0 {
        return Err(not_found());
    }
    tx.execute("DELETE FROM schedule_targets WHERE schedule_id = ?1", [id])?;
    tx.execute("DELETE FROM schedule_content WHERE schedule_id = ?1", [id])?;
    write_links(tx, id, s)?;
    Ok(())
}

/// Stops the schedule at `at_ms` (its play on air ends there; nothing starts after).
pub fn stop(conn: &Connection, id: i64, at_ms: i64) -> Result<()> {
    let n = conn.execute(
        "UPDATE schedules SET stopped_at = ?2, updated_at = ?2 WHERE id = ?1 AND stopped_at IS NULL",
        params![id, at_ms],
    )?;
    if n == 0 {
        return Err(not_found());
    }
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> Result<()> {
    if conn.execute("DELETE FROM schedules WHERE id = ?1", [id])? == 0 {
        return Err(not_found());
    }
    Ok(())
}

fn not_found() -> CmsError {
    CmsError::not_found("Không tìm thấy lịch phát", "Schedule")
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| CmsError::Storage(e.to_string()))
}

fn write_links(conn: &Connection, id: i64, s: &ScheduleRow) -> Result<()> {
    let mut target = conn.prepare_cached(
        "INSERT OR IGNORE INTO schedule_targets (schedule_id, kind, target_id) VALUES (?1, ?2, ?3)",
    )?;
    for (kind, ids) in [
        ("village", &s.targets.villages),
        ("group", &s.targets.groups),
        ("node", &s.targets.nodes),
    ] {
        for t in ids {
            target.execute(params![id, kind, t])?;
        }
    }
    let mut content = conn.prepare_cached(
        "INSERT OR IGNORE INTO schedule_content (schedule_id, content_id) VALUES (?1, ?2)",
    )?;
    for c in s
        .program
        .content_ids
        .iter()
        .chain(s.program.chime_id.iter())
    {
        content.execute(params![id, c])?;
    }
    Ok(())
}

pub fn get(conn: &Connection, id: i64) -> Result<Schedule> {
    let mut s = conn
        .prepare_cached(&format!("SELECT {COLS} FROM schedules WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?
        .ok_or_else(not_found)?;
    let mut targets = load_targets(conn, &[id])?;
    s.targets = targets.remove(&id).unwrap_or_default();
    Ok(s)
}

pub fn list(conn: &Connection, commune_id: i64) -> Result<Vec<Schedule>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLS} FROM schedules WHERE commune_id = ?1 ORDER BY id DESC"
    ))?;
    let rows: Vec<Schedule> = st
        .query_map([commune_id], row)?
        .collect::<rusqlite::Result<_>>()?;
    with_targets(conn, rows)
}

/// Enabled schedules aimed at any of these targets (a node, its village, its groups).
pub fn targeting(
    conn: &Connection,
    villages: &[i64],
    groups: &[i64],
    nodes: &[i64],
) -> Result<Vec<Schedule>> {
    let list = |v: &[i64]| v.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!(
        "SELECT {COLS} FROM schedules WHERE enabled = 1 AND id IN (
           SELECT schedule_id FROM schedule_targets WHERE
             (kind = 'village' AND target_id IN ({v})) OR (kind = 'group' AND target_id IN ({g}))
             OR (kind = 'node' AND target_id IN ({n})))
         ORDER BY id",
        v = list(villages),
        g = list(groups),
        n = list(nodes)
    );
    let mut st = conn.prepare(&sql)?;
    let rows: Vec<Schedule> = st.query_map([], row)?.collect::<rusqlite::Result<_>>()?;
    with_targets(conn, rows)
}

fn with_targets(conn: &Connection, mut rows: Vec<Schedule>) -> Result<Vec<Schedule>> {
    let ids: Vec<i64> = rows.iter().map(|s| s.id).collect();
    let mut targets = load_targets(conn, &ids)?;
    for s in &mut rows {
        s.targets = targets.remove(&s.id).unwrap_or_default();
    }
    Ok(rows)
}

fn load_targets(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, Targets>> {
    let mut out: HashMap<i64, Targets> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let mut st = conn.prepare(&format!(
        "SELECT schedule_id, kind, target_id FROM schedule_targets WHERE schedule_id IN ({list})"
    ))?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let t = out.entry(r.get(0)?).or_default();
        let kind: String = r.get(1)?;
        let id: i64 = r.get(2)?;
        match kind.as_str() {
            "village" => t.villages.push(id),
            "group" => t.groups.push(id),
            _ => t.nodes.push(id),
        }
    }
    Ok(out)
}
