//! A node's state for the fleet view, the metrics and the alerts: online, degraded (with
//! the reasons, in words) or offline.

use schemars::JsonSchema;
use serde::Serialize;

use crate::i18n::Lang;
use crate::model::Node;

/// The node's system clock is this far from the controller's: when its link drops it plays
/// on that clock.
pub const CLOCK_OFF_MS: f64 = 1000.0;
/// Less free disk than this and new content may not fit.
pub const DISK_LOW_BYTES: u64 = 200_000_000;
/// Output underruns since the agent started beyond which the sound has gaps.
pub const UNDERRUNS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Offline,
    Degraded,
    Online,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Offline => "offline",
            Status::Degraded => "degraded",
            Status::Online => "online",
        }
    }

    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Status::Offline => lang.t("Mất kết nối", "Offline"),
            Status::Degraded => lang.t("Có vấn đề", "Degraded"),
            Status::Online => lang.t("Hoạt động tốt", "Online"),
        }
    }
}

/// Why a node is degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    ClockOff,
    Underruns,
    DiskLow,
    MissingContent,
    OutOfSync,
    OutputFailing,
}

impl Problem {
    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Problem::ClockOff => lang.t("đồng hồ lệch hơn 1 giây", "clock off by over 1 s"),
            Problem::Underruns => lang.t("âm thanh bị ngắt quãng", "sound underruns"),
            Problem::DiskLow => lang.t("sắp hết dung lượng", "disk low"),
            Problem::MissingContent => {
                lang.t("thiếu nội dung theo lịch", "scheduled content missing")
            }
            Problem::OutOfSync => lang.t("chưa nhận lịch mới nhất", "not on the latest schedule"),
            Problem::OutputFailing => lang.t("đầu ra âm thanh lỗi", "audio output failing"),
        }
    }
}

/// The node's status and, when degraded, why.
pub fn status(n: &Node) -> (Status, Vec<Problem>) {
    if !n.online {
        return (Status::Offline, Vec::new());
    }
    let mut problems = Vec::new();
    if n.lagging {
        problems.push(Problem::OutOfSync);
    }
    if let Some(h) = &n.health {
        if h.clock_offset_ms.is_some_and(|o| o.abs() > CLOCK_OFF_MS) {
            problems.push(Problem::ClockOff);
        }
        if h.underruns >= UNDERRUNS {
            problems.push(Problem::Underruns);
        }
        if h.disk_free_bytes.is_some_and(|d| d < DISK_LOW_BYTES) {
            problems.push(Problem::DiskLow);
        }
        if !h.missing_blobs.is_empty() {
            problems.push(Problem::MissingContent);
        }
        if !h.output_ok {
            problems.push(Problem::OutputFailing);
        }
    }
    match problems.is_empty() {
        true => (Status::Online, problems),
        false => (Status::Degraded, problems),
    }
}
