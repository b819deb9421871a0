//! The fleet at a glance: every node's status (online, degraded with the reasons, or
//! offline), problems first, with filters by village and status, and a map drawn from
//! the nodes' GPS positions as SVG (no tile server: works with no Internet). The changing
//! part refreshes itself from `/ui/fleet/now`.

use maud::{Markup, html};
use warp::reply::Response;

use super::{Page, badge};
use crate::Cms;
use crate::error::Result;
use crate::http::Req;
use crate::model::{Node, Village};
use crate::service::fleet::{self, Problem, Status};

fn class(s: Status) -> &'static str {
    match s {
        Status::Offline => "offline",
        Status::Degraded => "pending",
        Status::Online => "online",
    }
}

fn colour(s: Status) -> &'static str {
    match s {
        Status::Offline => "#b3261e",
        Status::Degraded => "#a15c00",
        Status::Online => "#1e7b34",
    }
}

struct Row {
    node: Node,
    village: String,
    status: Status,
    problems: Vec<Problem>,
    playing: Option<String>,
}

async fn rows(cms: &Cms, page: &Page<'_>, req: &Req) -> Result<(Vec<Row>, Vec<Village>)> {
    let villages = cms.villages(page.p, None).await?;
    let want_village: Option<i64> = req.q("village").and_then(|v| v.parse().ok());
    let want_status = req.q("status").filter(|s| !s.is_empty());
    let mut out = Vec::new();
    for node in cms.nodes(page.p).await? {
        let (status, problems) = fleet::status(&node);
        if want_village.is_some_and(|v| v != node.village_id)
            || want_status.is_some_and(|s| s != status.as_str())
        {
            continue;
        }
        let playing = match node.health.as_ref().and_then(|h| h.playing.as_ref()) {
            Some(p) => match p.content_id {
                Some(id) => cms.content(page.p, id).await.ok().map(|c| c.title),
                None => Some(page.t("Phát trực tiếp", "Live").to_owned()),
            },
            None => None,
        };
        let village = villages
            .iter()
            .find(|v| v.id == node.village_id)
            .map_or_else(String::new, |v| v.name.clone());
        out.push(Row {
            node,
            village,
            status,
            problems,
            playing,
        });
    }
    // Problems first; then in the order villages and names are read.
    out.sort_by(|a, b| {
        a.status
            .cmp(&b.status)
            .then_with(|| crate::collate::vi_cmp(&a.village, &b.village))
            .then_with(|| crate::collate::vi_cmp(&a.node.name, &b.node.name))
    });
    Ok((out, villages))
}

/// The nodes with a position, as dots on a plain SVG map scaled to fit them.
fn map(page: &Page<'_>, rows: &[Row]) -> Markup {
    let placed: Vec<(&Row, f64, f64)> = rows
        .iter()
        .filter_map(|r| Some((r, r.node.lat?, r.node.lon?)))
        .collect();
    if placed.is_empty() {
        return html! { p.muted { (page.t("Chưa có cụm loa nào có toạ độ GPS.", "No node has a GPS position yet.")) } };
    }
    let (w, h, pad) = (600.0, 360.0, 30.0);
    let lat = |f: fn(f64, f64) -> f64| placed.iter().map(|p| p.1).fold(placed[0].1, f);
    let lon = |f: fn(f64, f64) -> f64| placed.iter().map(|p| p.2).fold(placed[0].2, f);
    let (lat0, lat1, lon0, lon1) = (lat(f64::min), lat(f64::max), lon(f64::min), lon(f64::max));
    // Equal scale both ways (near the equator a degree is a degree), at least ~1 km across.
    let span = (lat1 - lat0).max(lon1 - lon0).max(0.01);
    let scale = ((w - 2.0 * pad) / span).min((h - 2.0 * pad) / span);
    // The nodes' box in the middle of the map.
    let (dx, dy) = (
        (w - (lon1 - lon0) * scale) / 2.0,
        (h - (lat1 - lat0) * scale) / 2.0,
    );
    let x = |lon: f64| dx + (lon - lon0) * scale;
    let y = |lat: f64| h - dy - (lat - lat0) * scale;
    html! {
        svg #fleet-map viewBox=(format!("0 0 {w} {h}")) role="img" aria-label=(page.t("Bản đồ cụm loa", "Map of the nodes")) {
            rect width=(w) height=(h) fill="#eef3f7" {}
            @for (r, la, lo) in &placed {
                a href={ "/ui/nodes/" (r.node.id) } {
                    circle cx=(format!("{:.1}", x(*lo))) cy=(format!("{:.1}", y(*la))) r="9" fill=(colour(r.status))
                        stroke="#fff" stroke-width="2" data-status=(r.status.as_str()) {
                        title { (r.node.name) " · " (r.village) " · " (r.status.label(page.lang)) }
                    }
                    text x=(format!("{:.1}", x(*lo) + 12.0)) y=(format!("{:.1}", y(*la) + 4.0)) font-size="12" { (r.node.name) }
                }
            }
        }
    }
}

fn table(page: &Page<'_>, rows: &[Row]) -> Markup {
    let count = |s: Status| rows.iter().filter(|r| r.status == s).count();
    html! {
        div.grid #fleet-counts {
            @for s in [Status::Offline, Status::Degraded, Status::Online] {
                div.card { div.stat data-count=(s.as_str()) { (count(s)) } div { (badge(class(s), s.label(page.lang))) } }
            }
        }
        (map(page, rows))
        div.table-wrap { table #fleet-table {
            thead { tr {
                th { (page.t("Cụm loa", "Node")) } th { (page.t("Thôn", "Village")) }
                th { (page.t("Trạng thái", "Status")) } th { (page.t("Lần cuối", "Last seen")) }
                th { (page.t("Phiên bản", "Version")) } th { (page.t("Lệch đồng hồ", "Clock offset")) }
                th { (page.t("Đang phát", "Playing")) } th { (page.t("Âm lượng", "Volume")) }
                th { (page.t("Ổ đĩa còn trống", "Disk free")) }
            } }
            tbody { @for r in rows {
                @let h = r.node.health.as_ref();
                tr data-node=(r.node.id) data-status=(r.status.as_str()) {
                    td { a href={ "/ui/nodes/" (r.node.id) } { (r.node.name) } }
                    td { (r.village) }
                    td {
                        (badge(class(r.status), r.status.label(page.lang)))
                        @for p in &r.problems { div.muted { (p.label(page.lang)) } }
                    }
                    td { (r.node.last_seen.map(|t| page.time(t)).unwrap_or_else(|| page.t("chưa kết nối", "never").to_owned())) }
                    td { (h.map_or("—", |h| h.agent.as_str())) }
                    td { (h.and_then(|h| h.clock_offset_ms).map_or_else(|| "—".to_owned(), |o| format!("{o:.1} ms"))) }
                    td { (r.playing.as_deref().unwrap_or("—")) }
                    td { (h.map_or_else(|| "—".to_owned(), |h| h.volume.to_string())) }
                    td { (h.and_then(|h| h.disk_free_bytes).map_or_else(|| "—".to_owned(), |b| format!("{:.0} MB", b as f64 / 1e6))) }
                }
            } }
        } }
    }
}

/// `GET /ui/fleet/now`: the changing part alone, for the page's refresh.
pub async fn now(cms: &Cms, page: &Page<'_>, req: &Req) -> Result<Response> {
    let (rows, _) = rows(cms, page, req).await?;
    Ok(crate::http::reply::html(
        200,
        table(page, &rows).into_string(),
    ))
}

pub async fn fleet(cms: &Cms, page: &Page<'_>, req: &Req) -> Result<Response> {
    let (rows, villages) = rows(cms, page, req).await?;
    // The filters again, for the refresh (values are ids and status keys).
    let query: Vec<String> = ["village", "status"]
        .iter()
        .filter_map(|k| {
            req.q(k)
                .map(|v| format!("{k}={}", v.replace(['&', '=', '#'], "")))
        })
        .collect();
    let query = query.join("&");
    let chosen = req.q("village").and_then(|v| v.parse::<i64>().ok());
    let body = html! {
        form.card.row method="get" action="/ui/fleet" {
            span {
                label for="f-village" { (page.t("Thôn", "Village")) }
                select id="f-village" name="village" {
                    option value="" { (page.t("Mọi thôn", "All villages")) }
                    @for v in &villages { option value=(v.id) selected[chosen == Some(v.id)] { (v.name) } }
                }
            }
            span {
                label for="f-status" { (page.t("Trạng thái", "Status")) }
                select id="f-status" name="status" {
                    option value="" { (page.t("Mọi trạng thái", "Any status")) }
                    @for s in [Status::Offline, Status::Degraded, Status::Online] {
                        option value=(s.as_str()) selected[req.q("status") == Some(s.as_str())] { (s.label(page.lang)) }
                    }
                }
            }
            button type="submit" { (page.t("Lọc", "Filter")) }
        }
        div #fleet-now data-refresh={ "/ui/fleet/now?" (query) } { (table(page, &rows)) }
    };
    Ok(page.render(page.t("Toàn bộ cụm loa", "The fleet"), body))
}
