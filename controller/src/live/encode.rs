//! Source audio to stamped Opus frames: decode as it streams in, mix to mono, resample
//! to 48 kHz, encode 20 ms frames, stamp each with the instant it leaves every node.

use std::time::Duration;

use audio::decode::Decoder;
use audio::dsp::StreamResampler;
use audio::voice::{self, VoiceEncoder};
use bytes::Buf;
use protocol::live::LivePacket;
use tokio::sync::mpsc;

use super::LiveConfig;

/// Frames per link message: 40 ms of voice in ~150 bytes.
const FRAMES_PER_PACKET: usize = 2;
/// A frame is sent no later than this before it is due (else the stream resumes later).
const MIN_LEAD_NS: i64 = 60_000_000;
/// A source this far ahead of real time is held back.
const MAX_AHEAD_NS: i64 = 2_000_000_000;
/// Blocking reads of the body queue, for the decoder.
struct ChunkReader {
    rx: mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Stamps frames on the controller's clock: frame `n` leaves every node at `epoch + n x
/// 20 ms`; a late source moves the epoch on (a gap), a fast one is held back.
struct Stamper {
    epoch: Option<i64>,
    seq: u32,
    buffer_ns: i64,
    gaps: u32,
}

impl Stamper {
    /// The instant frame `self.seq` is due, and how long to wait before sending it.
    fn next(&mut self, now: i64) -> (i64, Duration) {
        let epoch = *self.epoch.get_or_insert(now + self.buffer_ns);
        let mut due = epoch + i64::from(self.seq) * voice::FRAME_NS;
        if due < now + MIN_LEAD_NS {
            // The source fell behind (a stall): resume at the buffer's distance.
            let shift = now + self.buffer_ns - due;
            self.epoch = Some(epoch + shift);
            due += shift;
            self.gaps += 1;
        }
        let ahead = due - now - MAX_AHEAD_NS;
        (due, Duration::from_nanos(ahead.max(0) as u64))
    }
}

type EncodeError = (String, Option<i64>);

/// Decodes, mixes to mono, resamples to 48 kHz, encodes and stamps until the body ends
/// (or `stop` is set: the session was ended from elsewhere); returns when the last frame
/// is due.
pub(super) fn encode_loop(
    rx: mpsc::Receiver<bytes::Bytes>,
    session: u32,
    config: &LiveConfig,
    clock: &dyn protocol::time::Clock,
    stop: &std::sync::atomic::AtomicBool,
    mut send: impl FnMut(Vec<u8>),
) -> Result<Option<i64>, EncodeError> {
    let reader = ChunkReader {
        rx,
        current: bytes::Bytes::new(),
    };
    let mut decoder = Decoder::from_stream(reader).map_err(|e| (e.to_string(), None))?;
    let info = decoder.info().clone();
    let rate = info.sample_rate.max(1);
    let channels = usize::from(info.channels.max(1));
    tracing::info!(session, codec = %info.codec, rate, channels, "live source decoding");
    let mut resampler = match rate {
        voice::RATE => None,
        r => Some(StreamResampler::new(r, voice::RATE, 1).map_err(|e| (e.to_string(), None))?),
    };
    let mut encoder = VoiceEncoder::new(config.bitrate).map_err(|e| (e.to_string(), None))?;
    let mut stamper = Stamper {
        epoch: None,
        seq: 0,
        buffer_ns: config.buffer_ms as i64 * 1_000_000,
        gaps: 0,
    };
    let mut pcm: Vec<f32> = Vec::new();
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut batch_start: Option<(u32, i64)> = None;
    let mut last_due = None;
    let mut mono = Vec::new();
    loop {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let chunk = match decoder.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err((e.to_string(), last_due)),
        };
        mono.clear();
        mono.extend(
            chunk
                .chunks(channels)
                .map(|f| f.iter().sum::<f32>() / channels as f32),
        );
        match resampler.as_mut() {
            Some(r) => pcm.extend_from_slice(r.push(&mono).map_err(|e| (e.to_string(), last_due))?),
            None => pcm.extend_from_slice(&mono),
        }
        let mut used = 0;
        while pcm.len() - used >= voice::FRAME {
            let frame = &pcm[used..used + voice::FRAME];
            used += voice::FRAME;
            let packet = encoder
                .encode(frame)
                .map_err(|e| (e.to_string(), last_due))?
                .to_vec();
            let (due, wait) = stamper.next(clock.now_ns());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            // A gap moved the timeline: what is batched goes first, on its own stamps.
            if let Some((_, first_due)) = batch_start {
                let expected = first_due + batch.len() as i64 * voice::FRAME_NS;
                if expected != due {
                    flush(&mut batch, &mut batch_start, session, &mut send);
                }
            }
            batch_start.get_or_insert((stamper.seq, due));
            batch.push(packet);
            stamper.seq += 1;
            last_due = Some(due + voice::FRAME_NS);
            if batch.len() >= FRAMES_PER_PACKET {
                flush(&mut batch, &mut batch_start, session, &mut send);
            }
        }
        pcm.drain(..used);
    }
    flush(&mut batch, &mut batch_start, session, &mut send);
    tracing::info!(
        session,
        frames = stamper.seq,
        gaps = stamper.gaps,
        "live source ended"
    );
    Ok(last_due)
}

fn flush(
    batch: &mut Vec<Vec<u8>>,
    start: &mut Option<(u32, i64)>,
    session: u32,
    send: &mut impl FnMut(Vec<u8>),
) {
    if let Some((seq, play_at_ns)) = start.take() {
        let packet = LivePacket {
            session,
            seq,
            play_at_ns,
            frames: std::mem::take(batch),
        };
        send(packet.encode());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_stamped_every_20_ms_and_a_stall_resumes_at_the_buffer() {
        let mut s = Stamper {
            epoch: None,
            seq: 0,
            buffer_ns: 200_000_000,
            gaps: 0,
        };
        let t0 = 1_000_000_000_000;
        let (due0, _) = s.next(t0);
        assert_eq!(due0, t0 + 200_000_000);
        s.seq = 10;
        let (due10, wait) = s.next(t0 + 150_000_000);
        assert_eq!((due10, wait), (due0 + 200_000_000, Duration::ZERO));
        // A 2 s stall: frame 11 would be long past; it resumes 200 ms ahead of now.
        s.seq = 11;
        let now = t0 + 2_500_000_000;
        let (due11, _) = s.next(now);
        assert_eq!((due11, s.gaps), (now + 200_000_000, 1));
        // A source far ahead of real time waits.
        s.seq = 11 + 500;
        let (_, wait) = s.next(now);
        assert!(wait > Duration::from_secs(7), "{wait:?}");
    }
}
