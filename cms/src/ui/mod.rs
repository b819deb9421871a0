//! The web UI: server-rendered HTML, Vietnamese by default with an English switch
//! (`?lang=en`, remembered in a cookie), and one small plain script (no build step). Pages
//! read through the same `Cms` methods as the API; every change goes through the JSON API
//! with the session's CSRF token, which each page carries (meta tag and form fields).

mod admin;
mod library;
mod nodes;
mod plan;

use chrono::{DateTime, Utc};
use protocol::Tz;
use warp::http::{HeaderValue, header};
use warp::reply::Response;

use crate::Cms;
use crate::auth::{Perm, Principal};
use crate::error::{CmsError, Result};
use crate::http::table::Id;
use crate::http::{Req, reply};
use crate::i18n::Lang;

const CSS: &str = include_str!("../../static/app.css");
const JS: &str = include_str!("../../static/app.js");

pub async fn handle(cms: &Cms, id: Id, p: Option<Principal>, req: &mut Req) -> Result<Response> {
    let lang = req.lang;
    match id {
        Id::UiAsset => return asset(req),
        Id::UiLogin => return Ok(login_page(lang, None, req.q("lang").is_some())),
        Id::UiLoginPost => return login_post(cms, req).await,
        _ => {}
    }
    let p = p.ok_or(CmsError::Unauthenticated)?;
    let page = Page::new(cms, &p, req).await?;
    let mut res = match id {
        Id::UiLogout => {
            if let Some(secret) = req.cookie(reply::SESSION_COOKIE).map(str::to_owned) {
                cms.logout(&secret).await?;
            }
            let mut res = reply::redirect("/login");
            reply::clear_session_cookie(&mut res);
            return Ok(res);
        }
        Id::UiDashboard => library::dashboard(cms, &page).await?,
        Id::UiContent => library::content(cms, &page, req).await?,
        Id::UiNewContent => library::new_content(&page),
        Id::UiApprovals => library::approvals(cms, &page).await?,
        Id::UiSchedules => plan::schedules(cms, &page, req).await?,
        Id::UiWeek => plan::week(cms, &page, req).await?,
        Id::UiPlaces => admin::places(cms, &page).await?,
        Id::UiNode => nodes::node(cms, &page, req.id(0)?).await?,
        Id::UiUsers => admin::users(cms, &page).await?,
        Id::UiAudit => admin::audit(cms, &page).await?,
        _ => return Err(CmsError::not_found("Không có trang này", "Page")),
    };
    if let Some(l) = req.q("lang").and_then(Lang::parse) {
        reply::lang_cookie(&mut res, l);
    }
    Ok(res)
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
            tz: crate::service::commune_tz(&commune),
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

    pub fn csrf_field(&self) -> String {
        format!(
            r#"<input type="hidden" name="csrf" value="{}">"#,
            esc(&self.p.csrf)
        )
    }

    /// The whole page around `body`.
    pub fn render(&self, title: &str, body: &str) -> Response {
        let links: [(&str, &str, &str, Perm); 9] = [
            ("/", "Tổng quan", "Dashboard", Perm::Read),
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
            ("/ui/users", "Người dùng", "Users", Perm::ManageUsers),
            ("/ui/audit", "Nhật ký", "Audit log", Perm::Audit),
        ];
        let nav: String = links
            .iter()
            .filter(|l| self.p.can(l.3))
            .map(|(href, vi, en, _)| {
                let active = if *href == self.path {
                    " class=\"active\""
                } else {
                    ""
                };
                format!(r#"<a href="{href}"{active}>{}</a>"#, self.t(vi, en))
            })
            .collect();
        let (other, other_label) = match self.lang {
            Lang::Vi => ("en", "English"),
            Lang::En => ("vi", "Tiếng Việt"),
        };
        let html = format!(
            r#"<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf" content="{csrf}"><title>{title} · Loa Làng</title>
<link rel="stylesheet" href="/static/app.css"><script src="/static/app.js" defer></script></head>
<body><header><a class="brand" href="/">Loa Làng · {commune}</a><nav>{nav}</nav>
<span class="row"><a href="?lang={other}" lang="{other}">{other_label}</a>
<span class="muted" title="{role}">{user}</span>
<form method="post" action="/logout" data-api="/logout" data-next="/login">{csrf_field}<button class="secondary" type="submit">{logout}</button></form></span></header>
<main><h1>{title}</h1>{body}</main></body></html>"#,
            lang = self.lang.code(),
            csrf = esc(&self.p.csrf),
            title = esc(title),
            commune = esc(&self.commune_name),
            role = self.p.user.role.as_str(),
            user = esc(&self.p.user.display_name),
            csrf_field = self.csrf_field(),
            logout = self.t("Đăng xuất", "Log out"),
        );
        reply::html(200, html)
    }
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn asset(req: &Req) -> Result<Response> {
    let (body, kind) = match req.params.first().map(String::as_str) {
        Some("app.css") => (CSS, "text/css; charset=utf-8"),
        Some("app.js") => (JS, "text/javascript; charset=utf-8"),
        _ => return Err(CmsError::not_found("Không có tệp này", "File")),
    };
    let mut res = reply::with_status(200, kind, body);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(res)
}

pub fn error_page(err: &CmsError, lang: Lang) -> Response {
    let back = lang.t("Quay lại", "Back");
    let body = format!(
        r#"<!doctype html><html lang="{}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/static/app.css"><title>Loa Làng</title></head>
<body><main><div class="msg error">{}</div><p><a href="/">{back}</a></p></main></body></html>"#,
        lang.code(),
        esc(&err.message(lang))
    );
    reply::html(err.status(), body)
}

fn login_page(lang: Lang, error: Option<&str>, remember_lang: bool) -> Response {
    let t = |vi, en| lang.t(vi, en);
    let error = error
        .map(|e| format!(r#"<div class="msg error">{}</div>"#, esc(e)))
        .unwrap_or_default();
    let (other, other_label) = match lang {
        Lang::Vi => ("en", "English"),
        Lang::En => ("vi", "Tiếng Việt"),
    };
    let html = format!(
        r#"<!doctype html><html lang="{code}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Loa Làng</title><link rel="stylesheet" href="/static/app.css"></head>
<body><main class="login"><div class="card"><h1>Loa Làng</h1><p class="muted">{tagline}</p>{error}
<form method="post" action="/login?lang={code}">
<label for="username">{user}</label><input type="text" id="username" name="username" autocomplete="username" required>
<label for="password">{pass}</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<p><button type="submit" id="login">{title}</button></p></form>
<p><a href="/login?lang={other}">{other_label}</a></p></div></main></body></html>"#,
        code = lang.code(),
        title = t("Đăng nhập", "Log in"),
        tagline = t(
            "Hệ thống truyền thanh thông minh",
            "Smart commune loudspeaker system"
        ),
        user = t("Tên đăng nhập", "Username"),
        pass = t("Mật khẩu", "Password"),
    );
    let mut res = reply::html(if error.is_empty() { 200 } else { 401 }, html);
    if remember_lang {
        reply::lang_cookie(&mut res, lang);
    }
    res
}

/// The login form posts here (a plain form: works before any script loads).
async fn login_post(cms: &Cms, req: &mut Req) -> Result<Response> {
    let lang = req.lang;
    let form = req.form().await?;
    let field = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    match cms
        .login(&field("username"), &field("password"), &req.ip())
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
