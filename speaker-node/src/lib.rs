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
//! - `agent` (feature `agent`): `speaker-node run` — the fleet link, blob cache, scheduler
//!   and the continuous playout that lands each play on its scheduled instant.
//!
//! Errors at the crate boundary are [`Error`]; nothing here panics on input.

#[cfg(feature = "agent")]
pub mod agent;
pub mod decode;
pub mod dsp;
mod durable;
mod error;
pub mod output;
pub mod player;

pub use durable::{sync_dir, write_atomic};
pub use error::Error;
