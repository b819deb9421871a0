//! Domain types, as the API shows them. Times are UTC (`DateTime<Utc>`), shown in the
//! commune's zone only by the web UI.

use chrono::{DateTime, Utc};
use protocol::schedule::{Priority, Rule};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{CmsError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Editor,
    Approver,
    Technician,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Editor,
        Role::Approver,
        Role::Technician,
        Role::Viewer,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Approver => "approver",
            Role::Technician => "technician",
            Role::Viewer => "viewer",
        }
    }
    pub fn parse(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                CmsError::invalid(
                    format!("Vai trò không hợp lệ: {s}"),
                    format!("Unknown role: {s}"),
                )
            })
    }
    pub fn label_vi(self) -> &'static str {
        match self {
            Role::Admin => "Quản trị",
            Role::Editor => "Biên tập",
            Role::Approver => "Phê duyệt",
            Role::Technician => "Kỹ thuật",
            Role::Viewer => "Xem",
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Commune {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub tz: String,
    pub quiet_start: String,
    pub quiet_end: String,
    pub loudness_target: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// `None`: province-wide (admins only).
    pub commune_id: Option<i64>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Village {
    pub id: i64,
    pub commune_id: i64,
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VillageGroup {
    pub id: i64,
    pub commune_id: i64,
    pub name: String,
    pub village_ids: Vec<i64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Node {
    pub id: i64,
    pub commune_id: i64,
    pub village_id: i64,
    pub name: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub notes: String,
    pub enrolled: bool,
    pub online: bool,
    pub last_seen: Option<DateTime<Utc>>,
    /// The desired-state version the node last acknowledged.
    pub applied_version: Option<String>,
    /// The version it should run now (filled by the service; `None` when not computed).
    pub desired_version: Option<String>,
    /// Applied differs from desired: the node lags (offline, or still fetching).
    pub lagging: bool,
    /// The node's latest heartbeat (`None` before the first, or from an agent whose
    /// heartbeat this version cannot read).
    pub health: Option<protocol::link::Health>,
}

/// One line of a node's history: online/offline, enrolled/revoked, command results.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NodeEvent {
    pub at: DateTime<Utc>,
    pub event: String,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentStatus {
    Draft,
    Pending,
    Approved,
    Rejected,
}

impl ContentStatus {
    pub const ALL: [ContentStatus; 4] =
        [Self::Draft, Self::Pending, Self::Approved, Self::Rejected];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Categories of the national rules' programme kinds, with their Vietnamese names.
/// Content categories: key, Vietnamese and English names. Chimes (nhạc hiệu) are what
/// the schedule editor offers to play before a program.
pub const CATEGORIES: [(&str, &str, &str); 6] = [
    ("announcement", "Thông báo", "Announcement"),
    ("news", "Bản tin", "News"),
    ("relay", "Tiếp sóng", "Relay"),
    ("emergency", "Khẩn cấp", "Emergency"),
    ("music", "Nhạc", "Music"),
    ("chime", "Nhạc hiệu", "Chime"),
];

/// Accepts the English key or the Vietnamese name (any case).
pub fn parse_category(s: &str) -> Result<&'static str> {
    let s = s.trim();
    CATEGORIES
        .iter()
        .find(|(key, vi, en)| {
            *key == s || vi.to_lowercase() == s.to_lowercase() || en.eq_ignore_ascii_case(s)
        })
        .map(|(key, _, _)| *key)
        .ok_or_else(|| {
            CmsError::invalid(
                format!(
                    "Thể loại không hợp lệ: {s} (thông báo, bản tin, tiếp sóng, khẩn cấp, nhạc, nhạc hiệu)"
                ),
                format!(
                    "Unknown category: {s} (announcement, news, relay, emergency, music, chime)"
                ),
            )
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentKind {
    Audio,
    Tts,
    Relay,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Content {
    pub id: i64,
    pub commune_id: i64,
    pub kind: ContentKind,
    pub title: String,
    pub category: String,
    pub description: String,
    pub sha256: Option<String>,
    pub relay_url: Option<String>,
    pub tts_text: Option<String>,
    pub format: Option<String>,
    pub codec: Option<String>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u16>,
    pub size: Option<u64>,
    pub duration_ms: u64,
    pub loudness_lufs: Option<f64>,
    pub gain_db: f64,
    pub status: ContentStatus,
    pub reject_reason: Option<String>,
    pub public: bool,
    pub author_id: Option<i64>,
    pub author: Option<String>,
    pub approver_id: Option<i64>,
    pub approver: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    /// The last approval or rejection.
    pub decided_at: Option<DateTime<Utc>>,
    /// When what listeners hear (the recording, title, category or description) last
    /// changed since the last approval or rejection (cleared by each decision): a
    /// rejected item goes back for approval only once it has.
    pub edited_at: Option<DateTime<Utc>>,
    /// Archived: out of the library and of new schedules, kept for the play logs.
    pub archived_at: Option<DateTime<Utc>>,
}

/// What a schedule plays, as stored: content ids; durations come from the content rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StoredProgram {
    pub content_ids: Vec<i64>,
    #[serde(default)]
    pub gap_ms: u64,
    #[serde(default = "one")]
    pub repeat: u32,
    #[serde(default)]
    pub pause_ms: u64,
    #[serde(default)]
    pub chime_id: Option<i64>,
    /// A live session's program: the audio comes over the link as it is spoken.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    #[serde(default)]
    #[schemars(inner(range(min = 1)))]
    pub villages: Vec<i64>,
    #[serde(default)]
    #[schemars(inner(range(min = 1)))]
    pub groups: Vec<i64>,
    #[serde(default)]
    #[schemars(inner(range(min = 1)))]
    pub nodes: Vec<i64>,
}

impl Targets {
    pub fn is_empty(&self) -> bool {
        self.villages.is_empty() && self.groups.is_empty() && self.nodes.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Schedule {
    pub id: i64,
    pub commune_id: i64,
    pub title: String,
    pub priority: Priority,
    pub volume: u8,
    pub rule: Rule,
    #[serde(flatten)]
    pub program: StoredProgram,
    pub targets: Targets,
    pub max_delay_ms: Option<u64>,
    pub enabled: bool,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Stopped early by staff (an emergency ended): nothing of it plays from then on.
    pub stopped_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub user_id: Option<i64>,
    pub username: Option<String>,
    pub commune_id: Option<i64>,
    pub action: String,
    pub entity: String,
    pub entity_id: Option<i64>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlayLog {
    pub id: String,
    pub node_id: i64,
    pub content_id: Option<i64>,
    pub schedule_id: Option<i64>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: String,
    pub reason: Option<String>,
    /// Not counted in reports, and why: the node claimed a schedule or item it was never
    /// sent.
    pub rejected: Option<String>,
}

pub fn ms_to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// An emergency broadcast: an approved item (or text spoken on the spot) cut in at once
/// on chosen villages, and where it stands on every node it was sent to.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Emergency {
    pub id: i64,
    pub commune_id: i64,
    /// The emergency-priority schedule that carries it to the nodes.
    pub schedule_id: i64,
    pub title: String,
    /// The item it plays; `null` when spoken live (`live`).
    pub content_id: Option<i64>,
    /// Spoken live through a microphone or a live source: its schedule is the live
    /// session's (`GET /api/v1/live/{schedule_id}`).
    pub live: bool,
    /// When the first sample leaves on every node (the controller's clock).
    pub starts_at: DateTime<Utc>,
    /// Its nominal end (repeats included).
    pub ends_at: DateTime<Utc>,
    pub created_by: Option<i64>,
    pub created_by_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub stopped_by: Option<i64>,
    /// On air now: not stopped, and before its nominal end.
    pub active: bool,
    /// Nodes that confirmed playing it.
    pub reached: u32,
    /// Nodes it was sent to (enrolled nodes of the chosen places).
    pub total: u32,
    pub nodes: Vec<EmergencyNode>,
}

/// One node's reach of an emergency.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct EmergencyNode {
    pub node_id: i64,
    pub name: String,
    pub village_id: i64,
    pub village: String,
    /// `sent`, `waiting` (fetching the audio), `playing`, `ended` or `failed`.
    pub state: String,
    /// Why it waits or failed.
    pub message: String,
    /// When it first confirmed playing.
    pub reached_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A live broadcast: a source (a broadcast tool on the Icecast mount, or a browser's
/// microphone) speaking to villages now. It travels as a schedule of its own, whose id it
/// shares; its audio comes over the node link.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LiveSession {
    /// The id of the schedule that carries it (and of the session on the link).
    pub id: i64,
    pub commune_id: i64,
    pub title: String,
    /// `icecast` or `browser`.
    pub source: String,
    pub started_by: Option<i64>,
    pub started_by_name: Option<String>,
    /// The source's address.
    pub source_addr: String,
    pub villages: Vec<i64>,
    pub priority: protocol::schedule::Priority,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub end_reason: String,
    /// At emergency priority, the emergency it is (`GET /api/v1/emergency/{id}`: who it
    /// reached).
    pub emergency_id: Option<i64>,
}
