//! What a node should hold: the schedules that target it, with everything its scheduler
//! needs to play them offline (content by SHA-256, size, duration, gain), under a version
//! that changes exactly when any of it changes.

use serde::{Deserialize, Serialize};

use crate::schedule::{QuietHours, ScheduleSpec};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DesiredState {
    /// Hex SHA-256 of the canonical JSON of everything below: equal states, equal versions.
    pub version: String,
    pub node_id: i64,
    /// The commune's IANA time zone: rules are in local time.
    pub tz: String,
    pub quiet_hours: QuietHours,
    /// Approved items only, in schedule id order.
    pub schedules: Vec<ScheduleSpec>,
}

impl DesiredState {
    /// The zone its rules are in; `None` for a name the zone database does not know.
    pub fn zone(&self) -> Option<crate::Tz> {
        self.tz.parse().ok()
    }

    /// Every blob the schedules need, each once, in first-use order.
    pub fn blobs(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in &self.schedules {
            let items = s.program.chime.iter().chain(s.program.items.iter());
            for sha in items.filter_map(|i| i.sha256.as_deref()) {
                if !out.contains(&sha) {
                    out.push(sha);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{Priority, Program, ProgramItem, Rule, RuleKind};

    fn item(sha: &str) -> ProgramItem {
        ProgramItem {
            size: 0,
            content_id: 1,
            sha256: Some(sha.into()),
            url: None,
            live: None,
            duration_ms: 1000,
            gain_db: 0.0,
            gap_after_ms: 0,
        }
    }

    #[test]
    fn blobs_are_listed_once_chime_first() {
        let spec = |items: Vec<ProgramItem>, chime: Option<ProgramItem>| ScheduleSpec {
            id: 1,
            title: String::new(),
            priority: Priority::Normal,
            rule: Rule::new(RuleKind::Daily(vec![])),
            program: Program {
                items,
                repeat: 1,
                pause_ms: 0,
                chime,
            },
            volume: 100,
            max_delay_ms: None,
            stopped_at: None,
        };
        let state = DesiredState {
            version: String::new(),
            node_id: 1,
            tz: "Asia/Ho_Chi_Minh".into(),
            quiet_hours: QuietHours::default(),
            schedules: vec![
                spec(vec![item("b"), item("a")], Some(item("c"))),
                spec(vec![item("a"), item("d")], None),
            ],
        };
        assert_eq!(state.blobs(), ["c", "b", "a", "d"]);
    }
}
