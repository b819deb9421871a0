//! What a schedule plays: an ordered list of items with gaps, repeated with a pause,
//! optionally preceded by a chime, at a priority and volume.

use serde::{Deserialize, Serialize};

use super::Rule;

/// Priorities, low to high (docs/ARCHITECTURE.md, "Rules that hold everywhere"): background (relays, music) < normal < priority <
/// emergency — the three levels of Circular 39/2020 plus background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Background,
    Normal,
    Priority,
    Emergency,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Background,
        Priority::Normal,
        Priority::Priority,
        Priority::Emergency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Background => "background",
            Priority::Normal => "normal",
            Priority::Priority => "priority",
            Priority::Emergency => "emergency",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// How long after its time a play may still start (waiting behind another, or
    /// restarting after an interruption) when the schedule does not say. An hour-late
    /// morning bulletin is still news; a relay joined late is still worth joining.
    pub fn default_max_delay_ms(self) -> u64 {
        match self {
            Priority::Background => 2 * 3600 * 1000,
            Priority::Normal => 3600 * 1000,
            Priority::Priority => 3600 * 1000,
            Priority::Emergency => 30 * 60 * 1000,
        }
    }
}

/// One piece of audio in a program, with what a node needs to play it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProgramItem {
    pub content_id: i64,
    /// Blob address; `None` for a relay (stream) item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Relay items: the stream URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A live session's audio, as the link brings it ([`crate::live`]); no blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<u32>,
    /// Blob size in bytes (for the node's cache planning); 0 for relays.
    #[serde(default)]
    pub size: u64,
    pub duration_ms: u64,
    /// Loudness normalisation measured at upload (to the commune's target).
    #[serde(default)]
    pub gain_db: f32,
    /// Silence after this item before the next one.
    #[serde(default)]
    pub gap_after_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Program {
    pub items: Vec<ProgramItem>,
    /// Times the item list plays (at least 1).
    #[serde(default = "one")]
    pub repeat: u32,
    /// Silence between repetitions.
    #[serde(default)]
    pub pause_ms: u64,
    /// Played once before everything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chime: Option<ProgramItem>,
}

fn one() -> u32 {
    1
}

impl Program {
    /// Air time from the first sample of the chime (or first item) to the end of the last
    /// item of the last repetition.
    pub fn duration_ms(&self) -> u64 {
        let repeat = u64::from(self.repeat.max(1));
        let once: u64 = self
            .items
            .iter()
            .map(|i| i.duration_ms + i.gap_after_ms)
            .sum();
        // The last item's gap is not air time.
        let last_gap = self.items.last().map_or(0, |i| i.gap_after_ms);
        let chime = self
            .chime
            .as_ref()
            .map_or(0, |c| c.duration_ms + c.gap_after_ms);
        chime + repeat * once + (repeat - 1) * self.pause_ms - last_gap
    }
}

/// Everything the resolver needs about one schedule. The CMS builds these from its
/// database; the node from its stored desired state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ScheduleSpec {
    pub id: i64,
    #[serde(default)]
    pub title: String,
    pub priority: Priority,
    pub rule: Rule,
    pub program: Program,
    /// 0-100, applied on top of the node's own volume.
    #[serde(default = "full_volume")]
    pub volume: u8,
    /// Latest start after the scheduled time; `None` = the priority's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u64>,
    /// Stopped by staff at this instant (an emergency ended early): a play on air then
    /// ends there, and nothing of the schedule starts from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn full_volume() -> u8 {
    100
}

impl ScheduleSpec {
    pub fn max_delay_ms(&self) -> u64 {
        self.max_delay_ms
            .unwrap_or_else(|| self.priority.default_max_delay_ms())
    }
}
