//! Building responses: JSON, errors (`{"error","message"}`, one mapping for the whole
//! API), HTML and redirects.

use bytes::Bytes;
use serde::Serialize;
use warp::Reply;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use crate::error::CmsError;
use crate::i18n::Lang;

pub fn with_status(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response {
    let mut res = warp::http::Response::new(body.into());
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.into_response()
}

pub fn json<T: Serialize>(status: u16, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => with_status(status, "application/json", body),
        Err(e) => error(&CmsError::Storage(e.to_string()), Lang::En),
    }
}

pub fn error(err: &CmsError, lang: Lang) -> Response {
    if let CmsError::Storage(detail) = err {
        tracing::error!(cause = %detail, "storage error");
    }
    let body = serde_json::json!({ "error": err.code(), "message": err.message(lang) });
    let mut res = json(err.status(), &body);
    if let CmsError::TooLarge { .. } = err {
        // The rest of the body is not read: tell the client not to reuse the connection.
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let CmsError::RateLimited { retry_after_s } = err {
        if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    res
}

pub fn html(status: u16, body: String) -> Response {
    let mut res = with_status(status, "text/html; charset=utf-8", body);
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; media-src 'self' blob:; img-src 'self' data:; frame-ancestors 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

pub fn redirect(to: &str) -> Response {
    let mut res = with_status(303, "text/plain", Bytes::new());
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

pub fn add_cookie(res: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub const SESSION_COOKIE: &str = "loa_session";

/// Ends the browser's session cookie.
pub fn clear_session_cookie(res: &mut Response) {
    add_cookie(
        res,
        &format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
    );
}

/// Remembers the chosen page language for a year.
pub fn lang_cookie(res: &mut Response, lang: crate::i18n::Lang) {
    add_cookie(
        res,
        &format!(
            "lang={}; Path=/; Max-Age=31536000; SameSite=Strict",
            lang.code()
        ),
    );
}

pub fn session_cookie(secret: &str, max_age_s: u64, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    )
}
