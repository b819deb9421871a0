//! Loa Làng's audio engine: everything between an untrusted audio file and the blocks of
//! samples a sound card takes.
//!
//! ```text
//! decode::Decoder -> dsp::ChannelMapper -> dsp::StreamResampler -> dsp::Gain -> limit
//! \_______________________ render::ItemRenderer ___________________________________/
//! ```
//!
//! - [`decode`] owns everything that reads untrusted audio files (symphonia 0.6). The CMS
//!   checks and measures uploads with it; the node plays with it: one decoder in the
//!   whole system, so what the CMS accepts is what a node can play.
//! - [`dsp`] holds the per-sample stages: channel mapping, sample-rate conversion (rubato)
//!   and gain with click-free ramps.
//! - [`render`] wires them into an [`render::ItemRenderer`]: one item as blocks of frames
//!   in an output's [`AudioFormat`], pulled a block at a time so a player can cut between
//!   any two blocks.
//! - [`voice`]: live voice as Opus (Debian's libopus): 20 ms mono frames at 48 kHz, with
//!   concealment of lost frames.
//!
//! No cpal, tokio or clap here: outputs, scheduling and the command line belong to the
//! speaker node. Errors at the boundary are [`Error`]; nothing here panics on input.

pub mod decode;
pub mod dsp;
mod error;
pub mod render;
pub mod voice;

pub use error::Error;

/// Sample rate and channel count of a stream of interleaved frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    pub sample_rate: u32,
    pub channels: u16,
}

impl AudioFormat {
    /// What the node plays at when nothing else decides: 48 kHz, the native rate of
    /// nearly every sound card and of PulseAudio, so the card never resamples again.
    pub const PLAYBACK: AudioFormat = AudioFormat {
        sample_rate: 48_000,
        channels: 2,
    };
}
