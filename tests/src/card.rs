//! What a node's simulated sound card played, read back with its host-clock sidecar.

use std::path::Path;

use serde_json::Value;

/// What a simulated card played: its samples and the host time of its first frame.
pub struct Card {
    pub first_ns: i64,
    pub rate: f64,
    pub channels: usize,
    pub samples: Vec<f32>,
}

impl Card {
    /// Reads `PATH` and `PATH.json`; the data chunk is read to the end of the file, so a
    /// card whose node was killed is readable too.
    pub fn read(wav: &Path) -> Card {
        let mut side = wav.as_os_str().to_owned();
        side.push(".json");
        let side: Value = serde_json::from_slice(&std::fs::read(&side).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{}.json: {e}", wav.display()));
        let bytes = std::fs::read(wav).unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
        let channels = u16::from_le_bytes([bytes[22], bytes[23]]) as usize;
        let data = bytes
            .windows(4)
            .position(|w| w == b"data")
            .map(|p| p + 8)
            .unwrap_or(bytes.len());
        let samples = bytes[data..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let rate = side["sample_rate"].as_f64().unwrap_or(48_000.0)
            * (1.0 + side["rate_ppm"].as_f64().unwrap_or(0.0) / 1e6);
        Card {
            first_ns: side["first_sample_unix_ns"].as_i64().unwrap_or(0),
            rate,
            channels,
            samples,
        }
    }

    /// Host time just after the last frame louder than silence before `before_ns`.
    pub fn last_sound_before(&self, before_ns: i64) -> Option<i64> {
        let end = ((before_ns - self.first_ns).max(0) as f64 / 1e9 * self.rate) as usize;
        let frames = (self.samples.len() / self.channels).min(end);
        (0..frames)
            .rev()
            .find(|&f| self.samples[f * self.channels].abs() > 0.01)
            .map(|f| self.first_ns + ((f + 1) as f64 / self.rate * 1e9) as i64)
    }

    /// Host time where sound resumes after the first 10 ms run of frames quieter than
    /// `quiet_below` at or after `from_ns`: a mark (a short silence) in the content, found
    /// wherever a node played it.
    pub fn sound_after_gap(&self, from_ns: i64, quiet_below: f32) -> Option<i64> {
        let start = ((from_ns - self.first_ns).max(0) as f64 / 1e9 * self.rate) as usize;
        let frames = self.samples.len() / self.channels;
        let run = (self.rate / 100.0) as usize;
        let mut quiet = 0;
        for f in start..frames {
            if self.samples[f * self.channels].abs() < quiet_below {
                quiet += 1;
            } else if quiet >= run {
                return Some(self.first_ns + (f as f64 / self.rate * 1e9) as i64);
            } else {
                quiet = 0;
            }
        }
        None
    }

    /// Host time of the first frame louder than silence at or after `after_ns`.
    pub fn first_sound_after(&self, after_ns: i64) -> Option<i64> {
        let start = ((after_ns - self.first_ns).max(0) as f64 / 1e9 * self.rate) as usize;
        let frames = self.samples.len() / self.channels;
        (start..frames)
            .find(|&f| self.samples[f * self.channels].abs() > 0.01)
            .map(|f| self.first_ns + (f as f64 / self.rate * 1e9) as i64)
    }

    /// How far (ms) the sound that began within 2 s before `at_ns`, or after it, started
    /// from `at_ns`: a scheduled start's error.
    pub fn start_error_ms(&self, at_ns: i64) -> f64 {
        let heard = self
            .first_sound_after(at_ns - 2_000_000_000)
            .unwrap_or_else(|| panic!("nothing played around {at_ns}"));
        (heard - at_ns) as f64 / 1e6
    }
}
