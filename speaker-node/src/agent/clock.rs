//! The node's clocks. `local` is the node's own clock: the host clock it is handed (a
//! [`Clock`]: the real one, or a test's) with the `--clock-offset-ms` /
//! `--clock-drift-ppm` test knobs applied (docs/INTERFACES.md) — the only place the agent reads
//! the host clock. `controller` is the fleet's reference: local plus the offset this
//! module disciplines.
//!
//! The discipline, as NTP's and chrony's: the estimate (`protocol::clock`) gives the
//! offset and its rate of change (the frequency lock: the offset is carried forward at the
//! measured drift between exchanges and across link outages and restarts); a difference
//! between the offset in use and a new estimate is not jumped but slewed away, over about
//! [`SLEW_TAU_NS`] and at most [`MAX_SLEW`], so the controller clock never jumps with
//! the jitter of one exchange and what plays on it stays smooth. Only an error beyond
//! [`STEP_NS`] (a first estimate, a clock far off after a long outage) is stepped.
//!
//! The host clock itself may be set while the node runs (a wrong RTC corrected, an
//! operator's `date -s`, an NTP step). Read against the host's steady clock, such a step
//! shows, and the offset takes it back at once: the fleet's time goes on unbroken, link
//! or no link, and what is scheduled plays on time.

use std::sync::{Arc, Mutex, PoisonError};

use protocol::clock::{ClockEstimate, ClockEstimator, SyncSample};
use protocol::time::Clock;

/// Further off than this (ns), the offset is stepped at once...
const STEP_NS: i64 = 20_000_000;
/// ...and while the drift is not measured yet (the first half minute of exchanges), beyond
/// this.
const STEP_UNLOCKED_NS: i64 = 2_000_000;
/// Otherwise the error is slewed away over about this long (ns)...
const SLEW_TAU_NS: f64 = 10e9;
/// ...at no more than this rate (ns per ns): 500 ppm, as ntpd's limit, well under what
/// the playout's resampling follows.
const MAX_SLEW: f64 = 500e-6;
/// A saved offset is carried forward at its saved drift for at most this long (ns).
const CARRY_NS: i64 = 7 * 86_400 * 1_000_000_000;
/// The host clock moving this much (ns) more or less than the steady clock since the last
/// reading is a step of the host clock...
const HOST_STEP_NS: i64 = 100_000_000;
/// ...beyond this rate too (ns per ns), which covers crystal drift and any slewing.
const HOST_STEP_RATE: f64 = 1e-3;
/// An exchange stamped longer ago than this (ns, node time) is stale: the host clock was
/// set while it was under way.
const SAMPLE_STALE_NS: i64 = 1_000_000_000;

/// What the node's clock was disciplined to when last saved (kept across restarts, so a
/// node rebooted while its link is down stays on the fleet's time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SavedClock {
    pub offset_ns: i64,
    /// Local time of the save (`None` in files written before it was kept).
    pub at_ns: Option<i64>,
    pub drift_ppm: f64,
}

/// The offset in use, a function of local time: `base` at `anchor`, moving at `freq`,
/// plus a slew of `slew` (ns per ns) for the `slew_ns` after the anchor.
#[derive(Debug, Clone, Copy)]
struct Applied {
    anchor: i64,
    base: i64,
    freq: f64,
    slew: f64,
    slew_ns: i64,
}

impl Applied {
    fn at(&self, local: i64) -> i64 {
        let dt = (local - self.anchor) as f64;
        let slewed = self.slew * dt.clamp(0.0, self.slew_ns as f64);
        self.base + (dt * self.freq + slewed) as i64
    }
}

pub struct NodeClock {
    host: Arc<dyn Clock>,
    /// Host time when the agent started: drift accumulates from here.
    epoch_ns: i64,
    /// Steady time when the agent started.
    steady_epoch_ns: i64,
    offset_ns: i64,
    drift_ppm: f64,
    /// Test knob: the node's clock is set `.1` ns `.0` ns (steady) after the start.
    set_later: Option<(i64, i64)>,
    sync: Mutex<Sync>,
}

struct Sync {
    estimator: ClockEstimator,
    estimate: Option<ClockEstimate>,
    /// The offset in use (`None`: never estimated nor saved: 0).
    applied: Option<Applied>,
    /// Steps taken (for the log).
    steps: u64,
    /// The last (steady, local) reading: where host clock steps show.
    seen: Option<(i64, i64)>,
}

impl NodeClock {
    pub fn new(
        host: Arc<dyn Clock>,
        offset_ms: f64,
        drift_ppm: f64,
        saved: Option<SavedClock>,
    ) -> Self {
        let clock = NodeClock {
            epoch_ns: host.now_ns(),
            steady_epoch_ns: host.steady_ns(),
            host,
            offset_ns: (offset_ms * 1e6) as i64,
            drift_ppm,
            set_later: None,
            sync: Mutex::new(Sync {
                estimator: ClockEstimator::new(),
                estimate: None,
                applied: None,
                steps: 0,
                seen: None,
            }),
        };
        if let Some(saved) = saved {
            let now = clock.local_ns();
            let anchor = saved
                .at_ns
                .filter(|at| (0..=CARRY_NS).contains(&(now - at)))
                .unwrap_or(now);
            clock.lock().applied = Some(Applied {
                anchor,
                base: saved.offset_ns,
                freq: saved.drift_ppm / 1e6,
                slew: 0.0,
                slew_ns: 0,
            });
        }
        clock
    }

    /// Test knob: the node's clock is set `by_ms` forward (or back) `after_s` seconds
    /// after the start (`--clock-step-ms`, `--clock-step-after-s`).
    pub fn set_later(mut self, after_s: f64, by_ms: f64) -> Self {
        self.set_later = (by_ms != 0.0).then_some(((after_s * 1e9) as i64, (by_ms * 1e6) as i64));
        self
    }

    /// The node's own clock, ns since the Unix epoch.
    pub fn local_ns(&self) -> i64 {
        let h = self.host.now_ns();
        let set = match self.set_later {
            Some((after, by)) if self.host.steady_ns() - self.steady_epoch_ns >= after => by,
            _ => 0,
        };
        h + self.offset_ns + set + ((h - self.epoch_ns) as f64 * self.drift_ppm / 1e6) as i64
    }

    /// The lock, and local time now, host clock steps followed: the offset in use takes
    /// a step back at once, and the exchanges kept move with it.
    fn now_locked(&self) -> (std::sync::MutexGuard<'_, Sync>, i64) {
        let mut s = self.lock();
        let steady = self.host.steady_ns();
        let local = self.local_ns();
        // Only a clock measured in this run is the fleet's time to keep; before that, the
        // host clock is the best the node has, and a step of it a correction (a board
        // that booted on a wrong RTC, then reached NTP).
        if let Some((steady0, local0)) = s.seen.filter(|_| s.estimate.is_some()) {
            let elapsed = steady - steady0;
            let step = (local - local0) - elapsed;
            if step.abs() > HOST_STEP_NS + (elapsed.abs() as f64 * HOST_STEP_RATE) as i64 {
                if let Some(a) = s.applied.as_mut() {
                    a.anchor += step;
                    a.base -= step;
                }
                if let Some(e) = s.estimate.as_mut() {
                    e.reference_ns += step;
                    e.offset_ns -= step;
                }
                s.estimator.shift_node_time(step);
                tracing::warn!(
                    step_s = step as f64 / 1e9,
                    "the host clock was set; the fleet's time goes on unbroken"
                );
            }
        }
        s.seen = Some((steady, local));
        (s, local)
    }

    /// Controller minus local now, ns.
    pub fn offset_ns(&self) -> i64 {
        let (s, local) = self.now_locked();
        s.applied.map_or(0, |a| a.at(local))
    }

    /// The fleet's time, ns since the Unix epoch.
    pub fn controller_ns(&self) -> i64 {
        let (s, local) = self.now_locked();
        local + s.applied.map_or(0, |a| a.at(local))
    }

    /// Adds one exchange and steers the offset in use towards the new estimate; returns
    /// the estimate.
    pub fn add_sample(&self, sample: SyncSample) -> Option<ClockEstimate> {
        let (mut s, now) = self.now_locked();
        if (now - sample.t3).abs() > SAMPLE_STALE_NS {
            return s.estimate;
        }
        s.estimator.add(sample);
        let prior = s.applied.map_or(0.0, |a| a.freq * 1e6);
        let estimate = s.estimator.estimate(prior)?;
        s.estimate = Some(estimate);
        let target = estimate.offset_at(now);
        let freq = estimate.drift_ppm / 1e6;
        let limit = match estimate.drift_measured {
            true => STEP_NS,
            false => STEP_UNLOCKED_NS,
        };
        let current = s.applied.map(|a| a.at(now));
        s.applied = Some(match current {
            Some(current) if (target - current).abs() <= limit => {
                let error = (target - current) as f64;
                let slew = (error / SLEW_TAU_NS).clamp(-MAX_SLEW, MAX_SLEW);
                let slew_ns = if slew == 0.0 {
                    0
                } else {
                    (error / slew) as i64
                };
                Applied {
                    anchor: now,
                    base: current,
                    freq,
                    slew,
                    slew_ns,
                }
            }
            _ => {
                if let Some(current) = current {
                    s.steps += 1;
                    let step_ms = (target - current) as f64 / 1e6;
                    tracing::info!(step_ms, steps = s.steps, "clock stepped");
                }
                Applied {
                    anchor: now,
                    base: target,
                    freq,
                    slew: 0.0,
                    slew_ns: 0,
                }
            }
        });
        Some(estimate)
    }

    /// How long to wait before the next exchange: eight a second until the exchanges kept
    /// span three minutes (after a start, or an outage longer than the estimator keeps
    /// them), two a second until six, then one a second. Many quick exchanges at first
    /// find the quiet moments of a jittery link and measure the drift soon (simulated in
    /// `protocol/src/clock/tests.rs`: four a second gave a p99 spread of 0.66 ms between
    /// three nodes at 190 s, eight 0.43 ms); they cost about 20 kbit/s for those three
    /// minutes. A link back after a short cut keeps its history and its pace.
    pub fn exchange_interval_ms(&self) -> u64 {
        match self.lock().estimator.span_ns() / 1_000_000_000 {
            0..180 => 125,
            180..360 => 500,
            _ => 1_000,
        }
    }

    pub fn estimate(&self) -> Option<ClockEstimate> {
        self.lock().estimate
    }

    /// What to save, once the clock has been estimated.
    pub fn saved(&self) -> Option<SavedClock> {
        let (s, now) = self.now_locked();
        s.estimate?;
        let a = s.applied?;
        Some(SavedClock {
            offset_ns: a.at(now),
            at_ns: Some(now),
            drift_ppm: a.freq * 1e6,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sync> {
        self.sync.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::time::TestClock;

    const MS: i64 = 1_000_000;
    const T0: i64 = 1_000_000_000_000;

    /// An exchange the controller answers at once, `offset` ahead, `up` and `down` ms on
    /// the wire, ending now (node time `t3`).
    fn sample(t3: i64, offset: i64, up: i64, down: i64) -> SyncSample {
        let t0 = t3 - (up + down) * MS;
        let t1 = t0 + up * MS + offset;
        SyncSample { t0, t1, t2: t1, t3 }
    }

    #[test]
    fn knobs_move_the_local_clock() {
        let host = TestClock::new(T0);
        let c = NodeClock::new(host.clone(), 500.0, 1000.0, None);
        assert_eq!(c.local_ns() - host.now_ns(), 500_000_000);
        // 1000 ppm: a second of host time is a millisecond more on the node.
        host.advance_ms(1000);
        assert_eq!(c.local_ns() - host.now_ns(), 501_000_000);
    }

    #[test]
    fn the_first_estimate_is_stepped_to_then_errors_are_slewed_not_jumped() {
        let host = TestClock::new(T0);
        let c = NodeClock::new(host.clone(), 0.0, 0.0, None);
        assert_eq!(c.offset_ns(), 0);
        c.add_sample(sample(c.local_ns(), 2_000 * MS, 40, 40));
        assert_eq!(c.offset_ns(), 2_000 * MS);
        // An exchange 1 ms later says 1.5 ms more, with the drift not yet measured: within
        // the limit, so slewed: over about 10 s, never faster than 500 ppm.
        host.advance_ms(1000);
        c.add_sample(sample(c.local_ns(), 2_000 * MS + 1_500_000, 30, 30));
        let target = c.estimate().unwrap().offset_ns;
        assert!(target > 2_000 * MS, "{target}");
        let mut last = c.offset_ns();
        assert_eq!(last, 2_000 * MS);
        for _ in 0..200 {
            host.advance_ms(100);
            let now = c.offset_ns();
            assert!(now - last <= 50_000, "{} ns in 100 ms", now - last);
            assert!(now >= last);
            last = now;
        }
        assert!((last - target).abs() <= 1, "{last} against {target}");
        // Far off (a clock stepped while the link was down): stepped.
        c.add_sample(sample(c.local_ns(), 1_000 * MS, 1, 1));
        assert_eq!(c.offset_ns(), c.estimate().unwrap().offset_ns);
    }

    #[test]
    fn a_host_clock_set_an_hour_either_way_leaves_the_fleet_time_unbroken() {
        let host = TestClock::new(T0);
        let c = NodeClock::new(host.clone(), 0.0, 0.0, None);
        for i in 0..20 {
            host.advance_ms(125);
            c.add_sample(sample(c.local_ns(), 700 * MS, 20 + i % 3, 20));
        }
        let mut expect = c.controller_ns();
        let mut set = 0;
        for hour in [3_600_000 * MS, -2 * 3_600_000 * MS] {
            host.advance_ms(10);
            host.step_wall_ns(hour);
            set += hour;
            expect += 10 * MS;
            assert_eq!(c.controller_ns(), expect);
            // Exchanges after the step agree with the ones before it: nothing moves.
            host.advance_ms(990);
            expect += 990 * MS;
            c.add_sample(sample(c.local_ns(), 700 * MS - set, 20, 20));
            assert!((c.controller_ns() - expect).abs() < 1_000);
            // An exchange stamped before the step is stale and left out.
            let kept = c.estimate();
            assert_eq!(
                c.add_sample(sample(c.local_ns() - hour, 700 * MS, 20, 20)),
                kept
            );
            assert!((c.controller_ns() - expect).abs() < 1_000);
        }
        // The knob does the same to a running node, once, `after_s` in.
        let host = TestClock::new(T0);
        let c = NodeClock::new(host.clone(), 0.0, 0.0, None).set_later(5.0, 3_600_000.0);
        c.add_sample(sample(c.local_ns(), 700 * MS, 20, 20));
        let start = c.controller_ns();
        host.advance_ms(4_000);
        assert_eq!(c.local_ns(), T0 + 4_000 * MS);
        host.advance_ms(2_000);
        assert_eq!(c.local_ns(), T0 + 6_000 * MS + 3_600_000 * MS);
        assert_eq!(c.controller_ns(), start + 6_000 * MS);
        // Never measured: the host clock is all there is, and a step of it is followed.
        let host = TestClock::new(T0);
        let c = NodeClock::new(host.clone(), 0.0, 0.0, None);
        let _ = c.controller_ns();
        host.step_wall_ns(3_600_000 * MS);
        assert_eq!(c.controller_ns(), T0 + 3_600_000 * MS);
    }

    #[test]
    fn a_saved_clock_is_carried_forward_at_its_drift() {
        let host = TestClock::new(T0);
        let saved = SavedClock {
            offset_ns: 250 * MS,
            at_ns: Some(T0 - 100_000 * MS),
            drift_ppm: -20.0,
        };
        let c = NodeClock::new(host.clone(), 0.0, 0.0, Some(saved));
        // 100 s since the save at -20 ppm: 2 ms less.
        assert_eq!(c.offset_ns(), 248 * MS);
        assert!(
            c.saved().is_none(),
            "nothing estimated yet, nothing new to save"
        );
        // A save from a clock that was far in the future of this one is taken as it is.
        let odd = SavedClock {
            at_ns: Some(T0 + 1_000_000 * MS),
            ..saved
        };
        assert_eq!(
            NodeClock::new(host, 0.0, 0.0, Some(odd)).offset_ns(),
            250 * MS
        );
    }
}
