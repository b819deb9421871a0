//! Where samples go: a small [`Sink`] trait with one file per backend, and a table from
//! the `--output` spec's kind (`device`, `wav`, `null`) to the backend's builder.
//!
//! A sink takes interleaved `f32` frames in its own [`AudioFormat`]; the player adapts
//! every item to it. Real-time sinks block in [`Sink::write`] while their buffer is full,
//! so the decoder runs only as far ahead as the buffer allows.

mod card;
#[cfg(feature = "device")]
mod device;
mod null;
mod wav;

use std::fmt;
use std::str::FromStr;

pub use card::ClockedCard;
pub use null::NullSink;
pub use wav::WavSink;

pub use audio::AudioFormat;

use crate::Error;

/// Counters a sink keeps about its own health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Times the device wanted samples while an item was playing and none were ready.
    pub underruns: u64,
    /// Stream errors the output recovered from (xruns, sound-server hiccups).
    pub glitches: u64,
}

pub trait Sink {
    fn format(&self) -> AudioFormat;
    /// Queues interleaved frames; blocks while a real-time output is full. Never drops.
    fn write(&mut self, samples: &[f32]) -> Result<(), Error>;
    /// Returns once everything written has left: played out, or flushed and closed.
    fn finish(&mut self) -> Result<(), Error>;
    fn stats(&self) -> SinkStats {
        SinkStats::default()
    }
    /// When the next frame written will leave the output, in ns from now (negative: the
    /// output is already past it). `None` for outputs without a clock (files, null), whose
    /// frames leave as fast as they are written.
    fn next_frame_leaves_in_ns(&self) -> Option<i64> {
        None
    }
}

/// A parsed `--output` value: `device[:NAME]`, `wav:PATH` or `null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    kind: &'static str,
    arg: Option<String>,
}

type Builder = fn(Option<&str>, AudioFormat) -> Result<Box<dyn Sink>, Error>;

/// Every backend by name. `device` exists only in builds with the `device` feature.
const BACKENDS: &[(&str, Builder)] = &[
    #[cfg(feature = "device")]
    ("device", device::open),
    ("wav", wav::open),
    ("null", null::open),
];

impl OutputSpec {
    pub fn is_device(&self) -> bool {
        self.kind == "device"
    }

    /// Opens the sink as `speaker-node run` uses it: a continuous output with a clock.
    /// `wav:PATH` and `null` become a [`ClockedCard`] running `rate_ppm` off true (the
    /// drift test knob); devices are themselves.
    pub fn open_clocked(
        &self,
        preferred: AudioFormat,
        rate_ppm: f64,
    ) -> Result<Box<dyn Sink>, Error> {
        match self.kind {
            "wav" => {
                let path = std::path::Path::new(self.arg.as_deref().unwrap_or_default());
                Ok(Box::new(ClockedCard::open(
                    Some(path),
                    preferred,
                    rate_ppm,
                )?))
            }
            "null" => Ok(Box::new(ClockedCard::open(None, preferred, rate_ppm)?)),
            _ => self.open(preferred),
        }
    }

    /// Opens the sink. `preferred` is a wish for real devices (they may choose another
    /// format, see [`Sink::format`]) and exact for files and null.
    pub fn open(&self, preferred: AudioFormat) -> Result<Box<dyn Sink>, Error> {
        let (_, build) = BACKENDS
            .iter()
            .find(|(name, _)| *name == self.kind)
            .ok_or_else(|| self.bad("this build has no sound card support"))?;
        build(self.arg.as_deref(), preferred)
    }

    fn bad(&self, reason: &str) -> Error {
        Error::BadOutputSpec {
            spec: self.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl FromStr for OutputSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let (kind, arg) = match s.split_once(':') {
            Some((kind, arg)) => (kind, Some(arg.to_string())),
            None => (s, None),
        };
        let bad = |reason: &str| Error::BadOutputSpec {
            spec: s.to_string(),
            reason: reason.into(),
        };
        let kind = match (kind, arg.as_deref()) {
            ("device", Some("")) => return Err(bad("empty device name")),
            ("device", _) => "device",
            ("wav", Some(path)) if !path.is_empty() => "wav",
            ("wav", _) => return Err(bad("give a file: wav:PATH")),
            ("null", None) => "null",
            ("null", Some(_)) => return Err(bad("null takes no argument")),
            _ => return Err(bad("expected device[:NAME], wav:PATH or null")),
        };
        Ok(OutputSpec { kind, arg })
    }
}

impl fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arg {
            Some(arg) => write!(f, "{}:{arg}", self.kind),
            None => f.write_str(self.kind),
        }
    }
}

/// The output devices the sound system offers, for `speaker-node devices`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    /// What to pass as `--output device:NAME`.
    pub name: String,
    pub description: String,
    pub is_default: bool,
}

pub fn list_devices() -> Result<Vec<DeviceInfo>, Error> {
    #[cfg(feature = "device")]
    return device::list();
    #[cfg(not(feature = "device"))]
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        for ok in ["device", "device:hw:0,0", "wav:/tmp/x.wav", "null"] {
            let spec: OutputSpec = ok.parse().unwrap();
            assert_eq!(spec.to_string(), ok);
        }
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "",
            "wav",
            "wav:",
            "device:",
            "null:x",
            "speaker",
            "alsa:default",
        ] {
            assert!(bad.parse::<OutputSpec>().is_err(), "{bad}");
        }
    }
}
