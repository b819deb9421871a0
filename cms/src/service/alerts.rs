//! Alerts: a node offline longer than the commune allows, a play that failed, disk low,
//! clock off by more than a second, underruns rising, content missing for a play within
//! the next hour. One open alert per node and kind (no repeats while it lasts), a
//! recovery notice when it clears; the controller delivers them by webhook and email, as
//! one digest when many come at once (a cell outage takes a whole commune down).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::fleet::{CLOCK_OFF_MS, DISK_LOW_BYTES};
use crate::Cms;
use crate::auth::{Perm, Principal};
use crate::error::{CmsError, Result};
use crate::i18n::Lang;
use crate::model::{Node, ms_to_time};
use crate::store::now_ms;

/// This many notices for one commune in one round go out as one digest.
pub const DIGEST_AT: usize = 5;

/// Who a commune's alerts go to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// Email addresses.
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub emails: Vec<String>,
    /// A URL that gets each alert as a JSON POST (empty: none).
    #[serde(default)]
    #[schemars(length(max = 2000))]
    pub webhook_url: String,
    /// A node offline this long raises an alert (0: at once).
    #[serde(default = "ten")]
    #[schemars(range(max = 1440))]
    pub offline_minutes: u32,
}

fn ten() -> u32 {
    10
}

/// An alert as stored: open until its condition clears.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Alert {
    pub id: i64,
    pub node_id: Option<i64>,
    pub kind: String,
    pub detail: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// One thing to tell a commune: an alert opened, or one that cleared.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub kind: &'static str,
    pub recovered: bool,
    pub node_id: i64,
    pub node: String,
    pub village: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// A commune's notices of one round, with where they go.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub commune: String,
    pub settings: AlertSettings,
    pub notices: Vec<Notice>,
}

/// What the evaluator remembers between rounds.
#[derive(Debug, Default)]
pub struct AlertState {
    underruns: HashMap<i64, u64>,
    /// Failed plays received after this (ms) are news.
    failed_since: Option<i64>,
}

pub const KINDS: [&str; 6] = [
    "offline",
    "play_failed",
    "disk_low",
    "clock_off",
    "underruns",
    "content_missing",
];

/// What an alert's kind means, in words.
pub fn kind_label(lang: Lang, kind: &str, recovered: bool) -> &'static str {
    match (kind, recovered) {
        ("offline", false) => lang.t("mất kết nối", "offline"),
        ("offline", true) => lang.t("đã kết nối lại", "back online"),
        ("play_failed", _) => lang.t("phát lỗi", "a play failed"),
        ("disk_low", false) => lang.t("sắp hết dung lượng", "disk low"),
        ("clock_off", false) => lang.t("đồng hồ lệch hơn 1 giây", "clock off by over 1 s"),
        ("underruns", false) => lang.t("âm thanh bị ngắt quãng nhiều hơn", "underruns rising"),
        ("content_missing", false) => lang.t(
            "thiếu nội dung cho lần phát trong giờ tới",
            "content missing for a play within the hour",
        ),
        (_, true) => lang.t("đã hết", "cleared"),
        _ => lang.t("cảnh báo", "alert"),
    }
}

impl Cms {
    pub async fn alert_settings(&self, p: &Principal) -> Result<AlertSettings> {
        p.require(Perm::Read)?;
        let cid = p.commune(None)?;
        self.store().call(move |c| settings(c, cid)).await
    }

    pub async fn set_alert_settings(
        &self,
        p: &Principal,
        s: AlertSettings,
    ) -> Result<AlertSettings> {
        p.require(Perm::ManagePlaces)?;
        let cid = p.commune(None)?;
        let emails: Vec<String> = s
            .emails
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        for e in &emails {
            let ok = e.len() <= 254
                && e.split_once('@')
                    .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'))
                && !e.contains([' ', ',', ';', '<', '>', '\r', '\n']);
            if !ok {
                return Err(CmsError::invalid(
                    format!("Địa chỉ email không hợp lệ: {e}"),
                    format!("Not an email address: {e}"),
                ));
            }
        }
        let url = s.webhook_url.trim().to_owned();
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            return Err(CmsError::invalid(
                "Địa chỉ webhook phải bắt đầu bằng http:// hoặc https://.",
                "The webhook URL must start with http:// or https://.",
            ));
        }
        if s.offline_minutes > 1440 || emails.len() > 20 {
            return Err(CmsError::invalid(
                "Tối đa 20 email; thời gian mất kết nối từ 0 đến 1440 phút.",
                "At most 20 emails; offline minutes 0 to 1440.",
            ));
        }
        let clean = AlertSettings {
            emails,
            webhook_url: url,
            offline_minutes: s.offline_minutes,
        };
        let stored = clean.clone();
        let p = p.clone();
        self.write(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO alert_settings (commune_id, emails, webhook_url, offline_minutes) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(commune_id) DO UPDATE SET emails = ?2, webhook_url = ?3, offline_minutes = ?4",
                rusqlite::params![cid, stored.emails.join(","), stored.webhook_url, stored.offline_minutes],
            )?;
            crate::store::audit(
                &tx,
                &super::audit_by(&p, cid, "update", "alert_settings", cid, None, super::to_json(&stored)),
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
        Ok(clean)
    }

    /// The commune's latest alerts, open ones first.
    pub async fn alerts(&self, p: &Principal) -> Result<Vec<Alert>> {
        p.require(Perm::Read)?;
        let cid = p.commune(None)?;
        self.store()
            .call(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT id, node_id, kind, detail, opened_at, closed_at FROM alerts WHERE commune_id = ?1
                     ORDER BY closed_at IS NOT NULL, id DESC LIMIT 200",
                )?;
                let rows = st.query_map([cid], |r| {
                    Ok(Alert {
                        id: r.get(0)?,
                        node_id: r.get(1)?,
                        kind: r.get(2)?,
                        detail: r.get(3)?,
                        opened_at: ms_to_time(r.get(4)?),
                        closed_at: r.get::<_, Option<i64>>(5)?.map(ms_to_time),
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    /// One round: every node's conditions against its open alerts; what changed, per
    /// commune, to deliver.
    pub async fn evaluate_alerts(&self, state: &mut AlertState) -> Result<Vec<Delivery>> {
        let now = Utc::now();
        let nodes = self.all_nodes().await?;
        // Each commune's settings, read once a round.
        let mut communes: Vec<i64> = nodes.iter().map(|(_, _, n)| n.commune_id).collect();
        communes.sort_unstable();
        communes.dedup();
        let mut all: HashMap<i64, AlertSettings> = self
            .store()
            .call(move |c| {
                communes
                    .into_iter()
                    .map(|cid| Ok((cid, settings(c, cid)?)))
                    .collect::<Result<_>>()
            })
            .await?;
        let mut wanted: Vec<(i64, i64, &'static str, String)> = Vec::new();
        let mut names: HashMap<i64, (String, String)> = HashMap::new();
        for (_, village, n) in &nodes {
            names.insert(n.id, (n.name.clone(), village.clone()));
            let offline_minutes = all
                .get(&n.commune_id)
                .map_or_else(ten, |s| s.offline_minutes);
            for (kind, detail) in self.conditions(n, offline_minutes, state, now).await? {
                wanted.push((n.commune_id, n.id, kind, detail));
            }
        }
        let since = state.failed_since.unwrap_or_else(now_ms);
        state.failed_since = Some(now_ms());
        let node_ids: Vec<(i64, i64)> =
            nodes.iter().map(|(_, _, n)| (n.id, n.commune_id)).collect();
        let changes = self
            .write(move |c| apply(c, &node_ids, &wanted, since))
            .await?;
        let mut by_commune: HashMap<i64, Vec<Notice>> = HashMap::new();
        for (commune, node, kind, detail, recovered) in changes {
            let (name, village) = names.get(&node).cloned().unwrap_or_default();
            by_commune.entry(commune).or_default().push(Notice {
                kind,
                recovered,
                node_id: node,
                node: name,
                village,
                detail,
                at: now,
            });
        }
        let mut out = Vec::new();
        for (cid, notices) in by_commune {
            let commune = self.commune(cid).await?;
            let settings = all.remove(&cid).unwrap_or_default();
            out.push(Delivery {
                commune: commune.name,
                settings,
                notices,
            });
        }
        Ok(out)
    }

    /// The alert conditions a node is in now, with a detail each.
    async fn conditions(
        &self,
        n: &Node,
        offline_minutes: u32,
        state: &mut AlertState,
        now: DateTime<Utc>,
    ) -> Result<Vec<(&'static str, String)>> {
        let mut out = Vec::new();
        if !n.enrolled {
            return Ok(out);
        }
        if !n.online {
            if n.last_seen
                .is_some_and(|t| now - t >= Duration::minutes(i64::from(offline_minutes)))
            {
                out.push(("offline", String::new()));
            }
            return Ok(out);
        }
        let Some(h) = &n.health else { return Ok(out) };
        if let Some(d) = h.disk_free_bytes.filter(|d| *d < DISK_LOW_BYTES) {
            out.push(("disk_low", format!("{:.0} MB", d as f64 / 1e6)));
        }
        if let Some(o) = h.clock_offset_ms.filter(|o| o.abs() > CLOCK_OFF_MS) {
            out.push(("clock_off", format!("{o:.0} ms")));
        }
        // Rising: more than at the last round (kept open while it keeps rising).
        let before = state.underruns.insert(n.id, h.underruns);
        if before.is_some_and(|b| h.underruns > b) {
            out.push(("underruns", h.underruns.to_string()));
        }
        if !h.missing_blobs.is_empty() {
            let desired = self.node_desired_state(n.id).await?;
            if let Some(tz) = desired.zone() {
                let plays = protocol::schedule::resolve(
                    &desired.schedules,
                    tz,
                    now,
                    now + Duration::hours(1),
                );
                let missing = plays.iter().find_map(|p| {
                    let spec = desired.schedules.iter().find(|s| s.id == p.schedule_id)?;
                    let items = spec.program.chime.iter().chain(&spec.program.items);
                    items
                        .filter_map(|i| i.sha256.as_deref())
                        .any(|sha| h.missing_blobs.iter().any(|m| m == sha))
                        .then(|| spec.title.clone())
                });
                if let Some(title) = missing {
                    out.push(("content_missing", title));
                }
            }
        }
        Ok(out)
    }
}

fn settings(c: &rusqlite::Connection, cid: i64) -> Result<AlertSettings> {
    use rusqlite::OptionalExtension;
    let row = c
        .query_row(
            "SELECT emails, webhook_url, offline_minutes FROM alert_settings WHERE commune_id = ?1",
            [cid],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                ))
            },
        )
        .optional()?;
    Ok(match row {
        Some((emails, webhook_url, offline_minutes)) => AlertSettings {
            emails: emails
                .split(',')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            webhook_url,
            offline_minutes,
        },
        None => AlertSettings {
            offline_minutes: ten(),
            ..AlertSettings::default()
        },
    })
}

/// Opens what is wanted and not open, closes what is open and no longer wanted, records
/// failed plays received since `since`: every change as (commune, node, kind, detail,
/// recovered).
#[allow(clippy::type_complexity)]
fn apply(
    c: &mut rusqlite::Connection,
    nodes: &[(i64, i64)],
    wanted: &[(i64, i64, &'static str, String)],
    since: i64,
) -> Result<Vec<(i64, i64, &'static str, String, bool)>> {
    let tx = c.transaction()?;
    let now = now_ms();
    let mut out = Vec::new();
    for (node, commune) in nodes {
        let open: Vec<(i64, String)> = {
            let mut st = tx.prepare_cached(
                "SELECT id, kind FROM alerts WHERE node_id = ?1 AND closed_at IS NULL",
            )?;
            let rows = st.query_map([node], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (_, n, kind, detail) in wanted.iter().filter(|w| w.1 == *node) {
            if !open.iter().any(|(_, k)| k == kind) {
                tx.execute(
                    "INSERT INTO alerts (commune_id, node_id, kind, detail, opened_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![commune, n, kind, detail, now],
                )?;
                out.push((*commune, *n, *kind, detail.clone(), false));
            }
        }
        for (id, kind) in &open {
            if !wanted.iter().any(|w| w.1 == *node && w.2 == kind) {
                tx.execute(
                    "UPDATE alerts SET closed_at = ?2 WHERE id = ?1",
                    rusqlite::params![id, now],
                )?;
                let kind = KINDS
                    .iter()
                    .find(|k| *k == kind)
                    .copied()
                    .unwrap_or("offline");
                out.push((*commune, *node, kind, String::new(), true));
            }
        }
    }
    // Failed plays: news once, nothing to recover from.
    let failed: Vec<(i64, i64, String)> = {
        let mut st = tx.prepare_cached(
            "SELECT n.commune_id, p.node_id, COALESCE(c.title, '') || CASE WHEN p.reason IS NULL THEN '' ELSE ': ' || p.reason END
             FROM playlogs p JOIN nodes n ON n.id = p.node_id LEFT JOIN content c ON c.id = p.content_id
             WHERE p.outcome = 'failed' AND p.rejected IS NULL AND p.received_at >= ?1 AND p.received_at < ?2",
        )?;
        let rows = st.query_map(rusqlite::params![since, now], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (commune, node, detail) in failed {
        tx.execute(
            "INSERT INTO alerts (commune_id, node_id, kind, detail, opened_at, closed_at) VALUES (?1, ?2, 'play_failed', ?3, ?4, ?4)",
            rusqlite::params![commune, node, detail, now],
        )?;
        out.push((commune, node, "play_failed", detail, false));
    }
    tx.commit()?;
    Ok(out)
}
