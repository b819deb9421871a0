//! Wire types shared by the controller and the speaker nodes, and the schedule resolver
//! (rules -> concrete plays, conflicts, priorities).
//!
//! Pure by design: serde, chrono, chrono-tz and cron only — no I/O, no async runtime, no
//! HTTP, no database — so the CMS preview and the node run the very same code.
//!
//! - [`schedule`]: rules (once, daily, weekly, monthly, cron; local time with DST edges),
//!   programs (items, gaps, repeats, chime), priorities, quiet hours, and [`schedule::resolve`].
//! - [`clock`]: NTP-style offset estimation from exchanges over the node's link.
//! - [`desired`]: the state a node should hold (its schedules, content references, zone),
//!   versioned by content hash.
//!
//! - [`link`]: the node link's messages (`NodeMsg` / `ControllerMsg`), limits and timings;
//!   [`transport`]: the trait a link's carrier implements (WebSocket today), with an
//!   in-memory pair for tests.
//! - [`time`]: the [`time::Clock`] every piece of timing logic reads (host or test clock).
//! - [`live`]: the binary layout of live audio on the link (Opus frames, stamped).
//! - [`mqtt`]: the link's topics, QoS and broker ACL for nodes served through an MQTT broker.

pub mod clock;
pub mod desired;
#[doc(hidden)]
pub mod fuzzing;
pub mod link;
pub mod live;
pub mod mqtt;
pub mod schedule;
pub mod time;
pub mod transport;
#[cfg(feature = "websocket")]
pub mod ws;

pub use chrono_tz::{TZ_VARIANTS, Tz};
