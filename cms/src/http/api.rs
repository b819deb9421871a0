//! JSON API handlers, one `async fn` per route of [`super::table`], grouped by resource.
//! Permission checks happened in dispatch (route level) and happen again in the service
//! (operation level); handlers go through the [`Cms`](crate::Cms) service layer.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use warp::reply::Response;

use super::table::Ctx;
use super::{Req, blob, openapi, reply, upload};
use crate::error::{CmsError, Result};
use crate::model::{ContentStatus, parse_category};
use crate::service::{
    CommunePatch, ContentPatch, NewUserRequest, NodeRequest, PreviewTarget, ScheduleRequest,
};
use crate::store::{self, ContentFilter};

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameRequest {
    name: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    commune_id: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupRequest {
    name: String,
    #[serde(default)]
    village_ids: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TtsRequest {
    title: String,
    text: String,
    #[serde(default)]
    voice: Option<String>,
    #[serde(default)]
    category: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayRequest {
    title: String,
    url: String,
    duration_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectRequest {
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    #[serde(default)]
    name: Option<String>,
}

// Public.

pub async fn healthz(_: Ctx<'_>) -> Result<Response> {
    ok(&json!({ "status": "ok" }))
}

pub async fn openapi_json(_: Ctx<'_>) -> Result<Response> {
    ok(&openapi::document())
}

pub async fn login(c: Ctx<'_>) -> Result<Response> {
    let body: LoginRequest = c.req.json().await?;
    let cms = c.cms;
    let (secret, csrf, user) = cms
        .login(&body.username, &body.password, &c.req.ip())
        .await?;
    let mut res = reply::json(200, &json!({ "token": secret, "csrf": csrf, "user": user }));
    let max_age = u64::from(cms.config().session_hours) * 3600;
    reply::add_cookie(
        &mut res,
        &reply::session_cookie(&secret, max_age, cms.config().secure_cookies),
    );
    Ok(res)
}

pub async fn enroll(c: Ctx<'_>) -> Result<Response> {
    let body: crate::EnrollRequest = c.req.json().await?;
    ok(&c.cms.enroll_node(body, &c.req.ip()).await?)
}

/// The node link is a WebSocket the controller's hub serves; a plain request lands here.
pub async fn node_link(_: Ctx<'_>) -> Result<Response> {
    Err(CmsError::invalid(
        "Cần kết nối WebSocket.",
        "The node link is a WebSocket: send an upgrade request.",
    ))
}

// Logout, who am I, API tokens.

pub async fn logout(c: Ctx<'_>) -> Result<Response> {
    if let Some(secret) = c.req.cookie(reply::SESSION_COOKIE).map(str::to_owned) {
        c.cms.logout(&secret).await?;
    }
    let bearer = c
        .req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::to_owned);
    if let Some(token) = bearer {
        c.cms.logout(token.trim()).await?;
    }
    let mut res = reply::json(200, &json!({ "ok": true }));
    reply::clear_session_cookie(&mut res);
    Ok(res)
}

pub async fn me(c: Ctx<'_>) -> Result<Response> {
    let p = c.p()?;
    ok(&json!({ "user": p.user, "csrf": p.csrf }))
}

pub async fn create_token(c: Ctx<'_>) -> Result<Response> {
    let body: TokenRequest = c.req.json().await?;
    let name = body.name.as_deref().unwrap_or("api");
    created(&json!({ "token": c.cms.create_api_token(c.p()?, name).await? }))
}

// Communes, users, audit log.

pub async fn communes(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.communes(c.p()?).await?)
}

pub async fn update_commune(c: Ctx<'_>) -> Result<Response> {
    let body: CommunePatch = c.req.json().await?;
    ok(&c.cms.update_commune(c.p()?, c.req.id(0)?, body).await?)
}

pub async fn users(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.list_users(c.p()?).await?)
}

pub async fn create_user(c: Ctx<'_>) -> Result<Response> {
    let body: NewUserRequest = c.req.json().await?;
    created(&c.cms.create_user(Some(c.p()?), body).await?)
}

pub async fn disable_user(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.set_user_disabled(c.p()?, c.req.id(0)?, true).await?)
}

pub async fn enable_user(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.set_user_disabled(c.p()?, c.req.id(0)?, false).await?)
}

pub async fn audit(c: Ctx<'_>) -> Result<Response> {
    let scope = c.p()?.user.commune_id;
    let limit = query_num(c.req, "limit")?.unwrap_or(200).clamp(1, 1000) as u32;
    ok(&c
        .cms
        .store()
        .call(move |conn| store::audit_entries(conn, scope, limit))
        .await?)
}

// Villages, groups, nodes.

pub async fn villages(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.villages(c.p()?, query_num(c.req, "commune")?).await?)
}

pub async fn create_village(c: Ctx<'_>) -> Result<Response> {
    let body: NameRequest = c.req.json().await?;
    let kind = body.kind.as_deref();
    created(
        &c.cms
            .create_village(c.p()?, &body.name, kind, body.commune_id)
            .await?,
    )
}

pub async fn groups(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.groups(c.p()?).await?)
}

pub async fn create_group(c: Ctx<'_>) -> Result<Response> {
    let body: GroupRequest = c.req.json().await?;
    created(
        &c.cms
            .create_group(c.p()?, &body.name, body.village_ids)
            .await?,
    )
}

pub async fn nodes(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.nodes(c.p()?).await?)
}

pub async fn create_node(c: Ctx<'_>) -> Result<Response> {
    let body: NodeRequest = c.req.json().await?;
    let (node, code) = c.cms.create_node(c.p()?, body).await?;
    let mut v = serde_json::to_value(&node).unwrap_or_default();
    v["enrollment_code"] = json!(code);
    created(&v)
}

pub async fn update_node(c: Ctx<'_>) -> Result<Response> {
    let body: NodeRequest = c.req.json().await?;
    ok(&c.cms.update_node(c.p()?, c.req.id(0)?, body).await?)
}

pub async fn desired_state(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.desired_state(c.p()?, c.req.id(0)?).await?)
}

pub async fn node_events(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.node_events(c.p()?, c.req.id(0)?).await?)
}

pub async fn revoke_node(c: Ctx<'_>) -> Result<Response> {
    c.cms.revoke_node(c.p()?, c.req.id(0)?, false).await?;
    ok(&json!({ "revoked": true }))
}

pub async fn new_node_code(c: Ctx<'_>) -> Result<Response> {
    let code = c.cms.revoke_node(c.p()?, c.req.id(0)?, true).await?;
    ok(&json!({ "enrollment_code": code }))
}

pub async fn node_command(c: Ctx<'_>) -> Result<Response> {
    let body: crate::CommandRequest = c.req.json().await?;
    let res = c.cms.send_command(c.p()?, c.req.id(0)?, body).await?;
    Ok(reply::json(202, &res))
}

// The content library and its approval.

pub async fn content_list(c: Ctx<'_>) -> Result<Response> {
    let commune = query_num(c.req, "commune")?;
    ok(&c
        .cms
        .list_content(c.p()?, commune, content_filter(c.req)?)
        .await?)
}

pub async fn upload(c: Ctx<'_>) -> Result<Response> {
    let (meta, blob) = upload::receive(c.cms, c.req).await?;
    created(&c.cms.upload(c.p()?, meta, blob).await?)
}

pub async fn tts(c: Ctx<'_>) -> Result<Response> {
    let b: TtsRequest = c.req.json().await?;
    let (voice, category) = (b.voice.as_deref(), b.category.as_deref());
    created(
        &c.cms
            .create_tts(c.p()?, &b.title, &b.text, voice, category)
            .await?,
    )
}

pub async fn relay(c: Ctx<'_>) -> Result<Response> {
    let b: RelayRequest = c.req.json().await?;
    created(
        &c.cms
            .create_relay(c.p()?, &b.title, &b.url, b.duration_ms)
            .await?,
    )
}

pub async fn content_get(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.content(c.p()?, c.req.id(0)?).await?)
}

pub async fn content_patch(c: Ctx<'_>) -> Result<Response> {
    let patch: ContentPatch = c.req.json().await?;
    ok(&c.cms.patch_content(c.p()?, c.req.id(0)?, patch).await?)
}

pub async fn submit(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.submit(c.p()?, c.req.id(0)?).await?)
}

pub async fn approve(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.approve(c.p()?, c.req.id(0)?).await?)
}

pub async fn reject(c: Ctx<'_>) -> Result<Response> {
    let b: RejectRequest = c.req.json().await?;
    ok(&c.cms.reject(c.p()?, c.req.id(0)?, &b.reason).await?)
}

pub async fn content_audio(c: Ctx<'_>) -> Result<Response> {
    let item = c.cms.content(c.p()?, c.req.id(0)?).await?;
    let sha = item.sha256.ok_or_else(|| {
        CmsError::not_found(
            "Mục tiếp sóng không có tệp âm thanh",
            "Audio of a relay item",
        )
    })?;
    blob::serve(c.cms, &sha, c.req).await
}

/// A blob by hash: for staff and for speaker nodes (dispatch let either in).
pub async fn blob(c: Ctx<'_>) -> Result<Response> {
    let sha = c.req.params.first().cloned().unwrap_or_default();
    blob::serve(c.cms, &sha, c.req).await
}

// Schedules, preview, play logs.

pub async fn schedules(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.schedules(c.p()?).await?)
}

pub async fn create_schedule(c: Ctx<'_>) -> Result<Response> {
    let body: ScheduleRequest = c.req.json().await?;
    created(&c.cms.create_schedule(c.p()?, body).await?)
}

pub async fn schedule_get(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.schedule(c.p()?, c.req.id(0)?).await?)
}

pub async fn update_schedule(c: Ctx<'_>) -> Result<Response> {
    let body: ScheduleRequest = c.req.json().await?;
    ok(&c.cms.update_schedule(c.p()?, c.req.id(0)?, body).await?)
}

pub async fn delete_schedule(c: Ctx<'_>) -> Result<Response> {
    c.cms.delete_schedule(c.p()?, c.req.id(0)?).await?;
    ok(&json!({ "ok": true }))
}

pub async fn preview(c: Ctx<'_>) -> Result<Response> {
    let target = match (query_num(c.req, "node")?, query_num(c.req, "village")?) {
        (Some(n), None) => PreviewTarget::Node(n),
        (None, Some(v)) => PreviewTarget::Village(v),
        _ => {
            return Err(CmsError::invalid(
                "Cần đúng một trong hai tham số node hoặc village.",
                "Give exactly one of node or village.",
            ));
        }
    };
    let (from, to) = window(c.req, Duration::days(7))?;
    ok(&c.cms.preview(c.p()?, target, from, to).await?)
}

pub async fn playlogs(c: Ctx<'_>) -> Result<Response> {
    let node = query_num(c.req, "node")?;
    let (from, to) = history_window(c.req)?;
    let cid = c.p()?.commune(None)?;
    let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
    ok(&c
        .cms
        .store()
        .call(move |conn| store::playlogs::list(conn, cid, node, from, to))
        .await?)
}

pub(super) fn query_num(req: &Req, key: &str) -> Result<Option<i64>> {
    req.q(key)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                CmsError::invalid(
                    format!("Tham số {key} phải là số."),
                    format!("Parameter {key} must be a number."),
                )
            })
        })
        .transpose()
}

fn query_time(req: &Req, key: &str) -> Result<Option<DateTime<Utc>>> {
    req.q(key)
        .map(|v| {
            DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                CmsError::invalid(
                    format!("Tham số {key} phải là thời điểm RFC 3339, ví dụ 2026-12-01T06:00:00+07:00."),
                    format!("Parameter {key} must be an RFC 3339 time, e.g. 2026-12-01T06:00:00+07:00."),
                )
            })
        })
        .transpose()
}

/// A plan's window (what will play): `from` defaults to now, `to` to `span` later.
fn window(req: &Req, span: Duration) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let from = query_time(req, "from")?.unwrap_or_else(Utc::now);
    let to = query_time(req, "to")?.unwrap_or(from + span);
    Ok((from, to))
}

/// A history's window (what happened): `to` defaults to now, `from` to a day before it.
fn history_window(req: &Req) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let to = query_time(req, "to")?.unwrap_or_else(Utc::now);
    let from = query_time(req, "from")?.unwrap_or(to - Duration::days(1));
    Ok((from, to))
}

fn content_filter(req: &Req) -> Result<ContentFilter> {
    let status = req
        .q("status")
        .map(|s| {
            ContentStatus::parse(s).ok_or_else(|| {
                CmsError::invalid(
                    format!("Trạng thái không hợp lệ: {s}"),
                    format!("Unknown status: {s}"),
                )
            })
        })
        .transpose()?;
    Ok(ContentFilter {
        q: req.q("q").map(str::to_owned),
        category: req
            .q("category")
            .map(parse_category)
            .transpose()?
            .map(str::to_owned),
        status,
        public_only: false,
        limit: query_num(req, "limit")?.unwrap_or(100).clamp(1, 1000) as u32,
        offset: query_num(req, "offset")?
            .unwrap_or(0)
            .clamp(0, i64::from(u32::MAX)) as u32,
    })
}

fn ok<T: serde::Serialize>(v: &T) -> Result<Response> {
    Ok(reply::json(200, v))
}

fn created<T: serde::Serialize>(v: &T) -> Result<Response> {
    Ok(reply::json(201, v))
}
