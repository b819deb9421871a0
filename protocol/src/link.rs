//! The node link: messages between a speaker node and the controller, JSON text frames
//! over one WebSocket the node dials (`GET /api/v1/nodes/link`, bearer node token).
//!
//! ```text
//! node                                   controller
//!  Hello {protocol, agent, applied}  ->
//!                                    <-  Welcome {protocol, node_id}
//!                                    <-  Desired(DesiredState)      on connect and on change
//!  Applied {version}                 ->
//!  Ping {t0}                         ->  (fast after connect, then about once a second)
//!                                    <-  Pong {t0, t1, t2}
//!  Heartbeat(Health)                 ->  every 10 s
//!  PlayLogs {entries}                ->
//!                                    <-  PlayLogsAck {ids}          once durably stored
//!                                    <-  Command {id, command}
//!  CommandDone {id, ok, message}     ->
//!  PlayState {schedule_id, state..}  ->  when a play goes on air, ends, or waits for audio
//! ```
//!
//! Both sides ignore (and log) message kinds they do not know, so either may be newer; a
//! frame that is not JSON, a known kind with bad fields, or a frame over
//! [`MAX_FRAME_BYTES`] closes that one connection. [`PROTOCOL_VERSION`] changes only when
//! an old peer would misread a message; a peer refuses another major version at Hello.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::desired::DesiredState;
use crate::schedule::Priority;

/// Spoken by this build. Bump when a message changes meaning.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest frame either side accepts: a desired state of a few hundred schedules is
/// ~200 KB; the rest are small.
pub const MAX_FRAME_BYTES: usize = 4 << 20;
/// A node sends a heartbeat this often (ms).
pub const HEARTBEAT_MS: u64 = 10_000;
/// Silence after which the controller marks a node offline (ms): three heartbeats.
pub const OFFLINE_AFTER_MS: u64 = 30_000;
/// WebSocket pings both ways this often; a peer silent for [`DEAD_AFTER_MS`] is gone.
pub const KEEPALIVE_MS: u64 = 5_000;
/// A link with nothing received for this long is dead (ms): with checks every second or
/// less, a dead link is noticed within 15 s on both sides (almost three missed pings).
pub const DEAD_AFTER_MS: u64 = 14_000;
/// Play log entries per `PlayLogs` message.
pub const PLAYLOG_BATCH: usize = 200;

/// Node -> controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NodeMsg {
    Hello {
        protocol: u32,
        /// The agent's version (`speaker-node --version`).
        agent: String,
        /// Version of the desired state the node runs from its disk, if any.
        #[serde(default)]
        applied: Option<String>,
        /// The node token, over a broker only (a WebSocket carries it in its upgrade
        /// request): the controller checks it against the node the topic names. The
        /// broker's ACL lets no one but the controller read a node's `up` topic.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// The node stored and now runs this desired state.
    Applied {
        version: String,
    },
    /// Clock sync: node clock when sent, ns since the Unix epoch.
    Ping {
        t0: i64,
    },
    Heartbeat(Box<Health>),
    PlayLogs {
        entries: Vec<PlayLogEntry>,
    },
    CommandDone {
        id: u64,
        ok: bool,
        #[serde(default)]
        message: String,
    },
    /// A scheduled play went on air, ended, or cannot start yet: what the controller
    /// shows live (an emergency's reach). The play log stays the record of what played.
    PlayState {
        schedule_id: i64,
        scheduled_at: DateTime<Utc>,
        priority: Priority,
        state: PlayStage,
        /// Why it waits or failed; empty otherwise.
        #[serde(default)]
        message: String,
    },
    /// A kind this build does not know (a newer peer): logged and ignored.
    #[serde(other)]
    Unknown,
}

/// Controller -> node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ControllerMsg {
    Welcome {
        protocol: u32,
        node_id: i64,
        name: String,
        /// The node's village: over a broker, whose live topic it listens to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        village_id: Option<i64>,
    },
    /// Clock sync reply: the ping's t0, controller receipt t1 and reply t2 (ns).
    Pong {
        t0: i64,
        t1: i64,
        t2: i64,
    },
    Desired(Box<DesiredState>),
    /// These play log ids are stored; the node may forget them.
    PlayLogsAck {
        ids: Vec<String>,
    },
    Command {
        id: u64,
        command: Command,
    },
    #[serde(other)]
    Unknown,
}

/// `POST /api/v1/nodes/enroll`: a node trades the one-time code an admin got when adding
/// it for its node token (over HTTP, before there is a link).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EnrollRequest {
    pub code: String,
}

/// No `Debug`: it carries the token.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EnrollResponse {
    pub node_id: i64,
    pub name: String,
    /// The node's long-lived secret: shown once, kept only as a hash.
    pub token: String,
    /// Where the node's topics are on an MQTT broker (`{prefix}/{province}/{commune}`,
    /// [`crate::mqtt::Scope`]), for a node told to link through one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_scope: Option<String>,
}

/// Remote commands a technician sends a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// The node's own volume, 0-100, kept across restarts.
    SetVolume { volume: u8 },
    /// Stop what is playing now (logged as interrupted).
    Stop,
    /// Play an approved item at once (normal priority unless said).
    PlayNow {
        content_id: i64,
        sha256: String,
        duration_ms: u64,
        #[serde(default)]
        gain_db: f32,
    },
    /// A 1 kHz tone, to check the amplifier and horns.
    TestTone { seconds: u32 },
    /// Fetch missing blobs and re-send state now.
    Resync,
    /// Restart the agent (systemd brings it back).
    Restart,
}

/// Where a scheduled play stands on a node, as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayStage {
    /// Due, but its audio is not on the node yet (being fetched).
    Waiting,
    /// On air.
    Playing,
    /// Played to its end, cut, or stopped.
    Ended,
    /// Could not play (the audio could not be had or decoded, no output).
    Failed,
}

impl PlayStage {
    pub fn as_str(self) -> &'static str {
        match self {
            PlayStage::Waiting => "waiting",
            PlayStage::Playing => "playing",
            PlayStage::Ended => "ended",
            PlayStage::Failed => "failed",
        }
    }
}

/// What became of a play, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlayOutcome {
    Completed,
    Interrupted,
    Failed,
    Skipped,
}

impl PlayOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PlayOutcome::Completed => "completed",
            PlayOutcome::Interrupted => "interrupted",
            PlayOutcome::Failed => "failed",
            PlayOutcome::Skipped => "skipped",
        }
    }
}

/// One play, logged durably on the node and uploaded until acknowledged. Times are on the
/// controller's clock (the node's synced clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayLogEntry {
    /// Unique per node (random, made when the play was logged): uploads are idempotent.
    pub id: String,
    #[serde(default)]
    pub schedule_id: Option<i64>,
    #[serde(default)]
    pub content_id: Option<i64>,
    #[serde(default)]
    pub scheduled_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: PlayOutcome,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A node's heartbeat: everything an admin looks at to judge its health.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default)]
pub struct Health {
    pub agent: String,
    pub uptime_s: u64,
    /// Addresses of the node's own interfaces (not as the controller sees it).
    pub ip: Vec<String>,
    /// Controller minus node clock, ms, and the round trip it rests on.
    pub clock_offset_ms: Option<f64>,
    pub round_trip_ms: Option<f64>,
    pub cache_used_bytes: u64,
    pub cache_quota_bytes: u64,
    pub disk_free_bytes: Option<u64>,
    /// Blobs the schedule needs that are not in the cache yet.
    pub missing_blobs: Vec<String>,
    pub playing: Option<NowPlaying>,
    pub volume: u8,
    pub output: String,
    pub output_ok: bool,
    pub underruns: u64,
    /// Live audio frames lost and concealed, and frames that came after their time
    /// (dropped), since the agent started.
    #[serde(default)]
    pub live_concealed: u64,
    #[serde(default)]
    pub live_late: u64,
    /// 1-minute load average, where the OS gives it.
    pub load: Option<f64>,
    pub temperature_c: Option<f64>,
    pub last_error: Option<String>,
    pub applied_version: Option<String>,
    pub pending_logs: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NowPlaying {
    #[serde(default)]
    pub schedule_id: Option<i64>,
    pub content_id: Option<i64>,
    pub position_ms: u64,
}

/// Why a frame was refused (the connection is then closed).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES} byte limit")]
    TooLarge(usize),
    #[error("malformed message: {0}")]
    Malformed(String),
}

fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, FrameError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))
}

impl NodeMsg {
    pub fn decode(text: &str) -> Result<Self, FrameError> {
        decode(text)
    }
}

impl ControllerMsg {
    pub fn decode(text: &str) -> Result<Self, FrameError> {
        decode(text)
    }
}

/// Serialises a message; our own types always serialise.
pub fn encode<T: Serialize>(msg: &T) -> String {
    serde_json::to_string(msg).unwrap_or_else(|_| String::from("{\"kind\":\"unknown\"}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let msgs = [
            NodeMsg::Hello {
                protocol: PROTOCOL_VERSION,
                agent: "0.1.0".into(),
                applied: Some("abc".into()),
                token: None,
            },
            NodeMsg::Ping { t0: 42 },
            NodeMsg::Heartbeat(Box::default()),
            NodeMsg::PlayLogs {
                entries: vec![PlayLogEntry {
                    id: "x".into(),
                    schedule_id: Some(1),
                    content_id: Some(2),
                    scheduled_at: Some(DateTime::UNIX_EPOCH),
                    started_at: None,
                    ended_at: None,
                    outcome: PlayOutcome::Skipped,
                    reason: Some("why".into()),
                }],
            },
        ];
        for m in msgs {
            assert_eq!(NodeMsg::decode(&encode(&m)).unwrap(), m);
        }
        let c = ControllerMsg::Command {
            id: 7,
            command: Command::SetVolume { volume: 60 },
        };
        let text = encode(&c);
        assert!(text.contains(r#""kind":"command""#), "{text}");
        assert_eq!(ControllerMsg::decode(&text).unwrap(), c);
    }

    #[test]
    fn unknown_kinds_are_ignorable_and_bad_frames_are_errors() {
        assert_eq!(
            NodeMsg::decode(r#"{"kind":"from_the_future","x":1}"#).unwrap(),
            NodeMsg::Unknown
        );
        assert_eq!(
            ControllerMsg::decode(r#"{"kind":"later"}"#).unwrap(),
            ControllerMsg::Unknown
        );
        for bad in [
            "",
            "not json",
            "{}",
            r#"{"kind":"ping"}"#,
            r#"{"kind":"ping","t0":"soon"}"#,
            "[1,2]",
        ] {
            assert!(
                matches!(NodeMsg::decode(bad), Err(FrameError::Malformed(_))),
                "{bad}"
            );
        }
        let huge = format!(
            r#"{{"kind":"ping","t0":1,"pad":"{}"}}"#,
            "x".repeat(MAX_FRAME_BYTES)
        );
        assert!(matches!(
            NodeMsg::decode(&huge),
            Err(FrameError::TooLarge(_))
        ));
    }
}
