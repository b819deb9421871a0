//! The speaker node's audio engine and agent.
//!
//! A node turns stored announcements into sound on the village loudspeakers:
//!
//! ```text
//! decode::Decoder -> dsp::ChannelMapper -> dsp::StreamResampler -> dsp::Gain -> output::Sink
//! ```
//!
//! - [`decode`] owns everything that reads untrusted audio files (symphonia 0.6). The CMS
//!   uses this same module, with the `device` feature off, to check uploads: one decoder
//!   in the whole system.
//! - [`dsp`] holds the per-sample stages: channel mapping, sample-rate conversion (rubato)
//!   and gain with click-free ramps.
//! - [`output`] holds the [`output::Sink`] trait and its backends (sound card, wav file,
//!   null), built by name from an `--output` spec.
//! - [`player`] wires the stages together to play a list of items on one sink.
//!
//! Errors at the crate boundary are [`Error`]; nothing here panics on input.

pub mod decode;
pub mod dsp;
mod error;
pub mod output;
pub mod player;

pub use error::Error;
