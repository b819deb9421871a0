//! What the agent's tests share: a sink that moves the test clock, desired states, and an
//! owner task on a temporary state directory.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use protocol::desired::DesiredState;
use protocol::schedule::{Priority, Program, ProgramItem, Rule, RuleKind, ScheduleSpec};
use protocol::time::TestClock;

use crate::agent::amp::{AmpConfig, Amplifier};
use crate::agent::clock::NodeClock;
use crate::agent::playout::{self, PlayoutConfig, PlayoutEvent, PlayoutHandle};
use crate::output::{AudioFormat, Sink};

/// 2026-01-01T00:00:00Z.
pub const T0: i64 = 1_767_225_600_000_000_000;
pub const RATE: u32 = 48_000;
pub const MS: i64 = 1_000_000;

/// What the test sink saw.
#[derive(Default)]
pub struct Seen {
    pub frames: AtomicU64,
    /// Frame indexes where sound began after silence.
    pub onsets: Mutex<Vec<u64>>,
    pub sounding: AtomicBool,
    /// Writes wait until this is set (so a test queues its jobs first).
    pub go: AtomicBool,
    /// Writes also wait once this many frames are played (0: never), until it is lifted:
    /// the card stops itself at a point of its timeline, however fast it runs.
    pub run_until: AtomicU64,
}

/// A clocked mono card whose next frame always leaves now, and whose every write moves
/// the test clock by the frames written: time is exactly the frames played.
pub struct TestSink {
    pub clock: Arc<TestClock>,
    pub seen: Arc<Seen>,
}

impl Sink for TestSink {
    fn format(&self) -> AudioFormat {
        AudioFormat {
            sample_rate: RATE,
            channels: 1,
        }
    }

    fn write(&mut self, samples: &[f32]) -> Result<(), crate::Error> {
        let held = |seen: &Seen| {
            let until = seen.run_until.load(Ordering::SeqCst);
            !seen.go.load(Ordering::SeqCst)
                || (until != 0 && seen.frames.load(Ordering::SeqCst) >= until)
        };
        while held(&self.seen) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let start = self.seen.frames.load(Ordering::SeqCst);
        for (i, s) in samples.iter().enumerate() {
            // Sound: above -40 dBFS (the playout's resampling filter rings faintly, under
            // -50 dBFS, around a hard edge such as the test tone's start).
            let on = s.abs() > 1e-2;
            if on && !self.seen.sounding.load(Ordering::SeqCst) {
                self.seen.onsets.lock().unwrap().push(start + i as u64);
            }
            // A run of 48 zeros (1 ms) ends a sound: a tone crosses zero, it never rests.
            if on {
                self.seen.sounding.store(true, Ordering::SeqCst);
            } else if i >= 48 && samples[i - 48..=i].iter().all(|s| s.abs() <= 1e-2) {
                self.seen.sounding.store(false, Ordering::SeqCst);
            }
        }
        let n = samples.len() as u64;
        self.seen.frames.fetch_add(n, Ordering::SeqCst);
        self.clock
            .advance_ns((n as i128 * 1_000_000_000 / i128::from(RATE)) as i64);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), crate::Error> {
        Ok(())
    }

    fn next_frame_leaves_in_ns(&self) -> Option<i64> {
        Some(0)
    }
}

/// A playout thread on a test sink; its clock starts at [`T0`].
pub struct TestPlayout {
    pub host: Arc<TestClock>,
    pub clock: Arc<NodeClock>,
    pub seen: Arc<Seen>,
    pub handle: PlayoutHandle,
    pub events: tokio::sync::mpsc::UnboundedReceiver<PlayoutEvent>,
}

pub fn playout() -> TestPlayout {
    let host = TestClock::new(T0);
    let clock = Arc::new(NodeClock::new(host.clone(), 0.0, 0.0, None));
    let seen = Arc::new(Seen::default());
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let (h, s) = (host.clone(), seen.clone());
    let cfg = PlayoutConfig {
        open: Box::new(move || {
            Ok(Box::new(TestSink {
                clock: h.clone(),
                seen: s.clone(),
            }) as Box<dyn Sink>)
        }),
        output_name: "test".into(),
        volume: 100,
        emergency_volume: 100,
        amp: Amplifier::new(AmpConfig::default()),
        live: Default::default(),
    };
    let handle = playout::spawn(cfg, clock.clone(), tx).unwrap();
    TestPlayout {
        host,
        clock,
        seen,
        handle,
        events,
    }
}

pub fn item(content_id: i64, sha: &str, ms: u64) -> ProgramItem {
    ProgramItem {
        content_id,
        sha256: Some(sha.into()),
        url: None,
        live: None,
        size: 0,
        duration_ms: ms,
        gain_db: 0.0,
        gap_after_ms: 0,
    }
}

/// A schedule playing one item once at `at_ns`.
pub fn once(id: i64, priority: Priority, at_ns: i64, ms: u64) -> ScheduleSpec {
    ScheduleSpec {
        id,
        title: format!("s{id}"),
        priority,
        rule: Rule::new(RuleKind::Once(DateTime::from_timestamp_nanos(at_ns))),
        program: Program {
            items: vec![item(id, &format!("{id:064x}"), ms)],
            repeat: 1,
            pause_ms: 0,
            chime: None,
        },
        volume: 100,
        max_delay_ms: None,
        stopped_at: None,
    }
}

pub fn desired(node_id: i64, version: &str, schedules: Vec<ScheduleSpec>) -> DesiredState {
    DesiredState {
        version: version.into(),
        node_id,
        tz: "Asia/Ho_Chi_Minh".into(),
        quiet_hours: Default::default(),
        schedules,
    }
}
