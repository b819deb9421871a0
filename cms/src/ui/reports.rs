//! The broadcast report a commune sends upward: a period (a quarter, or any dates), per
//! village and category, a chart, every item that played with its proof of broadcast,
//! CSV for a spreadsheet and a page that prints to sign.

use chrono::{DateTime, Datelike, Duration, Utc};
use maud::{Markup, html};
use protocol::Tz;
use warp::reply::Response;

use super::Page;
use crate::Cms;
use crate::error::Result;
use crate::http::Req;
use crate::http::reports::{category_name, outcome_name};
use crate::service::reports::{Summary, quarter_of};
use crate::store::reports::Counts;

fn hours(s: u64) -> String {
    format!("{:.1}", s as f64 / 3600.0)
}

/// The period as query parameters (local dates, `to` inclusive).
fn period_query(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> String {
    let last = (to - Duration::milliseconds(1))
        .with_timezone(&tz)
        .date_naive();
    format!(
        "from={}&to={}",
        from.with_timezone(&tz).format("%Y-%m-%d"),
        last.format("%Y-%m-%d")
    )
}

/// The last five quarters, as links.
fn quarters(page: &Page<'_>, tz: Tz) -> Markup {
    let today = Utc::now().with_timezone(&tz).date_naive();
    let mut list = Vec::new();
    let mut day = today;
    for _ in 0..5 {
        let (start, end) = quarter_of(day);
        list.push((start, end - Duration::days(1)));
        day = start - Duration::days(1);
    }
    html! {
        p.row.no-print {
            @for (start, last) in list.iter().rev() {
                a.button.secondary href={ "/ui/reports?from=" (start.format("%Y-%m-%d")) "&to=" (last.format("%Y-%m-%d")) } {
                    (page.t("Quý", "Q")) " " (start.month0() / 3 + 1) "/" (start.year())
                }
            }
        }
    }
}

pub(super) fn count_cells(n: &Counts) -> Markup {
    html! {
        td.num { (n.scheduled) } td.num { (n.played) } td.num { (n.failed) }
        td.num { (n.interrupted) } td.num { (n.skipped) } td.num { (hours(n.air_time_s)) }
    }
}

pub(super) fn count_heads(page: &Page<'_>) -> Markup {
    html! {
        th { (page.t("Theo lịch", "Scheduled")) } th { (page.t("Đã phát", "Played")) }
        th { (page.t("Lỗi", "Failed")) } th { (page.t("Bị ngắt", "Interrupted")) }
        th { (page.t("Bỏ qua", "Skipped")) } th { (page.t("Giờ phát sóng", "Air time (h)")) }
    }
}

/// Plays due and played per village, as bars (SVG: prints and works offline).
fn chart(page: &Page<'_>, s: &Summary) -> Markup {
    let max = s
        .villages
        .iter()
        .map(|v| v.total.scheduled.max(v.total.played))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (label_w, bar_w, row_h) = (170.0, 420.0, 34.0);
    let height = row_h * s.villages.len() as f64 + 30.0;
    html! {
        svg #report-chart viewBox=(format!("0 0 {} {height}", label_w + bar_w + 60.0)) role="img"
            aria-label=(page.t("Số lần phát theo thôn", "Plays per village")) {
            @for (i, v) in s.villages.iter().enumerate() {
                @let y = i as f64 * row_h + 4.0;
                text x="0" y=(y + 16.0) font-size="13" { (v.name) }
                rect x=(label_w) y=(y) width=(bar_w * v.total.scheduled as f64 / max) height="12" fill="#d8dee6" {}
                rect x=(label_w) y=(y + 14.0) width=(bar_w * v.total.played as f64 / max) height="12" fill="#1e7b34" {}
                text x=(label_w + bar_w + 6.0) y=(y + 24.0) font-size="12" { (v.total.played) "/" (v.total.scheduled) }
            }
            @let y = height - 10.0;
            rect x=(label_w) y=(y - 10.0) width="12" height="10" fill="#d8dee6" {}
            text x=(label_w + 16.0) y=(y) font-size="12" { (page.t("theo lịch", "scheduled")) }
            rect x=(label_w + 110.0) y=(y - 10.0) width="12" height="10" fill="#1e7b34" {}
            text x=(label_w + 126.0) y=(y) font-size="12" { (page.t("đã phát", "played")) }
        }
    }
}

pub async fn reports(
    cms: &Cms,
    page: &Page<'_>,
    req: &Req,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Response> {
    let village = req.q("village").and_then(|v| v.parse().ok());
    let s = cms.report_summary(page.p, from, to, village).await?;
    let items = cms.report_items(page.p, from, to, village).await?;
    let query = period_query(from, to, page.tz);
    let last = (to - Duration::milliseconds(1)).with_timezone(&page.tz);
    let categories: Vec<&String> = s.categories.keys().collect();
    let lang = page.lang;
    let body = html! {
        (quarters(page, page.tz))
        form.card.row.no-print method="get" action="/ui/reports" {
            span {
                label for="r-from" { (page.t("Từ ngày", "From")) }
                input type="text" id="r-from" name="from" value=(from.with_timezone(&page.tz).format("%d/%m/%Y")) placeholder="dd/mm/yyyy";
            }
            span {
                label for="r-to" { (page.t("Đến ngày", "Until")) }
                input type="text" id="r-to" name="to" value=(last.format("%d/%m/%Y")) placeholder="dd/mm/yyyy";
            }
            button type="submit" { (page.t("Xem", "Show")) }
        }
        p {
            strong { (page.commune_name) } " · " (page.t("Từ", "From")) " " (from.with_timezone(&page.tz).format("%d/%m/%Y"))
            " " (page.t("đến", "to")) " " (last.format("%d/%m/%Y"))
        }
        div.grid {
            div.card { div.stat #r-played { (s.total.played) } div { (page.t("lượt phát trọn vẹn", "plays completed")) } }
            div.card { div.stat { (s.total.scheduled) } div { (page.t("lượt theo lịch", "plays scheduled")) } }
            div.card { div.stat { (hours(s.total.air_time_s)) } div { (page.t("giờ phát sóng", "hours on air")) } }
            div.card { div.stat { (s.total.failed + s.total.skipped) } div { (page.t("lượt lỗi hoặc bỏ qua", "failed or skipped")) } }
        }
        (chart(page, &s))
        h2 { (page.t("Theo thôn", "By village")) }
        div.table-wrap { table #report-villages {
            thead { tr { th { (page.t("Thôn", "Village")) } (count_heads(page))
                @for c in &categories { th { (category_name(lang, c)) } } } }
            tbody {
                @for v in &s.villages { tr {
                    td { (v.name) } (count_cells(&v.total))
                    @for c in &categories { td.num { (v.categories.get(*c).map_or(0, |n| n.played)) } }
                } }
                tr.total { td { strong { (page.t("Toàn xã", "Whole commune")) } } (count_cells(&s.total))
                    @for c in &categories { td.num { (s.categories.get(*c).map_or(0, |n| n.played)) } } }
            }
        } }
        p.muted { (page.t(
            "Các cột thể loại đếm số lượt đã phát. Chỉ tính nhật ký phát đã kiểm tra: cụm loa chỉ báo được lịch và nội dung đã được gửi cho nó.",
            "Category columns count plays completed. Only checked play logs count: a node can report only schedules and items it was sent.",
        )) }
        h2 { (page.t("Theo nội dung", "By item")) }
        div.table-wrap { table #report-items {
            thead { tr { th { (page.t("Nội dung", "Item")) } th { (page.t("Thể loại", "Category")) }
                th { (page.t("Số thôn", "Villages")) } (count_heads(page)) } }
            tbody { @for i in &items { tr {
                td { a href={ "/ui/reports/items/" (i.content_id) "?" (query) } { (i.title) } }
                td { (category_name(lang, &i.category)) } td.num { (i.villages) } (count_cells(&i.counts))
            } } }
        } }
        p.row.no-print {
            a.button.secondary href={ "/api/v1/reports/summary?" (query) "&format=csv" } download { (page.t("Tải CSV theo thôn", "CSV by village")) }
            a.button.secondary href={ "/api/v1/reports/items?" (query) "&format=csv" } download { (page.t("Tải CSV theo nội dung", "CSV by item")) }
            button type="button" data-print { (page.t("In báo cáo", "Print")) }
        }
        (signatures(page))
    };
    Ok(page.render(page.t("Báo cáo phát thanh", "Broadcast report"), body))
}

/// Where the report is signed, on paper only.
fn signatures(page: &Page<'_>) -> Markup {
    html! {
        div.signatures.print-only {
            div { strong { (page.t("Người lập báo cáo", "Prepared by")) } br; (page.t("(ký, ghi rõ họ tên)", "(signature and name)")) }
            div { strong { (page.t("Chủ tịch UBND xã", "Chair of the commune")) } br; (page.t("(ký, đóng dấu)", "(signature and seal)")) }
        }
    }
}

/// One item's plays: the proof of broadcast.
pub async fn item(
    cms: &Cms,
    page: &Page<'_>,
    id: i64,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Result<Response> {
    let r = cms.report_item(page.p, id, from, to).await?;
    let villages = cms.villages(page.p, None).await?;
    let query = period_query(from, to, page.tz);
    let local = |t: Option<DateTime<Utc>>| t.map(|t| page.time(t)).unwrap_or_default();
    let body = html! {
        p { (super::library::category_label(page, &r.content.category)) " · " (r.plays.len()) " " (page.t("lượt", "plays")) }
        div.table-wrap { table #item-plays {
            thead { tr {
                th { (page.t("Cụm loa", "Node")) } th { (page.t("Thôn", "Village")) }
                th { (page.t("Giờ theo lịch", "Scheduled at")) } th { (page.t("Bắt đầu", "Started")) }
                th { (page.t("Kết thúc", "Ended")) } th { (page.t("Kết quả", "Outcome")) }
            } }
            tbody { @for p in &r.plays { tr {
                td { (p.node) }
                td { (villages.iter().find(|v| v.id == p.village_id).map_or("", |v| v.name.as_str())) }
                td { (local(p.scheduled_at)) } td { (local(p.started_at)) } td { (local(p.ended_at)) }
                td { (outcome_name(page.lang, &p.outcome)) }
            } } }
        } }
        p.row.no-print {
            a.button.secondary href={ "/api/v1/reports/items/" (id) "?" (query) "&format=csv" } download { (page.t("Tải CSV", "CSV")) }
            a href={ "/ui/reports?" (query) } { (page.t("Về báo cáo", "Back to the report")) }
        }
    };
    Ok(page.render(&r.content.title, body))
}
