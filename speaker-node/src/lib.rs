//! The speaker node: outputs and the agent around the `audio` crate.
//!
//! A node turns stored announcements into sound on the village loudspeakers:
//!
//! ```text
//! audio::render::ItemRenderer (decode -> channels -> resample -> gain) -> output::Sink
//! ```
//!
//! - `audio` (its own crate, shared with the CMS) decodes, maps channels, resamples and
//!   applies gain; [`decode`] and [`dsp`] re-export its modules for the node's callers.
//! - [`output`] holds the [`output::Sink`] trait and its backends (sound card, wav file,
//!   null), built by name from an `--output` spec.
//! - [`player`] wires the stages together to play a list of items on one sink.
//! - `agent` (feature `agent`): `speaker-node run` — the fleet link, blob cache, scheduler
//!   and the continuous playout that lands each play on its scheduled instant.
//!
//! Errors at the crate boundary are [`Error`]; nothing here panics on input.

#[cfg(feature = "agent")]
pub mod agent;
#[cfg(feature = "agent")]
pub mod swarm;
pub use audio::{decode, dsp};
mod durable;
mod error;
pub mod output;
pub mod player;

pub use durable::{sync_dir, write_atomic};
pub use error::Error;
