//! The heartbeat's contents: everything an admin looks at to judge a node.

use std::sync::PoisonError;

use protocol::link::Health;

use super::{Agent, lock};

/// 1-minute load average (Linux).
fn load() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The first thermal zone, where the board has one (millidegrees in sysfs).
fn temperature() -> Option<f64> {
    let raw = std::fs::read_to_string("/sys/class/thermal/thermal_zone0/temp").ok()?;
    raw.trim().parse::<f64>().ok().map(|m| m / 1000.0)
}

fn disk_free(path: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

impl Agent {
    pub(super) fn health(&self) -> Health {
        let status = lock(&self.status).clone();
        let estimate = self.clock.estimate();
        Health {
            agent: env!("CARGO_PKG_VERSION").into(),
            uptime_s: self.started.elapsed().as_secs(),
            ip: lock(&self.ip).iter().cloned().collect(),
            clock_offset_ms: estimate.map(|_| self.clock.offset_ns() as f64 / 1e6),
            round_trip_ms: estimate.map(|e| e.round_trip_ns as f64 / 1e6),
            cache_used_bytes: self.cache.used_bytes(),
            cache_quota_bytes: self.cfg.cache_quota_mb * 1_000_000,
            disk_free_bytes: disk_free(self.state.root()),
            // The first 200 (nearest first): enough to act on, and the heartbeat stays small.
            missing_blobs: lock(&self.missing).iter().take(200).cloned().collect(),
            playing: status.playing,
            volume: status.volume,
            output: self.cfg.output.clone(),
            output_ok: status.output_ok,
            underruns: status.underruns,
            load: load(),
            temperature_c: temperature(),
            last_error: status.last_error.or_else(|| lock(&self.last_error).clone()),
            applied_version: self
                .desired
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|d| d.version.clone()),
            pending_logs: lock(&self.journal).pending().len() as u64,
        }
    }
}
