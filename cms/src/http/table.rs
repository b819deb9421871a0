//! Every route in one place: method, path pattern, the permission it needs, and what it
//! does. Dispatch, the OpenAPI document and the route x role test all read this table, so
//! a route cannot exist without a permission.

use warp::http::Method;

use crate::auth::Perm;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Id {
    Healthz,
    OpenApi,
    Login,
    Logout,
    Me,
    CreateToken,
    Communes,
    UpdateCommune,
    Users,
    CreateUser,
    DisableUser,
    EnableUser,
    Villages,
    CreateVillage,
    Groups,
    CreateGroup,
    Nodes,
    CreateNode,
    UpdateNode,
    DesiredState,
    Enroll,
    NodeLink,
    RevokeNode,
    NewNodeCode,
    NodeEvents,
    NodeCommand,
    ContentList,
    Upload,
    Tts,
    Relay,
    ContentGet,
    ContentPatch,
    Submit,
    Approve,
    Reject,
    ContentAudio,
    Schedules,
    CreateSchedule,
    Preview,
    ScheduleGet,
    UpdateSchedule,
    DeleteSchedule,
    PlayLogs,
    Audit,
    Blob,
    // Web UI
    UiLogin,
    UiLoginPost,
    UiLogout,
    UiAsset,
    UiDashboard,
    UiContent,
    UiNewContent,
    UiApprovals,
    UiSchedules,
    UiWeek,
    UiPlaces,
    UiNode,
    UiUsers,
    UiAudit,
}

pub struct Route {
    pub method: Method,
    /// `/api/v1/content/{id}`: `{name}` matches one path segment.
    pub path: &'static str,
    pub perm: Perm,
    pub id: Id,
    pub summary: &'static str,
}

impl Route {
    /// JSON API routes (documented in OpenAPI); the rest is the web UI.
    pub fn is_api(&self) -> bool {
        self.path.starts_with("/api/")
            || self.path == "/healthz"
            || self.path.starts_with("/content/")
    }
}

macro_rules! routes {
    ($($method:ident $path:literal $perm:ident $id:ident $summary:literal;)*) => {
        pub static ROUTES: &[Route] = &[
            $(Route { method: Method::$method, path: $path, perm: Perm::$perm, id: Id::$id, summary: $summary },)*
        ];
    };
}

routes! {
    GET    "/healthz"                          Public       Healthz        "Liveness: 200 when the process serves requests.";
    GET    "/api/v1/openapi.json"              Public       OpenApi        "This API's OpenAPI 3.0 document.";
    POST   "/api/v1/auth/login"                Public       Login          "Log in with username and password: a token and a session cookie.";
    POST   "/api/v1/auth/logout"               Read         Logout         "End this session.";
    GET    "/api/v1/me"                        Read         Me             "Who is logged in, with role and commune.";
    POST   "/api/v1/tokens"                    Read         CreateToken    "Create a long-lived API token for your account (shown once).";
    GET    "/api/v1/communes"                  Read         Communes       "Communes you can see.";
    PATCH  "/api/v1/communes/{id}"             ManagePlaces UpdateCommune  "Change a commune's name, time zone, quiet hours or loudness target.";
    GET    "/api/v1/users"                     ManageUsers  Users          "Users of your commune.";
    POST   "/api/v1/users"                     ManageUsers  CreateUser     "Add a user with a role.";
    POST   "/api/v1/users/{id}/disable"        ManageUsers  DisableUser    "Disable a user and end their sessions.";
    POST   "/api/v1/users/{id}/enable"         ManageUsers  EnableUser     "Enable a user again.";
    GET    "/api/v1/villages"                  Read         Villages       "Villages (thôn / tổ dân phố) of the commune.";
    POST   "/api/v1/villages"                  ManagePlaces CreateVillage  "Add a village.";
    GET    "/api/v1/groups"                    Read         Groups         "Named groups of villages.";
    POST   "/api/v1/groups"                    ManagePlaces CreateGroup    "Add a group of villages.";
    GET    "/api/v1/nodes"                     Read         Nodes          "Speaker nodes with their state.";
    POST   "/api/v1/nodes"                     ManageNodes  CreateNode     "Add a speaker node: returns its one-time enrolment code.";
    PUT    "/api/v1/nodes/{id}"                ManageNodes  UpdateNode     "Change a node's name, village, position or notes.";
    GET    "/api/v1/nodes/{id}/desired"        Read         DesiredState   "The state the node should hold: its schedules and content references, versioned.";
    GET    "/api/v1/nodes/{id}/events"         Read         NodeEvents     "A node's history: online/offline, enrolment, commands, newest first.";
    POST   "/api/v1/nodes/{id}/revoke"         ManageNodes  RevokeNode     "Revoke a node's token: its link ends at once.";
    POST   "/api/v1/nodes/{id}/code"           ManageNodes  NewNodeCode    "Revoke the node's token and issue a new one-time enrolment code.";
    POST   "/api/v1/nodes/{id}/commands"       ManageNodes  NodeCommand    "Send a node a command: set_volume, stop, play_now, test_tone, resync, restart.";
    POST   "/api/v1/nodes/enroll"              Public       Enroll         "A node trades its one-time enrolment code for its node token.";
    GET    "/api/v1/nodes/link"                Node         NodeLink       "The node link: a WebSocket for speaker nodes (node token).";
    GET    "/api/v1/content"                   Read         ContentList    "The content library (filters: q, category, status, limit, offset).";
    POST   "/api/v1/content"                   EditContent  Upload         "Upload audio (multipart: file, title, category, description).";
    POST   "/api/v1/content/tts"               EditContent  Tts            "Create an announcement from text (text to speech).";
    POST   "/api/v1/content/relay"             EditContent  Relay          "Create a relay item from an external stream URL.";
    GET    "/api/v1/content/{id}"              Read         ContentGet     "One content item.";
    PATCH  "/api/v1/content/{id}"              EditContent  ContentPatch   "Edit title, category, description or the public flag.";
    POST   "/api/v1/content/{id}/submit"       EditContent  Submit         "Submit a draft for approval.";
    POST   "/api/v1/content/{id}/approve"      Approve      Approve        "Approve a submitted item.";
    POST   "/api/v1/content/{id}/reject"       Approve      Reject         "Reject an item, with a reason.";
    GET    "/api/v1/content/{id}/audio"        Read         ContentAudio   "The item's audio (Range requests supported).";
    GET    "/api/v1/schedules"                 Read         Schedules      "Schedules of the commune.";
    POST   "/api/v1/schedules"                 Schedule     CreateSchedule "Create a schedule (approved items only; quiet hours checked).";
    GET    "/api/v1/schedules/preview"         Read         Preview        "The exact plays on a node or in a village over a window, conflicts resolved.";
    GET    "/api/v1/schedules/{id}"            Read         ScheduleGet    "One schedule.";
    PUT    "/api/v1/schedules/{id}"            Schedule     UpdateSchedule "Replace a schedule.";
    DELETE "/api/v1/schedules/{id}"            Schedule     DeleteSchedule "Delete a schedule.";
    GET    "/api/v1/playlogs"                  Read         PlayLogs       "Play logs reported by nodes (filters: node, from, to).";
    GET    "/api/v1/audit"                     Audit        Audit          "The audit log, newest first.";
    GET    "/content/{sha256}"                 Read         Blob           "An audio blob by SHA-256 (immutable; Range requests supported).";
    GET    "/login"                            Public       UiLogin        "Login page.";
    POST   "/login"                            Public       UiLoginPost    "Login form.";
    POST   "/logout"                           Read         UiLogout       "Log out.";
    GET    "/static/{file}"                    Public       UiAsset        "Stylesheet and script.";
    GET    "/"                                 Read         UiDashboard    "Dashboard.";
    GET    "/ui/content"                       Read         UiContent      "Content library.";
    GET    "/ui/content/new"                   EditContent  UiNewContent   "Upload and text-to-speech forms.";
    GET    "/ui/approvals"                     Approve      UiApprovals    "Approval queue.";
    GET    "/ui/schedules"                     Read         UiSchedules    "Schedules and the schedule editor.";
    GET    "/ui/week"                          Read         UiWeek         "What plays in each village this week.";
    GET    "/ui/places"                        Read         UiPlaces       "Villages, groups and speaker nodes.";
    GET    "/ui/nodes/{id}"                    Read         UiNode         "One speaker node: health, history, remote control.";
    GET    "/ui/users"                         ManageUsers  UiUsers        "Users.";
    GET    "/ui/audit"                         Audit        UiAudit        "Audit log.";
}

pub enum Found<'a> {
    Route(&'a Route, Vec<String>),
    /// The path exists with other methods.
    WrongMethod,
    None,
}

/// Finds the route for a request; path parameters in order.
pub fn find<'a>(method: &Method, path: &str) -> Found<'a> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let segments = if path == "/" { vec![""] } else { segments };
    let mut path_matched = false;
    // Literal segments win over parameters (`/schedules/preview` before `/schedules/{id}`).
    let mut best: Option<(&Route, Vec<String>, usize)> = None;
    for route in ROUTES {
        let pattern: Vec<&str> = if route.path == "/" {
            vec![""]
        } else {
            route.path.split('/').collect()
        };
        if pattern.len() != segments.len() {
            continue;
        }
        let mut params = Vec::new();
        let ok = pattern.iter().zip(&segments).all(|(p, s)| {
            if p.starts_with('{') {
                params.push(percent_decode(s));
                !s.is_empty()
            } else {
                p == s
            }
        });
        if !ok {
            continue;
        }
        path_matched = true;
        if route.method == *method && best.as_ref().is_none_or(|b| params.len() < b.2) {
            let n = params.len();
            best = Some((route, params, n));
        }
    }
    match best {
        Some((r, params, _)) => Found::Route(r, params),
        None if path_matched => Found::WrongMethod,
        None => Found::None,
    }
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
            Found::Route(r, _) => assert_eq!(r.id, Id::Preview),
            _ => panic!("no route"),
        }
        match find(&Method::GET, "/api/v1/schedules/7") {
            Found::Route(r, p) => {
                assert_eq!(r.id, Id::ScheduleGet);
                assert_eq!(p, ["7"]);
            }
            _ => panic!("no route"),
        }
        assert!(matches!(
            find(&Method::DELETE, "/api/v1/content"),
            Found::WrongMethod
        ));
        assert!(matches!(find(&Method::GET, "/nope"), Found::None));
        assert!(matches!(find(&Method::GET, "/"), Found::Route(r, _) if r.id == Id::UiDashboard));
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
