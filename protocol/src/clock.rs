//! Clock sync over the node's link, NTP style (DESIGN.md, "Clock sync"): the node sends
//! `t0`, the controller stamps receipt `t1` and reply `t2`, the node notes arrival `t3`.
//!
//! ```text
//! offset     = ((t1 - t0) + (t2 - t3)) / 2     controller clock - node clock
//! round trip = (t3 - t0) - (t2 - t1)
//! ```
//!
//! [`ClockEstimator`] keeps the last [`WINDOW`] samples and answers the median offset of
//! the [`BEST`] with the smallest round trips: a sample delayed one way by a busy 3G link
//! is skewed by half its extra delay, and the fastest exchanges are the least skewed.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Samples kept (about a minute at the steady rate of one a second).
pub const WINDOW: usize = 64;
/// Of those, how many of the fastest exchanges vote...
pub const BEST: usize = 8;
/// ...if their round trip is within twice the fastest's plus this (ns).
const SLACK_NS: i64 = 1_000_000;

/// One exchange, all times in nanoseconds of their own clock (node: t0, t3; controller:
/// t1, t2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSample {
    pub t0: i64,
    pub t1: i64,
    pub t2: i64,
    pub t3: i64,
}

impl SyncSample {
    /// Controller clock minus node clock, ns.
    pub fn offset(&self) -> i64 {
        ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2
    }

    /// Time on the wire both ways, ns (the controller's own handling time excluded).
    pub fn round_trip(&self) -> i64 {
        (self.t3 - self.t0) - (self.t2 - self.t1)
    }

    /// Impossible exchanges (a clock stepped mid-exchange, a forged reply) are refused.
    pub fn is_plausible(&self) -> bool {
        self.t3 >= self.t0 && self.t2 >= self.t1 && self.round_trip() >= 0
    }
}

/// What the node believes about the controller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockEstimate {
    /// Add to a node time to get controller time, ns.
    pub offset_ns: i64,
    /// Round trip of the fastest sample voting, ns: an error bound of half of it.
    pub round_trip_ns: i64,
    /// Samples the estimate rests on.
    pub samples: usize,
}

#[derive(Debug, Default, Clone)]
pub struct ClockEstimator {
    samples: VecDeque<SyncSample>,
}

impl ClockEstimator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exchange; implausible ones are dropped (returns whether it was kept).
    pub fn add(&mut self, sample: SyncSample) -> bool {
        if !sample.is_plausible() {
            return false;
        }
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
        true
    }

    /// The current estimate; `None` before the first sample.
    pub fn estimate(&self) -> Option<ClockEstimate> {
        let mut fastest: Vec<&SyncSample> = self.samples.iter().collect();
        fastest.sort_by_key(|s| s.round_trip());
        fastest.truncate(BEST);
        // A sample that waited in a queue on either side is skewed by half its wait and
        // shows it in its round trip: only those close to the fastest vote (NTP's clock
        // filter goes further and trusts the single fastest).
        if let Some(min) = fastest.first().map(|s| s.round_trip()) {
            let limit = min.saturating_mul(2).saturating_add(SLACK_NS);
            fastest.retain(|s| s.round_trip() <= limit);
        }
        let mut offsets: Vec<i64> = fastest.iter().map(|s| s.offset()).collect();
        offsets.sort_unstable();
        let n = offsets.len();
        let median = match n {
            0 => return None,
            n if n % 2 == 1 => offsets[n / 2],
            n => (offsets[n / 2 - 1] + offsets[n / 2]) / 2,
        };
        Some(ClockEstimate {
            offset_ns: median,
            round_trip_ns: fastest[0].round_trip(),
            samples: n,
        })
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MS: i64 = 1_000_000;

    /// An exchange with the controller `offset` ahead, `up`/`down` ns on the wire and
    /// `handling` ns inside the controller, starting at node time `t0`.
    fn exchange(t0: i64, offset: i64, up: i64, down: i64, handling: i64) -> SyncSample {
        let t1 = t0 + up + offset;
        let t2 = t1 + handling;
        let t3 = t2 - offset + down;
        SyncSample { t0, t1, t2, t3 }
    }

    #[test]
    fn symmetric_link_gives_the_exact_offset() {
        let s = exchange(1_000 * MS, 250 * MS, 40 * MS, 40 * MS, 3 * MS);
        assert_eq!(s.offset(), 250 * MS);
        assert_eq!(s.round_trip(), 80 * MS);
    }

    #[test]
    fn asymmetry_skews_by_half_the_difference() {
        let s = exchange(0, -30 * MS, 100 * MS, 20 * MS, 0);
        assert_eq!(s.offset(), -30 * MS + 40 * MS);
    }

    #[test]
    fn slow_exchanges_are_outvoted_by_fast_ones() {
        let mut est = ClockEstimator::new();
        for i in 0..20 {
            // Most exchanges crawl one way through a congested uplink.
            est.add(exchange(i * 1000 * MS, 500 * MS, 400 * MS, 30 * MS, MS));
        }
        for i in 20..28 {
            est.add(exchange(i * 1000 * MS, 500 * MS, 31 * MS, 30 * MS, MS));
        }
        let e = est.estimate().unwrap();
        assert!((e.offset_ns - 500 * MS).abs() <= MS, "{e:?}");
        assert_eq!(e.round_trip_ns, 61 * MS);
        assert_eq!(e.samples, BEST);
    }

    #[test]
    fn implausible_samples_are_dropped_and_the_window_slides() {
        let mut est = ClockEstimator::new();
        assert!(est.estimate().is_none());
        assert!(!est.add(SyncSample {
            t0: 10,
            t1: 5,
            t2: 4,
            t3: 20
        }));
        assert!(!est.add(SyncSample {
            t0: 10,
            t1: 5,
            t2: 6,
            t3: 9
        }));
        assert!(est.is_empty());
        for i in 0..(WINDOW as i64 + 10) {
            assert!(est.add(exchange(i * MS, 7 * MS, MS, MS, 0)));
        }
        assert_eq!(est.len(), WINDOW);
        assert_eq!(est.estimate().unwrap().offset_ns, 7 * MS);
    }

    proptest! {
        /// Whatever the delays, the estimate is within half the fastest round trip of the
        /// truth (the NTP error bound).
        #[test]
        fn error_within_half_the_best_round_trip(
            offset in -3_600_000i64..3_600_000,
            delays in prop::collection::vec((0i64..2_000, 0i64..2_000, 0i64..50), 1..40),
        ) {
            let mut est = ClockEstimator::new();
            for (i, (up, down, handling)) in delays.iter().enumerate() {
                est.add(exchange(i as i64 * 1_000 * MS, offset * MS / 1000, up * MS / 10, down * MS / 10, handling * MS / 10));
            }
            let e = est.estimate().unwrap();
            let error = (e.offset_ns - offset * MS / 1000).abs();
            // Every voting sample's own error is at most half its round trip; the median
            // of them at most half of the slowest voter's.
            let mut rtts: Vec<i64> = delays.iter().map(|(u, d, _)| (u + d) * MS / 10).collect();
            rtts.sort_unstable();
            let slowest_voter = rtts[rtts.len().min(BEST) - 1];
            prop_assert!(error <= slowest_voter / 2 + 1, "error {error} ns, voters up to {slowest_voter} ns");
        }
    }
}
