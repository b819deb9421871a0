//! Clock sync over the node's link, NTP style (docs/ARCHITECTURE.md, "Clock sync"): the node sends
//! `t0`, the controller stamps receipt `t1` and reply `t2`, the node notes arrival `t3`.
//!
//! ```text
//! offset     = ((t1 - t0) + (t2 - t3)) / 2     controller clock - node clock
//! round trip = (t3 - t0) - (t2 - t1)
//! ```
//!
//! A single exchange is off by half the difference of its two one-way delays, and over a
//! 3G link those wander by tens of milliseconds. [`ClockEstimator`] therefore reads each
//! direction on its own, over a long window, the way minimum-delay filters do (NTP's clock
//! filter, chrony's delay weighting, and the skew estimators of Paxson and of Moon et al.):
//!
//! - `up = t1 - t0` is the uplink's delay plus the offset, `down = t3 - t2` the downlink's
//!   delay minus it. Delays have a floor and only ever add to it, so the lower envelope of
//!   each series is the floor plus (or minus) the offset, and every exchange that found one
//!   direction quiet counts, whatever the other direction did (a whole round trip without
//!   queueing is far rarer).
//! - **Frequency**: the offset moves at the two clocks' rate difference, which tilts the
//!   two envelopes in opposite directions by the same slope. The drift is the slope whose
//!   two lines, each under every point of its direction, stand highest (the linear
//!   programme of Moon, Skelly and Towsley, for both directions at once). Queued exchanges
//!   sit above the lines and cannot bend them, which a least-squares fit through jittery
//!   offsets cannot say.
//! - **Phase**: with the drift taken out, the lowest `up` and the lowest `down` of recent
//!   exchanges give the offset; their floors cancel when the path is symmetric (as NTP
//!   assumes).
//!
//! The node's clock discipline (`speaker-node/src/agent/clock.rs`) then slews towards the
//! estimate at a bounded rate instead of jumping with every new exchange.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Exchanges kept at most (the acquisition's eight and then two a second fill it)...
pub const WINDOW: usize = 1536;
/// ...and for at most this long (ns): ten minutes, over which a crystal's rate holds.
const MAX_AGE_NS: i64 = 600_000_000_000;
/// The drift is measured once exchanges span this long (ns) and number at least
/// [`DRIFT_MIN_SAMPLES`]; before, the caller's prior (the last known drift) stands.
const DRIFT_SPAN_NS: i64 = 30_000_000_000;
const DRIFT_MIN_SAMPLES: usize = 24;
/// The offset is read from the exchanges of the last [`PHASE_SPAN_NS`], and at least this
/// many of the newest: enough to hold quiet moments of both directions, recent enough
/// that an error in the drift (a few ppm at first, under one later) moves the result by
/// little. Simulated over the sync test's link (`tests.rs`, `spread_table`): fixed
/// windows of 100, 400, 512 or 1,024 exchanges did worse at one rate or another; with the
/// true drift handed in, the whole window would halve the error, so the drift's own error
/// is what bounds it.
const PHASE_SAMPLES: usize = 256;
const PHASE_SPAN_NS: i64 = 64_000_000_000;
/// While the drift is not measured yet, from those of this last span (ns) instead (a drift
/// of 100 ppm moves the offset by 1 ms in this time).
const PHASE_SPAN_UNMEASURED_NS: i64 = 10_000_000_000;
/// Believed up to this rate (ns per ns): far beyond any crystal.
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

    /// Uplink delay plus the offset.
    fn up(&self) -> i64 {
        self.t1 - self.t0
    }

    /// Downlink delay minus the offset.
    fn down(&self) -> i64 {
        self.t3 - self.t2
    }

    /// Impossible exchanges (a clock stepped mid-exchange, a forged reply) are refused.
    pub fn is_plausible(&self) -> bool {
        self.t3 >= self.t0 && self.t2 >= self.t1 && self.round_trip() >= 0
    }
}

/// What the node believes about the controller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockEstimate {
    /// Add to a node time to get controller time, ns, at `reference_ns`.
    pub offset_ns: i64,
    /// The fastest round trip among the exchanges kept, ns.
    pub round_trip_ns: i64,
    /// Exchanges the estimate rests on.
    pub samples: usize,
    /// How fast the offset changes (the two clocks' rate difference), parts per million.
    pub drift_ppm: f64,
    /// Whether `drift_ppm` was measured from these exchanges (else it is the prior).
    #[serde(default)]
    pub drift_measured: bool,
    /// The node time `offset_ns` holds at; later, add `drift_ppm` for the time since.
    pub reference_ns: i64,
}

impl ClockEstimate {
    /// The offset at node time `at_ns`, drift included.
    pub fn offset_at(&self, at_ns: i64) -> i64 {
        self.offset_ns + ((at_ns - self.reference_ns) as f64 * self.drift_ppm / 1e6) as i64
    }
}

/// The drift `f` (ns per ns) for which the two envelopes (`up` under a line of slope `f`,
/// `down` under one of slope `-f`) sit highest: the linear programme that maximises each
/// line's height over its points, for both directions at once. The two lines' sum is the
/// round-trip floor, the same at every time, so this is also the `f` that makes the floor
/// of the round trip tightest. Each envelope's height is a minimum of lines in `f`, so
/// the objective is concave: a golden-section search finds its top (to 1e-5 ppm in about
/// 40 steps).
fn joint_slope(up: &[(f64, f64)], down: &[(f64, f64)]) -> f64 {
    let mean = |p: &[(f64, f64)]| p.iter().map(|q| q.0).sum::<f64>() / p.len() as f64;
    let (mu, md) = (mean(up), mean(down));
    let score = |f: f64| {
        let a = up
            .iter()
            .map(|p| p.1 - f * p.0)
            .fold(f64::INFINITY, f64::min);
        let b = down
            .iter()
            .map(|p| p.1 + f * p.0)
            .fold(f64::INFINITY, f64::min);
        a + f * mu + b - f * md
    };
    let (mut lo, mut hi) = (-MAX_DRIFT, MAX_DRIFT);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut x1, mut x2) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut s1, mut s2) = (score(x1), score(x2));
    while hi - lo > 1e-11 {
        if s1 < s2 {
            lo = x1;
            x1 = x2;
            s1 = s2;
            x2 = lo + g * (hi - lo);
            s2 = score(x2);
        } else {
            hi = x2;
            x2 = x1;
            s2 = s1;
            x1 = hi - g * (hi - lo);
            s1 = score(x1);
        }
    }
    (lo + hi) / 2.0
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
        while self
            .samples
            .front()
            .is_some_and(|s| sample.t3 - s.t0 > MAX_AGE_NS)
        {
            self.samples.pop_front();
        }
        true
    }

    /// The node's clock was set `by_ns`: the exchanges kept move with it, so they still
    /// say the same about the controller's clock.
    pub fn shift_node_time(&mut self, by_ns: i64) {
        for s in &mut self.samples {
            s.t0 += by_ns;
            s.t3 += by_ns;
        }
    }

    /// How long the exchanges kept span, ns (0 with fewer than two).
    pub fn span_ns(&self) -> i64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(a), Some(b)) => b.t3 - a.t0,
            _ => 0,
        }
    }

    /// The drift in ppm, when the exchanges measure it.
    fn drift(&self, reference: i64) -> Option<f64> {
        let first = self.samples.front()?;
        if self.samples.len() < DRIFT_MIN_SAMPLES || reference - first.t0 < DRIFT_SPAN_NS {
            return None;
        }
        let up: Vec<(f64, f64)> = self
            .samples
            .iter()
            .map(|s| ((s.t0 - reference) as f64, s.up() as f64))
            .collect();
        let down: Vec<(f64, f64)> = self
            .samples
            .iter()
            .map(|s| ((s.t3 - reference) as f64, s.down() as f64))
            .collect();
        let slope = joint_slope(&up, &down);
        Some(slope.clamp(-MAX_DRIFT, MAX_DRIFT) * 1e6)
    }

    /// The current estimate, with `prior_drift_ppm` standing for the drift until the
    /// exchanges measure it; `None` before the first exchange.
    pub fn estimate(&self, prior_drift_ppm: f64) -> Option<ClockEstimate> {
        let newest = self.samples.back()?;
        let reference = newest.t3;
        let measured = self.drift(reference);
        let drift = measured.unwrap_or(prior_drift_ppm) / 1e6;
        let skip = match measured {
            Some(_) => {
                let span = self
                    .samples
                    .iter()
                    .rev()
                    .take_while(|s| s.t0 >= reference - PHASE_SPAN_NS)
                    .count();
                self.samples.len().saturating_sub(span.max(PHASE_SAMPLES))
            }
            None => 0,
        };
        let recent = self.samples.iter().skip(skip).filter(|s| {
            measured.is_some()
                || s.t0 >= reference - PHASE_SPAN_UNMEASURED_NS
                || std::ptr::eq(*s, newest)
        });
        let (mut up, mut down) = (f64::INFINITY, f64::INFINITY);
        let mut samples = 0;
        for s in recent {
            up = up.min(s.up() as f64 - (s.t0 - reference) as f64 * drift);
            down = down.min(s.down() as f64 + (s.t3 - reference) as f64 * drift);
            samples += 1;
        }
        Some(ClockEstimate {
            offset_ns: ((up - down) / 2.0).round() as i64,
            round_trip_ns: self.samples.iter().map(SyncSample::round_trip).min()?,
            samples,
            drift_ppm: drift * 1e6,
            drift_measured: measured.is_some(),
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
mod tests;
