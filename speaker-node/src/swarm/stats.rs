//! What the swarm tells the benchmark: counters, and for each desired-state version and
//! each emergency the instants its nodes applied or confirmed it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde_json::{Value, json};

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Default)]
pub struct Stats {
    linked: AtomicI64,
    links_opened: AtomicU64,
    dial_failures: AtomicU64,
    heartbeats: AtomicU64,
    pings: AtomicU64,
    plays: AtomicU64,
    logs_acked: AtomicU64,
    live_frames: AtomicU64,
    commands: AtomicU64,
    fetched: AtomicU64,
    fetch_failures: AtomicU64,
    /// Node -> when it last applied a new desired state (Unix ms). Versions differ per
    /// node (each state names its node), so a change is seen as every node's latest
    /// apply moving past the instant it was made.
    applied: Mutex<HashMap<i64, i64>>,
    /// Emergency schedule id -> when each node confirmed it playing (Unix ms).
    emergencies: Mutex<HashMap<i64, Vec<i64>>>,
}

fn add(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    pub fn link_up(&self) {
        self.linked.fetch_add(1, Ordering::Relaxed);
        add(&self.links_opened);
    }
    pub fn link_down(&self) {
        self.linked.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn dial_failed(&self) {
        add(&self.dial_failures);
    }
    pub fn heartbeat(&self) {
        add(&self.heartbeats);
    }
    pub fn ping(&self) {
        add(&self.pings);
    }
    pub fn played(&self) {
        add(&self.plays);
    }
    pub fn logs_acked(&self, n: usize) {
        self.logs_acked.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn live_frame(&self) {
        add(&self.live_frames);
    }
    pub fn command(&self) {
        add(&self.commands);
    }
    pub fn fetch(&self, ok: bool) {
        add(if ok {
            &self.fetched
        } else {
            &self.fetch_failures
        });
    }

    pub fn applied(&self, node_id: i64) {
        let mut map = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(node_id, now_ms());
    }

    pub fn emergency_playing(&self, schedule_id: i64) {
        let mut map = self.emergencies.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(schedule_id).or_default().push(now_ms());
    }

    /// One JSON line: counters, the spread of the nodes' latest applies, and every
    /// emergency, each with how many nodes and when (first, median, 99th percentile, last;
    /// Unix ms).
    pub fn report(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let applied = {
            let map = self.applied.lock().unwrap_or_else(|p| p.into_inner());
            spread(&map.values().copied().collect::<Vec<_>>())
        };
        let emergencies: Vec<Value> = {
            let map = self.emergencies.lock().unwrap_or_else(|p| p.into_inner());
            map.iter()
                .map(|(id, at)| {
                    let mut s = spread(at);
                    s["schedule_id"] = json!(id);
                    s
                })
                .collect()
        };
        json!({
            "kind": "status",
            "at_ms": now_ms(),
            "linked": self.linked.load(Ordering::Relaxed),
            "links_opened": get(&self.links_opened),
            "dial_failures": get(&self.dial_failures),
            "heartbeats": get(&self.heartbeats),
            "pings": get(&self.pings),
            "plays": get(&self.plays),
            "logs_acked": get(&self.logs_acked),
            "live_frames": get(&self.live_frames),
            "commands": get(&self.commands),
            "fetched": get(&self.fetched),
            "fetch_failures": get(&self.fetch_failures),
            "applied": applied,
            "emergencies": emergencies,
        })
        .to_string()
    }
}

fn spread(at: &[i64]) -> Value {
    let mut sorted = at.to_vec();
    sorted.sort_unstable();
    let pick = |q: f64| {
        sorted
            .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    json!({
        "nodes": sorted.len(),
        "first_ms": sorted.first(),
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "last_ms": sorted.last(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_versions_and_emergencies() {
        let s = Stats::default();
        s.link_up();
        s.applied(1);
        s.applied(2);
        s.emergency_playing(7);
        let r: Value = serde_json::from_str(&s.report()).unwrap();
        assert_eq!(r["linked"], 1);
        assert_eq!(r["applied"]["nodes"], 2);
        assert_eq!(r["emergencies"][0]["schedule_id"], 7);
        assert!(r["emergencies"][0]["p99_ms"].as_i64().unwrap() > 0);
    }
}
