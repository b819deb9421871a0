//! The playout thread: owns the output and keeps it running continuously, silence
//! included, so every frame has a known departure time. Jobs (a program to play from a
//! given instant on the controller's clock) are queued by the scheduler; when one is due
//! the thread computes how many frames of lead-in separate the next frame from the job's
//! start — from the output's own report of when the next frame leaves — writes them, and
//! starts the job exactly there, cutting whatever played before (a later job in the
//! resolved plan is a higher priority or the next slot: the resolver already decided).
//!
//! Everything that happens to a job ends in one play log entry sent to the agent.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::link::{NowPlaying, PlayLogEntry, PlayOutcome};

mod active;
mod pacer;

use super::amp::Amplifier;
use super::clock::NodeClock;
use super::live::LiveFeed;
use crate::output::{AudioFormat, Sink};
use active::Active;

/// Frames per loop turn: 10 ms, the granularity of cuts.
const BLOCK_MS: i64 = 10;
/// A job cut this close to its nominal end is logged as completed.
const END_SLACK_MS: u64 = 100;
/// A job whose start has passed by more than this is started late (and logged so).
const LATE_MS: i64 = 50;
/// A job that reaches the output up to this late joins its neighbours where they are
/// (its first moments are skipped) rather than echo them from its beginning; later than
/// this (the scheduler's own limit is a second) it plays whole from its beginning.
const JOIN_MS: i64 = 1_000;
/// The test tone: 1 kHz at -12 dBFS.
const TONE_HZ: f32 = 1000.0;
const TONE_AMPLITUDE: f32 = 0.25;

/// Identifies one attempt of one occurrence (commands use schedule id 0 and their id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlayKey {
    pub schedule_id: i64,
    pub scheduled_at_ns: i64,
    pub attempt: u32,
}

#[derive(Debug, Clone)]
pub enum Segment {
    Audio {
        content_id: i64,
        sha256: String,
        /// Where the cache keeps it (checked when its turn comes); `None`: a bad hash.
        path: Option<PathBuf>,
        gain_db: f32,
    },
    Silence {
        ms: u64,
    },
    Tone {
        ms: u64,
    },
    /// A live session's audio, from the link, for as long as the job runs.
    Live {
        session: u32,
    },
    /// A relayed stream (tiếp sóng), opened by the node, for `ms`.
    Relay {
        content_id: i64,
        url: String,
        ms: u64,
    },
}

#[derive(Debug, Clone)]
pub struct Job {
    pub key: PlayKey,
    pub schedule_id: Option<i64>,
    pub scheduled_at_ns: Option<i64>,
    /// When the first sample should leave, controller clock, ns.
    pub start_ns: i64,
    /// Latest acceptable start (the schedule's window).
    pub deadline_ns: i64,
    pub segments: Vec<Segment>,
    /// The program's main item, for the log (the chime is not what was announced).
    pub content_id: Option<i64>,
    /// The schedule's volume (0-100), on top of the node's.
    pub volume: u8,
    /// The program's air time as the schedule says (0: unknown).
    pub nominal_ms: u64,
    /// An emergency: plays at the node's emergency volume, whatever its own.
    pub emergency: bool,
}

pub enum PlayoutCmd {
    Queue(Job),
    /// Forget queued jobs that have not started (the plan changed).
    ClearPending,
    /// Stop the current play.
    Stop,
    /// Stop the current play if it is this schedule's (withdrawn or stopped by staff; a
    /// live session that ended is `completed`).
    Cut {
        schedule_id: i64,
        reason: String,
        completed: bool,
    },
    SetVolume(u8),
    Shutdown,
}

pub enum PlayoutEvent {
    /// The job is committed to the output; its first sample leaves at this instant
    /// (controller clock, ns).
    Started(PlayKey, i64, PlayLogEntry),
    Ended(PlayKey, PlayLogEntry),
}

/// What the heartbeat reports about the output.
#[derive(Debug, Clone, Default)]
pub struct PlayoutStatus {
    pub playing: Option<NowPlaying>,
    pub underruns: u64,
    /// Live frames concealed, and dropped for coming late.
    pub live_concealed: u64,
    pub live_late: u64,
    pub output_ok: bool,
    pub last_error: Option<String>,
    pub volume: u8,
}

pub struct PlayoutHandle {
    pub tx: Sender<PlayoutCmd>,
    pub status: Arc<Mutex<PlayoutStatus>>,
    pub thread: std::thread::JoinHandle<()>,
}

/// Opens the output (again, after it failed): a sound card, a simulated card, or a test's.
pub type SinkOpener = Box<dyn FnMut() -> Result<Box<dyn Sink>, crate::Error> + Send>;

pub struct PlayoutConfig {
    pub open: SinkOpener,
    /// The output as the technician named it, for messages.
    pub output_name: String,
    pub volume: u8,
    /// Emergencies play at this volume (0-100) instead of the node's.
    pub emergency_volume: u8,
    pub amp: Amplifier,
    /// Live audio as the link brings it.
    pub live: Arc<LiveFeed>,
}

fn to_time(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

/// Starts the playout thread; it runs until [`PlayoutCmd::Shutdown`] (or every sender is
/// gone) and drops `events` when it ends, so the receiver sees every event it sent.
pub fn spawn(
    cfg: PlayoutConfig,
    clock: Arc<NodeClock>,
    events: tokio::sync::mpsc::UnboundedSender<PlayoutEvent>,
) -> std::io::Result<PlayoutHandle> {
    let (tx, rx) = std::sync::mpsc::channel();
    let status = Arc::new(Mutex::new(PlayoutStatus {
        volume: cfg.volume,
        ..PlayoutStatus::default()
    }));
    let st = status.clone();
    let thread = std::thread::Builder::new()
        .name("playout".into())
        .spawn(move || {
            Playout {
                cfg,
                clock,
                events,
                rx,
                status: st,
                pending: Vec::new(),
                current: None,
            }
            .run()
        })?;
    Ok(PlayoutHandle { tx, status, thread })
}

struct Playout {
    cfg: PlayoutConfig,
    clock: Arc<NodeClock>,
    events: tokio::sync::mpsc::UnboundedSender<PlayoutEvent>,
    rx: Receiver<PlayoutCmd>,
    status: Arc<Mutex<PlayoutStatus>>,
    pending: Vec<Job>,
    current: Option<Active>,
}

impl Playout {
    fn status(&self) -> std::sync::MutexGuard<'_, PlayoutStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(mut self) {
        loop {
            let mut sink = match (self.cfg.open)() {
                Ok(s) => s,
                Err(e) => {
                    let msg = self.output_failed(e);
                    if self.idle_without_output(&msg) {
                        return;
                    }
                    continue;
                }
            };
            self.status().output_ok = true;
            let result = self.play_on(sink.as_mut());
            let shutdown = matches!(result, Ok(true));
            if let Err(e) = result {
                let msg = self.output_failed(e);
                self.end_current(PlayOutcome::Failed, &msg);
            }
            self.cfg.amp.set(false);
            if shutdown {
                let _ = sink.finish();
                return;
            }
        }
    }

    /// Records a failing output for the heartbeat; returns the message.
    fn output_failed(&self, e: crate::Error) -> String {
        let msg = format!("{}: {e}", self.cfg.output_name);
        tracing::error!("{msg}");
        let mut st = self.status();
        st.output_ok = false;
        st.last_error = Some(msg.clone());
        msg
    }

    /// No output: fail jobs as they fall due, retry the output after a while. Returns
    /// true on shutdown.
    fn idle_without_output(&mut self, why: &str) -> bool {
        for _ in 0..50 {
            if self.commands() {
                return true;
            }
            let now = self.clock.controller_ns();
            while self.pending.first().is_some_and(|j| j.start_ns <= now) {
                let job = self.pending.remove(0);
                self.end(
                    Active::new(job, now),
                    PlayOutcome::Failed,
                    now,
                    Some(why.into()),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Handles queued commands; true on shutdown.
    fn commands(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(PlayoutCmd::Queue(job)) => {
                    let at = self.pending.partition_point(|j| j.start_ns <= job.start_ns);
                    self.pending.insert(at, job);
                }
                Ok(PlayoutCmd::ClearPending) => self.pending.clear(),
                Ok(PlayoutCmd::Stop) => {
                    self.end_current(PlayOutcome::Interrupted, "stopped by a technician")
                }
                Ok(PlayoutCmd::Cut {
                    schedule_id,
                    reason,
                    completed,
                }) => {
                    let on_air = self.current.as_ref().and_then(|c| c.job.schedule_id);
                    if on_air == Some(schedule_id) {
                        let outcome = match completed {
                            true => PlayOutcome::Completed,
                            false => PlayOutcome::Interrupted,
                        };
                        self.end_current(outcome, &reason);
                    }
                }
                Ok(PlayoutCmd::SetVolume(v)) => self.status().volume = v,
                Ok(PlayoutCmd::Shutdown) | Err(TryRecvError::Disconnected) => return true,
                Err(TryRecvError::Empty) => return false,
            }
        }
    }

    /// Runs the output until shutdown (`Ok(true)`) or an output error.
    fn play_on(&mut self, sink: &mut dyn Sink) -> Result<bool, crate::Error> {
        let format = sink.format();
        let rate = i64::from(format.sample_rate);
        let block = (rate * BLOCK_MS / 1000) as usize;
        let mut buf: Vec<f32> = Vec::new();
        let mut steer = pacer::Steer::default();
        // Frames written since the output opened.
        let mut written: u64 = 0;
        loop {
            if self.commands() {
                self.end_current(PlayOutcome::Interrupted, "the node stopped");
                return Ok(true);
            }
            let t_next = self.clock.controller_ns() + sink.next_frame_leaves_in_ns().unwrap_or(0);
            let frames_ns = |frames: u64| frames as i64 * 1_000_000_000 / rate;
            let due = self
                .pending
                .first()
                .is_some_and(|j| j.start_ns < t_next + frames_ns(block as u64));
            if due {
                let job = self.pending.remove(0);
                written += self.start(job, sink, &mut buf, t_next)?;
                steer.restart();
                continue;
            }
            let volume = self.volume_for(self.current.as_ref().map(|c| &c.job));
            match self.current.as_mut() {
                Some(cur) => cur.pace(t_next, format, &mut steer, volume),
                None => steer.idle(t_next, written, format.sample_rate),
            }
            buf.clear();
            let (job_frames, more) = self.render_at(&mut buf, block, format, volume);
            sink.write(&buf)?;
            written += block as u64;
            if !more {
                if let Some(cur) = self.current.take() {
                    let end = t_next + frames_ns(job_frames as u64);
                    self.end(cur, PlayOutcome::Completed, end, None);
                }
            }
            self.update_status(sink, rate);
            let soon = self
                .pending
                .first()
                .is_some_and(|j| j.start_ns - t_next < self.cfg.amp.lead_ns());
            self.cfg.amp.set(self.current.is_some() || soon);
        }
    }

    /// Starts `job` on its exact frame: writes the lead-in (the play on air, or silence)
    /// up to the job's start, ends the play on air there, and puts the job on air — or
    /// logs it skipped when its window closed before it could start.
    /// Returns the frames written.
    fn start(
        &mut self,
        job: Job,
        sink: &mut dyn Sink,
        buf: &mut Vec<f32>,
        t_next: i64,
    ) -> Result<u64, crate::Error> {
        let format = sink.format();
        let rate = i64::from(format.sample_rate);
        let frames_ns = |frames: u64| frames as i64 * 1_000_000_000 / rate;
        let lead = ((job.start_ns - t_next).max(0) as i128 * rate as i128 / 1_000_000_000) as u64;
        buf.clear();
        let (job_frames, more) = self.render(buf, lead as usize, format);
        sink.write(buf)?;
        let start_ns = t_next + frames_ns(lead);
        if let Some(cur) = self.current.take() {
            // Ending within the lead-in, or cut in its last moments (decoded lengths
            // differ from the nominal by a few ms): it played whole.
            let played_ms = (cur.frames as i64 * 1000 / rate) as u64;
            let nominal = cur.job.nominal_ms;
            if !more || (nominal > 0 && played_ms + END_SLACK_MS >= nominal) {
                let end = t_next + frames_ns(job_frames as u64);
                self.end(cur, PlayOutcome::Completed, end, None);
            } else {
                self.end(cur, PlayOutcome::Interrupted, start_ns, None);
            }
        }
        if start_ns > job.deadline_ns {
            let a = Active::new(job, start_ns);
            let reason = Some("its window closed before it could start".to_string());
            self.end(a, PlayOutcome::Skipped, start_ns, reason);
            return Ok(lead);
        }
        let behind = start_ns - job.start_ns;
        if behind > LATE_MS * 1_000_000 {
            tracing::warn!(late_ms = behind / 1_000_000, "starting late");
        }
        let mut active = Active::new(job, start_ns);
        let _ = self.events.send(PlayoutEvent::Started(
            active.job.key.clone(),
            start_ns,
            active.begun_entry(),
        ));
        if behind > 0 && behind <= JOIN_MS * 1_000_000 {
            // In step with the nodes that started on time: where they are now.
            let skip = (behind as i128 * rate as i128 / 1_000_000_000) as usize;
            let volume = self.volume_for(Some(&active.job));
            let mut scratch = Vec::with_capacity(skip * usize::from(format.channels));
            active.pull(
                &mut scratch,
                skip * usize::from(format.channels),
                format,
                volume,
            );
            active.started_ns = active.job.start_ns;
            tracing::info!(skipped_ms = behind / 1_000_000, "joined in step");
        }
        self.current = Some(active);
        self.cfg.amp.set(true);
        Ok(lead)
    }

    /// Fills `buf` with `frames` frames of the current job (silence after its end, or with
    /// none). Returns the job's frames among them and whether it has audio after these.
    fn render(&mut self, buf: &mut Vec<f32>, frames: usize, format: AudioFormat) -> (usize, bool) {
        let volume = self.volume_for(self.current.as_ref().map(|c| &c.job));
        self.render_at(buf, frames, format, volume)
    }

    /// [`Playout::render`] at a volume already looked up.
    fn render_at(
        &mut self,
        buf: &mut Vec<f32>,
        frames: usize,
        format: AudioFormat,
        volume: u8,
    ) -> (usize, bool) {
        let want = frames * usize::from(format.channels);
        let before = buf.len();
        let rendered = match self.current.as_mut() {
            Some(cur) => cur.render(buf, frames, format, volume, &self.cfg.live),
            None => (0, false),
        };
        buf.resize(before + want, 0.0);
        rendered
    }

    /// The volume a job plays at: the node's, or its emergency volume for an emergency.
    fn volume_for(&self, job: Option<&Job>) -> u8 {
        match job.is_some_and(|j| j.emergency) {
            true => self.cfg.emergency_volume,
            false => self.status().volume,
        }
    }

    fn update_status(&self, sink: &dyn Sink, rate: i64) {
        let mut st = self.status();
        st.underruns = sink.stats().underruns;
        st.live_concealed = self
            .cfg
            .live
            .concealed
            .load(std::sync::atomic::Ordering::Relaxed);
        st.live_late = self
            .cfg
            .live
            .late
            .load(std::sync::atomic::Ordering::Relaxed);
        st.output_ok = true;
        st.playing = self.current.as_ref().map(|c| NowPlaying {
            schedule_id: c.job.schedule_id,
            content_id: c.content_id,
            position_ms: (c.frames as i64 * 1000 / rate) as u64,
        });
    }

    /// Ends the play on air now, if there is one.
    fn end_current(&mut self, outcome: PlayOutcome, reason: &str) {
        if let Some(cur) = self.current.take() {
            let now = self.clock.controller_ns();
            self.end(cur, outcome, now, Some(reason.into()));
        }
    }

    fn end(&mut self, cur: Active, outcome: PlayOutcome, end_ns: i64, reason: Option<String>) {
        let (key, entry) = cur.entry(outcome, end_ns, reason);
        tracing::info!(schedule = ?entry.schedule_id, outcome = entry.outcome.as_str(), reason = ?entry.reason, "play ended");
        let _ = self.events.send(PlayoutEvent::Ended(key, entry));
    }
}
