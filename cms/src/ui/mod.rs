//! The web UI: server-rendered HTML, Vietnamese by default with an English switch
//! (`?lang=en`, remembered in a cookie), and one small plain script (no build step). Pages
//! read through the same `Cms` methods as the API; every change goes through the JSON API
//! with the session's CSRF token, which each page carries (meta tag and form fields).

mod admin;
mod alerts;
mod compose;
mod emergency;
mod fleet;
mod history;
mod library;
mod live;
mod node_events;
mod nodes;
mod plan;
mod province;
mod reports;
mod tokens;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};
use protocol::Tz;
use warp::http::{HeaderValue, header};
use warp::reply::Response;

use crate::Cms;
use crate::auth::{Perm, Principal};
use crate::error::{CmsError, Result};
use crate::http::table::Ctx;
use crate::http::{Req, reply};
use crate::i18n::Lang;

const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/app.js");

// Handlers of the UI routes (see `http::table`).

pub async fn login_form(c: Ctx<'_>) -> Result<Response> {
    Ok(login_page(c.req.lang, None, c.req.q("lang").is_some()))
}

pub async fn asset(c: Ctx<'_>) -> Result<Response> {
    let (body, kind) = match c.req.params.first().map(String::as_str) {
        Some("app.css") => (CSS, "text/css; charset=utf-8"),
        Some("app.js") => (JS, "text/javascript; charset=utf-8"),
        _ => return Err(CmsError::not_found("Không có tệp này", "File")),
    };
    let mut res = reply::with_status(200, kind, body);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

pub async fn logout(c: Ctx<'_>) -> Result<Response> {
    if let Some(secret) = c.req.cookie(reply::SESSION_COOKIE).map(str::to_owned) {
        c.cms.logout(&secret).await?;
    }
    let mut res = reply::redirect("/login");
    reply::clear_session_cookie(&mut res);
    Ok(res)
}

/// A page's response, remembering a language picked with `?lang=`.
fn finish(req: &Req, mut res: Response) -> Result<Response> {
    if let Some(l) = req.q("lang").and_then(Lang::parse) {
        reply::lang_cookie(&mut res, l);
    }
    Ok(res)
}

pub async fn dashboard(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, library::dashboard(c.cms, &page).await?)
}

pub async fn content(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, library::content(c.cms, &page, c.req).await?)
}

pub async fn new_content(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, compose::new_content(&page))
}

pub async fn approvals(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, library::approvals(c.cms, &page).await?)
}

pub async fn schedules(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, plan::schedules(c.cms, &page, c.req).await?)
}

pub async fn week(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, plan::week(c.cms, &page, c.req).await?)
}

pub async fn places(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, admin::places(c.cms, &page).await?)
}

pub async fn node(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(
        c.req,
        nodes::node(c.cms, &page, c.req.id(0)?, c.req.q("range")).await?,
    )
}

pub async fn node_now(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    nodes::node_now(c.cms, &page, c.req.id(0)?).await
}

pub async fn live_page(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, live::live(c.cms, &page).await?)
}

pub async fn emergencies(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, emergency::emergencies(c.cms, &page).await?)
}

pub async fn emergency(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(
        c.req,
        emergency::emergency(c.cms, &page, c.req.id(0)?).await?,
    )
}

pub async fn fleet(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, fleet::fleet(c.cms, &page, c.req).await?)
}

pub async fn fleet_now(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    fleet::now(c.cms, &page, c.req).await
}

pub async fn tokens(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, tokens::tokens(c.cms, &page).await?)
}

pub async fn alerts(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, alerts::alerts(c.cms, &page).await?)
}

pub async fn province(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, province::province(c.cms, &page).await?)
}

pub async fn province_commune(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, province::commune(c.cms, &page, c.req.id(0)?).await?)
}

pub async fn reports(c: Ctx<'_>) -> Result<Response> {
    let (from, to, _) = crate::http::reports::period(&c).await?;
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(
        c.req,
        reports::reports(c.cms, &page, c.req, (from, to)).await?,
    )
}

pub async fn report_item(c: Ctx<'_>) -> Result<Response> {
    let (from, to, _) = crate::http::reports::period(&c).await?;
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(
        c.req,
        reports::item(c.cms, &page, c.req.id(0)?, (from, to)).await?,
    )
}

pub async fn users(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, admin::users(c.cms, &page).await?)
}

pub async fn audit(c: Ctx<'_>) -> Result<Response> {
    let page = Page::new(c.cms, c.p()?, c.req).await?;
    finish(c.req, admin::audit(c.cms, &page).await?)
}

/// What every page needs: language, user, commune and its zone.
pub struct Page<'a> {
    pub lang: Lang,
    pub p: &'a Principal,
    pub tz: Tz,
    pub commune_name: String,
    pub path: String,
}

impl<'a> Page<'a> {
    async fn new(cms: &Cms, p: &'a Principal, req: &Req) -> Result<Page<'a>> {
        let commune = cms.commune(p.commune(None)?).await?;
        Ok(Page {
            lang: req.lang,
            p,
            tz: crate::service::commune_tz(&commune)?,
            commune_name: commune.name,
            path: req.path.clone(),
        })
    }

    pub fn t<'s>(&self, vi: &'s str, en: &'s str) -> &'s str {
        self.lang.t(vi, en)
    }

    /// A UTC instant in the commune's zone, as Vietnamese read dates.
    pub fn time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%H:%M %d/%m/%Y")
            .to_string()
    }

    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.p.csrf); }
    }

    /// The whole page around `body`.
    pub fn render(&self, title: &str, body: Markup) -> Response {
        let links: [(&str, &str, &str, Perm); 15] = [
            ("/", "Tổng quan", "Dashboard", Perm::Read),
            ("/ui/emergency", "Khẩn cấp", "Emergency", Perm::Read),
            ("/ui/live", "Trực tiếp", "Live", Perm::Schedule),
            ("/ui/content", "Nội dung", "Content", Perm::Read),
            ("/ui/content/new", "Tạo mới", "New", Perm::EditContent),
            ("/ui/approvals", "Duyệt", "Approvals", Perm::Approve),
            ("/ui/schedules", "Lịch phát", "Schedules", Perm::Read),
            ("/ui/week", "Lịch tuần", "Week", Perm::Read),
            (
                "/ui/places",
                "Thôn & cụm loa",
                "Villages & nodes",
                Perm::Read,
            ),
            ("/ui/fleet", "Cụm loa", "Fleet", Perm::Read),
            ("/ui/alerts", "Cảnh báo", "Alerts", Perm::Read),
            ("/ui/reports", "Báo cáo", "Reports", Perm::Read),
            ("/ui/users", "Người dùng", "Users", Perm::ManageUsers),
            ("/ui/audit", "Nhật ký", "Audit log", Perm::Audit),
            ("/ui/tokens", "Mã API", "API tokens", Perm::ManageUsers),
        ];
        let (other, other_label) = other_lang(self.lang);
        let page = html! {
            (DOCTYPE)
            html lang=(self.lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="csrf" content=(self.p.csrf);
                    title { (title) " · Loa Làng" }
                    link rel="stylesheet" href="/static/app.css";
                    script src="/static/app.js" defer {}
                }
                body {
                    header {
                        a.brand href="/" { "Loa Làng · " (self.commune_name) }
                        // On a phone the menu folds behind this button.
                        button.menu-toggle type="button" aria-expanded="false" aria-controls="menu" {
                            "☰ " (self.t("Menu", "Menu"))
                        }
                        div.menu #menu {
                            nav {
                                @for (href, vi, en, perm) in &links {
                                    @if self.p.can(*perm) {
                                        a.active[*href == self.path] href=(href) { (self.t(vi, en)) }
                                    }
                                }
                                @if self.p.user.commune_id.is_none() {
                                    a.active[self.path == "/ui/province"] href="/ui/province" { (self.t("Toàn tỉnh", "Province")) }
                                }
                            }
                            span.row {
                                a href={ "?lang=" (other) } lang=(other) { (other_label) }
                                span.muted title=(self.p.user.role.as_str()) { (self.p.user.display_name) }
                                form method="post" action="/logout" data-api="/logout" data-next="/login" {
                                    (self.csrf_field())
                                    button.secondary type="submit" { (self.t("Đăng xuất", "Log out")) }
                                }
                            }
                        }
                    }
                    main { h1 { (title) } (body) }
                }
            }
        };
        reply::html(200, page.into_string())
    }
}

/// The message box and the submit button that end every form (the script fills the box).
pub fn form_end(label: &str) -> Markup {
    html! {
        div.msg.hidden {}
        p { button type="submit" { (label) } }
    }
}

/// A coloured label: `class` is one of the stylesheet's badge kinds.
pub fn badge(class: &str, text: &str) -> Markup {
    html! { span class={ "badge " (class) } { (text) } }
}

/// The other language, as the switch offers it.
fn other_lang(lang: Lang) -> (&'static str, &'static str) {
    match lang {
        Lang::Vi => ("en", "English"),
        Lang::En => ("vi", "Tiếng Việt"),
    }
}

/// The head every page without the full frame shares.
fn bare_head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) }
        link rel="stylesheet" href="/static/app.css";
    }
}

pub fn error_page(err: &CmsError, lang: Lang) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head { (bare_head("Loa Làng")) }
            body { main {
                div.msg.error { (err.message(lang)) }
                p { a href="/" { (lang.t("Quay lại", "Back")) } }
            } }
        }
    };
    reply::html(err.status(), page.into_string())
}

fn login_page(lang: Lang, error: Option<&str>, remember_lang: bool) -> Response {
    let t = |vi, en| lang.t(vi, en);
    let title = t("Đăng nhập", "Log in");
    let (other, other_label) = other_lang(lang);
    let page = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head { (bare_head(&format!("{title} · Loa Làng"))) }
            body { main.login { div.card {
                h1 { "Loa Làng" }
                p.muted { (t("Hệ thống truyền thanh thông minh", "Smart commune loudspeaker system")) }
                @if let Some(e) = error { div.msg.error { (e) } }
                form method="post" action={ "/login?lang=" (lang.code()) } {
                    label for="username" { (t("Tên đăng nhập", "Username")) }
                    input type="text" id="username" name="username" autocomplete="username" required;
                    label for="password" { (t("Mật khẩu", "Password")) }
                    input type="password" id="password" name="password" autocomplete="current-password" required;
                    p { button type="submit" id="login" { (title) } }
                }
                p { a href={ "/login?lang=" (other) } { (other_label) } }
            } } }
        }
    };
    let mut res = reply::html(if error.is_none() { 200 } else { 401 }, page.into_string());
    if remember_lang {
        reply::lang_cookie(&mut res, lang);
    }
    res
}

/// The login form posts here (a plain form: works before any script loads).
pub async fn login_post(c: Ctx<'_>) -> Result<Response> {
    let (cms, req) = (c.cms, c.req);
    let lang = req.lang;
    let form = req.form().await?;
    let field = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    match cms
        .login(
            &field("username"),
            &field("password"),
            &req.ip(&cms.config().trusted_proxies),
        )
        .await
    {
        Ok((secret, _, _)) => {
            let mut res = reply::redirect("/");
            let max_age = u64::from(cms.config().session_hours) * 3600;
            reply::add_cookie(
                &mut res,
                &reply::session_cookie(&secret, max_age, cms.config().secure_cookies),
            );
            Ok(res)
        }
        Err(CmsError::Unauthenticated) => Ok(login_page(
            lang,
            Some(lang.t(
                "Sai tên đăng nhập hoặc mật khẩu.",
                "Wrong username or password.",
            )),
            false,
        )),
        Err(e) => Ok(login_page(lang, Some(&e.message(lang)), false)),
    }
}
