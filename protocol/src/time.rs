//! Where time comes from. Every piece of timing logic — the node's scheduler and playout,
//! the controller hub's liveness — reads a [`Clock`] it is handed instead of the host's
//! clock, so tests drive it with a [`TestClock`] and check in milliseconds what would
//! take minutes in real time. The running system hands them a [`HostClock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of real time (wall-clock, ns since the Unix epoch).
pub trait Clock: Send + Sync + 'static {
    fn now_ns(&self) -> i64;

    /// A steady count of ns from an arbitrary start that no one sets (the host's monotonic
    /// clock): against it, a step of the wall clock shows. By default the wall clock
    /// itself, for clocks that never step.
    fn steady_ns(&self) -> i64 {
        self.now_ns()
    }

    /// Milliseconds since `earlier_ns` (0 if the clock went back).
    fn ms_since(&self, earlier_ns: i64) -> u64 {
        u64::try_from((self.now_ns() - earlier_ns) / 1_000_000).unwrap_or(0)
    }
}

/// The host's real-time clock: what runs in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostClock;

impl Clock for HostClock {
    fn now_ns(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }

    /// `CLOCK_MONOTONIC` (it stops while the machine sleeps, which a loudspeaker board
    /// does not).
    fn steady_ns(&self) -> i64 {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told: the test's hand on time.
#[derive(Debug, Default)]
pub struct TestClock {
    steady: AtomicI64,
    /// What the wall clock was set to beyond the steady time.
    set_by: AtomicI64,
}

impl TestClock {
    pub fn new(start_ns: i64) -> Arc<Self> {
        Arc::new(TestClock {
            steady: AtomicI64::new(start_ns),
            set_by: AtomicI64::new(0),
        })
    }

    pub fn advance_ns(&self, ns: i64) {
        self.steady.fetch_add(ns, Ordering::SeqCst);
    }

    pub fn advance_ms(&self, ms: i64) {
        self.advance_ns(ms * 1_000_000);
    }

    /// Sets the wall clock `ns` forward (or back): a step, as a wrong RTC or a manual
    /// `date -s` makes, that the steady clock does not see.
    pub fn step_wall_ns(&self, ns: i64) {
        self.set_by.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ns(&self) -> i64 {
        self.steady.load(Ordering::SeqCst) + self.set_by.load(Ordering::SeqCst)
    }

    fn steady_ns(&self) -> i64 {
        self.steady.load(Ordering::SeqCst)
    }
}

/// The clock a running process uses.
pub fn host() -> Arc<dyn Clock> {
    Arc::new(HostClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_clock_moves_only_when_told() {
        let c = TestClock::new(1_000_000_000);
        assert_eq!(c.now_ns(), 1_000_000_000);
        c.advance_ms(1500);
        assert_eq!(c.now_ns(), 2_500_000_000);
        assert_eq!(c.ms_since(1_000_000_000), 1500);
        assert_eq!(c.ms_since(3_000_000_000), 0);
        c.step_wall_ns(3_600_000_000_000);
        assert_eq!(c.now_ns(), 3_602_500_000_000);
        assert_eq!(c.steady_ns(), 2_500_000_000);
        let h = HostClock;
        assert!(h.now_ns() > 1_700_000_000_000_000_000);
    }
}
