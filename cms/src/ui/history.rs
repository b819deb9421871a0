//! A node's health over time as small SVG charts (no script, print and work offline):
//! time online, round trip, clock offset and underruns, for the last hour, day, week or
//! month; and its latest plays.

use chrono::Duration;
use maud::{Markup, html};

use super::Page;
use crate::Cms;
use crate::error::Result;
use crate::http::reports::outcome_name;
use crate::store::history::Point;

const W: f64 = 600.0;
const H: f64 = 90.0;

/// The ranges offered: query value, span, label.
const RANGES: [(&str, i64, &str, &str); 4] = [
    ("1h", 3600, "1 giờ", "1 hour"),
    ("24h", 86_400, "24 giờ", "24 hours"),
    ("7d", 7 * 86_400, "7 ngày", "7 days"),
    ("30d", 30 * 86_400, "30 ngày", "30 days"),
];

/// One chart: `values` (t, v) over `[from, to]`, as bars or a line, with its largest value.
fn chart(
    page: &Page<'_>,
    id: &str,
    title: &str,
    unit: &str,
    (from, to): (i64, i64),
    values: &[(i64, f64)],
    bars: bool,
) -> Markup {
    let max = values
        .iter()
        .map(|v| v.1.abs())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let x = |t: i64| (t - from) as f64 / (to - from).max(1) as f64 * W;
    let y = |v: f64| H - (v / max).clamp(-1.0, 1.0) * (H - 4.0);
    let line: Vec<String> = values
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect();
    let bar_w = (W / values.len().max(1) as f64).clamp(1.0, 12.0);
    html! {
        figure.chart {
            figcaption { strong { (title) } " " span.muted { (page.t("cao nhất", "max")) " " (format!("{max:.1}")) " " (unit) } }
            svg id=(id) viewBox=(format!("0 0 {W} {H}")) preserveAspectRatio="none" role="img" aria-label=(title) {
                rect width=(W) height=(H) fill="#fff" {}
                @if bars {
                    @for (t, v) in values {
                        rect x=(format!("{:.1}", x(*t))) y=(format!("{:.1}", y(*v))) width=(format!("{bar_w:.1}"))
                            height=(format!("{:.1}", H - y(*v))) fill="#1e7b34" {}
                    }
                } @else {
                    polyline points=(line.join(" ")) fill="none" stroke="#1b2430" stroke-width="1.5" {}
                }
            }
        }
    }
}

pub async fn section(cms: &Cms, page: &Page<'_>, node: i64, range: Option<&str>) -> Result<Markup> {
    let (key, span, _, _) = RANGES
        .iter()
        .find(|r| Some(r.0) == range)
        .copied()
        .unwrap_or(RANGES[1]);
    let (res, points) = cms
        .health_history(page.p, node, Duration::seconds(span))
        .await?;
    let to = chrono::Utc::now().timestamp();
    let from = to - span;
    let per_bucket = (res / 10).max(1) as f64;
    let online: Vec<(i64, f64)> = points
        .iter()
        .map(|p| (p.t, (p.n as f64 / per_bucket).min(1.0) * 100.0))
        .collect();
    let series = |f: fn(&Point) -> Option<f64>| -> Vec<(i64, f64)> {
        points.iter().filter_map(|p| Some((p.t, f(p)?))).collect()
    };
    let mut underruns = Vec::new();
    for w in points.windows(2) {
        underruns.push((w[1].t, (w[1].underruns - w[0].underruns).max(0) as f64));
    }
    let logs = cms
        .play_logs(page.p, Some(node), (to - span) * 1000, to * 1000)
        .await?;
    let t = |vi, en| page.t(vi, en);
    Ok(html! {
        h2 { (t("Sức khoẻ theo thời gian", "Health over time")) }
        p.row #history-ranges {
            @for (k, _, vi, en) in RANGES {
                @if k == key { strong { (t(vi, en)) } } @else { a href={ "?range=" (k) "#history-ranges" } { (t(vi, en)) } }
            }
        }
        div.charts {
            (chart(page, "chart-online", t("Thời gian trực tuyến", "Time online"), "%", (from, to), &online, true))
            (chart(page, "chart-rtt", t("Độ trễ khứ hồi", "Round trip"), "ms", (from, to), &series(|p| p.round_trip_ms), false))
            (chart(page, "chart-offset", t("Lệch đồng hồ", "Clock offset"), "ms", (from, to), &series(|p| p.clock_offset_ms), false))
            (chart(page, "chart-underruns", t("Số lần thiếu dữ liệu âm thanh", "Underruns"), "", (from, to), &underruns, true))
        }
        h2 { (t("Nhật ký phát", "Play log")) }
        div.table-wrap { table #node-plays {
            thead { tr { th { (t("Giờ theo lịch", "Scheduled at")) } th { (t("Bắt đầu", "Started")) } th { (t("Kết quả", "Outcome")) } th { (t("Ghi chú", "Note")) } } }
            tbody { @for l in logs.iter().rev().take(50) { tr {
                td { (l.scheduled_at.map(|t| page.time(t)).unwrap_or_default()) }
                td { (l.started_at.map(|t| page.time(t)).unwrap_or_default()) }
                td { (outcome_name(page.lang, &l.outcome)) }
                td { (l.reason.as_deref().unwrap_or("")) }
            } } }
        } }
    })
}
