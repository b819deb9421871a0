//! JSON API handlers, one `async fn` per route of [`super::table`], grouped by resource.
//! Permission checks happened in dispatch (route level) and happen again in the service
//! (operation level); handlers go through the [`Cms`](crate::Cms) service layer.

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use warp::reply::Response;

use super::schema::{Category, VillageKind};
use super::table::Ctx;
use super::{Req, blob, openapi, reply, upload};
use crate::error::{CmsError, Result};
use crate::model::{ContentStatus, Node, User, parse_category};
use crate::service::{
    CommunePatch, ContentPatch, NewUserRequest, NodeRequest, PreviewTarget, ScheduleRequest,
};
use crate::store::{BlobReader, ContentFilter};

// Request bodies. Their JSON Schemas (the OpenAPI document's request bodies) come from
// these types: the `schemars` attributes state what the service checks, where JSON Schema
// can say it (text that is not blank and not too long, ranges, patterns).

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

/// A village (thôn, tổ dân phố, bản, ấp).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VillageRequest {
    #[schemars(length(min = 1, max = 100), regex(pattern = r"\S"))]
    name: String,
    #[serde(default)]
    #[schemars(with = "Option<VillageKind>")]
    kind: Option<String>,
    /// Admins only: another commune.
    #[serde(default)]
    #[schemars(range(min = 1))]
    commune_id: Option<i64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupRequest {
    #[schemars(length(min = 1, max = 100), regex(pattern = r"\S"))]
    name: String,
    #[serde(default)]
    #[schemars(inner(range(min = 1)))]
    village_ids: Vec<i64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TtsRequest {
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    title: String,
    #[schemars(length(min = 1, max = 5000), regex(pattern = r"\S"))]
    text: String,
    /// An espeak-ng voice, e.g. `vi`.
    #[serde(default)]
    #[schemars(regex(pattern = r"^[a-z]{2,3}([-+][a-zA-Z0-9]+)*$"))]
    voice: Option<String>,
    /// Speaking rate, words per minute (150 by default).
    #[serde(default)]
    #[schemars(range(min = 80, max = 260))]
    speed: Option<u16>,
    #[serde(default)]
    #[schemars(with = "Option<Category>")]
    category: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayRequest {
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    title: String,
    /// The stream: http(s), with a host.
    #[schemars(
        length(max = 2000),
        regex(
            pattern = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,4})?(/[A-Za-z0-9._~%!$&'()*+,;=:@/?-]*)?$"
        )
    )]
    url: String,
    /// How long each play of it lasts.
    #[schemars(range(min = 1, max = 86_400_000))]
    duration_ms: u64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    #[schemars(length(min = 1, max = 500), regex(pattern = r"\S"))]
    reason: String,
}

// Success bodies besides the model's types (`crate::model`).

#[derive(Serialize, JsonSchema)]
pub struct Status {
    pub status: &'static str,
}

/// A logged-in session: the token (also set as the session cookie) and the CSRF token
/// that cookie sessions send with every change.
#[derive(Serialize, JsonSchema)]
pub struct LoginReply {
    pub token: String,
    pub csrf: String,
    pub user: User,
}

#[derive(Serialize, JsonSchema)]
pub struct Me {
    pub user: User,
    pub csrf: String,
}

/// A new node and the one-time code it enrols with.
#[derive(Serialize, JsonSchema)]
pub struct NodeCreated {
    #[serde(flatten)]
    pub node: Node,
    pub enrollment_code: String,
}

#[derive(Serialize, JsonSchema)]
pub struct NodeCode {
    pub enrollment_code: String,
}

#[derive(Serialize, JsonSchema)]
pub struct Revoked {
    pub revoked: bool,
}

#[derive(Serialize, JsonSchema)]
pub struct Done {
    pub ok: bool,
}

// Public.

pub async fn healthz(_: Ctx<'_>) -> Result<Response> {
    ok(&Status { status: "ok" })
}

pub async fn openapi_json(_: Ctx<'_>) -> Result<Response> {
    ok(&openapi::document())
}

pub async fn login(c: Ctx<'_>, body: LoginRequest) -> Result<Response> {
    let cms = c.cms;
    let (secret, csrf, user) = cms
        .login(
            &body.username,
            &body.password,
            &c.req.ip(&c.cms.config().trusted_proxies),
        )
        .await?;
    let mut res = reply::json(
        200,
        &LoginReply {
            token: secret.clone(),
            csrf,
            user,
        },
    );
    let max_age = u64::from(cms.config().session_hours) * 3600;
    reply::add_cookie(
        &mut res,
        &reply::session_cookie(&secret, max_age, cms.config().secure_cookies),
    );
    Ok(res)
}

pub async fn enroll(c: Ctx<'_>, body: crate::EnrollRequest) -> Result<Response> {
    ok(&c
        .cms
        .enroll_node(body, &c.req.ip(&c.cms.config().trusted_proxies))
        .await?)
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
    let mut res = reply::json(200, &Done { ok: true });
    reply::clear_session_cookie(&mut res);
    Ok(res)
}

pub async fn me(c: Ctx<'_>) -> Result<Response> {
    let p = c.p()?;
    ok(&Me {
        user: p.user.clone(),
        csrf: p.csrf.clone(),
    })
}

// Communes, users, audit log.

pub async fn communes(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.communes(c.p()?).await?)
}

pub async fn update_commune(c: Ctx<'_>, body: CommunePatch) -> Result<Response> {
    ok(&c.cms.update_commune(c.p()?, c.req.id(0)?, body).await?)
}

pub async fn users(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.list_users(c.p()?).await?)
}

pub async fn create_user(c: Ctx<'_>, body: NewUserRequest) -> Result<Response> {
    created(&c.cms.create_user(Some(c.p()?), body).await?)
}

pub async fn disable_user(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.set_user_disabled(c.p()?, c.req.id(0)?, true).await?)
}

pub async fn enable_user(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.set_user_disabled(c.p()?, c.req.id(0)?, false).await?)
}

pub async fn audit(c: Ctx<'_>) -> Result<Response> {
    let limit = query_num(c.req, "limit")?.unwrap_or(200).clamp(1, 1000) as u32;
    ok(&c.cms.audit_log(c.p()?, limit).await?)
}

// Villages, groups, nodes.

pub async fn villages(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.villages(c.p()?, query_num(c.req, "commune")?).await?)
}

pub async fn create_village(c: Ctx<'_>, body: VillageRequest) -> Result<Response> {
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

pub async fn create_group(c: Ctx<'_>, body: GroupRequest) -> Result<Response> {
    created(
        &c.cms
            .create_group(c.p()?, &body.name, body.village_ids)
            .await?,
    )
}

pub async fn nodes(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.nodes(c.p()?).await?)
}

pub async fn create_node(c: Ctx<'_>, body: NodeRequest) -> Result<Response> {
    let (node, enrollment_code) = c.cms.create_node(c.p()?, body).await?;
    created(&NodeCreated {
        node,
        enrollment_code,
    })
}

pub async fn update_node(c: Ctx<'_>, body: NodeRequest) -> Result<Response> {
    ok(&c.cms.update_node(c.p()?, c.req.id(0)?, body).await?)
}

pub async fn desired_state(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.desired_state(c.p()?, c.req.id(0)?).await?)
}

pub async fn node_events(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.node_events(c.p()?, c.req.id(0)?).await?)
}

pub async fn revoke_node(c: Ctx<'_>) -> Result<Response> {
    c.cms.revoke_node(c.p()?, c.req.id(0)?).await?;
    ok(&Revoked { revoked: true })
}

pub async fn new_node_code(c: Ctx<'_>) -> Result<Response> {
    let enrollment_code = c.cms.renew_node_code(c.p()?, c.req.id(0)?).await?;
    ok(&NodeCode { enrollment_code })
}

pub async fn node_command(c: Ctx<'_>, body: crate::CommandRequest) -> Result<Response> {
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

pub async fn tts(c: Ctx<'_>, b: TtsRequest) -> Result<Response> {
    let (voice, category) = (b.voice.as_deref(), b.category.as_deref());
    created(
        &c.cms
            .create_tts(c.p()?, &b.title, &b.text, voice, b.speed, category)
            .await?,
    )
}

pub async fn relay(c: Ctx<'_>, b: RelayRequest) -> Result<Response> {
    created(
        &c.cms
            .create_relay(c.p()?, &b.title, &b.url, b.duration_ms)
            .await?,
    )
}

pub async fn content_get(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.content(c.p()?, c.req.id(0)?).await?)
}

pub async fn content_patch(c: Ctx<'_>, patch: ContentPatch) -> Result<Response> {
    ok(&c.cms.patch_content(c.p()?, c.req.id(0)?, patch).await?)
}

pub async fn submit(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.submit(c.p()?, c.req.id(0)?).await?)
}

pub async fn approve(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.approve(c.p()?, c.req.id(0)?).await?)
}

pub async fn reject(c: Ctx<'_>, b: RejectRequest) -> Result<Response> {
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

/// A blob by hash: for staff and for speaker nodes (dispatch let either in), each only
/// what is theirs.
pub async fn blob(c: Ctx<'_>) -> Result<Response> {
    let sha = c.req.params.first().cloned().unwrap_or_default();
    let reader = match (&c.node, &c.principal) {
        (Some(n), _) => BlobReader::Node {
            node_id: n.id,
            commune_id: n.commune_id,
        },
        (None, Some(p)) => BlobReader::Staff(p.user.commune_id),
        (None, None) => return Err(CmsError::Unauthenticated),
    };
    c.cms.check_blob_readable(&sha, reader).await?;
    blob::serve(c.cms, &sha, c.req).await
}

// Schedules, preview, play logs.

pub async fn schedules(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.schedules(c.p()?).await?)
}

pub async fn create_schedule(c: Ctx<'_>, body: ScheduleRequest) -> Result<Response> {
    created(&c.cms.create_schedule(c.p()?, body).await?)
}

pub async fn schedule_get(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.schedule(c.p()?, c.req.id(0)?).await?)
}

pub async fn update_schedule(c: Ctx<'_>, body: ScheduleRequest) -> Result<Response> {
    ok(&c.cms.update_schedule(c.p()?, c.req.id(0)?, body).await?)
}

pub async fn delete_schedule(c: Ctx<'_>) -> Result<Response> {
    c.cms.delete_schedule(c.p()?, c.req.id(0)?).await?;
    ok(&Done { ok: true })
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
    let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
    ok(&c.cms.play_logs(c.p()?, node, from, to).await?)
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
        archived: req.q("archived").is_some_and(|v| v == "true" || v == "1"),
        limit: query_num(req, "limit")?.unwrap_or(100).clamp(1, 1000) as u32,
        offset: query_num(req, "offset")?
            .unwrap_or(0)
            .clamp(0, i64::from(u32::MAX)) as u32,
    })
}

// Live sessions.

pub async fn live_sessions(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.live_sessions(c.p()?).await?)
}

pub async fn live_session(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.live_session(c.p()?, c.req.id(0)?).await?)
}

// Emergencies.

pub async fn emergency_create(c: Ctx<'_>, body: crate::EmergencyRequest) -> Result<Response> {
    created(&c.cms.create_emergency(c.p()?, body).await?)
}

pub async fn emergencies(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.emergencies(c.p()?).await?)
}

pub async fn emergency_get(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.emergency(c.p()?, c.req.id(0)?).await?)
}

pub async fn emergency_stop(c: Ctx<'_>) -> Result<Response> {
    ok(&c.cms.stop_emergency(c.p()?, c.req.id(0)?).await?)
}

/// Server-sent events: the emergency as `GET /api/v1/emergency/{id}` gives it, once at
/// once and again after every change of its reach (coalesced over a tenth of a second),
/// for as long as the client listens.
pub async fn emergency_events(c: Ctx<'_>) -> Result<Response> {
    use warp::Reply;
    let (cms, p, id) = (c.cms.clone(), c.p()?.clone(), c.req.id(0)?);
    // Unknown or another commune's: a plain 404 before the stream starts.
    cms.emergency(&p, id).await?;
    let mut changes = cms.watch_emergencies();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<warp::sse::Event>(4);
    tokio::spawn(async move {
        loop {
            let Ok(e) = cms.emergency(&p, id).await else {
                return;
            };
            let Ok(event) = warp::sse::Event::default().event("reach").json_data(&e) else {
                return;
            };
            if tx.send(event).await.is_err() {
                return;
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            changes.borrow_and_update();
        }
    });
    let events = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|e| e.map(Ok::<_, std::convert::Infallible>))
    });
    Ok(warp::sse::reply(warp::sse::keep_alive().stream(events)).into_response())
}

pub(super) fn ok<T: serde::Serialize>(v: &T) -> Result<Response> {
    Ok(reply::json(200, v))
}

pub(super) fn created<T: serde::Serialize>(v: &T) -> Result<Response> {
    Ok(reply::json(201, v))
}
