//! The node link over an MQTT broker: topic names, and what goes on each at which QoS.
//!
//! The same messages as the WebSocket link ([`crate::link`]), placed for a broker:
//!
//! | topic (under `{prefix}/{province}/{commune}`) | from | QoS | retained | carries |
//! |---|---|---|---|---|
//! | `node/{id}/up` | node | 0 or 1 ([`up_qos`]) | no | [`crate::link::NodeMsg`] |
//! | `node/{id}/down` | controller | 0 or 1 ([`down_route`]) | no | [`crate::link::ControllerMsg`] but the desired state; [`bye`] |
//! | `node/{id}/desired` | controller | 1 | **yes** | the node's desired state: a node that reconnects has the latest at once, without asking |
//! | `node/{id}/presence` | node (its last will: broker) | 1 | yes | `online`, or `offline` when the broker loses it |
//! | `village/{id}/live` | controller | 0 | no | live audio packets ([`crate::live`]), once per village |
//!
//! Every segment is scoped province / commune / node, so a broker's ACL can confine each
//! node to its own topics and its village's live topic ([`node_acl`]), and the controller
//! to its province. Heartbeats and clock exchanges go at QoS 0 (the next one supersedes a
//! lost one); play logs, acknowledgements, commands and emergency reach at QoS 1, with ids
//! the receiver deduplicates (QoS 1 may deliver twice).

#[cfg(feature = "mqtt")]
pub mod broker;
#[cfg(feature = "mqtt")]
pub use broker::{BrokerTransport, NodeBroker, configured, parse_url};

/// The default first segment of every topic.
pub const DEFAULT_PREFIX: &str = "loa";

/// Longest segment taken from a topic or a configuration (a slug or a number).
const MAX_SEGMENT: usize = 64;

/// MQTT's delivery guarantees, as used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
}

/// Where a province's topics live: `{prefix}/{province}`. A controller serves its
/// province's communes below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    prefix: String,
    province: String,
}

/// Where a commune's topics live: `{prefix}/{province}/{commune}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    root: Root,
    commune: String,
}

/// What a topic under a scope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Up(i64),
    Down(i64),
    Desired(i64),
    Presence(i64),
    Live(i64),
}

/// A segment that cannot name a scope: empty, too long, or holding what MQTT reserves
/// (`/`, `+`, `#`, `$` first, NUL) or anything but ASCII letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a topic segment: {0:?} (ASCII letters, digits, - and _, at most 64)")]
pub struct BadSegment(pub String);

fn segment(s: &str) -> Result<String, BadSegment> {
    let ok = !s.is_empty()
        && s.len() <= MAX_SEGMENT
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| s.to_owned())
        .ok_or_else(|| BadSegment(s.chars().take(MAX_SEGMENT).collect()))
}

impl Root {
    pub fn new(prefix: &str, province: &str) -> Result<Self, BadSegment> {
        Ok(Root {
            prefix: segment(prefix)?,
            province: segment(province)?,
        })
    }

    /// `PREFIX/PROVINCE`, as configured.
    pub fn parse_str(s: &str) -> Result<Self, BadSegment> {
        match s.split_once('/') {
            Some((prefix, province)) => Root::new(prefix, province),
            None => Err(BadSegment(s.chars().take(MAX_SEGMENT).collect())),
        }
    }

    /// The scope of one of its communes.
    pub fn scope(&self, commune: &str) -> Result<Scope, BadSegment> {
        Ok(Scope {
            root: self.clone(),
            commune: segment(commune)?,
        })
    }

    /// What the controller subscribes to: every node's messages and presence in every
    /// commune of the province.
    pub fn controller_filters(&self) -> [String; 2] {
        [
            format!("{self}/+/node/+/up"),
            format!("{self}/+/node/+/presence"),
        ]
    }

    /// The commune and the topic a name under this root is; `None` for anything else.
    /// Names come from the broker: untrusted.
    pub fn parse<'a>(&self, name: &'a str) -> Option<(&'a str, Topic)> {
        let rest = self.strip(name)?;
        let (commune, rest) = rest.split_once('/')?;
        segment(commune).ok()?;
        Some((commune, parse_rest(rest)?))
    }

    fn strip<'a>(&self, name: &'a str) -> Option<&'a str> {
        name.strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?
            .strip_prefix(self.province.as_str())?
            .strip_prefix('/')
    }
}

impl std::fmt::Display for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.prefix, self.province)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.root, self.commune)
    }
}

impl Scope {
    /// The scope of one commune; every part a plain segment.
    pub fn new(prefix: &str, province: &str, commune: &str) -> Result<Self, BadSegment> {
        Root::new(prefix, province)?.scope(commune)
    }

    /// `PREFIX/PROVINCE/COMMUNE`, as the enrolment answer or a configuration gives it.
    pub fn parse_str(s: &str) -> Result<Self, BadSegment> {
        match s.rsplit_once('/') {
            Some((root, commune)) => Root::parse_str(root)?.scope(commune),
            None => Err(BadSegment(s.chars().take(MAX_SEGMENT).collect())),
        }
    }

    /// The topic's full name.
    pub fn topic(&self, t: Topic) -> String {
        match t {
            Topic::Up(id) => format!("{self}/node/{id}/up"),
            Topic::Down(id) => format!("{self}/node/{id}/down"),
            Topic::Desired(id) => format!("{self}/node/{id}/desired"),
            Topic::Presence(id) => format!("{self}/node/{id}/presence"),
            Topic::Live(village) => format!("{self}/village/{village}/live"),
        }
    }

    /// What a topic name under this scope is; `None` for anything else (another
    /// commune's, a wildcard, a malformed id). Names come from the broker: untrusted.
    pub fn parse(&self, name: &str) -> Option<Topic> {
        let rest = self
            .root
            .strip(name)?
            .strip_prefix(self.commune.as_str())?
            .strip_prefix('/')?;
        parse_rest(rest)
    }

    /// What a node subscribes to: its own commands and desired state (its village's live
    /// topic follows, once the controller has named the village: [`Scope::live_filter`]).
    pub fn node_filters(&self, node: i64) -> [String; 2] {
        [
            self.topic(Topic::Down(node)),
            self.topic(Topic::Desired(node)),
        ]
    }

    pub fn live_filter(&self, village: i64) -> String {
        self.topic(Topic::Live(village))
    }
}

/// `node/{id}/{what}` or `village/{id}/live`, exactly.
fn parse_rest(rest: &str) -> Option<Topic> {
    let mut parts = rest.split('/');
    let (kind, id, what) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let id = parse_id(id)?;
    match (kind, what) {
        ("node", "up") => Some(Topic::Up(id)),
        ("node", "down") => Some(Topic::Down(id)),
        ("node", "desired") => Some(Topic::Desired(id)),
        ("node", "presence") => Some(Topic::Presence(id)),
        ("village", "live") => Some(Topic::Live(id)),
        _ => None,
    }
}

/// A positive decimal id without sign or leading zeros (one name per node).
fn parse_id(s: &str) -> Option<i64> {
    let plain = !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
    if !plain || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    s.parse().ok().filter(|id| *id > 0)
}

/// The `kind` of a link message, read without decoding the rest (a desired state can be
/// hundreds of kilobytes); `None` for text that is not a message.
pub fn kind(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: String,
    }
    serde_json::from_str::<Kind>(text).ok().map(|k| k.kind)
}

/// The QoS a node's message ([`NodeMsg`], encoded) goes at: what the next one supersedes
/// at most once (heartbeats, clock pings), what must arrive (and is deduplicated by id)
/// at least once: hello, applied, play logs, command results, play states.
pub fn up_qos(text: &str) -> Qos {
    match kind(text).as_deref() {
        Some("ping" | "heartbeat") => Qos::AtMostOnce,
        _ => Qos::AtLeastOnce,
    }
}

/// Where the controller's message ([`ControllerMsg`], encoded) goes and at which QoS:
/// the desired state retained on its own topic, clock pongs at most once, the rest
/// (welcome, acks, commands, goodbyes) at least once on the node's `down` topic.
pub fn down_route(text: &str, node: i64) -> (Topic, Qos, bool) {
    match kind(text).as_deref() {
        Some("desired") => (Topic::Desired(node), Qos::AtLeastOnce, true),
        Some("pong") => (Topic::Down(node), Qos::AtMostOnce, false),
        _ => (Topic::Down(node), Qos::AtLeastOnce, false),
    }
}

/// The controller ends a node's session over a broker (there is no socket to close) with
/// this message on the node's `down` topic; the node's transport reports the link closed
/// with the reason, and the node says hello again. A WebSocket node never sees one (and
/// would ignore it as an unknown kind).
pub fn bye(reason: &str) -> String {
    serde_json::json!({ "kind": BYE, "reason": reason }).to_string()
}

pub(crate) const BYE: &str = "bye";

/// The reason, if `text` is a [`bye`].
pub fn parse_bye(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Bye {
        kind: String,
        #[serde(default)]
        reason: String,
    }
    serde_json::from_str::<Bye>(text)
        .ok()
        .filter(|b| b.kind == BYE)
        .map(|b| b.reason)
}

/// The presence payloads: what a node publishes on connecting, and its last will.
pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

/// The broker ACL lines (Mosquitto's `acl_file` syntax) that confine node `node`, whose
/// broker user is `user`, to its own topics: it may publish its messages and presence,
/// and read its commands, its desired state and its village's live audio. Nothing else:
/// not another node's, not the controller's subscriptions.
pub fn node_acl(scope: &Scope, user: &str, node: i64, village: i64) -> Result<String, BadSegment> {
    let user = segment(user)?;
    Ok(format!(
        "user {user}\ntopic write {}\ntopic write {}\ntopic read {}\ntopic read {}\ntopic read {}\n",
        scope.topic(Topic::Up(node)),
        scope.topic(Topic::Presence(node)),
        scope.topic(Topic::Down(node)),
        scope.topic(Topic::Desired(node)),
        scope.topic(Topic::Live(village)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        Scope::new("loa", "ha-tinh", "xa-cam-binh").unwrap()
    }

    #[test]
    fn every_topic_parses_back_to_itself() {
        let s = scope();
        for t in [
            Topic::Up(42),
            Topic::Down(42),
            Topic::Desired(7),
            Topic::Presence(1),
            Topic::Live(3),
        ] {
            assert_eq!(s.parse(&s.topic(t)), Some(t), "{}", s.topic(t));
        }
        assert_eq!(s.topic(Topic::Up(42)), "loa/ha-tinh/xa-cam-binh/node/42/up");
    }

    #[test]
    fn names_from_elsewhere_or_malformed_are_not_ours() {
        let s = scope();
        for name in [
            "loa/ha-tinh/xa-khac/node/42/up",
            "loa/ha-tinh/xa-cam-binh/node/+/up",
            "loa/ha-tinh/xa-cam-binh/node/#",
            "loa/ha-tinh/xa-cam-binh/node/042/up",
            "loa/ha-tinh/xa-cam-binh/node/-1/up",
            "loa/ha-tinh/xa-cam-binh/node/0/up",
            "loa/ha-tinh/xa-cam-binh/node/42/up/x",
            "loa/ha-tinh/xa-cam-binh/node/42",
            "loa/ha-tinh/xa-cam-binh/village/3/up",
            "loa/ha-tinh/xa-cam-binhx/node/42/up",
            "loa/ha-tinh/xa-cam-binh/node/99999999999999999999/up",
            "",
            "loa",
        ] {
            assert_eq!(s.parse(name), None, "{name}");
        }
    }

    #[test]
    fn scopes_refuse_segments_mqtt_reserves() {
        for bad in ["", "a/b", "+", "#", "$SYS", "xã", "a b", &"x".repeat(65)] {
            assert!(Scope::new("loa", bad, "c").is_err(), "{bad:?}");
        }
        assert!(Scope::new("loa", "ha-tinh", "xa_1").is_ok());
    }

    #[test]
    fn what_must_arrive_goes_at_least_once_and_the_state_is_retained() {
        use crate::link::{ControllerMsg, NodeMsg, encode};
        assert_eq!(up_qos(&encode(&NodeMsg::Ping { t0: 1 })), Qos::AtMostOnce);
        let logs = NodeMsg::PlayLogs {
            entries: Vec::new(),
        };
        assert_eq!(up_qos(&encode(&logs)), Qos::AtLeastOnce);
        assert_eq!(up_qos("not json"), Qos::AtLeastOnce);
        let pong = ControllerMsg::Pong {
            t0: 1,
            t1: 2,
            t2: 3,
        };
        assert_eq!(
            down_route(&encode(&pong), 5),
            (Topic::Down(5), Qos::AtMostOnce, false)
        );
        let ack = ControllerMsg::PlayLogsAck { ids: Vec::new() };
        assert_eq!(
            down_route(&encode(&ack), 5),
            (Topic::Down(5), Qos::AtLeastOnce, false)
        );
        let state = crate::desired::DesiredState {
            version: "v".into(),
            node_id: 5,
            tz: "Asia/Ho_Chi_Minh".into(),
            quiet_hours: Default::default(),
            schedules: Vec::new(),
        };
        let desired = ControllerMsg::Desired(Box::new(state));
        assert_eq!(
            down_route(&encode(&desired), 5),
            (Topic::Desired(5), Qos::AtLeastOnce, true)
        );
    }

    #[test]
    fn a_goodbye_is_told_apart_from_every_message() {
        assert_eq!(parse_bye(&bye("revoked")).as_deref(), Some("revoked"));
        assert_eq!(parse_bye(r#"{"kind":"pong","t0":1,"t1":2,"t2":3}"#), None);
        assert_eq!(parse_bye("bye"), None);
        assert_eq!(
            crate::link::ControllerMsg::decode(&bye("x")).unwrap(),
            crate::link::ControllerMsg::Unknown
        );
    }

    #[test]
    fn a_province_root_parses_its_communes_topics() {
        let root = Root::parse_str("loa/ha-tinh").unwrap();
        assert_eq!(
            root.parse("loa/ha-tinh/xa-cam-binh/node/42/up"),
            Some(("xa-cam-binh", Topic::Up(42)))
        );
        for name in [
            "loa/ha-tinh/+/node/42/up",
            "loa/ha-tinh/xa/node/42",
            "loa/nghe-an/xa/node/42/up",
            "loa/ha-tinh/x\u{e3}/node/42/up",
        ] {
            assert_eq!(root.parse(name), None, "{name}");
        }
        let s = Scope::parse_str("loa/ha-tinh/xa-cam-binh").unwrap();
        assert_eq!(s, scope());
        assert_eq!(s.to_string(), "loa/ha-tinh/xa-cam-binh");
        for bad in ["loa/ha-tinh", "loa", "loa/ha tinh/x", "a/b/c/d"] {
            assert!(Scope::parse_str(bad).is_err(), "{bad}");
        }
        assert_eq!(root.controller_filters()[0], "loa/ha-tinh/+/node/+/up");
    }

    proptest::proptest! {
        /// Whatever name the broker hands over: no panic, and what parses is exactly the
        /// name of that topic (one name per topic, so no alias slips past an ACL).
        #[test]
        fn any_name_parses_to_its_own_topic_or_none(name in "(loa/ha-tinh/xa-cam-binh/)?[a-z0-9/+#-]{0,24}") {
            let s = scope();
            if let Some(t) = s.parse(&name) {
                proptest::prop_assert_eq!(s.topic(t), name);
            }
        }
    }

    #[test]
    fn a_nodes_acl_names_only_its_own_topics() {
        let acl = node_acl(&scope(), "node-42", 42, 3).unwrap();
        assert!(acl.starts_with("user node-42\n"));
        assert_eq!(acl.lines().count(), 6);
        assert!(acl.contains("topic write loa/ha-tinh/xa-cam-binh/node/42/up\n"));
        assert!(acl.contains("topic read loa/ha-tinh/xa-cam-binh/village/3/live\n"));
        assert!(!acl.contains('+') && !acl.contains('#'));
        assert!(node_acl(&scope(), "node 42\ntopic readwrite #", 42, 3).is_err());
    }
}
