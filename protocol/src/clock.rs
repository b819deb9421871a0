//! Clock sync over the node's link, NTP style (docs/ARCHITECTURE.md, "Clock sync"): the node sends
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
/// Drift is estimated from voters spread over at least this long (ns)...
const DRIFT_SPAN_NS: i64 = 10_000_000_000;
/// ...and believed up to this rate (ns per ns): far beyond any crystal.
const MAX_DRIFT: f64 = 2e-3;

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

    /// The node time the exchange is centred on.
    pub fn mid(&self) -> i64 {
        self.t0 + (self.t3 - self.t0) / 2
    }

    /// Impossible exchanges (a clock stepped mid-exchange, a forged reply) are refused.
    pub fn is_plausible(&self) -> bool {
        self.t3 >= self.t0 && self.t2 >= self.t1 && self.round_trip() >= 0
    }
}

/// What the node believes about the controller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockEstimate {
    /// Add to a node time to get controller time, ns.
    pub offset_ns: i64,
    /// Round trip of the fastest sample voting, ns: an error bound of half of it.
    pub round_trip_ns: i64,
    /// Samples the estimate rests on.
    pub samples: usize,
    /// How fast the offset changes (the two clocks' rate difference), parts per million.
    pub drift_ppm: f64,
    /// The node time `offset_ns` holds at; later, add `drift_ppm` for the time since.
    pub reference_ns: i64,
}

impl ClockEstimate {
    /// The offset at node time `at_ns`, drift included.
    pub fn offset_at(&self, at_ns: i64) -> i64 {
        self.offset_ns + ((at_ns - self.reference_ns) as f64 * self.drift_ppm / 1e6) as i64
    }
}

/// The offset's rate of change (ns per ns) from a least-squares line through the voters,
/// used only when it is measured beyond doubt: over at least [`DRIFT_SPAN_NS`] and moving
/// the offset by more than twice the slowest voter's round trip (so a still clock's noise,
/// bounded by half a round trip, can never pass for drift).
fn drift(voters: &[&SyncSample]) -> f64 {
    if voters.len() < BEST {
        return 0.0;
    }
    let xs: Vec<f64> = voters.iter().map(|s| s.mid() as f64).collect();
    let ys: Vec<f64> = voters.iter().map(|s| s.offset() as f64).collect();
    let span =
        xs.iter().cloned().fold(f64::MIN, f64::max) - xs.iter().cloned().fold(f64::MAX, f64::min);
    if span < DRIFT_SPAN_NS as f64 {
        return 0.0;
    }
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx <= 0.0 {
        return 0.0;
    }
    let slope = (sxy / sxx).clamp(-MAX_DRIFT, MAX_DRIFT);
    let slowest = voters.iter().map(|s| s.round_trip()).max().unwrap_or(0) as f64;
    if (slope * span).abs() > 2.0 * slowest {
        slope
    } else {
        0.0
    }
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
        // A sample that waited in a queue on either side is skewed by half its wait and
        // shows it in its round trip: only those close to the fastest vote (NTP's clock
        // filter goes further and trusts the single fastest).
        let min = self.samples.iter().map(SyncSample::round_trip).min()?;
        let limit = min.saturating_mul(2).saturating_add(SLACK_NS);
        let voters: Vec<&SyncSample> = self
            .samples
            .iter()
            .filter(|s| s.round_trip() <= limit)
            .collect();
        let drift = drift(&voters);
        // Every voter's offset brought to the newest sample's time, then the median of the
        // fastest few.
        let reference = self.samples.back().map_or(0, SyncSample::mid);
        let mut fastest = voters.clone();
        fastest.sort_by_key(|s| s.round_trip());
        fastest.truncate(BEST);
        let mut offsets: Vec<i64> = fastest
            .iter()
            .map(|s| s.offset() + ((reference - s.mid()) as f64 * drift) as i64)
            .collect();
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
            drift_ppm: drift * 1e6,
            reference_ns: reference,
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

    #[test]
    fn a_drifting_clock_is_followed_not_lagged() {
        // The node's clock runs 300 ppm fast: the offset falls 300 us a second.
        let mut est = ClockEstimator::new();
        let truth = |t: i64| 5_000 * MS - t * 300 / 1_000_000;
        for i in 0..64i64 {
            let t0 = i * 1_000 * MS;
            let up = if i % 5 == 0 { 30 * MS } else { MS / 5 };
            est.add(exchange(t0, truth(t0), up, MS / 5, MS / 10));
        }
        let e = est.estimate().unwrap();
        assert!((e.drift_ppm + 300.0).abs() < 5.0, "{e:?}");
        let now = 64_000 * MS;
        let error = (e.offset_at(now) - truth(now)).abs();
        assert!(error < MS / 10, "error {error} ns: {e:?}");
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
