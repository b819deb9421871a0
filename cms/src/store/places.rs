//! Villages (thôn / tổ dân phố), named groups of villages, and speaker nodes.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_ms;
use crate::error::{CmsError, Result};
use crate::model::{Node, Village, VillageGroup, ms_to_time};

fn village_row(r: &Row) -> rusqlite::Result<Village> {
    Ok(Village {
        id: r.get(0)?,
        commune_id: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
    })
}

pub fn insert_village(conn: &Connection, commune_id: i64, name: &str, kind: &str) -> Result<i64> {
    conn.execute(
        "INSERT INTO villages (commune_id, name, kind, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![commune_id, name, kind, now_ms()],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn update_village(conn: &Connection, id: i64, name: &str, kind: &str) -> Result<()> {
    conn.execute(
        "UPDATE villages SET name = ?2, kind = ?3 WHERE id = ?1",
        params![id, name, kind],
    )?;
    Ok(())
}

pub fn villages(conn: &Connection, commune_id: i64) -> Result<Vec<Village>> {
    let mut st = conn.prepare_cached(
        "SELECT id, commune_id, name, kind FROM villages WHERE commune_id = ?1 ORDER BY name",
    )?;
    let rows = st.query_map([commune_id], village_row)?;
    let mut villages: Vec<Village> = rows.collect::<rusqlite::Result<_>>()?;
    villages.sort_by(|a, b| crate::collate::vi_cmp(&a.name, &b.name));
    Ok(villages)
}

pub fn village(conn: &Connection, id: i64) -> Result<Village> {
    conn.prepare_cached("SELECT id, commune_id, name, kind FROM villages WHERE id = ?1")?
        .query_row([id], village_row)
        .optional()?
        .ok_or_else(|| CmsError::not_found("Không tìm thấy thôn", "Village"))
}

pub fn insert_group(
    conn: &mut Connection,
    commune_id: i64,
    name: &str,
    villages: &[i64],
) -> Result<i64> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO village_groups (commune_id, name) VALUES (?1, ?2)",
        params![commune_id, name],
    )?;
    let id = tx.last_insert_rowid();
    for v in villages {
        let owner: Option<i64> = tx
            .query_row("SELECT commune_id FROM villages WHERE id = ?1", [v], |r| {
                r.get(0)
            })
            .optional()?;
        if owner != Some(commune_id) {
            // Another commune's village is as absent as a missing one.
            return Err(CmsError::not_found(
                format!("Không tìm thấy thôn {v} trong xã này"),
                format!("Village {v} in this commune"),
            ));
        }
        tx.execute(
            "INSERT OR IGNORE INTO village_group_members (group_id, village_id) VALUES (?1, ?2)",
            params![id, v],
        )?;
    }
    tx.commit()?;
    Ok(id)
}

pub fn groups(conn: &Connection, commune_id: i64) -> Result<Vec<VillageGroup>> {
    let mut st = conn.prepare_cached(
        "SELECT g.id, g.commune_id, g.name, group_concat(m.village_id)
         FROM village_groups g LEFT JOIN village_group_members m ON m.group_id = g.id
         WHERE g.commune_id = ?1 GROUP BY g.id ORDER BY g.name",
    )?;
    let rows = st.query_map([commune_id], |r| {
        let members: Option<String> = r.get(3)?;
        Ok(VillageGroup {
            id: r.get(0)?,
            commune_id: r.get(1)?,
            name: r.get(2)?,
            village_ids: members
                .unwrap_or_default()
                .split(',')
                .filter_map(|s| s.parse().ok())
                .collect(),
        })
    })?;
    let mut groups: Vec<VillageGroup> = rows.collect::<rusqlite::Result<_>>()?;
    groups.sort_by(|a, b| crate::collate::vi_cmp(&a.name, &b.name));
    Ok(groups)
}

const NODE_COLS: &str = "id, commune_id, village_id, name, lat, lon, notes, token_hash IS NOT NULL, last_seen, applied_version, health";

fn node_row(r: &Row) -> rusqlite::Result<Node> {
    let last_seen: Option<i64> = r.get(8)?;
    Ok(Node {
        id: r.get(0)?,
        commune_id: r.get(1)?,
        village_id: r.get(2)?,
        name: r.get(3)?,
        lat: r.get(4)?,
        lon: r.get(5)?,
        notes: r.get(6)?,
        enrolled: r.get(7)?,
        // Set by the service, which knows the configured threshold.
        online: false,
        last_seen: last_seen.map(ms_to_time),
        applied_version: r.get(9)?,
        desired_version: None,
        lagging: false,
        health: r
            .get::<_, Option<String>>(10)?
            .and_then(|h| serde_json::from_str(&h).ok()),
    })
}

pub struct NodeUpdate {
    pub name: String,
    pub village_id: i64,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub notes: String,
}

pub fn insert_node(
    conn: &Connection,
    commune_id: i64,
    n: &NodeUpdate,
    code_hash: &str,
) -> Result<i64> {
    check_village(conn, commune_id, n.village_id)?;
    conn.execute(
        "INSERT INTO nodes (commune_id, village_id, name, lat, lon, notes, enrollment_code_hash,
                            enrollment_code_expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            commune_id,
            n.village_id,
            n.name,
            n.lat,
            n.lon,
            n.notes,
            code_hash,
            now_ms() + super::node_link::CODE_VALID_MS,
            now_ms()
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn update_node(conn: &Connection, id: i64, n: &NodeUpdate) -> Result<()> {
    let current = node(conn, id)?;
    check_village(conn, current.commune_id, n.village_id)?;
    conn.execute(
        "UPDATE nodes SET village_id = ?2, name = ?3, lat = ?4, lon = ?5, notes = ?6 WHERE id = ?1",
        params![id, n.village_id, n.name, n.lat, n.lon, n.notes],
    )?;
    Ok(())
}

fn check_village(conn: &Connection, commune_id: i64, village_id: i64) -> Result<()> {
    if village(conn, village_id)?.commune_id != commune_id {
        return Err(CmsError::not_found(
            "Không tìm thấy thôn trong xã này",
            "Village in this commune",
        ));
    }
    Ok(())
}

pub fn nodes(conn: &Connection, commune_id: i64) -> Result<Vec<Node>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {NODE_COLS} FROM nodes WHERE commune_id = ?1 ORDER BY name"
    ))?;
    let rows = st.query_map([commune_id], node_row)?;
    let mut nodes: Vec<Node> = rows.collect::<rusqlite::Result<_>>()?;
    nodes.sort_by(|a, b| crate::collate::vi_cmp(&a.name, &b.name));
    Ok(nodes)
}

pub fn node(conn: &Connection, id: i64) -> Result<Node> {
    conn.prepare_cached(&format!("SELECT {NODE_COLS} FROM nodes WHERE id = ?1"))?
        .query_row([id], node_row)
        .optional()?
        .ok_or_else(|| CmsError::not_found("Không tìm thấy cụm loa", "Node"))
}

/// The village of each node of a commune.
pub fn node_villages(conn: &Connection, commune_id: i64) -> Result<HashMap<i64, i64>> {
    let mut st = conn.prepare_cached("SELECT id, village_id FROM nodes WHERE commune_id = ?1")?;
    let rows = st.query_map([commune_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Groups a village belongs to.
pub fn groups_of_village(conn: &Connection, village_id: i64) -> Result<Vec<i64>> {
    let mut st =
        conn.prepare_cached("SELECT group_id FROM village_group_members WHERE village_id = ?1")?;
    let rows = st.query_map([village_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
