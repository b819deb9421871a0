//! One job on air: its segments rendered in turn into blocks of the output's format
//! (items decoded, silences, the test tone, a live session, a relay), kept on the
//! controller's clock by its [`Pacer`], and the play log entry it ends in.

use protocol::link::{PlayLogEntry, PlayOutcome};

use super::pacer::{JUMP_NS, Pacer, Steer};
use super::{Job, PlayKey, Segment, TONE_AMPLITUDE, TONE_HZ, to_time};
use crate::agent::journal;
use crate::agent::live::{LiveFeed, LiveRenderer};
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
    /// Resamples the job's audio to keep it on time (made at its first block).
    pacer: Option<Pacer>,
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
            pacer: None,
            live: None,
            relay: None,
            notes: Vec::new(),
        }
    }

    /// Keeps the job on the controller's clock: compares when its next frame will leave
    /// (`t_next`) with when it should, and sets the pacer's speed; far off, jumps.
    pub(super) fn pace(&mut self, t_next: i64, format: AudioFormat, steer: &mut Steer, volume: u8) {
        let rate = f64::from(format.sample_rate);
        let position = self
            .pacer
            .as_ref()
            .map_or(self.frames as f64, Pacer::position);
        let due = self.started_ns + (position * 1e9 / rate) as i64;
        let error = t_next - due;
        if error.abs() <= JUMP_NS {
            let speed = steer.update(error, t_next);
            if let Some(p) = self.pacer.as_mut() {
                p.set_speed_ppm(speed);
            }
            return;
        }
        let frames = (error.unsigned_abs() as f64 * rate / 1e9) as usize;
        tracing::warn!(error_ms = error as f64 / 1e6, "play off its time: jumped");
        steer.restart();
        if error < 0 {
            // Early: silence until it is due.
            if let Some(p) = self.pacer.as_mut() {
                p.hold(frames);
            }
            return;
        }
        // Late: skip ahead, and start a pacer from there.
        let mut scratch = Vec::new();
        self.pull_frames(&mut scratch, frames, format, volume, None);
        self.pacer = None;
    }

    /// Appends `frames` frames of the job, paced, to `buf`. Returns how many of them carry
    /// the job's audio and whether it has more after them.
    pub(super) fn render(
        &mut self,
        buf: &mut Vec<f32>,
        frames: usize,
        format: AudioFormat,
        volume: u8,
        live: &LiveFeed,
    ) -> (usize, bool) {
        let channels = usize::from(format.channels);
        let pacer = match self.pacer.take() {
            Some(p) => Ok(p),
            None => Pacer::new(format.sample_rate, channels, self.frames),
        };
        let mut pacer = match pacer {
            Ok(p) => p,
            Err(e) => {
                self.problems.push(e.to_string());
                return (0, false);
            }
        };
        let mut pull = |input: &mut Vec<f32>, want: usize| {
            self.pull_frames(input, want, format, volume, Some(live))
        };
        let rendered = pacer.render(buf, frames, &mut pull);
        match rendered {
            Ok(r) => {
                self.pacer = Some(pacer);
                r
            }
            Err(e) => {
                self.problems.push(e.to_string());
                (0, false)
            }
        }
    }

    /// Appends up to `frames` frames of the job's own audio (unpaced) to `buf`; false once
    /// the job has no more. A live job's audio is the session's, taken as due on the job's
    /// timeline (`live`: `None` when skipping).
    fn pull_frames(
        &mut self,
        buf: &mut Vec<f32>,
        frames: usize,
        format: AudioFormat,
        volume: u8,
        live: Option<&LiveFeed>,
    ) -> bool {
        let channels = usize::from(format.channels);
        let start = buf.len();
        if self.live.is_none() {
            let more = self.pull(buf, frames * channels, format, volume);
            if self.live.is_none() {
                return more;
            }
        }
        // The rest from the live session (what came before it, e.g. a chime, is in).
        let want = frames - ((buf.len() - start) / channels).min(frames);
        let at = self.started_ns
            + (self.frames as i128 * 1_000_000_000 / i128::from(format.sample_rate)) as i64;
        if let (Some(renderer), Some(feed)) = (self.live.as_mut(), live) {
            buf.extend_from_slice(renderer.render(feed, at, want, format.sample_rate, volume));
        }
        self.frames += want as u64;
        true
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

    /// The entry as it stands if the node dies during the play (the journal keeps it
    /// until the play's end replaces it).
    pub(super) fn begun_entry(&self) -> PlayLogEntry {
        PlayLogEntry {
            id: self.log_id.clone(),
            schedule_id: self.job.schedule_id,
            content_id: self.job.content_id,
            scheduled_at: self.job.scheduled_at_ns.map(to_time),
            started_at: Some(to_time(self.started_ns)),
            ended_at: None,
            outcome: PlayOutcome::Interrupted,
            reason: Some(journal::CUT_SHORT.into()),
        }
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
