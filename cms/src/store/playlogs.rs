//! Play logs reported by nodes (filled by the fleet link; served by the API).

use rusqlite::{Connection, params};

use crate::error::Result;
use crate::model::{PlayLog, ms_to_time};

pub fn list(
    conn: &Connection,
    commune_id: i64,
    node: Option<i64>,
    from: i64,
    to: i64,
) -> Result<Vec<PlayLog>> {
    let mut st = conn.prepare_cached(
        "SELECT p.id, p.node_id, p.content_id, p.schedule_id, p.scheduled_at, p.started_at, p.ended_at, p.outcome, p.reason,
                p.rejected
         FROM playlogs p JOIN nodes n ON n.id = p.node_id
         WHERE n.commune_id = ?1 AND (?2 IS NULL OR p.node_id = ?2)
           AND COALESCE(p.scheduled_at, p.started_at) >= ?3 AND COALESCE(p.scheduled_at, p.started_at) < ?4
         ORDER BY COALESCE(p.scheduled_at, p.started_at) LIMIT 10000",
    )?;
    let rows = st.query_map(params![commune_id, node, from, to], |r| {
        let t = |v: Option<i64>| v.map(ms_to_time);
        Ok(PlayLog {
            id: r.get(0)?,
            node_id: r.get(1)?,
            content_id: r.get(2)?,
            schedule_id: r.get(3)?,
            scheduled_at: t(r.get(4)?),
            started_at: t(r.get(5)?),
            ended_at: t(r.get(6)?),
            outcome: r.get(7)?,
            reason: r.get(8)?,
            rejected: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
