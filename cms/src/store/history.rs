//! Each node's health over time, downsampled as it arrives: every heartbeat (10 s) kept a
//! day, 5-minute buckets a month, hourly buckets a year. Each bucket sums what a chart
//! needs (heartbeats heard, round trip, clock offset, the agent's underrun count).

use rusqlite::{Connection, params};

use crate::error::Result;

/// Bucket widths (s) and how long each is kept (s).
pub const LEVELS: [(i64, i64); 3] = [(10, 86_400), (300, 30 * 86_400), (3600, 365 * 86_400)];

/// One bucket of a node's health.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Point {
    /// Bucket start, Unix seconds.
    pub t: i64,
    /// Heartbeats heard in it.
    pub n: i64,
    pub round_trip_ms: Option<f64>,
    pub clock_offset_ms: Option<f64>,
    /// The agent's underrun count at the bucket's end (it restarts with the agent).
    pub underruns: i64,
}

/// Adds one heartbeat at `t_s` to every level.
pub fn record(
    conn: &Connection,
    node: i64,
    t_s: i64,
    rtt: Option<f64>,
    offset: Option<f64>,
    underruns: u64,
) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT INTO health_points (node_id, res, t, n, rtt_sum, rtt_n, offset_sum, offset_n, underruns)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (node_id, res, t) DO UPDATE SET n = n + 1,
             rtt_sum = rtt_sum + excluded.rtt_sum, rtt_n = rtt_n + excluded.rtt_n,
             offset_sum = offset_sum + excluded.offset_sum, offset_n = offset_n + excluded.offset_n,
             underruns = excluded.underruns",
    )?;
    for (res, _) in LEVELS {
        st.execute(params![
            node,
            res,
            t_s - t_s.rem_euclid(res),
            rtt.unwrap_or(0.0),
            i64::from(rtt.is_some()),
            offset.unwrap_or(0.0),
            i64::from(offset.is_some()),
            i64::try_from(underruns).unwrap_or(i64::MAX)
        ])?;
    }
    Ok(())
}

/// Drops buckets past their level's keeping time; how many went.
pub fn prune(conn: &Connection, now_s: i64) -> Result<usize> {
    let mut gone = 0;
    for (res, keep) in LEVELS {
        gone += conn.execute(
            "DELETE FROM health_points WHERE res = ?1 AND t < ?2",
            params![res, now_s - keep],
        )?;
    }
    Ok(gone)
}

/// A node's buckets of width `res` in `[from_s, to_s)`.
pub fn series(
    conn: &Connection,
    node: i64,
    res: i64,
    from_s: i64,
    to_s: i64,
) -> Result<Vec<Point>> {
    let mut st = conn.prepare_cached(
        "SELECT t, n, CASE WHEN rtt_n > 0 THEN rtt_sum / rtt_n END, CASE WHEN offset_n > 0 THEN offset_sum / offset_n END, underruns
         FROM health_points WHERE node_id = ?1 AND res = ?2 AND t >= ?3 AND t < ?4 ORDER BY t",
    )?;
    let rows = st.query_map(params![node, res, from_s, to_s], |r| {
        Ok(Point {
            t: r.get(0)?,
            n: r.get(1)?,
            round_trip_ms: r.get(2)?,
            clock_offset_ms: r.get(3)?,
            underruns: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    #[test]
    fn heartbeats_are_downsampled_as_they_come_and_pruned_by_age() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrations::apply(&mut c).unwrap();
        c.execute_batch(
            "INSERT INTO communes (id, slug, name, created_at) VALUES (1, 'xa', 'Xã', 0);
             INSERT INTO villages (id, commune_id, name, created_at) VALUES (2, 1, 'Thôn', 0);
             INSERT INTO nodes (id, commune_id, village_id, name, created_at) VALUES (3, 1, 2, 'Loa', 0);",
        )
        .unwrap();
        // An hour of heartbeats every 10 s from t0; a quiet gap of 5 minutes in the middle.
        // An hour's start (1_800_000_000 is 08:00 UTC on 15 Jan 2027).
        let t0: i64 = 1_800_000_000;
        for i in 0..360 {
            if (150..180).contains(&i) {
                continue;
            }
            let rtt = if i % 2 == 0 { 40.0 } else { 60.0 };
            super::record(&c, 3, t0 + i * 10, Some(rtt), Some(-2.0), (i / 100) as u64).unwrap();
        }
        let raw = super::series(&c, 3, 10, t0, t0 + 3600).unwrap();
        assert_eq!(raw.len(), 330);
        let five = super::series(&c, 3, 300, t0, t0 + 3600).unwrap();
        assert_eq!(five.len(), 11, "the silent 5 minutes leave a gap");
        assert_eq!(five[0].n, 30);
        assert_eq!(five[0].round_trip_ms, Some(50.0));
        assert_eq!(five[0].clock_offset_ms, Some(-2.0));
        assert_eq!(five.last().unwrap().underruns, 3);
        let hour = super::series(&c, 3, 3600, t0, t0 + 3600).unwrap();
        assert_eq!((hour.len(), hour[0].n), (1, 330));
        // A heartbeat without figures counts as heard and leaves the averages alone.
        super::record(&c, 3, t0 + 3601, None, None, 3).unwrap();
        let next = super::series(&c, 3, 3600, t0 + 3600, t0 + 7200).unwrap();
        assert_eq!((next[0].n, next[0].round_trip_ms), (1, None));

        // Two days on, the heartbeats are gone and the buckets stay; a year on, all gone.
        super::prune(&c, t0 + 2 * 86_400).unwrap();
        assert!(super::series(&c, 3, 10, t0, t0 + 7200).unwrap().is_empty());
        assert_eq!(super::series(&c, 3, 300, t0, t0 + 7200).unwrap().len(), 12);
        super::prune(&c, t0 + 366 * 86_400).unwrap();
        let left: i64 = c
            .query_row("SELECT count(*) FROM health_points", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
