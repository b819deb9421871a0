//! Villages, groups and nodes; users; the audit log.

use maud::{Markup, html};
use warp::reply::Response;

use super::{Page, badge, form_end};
use crate::Cms;
use crate::auth::Perm;
use crate::error::Result;
use crate::model::{Commune, Node, Role, Village, VillageGroup};
use crate::service::VILLAGE_KINDS;

/// A labelled text input.
fn text_field(id: &str, name: &str, label: &str, value: Option<&str>, required: bool) -> Markup {
    html! {
        label for=(id) { (label) }
        input type="text" id=(id) name=(name) value=[value] required[required];
    }
}

/// A node's state (badge class, words) and when it was last heard from. `in_step`: the
/// words for a node online and running the latest schedule.
pub fn node_state<'a>(
    page: &Page<'_>,
    n: &Node,
    in_step: &'a str,
) -> (&'static str, &'a str, String) {
    let (class, state) = match (n.online, n.lagging) {
        (false, _) => ("offline", page.t("Ngoại tuyến", "Offline")),
        (true, true) => ("pending", page.t("Đang đồng bộ", "Syncing")),
        (true, false) => ("online", in_step),
    };
    let seen = n
        .last_seen
        .map(|t| page.time(t))
        .unwrap_or_else(|| page.t("chưa kết nối", "never connected").to_owned());
    (class, state, seen)
}

fn tables(
    page: &Page<'_>,
    villages: &[Village],
    groups: &[VillageGroup],
    nodes: &[Node],
) -> Markup {
    let kind = |k: &str| {
        VILLAGE_KINDS
            .iter()
            .find(|x| x.0 == k)
            .map_or(k.to_owned(), |x| page.t(x.1, x.2).to_owned())
    };
    let village_name = |id: i64| {
        villages
            .iter()
            .find(|v| v.id == id)
            .map(|v| v.name.as_str())
    };
    let edit = page.p.can(Perm::ManagePlaces);
    html! {
        h2 { (page.t("Thôn, tổ dân phố", "Villages")) }
        div.table-wrap { table #village-table {
            thead { tr {
                th { (page.t("Tên", "Name")) } th { (page.t("Loại", "Kind")) } th { (page.t("Cụm loa", "Nodes")) }
                @if edit { th {} }
            } }
            tbody { @for v in villages { tr data-village=(v.id) {
                td { (v.name) } td { (kind(&v.kind)) }
                td { (nodes.iter().filter(|n| n.village_id == v.id).count()) }
                @if edit { td { (edit_village(page, v)) } }
            } } }
        } }
        h2 { (page.t("Nhóm thôn", "Village groups")) }
        div.table-wrap { table #group-table {
            thead { tr { th { (page.t("Tên nhóm", "Group")) } th { (page.t("Gồm các thôn", "Villages in it")) } } }
            tbody { @for g in groups { tr {
                td { (g.name) }
                td { (g.village_ids.iter().filter_map(|id| village_name(*id)).collect::<Vec<_>>().join(", ")) }
            } } }
        } }
        h2 { (page.t("Cụm loa", "Speaker nodes")) }
        div.table-wrap { table #node-table {
            thead { tr {
                th { (page.t("Tên", "Name")) } th { (page.t("Thôn", "Village")) }
                th { (page.t("Trạng thái", "State")) } th { "GPS" } th { (page.t("Ghi chú", "Notes")) }
            } }
            tbody { @for n in nodes { tr {
                td { a href={ "/ui/nodes/" (n.id) } { (n.name) } }
                td { (village_name(n.village_id).unwrap_or("")) }
                td {
                    @let (class, state, seen) = node_state(page, n, page.t("Trực tuyến", "Online"));
                    (badge(class, state))
                    div.muted { (seen) }
                }
                td { @if let (Some(a), Some(b)) = (n.lat, n.lon) { (map_link(page, a, b)) } }
                td { (n.notes) }
            } } }
        } }
    }
}

/// A position as a link to the map (OpenStreetMap, opened in the user's browser).
pub fn map_link(page: &Page<'_>, lat: f64, lon: f64) -> Markup {
    html! {
        a href=(format!("https://www.openstreetmap.org/?mlat={lat:.6}&mlon={lon:.6}#map=17/{lat:.6}/{lon:.6}"))
            target="_blank" rel="noopener" title=(page.t("Xem trên bản đồ", "Show on the map")) {
            (page.t("Bản đồ", "Map")) ": " (format!("{lat:.5}, {lon:.5}"))
        }
    }
}

/// A village's name and kind, edited in place (folded until asked for).
fn edit_village(page: &Page<'_>, v: &Village) -> Markup {
    let id = format!("ev-{}", v.id);
    html! {
        details {
            summary { (page.t("Sửa", "Edit")) }
            form data-api={ "/api/v1/villages/" (v.id) } data-method="PUT" data-ok=(page.t("Đã lưu thôn.", "Village saved.")) {
                (page.csrf_field())
                (text_field(&id, "name", page.t("Tên", "Name"), Some(&v.name), true))
                label for={ (id) "-kind" } { (page.t("Loại", "Kind")) }
                select id={ (id) "-kind" } name="kind" {
                    @for (k, vi, en) in VILLAGE_KINDS { option value=(k) selected[*k == v.kind] { (page.t(vi, en)) } }
                }
                (form_end(page.t("Lưu", "Save")))
            }
        }
    }
}

fn add_village(page: &Page<'_>) -> Markup {
    html! { div.card {
        h2 { (page.t("Thêm thôn", "Add a village")) }
        form data-api="/api/v1/villages" data-ok=(page.t("Đã thêm thôn.", "Village added.")) {
            (page.csrf_field())
            (text_field("v-name", "name", page.t("Tên", "Name"), None, true))
            label for="v-kind" { (page.t("Loại", "Kind")) }
            select id="v-kind" name="kind" {
                @for (k, vi, en) in VILLAGE_KINDS { option value=(k) { (page.t(vi, en)) } }
            }
            (form_end(page.t("Thêm", "Add")))
        }
    } }
}

fn add_group(page: &Page<'_>, villages: &[Village]) -> Markup {
    html! { div.card {
        h2 { (page.t("Thêm nhóm thôn", "Add a village group")) }
        form data-api="/api/v1/groups" data-ok=(page.t("Đã thêm nhóm thôn.", "Group added.")) {
            (page.csrf_field())
            (text_field("g-name", "name", page.t("Tên nhóm", "Group name"), None, true))
            label { (page.t("Gồm các thôn", "Villages in it")) }
            div.checks { @for v in villages {
                label { input type="checkbox" name="village_ids" value=(v.id) data-type="ints"; " " (v.name) }
            } }
            (form_end(page.t("Thêm", "Add")))
        }
    } }
}

fn add_node(page: &Page<'_>, villages: &[Village]) -> Markup {
    let ok = page.t(
        "Đã thêm. Mã kích hoạt (chỉ hiện một lần):",
        "Added. Enrolment code (shown once):",
    );
    html! { div.card {
        h2 { (page.t("Thêm cụm loa", "Add a speaker node")) }
        form data-api="/api/v1/nodes" data-ok=(ok) {
            (page.csrf_field())
            (text_field("n-name", "name", page.t("Tên", "Name"), None, true))
            label for="n-village" { (page.t("Thôn", "Village")) }
            select id="n-village" name="village_id" data-type="int" {
                @for v in villages { option value=(v.id) { (v.name) } }
            }
            label for="n-notes" { (page.t("Ghi chú", "Notes")) }
            input type="text" id="n-notes" name="notes" data-optional;
            (form_end(page.t("Thêm", "Add")))
        }
    } }
}

fn commune_settings(page: &Page<'_>, commune: &Commune) -> Markup {
    html! { div.card {
        h2 { (page.t("Cài đặt của xã", "Commune settings")) }
        form data-api={ "/api/v1/communes/" (commune.id) } data-method="PATCH" data-ok=(page.t("Đã lưu.", "Saved.")) {
            (page.csrf_field())
            (text_field("c-name", "name", page.t("Tên xã", "Name"), Some(&commune.name), true))
            (text_field("c-tz", "tz", page.t("Múi giờ", "Time zone"), Some(&commune.tz), true))
            div.row {
                span {
                    label for="c-qs" { (page.t("Giờ yên tĩnh từ", "Quiet hours from")) }
                    input type="text" id="c-qs" name="quiet_start" value=(commune.quiet_start) placeholder="22:00";
                }
                span {
                    label for="c-qe" { (page.t("đến", "until")) }
                    input type="text" id="c-qe" name="quiet_end" value=(commune.quiet_end) placeholder="05:00";
                }
                span {
                    label for="c-lt" { (page.t("Độ lớn chuẩn (LUFS)", "Loudness target (LUFS)")) }
                    input type="number" id="c-lt" name="loudness_target" value=(commune.loudness_target)
                        min="-30" max="-10" step="0.5" data-type="num";
                }
            }
            (form_end(page.t("Lưu", "Save")))
        }
    } }
}

pub async fn places(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let p = page.p;
    let villages = cms.villages(p, None).await?;
    let groups = cms.groups(p).await?;
    let nodes = cms.nodes(p).await?;
    let commune = match p.can(Perm::ManagePlaces) {
        true => Some(cms.commune(p.commune(None)?).await?),
        false => None,
    };
    let body = html! {
        (tables(page, &villages, &groups, &nodes))
        @if p.can(Perm::ManagePlaces) { (add_village(page)) }
        @if p.can(Perm::ManagePlaces) && !villages.is_empty() { (add_group(page, &villages)) }
        @if p.can(Perm::ManageNodes) { (add_node(page, &villages)) }
        @if let Some(c) = &commune { (commune_settings(page, c)) }
    };
    Ok(page.render(page.t("Thôn và cụm loa", "Villages and nodes"), body))
}

pub async fn users(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let users = cms.list_users(page.p).await?;
    let me = page.p.user.id;
    let body = html! {
        div.table-wrap { table #user-table {
            thead { tr {
                th { (page.t("Tên đăng nhập", "Username")) } th { (page.t("Họ tên", "Full name")) }
                th { (page.t("Vai trò", "Role")) } th { (page.t("Trạng thái", "State")) } th {}
            } }
            tbody { @for u in &users { tr data-user=(u.id) {
                td { (u.username) }
                td { (u.display_name) }
                td { (page.t(u.role.label_vi(), u.role.as_str())) }
                td { @if u.disabled { (badge("offline", page.t("Đã khoá", "Disabled"))) } @else { (badge("online", page.t("Đang dùng", "Active"))) } }
                td { @if u.id != me {
                    @if u.disabled {
                        button.secondary type="button" data-post={ "/api/v1/users/" (u.id) "/enable" }
                            data-ok=(format!("{} {}.", page.t("Đã mở khoá", "Enabled"), u.username)) {
                            (page.t("Mở khoá", "Enable"))
                        }
                    } @else {
                        button.danger type="button" data-post={ "/api/v1/users/" (u.id) "/disable" }
                            data-confirm=(format!("{} {}? {}", page.t("Khoá tài khoản", "Disable"), u.username,
                                page.t("Người này bị đăng xuất ngay và không đăng nhập được nữa.", "They are logged out at once and cannot log in.")))
                            data-ok=(format!("{} {}.", page.t("Đã khoá", "Disabled"), u.username)) {
                            (page.t("Khoá", "Disable"))
                        }
                    }
                } }
            } } }
        } }
        div.card {
            h2 { (page.t("Thêm người dùng", "Add a user")) }
            form data-api="/api/v1/users" data-ok=(page.t("Đã thêm người dùng.", "User added.")) {
                (page.csrf_field())
                (text_field("u-name", "username", page.t("Tên đăng nhập", "Username"), None, true))
                (text_field("u-display", "display_name", page.t("Họ tên", "Full name"), None, false))
                label for="u-pass" { (page.t("Mật khẩu (ít nhất 8 ký tự)", "Password (at least 8 characters)")) }
                input type="password" id="u-pass" name="password" minlength="8" required;
                label for="u-role" { (page.t("Vai trò", "Role")) }
                select id="u-role" name="role" {
                    @for r in Role::ALL { option value=(r.as_str()) { (page.t(r.label_vi(), r.as_str())) } }
                }
                (form_end(page.t("Thêm", "Add")))
            }
        }
    };
    Ok(page.render(page.t("Người dùng", "Users"), body))
}

/// An audit entry's action and entity, for people.
fn audit_what(page: &Page<'_>, action: &str, entity: &str) -> String {
    let t = |vi: &'static str, en: &'static str| page.t(vi, en);
    let action = match action {
        "create" => t("Tạo", "Created"),
        "update" => t("Sửa", "Changed"),
        "delete" => t("Xoá", "Deleted"),
        "approve" => t("Duyệt", "Approved"),
        "reject" => t("Từ chối", "Rejected"),
        "submit" => t("Gửi duyệt", "Submitted"),
        "start" => t("Bắt đầu", "Started"),
        "end" => t("Kết thúc", "Ended"),
        "stop" => t("Dừng", "Stopped"),
        "command" => t("Gửi lệnh tới", "Command to"),
        "new_code" => t("Cấp mã kích hoạt mới cho", "New enrolment code for"),
        "revoke" => t("Thu hồi quyền kết nối của", "Revoked the link of"),
        "replace_audio" => t("Thay bản ghi âm của", "Replaced the recording of"),
        "archive" => t("Lưu trữ", "Archived"),
        "restore" => t("Khôi phục", "Restored"),
        "disable" => t("Khoá", "Disabled"),
        "enable" => t("Mở khoá", "Enabled"),
        other => other,
    };
    let entity = match entity {
        "content" => t("nội dung", "item"),
        "village" => t("thôn", "village"),
        "group" => t("nhóm thôn", "village group"),
        "node" => t("cụm loa", "node"),
        "emergency" => t("tin khẩn cấp", "emergency"),
        "api_token" => t("mã API", "API token"),
        "live" => t("buổi phát trực tiếp", "live session"),
        "schedule" => t("lịch phát", "schedule"),
        "user" => t("người dùng", "user"),
        "commune" => t("xã", "commune"),
        other => other,
    };
    format!("{action} {entity}")
}

/// The part of an audit record a person compares: a status (in words), a reach, a title
/// or a name; never the raw record.
fn audit_change(page: &Page<'_>, v: Option<&serde_json::Value>) -> String {
    let Some(v) = v else {
        return String::new();
    };
    if let Some(status) = v
        .get("status")
        .and_then(|s| serde_json::from_value::<crate::model::ContentStatus>(s.clone()).ok())
    {
        return match page.lang {
            crate::i18n::Lang::Vi => crate::service::status_vi(status).to_string(),
            crate::i18n::Lang::En => status.as_str().to_string(),
        };
    }
    if let (Some(reached), Some(total)) = (v.get("reached"), v.get("total")) {
        return format!("{reached}/{total} {}", page.t("cụm loa", "nodes"));
    }
    ["title", "name", "reason", "username"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|s| s.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

pub async fn audit(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let entries = cms.audit_log(page.p, 300).await?;
    let body = html! {
        div.table-wrap { table #audit-table {
            thead { tr {
                th { (page.t("Thời điểm", "When")) } th { (page.t("Người", "Who")) }
                th { (page.t("Việc", "What")) } th { (page.t("Trước → sau", "Before → after")) }
            } }
            tbody { @for e in &entries { tr {
                td { (page.time(e.at)) }
                td { (e.username.as_deref().unwrap_or("")) }
                td { (audit_what(page, &e.action, &e.entity)) }
                td { (audit_change(page, e.before.as_ref())) " → " (audit_change(page, e.after.as_ref())) }
            } } }
        } }
    };
    Ok(page.render(page.t("Nhật ký thay đổi", "Audit log"), body))
}
