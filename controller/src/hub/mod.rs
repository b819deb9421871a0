//! The fleet hub: every node's live link, and what the controller knows of the fleet
//! from them.
//!
//! - [`Sessions`]: the registry of live sessions by node id (a node holds one session: a
//!   second connection with the same token is refused while the first is heard from, and
//!   replaces it once that one has gone silent). It is what the CMS reaches nodes through
//!   ([`cms::FleetLink`]: commands, revocation), handed to the CMS when it opens — so the
//!   CMS never holds the hub and there is no reference cycle.
//! - [`Hub`]: runs sessions ([`session`], written against [`protocol::transport::Transport`]
//!   so tests drive it without sockets) and watches liveness on an injected
//!   [`protocol::time::Clock`]: a node silent for the CMS's `node_offline_after_ms` goes
//!   offline, with history and an optional webhook.
//! - [`websocket`]: the WebSocket carrier — the warp route `GET /api/v1/nodes/link` and the
//!   transport over warp's socket. [`broker`]: the MQTT carrier, beside it.

pub mod broker;
pub mod session;
pub mod websocket;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cms::Cms;
use cms::store::node_link::NodeIdentity;
use protocol::link::{Command, ControllerMsg, DEAD_AFTER_MS};
use protocol::time::Clock;
use protocol::transport::Transport;
use tokio::sync::mpsc;
use tracing::Instrument;

/// The close reason of a session whose node was revoked.
pub const REVOKED: &str = "revoked";

/// The close reason a second connection for a live node gets.
pub const DUPLICATE_REFUSED: &str = "this node is already linked from elsewhere";

/// How often liveness is checked.
const LIVENESS_CHECK: Duration = Duration::from_secs(2);

/// What the hub can tell a session.
pub(crate) enum Outgoing {
    Msg(ControllerMsg),
    /// Live audio (`protocol::live`), shared by every node of the session.
    Live(Arc<Vec<u8>>),
    Close(&'static str),
}

struct SessionHandle {
    conn: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
    /// When the session last received anything (ns on the hub's clock), pongs included.
    last_rx: Arc<std::sync::atomic::AtomicI64>,
    /// Linked through the broker: live audio reaches it by its village's topic.
    via_broker: bool,
}

/// A session heard from within this long is alive: a second connection with its token is
/// refused. Two keepalive periods: a live node is heard at least every one.
pub const ALIVE_WITHIN_MS: u64 = 2 * protocol::link::KEEPALIVE_MS;

/// Why a connection was not registered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InUse;

/// Live sessions by node id.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<i64, SessionHandle>>,
    next_conn: AtomicU64,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, SessionHandle>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new session for `node_id`. A session already there that was heard
    /// from within [`ALIVE_WITHIN_MS`] keeps the node: the newcomer holds a copy of its
    /// token (a stolen one, or a cloned board) and is refused. A silent one (a link that
    /// died without a goodbye) is told to close and replaced.
    fn open(
        &self,
        node_id: i64,
        tx: mpsc::UnboundedSender<Outgoing>,
        last_rx: Arc<std::sync::atomic::AtomicI64>,
        now_ns: i64,
        via_broker: bool,
    ) -> Result<u64, InUse> {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
        let mut map = self.lock();
        if let Some(old) = map.get(&node_id) {
            let heard = old.last_rx.load(Ordering::Relaxed);
            let alive = !old.tx.is_closed()
                && now_ns.saturating_sub(heard) < ALIVE_WITHIN_MS as i64 * 1_000_000;
            if alive {
                return Err(InUse);
            }
        }
        let handle = SessionHandle {
            conn,
            tx,
            last_rx,
            via_broker,
        };
        let old = map.insert(node_id, handle);
        drop(map);
        if let Some(old) = old {
            let _ = old
                .tx
                .send(Outgoing::Close("replaced by a newer connection"));
        }
        Ok(conn)
    }

    /// Forgets the session, unless a newer one has replaced it.
    fn close(&self, node_id: i64, conn: u64) {
        let mut map = self.lock();
        if map.get(&node_id).is_some_and(|s| s.conn == conn) {
            map.remove(&node_id);
        }
    }

    fn send(&self, node_id: i64, out: Outgoing) -> bool {
        self.lock()
            .get(&node_id)
            .is_some_and(|s| s.tx.send(out).is_ok())
    }

    /// Sends live audio to those of `nodes` that are connected by WebSocket (the broker
    /// carries it to the others once per village); returns how many.
    pub fn send_live(&self, nodes: &[i64], packet: &Arc<Vec<u8>>) -> usize {
        let map = self.lock();
        nodes
            .iter()
            .filter_map(|id| map.get(id))
            .filter(|s| !s.via_broker && s.tx.send(Outgoing::Live(packet.clone())).is_ok())
            .count()
    }

    /// Whether the node has a live session now.
    pub fn is_connected(&self, node_id: i64) -> bool {
        self.lock().contains_key(&node_id)
    }
}

impl cms::FleetLink for Sessions {
    fn command(&self, node_id: i64, id: u64, command: Command) -> bool {
        self.send(
            node_id,
            Outgoing::Msg(ControllerMsg::Command { id, command }),
        )
    }

    fn disconnect(&self, node_id: i64) {
        self.send(node_id, Outgoing::Close(REVOKED));
    }

    fn sessions(&self) -> usize {
        self.lock().len()
    }
}

/// The hub's settings; `Default` is where the defaults live.
#[derive(Clone)]
pub struct HubConfig {
    /// Gets a JSON POST on every online/offline transition.
    pub webhook: Option<String>,
    /// A session with nothing received for this long is dropped (ms).
    pub dead_after_ms: u64,
    pub clock: Arc<dyn Clock>,
    /// Live ingest (source password, buffer).
    pub live: crate::live::LiveConfig,
    /// Alert rounds and their email relay.
    pub alerts: crate::alerts::AlertConfig,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            webhook: None,
            dead_after_ms: DEAD_AFTER_MS,
            clock: protocol::time::host(),
            live: crate::live::LiveConfig::default(),
            alerts: crate::alerts::AlertConfig::default(),
        }
    }
}

/// Why the hub could not start.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("webhook client: {0}")]
    Webhook(String),
}

struct Liveness {
    name: String,
    last_heard_ns: i64,
    online: bool,
}

pub struct Hub {
    cms: Cms,
    sessions: Arc<Sessions>,
    liveness: Mutex<HashMap<i64, Liveness>>,
    config: HubConfig,
    /// Set when a webhook is configured (a client with a timeout, or no hub at all).
    http: Option<reqwest::Client>,
    /// The MQTT carrier, when the controller serves nodes through a broker.
    broker: std::sync::OnceLock<Arc<broker::Gateway>>,
}

impl Hub {
    /// A hub for `cms`, which must have been opened with `sessions` as its fleet link.
    pub fn new(cms: Cms, sessions: Arc<Sessions>, config: HubConfig) -> Result<Arc<Hub>, HubError> {
        let http = match config.webhook {
            None => None,
            Some(_) => Some(
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| HubError::Webhook(e.to_string()))?,
            ),
        };
        Ok(Arc::new(Hub {
            cms,
            sessions,
            liveness: Mutex::default(),
            config,
            http,
            broker: std::sync::OnceLock::new(),
        }))
    }

    fn set_broker(&self, gateway: Arc<broker::Gateway>) {
        let _ = self.broker.set(gateway);
    }

    /// The MQTT carrier, if the controller serves nodes through a broker.
    pub fn broker(&self) -> Option<&Arc<broker::Gateway>> {
        self.broker.get()
    }

    /// Checks liveness every [`LIVENESS_CHECK`] for as long as the hub lives.
    pub fn spawn_liveness(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LIVENESS_CHECK);
            loop {
                tick.tick().await;
                let Some(hub) = weak.upgrade() else { break };
                hub.check_liveness().await;
            }
        });
    }

    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    pub fn alert_config(&self) -> &crate::alerts::AlertConfig {
        &self.config.alerts
    }

    pub fn cms(&self) -> &Cms {
        &self.cms
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        self.config.clock.as_ref()
    }

    pub(crate) fn clock_arc(&self) -> Arc<dyn Clock> {
        self.config.clock.clone()
    }

    pub(crate) fn live_config(&self) -> &crate::live::LiveConfig {
        &self.config.live
    }

    pub(crate) fn dead_after_ms(&self) -> u64 {
        self.config.dead_after_ms
    }

    /// Runs one node's session over `transport` until it ends, inside a span naming the
    /// node and the connection.
    pub async fn run_session<T: Transport>(self: Arc<Self>, node: NodeIdentity, transport: T) {
        self.run_session_via(node, transport, false).await
    }

    /// [`Hub::run_session`], saying whether the transport is the broker's.
    pub async fn run_session_via<T: Transport>(
        self: Arc<Self>,
        node: NodeIdentity,
        transport: T,
        via_broker: bool,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let now = self.clock().now_ns();
        let last_rx = Arc::new(std::sync::atomic::AtomicI64::new(now));
        let opened = self
            .sessions
            .open(node.id, tx.clone(), last_rx.clone(), now, via_broker);
        let conn = match opened {
            Ok(conn) => conn,
            Err(InUse) => return self.refuse_duplicate(node, transport).await,
        };
        let span = tracing::info_span!("node", id = node.id, conn);
        let node_id = node.id;
        let hub = self.clone();
        async move {
            tracing::info!(name = %node.name, "node connected");
            let reason = session::NodeSession::new(hub, node, tx, last_rx)
                .run(transport, rx)
                .await;
            tracing::info!(%reason, "node link closed");
        }
        .instrument(span)
        .await;
        self.sessions.close(node_id, conn);
    }

    /// A second connection for a node whose session is alive: refused, logged, and kept
    /// in the node's history where its technician sees it.
    async fn refuse_duplicate<T: Transport>(&self, node: NodeIdentity, mut transport: T) {
        tracing::warn!(
            node = node.id,
            name = %node.name,
            "a second connection with this node's token refused: its session is alive (a stolen token or a cloned board?)"
        );
        if let Err(e) = self
            .cms
            .node_event(node.id, "duplicate_link", String::new())
            .await
        {
            tracing::warn!(node = node.id, "cannot record duplicate_link: {e}");
        }
        transport
            .close(protocol::transport::CloseCode::Policy, DUPLICATE_REFUSED)
            .await;
    }

    fn lock_liveness(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Liveness>> {
        self.liveness.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node was heard from: online again if it was not.
    pub(crate) async fn heard(&self, node: &NodeIdentity) {
        let now = self.clock().now_ns();
        let came_online = {
            let mut map = self.lock_liveness();
            let entry = map.entry(node.id).or_insert_with(|| Liveness {
                name: node.name.clone(),
                last_heard_ns: now,
                online: false,
            });
            entry.last_heard_ns = now;
            !std::mem::replace(&mut entry.online, true)
        };
        if came_online {
            self.transition(node.id, &node.name, "online").await;
        }
    }

    /// The broker says the node is gone (its last will, or its goodbye): offline now.
    pub(crate) async fn gone(&self, node_id: i64) {
        self.cms.node_gone(node_id);
        let name = {
            let mut map = self.lock_liveness();
            match map.get_mut(&node_id) {
                Some(l) if l.online => {
                    l.online = false;
                    l.name.clone()
                }
                _ => return,
            }
        };
        self.transition(node_id, &name, "offline").await;
    }

    /// Marks nodes silent for longer than the threshold offline; returns their ids.
    pub async fn check_liveness(&self) -> Vec<i64> {
        let clock = self.clock();
        let limit = self.cms.config().node_offline_after_ms;
        let silent: Vec<(i64, String)> = {
            let mut map = self.lock_liveness();
            map.iter_mut()
                .filter(|(_, l)| l.online && clock.ms_since(l.last_heard_ns) > limit)
                .map(|(id, l)| {
                    l.online = false;
                    (*id, l.name.clone())
                })
                .collect()
        };
        for (id, name) in &silent {
            self.transition(*id, name, "offline").await;
        }
        silent.into_iter().map(|(id, _)| id).collect()
    }

    async fn transition(&self, id: i64, name: &str, event: &'static str) {
        tracing::info!(node = id, %name, event, "node {event}");
        if let Err(e) = self.cms.node_event(id, event, String::new()).await {
            tracing::warn!(node = id, "cannot record {event}: {e}");
        }
        let (Some(url), Some(http)) = (self.config.webhook.clone(), self.http.clone()) else {
            return;
        };
        let at = chrono::DateTime::from_timestamp_nanos(self.clock().now_ns());
        let body = serde_json::json!({
            "event": event,
            "node_id": id,
            "name": name,
            "at": at.to_rfc3339(),
        });
        // Never hold up the hub for a slow receiver.
        tokio::spawn(async move {
            match http.post(&url).json(&body).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(status = r.status().as_u16(), "webhook refused"),
                Err(e) => tracing::warn!("webhook failed: {e}"),
            }
        });
    }
}

#[cfg(test)]
mod tests;
