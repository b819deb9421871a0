//! The web UI: server-rendered HTML, Vietnamese by default with an English switch, and a
//! small plain script (no build step). Pages read through the same `Cms` methods as the
//! API; every change goes through the JSON API with the session's CSRF token.

use warp::reply::Response;

use crate::Cms;
use crate::auth::Principal;
use crate::error::{CmsError, Result};
use crate::http::table::Id;
use crate::http::{Req, reply};
use crate::i18n::Lang;

pub async fn handle(
    _cms: &Cms,
    _id: Id,
    _p: Option<Principal>,
    _req: &mut Req,
) -> Result<Response> {
    Err(CmsError::not_found("Chưa có", "Page"))
}

pub fn error_page(err: &CmsError, lang: Lang) -> Response {
    reply::html(err.status(), format!("<p>{}</p>", err.message(lang)))
}
