//! The node link over an MQTT broker: topic names, and what goes on each at which QoS.
//!
//! The same messages as the WebSocket link ([`crate::link`]), placed for a broker:
//!
//! | topic (under `{prefix}/{province}/{commune}`) | from | QoS | retained | carries |
//! |---|---|---|---|---|
//! | `node/{id}/up` | node | 0 or 1 ([`up_qos`]) | no | [`NodeMsg`] |
//! | `node/{id}/down` | controller | 0 or 1 ([`down_route`]) | no | [`ControllerMsg`] but the desired state |
//! | `node/{id}/desired` | controller | 1 | **yes** | the node's desired state: a node that reconnects has the latest at once, without asking |
//! | `node/{id}/presence` | node (its last will: broker) | 1 | yes | `online`, or `offline` when the broker loses it |
//! | `village/{id}/live` | controller | 0 | no | live audio packets ([`crate::live`]), once per village |
//!
//! Every segment is scoped province / commune / node, so a broker's ACL can confine each
//! node to its own topics and its village's live topic ([`node_acl`]), and the controller
//! to its province. Heartbeats and clock exchanges go at QoS 0 (the next one supersedes a
//! lost one); play logs, acknowledgements, commands and emergency reach at QoS 1, with ids
//! the receiver deduplicates (QoS 1 may deliver twice).

use crate::link::{ControllerMsg, NodeMsg};

#[cfg(feature = "mqtt")]
mod broker;
#[cfg(feature = "mqtt")]
pub use broker::{BrokerTransport, NodeBroker, parse_url};

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

/// Where a commune's topics live: `{prefix}/{province}/{commune}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    prefix: String,
    province: String,
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

impl Scope {
    /// The scope of one commune; every part a plain segment.
    pub fn new(prefix: &str, province: &str, commune: &str) -> Result<Self, BadSegment> {
        Ok(Scope {
            prefix: segment(prefix)?,
            province: segment(province)?,
            commune: segment(commune)?,
        })
    }

    /// The topic's full name.
    pub fn topic(&self, t: Topic) -> String {
        let base = format!("{}/{}/{}", self.prefix, self.province, self.commune);
        match t {
            Topic::Up(id) => format!("{base}/node/{id}/up"),
            Topic::Down(id) => format!("{base}/node/{id}/down"),
            Topic::Desired(id) => format!("{base}/node/{id}/desired"),
            Topic::Presence(id) => format!("{base}/node/{id}/presence"),
            Topic::Live(village) => format!("{base}/village/{village}/live"),
        }
    }

    /// What a topic name under this scope is; `None` for anything else (another
    /// commune's, a wildcard, a malformed id). Names come from the broker: untrusted.
    pub fn parse(&self, name: &str) -> Option<Topic> {
        let rest = name
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?
            .strip_prefix(self.province.as_str())?
            .strip_prefix('/')?
            .strip_prefix(self.commune.as_str())?
            .strip_prefix('/')?;
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

    /// What the controller subscribes to for its commune: every node's messages and
    /// presence.
    pub fn controller_filters(&self) -> [String; 2] {
        let base = format!("{}/{}/{}", self.prefix, self.province, self.commune);
        [
            format!("{base}/node/+/up"),
            format!("{base}/node/+/presence"),
        ]
    }

    /// What a node subscribes to: its own commands and desired state, and its village's
    /// live audio.
    pub fn node_filters(&self, node: i64, village: i64) -> [String; 3] {
        [
            self.topic(Topic::Down(node)),
            self.topic(Topic::Desired(node)),
            self.topic(Topic::Live(village)),
        ]
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

/// The QoS a node's message goes at: what the next one supersedes at most once, what
/// must arrive (and is deduplicated by id) at least once.
pub fn up_qos(msg: &NodeMsg) -> Qos {
    match msg {
        NodeMsg::Ping { .. } | NodeMsg::Heartbeat(_) | NodeMsg::Unknown => Qos::AtMostOnce,
        NodeMsg::Hello { .. }
        | NodeMsg::Applied { .. }
        | NodeMsg::PlayLogs { .. }
        | NodeMsg::CommandDone { .. }
        | NodeMsg::PlayState { .. } => Qos::AtLeastOnce,
    }
}

/// Where the controller's message goes and at which QoS: the desired state retained on
/// its own topic, the rest on the node's `down` topic.
pub fn down_route(msg: &ControllerMsg, node: i64) -> (Topic, Qos, bool) {
    match msg {
        ControllerMsg::Desired(_) => (Topic::Desired(node), Qos::AtLeastOnce, true),
        ControllerMsg::Pong { .. } | ControllerMsg::Unknown => {
            (Topic::Down(node), Qos::AtMostOnce, false)
        }
        ControllerMsg::Welcome { .. }
        | ControllerMsg::PlayLogsAck { .. }
        | ControllerMsg::Command { .. } => (Topic::Down(node), Qos::AtLeastOnce, false),
    }
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
        assert_eq!(up_qos(&NodeMsg::Ping { t0: 1 }), Qos::AtMostOnce);
        assert_eq!(
            up_qos(&NodeMsg::PlayLogs {
                entries: Vec::new()
            }),
            Qos::AtLeastOnce
        );
        assert_eq!(
            down_route(
                &ControllerMsg::Pong {
                    t0: 1,
                    t1: 2,
                    t2: 3
                },
                5
            ),
            (Topic::Down(5), Qos::AtMostOnce, false)
        );
        assert_eq!(
            down_route(&ControllerMsg::PlayLogsAck { ids: Vec::new() }, 5),
            (Topic::Down(5), Qos::AtLeastOnce, false)
        );
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
