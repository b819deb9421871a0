//! Dashboard, content library (player, submit), new content (upload with progress, TTS),
//! and the approval queue.

use maud::{Markup, html};
use warp::reply::Response;

use super::{Page, badge};
use crate::Cms;
use crate::auth::Perm;
use crate::error::Result;
use crate::http::Req;
use crate::model::{CATEGORIES, Content, ContentKind, ContentStatus};
use crate::store::ContentFilter;

pub async fn dashboard(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let p = page.p;
    let all = ContentFilter {
        limit: 1000,
        ..ContentFilter::default()
    };
    let items = cms.list_content(p, None, all).await?;
    let count = |s: ContentStatus| items.iter().filter(|c| c.status == s).count();
    let nodes = cms.nodes(p).await?;
    let online = nodes.iter().filter(|n| n.online).count();
    let schedules = cms.schedules(p).await?;
    let stat = |n: usize, label: &str, href: &str| {
        html! { a.card href=(href) { div.stat { (n) } div { (label) } } }
    };
    let nodes_label = match page.lang {
        crate::i18n::Lang::Vi => format!("Cụm loa trực tuyến / {}", nodes.len()),
        crate::i18n::Lang::En => format!("Nodes online / {}", nodes.len()),
    };
    let decisions = cms.unseen_decisions(p).await?;
    let on_air: Vec<_> = cms
        .emergencies(p)
        .await?
        .into_iter()
        .filter(|e| e.active)
        .collect();
    let body = html! {
        @for e in &on_air {
            div.msg.error.emergency-banner {
                a href={ "/ui/emergency/" (e.id) } {
                    (page.t("Đang phát khẩn cấp", "Emergency on air")) ": " (e.title) " · "
                    (e.reached) " / " (e.total)
                }
            }
        }
        @if !decisions.is_empty() {
            div.card #decisions {
                h2 { (page.t("Kết quả duyệt nội dung của bạn", "Decisions on your items")) }
                @for c in &decisions { (decision(page, c)) }
                button.secondary type="button" data-post="/api/v1/me/decisions/seen" #decisions-seen
                    data-ok=(page.t("Đã đánh dấu là đã xem.", "Marked as read.")) {
                    (page.t("Đã xem", "Mark as read"))
                }
            }
        }
        @if p.can(crate::auth::Perm::Approve) {
            p { a.button.emergency-button href="/ui/emergency" { (page.t("PHÁT KHẨN CẤP", "EMERGENCY BROADCAST")) } }
        }
        div.grid {
            (stat(count(ContentStatus::Approved), page.t("Nội dung đã duyệt", "Approved items"), "/ui/content?status=approved"))
            (stat(count(ContentStatus::Pending), page.t("Chờ duyệt", "Awaiting approval"), "/ui/approvals"))
            (stat(count(ContentStatus::Draft), page.t("Bản nháp", "Drafts"), "/ui/content?status=draft"))
            (stat(schedules.len(), page.t("Lịch phát", "Schedules"), "/ui/schedules"))
            (stat(online, &nodes_label, "/ui/places"))
        }
        h2 { (page.t("Nội dung mới nhất", "Latest content")) }
        (content_table(page, &items[..items.len().min(8)], false))
    };
    Ok(page.render(page.t("Tổng quan", "Dashboard"), body))
}

/// One decision on the author's item: approved, or rejected with its reason and a way
/// to fix it.
fn decision(page: &Page<'_>, c: &Content) -> Markup {
    let by = c.approver.as_deref().unwrap_or("");
    let when = c.decided_at.map(|t| page.time(t)).unwrap_or_default();
    html! {
        div.msg.(if c.status == ContentStatus::Approved { "ok" } else { "error" }) data-decision=(c.id) {
            strong { (c.title) } " — " (status_badge(page, c.status))
            span.muted { " " (by) " · " (when) }
            @if c.status == ContentStatus::Rejected {
                div { (page.t("Lý do", "Reason")) ": " (c.reject_reason.as_deref().unwrap_or("")) }
                a href={ "/ui/content?edit=" (c.id) } { (page.t("Sửa và gửi duyệt lại", "Fix it and submit again")) }
            }
        }
    }
}

pub fn category_label(page: &Page<'_>, key: &str) -> String {
    CATEGORIES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, vi, en)| page.t(vi, en).to_owned())
        .unwrap_or_else(|| key.to_owned())
}

pub fn status_badge(page: &Page<'_>, s: ContentStatus) -> Markup {
    let label = match page.lang {
        crate::i18n::Lang::Vi => crate::service::status_vi(s),
        crate::i18n::Lang::En => s.as_str(),
    };
    badge(s.as_str(), label)
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

fn content_table(page: &Page<'_>, items: &[Content], actions: bool) -> Markup {
    if items.is_empty() {
        return html! { p.muted { (page.t("Chưa có nội dung.", "No content yet.")) } };
    }
    html! {
        div.table-wrap { table #content-table {
            thead { tr {
                th { (page.t("Tiêu đề", "Title")) }
                th { (page.t("Thể loại", "Category")) }
                th { (page.t("Thời lượng", "Length")) }
                th { (page.t("Trạng thái", "Status")) }
                th { (page.t("Nghe", "Listen")) }
                th {}
            } }
            tbody { @for c in items { (content_row(page, c, actions)) } }
        } }
    }
}

/// The item's player: its audio, or the stream a relay plays.
fn player(c: &Content) -> Markup {
    html! {
        @if c.kind == ContentKind::Relay {
            span.muted { (c.relay_url.as_deref().unwrap_or("")) }
        } @else {
            audio controls preload="none" src={ "/api/v1/content/" (c.id) "/audio" } {}
        }
    }
}

fn content_row(page: &Page<'_>, c: &Content, actions: bool) -> Markup {
    let edit = actions && page.p.can(Perm::EditContent);
    let submit = edit
        && c.archived_at.is_none()
        && matches!(c.status, ContentStatus::Draft | ContentStatus::Rejected);
    let loudness = c
        .loudness_lufs
        .map(|l| format!(" · {l:.1} LUFS → {:+.1} dB", c.gain_db))
        .unwrap_or_default();
    html! {
        tr data-id=(c.id) {
            td {
                strong { (c.title) }
                div.muted { (c.author.as_deref().unwrap_or("")) " · " (page.time(c.created_at)) (loudness) }
                @if let Some(r) = &c.reject_reason {
                    div.reason { (page.t("Lý do từ chối", "Why it was rejected")) ": " (r) }
                }
                @if let Some(t) = &c.tts_text { div.muted.tts-text { (t) } }
            }
            td { (category_label(page, &c.category)) }
            td { (duration(c.duration_ms)) }
            td { (status_badge(page, c.status)) }
            td { (player(c)) }
            td {
                @if submit {
                    button type="button" data-post={ "/api/v1/content/" (c.id) "/submit" } data-submit=(c.id)
                        data-ok=(page.t("Đã gửi duyệt.", "Submitted for approval.")) {
                        (page.t("Gửi duyệt", "Submit"))
                    }
                }
                @if edit {
                    a.button.secondary href={ "/ui/content?edit=" (c.id) } { (page.t("Sửa", "Edit")) }
                    " "
                }
                @if edit && c.archived_at.is_none() {
                    button.secondary type="button" data-post={ "/api/v1/content/" (c.id) "/archive" }
                        data-confirm=(format!("{} “{}”?", page.t("Lưu trữ", "Archive"), c.title))
                        data-ok=(page.t("Đã lưu trữ.", "Archived.")) {
                        (page.t("Lưu trữ", "Archive"))
                    }
                }
                @if edit && c.archived_at.is_some() {
                    button.secondary type="button" data-post={ "/api/v1/content/" (c.id) "/restore" }
                        data-ok=(page.t("Đã khôi phục.", "Restored.")) {
                        (page.t("Khôi phục", "Restore"))
                    }
                }
                @if edit && c.kind != ContentKind::Relay && c.archived_at.is_none() {
                    label.muted {
                        input type="checkbox" data-patch={ "/api/v1/content/" (c.id) } data-field="public" checked[c.public]
                            data-on=(format!("“{}”: {}", c.title, page.t("người dân nghe lại được trên trang công khai.", "villagers can replay it on the public page.")))
                            data-off=(format!("“{}”: {}", c.title, page.t("không còn trên trang công khai.", "no longer on the public page.")));
                        " " (page.t("Công khai", "Public"))
                    }
                }
            }
        }
    }
}

pub async fn content(cms: &Cms, page: &Page<'_>, req: &Req) -> Result<Response> {
    let filter = ContentFilter {
        q: req.q("q").map(str::to_owned),
        category: req
            .q("category")
            .and_then(|c| crate::model::parse_category(c).ok())
            .map(str::to_owned),
        status: req.q("status").and_then(ContentStatus::parse),
        archived: req.q("status") == Some("archived"),
        limit: 200,
        ..ContentFilter::default()
    };
    let items = cms.list_content(page.p, None, filter.clone()).await?;
    let editor = match req.q("edit").and_then(|v| v.parse::<i64>().ok()) {
        Some(id) if page.p.can(Perm::EditContent) => {
            Some(edit_form(page, &cms.content(page.p, id).await?))
        }
        _ => None,
    };
    let body = html! {
        @if let Some(e) = editor { (e) }
        form.card.row method="get" action="/ui/content" {
            input type="text" name="q" value=(filter.q.as_deref().unwrap_or(""))
                placeholder=(page.t("Tìm theo tiêu đề, mô tả, văn bản", "Search titles, descriptions, text"));
            select name="category" {
                option value="" { (page.t("Mọi thể loại", "All categories")) }
                (category_options(page, filter.category.as_deref()))
            }
            select name="status" {
                option value="" { (page.t("Mọi trạng thái", "All statuses")) }
                @for s in ContentStatus::ALL {
                    option value=(s.as_str()) selected[filter.status == Some(s)] {
                        (page.lang.t(crate::service::status_vi(s), s.as_str()))
                    }
                }
                option value="archived" selected[filter.archived] { (page.t("Đã lưu trữ", "Archived")) }
            }
            button type="submit" { (page.t("Tìm", "Search")) }
        }
        (content_table(page, &items, true))
    };
    Ok(page.render(page.t("Thư viện nội dung", "Content library"), body))
}

fn edit_form(page: &Page<'_>, c: &Content) -> Markup {
    html! {
        div.card {
            h2 { (page.t("Sửa nội dung", "Edit item")) ": " (c.title) }
            @if let (ContentStatus::Rejected, Some(r)) = (c.status, &c.reject_reason) {
                div.msg.error #reject-reason {
                    strong { (page.t("Bị từ chối", "Rejected")) }
                    " (" (c.approver.as_deref().unwrap_or("")) "): " (r)
                }
            }
            @if c.kind != ContentKind::Relay { p { (player(c)) } }
            @if c.status == ContentStatus::Approved {
                p.msg.error { (page.t(
                    "Nội dung này đã được duyệt: sửa tiêu đề, thể loại hay mô tả sẽ đưa nó về chờ duyệt lại.",
                    "This item is approved: changing its title, category or description sends it back for approval.",
                )) }
            }
            form #edit-form data-api={ "/api/v1/content/" (c.id) } data-method="PATCH" data-next="/ui/content"
                data-ok=(page.t("Đã lưu.", "Saved.")) {
                (page.csrf_field())
                label for="e-title" { (page.t("Tiêu đề", "Title")) }
                input type="text" id="e-title" name="title" value=(c.title) required maxlength="200";
                label for="e-category" { (page.t("Thể loại", "Category")) }
                select id="e-category" name="category" { (category_options(page, Some(&c.category))) }
                label for="e-description" { (page.t("Mô tả", "Description")) }
                textarea id="e-description" name="description" { (c.description) }
                div.msg.hidden {}
                p { button type="submit" { (page.t("Lưu", "Save")) } }
            }
            @if c.kind != ContentKind::Relay {
                h2 { (page.t("Thay bản ghi âm", "Replace the recording")) }
                form #replace-form data-upload={ "/api/v1/content/" (c.id) "/audio" } data-next="/ui/content"
                    data-ok=(page.t("Đã thay bản ghi âm: nội dung chờ duyệt lại.", "Recording replaced: the item awaits approval again."))
                    enctype="multipart/form-data" {
                    (page.csrf_field())
                    p.muted { (page.t(
                        "Bản ghi mới thay bản cũ và nội dung được gửi duyệt lại.",
                        "The new recording replaces the old one and the item goes back for approval.",
                    )) }
                    input type="file" id="replace-file" name="file" accept="audio/*,.mp3,.m4a,.ogg,.flac,.wav" required;
                    progress value="0" max="1" {}
                    div.msg.hidden {}
                    p { button type="submit" { (page.t("Thay bản ghi âm", "Replace the recording")) } }
                }
            }
        }
    }
}

/// `<option>`s of every category, `selected` marking one.
pub(super) fn category_options(page: &Page<'_>, selected: Option<&str>) -> Markup {
    html! {
        @for (k, vi, en) in CATEGORIES {
            option value=(k) selected[selected == Some(k)] { (page.t(vi, en)) }
        }
    }
}

pub async fn approvals(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let filter = ContentFilter {
        status: Some(ContentStatus::Pending),
        limit: 500,
        ..ContentFilter::default()
    };
    let items = cms.list_content(page.p, None, filter).await?;
    let own =
        |c: &Content| c.author_id == Some(page.p.user.id) && !cms.config().allow_self_approval;
    let body = html! {
        @if items.is_empty() {
            p.muted { (page.t("Không có nội dung chờ duyệt.", "Nothing awaits approval.")) }
        } @else {
            div.table-wrap { table #approval-table {
                thead { tr {
                    th { (page.t("Nội dung", "Item")) } th { (page.t("Thể loại", "Category")) }
                    th { (page.t("Nghe trước khi duyệt", "Listen before approving")) } th {}
                } }
                tbody {
                @for c in &items {
                    tr {
                        td {
                            strong { (c.title) }
                            div.muted { (c.author.as_deref().unwrap_or("")) " · " (page.time(c.updated_at)) }
                            @if let Some(t) = &c.tts_text { div.tts-text { (t) } }
                            @if let Some(r) = &c.reject_reason {
                                div.reason { (page.t("Lần trước bị từ chối vì", "Rejected before because")) ": " (r) }
                            }
                        }
                        td { (category_label(page, &c.category)) }
                        td { (player(c)) }
                        td.row {
                            @if own(c) {
                                span.muted { (page.t("Nội dung của bạn: người khác duyệt", "Your item: someone else approves")) }
                            } @else {
                                button type="button" data-post={ "/api/v1/content/" (c.id) "/approve" } data-approve=(c.id)
                                    data-ok=(format!("{} “{}”.", page.t("Đã duyệt", "Approved"), c.title)) {
                                    (page.t("Duyệt", "Approve"))
                                }
                            }
                            button.secondary type="button" data-post={ "/api/v1/content/" (c.id) "/reject" }
                                data-prompt=(page.t("Lý do từ chối?", "Reason for rejecting?"))
                                data-ok=(format!("{} “{}”.", page.t("Đã từ chối", "Rejected"), c.title)) {
                                (page.t("Từ chối", "Reject"))
                            }
                        }
                    }
                }
            } } }
        }
    };
    Ok(page.render(page.t("Duyệt nội dung", "Approval queue"), body))
}
