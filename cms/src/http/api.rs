//! JSON API handlers, one arm per route of [`super::table`]. Permission checks happened in
//! dispatch (route level) and happen again in the service (operation level).

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use warp::reply::Response;

use super::table::Id;
use super::{Req, blob, openapi, reply, upload};
use crate::Cms;
use crate::auth::Principal;
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
struct RejectRequest {
    reason: String,
}

pub async fn handle(cms: &Cms, id: Id, p: Option<Principal>, req: &mut Req) -> Result<Response> {
    // Public routes first; every other route had a principal checked by dispatch.
    match id {
        Id::Healthz => return Ok(reply::json(200, &json!({ "status": "ok" }))),
        Id::OpenApi => return Ok(reply::json(200, &openapi::document())),
        Id::Login => return login(cms, req).await,
        Id::Enroll => {
            let body: crate::EnrollRequest = req.json().await?;
            let ip = req.ip();
            return Ok(reply::json(200, &cms.enroll_node(body, &ip).await?));
        }
        _ => {}
    }
    let p = p.ok_or(CmsError::Unauthenticated)?;
    match id {
        Id::Logout | Id::Me | Id::CreateToken => session(cms, id, p, req).await,
        Id::Communes
        | Id::UpdateCommune
        | Id::Users
        | Id::CreateUser
        | Id::DisableUser
        | Id::EnableUser
        | Id::Audit => admin(cms, id, p, req).await,
        Id::Villages
        | Id::CreateVillage
        | Id::Groups
        | Id::CreateGroup
        | Id::Nodes
        | Id::CreateNode
        | Id::UpdateNode
        | Id::DesiredState
        | Id::NodeEvents
        | Id::RevokeNode
        | Id::NewNodeCode
        | Id::NodeCommand
        | Id::NodeLink => places(cms, id, p, req).await,
        Id::Schedules
        | Id::CreateSchedule
        | Id::ScheduleGet
        | Id::UpdateSchedule
        | Id::DeleteSchedule
        | Id::Preview
        | Id::PlayLogs => plan(cms, id, p, req).await,
        _ => content(cms, id, p, req).await,
    }
}

/// Logout, who am I, API tokens.
async fn session(cms: &Cms, id: Id, p: Principal, req: &mut Req) -> Result<Response> {
    match id {
        Id::Logout => {
            if let Some(secret) = req.cookie(reply::SESSION_COOKIE).map(str::to_owned) {
                cms.logout(&secret).await?;
            }
            if let Some(token) = req
                .header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .map(str::to_owned)
            {
                cms.logout(token.trim()).await?;
            }
            let mut res = reply::json(200, &json!({ "ok": true }));
            reply::clear_session_cookie(&mut res);
            Ok(res)
        }
        Id::Me => ok(&json!({ "user": p.user, "csrf": p.csrf })),
        Id::CreateToken => {
            let body: serde_json::Value = req.json().await?;
            let name = body.get("name").and_then(|v| v.as_str()).unwrap_or("api");
            created(&json!({ "token": cms.create_api_token(&p, name).await? }))
        }
        _ => Err(CmsError::not_found("Không có trang này", "Route")),
    }
}

/// Communes, users, audit log.
async fn admin(cms: &Cms, id: Id, p: Principal, req: &mut Req) -> Result<Response> {
    match id {
        Id::Communes => ok(&cms.communes(&p).await?),
        Id::UpdateCommune => {
            let body: CommunePatch = req.json().await?;
            ok(&cms.update_commune(&p, req.id(0)?, body).await?)
        }
        Id::Users => ok(&cms.list_users(&p).await?),
        Id::CreateUser => {
            let body: NewUserRequest = req.json().await?;
            created(&cms.create_user(Some(&p), body).await?)
        }
        Id::DisableUser | Id::EnableUser => ok(&cms
            .set_user_disabled(&p, req.id(0)?, id == Id::DisableUser)
            .await?),
        Id::Audit => {
            let scope = p.user.commune_id;
            let limit = query_num(req, "limit")?.unwrap_or(200).min(1000) as u32;
            ok(&cms
                .store()
                .call(move |c| store::audit_entries(c, scope, limit))
                .await?)
        }
        _ => Err(CmsError::not_found("Không có trang này", "Route")),
    }
}

/// Villages, groups, nodes.
async fn places(cms: &Cms, id: Id, p: Principal, req: &mut Req) -> Result<Response> {
    match id {
        Id::Villages => ok(&cms.villages(&p, query_num(req, "commune")?).await?),
        Id::CreateVillage => {
            let body: NameRequest = req.json().await?;
            created(
                &cms.create_village(&p, &body.name, body.kind.as_deref(), body.commune_id)
                    .await?,
            )
        }
        Id::Groups => ok(&cms.groups(&p).await?),
        Id::CreateGroup => {
            let body: GroupRequest = req.json().await?;
            created(&cms.create_group(&p, &body.name, body.village_ids).await?)
        }
        Id::Nodes => ok(&cms.nodes(&p).await?),
        Id::CreateNode => {
            let body: NodeRequest = req.json().await?;
            let (node, code) = cms.create_node(&p, body).await?;
            let mut v = serde_json::to_value(&node).unwrap_or_default();
            v["enrollment_code"] = json!(code);
            created(&v)
        }
        Id::UpdateNode => {
            let body: NodeRequest = req.json().await?;
            ok(&cms.update_node(&p, req.id(0)?, body).await?)
        }
        Id::DesiredState => ok(&cms.desired_state(&p, req.id(0)?).await?),
        Id::NodeEvents => ok(&cms.node_events(&p, req.id(0)?).await?),
        Id::RevokeNode => {
            cms.revoke_node(&p, req.id(0)?, false).await?;
            ok(&json!({ "revoked": true }))
        }
        Id::NewNodeCode => {
            let code = cms.revoke_node(&p, req.id(0)?, true).await?;
            ok(&json!({ "enrollment_code": code }))
        }
        Id::NodeCommand => {
            let body: crate::CommandRequest = req.json().await?;
            let res = cms.send_command(&p, req.id(0)?, body).await?;
            Ok(reply::json(202, &res))
        }
        _ => Err(CmsError::not_found("Không có trang này", "Route")),
    }
}

/// The content library and its approval.
async fn content(cms: &Cms, id: Id, p: Principal, req: &mut Req) -> Result<Response> {
    match id {
        Id::ContentList => ok(&cms
            .list_content(&p, query_num(req, "commune")?, content_filter(req)?)
            .await?),
        Id::Upload => {
            let (meta, blob) = upload::receive(cms, req).await?;
            created(&cms.upload(&p, meta, blob).await?)
        }
        Id::Tts => {
            let b: TtsRequest = req.json().await?;
            created(
                &cms.create_tts(
                    &p,
                    &b.title,
                    &b.text,
                    b.voice.as_deref(),
                    b.category.as_deref(),
                )
                .await?,
            )
        }
        Id::Relay => {
            let b: RelayRequest = req.json().await?;
            created(
                &cms.create_relay(&p, &b.title, &b.url, b.duration_ms)
                    .await?,
            )
        }
        Id::ContentGet => ok(&cms.content(&p, req.id(0)?).await?),
        Id::ContentPatch => {
            let patch: ContentPatch = req.json().await?;
            ok(&cms.patch_content(&p, req.id(0)?, patch).await?)
        }
        Id::Submit => ok(&cms.submit(&p, req.id(0)?).await?),
        Id::Approve => ok(&cms.approve(&p, req.id(0)?).await?),
        Id::Reject => {
            let b: RejectRequest = req.json().await?;
            ok(&cms.reject(&p, req.id(0)?, &b.reason).await?)
        }
        Id::ContentAudio => {
            let item = cms.content(&p, req.id(0)?).await?;
            let sha = item.sha256.ok_or_else(|| {
                CmsError::not_found(
                    "Mục tiếp sóng không có tệp âm thanh",
                    "Audio of a relay item",
                )
            })?;
            blob::serve(cms, &sha, req).await
        }
        Id::Blob => {
            let sha = req.params.first().cloned().unwrap_or_default();
            blob::serve(cms, &sha, req).await
        }
        _ => Err(CmsError::not_found("Không có trang này", "Route")),
    }
}

/// Schedules, preview, play logs.
async fn plan(cms: &Cms, id: Id, p: Principal, req: &mut Req) -> Result<Response> {
    match id {
        Id::Schedules => ok(&cms.schedules(&p).await?),
        Id::CreateSchedule => {
            let body: ScheduleRequest = req.json().await?;
            created(&cms.create_schedule(&p, body).await?)
        }
        Id::ScheduleGet => ok(&cms.schedule(&p, req.id(0)?).await?),
        Id::UpdateSchedule => {
            let body: ScheduleRequest = req.json().await?;
            ok(&cms.update_schedule(&p, req.id(0)?, body).await?)
        }
        Id::DeleteSchedule => {
            cms.delete_schedule(&p, req.id(0)?).await?;
            ok(&json!({ "ok": true }))
        }
        Id::Preview => {
            let target = match (query_num(req, "node")?, query_num(req, "village")?) {
                (Some(n), None) => PreviewTarget::Node(n),
                (None, Some(v)) => PreviewTarget::Village(v),
                _ => {
                    return Err(CmsError::invalid(
                        "Cần đúng một trong hai tham số node hoặc village.",
                        "Give exactly one of node or village.",
                    ));
                }
            };
            let (from, to) = window(req, Duration::days(7))?;
            ok(&cms.preview(&p, target, from, to).await?)
        }
        Id::PlayLogs => {
            let node = query_num(req, "node")?;
            let (from, to) = history_window(req)?;
            let cid = p.commune(None)?;
            let logs = cms
                .store()
                .call(move |c| {
                    store::playlogs::list(
                        c,
                        cid,
                        node,
                        from.timestamp_millis(),
                        to.timestamp_millis(),
                    )
                })
                .await?;
            ok(&logs)
        }
        _ => Err(CmsError::not_found("Không có trang này", "Route")),
    }
}

async fn login(cms: &Cms, req: &mut Req) -> Result<Response> {
    let body: LoginRequest = req.json().await?;
    let (secret, csrf, user) = cms.login(&body.username, &body.password, &req.ip()).await?;
    let mut res = reply::json(200, &json!({ "token": secret, "csrf": csrf, "user": user }));
    let max_age = u64::from(cms.config().session_hours) * 3600;
    reply::add_cookie(
        &mut res,
        &reply::session_cookie(&secret, max_age, cms.config().secure_cookies),
    );
    Ok(res)
}

fn query_num(req: &Req, key: &str) -> Result<Option<i64>> {
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
