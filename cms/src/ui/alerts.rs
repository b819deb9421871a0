//! Alerts: who they go to (admins set it), and the latest ones in words.

use maud::html;
use warp::reply::Response;

use super::{Page, badge, form_end};
use crate::Cms;
use crate::alerts::kind_label;
use crate::auth::Perm;
use crate::error::Result;

pub async fn alerts(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let settings = cms.alert_settings(page.p).await?;
    let list = cms.alerts(page.p).await?;
    let nodes = cms.nodes(page.p).await?;
    let name = |id: Option<i64>| {
        nodes
            .iter()
            .find(|n| Some(n.id) == id)
            .map_or("", |n| n.name.as_str())
    };
    let body = html! {
        div.table-wrap { table #alert-table {
            thead { tr {
                th { (page.t("Từ lúc", "Since")) } th { (page.t("Cụm loa", "Node")) }
                th { (page.t("Cảnh báo", "Alert")) } th { (page.t("Chi tiết", "Details")) }
                th { (page.t("Tình trạng", "State")) }
            } }
            tbody { @for a in &list { tr data-kind=(a.kind) {
                td { (page.time(a.opened_at)) }
                td { @if let Some(id) = a.node_id { a href={ "/ui/nodes/" (id) } { (name(a.node_id)) } } }
                td { (kind_label(page.lang, &a.kind, false)) }
                td { (a.detail) }
                td { @match (a.kind.as_str(), a.closed_at) {
                    ("play_failed", _) => { (badge("skipped", page.t("đã báo", "reported"))) }
                    (_, Some(t)) => { (badge("online", page.t("đã hết", "cleared"))) " " span.muted { (page.time(t)) } }
                    (_, None) => { (badge("offline", page.t("đang diễn ra", "ongoing"))) }
                } }
            } } }
        } }
        @if list.is_empty() { p.muted { (page.t("Chưa có cảnh báo nào.", "No alerts yet.")) } }
        @if page.p.can(Perm::ManagePlaces) {
            div.card {
                h2 { (page.t("Gửi cảnh báo tới", "Send alerts to")) }
                form #alert-settings data-api="/api/v1/alerts/settings" data-method="PUT"
                    data-ok=(page.t("Đã lưu nơi nhận cảnh báo.", "Alert recipients saved.")) {
                    (page.csrf_field())
                    label for="a-emails" { (page.t("Email (cách nhau bằng dấu phẩy)", "Emails (comma separated)")) }
                    input type="text" id="a-emails" name="emails" data-type="lines" value=(settings.emails.join(", "))
                        placeholder="truongthon@example.vn";
                    label for="a-webhook" { (page.t("Webhook (tuỳ chọn)", "Webhook (optional)")) }
                    input type="text" id="a-webhook" name="webhook_url" value=(settings.webhook_url) placeholder="https://";
                    label for="a-offline" { (page.t("Báo mất kết nối sau (phút)", "Report offline after (minutes)")) }
                    input type="number" id="a-offline" name="offline_minutes" data-type="int" min="0" max="1440"
                        value=(settings.offline_minutes);
                    p.muted { (page.t(
                        "Mỗi sự cố chỉ báo một lần và báo lại khi đã hết. Nhiều cụm loa cùng gặp sự cố (mất sóng cả xã) được gộp thành một thư.",
                        "Each problem is told once, and again when it clears. Many at once (a whole commune losing signal) come as one message.",
                    )) }
                    (form_end(page.t("Lưu", "Save")))
                }
            }
        }
    };
    Ok(page.render(page.t("Cảnh báo", "Alerts"), body))
}
