//! Broadcast counts from trusted play logs (a log naming anything its node was not sent is
//! left out): per village and category, per content item, and one item's plays.

use rusqlite::{Connection, params};

use crate::error::Result;
use crate::model::ms_to_time;

/// One group of plays: counts by outcome and air time.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Counts {
    /// Plays the nodes were due by a schedule (each logs an outcome, even offline).
    pub scheduled: u64,
    /// Played to the end (scheduled or by command).
    pub played: u64,
    pub failed: u64,
    pub interrupted: u64,
    pub skipped: u64,
    /// Seconds on air (played and interrupted plays).
    pub air_time_s: u64,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.scheduled += o.scheduled;
        self.played += o.played;
        self.failed += o.failed;
        self.interrupted += o.interrupted;
        self.skipped += o.skipped;
        self.air_time_s += o.air_time_s;
    }
}

/// A play's category for reports: emergencies and live speech by what they were, others
/// by their item's category (a test tone has none).
const CATEGORY: &str = "CASE WHEN s.priority = 'emergency' THEN 'emergency'
        WHEN p.schedule_id IS NOT NULL AND p.content_id IS NULL THEN 'live'
        WHEN c.category IS NOT NULL THEN c.category ELSE 'test' END";
const FROM: &str = "playlogs p JOIN nodes n ON n.id = p.node_id
        LEFT JOIN content c ON c.id = p.content_id LEFT JOIN schedules s ON s.id = p.schedule_id";
const WHEN: &str = "COALESCE(p.scheduled_at, p.started_at)";
const COUNTS: &str = "SUM(p.schedule_id IS NOT NULL), SUM(p.outcome = 'completed'),
        SUM(p.outcome = 'failed'), SUM(p.outcome = 'interrupted'), SUM(p.outcome = 'skipped'),
        COALESCE(SUM(CASE WHEN p.outcome IN ('completed','interrupted') AND p.ended_at > p.started_at
            THEN p.ended_at - p.started_at END), 0) / 1000";

fn counts(r: &rusqlite::Row, at: usize) -> rusqlite::Result<Counts> {
    let n = |i: usize| -> rusqlite::Result<u64> {
        Ok(r.get::<_, Option<i64>>(at + i)?.unwrap_or(0).max(0) as u64)
    };
    Ok(Counts {
        scheduled: n(0)?,
        played: n(1)?,
        failed: n(2)?,
        interrupted: n(3)?,
        skipped: n(4)?,
        air_time_s: n(5)?,
    })
}

/// Counts per (village, category) over `[from, to)` (ms).
pub fn by_village(
    conn: &Connection,
    commune_id: i64,
    village: Option<i64>,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, String, Counts)>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT n.village_id, {CATEGORY}, {COUNTS} FROM {FROM}
         WHERE n.commune_id = ?1 AND (?2 IS NULL OR n.village_id = ?2) AND p.rejected IS NULL
           AND {WHEN} >= ?3 AND {WHEN} < ?4
         GROUP BY 1, 2"
    ))?;
    let rows = st.query_map(params![commune_id, village, from, to], |r| {
        Ok((r.get(0)?, r.get(1)?, counts(r, 2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One content item's part of the period: where it played, how often.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ItemRow {
    pub content_id: i64,
    pub title: String,
    pub category: String,
    /// Villages it went out in (played or interrupted there).
    pub villages: u64,
    #[serde(flatten)]
    pub counts: Counts,
    pub first_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn by_item(
    conn: &Connection,
    commune_id: i64,
    village: Option<i64>,
    from: i64,
    to: i64,
) -> Result<Vec<ItemRow>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT c.id, c.title, c.category,
                COUNT(DISTINCT CASE WHEN p.outcome IN ('completed','interrupted') THEN n.village_id END), {COUNTS},
                MIN(p.started_at), MAX(p.started_at)
         FROM {FROM}
         WHERE n.commune_id = ?1 AND (?2 IS NULL OR n.village_id = ?2) AND p.rejected IS NULL
           AND {WHEN} >= ?3 AND {WHEN} < ?4 AND c.id IS NOT NULL
         GROUP BY c.id ORDER BY SUM(p.outcome = 'completed') DESC, c.title"
    ))?;
    let rows = st.query_map(params![commune_id, village, from, to], |r| {
        let t = |v: Option<i64>| v.map(ms_to_time);
        Ok(ItemRow {
            content_id: r.get(0)?,
            title: r.get(1)?,
            category: r.get(2)?,
            villages: r.get::<_, i64>(3)?.max(0) as u64,
            counts: counts(r, 4)?,
            first_at: t(r.get(10)?),
            last_at: t(r.get(11)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One play of an item: the proof that it went out, where and when.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ItemPlay {
    pub node_id: i64,
    pub node: String,
    pub village_id: i64,
    pub scheduled_at: Option<chrono::DateTime<chrono::Utc>>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    pub outcome: String,
}

pub fn item_plays(
    conn: &Connection,
    commune_id: i64,
    content_id: i64,
    from: i64,
    to: i64,
) -> Result<Vec<ItemPlay>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT n.id, n.name, n.village_id, p.scheduled_at, p.started_at, p.ended_at, p.outcome
         FROM playlogs p JOIN nodes n ON n.id = p.node_id
         WHERE n.commune_id = ?1 AND p.content_id = ?2 AND p.rejected IS NULL
           AND {WHEN} >= ?3 AND {WHEN} < ?4
         ORDER BY {WHEN} LIMIT 20000"
    ))?;
    let rows = st.query_map(params![commune_id, content_id, from, to], |r| {
        let t = |v: Option<i64>| v.map(ms_to_time);
        Ok(ItemPlay {
            node_id: r.get(0)?,
            node: r.get(1)?,
            village_id: r.get(2)?,
            scheduled_at: t(r.get(3)?),
            started_at: t(r.get(4)?),
            ended_at: t(r.get(5)?),
            outcome: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
