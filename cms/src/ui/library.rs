//! Dashboard, content library (player, submit), new content (upload with progress, TTS),
//! and the approval queue.

use warp::reply::Response;

use super::{Page, esc};
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
    let stat = |n: usize, vi: &str, en: &str, href: &str| {
        format!(
            r#"<a class="card" href="{href}"><div class="stat">{n}</div><div>{}</div></a>"#,
            page.t(vi, en)
        )
    };
    let body = format!(
        r#"<div class="grid">{}{}{}{}{}</div>
<h2>{}</h2>{}"#,
        stat(
            count(ContentStatus::Approved),
            "Nội dung đã duyệt",
            "Approved items",
            "/ui/content?status=approved"
        ),
        stat(
            count(ContentStatus::Pending),
            "Chờ duyệt",
            "Awaiting approval",
            "/ui/approvals"
        ),
        stat(
            count(ContentStatus::Draft),
            "Bản nháp",
            "Drafts",
            "/ui/content?status=draft"
        ),
        stat(schedules.len(), "Lịch phát", "Schedules", "/ui/schedules"),
        stat(
            online,
            &format!("Cụm loa trực tuyến / {}", nodes.len()),
            &format!("Nodes online / {}", nodes.len()),
            "/ui/places"
        ),
        page.t("Nội dung mới nhất", "Latest content"),
        content_table(page, &items[..items.len().min(8)], false),
    );
    Ok(page.render(page.t("Tổng quan", "Dashboard"), &body))
}

pub fn category_label(page: &Page<'_>, key: &str) -> String {
    CATEGORIES
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, vi, en)| page.t(vi, en).to_owned())
        .unwrap_or_else(|| key.to_owned())
}

pub fn status_badge(page: &Page<'_>, s: ContentStatus) -> String {
    let label = match page.lang {
        crate::i18n::Lang::Vi => crate::service::status_vi(s),
        crate::i18n::Lang::En => s.as_str(),
    };
    format!(r#"<span class="badge {}">{}</span>"#, s.as_str(), label)
}

fn duration(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

fn content_table(page: &Page<'_>, items: &[Content], actions: bool) -> String {
    if items.is_empty() {
        return format!(
            r#"<p class="muted">{}</p>"#,
            page.t("Chưa có nội dung.", "No content yet.")
        );
    }
    let rows: String = items
        .iter()
        .map(|c| content_row(page, c, actions))
        .collect();
    format!(
        r#"<div class="table-wrap"><table id="content-table"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr></thead><tbody>{rows}</tbody></table></div>"#,
        page.t("Tiêu đề", "Title"),
        page.t("Thể loại", "Category"),
        page.t("Thời lượng", "Length"),
        page.t("Trạng thái", "Status"),
        page.t("Nghe", "Listen"),
    )
}

fn content_row(page: &Page<'_>, c: &Content, actions: bool) -> String {
    let player = match c.kind {
        ContentKind::Relay => format!(
            r#"<span class="muted">{}</span>"#,
            esc(c.relay_url.as_deref().unwrap_or(""))
        ),
        _ => format!(
            r#"<audio controls preload="none" src="/api/v1/content/{}/audio"></audio>"#,
            c.id
        ),
    };
    let mut buttons = String::new();
    if actions
        && page.p.can(Perm::EditContent)
        && matches!(c.status, ContentStatus::Draft | ContentStatus::Rejected)
    {
        buttons.push_str(&format!(
            r#"<button type="button" data-post="/api/v1/content/{}/submit" data-submit="{}">{}</button>"#,
            c.id,
            c.id,
            page.t("Gửi duyệt", "Submit")
        ));
    }
    if actions && page.p.can(Perm::EditContent) {
        buttons.push_str(&format!(
            r#"<a class="button secondary" href="/ui/content?edit={}">{}</a> "#,
            c.id,
            page.t("Sửa", "Edit")
        ));
    }
    if actions && page.p.can(Perm::EditContent) && c.kind != ContentKind::Relay {
        let checked = if c.public { " checked" } else { "" };
        buttons.push_str(&format!(
            r#"<label class="muted"><input type="checkbox" data-patch="/api/v1/content/{}" data-field="public"{checked}> {}</label>"#,
            c.id,
            page.t("Công khai", "Public")
        ));
    }
    let reason = c
        .reject_reason
        .as_deref()
        .map(|r| {
            format!(
                r#"<div class="muted">{}: {}</div>"#,
                page.t("Lý do", "Reason"),
                esc(r)
            )
        })
        .unwrap_or_default();
    let meta = format!(
        "{} · {}{}",
        esc(c.author.as_deref().unwrap_or("")),
        page.time(c.created_at),
        c.loudness_lufs
            .map(|l| format!(" · {l:.1} LUFS → {:+.1} dB", c.gain_db))
            .unwrap_or_default()
    );
    format!(
        r#"<tr data-id="{id}"><td><strong>{title}</strong><div class="muted">{meta}</div>{reason}</td><td>{cat}</td><td>{dur}</td><td>{status}</td><td>{player}</td><td>{buttons}</td></tr>"#,
        id = c.id,
        title = esc(&c.title),
        cat = category_label(page, &c.category),
        dur = duration(c.duration_ms),
        status = status_badge(page, c.status),
    )
}

pub async fn content(cms: &Cms, page: &Page<'_>, req: &Req) -> Result<Response> {
    let filter = ContentFilter {
        q: req.q("q").map(str::to_owned),
        category: req
            .q("category")
            .and_then(|c| crate::model::parse_category(c).ok())
            .map(str::to_owned),
        status: req.q("status").and_then(ContentStatus::parse),
        limit: 200,
        ..ContentFilter::default()
    };
    let items = cms.list_content(page.p, None, filter.clone()).await?;
    let cats = category_options(page, filter.category.as_deref());
    let statuses: String = ContentStatus::ALL
        .iter()
        .map(|s| {
            let sel = if filter.status == Some(*s) {
                " selected"
            } else {
                ""
            };
            let label = page.lang.t(crate::service::status_vi(*s), s.as_str());
            format!(r#"<option value="{}"{sel}>{label}</option>"#, s.as_str())
        })
        .collect();
    let editor = match req.q("edit").and_then(|v| v.parse::<i64>().ok()) {
        Some(id) if page.p.can(Perm::EditContent) => {
            edit_form(page, &cms.content(page.p, id).await?)
        }
        _ => String::new(),
    };
    let body = format!(
        r#"{editor}<form class="card row" method="get" action="/ui/content">
<input type="text" name="q" value="{q}" placeholder="{search}">
<select name="category"><option value="">{allcat}</option>{cats}</select>
<select name="status"><option value="">{allstatus}</option>{statuses}</select>
<button type="submit">{find}</button></form>{table}"#,
        q = esc(filter.q.as_deref().unwrap_or("")),
        search = page.t(
            "Tìm theo tiêu đề, mô tả, văn bản",
            "Search titles, descriptions, text"
        ),
        allcat = page.t("Mọi thể loại", "All categories"),
        allstatus = page.t("Mọi trạng thái", "All statuses"),
        find = page.t("Tìm", "Search"),
        table = content_table(page, &items, true),
    );
    Ok(page.render(page.t("Thư viện nội dung", "Content library"), &body))
}

fn edit_form(page: &Page<'_>, c: &Content) -> String {
    let cats = category_options(page, Some(&c.category));
    let warning = if c.status == ContentStatus::Approved {
        format!(r#"<p class="msg error">{}</p>"#, page.t("Nội dung này đã được duyệt: sửa tiêu đề, thể loại hay mô tả sẽ đưa nó về chờ duyệt lại.", "This item is approved: changing its title, category or description sends it back for approval."))
    } else {
        String::new()
    };
    format!(
        r#"<div class="card"><h2>{h}</h2>{warning}<form id="edit-form" data-api="/api/v1/content/{id}" data-method="PATCH" data-next="/ui/content" data-ok="{ok}">{csrf}
<label for="e-title">{title}</label><input type="text" id="e-title" name="title" value="{tv}" required maxlength="200">
<label for="e-category">{cat}</label><select id="e-category" name="category">{cats}</select>
<label for="e-description">{desc}</label><textarea id="e-description" name="description">{dv}</textarea>
<div class="msg hidden"></div><p><button type="submit">{save}</button></p></form></div>"#,
        h = page.t("Sửa nội dung", "Edit item"),
        id = c.id,
        ok = page.t("Đã lưu.", "Saved."),
        csrf = page.csrf_field(),
        title = page.t("Tiêu đề", "Title"),
        tv = esc(&c.title),
        cat = page.t("Thể loại", "Category"),
        desc = page.t("Mô tả", "Description"),
        dv = esc(&c.description),
        save = page.t("Lưu", "Save"),
    )
}

/// `<option>`s of every category, `selected` marking one.
fn category_options(page: &Page<'_>, selected: Option<&str>) -> String {
    CATEGORIES
        .iter()
        .map(|(k, vi, en)| {
            let sel = if selected == Some(*k) {
                " selected"
            } else {
                ""
            };
            format!(r#"<option value="{k}"{sel}>{}</option>"#, page.t(vi, en))
        })
        .collect()
}

pub fn new_content(page: &Page<'_>) -> Response {
    let cats = category_options(page, None);
    let body = format!(
        r#"<div class="card"><h2>{up}</h2>
<form id="upload-form" data-upload="/api/v1/content" data-next="/ui/content" data-ok="{uploaded}" enctype="multipart/form-data">{csrf}
<label for="up-title">{title}</label><input type="text" id="up-title" name="title" required maxlength="200">
<label for="up-category">{cat}</label><select id="up-category" name="category">{cats}</select>
<label for="up-description">{desc}</label><textarea id="up-description" name="description"></textarea>
<label for="up-file">{file}</label><input type="file" id="up-file" name="file" accept="audio/*,.mp3,.m4a,.ogg,.flac,.wav" required>
<p class="muted">{hint}</p><progress value="0" max="1"></progress><div class="msg hidden"></div>
<p><button type="submit" id="upload-button">{send}</button></p></form></div>
<div class="card"><h2>{tts}</h2>
<form id="tts-form" data-api="/api/v1/content/tts" data-next="/ui/content" data-ok="{made}">{csrf}
<label for="tts-title">{title}</label><input type="text" id="tts-title" name="title" required maxlength="200">
<label for="tts-category">{cat}</label><select id="tts-category" name="category">{cats}</select>
<label for="tts-text">{text}</label><textarea id="tts-text" name="text" required maxlength="5000"></textarea>
<div class="msg hidden"></div><p><button type="submit">{speak}</button></p></form></div>
<div class="card"><h2>{relay}</h2>
<form id="relay-form" data-api="/api/v1/content/relay" data-next="/ui/content" data-ok="{made}">{csrf}
<label for="r-title">{title}</label><input type="text" id="r-title" name="title" required maxlength="200" placeholder="{relay_eg}">
<label for="r-url">{url}</label><input type="text" id="r-url" name="url" required placeholder="https://">
<label for="r-minutes">{minutes}</label><input type="number" id="r-minutes" name="duration_min" value="60" min="1" max="1440">
<div class="msg hidden"></div><p><button type="submit">{save}</button></p></form></div>"#,
        up = page.t("Tải lên bản ghi âm", "Upload a recording"),
        uploaded = page.t("Đã tải lên.", "Uploaded."),
        csrf = page.csrf_field(),
        title = page.t("Tiêu đề", "Title"),
        cat = page.t("Thể loại", "Category"),
        desc = page.t("Mô tả", "Description"),
        file = page.t("Tệp âm thanh", "Audio file"),
        hint = page.t(
            "MP3, M4A (AAC), OGG Vorbis, FLAC hoặc WAV. Tệp được kiểm tra và đo độ lớn âm thanh khi tải lên.",
            "MP3, M4A (AAC), Ogg Vorbis, FLAC or WAV. Files are checked and their loudness measured on upload."
        ),
        send = page.t("Tải lên", "Upload"),
        tts = page.t("Soạn thông báo bằng văn bản (đọc tự động)", "Type an announcement (text to speech)"),
        made = page.t("Đã tạo giọng đọc.", "Speech created."),
        text = page.t("Nội dung thông báo", "Announcement text"),
        speak = page.t("Tạo giọng đọc", "Create speech"),
        relay = page.t("Tiếp sóng đài khác", "Relay another station"),
        relay_eg = page.t("Ví dụ: Đài Phát thanh tỉnh", "e.g. Provincial radio"),
        url = page.t("Địa chỉ luồng phát", "Stream URL"),
        minutes = page.t("Mỗi lần tiếp sóng (phút)", "Each relay lasts (minutes)"),
        save = page.t("Lưu", "Save"),
    );
    page.render(page.t("Tạo nội dung mới", "New content"), &body)
}

pub async fn approvals(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let filter = ContentFilter {
        status: Some(ContentStatus::Pending),
        limit: 500,
        ..ContentFilter::default()
    };
    let items = cms.list_content(page.p, None, filter).await?;
    let rows: String = items
        .iter()
        .map(|c| {
            let own = c.author_id == Some(page.p.user.id) && !cms.config().allow_self_approval;
            let approve = if own {
                format!(r#"<span class="muted">{}</span>"#, page.t("Nội dung của bạn: người khác duyệt", "Your item: someone else approves"))
            } else {
                format!(r#"<button type="button" data-post="/api/v1/content/{id}/approve" data-approve="{id}">{}</button>"#, page.t("Duyệt", "Approve"), id = c.id)
            };
            format!(
                r#"<tr><td><strong>{title}</strong><div class="muted">{author} · {time}</div>{text}</td><td>{cat}</td><td><audio controls preload="none" src="/api/v1/content/{id}/audio"></audio></td>
<td class="row">{approve}<button type="button" class="secondary" data-post="/api/v1/content/{id}/reject" data-prompt="{why}">{reject}</button></td></tr>"#,
                id = c.id,
                title = esc(&c.title),
                author = esc(c.author.as_deref().unwrap_or("")),
                time = page.time(c.updated_at),
                text = c.tts_text.as_deref().map(|t| format!(r#"<div>{}</div>"#, esc(t))).unwrap_or_default(),
                cat = super::library::category_label(page, &c.category),
                why = page.t("Lý do từ chối?", "Reason for rejecting?"),
                reject = page.t("Từ chối", "Reject"),
            )
        })
        .collect();
    let body = if items.is_empty() {
        format!(
            r#"<p class="muted">{}</p>"#,
            page.t("Không có nội dung chờ duyệt.", "Nothing awaits approval.")
        )
    } else {
        format!(
            r#"<div class="table-wrap"><table id="approval-table"><tbody>{rows}</tbody></table></div>"#
        )
    };
    Ok(page.render(page.t("Duyệt nội dung", "Approval queue"), &body))
}
