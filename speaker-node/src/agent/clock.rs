//! The node's clocks. `local` is the node's own clock: the host clock it is handed (a
//! [`Clock`]: the real one, or a test's) with the `--clock-offset-ms` /
//! `--clock-drift-ppm` test knobs applied (docs/INTERFACES.md) — the only place the agent reads
//! the host clock. `controller` is the fleet's reference: local plus the NTP-style offset
//! estimated over the link (`protocol::clock`). Scheduled times are on the controller's
//! clock.

use std::sync::{Arc, Mutex, PoisonError};

use protocol::clock::{ClockEstimate, ClockEstimator, SyncSample};
use protocol::time::Clock;

pub struct NodeClock {
    host: Arc<dyn Clock>,
    /// Host time when the agent started: drift accumulates from here.
    epoch_ns: i64,
    offset_ns: i64,
    drift_ppm: f64,
    sync: Mutex<Sync>,
}

struct Sync {
    estimator: ClockEstimator,
    /// The offset in use: the estimate, or the last one saved before a restart.
    offset_ns: Option<i64>,
    estimate: Option<ClockEstimate>,
}

impl NodeClock {
    /// `saved_offset_ns`: the controller offset last estimated (kept across restarts, so a
    /// node rebooted while its link is down stays on the fleet's time).
    pub fn new(
        host: Arc<dyn Clock>,
        offset_ms: f64,
        drift_ppm: f64,
        saved_offset_ns: Option<i64>,
    ) -> Self {
        NodeClock {
            epoch_ns: host.now_ns(),
            host,
            offset_ns: (offset_ms * 1e6) as i64,
            drift_ppm,
            sync: Mutex::new(Sync {
                estimator: ClockEstimator::new(),
                offset_ns: saved_offset_ns,
                estimate: None,
            }),
        }
    }

    /// The node's own clock, ns since the Unix epoch.
    pub fn local_ns(&self) -> i64 {
        let h = self.host.now_ns();
        h + self.offset_ns + ((h - self.epoch_ns) as f64 * self.drift_ppm / 1e6) as i64
    }

    /// Controller minus local at local time `local`, ns: the estimate with its drift, else
    /// the offset saved before a restart, else 0.
    fn offset_at(&self, local: i64) -> i64 {
        let s = self.lock();
        match s.estimate {
            Some(e) => e.offset_at(local),
            None => s.offset_ns.unwrap_or(0),
        }
    }

    /// Controller minus local now, ns.
    pub fn offset_ns(&self) -> i64 {
        self.offset_at(self.local_ns())
    }

    /// The fleet's time, ns since the Unix epoch.
    pub fn controller_ns(&self) -> i64 {
        let local = self.local_ns();
        local + self.offset_at(local)
    }

    /// Adds one exchange; returns the new estimate.
    pub fn add_sample(&self, sample: SyncSample) -> Option<ClockEstimate> {
        let mut s = self.lock();
        s.estimator.add(sample);
        s.estimate = s.estimator.estimate();
        s.estimate
    }

    pub fn estimate(&self) -> Option<ClockEstimate> {
        self.lock().estimate
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sync> {
        self.sync.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_move_the_local_clock() {
        let host = protocol::time::TestClock::new(1_000_000_000_000);
        let c = NodeClock::new(host.clone(), 500.0, 1000.0, None);
        assert_eq!(c.local_ns() - host.now_ns(), 500_000_000);
        // 1000 ppm: a second of host time is a millisecond more on the node.
        host.advance_ms(1000);
        assert_eq!(c.local_ns() - host.now_ns(), 501_000_000);
        let s = SyncSample {
            t0: 0,
            t1: 1_000,
            t2: 1_000,
            t3: 0,
        };
        c.add_sample(s);
        assert_eq!(c.estimate().unwrap().offset_ns, 1_000);
    }
}
