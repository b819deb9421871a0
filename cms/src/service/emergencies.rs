//! Emergencies (Circular 39/2020's highest level): a leader cuts in at once with an
//! approved item, or with text spoken on the spot, on chosen villages or all of them.
//!
//! An emergency travels as what nodes already know how to keep and play offline: an
//! emergency-priority schedule firing once, [`EMERGENCY_LEAD_MS`] after the call, so every
//! node starts the same sample at the same instant. The resolver on each node interrupts
//! whatever plays (it restarts afterwards if its window is still open) and quiet hours do
//! not apply. Stopping it marks the schedule stopped at that instant: nodes end the play
//! there and the resolver resumes the rest. Nodes report where the play stands
//! (`PlayState` on the link); [`Cms::emergency_report`] keeps each node's reach, and
//! watchers (the UI's live page) are woken through [`Cms::watch_emergencies`].

use chrono::{Duration, Utc};
use protocol::schedule::{Priority, Rule, RuleKind};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{audit_by, to_json};
use crate::Cms;
use crate::auth::{Perm, Principal};
use crate::error::{CmsError, Result, Text};
use crate::model::{ContentStatus, Emergency, StoredProgram, Targets};
use crate::store::emergencies::{self as qe, NewEmergency};
use crate::store::{self as q, ScheduleRow};

/// Nodes start an emergency this long after it is called: enough for the push, the
/// node's disk write and its output buffer on a sound link, so that every node starts on
/// the same sample (a node that hears of it later starts at once, from the beginning).
pub const EMERGENCY_LEAD_MS: i64 = 300;
/// Emergencies listed on the dashboard.
const LIST_MAX: u32 = 20;

/// `POST /api/v1/emergency`: what to say (an approved item, or text to speak) and where.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = crate::http::schema::content_or_text)]
pub struct EmergencyRequest {
    /// An approved item of the commune.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub content_id: Option<i64>,
    /// Text spoken on the spot (text to speech), instead of an item.
    #[serde(default)]
    #[schemars(length(min = 1, max = 5000), regex(pattern = r"\S"))]
    pub text: Option<String>,
    /// A title for the log and the screens (default: the item's, or "Tin khẩn cấp").
    #[serde(default)]
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub title: Option<String>,
    /// `"all"` (every village of the commune) or chosen villages, groups and nodes.
    pub targets: EmergencyTargets,
    /// Times it plays (default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 20))]
    pub repeat: Option<u32>,
    /// Silence between repeats (default 3 s).
    #[serde(default)]
    #[schemars(range(max = 600_000))]
    pub pause_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EmergencyTargets {
    All(Everywhere),
    Chosen(Targets),
}

/// Every village of the commune.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Everywhere {
    All,
}

fn what() -> Text {
    Text::new("Không tìm thấy tin khẩn cấp", "Emergency")
}

/// The title given, or a default that says what it is.
fn title_of(req: &EmergencyRequest, item_title: &str) -> String {
    let given = req
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match (given, item_title.is_empty()) {
        (Some(t), _) => t.chars().take(200).collect(),
        (None, false) => item_title.to_owned(),
        (None, true) => "Tin khẩn cấp".to_owned(),
    }
}

impl Cms {
    /// Cuts in on every targeted node at once. Approvers and admins only.
    pub async fn create_emergency(
        &self,
        p: &Principal,
        req: EmergencyRequest,
    ) -> Result<Emergency> {
        p.require(Perm::Approve)?;
        let cid = p.commune(None)?;
        let repeat = req.repeat.unwrap_or(1);
        let pause_ms = req.pause_ms.unwrap_or(3_000);
        if !(1..=20).contains(&repeat) || pause_ms > 600_000 {
            return Err(CmsError::invalid(
                "Lặp từ 1 đến 20 lần, nghỉ giữa các lần tối đa 10 phút.",
                "Repeat 1 to 20 times, with at most 10 minutes between repeats.",
            ));
        }
        // What to say and where: checked before anything is synthesised or stored.
        match (req.content_id, req.text.as_deref()) {
            (Some(_), None) => {}
            (None, Some(text)) if !text.trim().is_empty() => {}
            _ => {
                return Err(CmsError::invalid(
                    "Chọn một nội dung đã duyệt hoặc nhập văn bản cần phát (một trong hai).",
                    "Give either an approved item or the text to speak (one of the two).",
                ));
            }
        }
        let targets = req.targets.clone();
        self.store()
            .call(move |c| targets_and_nodes(c, cid, &targets).map(drop))
            .await?;
        let content_id = match (req.content_id, req.text.as_deref()) {
            (Some(id), _) => id,
            (None, text) => {
                let title = title_of(&req, "");
                let text = text.unwrap_or_default();
                self.speak(p, &title, text, (None, None), Some("emergency"))
                    .await?
                    .id
            }
        };
        let p2 = p.clone();
        let emergency = self
            .write(move |c| {
                let tx = c.transaction()?;
                let mut item = q::content::get(&tx, content_id)?;
                p2.check_commune(item.commune_id, Text::new("Không tìm thấy nội dung", "Content item"))?;
                if req.text.is_some() && item.status == ContentStatus::Draft {
                    // Spoken on the spot by the leader who sends it: approved by them.
                    q::content::set_status(&tx, item.id, ContentStatus::Approved, Some(p2.user.id), None)?;
                    let after = q::content::get(&tx, item.id)?;
                    q::audit(&tx, &audit_by(&p2, cid, "approve", "content", item.id, to_json(&item), to_json(&after)))?;
                    item = after;
                }
                if item.status != ContentStatus::Approved || item.sha256.is_none() {
                    return Err(CmsError::conflict(
                        format!("“{}” chưa được phê duyệt hoặc không phải tệp âm thanh: không thể phát khẩn cấp.", item.title),
                        format!("“{}” is not an approved audio item: it cannot go out as an emergency.", item.title),
                    ));
                }
                let (targets, nodes) = targets_and_nodes(&tx, cid, &req.targets)?;
                let title = title_of(&req, &item.title);
                let now = Utc::now();
                let starts = now + Duration::milliseconds(EMERGENCY_LEAD_MS);
                let program = StoredProgram {
                    content_ids: vec![item.id],
                    gap_ms: 0,
                    repeat,
                    pause_ms,
                    chime_id: None,
                    live: false,
                };
                let duration = i64::from(repeat) * item.duration_ms as i64
                    + i64::from(repeat - 1) * pause_ms as i64;
                let rule = Rule::new(RuleKind::Once(starts));
                let schedule_id = q::schedules::insert(
                    &tx,
                    &ScheduleRow {
                        commune_id: cid,
                        title: &format!("Khẩn cấp: {title}"),
                        priority: Priority::Emergency,
                        volume: 100,
                        rule: &rule,
                        program: &program,
                        targets: &targets,
                        max_delay_ms: None,
                        created_by: Some(p2.user.id),
                    },
                )?;
                let id = qe::insert(
                    &tx,
                    &NewEmergency {
                        commune_id: cid,
                        schedule_id,
                        title: &title,
                        content_id: Some(item.id),
                        starts_at_ms: starts.timestamp_millis(),
                        ends_at_ms: (starts + Duration::milliseconds(duration)).timestamp_millis(),
                        created_by: Some(p2.user.id),
                        created_at_ms: now.timestamp_millis(),
                    },
                    &nodes,
                )?;
                let after = qe::get(&tx, id)?;
                let record = serde_json::json!({
                    "title": after.title,
                    "content_id": after.content_id,
                    "targets": targets,
                    "repeat": repeat,
                    "starts_at": after.starts_at,
                    "total": after.total,
                });
                q::audit(&tx, &audit_by(&p2, cid, "create", "emergency", id, None, Some(record)))?;
                tx.commit()?;
                Ok(after)
            })
            .await?;
        tracing::warn!(id = emergency.id, title = %emergency.title, total = emergency.total, by = %p.user.username, "emergency on air");
        self.emergencies_changed();
        Ok(self.with_activity(emergency))
    }

    /// One emergency with every node's reach.
    pub async fn emergency(&self, p: &Principal, id: i64) -> Result<Emergency> {
        p.require(Perm::Read)?;
        let e = self.store().call(move |c| qe::get(c, id)).await?;
        p.check_commune(e.commune_id, what())?;
        Ok(self.with_activity(e))
    }

    /// The commune's latest emergencies, newest first.
    pub async fn emergencies(&self, p: &Principal) -> Result<Vec<Emergency>> {
        p.require(Perm::Read)?;
        let cid = p.commune(None)?;
        let list = self
            .store()
            .call(move |c| qe::list(c, cid, LIST_MAX))
            .await?;
        Ok(list.into_iter().map(|e| self.with_activity(e)).collect())
    }

    /// Ends an emergency now on every node; what it interrupted resumes where the
    /// resolver says. Approvers and admins only.
    pub async fn stop_emergency(&self, p: &Principal, id: i64) -> Result<Emergency> {
        p.require(Perm::Approve)?;
        let p2 = p.clone();
        let e = self
            .write(move |c| {
                let tx = c.transaction()?;
                let before = qe::get(&tx, id)?;
                p2.check_commune(before.commune_id, what())?;
                if before.stopped_at.is_some() {
                    return Err(CmsError::conflict(
                        "Tin khẩn cấp này đã được dừng.",
                        "This emergency was already stopped.",
                    ));
                }
                let now = Utc::now().timestamp_millis();
                qe::stop(&tx, id, now, p2.user.id)?;
                q::schedules::stop(&tx, before.schedule_id, now)?;
                if before.live {
                    // The live session ends too; its source is let go (the controller
                    // watches the session).
                    tx.execute(
                        "UPDATE live_sessions SET ended_at = ?2, end_reason = ?3 WHERE id = ?1 AND ended_at IS NULL",
                        rusqlite::params![before.schedule_id, now, format!("stopped by {}", p2.user.username)],
                    )?;
                }
                let after = qe::get(&tx, id)?;
                let reach = |e: &Emergency| {
                    serde_json::json!({ "reached": e.reached, "total": e.total,
                        "not_reached": e.nodes.iter().filter(|n| n.reached_at.is_none()).map(|n| n.node_id).collect::<Vec<_>>() })
                };
                q::audit(
                    &tx,
                    &audit_by(&p2, before.commune_id, "stop", "emergency", id, Some(reach(&before)), Some(reach(&after))),
                )?;
                tx.commit()?;
                Ok(after)
            })
            .await?;
        tracing::warn!(id, by = %p.user.username, reached = e.reached, total = e.total, "emergency stopped");
        self.emergencies_changed();
        Ok(self.with_activity(e))
    }

    /// A node reports where a play of an emergency-priority schedule stands. Counted only
    /// for an emergency of the node's own commune.
    pub async fn emergency_report(
        &self,
        node_id: i64,
        schedule_id: i64,
        state: protocol::link::PlayStage,
        message: String,
    ) -> Result<()> {
        let message: String = message.chars().take(500).collect();
        let at = Utc::now().timestamp_millis();
        let found = self
            .store()
            .call(move |c| qe::report(c, node_id, schedule_id, state.as_str(), &message, at))
            .await?;
        if let Some(id) = found {
            tracing::info!(
                emergency = id,
                node = node_id,
                state = state.as_str(),
                "emergency reach"
            );
            self.emergencies_changed();
        }
        Ok(())
    }

    /// [`Cms::emergency_report`] for the fleet hub: the reports of an emergency's 10,000
    /// nodes, which come within a second, are written in batches (one commit each made
    /// the emergency page seconds behind the speakers). In order per node.
    pub fn emergency_reported(
        &self,
        node_id: i64,
        schedule_id: i64,
        state: protocol::link::PlayStage,
        message: String,
    ) {
        let report = super::ReachReport {
            node_id,
            schedule_id,
            state: state.as_str(),
            message: message.chars().take(500).collect(),
            at_ms: Utc::now().timestamp_millis(),
        };
        let cms = self.clone();
        self.inner.reach.add(report, move |batch| async move {
            let found = cms
                .store()
                .call(move |c| {
                    let tx = c.transaction()?;
                    let mut found = false;
                    for r in &batch {
                        match qe::report(
                            &tx,
                            r.node_id,
                            r.schedule_id,
                            r.state,
                            &r.message,
                            r.at_ms,
                        ) {
                            Ok(f) => found |= f.is_some(),
                            Err(e) => {
                                tracing::warn!(node = r.node_id, "emergency reach not stored: {e}")
                            }
                        }
                    }
                    tx.commit()?;
                    Ok(found)
                })
                .await?;
            if found {
                cms.emergencies_changed();
            }
            Ok(())
        });
    }

    /// Whether a schedule carries an emergency (its deletion is refused: stop it instead).
    pub(super) fn emergency_of_schedule(c: &rusqlite::Connection, schedule_id: i64) -> Result<()> {
        match qe::of_schedule(c, schedule_id)? {
            None => Ok(()),
            Some(_) => Err(CmsError::conflict(
                "Lịch này mang một tin khẩn cấp: hãy dừng tin khẩn cấp thay vì xoá lịch (nhật ký phát cần đến nó).",
                "This schedule carries an emergency: stop the emergency instead (the play logs refer to it).",
            )),
        }
    }

    fn with_activity(&self, mut e: Emergency) -> Emergency {
        e.active = e.stopped_at.is_none() && Utc::now() < e.ends_at;
        e
    }
}

/// The targets as stored (`all`: every village of the commune) and the enrolled nodes
/// they reach; none is an error.
fn targets_and_nodes(
    c: &rusqlite::Connection,
    cid: i64,
    targets: &EmergencyTargets,
) -> Result<(Targets, Vec<i64>)> {
    let targets = match targets {
        EmergencyTargets::All(_) => Targets {
            villages: q::places::villages(c, cid)?
                .into_iter()
                .map(|v| v.id)
                .collect(),
            ..Targets::default()
        },
        EmergencyTargets::Chosen(t) if t.is_empty() => {
            return Err(CmsError::invalid(
                "Chưa chọn nơi phát (thôn, nhóm, cụm loa hoặc toàn xã).",
                "Choose where it plays (villages, groups, nodes, or all).",
            ));
        }
        EmergencyTargets::Chosen(t) => {
            super::schedules::check_targets(c, cid, t)?;
            t.clone()
        }
    };
    let nodes = qe::targeted_nodes(c, cid, &targets)?;
    if nodes.is_empty() {
        return Err(CmsError::invalid(
            "Nơi đã chọn chưa có cụm loa nào đã kích hoạt.",
            "The chosen places have no enrolled speaker node.",
        ));
    }
    Ok((targets, nodes))
}
