//! Report routes: JSON, or CSV (`?format=csv`: UTF-8 with a byte-order mark, so Excel
//! shows Vietnamese) for the sheet a commune sends upward. Periods are `from`/`to` as RFC
//! 3339 instants or dates (`2026-10-01`, in the commune's zone; a `to` date counts whole);
//! without them, the current quarter.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use protocol::Tz;
use warp::http::{HeaderValue, header};
use warp::reply::Response;

use super::api::{ok, query_num};
use super::table::Ctx;
use super::{Req, reply};
use crate::error::{CmsError, Result};
use crate::i18n::Lang;
use crate::model::CATEGORIES;
use crate::service::reports::this_quarter;
use crate::store::reports::Counts;

/// An instant, or a local date (whole days: `to` runs to the end of its day).
fn bound(req: &Req, key: &str, tz: Tz) -> Result<Option<DateTime<Utc>>> {
    let Some(v) = req.q(key) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(v, "%d/%m/%Y"))
        .map_err(|_| {
            CmsError::invalid(
                format!("Tham số {key} phải là ngày (2026-10-01 hoặc 01/10/2026) hoặc thời điểm RFC 3339."),
                format!("Parameter {key} must be a date (2026-10-01 or 01/10/2026) or an RFC 3339 time."),
            )
        })?;
    let day = if key == "to" {
        day + Duration::days(1)
    } else {
        day
    };
    Ok(Some(protocol::schedule::local_to_utc(
        tz,
        day,
        chrono::NaiveTime::MIN,
    )))
}

/// The report's period and the commune's zone.
pub(crate) async fn period(c: &Ctx<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>, Tz)> {
    let p = c.p()?;
    let commune = c.cms.commune(p.commune(None)?).await?;
    let tz = crate::service::commune_tz(&commune)?;
    let (qf, qt) = this_quarter(tz);
    let from = bound(c.req, "from", tz)?.unwrap_or(qf);
    let to = bound(c.req, "to", tz)?.unwrap_or(qt);
    Ok((from, to, tz))
}

fn wants_csv(req: &Req) -> bool {
    req.q("format") == Some("csv")
}

/// A CSV file as Excel opens it: BOM, CRLF, every field quoted.
pub(crate) fn csv(name: &str, rows: &[Vec<String>]) -> Response {
    let mut out = String::from('\u{feff}');
    for r in rows {
        let fields: Vec<String> = r
            .iter()
            .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
            .collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    let mut res = reply::with_status(200, "text/csv; charset=utf-8", out);
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

pub fn category_name(lang: Lang, key: &str) -> String {
    match key {
        "live" => lang.t("Phát trực tiếp", "Live").into(),
        "test" => lang.t("Phát thử", "Test").into(),
        _ => CATEGORIES
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or_else(|| key.to_owned(), |(_, vi, en)| lang.t(vi, en).to_owned()),
    }
}

fn hours(s: u64) -> String {
    format!("{:.2}", s as f64 / 3600.0)
}

fn counts_fields(n: &Counts) -> Vec<String> {
    vec![
        n.scheduled.to_string(),
        n.played.to_string(),
        n.failed.to_string(),
        n.interrupted.to_string(),
        n.skipped.to_string(),
        hours(n.air_time_s),
    ]
}

fn counts_heads(lang: Lang) -> Vec<String> {
    [
        ("Theo lịch", "Scheduled"),
        ("Đã phát", "Played"),
        ("Lỗi", "Failed"),
        ("Bị ngắt", "Interrupted"),
        ("Bỏ qua", "Skipped"),
        ("Giờ phát sóng", "Air time (h)"),
    ]
    .iter()
    .map(|(vi, en)| lang.t(vi, en).to_owned())
    .collect()
}

pub async fn summary(c: Ctx<'_>) -> Result<Response> {
    let (from, to, _) = period(&c).await?;
    let village = query_num(c.req, "village")?;
    let s = c.cms.report_summary(c.p()?, from, to, village).await?;
    if !wants_csv(c.req) {
        return ok(&s);
    }
    let lang = c.req.lang;
    let mut head = vec![
        lang.t("Thôn", "Village").to_owned(),
        lang.t("Thể loại", "Category").to_owned(),
    ];
    head.extend(counts_heads(lang));
    let mut rows = vec![head];
    let all = lang.t("Tất cả", "All").to_owned();
    for v in &s.villages {
        for (cat, n) in &v.categories {
            let mut r = vec![v.name.clone(), category_name(lang, cat)];
            r.extend(counts_fields(n));
            rows.push(r);
        }
        let mut r = vec![v.name.clone(), all.clone()];
        r.extend(counts_fields(&v.total));
        rows.push(r);
    }
    let mut r = vec![lang.t("Toàn xã", "Whole commune").to_owned(), all];
    r.extend(counts_fields(&s.total));
    rows.push(r);
    Ok(csv("bao-cao-phat-thanh.csv", &rows))
}

pub async fn items(c: Ctx<'_>) -> Result<Response> {
    let (from, to, _) = period(&c).await?;
    let village = query_num(c.req, "village")?;
    let list = c.cms.report_items(c.p()?, from, to, village).await?;
    if !wants_csv(c.req) {
        return ok(&list);
    }
    let lang = c.req.lang;
    let mut head = vec![
        lang.t("Nội dung", "Item").to_owned(),
        lang.t("Thể loại", "Category").to_owned(),
        lang.t("Số thôn", "Villages").to_owned(),
    ];
    head.extend(counts_heads(lang));
    let mut rows = vec![head];
    for i in &list {
        let mut r = vec![
            i.title.clone(),
            category_name(lang, &i.category),
            i.villages.to_string(),
        ];
        r.extend(counts_fields(&i.counts));
        rows.push(r);
    }
    Ok(csv("noi-dung-da-phat.csv", &rows))
}

pub async fn item(c: Ctx<'_>) -> Result<Response> {
    let (from, to, tz) = period(&c).await?;
    let r = c.cms.report_item(c.p()?, c.req.id(0)?, from, to).await?;
    if !wants_csv(c.req) {
        return ok(&r);
    }
    let lang = c.req.lang;
    let villages = c.cms.villages(c.p()?, None).await?;
    let local = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.with_timezone(&tz).format("%d/%m/%Y %H:%M:%S").to_string())
            .unwrap_or_default()
    };
    let mut rows = vec![
        [
            ("Cụm loa", "Node"),
            ("Thôn", "Village"),
            ("Giờ theo lịch", "Scheduled at"),
            ("Bắt đầu", "Started"),
            ("Kết thúc", "Ended"),
            ("Kết quả", "Outcome"),
        ]
        .iter()
        .map(|(vi, en)| lang.t(vi, en).to_owned())
        .collect::<Vec<_>>(),
    ];
    for p in &r.plays {
        rows.push(vec![
            p.node.clone(),
            villages
                .iter()
                .find(|v| v.id == p.village_id)
                .map(|v| v.name.clone())
                .unwrap_or_default(),
            local(p.scheduled_at),
            local(p.started_at),
            local(p.ended_at),
            outcome_name(lang, &p.outcome).to_owned(),
        ]);
    }
    Ok(csv(&format!("noi-dung-{}.csv", r.content.id), &rows))
}

pub fn outcome_name(lang: Lang, outcome: &str) -> &'static str {
    match outcome {
        "completed" => lang.t("Đã phát", "Played"),
        "interrupted" => lang.t("Bị ngắt", "Interrupted"),
        "failed" => lang.t("Lỗi", "Failed"),
        _ => lang.t("Bỏ qua", "Skipped"),
    }
}
