//! API tokens: a new one (shown once), the live ones with when they expire and were last
//! used, and a revoke button on each.

use maud::html;
use warp::reply::Response;

use super::{Page, form_end};
use crate::Cms;
use crate::auth::Perm;
use crate::error::Result;
use crate::service::{API_TOKEN_DAYS, MAX_API_TOKEN_DAYS};

pub async fn tokens(cms: &Cms, page: &Page<'_>) -> Result<Response> {
    let list = cms.api_tokens(page.p).await?;
    let admin = page.p.can(Perm::ManageUsers);
    let body = html! {
        p.muted { (page.t(
            "Mã truy cập cho phần mềm khác (báo cáo lên huyện, tỉnh) dùng API thay cho mật khẩu. Mỗi mã chỉ hiện một lần khi tạo, tự hết hạn, và thu hồi được bất cứ lúc nào.",
            "Tokens let other software (reports to the district or province) use the API instead of a password. Each is shown once when made, expires by itself and can be revoked at any time.",
        )) }
        div.table-wrap { table #token-table {
            thead { tr {
                th { (page.t("Tên", "Name")) }
                @if admin { th { (page.t("Người dùng", "User")) } }
                th { (page.t("Tạo lúc", "Created")) }
                th { (page.t("Hết hạn", "Expires")) }
                th { (page.t("Dùng lần cuối", "Last used")) }
                th { (page.t("Thao tác", "Action")) }
            } }
            tbody { @for t in &list { tr data-token=(t.id) {
                td { (t.name) @if t.scope.is_some() { " " span.muted { (page.t("(số liệu toàn tỉnh)", "(province figures)")) } } }
                @if admin { td { (t.username) } }
                td { (page.time(t.created_at)) }
                td { @match t.expires_at { Some(x) => { (page.time(x)) }, None => { (page.t("không bao giờ", "never")) } } }
                td { @match t.last_used_at { Some(x) => { (page.time(x)) }, None => { (page.t("chưa dùng", "not yet")) } } }
                td { button.danger type="button" data-delete={ "/api/v1/tokens/" (t.id) }
                    data-confirm=(format!("{} “{}”? {}", page.t("Thu hồi mã", "Revoke the token"), t.name,
                        page.t("Phần mềm đang dùng mã này sẽ không truy cập được nữa.", "Software using it loses access at once.")))
                    data-ok=(page.t("Đã thu hồi mã.", "Token revoked.")) {
                    (page.t("Thu hồi", "Revoke"))
                } }
            } } }
        } }
        @if list.is_empty() { p.muted { (page.t("Chưa có mã nào.", "No tokens yet.")) } }
        div.card {
            h2 { (page.t("Tạo mã mới", "New token")) }
            form #token-form data-api="/api/v1/tokens"
                data-ok=(page.t("Mã mới (chỉ hiện một lần, hãy chép lại ngay):", "New token (shown once: copy it now):")) {
                (page.csrf_field())
                label for="t-name" { (page.t("Tên (dùng cho việc gì)", "Name (what it is for)")) }
                input type="text" id="t-name" name="name" required maxlength="100"
                    placeholder=(page.t("Báo cáo quý lên huyện", "Quarterly report to the district"));
                label for="t-days" { (page.t("Hết hạn sau (ngày)", "Expires after (days)")) }
                input type="number" id="t-days" name="expires_days" data-type="int" min="1"
                    max=(MAX_API_TOKEN_DAYS) value=(API_TOKEN_DAYS);
                (form_end(page.t("Tạo mã", "Create token")))
            }
        }
    };
    Ok(page.render(page.t("Mã truy cập API", "API tokens"), body))
}
