//! One job on air: its segments rendered in turn into blocks of the output's format
//! (items decoded, silences, the test tone, a live session, a relay), its drift
//! correction, and the play log entry it ends in.

use protocol::link::{PlayLogEntry, PlayOutcome};

use super::{
    Job, PlayKey, STEER_START_NS, STEER_STOP_NS, Segment, TONE_AMPLITUDE, TONE_HZ, to_time,
};
use crate::agent::journal;
use crate::agent::live::LiveRenderer;
use crate::agent::relay::RelayRenderer;
use crate::output::AudioFormat;
use crate::player::{ItemRenderer, Loudness};
use audio::decode::Decoder;
use audio::dsp::volume_to_amplitude;

/// A job on air.
pub(super) struct Active {
    pub(super) job: Job,
    pub(super) log_id: String,
    pub(super) started_ns: i64,
    pub(super) next_segment: usize,
    pub(super) renderer: Option<(i64, ItemRenderer)>,
    pub(super) silence_left: u64,
    pub(super) tone_left: u64,
    pub(super) tone_phase: f32,
    pub(super) leftover: Vec<f32>,
    pub(super) frames: u64,
    pub(super) problems: Vec<String>,
    pub(super) content_id: Option<i64>,
    /// Drift correction under way: 1 dropping frames, -1 repeating, 0 none.
    pub(super) steering: i8,
    /// A live job's renderer (its one segment is the session's audio).
    pub(super) live: Option<LiveRenderer>,
    /// A relay on air, and the frames of its span still to play.
    pub(super) relay: Option<(RelayRenderer, u64)>,
    /// What a completed play's log should still say (a relay's share played).
    pub(super) notes: Vec<String>,
}

impl Active {
    pub(super) fn new(job: Job, started_ns: i64) -> Self {
        Active {
            job,
            log_id: journal::new_id(),
            started_ns,
            next_segment: 0,
            renderer: None,
            silence_left: 0,
            tone_left: 0,
            tone_phase: 0.0,
            leftover: Vec::new(),
            frames: 0,
            problems: Vec::new(),
            content_id: None,
            steering: 0,
            live: None,
            relay: None,
            notes: Vec::new(),
        }
    }

    /// Whether the next block should lose (1) or repeat (-1) a frame: compares when the
    /// job's next frame will leave (`t_next`, controller clock) with when it should.
    pub(super) fn steer(&mut self, t_next: i64, rate: i64) -> i8 {
        let due = self.started_ns + (self.frames as i128 * 1_000_000_000 / rate as i128) as i64;
        let error = t_next - due;
        if error.abs() >= STEER_START_NS {
            self.steering = if error > 0 { 1 } else { -1 };
        } else if error.abs() < STEER_STOP_NS {
            self.steering = 0;
        }
        self.steering
    }

    /// Appends up to `want` samples of the job to `buf`; false once the job has no more.
    pub(super) fn pull(
        &mut self,
        buf: &mut Vec<f32>,
        want: usize,
        format: AudioFormat,
        volume: u8,
    ) -> bool {
        let channels = usize::from(format.channels);
        let start = buf.len();
        while buf.len() - start < want {
            // A live job's audio comes from its renderer, not from here.
            if self.live.is_some() {
                break;
            }
            let need = want - (buf.len() - start);
            if !self.leftover.is_empty() {
                let n = need.min(self.leftover.len());
                buf.extend(self.leftover.drain(..n));
                continue;
            }
            if self.silence_left > 0 {
                let n = (need / channels).min(self.silence_left as usize);
                buf.resize(buf.len() + n * channels, 0.0);
                self.silence_left -= n as u64;
                continue;
            }
            if let Some((relay, left)) = self.relay.as_mut() {
                if *left > 0 {
                    let n = (need / channels).min(*left as usize);
                    relay.fill(buf, n);
                    *left -= n as u64;
                    continue;
                }
                if let Some((relay, _)) = self.relay.take() {
                    let (share, text) = relay.summary(format.sample_rate);
                    match share < 0.5 {
                        true => self.problems.push(text),
                        false => self.notes.push(text),
                    }
                }
                continue;
            }
            if self.tone_left > 0 {
                let n = (need / channels).min(self.tone_left as usize);
                let step = TONE_HZ * std::f32::consts::TAU / format.sample_rate as f32;
                for _ in 0..n {
                    let s = self.tone_phase.sin() * TONE_AMPLITUDE;
                    self.tone_phase = (self.tone_phase + step) % std::f32::consts::TAU;
                    buf.extend(std::iter::repeat_n(s, channels));
                }
                self.tone_left -= n as u64;
                continue;
            }
            if let Some((content_id, r)) = self.renderer.as_mut() {
                match r.next_block() {
                    Ok(Some(block)) => {
                        self.leftover.extend_from_slice(block);
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => self.problems.push(format!("content {content_id}: {e}")),
                }
                self.renderer = None;
                continue;
            }
            if !self.next(format, volume) {
                break;
            }
        }
        self.frames += ((buf.len() - start) / channels) as u64;
        !(self.leftover.is_empty()
            && self.live.is_none()
            && self.relay.is_none()
            && self.silence_left == 0
            && self.tone_left == 0
            && self.renderer.is_none()
            && self.next_segment >= self.job.segments.len())
    }

    /// Moves to the next segment; false when there is none.
    pub(super) fn next(&mut self, format: AudioFormat, volume: u8) -> bool {
        let Some(seg) = self.job.segments.get(self.next_segment).cloned() else {
            return false;
        };
        self.next_segment += 1;
        let rate = u64::from(format.sample_rate);
        match seg {
            Segment::Silence { ms } => self.silence_left = ms * rate / 1000,
            Segment::Tone { ms } => self.tone_left = ms * rate / 1000,
            Segment::Live { session } => {
                self.live = Some(LiveRenderer::new(session, format, self.job.volume));
            }
            Segment::Relay {
                content_id,
                url,
                ms,
            } => {
                self.content_id = Some(content_id);
                let schedule_db = 20.0 * volume_to_amplitude(self.job.volume).max(1e-6).log10();
                let loudness = Loudness {
                    volume,
                    gain_db: schedule_db,
                };
                self.relay = Some((
                    RelayRenderer::start(url, format, loudness),
                    ms * rate / 1000,
                ));
            }
            Segment::Audio {
                content_id,
                sha256,
                path,
                gain_db,
            } => {
                self.content_id = Some(content_id);
                let Some(path) = path.filter(|p| p.is_file()) else {
                    self.problems.push(format!(
                        "content {content_id} ({sha256}) is not in the cache"
                    ));
                    return true;
                };
                let schedule_db = 20.0 * volume_to_amplitude(self.job.volume).max(1e-6).log10();
                let loudness = Loudness {
                    volume,
                    gain_db: gain_db + schedule_db,
                };
                match Decoder::open(&path).and_then(|d| ItemRenderer::new(d, format, loudness)) {
                    Ok(r) => self.renderer = Some((content_id, r)),
                    Err(e) => self.problems.push(format!("content {content_id}: {e}")),
                }
            }
        }
        true
    }

    pub(super) fn entry(
        self,
        outcome: PlayOutcome,
        end_ns: i64,
        reason: Option<String>,
    ) -> (PlayKey, PlayLogEntry) {
        let (outcome, reason) = match (outcome, self.problems.is_empty()) {
            (PlayOutcome::Completed, false) => {
                (PlayOutcome::Failed, Some(self.problems.join("; ")))
            }
            (o, _) => (
                o,
                reason
                    .or_else(|| (!self.problems.is_empty()).then(|| self.problems.join("; ")))
                    .or_else(|| (!self.notes.is_empty()).then(|| self.notes.join("; "))),
            ),
        };
        let played = !matches!(outcome, PlayOutcome::Skipped);
        let entry = PlayLogEntry {
            id: self.log_id,
            schedule_id: self.job.schedule_id,
            content_id: self.job.content_id,
            scheduled_at: self.job.scheduled_at_ns.map(to_time),
            started_at: played.then(|| to_time(self.started_ns)),
            ended_at: played.then(|| to_time(end_ns)),
            outcome,
            reason,
        };
        (self.job.key, entry)
    }
}
