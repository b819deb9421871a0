//! A simulated sound card for `speaker-node run` (docs/INTERFACES.md): it consumes frames in real
//! time, silence included, at its own rate (`rate_ppm` off true), and with `wav:PATH`
//! writes every frame it plays to a WAV file. `PATH.json` beside it records the host's
//! real-time clock when the first frame left, so frame `k` left at
//! `first_sample_unix_ns + k / (sample_rate * (1 + rate_ppm / 1e6))` seconds: the ground
//! truth that timing and sync tests measure against.
//!
//! This is the node's hardware, so it (alone) reads the host clock; the node's own notion
//! of time goes through `agent::clock`. A writer that falls behind gets silence inserted,
//! as a real card plays silence on underrun, so the timeline above stays true.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hound::{SampleFormat, WavSpec, WavWriter};
use serde::Serialize;

use super::wav::write_error;
use super::{AudioFormat, Sink, SinkStats};
use crate::Error;

/// How far ahead of the card a writer may run (the card's buffer).
const BUFFER: Duration = Duration::from_millis(100);
/// The first frame leaves this long after the first write (a real card's start-up, and
/// room for the writer to get ahead).
const PREFILL: Duration = Duration::from_millis(20);
/// The WAV header is brought up to date this often, so a killed node leaves a readable file.
const HEADER_EVERY: Duration = Duration::from_secs(1);

#[derive(Serialize)]
struct Sidecar {
    first_sample_unix_ns: i64,
    sample_rate: u32,
    rate_ppm: f64,
}

pub struct ClockedCard {
    format: AudioFormat,
    /// Frames per host second.
    rate: f64,
    rate_ppm: f64,
    /// Host clock when frame 0 left; `None` until the first write.
    start: Option<Instant>,
    /// Frames played so far (written or filled).
    frames: u64,
    /// The WAV file being written and its name (none: the card discards).
    file: Option<(WavWriter<BufWriter<File>>, PathBuf)>,
    last_header: Instant,
    underruns: u64,
}

impl ClockedCard {
    /// A card that writes to `path` (WAV, 32-bit float) or, without, discards.
    pub fn open(path: Option<&Path>, format: AudioFormat, rate_ppm: f64) -> Result<Self, Error> {
        let file = match path {
            Some(p) => {
                let spec = WavSpec {
                    channels: format.channels,
                    sample_rate: format.sample_rate,
                    bits_per_sample: 32,
                    sample_format: SampleFormat::Float,
                };
                let writer = WavWriter::create(p, spec).map_err(|e| write_error(p, e))?;
                Some((writer, p.to_path_buf()))
            }
            None => None,
        };
        Ok(ClockedCard {
            format,
            rate: f64::from(format.sample_rate) * (1.0 + rate_ppm / 1e6),
            rate_ppm,
            start: None,
            frames: 0,
            file,
            last_header: Instant::now(),
            underruns: 0,
        })
    }

    fn begin(&mut self) -> Result<Instant, Error> {
        if let Some(s) = self.start {
            return Ok(s);
        }
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| (d + PREFILL).as_nanos() as i64)
            .unwrap_or(0);
        let start = Instant::now() + PREFILL;
        self.start = Some(start);
        if let Some((_, path)) = &self.file {
            let sidecar = Sidecar {
                first_sample_unix_ns: unix_ns,
                sample_rate: self.format.sample_rate,
                rate_ppm: self.rate_ppm,
            };
            let mut json = path.as_os_str().to_owned();
            json.push(".json");
            let body = serde_json::to_vec(&sidecar).map_err(|e| Error::Output(e.to_string()))?;
            // Renamed into place for readers, but not fsynced: a test's ground truth, and an
            // fsync here would stall the card's first frames.
            let mut tmp = json.clone();
            tmp.push(".tmp");
            let err = |source| Error::Write {
                path: PathBuf::from(&json),
                source,
            };
            std::fs::write(&tmp, body).map_err(err)?;
            std::fs::rename(&tmp, &json).map_err(err)?;
        }
        Ok(start)
    }

    /// Frames the card has taken by now.
    fn consumed(&self, start: Instant) -> u64 {
        (start.elapsed().as_secs_f64() * self.rate) as u64
    }

    /// Seconds from now until `start` (negative once the card runs).
    fn until(start: Instant) -> f64 {
        let now = Instant::now();
        match start.checked_duration_since(now) {
            Some(d) => d.as_secs_f64(),
            None => -now.duration_since(start).as_secs_f64(),
        }
    }

    fn put(&mut self, samples: &[f32]) -> Result<(), Error> {
        if let Some((w, path)) = self.file.as_mut() {
            for &s in samples {
                w.write_sample(s).map_err(|e| write_error(path, e))?;
            }
            if self.last_header.elapsed() > HEADER_EVERY {
                self.last_header = Instant::now();
                w.flush().map_err(|e| write_error(path, e))?;
            }
        }
        self.frames += (samples.len() / usize::from(self.format.channels)) as u64;
        Ok(())
    }
}

impl Sink for ClockedCard {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, samples: &[f32]) -> Result<(), Error> {
        let start = self.begin()?;
        // Late: the card has already played silence where these should have been.
        let consumed = self.consumed(start);
        if consumed > self.frames {
            let missing = (consumed - self.frames) as usize * usize::from(self.format.channels);
            self.underruns += 1;
            self.put(&vec![0.0; missing])?;
        }
        self.put(samples)?;
        // Early: wait until the card's buffer has room again.
        let ahead = self.frames as f64 / self.rate + Self::until(start);
        let wait = ahead - BUFFER.as_secs_f64();
        if wait > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        if let Some(start) = self.start {
            let ahead = self.frames as f64 / self.rate + Self::until(start);
            std::thread::sleep(Duration::from_secs_f64(ahead.max(0.0)));
        }
        if let Some((w, path)) = self.file.take() {
            w.finalize().map_err(|e| write_error(&path, e))?;
        }
        Ok(())
    }

    fn stats(&self) -> SinkStats {
        SinkStats {
            underruns: self.underruns,
            glitches: 0,
        }
    }

    fn next_frame_leaves_in_ns(&self) -> Option<i64> {
        let start = self.start?;
        let at = self.frames as f64 / self.rate;
        Some(((at + Self::until(start)) * 1e9) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paces_in_real_time_and_records_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.wav");
        let format = AudioFormat {
            sample_rate: 8000,
            channels: 1,
        };
        let mut card = ClockedCard::open(Some(&path), format, 0.0).unwrap();
        let t = Instant::now();
        for _ in 0..40 {
            card.write(&[0.25; 80]).unwrap(); // 10 ms each
        }
        card.finish().unwrap();
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(390), "{took:?}");
        let reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.len(), 3200);
        let side: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("card.wav.json")).unwrap())
                .unwrap();
        assert_eq!(side["sample_rate"], 8000);
        assert!(side["first_sample_unix_ns"].as_i64().unwrap() > 0);
    }

    #[test]
    fn a_late_writer_gets_silence_inserted() {
        let format = AudioFormat {
            sample_rate: 8000,
            channels: 1,
        };
        let mut card = ClockedCard::open(None, format, 0.0).unwrap();
        card.write(&[0.0; 80]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        card.write(&[0.0; 80]).unwrap();
        assert!(card.frames >= 2300, "{}", card.frames); // 300 ms less the 20 ms prefill
        assert_eq!(card.stats().underruns, 1);
        let leaves = card.next_frame_leaves_in_ns().unwrap();
        assert!(leaves.abs() < 20_000_000, "{leaves}");
    }
}
