//! Broadcast reports, as communes send them upward each quarter: per village and
//! category, per content item (where and when it played), from trusted play logs only.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use protocol::Tz;
use schemars::JsonSchema;
use serde::Serialize;

use crate::auth::{Perm, Principal};
use crate::error::{CmsError, Result};
use crate::model::Content;
use crate::store::reports::{Counts, ItemPlay, ItemRow};
use crate::store::{self as q};
use crate::{Cms, Text};

/// A village's part of a report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VillageReport {
    pub village_id: i64,
    pub name: String,
    #[serde(flatten)]
    pub total: Counts,
    /// By category: news, announcement, emergency, relay, live, music, chime, test.
    pub categories: BTreeMap<String, Counts>,
}

/// `GET /api/v1/reports/summary`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Summary {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub village_id: Option<i64>,
    #[serde(flatten)]
    pub total: Counts,
    pub categories: BTreeMap<String, Counts>,
    /// Every village of the commune (or the one asked for), silent ones included, in
    /// Vietnamese order.
    pub villages: Vec<VillageReport>,
}

/// One item's plays over a period: the proof of broadcast.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ItemReport {
    pub content: Content,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub plays: Vec<ItemPlay>,
}

/// Longest report: a little over a year.
const MAX_DAYS: i64 = 400;

fn check_window(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<()> {
    if to <= from || (to - from).num_days() > MAX_DAYS {
        return Err(CmsError::invalid(
            format!("Khoảng thời gian báo cáo phải từ 1 giây đến {MAX_DAYS} ngày."),
            format!("A report covers between 1 second and {MAX_DAYS} days."),
        ));
    }
    Ok(())
}

/// The quarter a local date falls in: its first day, and the first day after it.
pub fn quarter_of(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    let q = day.month0() / 3;
    let start = NaiveDate::from_ymd_opt(day.year(), q * 3 + 1, 1).unwrap_or(day);
    let end = match q {
        3 => NaiveDate::from_ymd_opt(day.year() + 1, 1, 1),
        _ => NaiveDate::from_ymd_opt(day.year(), q * 3 + 4, 1),
    }
    .unwrap_or(day);
    (start, end)
}

/// The current quarter in the commune's zone, as UTC instants.
pub fn this_quarter(tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let (start, end) = quarter_of(Utc::now().with_timezone(&tz).date_naive());
    let at = |d| protocol::schedule::local_to_utc(tz, d, chrono::NaiveTime::MIN);
    (at(start), at(end))
}

impl Cms {
    pub async fn report_summary(
        &self,
        p: &Principal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        village: Option<i64>,
    ) -> Result<Summary> {
        self.report_summary_in(p, None, from, to, village).await
    }

    /// [`Cms::report_summary`] for a commune a province-wide admin names.
    pub async fn report_summary_in(
        &self,
        p: &Principal,
        commune: Option<i64>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        village: Option<i64>,
    ) -> Result<Summary> {
        p.require(Perm::Read)?;
        check_window(from, to)?;
        let cid = p.commune(commune)?;
        let mut villages = self.villages(p, Some(cid)).await?;
        if let Some(v) = village {
            villages.retain(|x| x.id == v);
            if villages.is_empty() {
                return Err(CmsError::NotFound(Text::new(
                    "Không tìm thấy thôn",
                    "Village",
                )));
            }
        }
        let (f, t) = (from.timestamp_millis(), to.timestamp_millis());
        let rows = self
            .store()
            .call(move |c| q::reports::by_village(c, cid, village, f, t))
            .await?;
        let mut total = Counts::default();
        let mut categories: BTreeMap<String, Counts> = BTreeMap::new();
        let villages = villages
            .into_iter()
            .map(|v| {
                let mut r = VillageReport {
                    village_id: v.id,
                    name: v.name,
                    total: Counts::default(),
                    categories: BTreeMap::new(),
                };
                for (_, cat, n) in rows.iter().filter(|(id, _, _)| *id == v.id) {
                    r.total.add(n);
                    r.categories.entry(cat.clone()).or_default().add(n);
                    categories.entry(cat.clone()).or_default().add(n);
                }
                total.add(&r.total);
                r
            })
            .collect();
        Ok(Summary {
            from,
            to,
            village_id: village,
            total,
            categories,
            villages,
        })
    }

    /// Every item that played in the period, most played first.
    pub async fn report_items(
        &self,
        p: &Principal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        village: Option<i64>,
    ) -> Result<Vec<ItemRow>> {
        p.require(Perm::Read)?;
        check_window(from, to)?;
        let cid = p.commune(None)?;
        let (f, t) = (from.timestamp_millis(), to.timestamp_millis());
        self.store()
            .call(move |c| q::reports::by_item(c, cid, village, f, t))
            .await
    }

    pub async fn report_item(
        &self,
        p: &Principal,
        id: i64,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<ItemReport> {
        check_window(from, to)?;
        let content = self.content(p, id).await?;
        let cid = content.commune_id;
        let (f, t) = (from.timestamp_millis(), to.timestamp_millis());
        let plays = self
            .store()
            .call(move |c| q::reports::item_plays(c, cid, id, f, t))
            .await?;
        Ok(ItemReport {
            content,
            from,
            to,
            plays,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    #[test]
    fn quarters() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            super::quarter_of(d(2026, 2, 14)),
            (d(2026, 1, 1), d(2026, 4, 1))
        );
        assert_eq!(
            super::quarter_of(d(2026, 12, 31)),
            (d(2026, 10, 1), d(2027, 1, 1))
        );
        assert_eq!(
            super::quarter_of(d(2026, 7, 1)),
            (d(2026, 7, 1), d(2026, 10, 1))
        );
    }
}
