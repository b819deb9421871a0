//! Live sessions: a source speaking to villages now. A session rides on a schedule of its
//! own — "priority" level by default (a normal live talk pauses and afterwards restarts
//! scheduled normal items; it never cuts an emergency), firing once as it starts, for up
//! to [`LIVE_MAX_MS`], stopped when the source ends — so the resolver on each node settles
//! what it interrupts and what resumes, exactly as for any other play, and every node logs
//! it. The audio itself comes over the node link (`protocol::live`), from the controller.

use chrono::{Duration, Utc};
use protocol::schedule::{Priority, Rule, RuleKind};
use rusqlite::{OptionalExtension, params};

use super::audit_by;
use crate::Cms;
use crate::auth::{Perm, Principal};
use crate::error::{CmsError, Result, Text};
use crate::model::{LiveSession, StoredProgram, Targets, ms_to_time};
use crate::store::{self as q, AuditRecord, ScheduleRow};

/// The longest a live session runs (a source left on ends there).
pub const LIVE_MAX_MS: u64 = 4 * 3_600_000;

/// A session as it starts: what the controller needs to carry its audio.
#[derive(Debug, Clone)]
pub struct LiveStart {
    pub session: LiveSession,
    /// Enrolled nodes of its villages: who gets its audio.
    pub nodes: Vec<i64>,
}

fn what() -> Text {
    Text::new("Không tìm thấy buổi phát trực tiếp", "Live session")
}

const COLS: &str = "l.id, l.commune_id, s.title, l.source, l.started_by, u.username, l.source_addr, s.priority, l.started_at, l.ended_at, l.end_reason,
    (SELECT e.id FROM emergencies e WHERE e.schedule_id = l.id)";

fn row(r: &rusqlite::Row) -> rusqlite::Result<LiveSession> {
    let priority: String = r.get(7)?;
    Ok(LiveSession {
        id: r.get(0)?,
        commune_id: r.get(1)?,
        title: r.get(2)?,
        source: r.get(3)?,
        started_by: r.get(4)?,
        started_by_name: r.get(5)?,
        source_addr: r.get(6)?,
        villages: Vec::new(),
        priority: Priority::parse(&priority).unwrap_or(Priority::Priority),
        started_at: ms_to_time(r.get(8)?),
        ended_at: r.get::<_, Option<i64>>(9)?.map(ms_to_time),
        end_reason: r.get(10)?,
        emergency_id: r.get(11)?,
    })
}

fn get(c: &rusqlite::Connection, id: i64) -> Result<LiveSession> {
    let mut session = c
        .prepare_cached(&format!(
            "SELECT {COLS} FROM live_sessions l JOIN schedules s ON s.id = l.id
             LEFT JOIN users u ON u.id = l.started_by WHERE l.id = ?1"
        ))?
        .query_row([id], row)
        .optional()?
        .ok_or_else(|| CmsError::NotFound(what()))?;
    session.villages = q::schedules::get(c, id)?.targets.villages;
    Ok(session)
}

impl Cms {
    /// Starts a live session on `villages` (one commune's), for a source that is a user
    /// (`by`: the browser microphone) or the Icecast mount (`None`: the source password
    /// was checked by the caller). Refused while another session holds one of them, unless
    /// this one's priority is higher.
    pub async fn start_live(
        &self,
        by: Option<&Principal>,
        villages: Vec<i64>,
        priority: Priority,
        source: &'static str,
        source_addr: String,
        lead_ms: i64,
    ) -> Result<LiveStart> {
        if let Some(p) = by {
            p.require(Perm::Schedule)?;
            if priority == Priority::Emergency {
                p.require(Perm::Approve)?;
            }
        }
        if villages.is_empty() {
            return Err(CmsError::invalid(
                "Chưa chọn thôn để phát trực tiếp.",
                "Choose the villages to speak to.",
            ));
        }
        let by = by.cloned();
        let start = self
            .write(move |c| {
                let tx = c.transaction()?;
                let first = q::places::village(&tx, villages[0])?;
                let cid = first.commune_id;
                if let Some(p) = &by {
                    p.check_commune(cid, Text::new("Không tìm thấy thôn", "Village"))?;
                }
                let mut names = Vec::new();
                for v in &villages {
                    let village = q::places::village(&tx, *v)?;
                    if village.commune_id != cid {
                        return Err(CmsError::invalid(
                            "Các thôn phải cùng một xã.",
                            "The villages must be of one commune.",
                        ));
                    }
                    names.push(village.name);
                }
                // One live source per village at a time, unless this one outranks it.
                for busy in open_sessions(&tx, cid)? {
                    if busy.villages.iter().any(|v| villages.contains(v)) && busy.priority >= priority {
                        return Err(CmsError::conflict(
                            format!("Đang có buổi phát trực tiếp “{}” ở nơi này.", busy.title),
                            format!("“{}” is already live there.", busy.title),
                        ));
                    }
                }
                let targets = Targets {
                    villages: villages.clone(),
                    ..Targets::default()
                };
                let nodes = crate::store::emergencies::targeted_nodes(&tx, cid, &targets)?;
                let now = Utc::now();
                let starts = now + Duration::milliseconds(lead_ms);
                let emergency = priority == Priority::Emergency;
                let title = match emergency {
                    true => format!("Khẩn cấp trực tiếp: {}", names.join(", ")),
                    false => format!("Trực tiếp: {}", names.join(", ")),
                };
                let program = StoredProgram {
                    content_ids: Vec::new(),
                    gap_ms: 0,
                    repeat: 1,
                    pause_ms: 0,
                    chime_id: None,
                    live: true,
                };
                let id = q::schedules::insert(
                    &tx,
                    &ScheduleRow {
                        commune_id: cid,
                        title: &title,
                        priority,
                        volume: 100,
                        rule: &Rule::new(RuleKind::Once(starts)),
                        program: &program,
                        targets: &targets,
                        // A node whose link comes back during it joins, live.
                        max_delay_ms: Some(LIVE_MAX_MS),
                        created_by: by.as_ref().map(|p| p.user.id),
                    },
                )?;
                tx.execute(
                    "INSERT INTO live_sessions (id, commune_id, source, started_by, source_addr, started_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![id, cid, source, by.as_ref().map(|p| p.user.id), source_addr, now.timestamp_millis()],
                )?;
                if emergency {
                    // Spoken live at emergency level, it is an emergency like any other:
                    // each node's confirmation counts in its reach.
                    q::emergencies::insert(
                        &tx,
                        &q::emergencies::NewEmergency {
                            commune_id: cid,
                            schedule_id: id,
                            title: &title,
                            content_id: None,
                            starts_at_ms: starts.timestamp_millis(),
                            ends_at_ms: (starts + Duration::milliseconds(LIVE_MAX_MS as i64)).timestamp_millis(),
                            created_by: by.as_ref().map(|p| p.user.id),
                            created_at_ms: now.timestamp_millis(),
                        },
                        &nodes,
                    )?;
                }
                let session = get(&tx, id)?;
                let record = serde_json::json!({ "title": title, "source": source, "source_addr": session.source_addr,
                    "villages": villages, "priority": priority, "nodes": nodes.len() });
                let audit = match &by {
                    Some(p) => audit_by(p, cid, "start", "live", id, None, Some(record)),
                    None => AuditRecord {
                        user_id: None,
                        username: Some("source"),
                        commune_id: Some(cid),
                        action: "start",
                        entity: "live",
                        entity_id: Some(id),
                        before: None,
                        after: Some(record),
                    },
                };
                q::audit(&tx, &audit)?;
                tx.commit()?;
                Ok(LiveStart { session, nodes })
            })
            .await?;
        tracing::info!(id = start.session.id, title = %start.session.title, nodes = start.nodes.len(), "live session started");
        if start.session.emergency_id.is_some() {
            self.emergencies_changed();
        }
        Ok(start)
    }

    /// Ends a live session on every node now (its schedule stops; what it paused resumes).
    pub async fn end_live(&self, id: i64, reason: &str) -> Result<LiveSession> {
        let reason = reason.to_owned();
        let session = self
            .write(move |c| {
                let tx = c.transaction()?;
                let before = get(&tx, id)?;
                if before.ended_at.is_some() {
                    return Ok(before);
                }
                let now = Utc::now().timestamp_millis();
                tx.execute(
                    "UPDATE live_sessions SET ended_at = ?2, end_reason = ?3 WHERE id = ?1",
                    params![id, now, reason],
                )?;
                // An emergency spoken live ends with it.
                tx.execute(
                    "UPDATE emergencies SET stopped_at = ?2 WHERE schedule_id = ?1 AND stopped_at IS NULL",
                    params![id, now],
                )?;
                q::schedules::stop(&tx, id, now)?;
                let after = get(&tx, id)?;
                q::audit(
                    &tx,
                    &AuditRecord {
                        user_id: None,
                        username: Some("source"),
                        commune_id: Some(after.commune_id),
                        action: "end",
                        entity: "live",
                        entity_id: Some(id),
                        before: None,
                        after: Some(serde_json::json!({ "reason": reason, "started_at": after.started_at, "ended_at": after.ended_at })),
                    },
                )?;
                tx.commit()?;
                Ok(after)
            })
            .await?;
        tracing::info!(id, reason = %session.end_reason, "live session ended");
        if session.emergency_id.is_some() {
            self.emergencies_changed();
        }
        Ok(session)
    }

    /// Ends every session still open (a controller that restarts has lost their sources).
    pub async fn end_orphaned_live(&self) -> Result<usize> {
        let open: Vec<i64> = self
            .store()
            .call(|c| {
                let mut st = c.prepare("SELECT id FROM live_sessions WHERE ended_at IS NULL")?;
                let ids = st
                    .query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(ids)
            })
            .await?;
        for id in &open {
            self.end_live(*id, "the controller restarted").await?;
        }
        Ok(open.len())
    }

    /// Whether a session is still on air (a live emergency stopped from the API ends its
    /// session; the controller then lets its source go).
    pub async fn live_on_air(&self, id: i64) -> Result<bool> {
        // Asked twice a second per session: one column, not the whole session.
        self.store()
            .call(move |c| {
                c.prepare_cached("SELECT ended_at IS NULL FROM live_sessions WHERE id = ?1")?
                    .query_row([id], |r| r.get(0))
                    .optional()?
                    .ok_or_else(|| CmsError::NotFound(what()))
            })
            .await
    }

    /// Sessions on air in the caller's commune.
    /// Live sessions on air in every commune.
    pub async fn live_on_air_count(&self) -> Result<u64> {
        self.store()
            .call(|c| {
                let n: i64 = c.query_row(
                    "SELECT count(*) FROM live_sessions WHERE ended_at IS NULL",
                    [],
                    |r| r.get(0),
                )?;
                Ok(n.max(0) as u64)
            })
            .await
    }

    pub async fn live_sessions(&self, p: &Principal) -> Result<Vec<LiveSession>> {
        p.require(Perm::Read)?;
        let cid = p.commune(None)?;
        self.store().call(move |c| open_sessions(c, cid)).await
    }

    /// One session (any state).
    pub async fn live_session(&self, p: &Principal, id: i64) -> Result<LiveSession> {
        p.require(Perm::Read)?;
        let s = self.store().call(move |c| get(c, id)).await?;
        p.check_commune(s.commune_id, what())?;
        Ok(s)
    }
}

fn open_sessions(c: &rusqlite::Connection, cid: i64) -> Result<Vec<LiveSession>> {
    let ids: Vec<i64> = c
        .prepare_cached(
            "SELECT id FROM live_sessions WHERE commune_id = ?1 AND ended_at IS NULL ORDER BY id",
        )?
        .query_map([cid], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.into_iter().map(|id| get(c, id)).collect()
}
