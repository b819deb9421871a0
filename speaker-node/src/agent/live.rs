//! Live audio on the node: the link drops each session's Opus frames into the
//! [`LiveFeed`] as they come; the playout's [`LiveRenderer`] takes them out when they are
//! due on the controller's clock, decodes them, and conceals what is missing (Opus packet
//! loss concealment) so the stream never stalls and never drifts behind. Frames that come
//! after their time are dropped and counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use audio::AudioFormat;
use audio::dsp::{StreamResampler, volume_to_amplitude};
use audio::voice::{self, VoiceDecoder};
use protocol::live::LivePacket;

/// Frames older than this (behind the controller's clock) are forgotten.
const KEEP_BEHIND_NS: i64 = 2_000_000_000;
/// Frames further ahead than this are refused (a broken stamp).
const MAX_AHEAD_NS: i64 = 10_000_000_000;
/// Frames a session may hold (10 s).
const MAX_FRAMES: usize = 500;
/// Lost frames in a row that are concealed; after them, silence (the source paused or
/// ended, or the link is down: concealment would only drone on).
const CONCEAL_MAX: u32 = 5;

/// One session's frames: sequence number -> (due instant, Opus packet).
type Frames = BTreeMap<u32, (i64, Vec<u8>)>;

/// Frames in hand, per session.
#[derive(Default)]
pub struct LiveFeed {
    sessions: Mutex<HashMap<u32, Frames>>,
    /// Counters for the heartbeat.
    pub concealed: AtomicU64,
    pub late: AtomicU64,
}

impl LiveFeed {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Frames>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a packet from the link (`now`: the controller's clock).
    pub fn push(&self, packet: LivePacket, now: i64) {
        let mut sessions = self.lock();
        // Sessions with nothing recent are over.
        sessions.retain(|_, frames| {
            frames
                .last_key_value()
                .is_some_and(|(_, (due, _))| *due > now - KEEP_BEHIND_NS)
        });
        let frames = sessions.entry(packet.session).or_default();
        for (i, f) in packet.frames.into_iter().enumerate() {
            let due = packet.play_at_ns + i as i64 * voice::FRAME_NS;
            if due < now {
                self.late.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if due > now + MAX_AHEAD_NS {
                continue;
            }
            frames.insert(packet.seq.wrapping_add(i as u32), (due, f));
        }
        while frames.len() > MAX_FRAMES {
            frames.pop_first();
        }
    }

    /// The frame covering `at`, or the next one if it is due within a frame, taken out;
    /// frames wholly before `at` are forgotten.
    fn take_due(&self, session: u32, at: i64) -> Option<(u32, i64, Vec<u8>)> {
        let mut sessions = self.lock();
        let frames = sessions.get_mut(&session)?;
        frames.retain(|_, (due, _)| *due + voice::FRAME_NS > at);
        let (&seq, (due, _)) = frames.first_key_value()?;
        if *due > at + voice::FRAME_NS {
            return None;
        }
        let (due, packet) = frames.remove(&seq)?;
        Some((seq, due, packet))
    }

    /// Whether frames of the session are waiting.
    fn has_any(&self, session: u32) -> bool {
        self.lock().get(&session).is_some_and(|f| !f.is_empty())
    }

    fn take(&self, session: u32, seq: u32) -> Option<(i64, Vec<u8>)> {
        self.lock().get_mut(&session)?.remove(&seq)
    }
}

/// Plays one live session in an output's format: the frame due at each instant.
pub struct LiveRenderer {
    session: u32,
    decoder: Option<VoiceDecoder>,
    /// 48 kHz mono samples decoded, starting at controller instant `pcm_at`.
    pcm: Vec<f32>,
    pcm_at: i64,
    /// The next frame expected (once started).
    next_seq: Option<u32>,
    /// Frames lost in a row.
    lost_run: u32,
    resampler: Option<StreamResampler>,
    out: Vec<f32>,
    channels: usize,
    gain: f32,
}

impl LiveRenderer {
    pub fn new(session: u32, format: AudioFormat, schedule_volume: u8) -> Self {
        let resampler = (format.sample_rate != voice::RATE)
            .then(|| StreamResampler::new(voice::RATE, format.sample_rate, 1).ok())
            .flatten();
        LiveRenderer {
            session,
            decoder: VoiceDecoder::new().ok(),
            pcm: Vec::new(),
            pcm_at: 0,
            next_seq: None,
            lost_run: 0,
            resampler,
            out: Vec::new(),
            channels: usize::from(format.channels.max(1)),
            gain: volume_to_amplitude(schedule_volume),
        }
    }

    /// `frames` frames for the output at the node's `volume`, the first leaving at `at`
    /// (controller clock).
    pub fn render(
        &mut self,
        feed: &LiveFeed,
        at: i64,
        frames: usize,
        rate: u32,
        volume: u8,
    ) -> &[f32] {
        let gain = self.gain * volume_to_amplitude(volume);
        let want48 = (frames as u64 * u64::from(voice::RATE)).div_ceil(u64::from(rate)) as usize;
        self.fill(feed, at, want48);
        let mono: Vec<f32> = self.pcm.drain(..want48.min(self.pcm.len())).collect();
        self.pcm_at += want48 as i64 * 1_000_000_000 / i64::from(voice::RATE);
        let mono = match self.resampler.as_mut() {
            Some(r) => r.push(&mono).map(<[f32]>::to_vec).unwrap_or_default(),
            None => mono,
        };
        self.out.clear();
        for i in 0..frames {
            let s = mono.get(i).copied().unwrap_or(0.0) * gain;
            self.out.extend(std::iter::repeat_n(s, self.channels));
        }
        &self.out
    }

    /// Decodes until `want` samples from `at` are in hand.
    fn fill(&mut self, feed: &LiveFeed, at: i64, want: usize) {
        let Some(decoder) = self.decoder.as_mut() else {
            self.pcm.resize(want, 0.0);
            return;
        };
        // Out of step with the clock by more than a frame (the start, a jump of the
        // source's timeline): start again from the frame due now.
        if self.next_seq.is_some() && (self.pcm_at - at).abs() > voice::FRAME_NS {
            self.next_seq = None;
            self.pcm.clear();
        }
        while self.pcm.len() < want {
            match self.next_seq {
                None => {
                    let Some((seq, due, packet)) = feed.take_due(self.session, at) else {
                        // Nothing due yet: silence until it is.
                        self.pcm.resize(want, 0.0);
                        self.pcm_at = at;
                        return;
                    };
                    let pcm = decoder
                        .decode(&packet)
                        .map(<[f32]>::to_vec)
                        .unwrap_or_default();
                    // Enter the frame where `at` falls in it.
                    let to_samples =
                        |ns: i64| (ns.max(0) * i64::from(voice::RATE) / 1_000_000_000) as usize;
                    self.pcm.clear();
                    self.pcm.resize(to_samples(due - at), 0.0);
                    self.pcm
                        .extend_from_slice(pcm.get(to_samples(at - due)..).unwrap_or_default());
                    self.pcm_at = at;
                    self.next_seq = Some(seq.wrapping_add(1));
                }
                Some(seq) => {
                    let decoded = feed
                        .take(self.session, seq)
                        .and_then(|(_, packet)| decoder.decode(&packet).ok().map(<[f32]>::to_vec));
                    match decoded {
                        Some(pcm) => {
                            self.lost_run = 0;
                            self.pcm.extend_from_slice(&pcm);
                        }
                        None if self.lost_run < CONCEAL_MAX => {
                            self.lost_run += 1;
                            feed.concealed.fetch_add(1, Ordering::Relaxed);
                            self.pcm.extend_from_slice(decoder.conceal());
                        }
                        None => {
                            // A long gap: silence, and pick up again at the frame due
                            // when audio comes back.
                            self.pcm.resize(self.pcm.len() + voice::FRAME, 0.0);
                            if feed.has_any(self.session) {
                                self.next_seq = None;
                                self.lost_run = 0;
                                continue;
                            }
                        }
                    }
                    self.next_seq = Some(seq.wrapping_add(1));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audio::voice::VoiceEncoder;

    const T0: i64 = 1_000_000_000_000;

    fn packets(frames: usize) -> Vec<Vec<u8>> {
        let mut enc = VoiceEncoder::new(voice::BITRATE).unwrap();
        (0..frames)
            .map(|n| {
                let f: Vec<f32> = (0..voice::FRAME)
                    .map(|i| ((n * voice::FRAME + i) as f32 * 0.0576).sin() * 0.5)
                    .collect();
                enc.encode(&f).unwrap().to_vec()
            })
            .collect()
    }

    fn feed_with(frames: &[Vec<u8>], missing: &[usize]) -> LiveFeed {
        let feed = LiveFeed::default();
        for (n, f) in frames.iter().enumerate() {
            if missing.contains(&n) {
                continue;
            }
            let packet = LivePacket {
                session: 1,
                seq: n as u32,
                play_at_ns: T0 + n as i64 * voice::FRAME_NS,
                frames: vec![f.clone()],
            };
            feed.push(packet, T0 - 1);
        }
        feed
    }

    fn format() -> AudioFormat {
        AudioFormat {
            sample_rate: 48_000,
            channels: 2,
        }
    }

    #[test]
    fn frames_play_when_due_and_a_lost_one_is_concealed() {
        let frames = packets(50);
        let feed = feed_with(&frames, &[20]);
        let mut r = LiveRenderer::new(1, format(), 100);
        // Before the first frame is due: silence.
        let early = r.render(&feed, T0 - 10_000_000, 480, 48_000, 100).to_vec();
        assert!(early.iter().all(|s| *s == 0.0));
        let mut heard = 0;
        for block in 0..80 {
            let at = T0 + block * 10_000_000;
            let out = r.render(&feed, at, 480, 48_000, 100);
            assert_eq!(out.len(), 960);
            if out.iter().any(|s| s.abs() > 0.01) {
                heard += 1;
            }
        }
        assert!(heard >= 78, "{heard} blocks of 80 sounded");
        assert_eq!(
            feed.concealed.load(Ordering::Relaxed),
            1,
            "frame 20, concealed"
        );
    }

    #[test]
    fn a_node_joining_late_starts_with_the_frame_due_now_and_late_frames_are_dropped() {
        let frames = packets(50);
        let feed = feed_with(&frames, &[]);
        let mut r = LiveRenderer::new(1, format(), 100);
        // Joins 300 ms in: frames 0-14 are skipped, it plays frame 15 from its start.
        let at = T0 + 300_000_000;
        r.render(&feed, at, 480, 48_000, 100);
        assert_eq!(r.next_seq, Some(16));
        // A frame stamped in the past is dropped on arrival and counted.
        let stale = LivePacket {
            session: 1,
            seq: 99,
            play_at_ns: T0,
            frames: vec![frames[0].clone()],
        };
        feed.push(stale, T0 + 1_000_000_000);
        assert_eq!(feed.late.load(Ordering::Relaxed), 1);
    }
}
