//! The province's view: every commune side by side (nodes online, plays delivered vs
//! scheduled over the last seven days, villages gone silent), silent ones first. Since
//! July 2025 communes report straight to the province: this is what it reads.

use chrono::{Duration, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use super::fleet::{self, Status};
use crate::Cms;
use crate::auth::{Perm, Principal};
use crate::error::{CmsError, Result};
use crate::store::{self as q};

/// One commune's figures.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CommuneFigures {
    pub commune_id: i64,
    pub slug: String,
    pub name: String,
    pub nodes: u64,
    pub online: u64,
    pub degraded: u64,
    pub offline: u64,
    /// Plays due and played over the last seven days.
    pub scheduled_week: u64,
    pub played_week: u64,
    pub villages: u64,
    /// Villages where nothing played in seven days, or whose every node is offline.
    pub silent_villages: Vec<String>,
}

impl Cms {
    /// Every commune's figures (province-wide admins), silent villages first.
    pub async fn province(&self, p: &Principal) -> Result<Vec<CommuneFigures>> {
        p.require(Perm::Read)?;
        if p.user.commune_id.is_some() {
            return Err(CmsError::forbidden(
                "Chỉ quản trị viên cấp tỉnh xem được số liệu toàn tỉnh.",
                "Only province-wide users see the whole province.",
            ));
        }
        let nodes = self.all_nodes().await?;
        let communes = self.store().call(|c| q::users::communes(c)).await?;
        let to = Utc::now();
        let from = to - Duration::days(7);
        let mut out = Vec::new();
        for c in communes {
            let summary = self
                .report_summary_in(p, Some(c.id), from, to, None)
                .await?;
            let mine: Vec<_> = nodes
                .iter()
                .filter(|(_, _, n)| n.commune_id == c.id)
                .collect();
            let count = |s: Status| {
                mine.iter()
                    .filter(|(_, _, n)| fleet::status(n).0 == s)
                    .count() as u64
            };
            let silent = summary
                .villages
                .iter()
                .filter(|v| {
                    let here: Vec<_> = mine
                        .iter()
                        .filter(|(_, _, n)| n.village_id == v.village_id)
                        .collect();
                    let all_down = !here.is_empty() && here.iter().all(|(_, _, n)| !n.online);
                    (!here.is_empty() && v.total.played == 0) || all_down
                })
                .map(|v| v.name.clone())
                .collect();
            out.push(CommuneFigures {
                commune_id: c.id,
                slug: c.slug,
                name: c.name,
                nodes: mine.len() as u64,
                online: count(Status::Online),
                degraded: count(Status::Degraded),
                offline: count(Status::Offline),
                scheduled_week: summary.total.scheduled,
                played_week: summary.total.played,
                villages: summary.villages.len() as u64,
                silent_villages: silent,
            });
        }
        out.sort_by(|a, b| {
            b.silent_villages
                .len()
                .cmp(&a.silent_villages.len())
                .then_with(|| crate::collate::vi_cmp(&a.name, &b.name))
        });
        Ok(out)
    }
}
