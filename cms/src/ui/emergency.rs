//! Emergencies in the web UI: the red button's page (what to say, where, confirmed before
//! it goes out) with the latest emergencies, and one emergency's live page: how many nodes
//! confirmed playing it out of how many, which have not and why, and the stop button. The
//! live page follows `GET /api/v1/emergency/{id}/events` (server-sent events).

use maud::{Markup, html};
use warp::reply::Response;

use super::{Page, badge, form_end};
use crate::Cms;
use crate::auth::Perm;
use crate::error::Result;
use crate::model::{ContentStatus, Emergency, EmergencyNode};
use crate::store::ContentFilter;

/// A node's state as staff read it: (badge class, Vietnamese, English).
const STATES: [(&str, &str, &str, &str); 5] = [
    (
        "sent",
        "pending",
        "Đã gửi, chưa xác nhận",
        "Sent, not confirmed",
    ),
    (
        "waiting",
        "pending",
        "Đang tải âm thanh",
        "Fetching the audio",
    ),
    ("playing", "approved", "Đang phát", "Playing"),
    ("ended", "draft", "Đã phát", "Played"),
    ("failed", "rejected", "Lỗi", "Failed"),
];

fn state_label(page: &Page<'_>, state: &str) -> Markup {
    match STATES.iter().find(|(k, ..)| *k == state) {
        Some((_, class, vi, en)) => badge(class, page.t(vi, en)),
        None => badge("draft", state),
    }
}

/// The state labels in the page's language, for the live page's script.
fn labels_json(page: &Page<'_>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = STATES
        .iter()
        .map(|(k, class, vi, en)| {
            (
                (*k).to_string(),
                serde_json::json!({ "class": class, "text": page.t(vi, en) }),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

fn status_text(page: &Page<'_>, e: &Emergency) -> String {
    match (e.active, e.stopped_at) {
        (true, _) => page.t("Đang phát", "On air").to_string(),
        (false, Some(at)) => format!("{} {}", page.t("Đã dừng lúc", "Stopped at"), page.time(at)),
        (false, None) => page.t("Đã phát xong", "Finished").to_string(),
    }
}

fn node_row(page: &Page<'_>, n: &EmergencyNode) -> Markup {
    html! {
        tr data-node=(n.node_id) {
            td { a href={ "/ui/nodes/" (n.node_id) } { (n.name) } }
            td { (n.village) }
            td { (state_label(page, &n.state)) }
            td { (n.reached_at.map(|t| page.time(t)).unwrap_or_default()) }
            td { (n.message) }
        }
    }
}

/// `/ui/emergency`: the form (approvers and admins) and the latest emergencies.
pub async fn emergencies(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let p = page.p;
    let list = cms.emergencies(p).await?;
    let form = match p.can(Perm::Approve) {
        true => Some(new_form(cms, page).await?),
        false => None,
    };
    let body = html! {
        @if let Some(form) = form { (form) }
        h2 { (page.t("Tin khẩn cấp gần đây", "Recent emergencies")) }
        @if list.is_empty() {
            p.muted { (page.t("Chưa có tin khẩn cấp nào.", "No emergency yet.")) }
        } @else {
            div.table-wrap { table #emergencies {
                thead { tr {
                    th { (page.t("Tiêu đề", "Title")) }
                    th { (page.t("Lúc", "At")) }
                    th { (page.t("Người phát", "By")) }
                    th { (page.t("Đã tới", "Reached")) }
                    th { (page.t("Trạng thái", "Status")) }
                } }
                tbody { @for e in &list { tr {
                    td { a href={ "/ui/emergency/" (e.id) } { (e.title) } }
                    td { (page.time(e.starts_at)) }
                    td { (e.created_by_name.clone().unwrap_or_default()) }
                    td { (e.reached) " / " (e.total) }
                    td { (status_text(page, e)) }
                } } }
            } }
        }
    };
    Ok(page.render(page.t("Phát khẩn cấp", "Emergency"), body))
}

async fn new_form(cms: &Cms, page: &Page<'_>) -> Result<Markup> {
    let p = page.p;
    let approved = ContentFilter {
        status: Some(ContentStatus::Approved),
        limit: 500,
        ..ContentFilter::default()
    };
    let items: Vec<_> = cms
        .list_content(p, None, approved)
        .await?
        .into_iter()
        .filter(|c| c.sha256.is_some())
        .collect();
    let villages = cms.villages(p, None).await?;
    let confirm = page.t(
        "Phát tin khẩn cấp NGAY tới các nơi đã chọn? Mọi nội dung đang phát sẽ bị ngắt.",
        "Broadcast this emergency NOW to the chosen places? Everything playing is cut.",
    );
    Ok(html! {
        form.card.emergency #emergency-form data-emergency="/api/v1/emergency" data-confirm=(confirm)
            data-next="/ui/emergency/{id}" data-ok=(page.t("Đã phát.", "On air.")) {
            (page.csrf_field())
            label for="source" { (page.t("Nội dung phát", "What to broadcast")) }
            select #source name="source" {
                option value="text" { (page.t("Nhập văn bản (chuyển thành giọng nói)", "Type text (spoken by text to speech)")) }
                option value="item" { (page.t("Một nội dung đã duyệt", "An approved item")) }
            }
            p { a #e-live href="/ui/live?priority=emergency" {
                (page.t("Hoặc nói trực tiếp qua micrô (khẩn cấp) →", "Or speak live through the microphone (emergency) →"))
            } }
            div data-source="text" {
                label for="e-title" { (page.t("Tiêu đề", "Title")) }
                input #e-title type="text" name="title" maxlength="200" data-optional placeholder=(page.t("Tin khẩn cấp", "Emergency"));
                label for="e-text" { (page.t("Văn bản", "Text")) }
                textarea #e-text name="text" rows="4" maxlength="5000" {}
            }
            div.hidden data-source="item" {
                label for="e-item" { (page.t("Nội dung đã duyệt", "Approved item")) }
                select #e-item name="content_id" data-type="int" {
                    @for c in &items { option value=(c.id) { (c.title) } }
                }
            }
            label { (page.t("Nơi phát", "Where")) }
            div.checks {
                label { input type="checkbox" name="all" checked; (page.t("Toàn xã", "The whole commune")) }
                @for v in &villages {
                    label { input type="checkbox" name="targets.villages" value=(v.id) data-type="ints"; (v.name) }
                }
            }
            label for="e-repeat" { (page.t("Số lần phát", "Times")) }
            input #e-repeat type="number" name="repeat" min="1" max="20" value="1" data-type="int";
            (form_end(page.t("PHÁT KHẨN CẤP NGAY", "BROADCAST EMERGENCY NOW")))
        }
    })
}

/// `/ui/emergency/{id}`: reach as it happens, and the stop button.
pub async fn emergency(cms: &Cms, page: &Page<'_>, id: i64) -> Result<Response> {
    let e = cms.emergency(page.p, id).await?;
    let stop = page.t(
        "Dừng tin khẩn cấp trên mọi cụm loa? Lịch phát thường sẽ tiếp tục.",
        "Stop this emergency on every node? The normal schedule resumes.",
    );
    let body = html! {
        div #reach data-reach={ "/api/v1/emergency/" (e.id) "/events" } data-labels=(labels_json(page)) data-tz=(page.tz.name()) {
            p.big {
                span #reached { (e.reached) } " / " span #total { (e.total) } " "
                (page.t("cụm loa đã xác nhận đang phát", "nodes confirmed playing"))
            }
            p { span #status { (status_text(page, &e)) } " · " (page.t("Bắt đầu", "Started")) " " (page.time(e.starts_at)) " · "
                (e.created_by_name.clone().unwrap_or_default()) }
            @if e.stopped_at.is_none() && page.p.can(Perm::Approve) {
                p { button.danger #stop type="button" data-delete={ "/api/v1/emergency/" (e.id) } data-confirm=(stop) {
                    (page.t("Dừng tin khẩn cấp", "Stop the emergency"))
                } }
            }
            div.table-wrap { table #reach-nodes {
                thead { tr {
                    th { (page.t("Cụm loa", "Node")) }
                    th { (page.t("Thôn", "Village")) }
                    th { (page.t("Trạng thái", "State")) }
                    th { (page.t("Xác nhận lúc", "Confirmed at")) }
                    th { (page.t("Ghi chú", "Note")) }
                } }
                tbody { @for n in &e.nodes { (node_row(page, n)) } }
            } }
        }
    };
    Ok(page.render(
        &format!("{} · {}", page.t("Khẩn cấp", "Emergency"), e.title),
        body,
    ))
}
