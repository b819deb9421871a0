//! The heartbeat's contents: everything an admin looks at to judge a node.

use protocol::link::Health;

use super::owner::AgentCore;

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

impl AgentCore {
    pub fn health(&self) -> Health {
        let status = self.playout_status();
        let estimate = self.clock.estimate();
        let uptime_ns = (self.clock.local_ns() - self.started_ns).max(0);
        Health {
            agent: env!("CARGO_PKG_VERSION").into(),
            uptime_s: (uptime_ns / 1_000_000_000) as u64,
            ip: self.ip.iter().cloned().collect(),
            clock_offset_ms: estimate.map(|_| self.clock.offset_ns() as f64 / 1e6),
            round_trip_ms: estimate.map(|e| e.round_trip_ns as f64 / 1e6),
            cache_used_bytes: self.cache.used_bytes(),
            cache_quota_bytes: self.cache_quota_bytes,
            disk_free_bytes: disk_free(self.state.root()),
            // The first 200 (nearest first): enough to act on, and the heartbeat stays small.
            missing_blobs: self.missing.iter().take(200).cloned().collect(),
            playing: status.playing,
            volume: status.volume,
            output: self.output_name.clone(),
            output_ok: status.output_ok,
            underruns: status.underruns,
            live_concealed: status.live_concealed,
            live_late: status.live_late,
            load: load(),
            temperature_c: temperature(),
            last_error: status.last_error.or_else(|| self.last_error.clone()),
            applied_version: self.applied_version(),
            pending_logs: self.pending_logs().len() as u64,
        }
    }
}
