//! The province's page: every commune side by side, silent villages first; and any one
//! commune opened to its villages.

use chrono::{Duration, Utc};
use maud::html;
use warp::reply::Response;

use super::{Page, badge};
use crate::Cms;
use crate::error::Result;

pub async fn province(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let list = cms.province(page.p).await?;
    let t = |vi, en| page.t(vi, en);
    let body = html! {
        p.muted { (t("Bảy ngày qua. Xã có thôn im lặng (không phát được gì, hoặc mọi cụm loa mất kết nối) đứng đầu.",
            "The last seven days. Communes with silent villages (nothing played, or every node offline) first.")) }
        div.table-wrap { table #province-table {
            thead { tr {
                th { (t("Xã", "Commune")) } th { (t("Cụm loa trực tuyến", "Nodes online")) }
                th { (t("Có vấn đề", "Degraded")) } th { (t("Mất kết nối", "Offline")) }
                th { (t("Đã phát / theo lịch", "Played / scheduled")) } th { (t("Thôn im lặng", "Silent villages")) }
            } }
            tbody { @for c in &list { tr data-commune=(c.slug) {
                td { a href={ "/ui/province/" (c.commune_id) } { (c.name) } }
                td.num { (c.online + c.degraded) " / " (c.nodes) }
                td.num { (c.degraded) }
                td.num { @if c.offline > 0 { (badge("offline", &c.offline.to_string())) } @else { "0" } }
                td.num { (c.played_week) " / " (c.scheduled_week) }
                td { @if c.silent_villages.is_empty() { "—" } @else { (badge("offline", &c.silent_villages.join(", "))) } }
            } } }
        } }
        p.muted { (t("Số liệu dạng JSON cho hệ thống của tỉnh: GET /api/v1/province, với mã truy cập phạm vi province.",
            "The same figures as JSON for provincial systems: GET /api/v1/province, with a token of scope province.")) }
    };
    Ok(page.render(t("Toàn tỉnh", "Province"), body))
}

pub async fn commune(cms: &Cms, page: &Page<'_>, id: i64) -> Result<Response> {
    // Province-wide users only (the province figures check it).
    let list = cms.province(page.p).await?;
    let figures = list.iter().find(|c| c.commune_id == id);
    let to = Utc::now();
    let s = cms
        .report_summary_in(page.p, Some(id), to - Duration::days(7), to, None)
        .await?;
    let t = |vi, en| page.t(vi, en);
    let body = html! {
        @if let Some(f) = figures {
            p { (t("Cụm loa trực tuyến", "Nodes online")) ": " strong { (f.online + f.degraded) " / " (f.nodes) } }
        }
        div.table-wrap { table #province-villages {
            thead { tr { th { (t("Thôn", "Village")) } (super::reports::count_heads(page)) } }
            tbody { @for v in &s.villages { tr { td { (v.name) } (super::reports::count_cells(&v.total)) } } }
        } }
        p { a href="/ui/province" { (t("Về toàn tỉnh", "Back to the province")) } }
    };
    let name = figures.map_or_else(String::new, |f| f.name.clone());
    Ok(page.render(&name, body))
}
