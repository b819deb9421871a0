//! Every route in one place: method, path pattern, the permission it needs, its handler
//! and what the OpenAPI document says of it. Dispatch, the document and the route x role
//! test all read this table, so a route cannot exist without a permission or a handler.

use std::any::TypeId;
use std::future::Future;
use std::pin::Pin;

use schemars::{JsonSchema, Schema, SchemaGenerator};

use warp::http::Method;
use warp::reply::Response;

use super::{Req, api, library, public, reports, tokens};
use crate::Cms;
use crate::auth::{Perm, Principal};
use crate::error::{CmsError, Result};
use crate::ui;

/// What a handler gets: the CMS, the caller (checked against the route's permission by
/// dispatch; `None` on public routes and for speaker nodes) and the request.
pub struct Ctx<'a> {
    pub cms: &'a Cms,
    pub principal: Option<Principal>,
    /// The speaker node calling with its token (on the routes open to nodes).
    pub node: Option<crate::store::node_link::NodeIdentity>,
    pub req: &'a mut Req,
}

impl Ctx<'_> {
    /// The logged-in caller (every non-public route has one).
    pub fn p(&self) -> Result<&Principal> {
        self.principal.as_ref().ok_or(CmsError::Unauthenticated)
    }
}

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Response>> + Send + 'a>>;
/// A route's handler: an `async fn(Ctx) -> Result<Response>`, boxed by [`routes!`].
pub type Handler = for<'a> fn(Ctx<'a>) -> HandlerFuture<'a>;

/// What the OpenAPI document says of a route beyond its row.
#[derive(Clone, Copy)]
pub struct Doc {
    /// The success status.
    pub ok: u16,
    /// The request body: its type's JSON Schema.
    pub body: Option<Body>,
    /// The success response's JSON Schema, from its type (`None`: not JSON, or none).
    pub reply: fn(&mut SchemaGenerator) -> Option<Schema>,
    /// Error statuses besides those every route may answer (400, and 401/403 behind a
    /// login): 404, 409, 413, 415, 429...
    pub errors: &'static [u16],
}

#[derive(Clone, Copy)]
pub struct Body {
    /// `multipart/form-data` (uploads), else `application/json`.
    pub multipart: bool,
    pub schema: fn(&mut SchemaGenerator) -> Schema,
}

/// The schema of `T`, for a row's body.
pub fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// The schema of a reply of type `T`; `()` is a reply with no JSON body to describe.
pub fn reply_schema<T: JsonSchema + 'static>(g: &mut SchemaGenerator) -> Option<Schema> {
    (TypeId::of::<T>() != TypeId::of::<()>()).then(|| g.subschema_for::<T>())
}

pub struct Route {
    pub method: Method,
    /// `/api/v1/content/{id}`: `{name}` matches one path segment.
    pub path: &'static str,
    pub perm: Perm,
    /// A speaker node's token may call it (besides whoever `perm` lets in).
    pub nodes: bool,
    /// The handler's name: the OpenAPI operation id.
    pub name: &'static str,
    pub summary: &'static str,
    pub handler: Handler,
    pub doc: Doc,
}

impl Route {
    /// JSON API routes (documented in OpenAPI); the rest is the web UI.
    pub fn is_api(&self) -> bool {
        self.path.starts_with("/api/")
            || self.path == "/healthz"
            || self.path.starts_with("/content/")
    }
}

/// One row per route:
/// `METHOD "path" Perm nodes handler, ok [errors] BODY => REPLY, "summary";`.
/// The handler is a path to an `async fn(Ctx) -> Result<Response>`: a row without one
/// does not compile, and there is no other place to add a route. BODY is `json(T)` (the
/// handler is then `async fn(Ctx, T)` and gets the body parsed as `T`), `form(T)` (a
/// multipart upload the handler streams itself; `T` describes its fields) or `none`.
/// REPLY is the type of the success body, `()` when it is not JSON.
macro_rules! routes {
    ($($method:ident $path:literal $perm:ident $nodes:literal $handler:path,
       $ok:literal [$($err:literal),*] $bkind:ident $(($body:ty))? => $reply:ty, $summary:literal;)*) => {
        pub static ROUTES: &[Route] = &[
            $(Route {
                method: Method::$method,
                path: $path,
                perm: Perm::$perm,
                nodes: $nodes,
                name: stringify!($handler),
                summary: $summary,
                handler: routes!(@handler $handler, $bkind $(($body))?),
                doc: Doc {
                    ok: $ok,
                    body: routes!(@body $bkind $(($body))?),
                    reply: reply_schema::<$reply>,
                    errors: &[$($err),*],
                },
            },)*
        ];
    };
    (@handler $handler:path, json($body:ty)) => {{
        fn boxed(c: Ctx<'_>) -> HandlerFuture<'_> {
            Box::pin(async move {
                let body: $body = c.req.json().await?;
                $handler(c, body).await
            })
        }
        boxed
    }};
    (@handler $handler:path, $($other:tt)*) => {{
        fn boxed(c: Ctx<'_>) -> HandlerFuture<'_> {
            Box::pin($handler(c))
        }
        boxed
    }};
    (@body json($body:ty)) => { Some(Body { multipart: false, schema: schema_of::<$body> }) };
    (@body form($body:ty)) => { Some(Body { multipart: true, schema: schema_of::<$body> }) };
    (@body none) => { None };
}

use super::upload::UploadForm;
use crate::EmergencyRequest;
use crate::model::{
    AuditEntry, Commune, Content, Emergency, LiveSession, Node, NodeEvent, PlayLog, Schedule, User,
    Village, VillageGroup,
};
use crate::service::{
    CommandRequest, CommandResponse, CommunePatch, ContentPatch, NewUserRequest, NodeRequest,
    PreviewPlay, ScheduleRequest,
};
use api::{
    Done, GroupRequest, LoginReply, LoginRequest, Me, NodeCode, NodeCreated, RejectRequest,
    RelayRequest, Revoked, Status, TtsRequest, VillageRequest,
};
use library::{AudioForm, SpeechPreview, VillageUpdate, Voice};
use protocol::desired::DesiredState;
use protocol::link::{EnrollRequest, EnrollResponse};
use tokens::{TokenCreated, TokenRequest};

routes! {
    GET    "/metrics"                    Public       false library::metrics, 200 [] none => (), "Prometheus metrics: nodes by status per village, plays by outcome, pending downloads, request latency by route, node links, live sessions, build.";
    GET    "/healthz"                    Public       true  api::healthz, 200 [] none => Status, "Liveness: 200 when the process serves requests.";
    GET    "/api/v1/openapi.json"        Public       true  api::openapi_json, 200 [] none => (), "This API's OpenAPI 3.0 document.";
    POST   "/api/v1/auth/login"          Public       true  api::login, 200 [401, 429] json(LoginRequest) => LoginReply, "Log in with username and password: a token and a session cookie.";
    POST   "/api/v1/auth/logout"         Read         false api::logout, 200 [] none => Done, "End this session.";
    GET    "/api/v1/me"                  Read         false api::me, 200 [] none => Me, "Who is logged in, with role and commune.";
    POST   "/api/v1/me/decisions/seen"   Read         false library::decisions_seen, 200 [] none => Done, "The approvals and rejections of your items shown on your dashboard are read: they leave it.";
    POST   "/api/v1/tokens"              Read         false tokens::create_token, 201 [] json(TokenRequest) => TokenCreated, "Create an API token for your account (shown once); it expires after expires_days (90 by default, at most 730).";
    GET    "/api/v1/tokens"              Read         false tokens::tokens, 200 [] none => Vec<crate::store::users::ApiToken>, "Live API tokens: your own, or every user's of the commune for user admins (never the secrets).";
    DELETE "/api/v1/tokens/{id}"         Read         false tokens::revoke_token, 200 [404] none => Done, "Revoke one API token (your own, or any of the commune's for user admins): it stops working at once.";
    GET    "/api/v1/communes"            Read         false api::communes, 200 [] none => Vec<Commune>, "Communes you can see.";
    PATCH  "/api/v1/communes/{id}"       ManagePlaces false api::update_commune, 200 [404] json(CommunePatch) => Commune, "Change a commune's name, time zone, quiet hours or loudness target.";
    GET    "/api/v1/users"               ManageUsers  false api::users, 200 [] none => Vec<User>, "Users of your commune.";
    POST   "/api/v1/users"               ManageUsers  false api::create_user, 201 [404, 409] json(NewUserRequest) => User, "Add a user with a role.";
    POST   "/api/v1/users/{id}/disable"  ManageUsers  false api::disable_user, 200 [404, 409] none => User, "Disable a user and end their sessions.";
    POST   "/api/v1/users/{id}/enable"   ManageUsers  false api::enable_user, 200 [404, 409] none => User, "Enable a user again.";
    GET    "/api/v1/villages"            Read         false api::villages, 200 [] none => Vec<Village>, "Villages (thôn / tổ dân phố) of the commune.";
    POST   "/api/v1/villages"            ManagePlaces false api::create_village, 201 [404, 409] json(VillageRequest) => Village, "Add a village.";
    PUT    "/api/v1/villages/{id}"       ManagePlaces false library::update_village, 200 [404, 409] json(VillageUpdate) => Village, "Rename a village or change its kind.";
    GET    "/api/v1/groups"              Read         false api::groups, 200 [] none => Vec<VillageGroup>, "Named groups of villages.";
    POST   "/api/v1/groups"              ManagePlaces false api::create_group, 201 [404, 409] json(GroupRequest) => VillageGroup, "Add a group of villages.";
    GET    "/api/v1/nodes"               Read         false api::nodes, 200 [] none => Vec<Node>, "Speaker nodes with their state.";
    POST   "/api/v1/nodes"               ManageNodes  false api::create_node, 201 [404, 409] json(NodeRequest) => NodeCreated, "Add a speaker node: returns its one-time enrolment code.";
    PUT    "/api/v1/nodes/{id}"          ManageNodes  false api::update_node, 200 [404, 409] json(NodeRequest) => Node, "Change a node's name, village, position or notes.";
    GET    "/api/v1/nodes/{id}/desired"  Read         false api::desired_state, 200 [404] none => DesiredState, "The state the node should hold: its schedules and content references, versioned.";
    GET    "/api/v1/nodes/{id}/events"   Read         false api::node_events, 200 [404] none => Vec<NodeEvent>, "A node's history: online/offline, enrolment, commands, newest first.";
    POST   "/api/v1/nodes/{id}/revoke"   ManageNodes  false api::revoke_node, 200 [404] none => Revoked, "Revoke a node's token: its link ends at once.";
    POST   "/api/v1/nodes/{id}/code"     ManageNodes  false api::new_node_code, 200 [404] none => NodeCode, "Revoke the node's token and issue a new one-time enrolment code.";
    POST   "/api/v1/nodes/{id}/commands" ManageNodes  false api::node_command, 202 [404] json(CommandRequest) => CommandResponse, "Send a node a command: set_volume, stop, play_now, test_tone, resync, restart.";
    POST   "/api/v1/nodes/enroll"        Public       true  api::enroll, 200 [403, 429] json(EnrollRequest) => EnrollResponse, "A node trades its one-time enrolment code for its node token.";
    GET    "/api/v1/nodes/link"          Node         true  api::node_link, 101 [] none => (), "The node link: a WebSocket for speaker nodes (node token).";
    GET    "/api/v1/content"             Read         false api::content_list, 200 [] none => Vec<Content>, "The content library (filters: q, category, status, archived, limit, offset).";
    POST   "/api/v1/content"             EditContent  false api::upload, 201 [413, 415] form(UploadForm) => Content, "Upload audio (multipart: file, title, category, description).";
    POST   "/api/v1/content/tts"         EditContent  false api::tts, 201 [] json(TtsRequest) => Content, "Create an announcement from text (text to speech).";
    POST   "/api/v1/content/tts/preview" EditContent  false library::speech_preview, 200 [] json(SpeechPreview) => (), "Typed text as it would sound (audio/wav), nothing stored.";
    GET    "/api/v1/tts/voices"          Read         false library::voices, 200 [] none => Vec<Voice>, "The voices typed announcements can use.";
    POST   "/api/v1/content/relay"       EditContent  false api::relay, 201 [] json(RelayRequest) => Content, "Create a relay item from an external stream URL.";
    GET    "/api/v1/content/{id}"        Read         false api::content_get, 200 [404] none => Content, "One content item.";
    PATCH  "/api/v1/content/{id}"        EditContent  false api::content_patch, 200 [404, 409] json(ContentPatch) => Content, "Edit title, category, description or the public flag.";
    POST   "/api/v1/content/{id}/submit" EditContent  false api::submit, 200 [404, 409] none => Content, "Submit a draft for approval.";
    POST   "/api/v1/content/{id}/approve" Approve     false api::approve, 200 [404, 409] none => Content, "Approve a submitted item.";
    POST   "/api/v1/content/{id}/reject" Approve      false api::reject, 200 [404, 409] json(RejectRequest) => Content, "Reject an item, with a reason.";
    POST   "/api/v1/content/{id}/audio"  EditContent  false library::replace_audio, 200 [404, 409, 413, 415] form(AudioForm) => Content, "A new recording for an item (multipart: file): back to approval.";
    POST   "/api/v1/content/{id}/archive" EditContent false library::archive, 200 [404, 409] none => Content, "Archive an item: out of the library and new schedules, kept for the play logs.";
    POST   "/api/v1/content/{id}/restore" EditContent false library::restore, 200 [404] none => Content, "Bring an archived item back.";
    GET    "/api/v1/content/{id}/audio"  Read         false api::content_audio, 200 [404, 416] none => (), "The item's audio (Range requests supported).";
    GET    "/api/v1/schedules"           Read         false api::schedules, 200 [] none => Vec<Schedule>, "Schedules of the commune.";
    POST   "/api/v1/schedules"           Schedule     false api::create_schedule, 201 [404, 409] json(ScheduleRequest) => Schedule, "Create a schedule (approved items only; quiet hours checked).";
    GET    "/api/v1/schedules/preview"   Read         false api::preview, 200 [404] none => Vec<PreviewPlay>, "The exact plays on a node or in a village over a window, conflicts resolved.";
    GET    "/api/v1/schedules/{id}"      Read         false api::schedule_get, 200 [404] none => Schedule, "One schedule.";
    PUT    "/api/v1/schedules/{id}"      Schedule     false api::update_schedule, 200 [404, 409] json(ScheduleRequest) => Schedule, "Replace a schedule.";
    DELETE "/api/v1/schedules/{id}"      Schedule     false api::delete_schedule, 200 [404] none => Done, "Delete a schedule.";
    POST   "/api/v1/emergency"           Approve      false api::emergency_create, 201 [404, 409] json(EmergencyRequest) => Emergency, "Cut in at once with an approved item or text spoken on the spot, on chosen villages or all (approvers and admins).";
    GET    "/api/v1/emergency"           Read         false api::emergencies, 200 [] none => Vec<Emergency>, "The commune's latest emergencies, newest first.";
    GET    "/api/v1/emergency/{id}"      Read         false api::emergency_get, 200 [404] none => Emergency, "An emergency: reached of total (nodes that confirmed playing it) and every node's state.";
    DELETE "/api/v1/emergency/{id}"      Approve      false api::emergency_stop, 200 [404, 409] none => Emergency, "Stop an emergency on every node; the schedule resumes.";
    GET    "/api/v1/emergency/{id}/events" Read       false api::emergency_events, 200 [404] none => (), "The emergency's reach as server-sent events (text/event-stream), at every change.";
    GET    "/api/v1/live"                Read         false api::live_sessions, 200 [] none => Vec<LiveSession>, "Live sessions on air in the commune (who speaks where).";
    GET    "/api/v1/live/{id}"           Read         false api::live_session, 200 [404] none => LiveSession, "One live session, on air or ended (with why it ended).";
    GET    "/api/v1/playlogs"            Read         false api::playlogs, 200 [] none => Vec<PlayLog>, "Play logs reported by nodes (filters: node, from, to; default the last day up to now).";
    GET    "/api/v1/reports/summary"     Read         false reports::summary, 200 [404] none => crate::service::reports::Summary, "Broadcast counts for a period (from, to: instants or dates; the current quarter by default; village): scheduled, played, failed, interrupted, skipped and air time, per village and category, from trusted play logs. format=csv for a spreadsheet.";
    GET    "/api/v1/reports/items"       Read         false reports::items, 200 [] none => Vec<crate::store::reports::ItemRow>, "Every item that played in a period, with its counts and the villages it reached (format=csv).";
    GET    "/api/v1/reports/items/{id}"  Read         false reports::item, 200 [404] none => crate::service::reports::ItemReport, "One item's plays in a period: which node, which village, when, how it ended (proof of broadcast; format=csv).";
    GET    "/api/v1/alerts"              Read         false library::alerts, 200 [] none => Vec<crate::service::alerts::Alert>, "The commune's latest alerts (offline, play failed, disk low, clock off, underruns rising, content missing), open ones first.";
    GET    "/api/v1/alerts/settings"     Read         false library::alert_settings, 200 [] none => crate::service::alerts::AlertSettings, "Who the commune's alerts go to, and after how long offline.";
    PUT    "/api/v1/alerts/settings"     ManagePlaces false library::set_alert_settings, 200 [] json(crate::service::alerts::AlertSettings) => crate::service::alerts::AlertSettings, "Set the commune's alert emails, webhook and offline minutes.";
    GET    "/api/v1/province"            Read         false library::province, 200 [403] none => Vec<crate::service::province::CommuneFigures>, "Every commune side by side (province-wide users, or a token with scope province): nodes by status, plays delivered vs scheduled over seven days, silent villages.";
    GET    "/api/v1/audit"               Audit        false api::audit, 200 [] none => Vec<AuditEntry>, "The audit log, newest first.";
    GET    "/content/{sha256}"           Read         true  api::blob, 200 [404, 416] none => (), "An audio blob by SHA-256 (immutable; Range requests supported).";
    GET    "/login"                      Public       false ui::login_form, 200 [] none => (), "Login page.";
    POST   "/login"                      Public       false ui::login_post, 303 [] none => (), "Login form.";
    POST   "/logout"                     Read         false ui::logout, 303 [] none => (), "Log out.";
    GET    "/public/{commune}"           Public       false public::page, 200 [404] none => (), "A commune's public page: items marked public, with their text and a player (no login).";
    GET    "/public/{commune}/feed.xml"  Public       false public::feed, 200 [404] none => (), "The commune's RSS 2.0 podcast feed of its public items, with audio enclosures.";
    GET    "/public/{commune}/audio/{file}" Public    false public::audio, 200 [404, 416] none => (), "A public item's audio, by hash (Range requests supported).";
    GET    "/static/{file}"              Public       false ui::asset, 200 [] none => (), "Stylesheet and script.";
    GET    "/"                           Read         false ui::dashboard, 200 [] none => (), "Dashboard.";
    GET    "/ui/content"                 Read         false ui::content, 200 [] none => (), "Content library.";
    GET    "/ui/content/new"             EditContent  false ui::new_content, 200 [] none => (), "Upload and text-to-speech forms.";
    GET    "/ui/approvals"               Approve      false ui::approvals, 200 [] none => (), "Approval queue.";
    GET    "/ui/schedules"               Read         false ui::schedules, 200 [] none => (), "Schedules and the schedule editor.";
    GET    "/ui/week"                    Read         false ui::week, 200 [] none => (), "What plays in each village this week.";
    GET    "/ui/places"                  Read         false ui::places, 200 [] none => (), "Villages, groups and speaker nodes.";
    GET    "/ui/nodes/{id}"              Read         false ui::node, 200 [] none => (), "One speaker node: health, history, remote control.";
    GET    "/ui/nodes/{id}/now"          Read         false ui::node_now, 200 [] none => (), "The node page's changing part (state, health, history), refreshed by the page.";
    GET    "/ui/live"                    Schedule     false ui::live_page, 200 [] none => (), "Speak live to villages through the browser's microphone.";
    GET    "/ui/emergency"               Read         false ui::emergencies, 200 [] none => (), "The emergency button's page and recent emergencies.";
    GET    "/ui/emergency/{id}"          Read         false ui::emergency, 200 [] none => (), "One emergency's reach, live, with the stop button.";
    GET    "/ui/fleet"                   Read         false ui::fleet, 200 [] none => (), "Every node's status, problems first, with a map; filters by village and status; refreshes itself.";
    GET    "/ui/fleet/now"               Read         false ui::fleet_now, 200 [] none => (), "The fleet page's changing part, for its refresh.";
    GET    "/ui/tokens"                  Read         false ui::tokens, 200 [] none => (), "API tokens: create (shown once), see and revoke.";
    GET    "/ui/alerts"                  Read         false ui::alerts, 200 [] none => (), "The latest alerts in words; who they go to (admins).";
    GET    "/ui/province"                Read         false ui::province, 200 [403] none => (), "Every commune side by side (province-wide users).";
    GET    "/ui/province/{id}"           Read         false ui::province_commune, 200 [403] none => (), "One commune's villages over the last seven days (province-wide users).";
    GET    "/ui/reports"                 Read         false ui::reports, 200 [] none => (), "The broadcast report for a period: by village, category and item; CSV and print.";
    GET    "/ui/reports/items/{id}"      Read         false ui::report_item, 200 [] none => (), "One item's plays in a period: the proof of broadcast.";
    GET    "/ui/users"                   ManageUsers  false ui::users, 200 [] none => (), "Users.";
    GET    "/ui/audit"                   Audit        false ui::audit, 200 [] none => (), "Audit log.";
}

pub enum Found<'a> {
    Route(&'a Route, Vec<String>),
    /// The path exists with these methods only.
    WrongMethod(Vec<Method>),
    None,
}

/// Finds the route for a request; path parameters in order.
///
/// The most literal pattern matching the path owns it (`/schedules/preview` before
/// `/schedules/{id}`, for every method): a method that pattern lacks is a 405 naming the
/// methods it has, never a parameter route taking `preview` as an id.
pub fn find<'a>(method: &Method, path: &str) -> Found<'a> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let segments = if path == "/" { vec![""] } else { segments };
    // (pattern, params) of the matching patterns with the fewest parameters.
    let mut owners: Vec<(&'static Route, Vec<String>)> = Vec::new();
    for route in ROUTES {
        let Some(params) = matches(route.path, &segments) else {
            continue;
        };
        match owners.first().map(|(_, p)| p.len()) {
            Some(n) if params.len() > n => continue,
            Some(n) if params.len() < n => owners.clear(),
            _ => {}
        }
        owners.push((route, params));
    }
    if let Some(at) = owners.iter().position(|(r, _)| r.method == *method) {
        let (route, params) = owners.swap_remove(at);
        return Found::Route(route, params);
    }
    let mut allowed: Vec<Method> = Vec::new();
    for (r, _) in &owners {
        if !allowed.contains(&r.method) {
            allowed.push(r.method.clone());
        }
    }
    match allowed.is_empty() {
        true => Found::None,
        false => Found::WrongMethod(allowed),
    }
}

/// The path parameters when `pattern` matches the path's segments.
fn matches(pattern: &str, segments: &[&str]) -> Option<Vec<String>> {
    let parts: Vec<&str> = if pattern == "/" {
        vec![""]
    } else {
        pattern.split('/').collect()
    };
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in parts.iter().zip(segments) {
        if p.starts_with('{') {
            if s.is_empty() {
                return None;
            }
            params.push(percent_decode(s));
        } else if p != s {
            return None;
        }
    }
    Some(params)
}

/// A path segment, percent-decoded (`+` stays `+` in paths).
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `a=1&b=x+y` -> pairs, decoded as HTML forms encode them.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_beats_parameter() {
        match find(&Method::GET, "/api/v1/schedules/preview") {
            Found::Route(r, _) => assert_eq!(r.name, "api::preview"),
            _ => panic!("no route"),
        }
        match find(&Method::GET, "/api/v1/schedules/7") {
            Found::Route(r, p) => {
                assert_eq!(r.name, "api::schedule_get");
                assert_eq!(p, ["7"]);
            }
            _ => panic!("no route"),
        }
        match find(&Method::DELETE, "/api/v1/content") {
            Found::WrongMethod(allowed) => assert_eq!(allowed, [Method::GET, Method::POST]),
            _ => panic!("DELETE /api/v1/content is not a route"),
        }
        // A literal path owns every method: not `PATCH /api/v1/content/{id}` with id "tts".
        match find(&Method::PATCH, "/api/v1/content/tts") {
            Found::WrongMethod(allowed) => assert_eq!(allowed, [Method::POST]),
            _ => panic!("PATCH /api/v1/content/tts is not a route"),
        }
        match find(&Method::PUT, "/api/v1/schedules/preview") {
            Found::WrongMethod(allowed) => assert_eq!(allowed, [Method::GET]),
            _ => panic!("PUT /api/v1/schedules/preview is not a route"),
        }
        assert!(matches!(find(&Method::GET, "/nope"), Found::None));
        assert!(matches!(find(&Method::GET, "/"), Found::Route(r, _) if r.name == "ui::dashboard"));
    }

    #[test]
    fn every_route_is_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} twice",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("Th%C3%B4n%201"), "Thôn 1");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(
            parse_query("q=Th%C3%B4n+1"),
            [("q".into(), "Thôn 1".into())]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(
            parse_query("a=1&b=x%20y&c"),
            [
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), String::new())
            ]
        );
    }
}
