//! The audit log: who changed what, when, with the record before and after.

use rusqlite::{Connection, params};

use super::now_ms;
use crate::error::Result;
use crate::model::{AuditEntry, ms_to_time};

pub struct AuditRecord<'a> {
    pub user_id: Option<i64>,
    pub username: Option<&'a str>,
    pub commune_id: Option<i64>,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: Option<i64>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Written in the same transaction as the change it describes.
pub fn record(conn: &Connection, r: &AuditRecord) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_log (at, user_id, username, commune_id, action, entity, entity_id, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            now_ms(),
            r.user_id,
            r.username,
            r.commune_id,
            r.action,
            r.entity,
            r.entity_id,
            r.before.as_ref().map(|v| v.to_string()),
            r.after.as_ref().map(|v| v.to_string()),
        ],
    )?;
    Ok(())
}

pub fn entries(conn: &Connection, commune_id: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
    let mut st = conn.prepare_cached(
        "SELECT id, at, user_id, username, commune_id, action, entity, entity_id, before, after
         FROM audit_log WHERE ?1 IS NULL OR commune_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(params![commune_id, limit], |r| {
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Ok(AuditEntry {
            id: r.get(0)?,
            at: ms_to_time(r.get(1)?),
            user_id: r.get(2)?,
            username: r.get(3)?,
            commune_id: r.get(4)?,
            action: r.get(5)?,
            entity: r.get(6)?,
            entity_id: r.get(7)?,
            before: json(r.get(8)?),
            after: json(r.get(9)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
