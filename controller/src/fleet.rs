//! The fleet hub: one WebSocket session per connected node (`GET /api/v1/nodes/link`).
//!
//! A [`NodeSession`] task owns its socket: it answers clock pings, stores heartbeats and
//! play logs (acknowledging only what is durably stored), pushes the node's desired state
//! on connect and whenever the CMS generation moves and the node's version changed, and
//! relays commands. [`Hub`] keeps the sessions by node id (a newer connection replaces an
//! older one: a node can hold one session only), watches liveness (offline after
//! [`OFFLINE_AFTER_MS`] of silence, with history and an optional webhook), and implements
//! [`cms::FleetLink`] so staff actions (commands, revocation) reach live sessions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cms::Cms;
use cms::store::fleet::NodeIdentity;
use futures_util::{SinkExt, StreamExt};
use protocol::link::{
    self, Command, ControllerMsg, DEAD_AFTER_MS, KEEPALIVE_MS, MAX_FRAME_BYTES, NodeMsg,
    OFFLINE_AFTER_MS, PLAYLOG_BATCH, PROTOCOL_VERSION,
};
use tokio::sync::mpsc;
use warp::Filter;
use warp::filters::ws::{Message, WebSocket, Ws};
use warp::reply::Reply;

/// How often a session looks for a new desired state (the CMS generation is one atomic).
const DESIRED_CHECK: Duration = Duration::from_millis(300);
/// A heartbeat is a few hundred bytes; one this large is refused (it is stored each time).
const MAX_HEALTH_BYTES: usize = 64 * 1024;
/// How often liveness is checked.
const LIVENESS_CHECK: Duration = Duration::from_secs(2);

/// What the hub can tell a session.
enum Outgoing {
    Msg(ControllerMsg),
    Close(&'static str),
}

struct SessionHandle {
    conn: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
}

struct Liveness {
    name: String,
    last_heard: Instant,
    online: bool,
}

pub struct Hub {
    cms: Cms,
    sessions: Mutex<HashMap<i64, SessionHandle>>,
    liveness: Mutex<HashMap<i64, Liveness>>,
    next_conn: AtomicU64,
    webhook: Option<String>,
    http: reqwest::Client,
}

/// Current controller time, ns since the Unix epoch: the fleet's reference clock.
fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

impl Hub {
    /// Starts the hub for `cms` (and registers it with the CMS). `webhook`: a URL that gets
    /// a JSON POST on every online/offline transition.
    pub fn start(cms: Cms, webhook: Option<String>) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            cms: cms.clone(),
            sessions: Mutex::default(),
            liveness: Mutex::default(),
            next_conn: AtomicU64::new(1),
            webhook,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        });
        cms.set_fleet(hub.clone());
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LIVENESS_CHECK);
            loop {
                tick.tick().await;
                let Some(hub) = weak.upgrade() else { break };
                hub.check_liveness().await;
            }
        });
        hub
    }

    /// The node link route; requests that are not WebSocket upgrades fall through (to the
    /// CMS, which answers them with a clear error).
    pub fn filter(
        self: &Arc<Self>,
    ) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + use<>
    {
        let hub = self.clone();
        warp::path!("api" / "v1" / "nodes" / "link")
            .and(warp::get())
            .and(warp::header::optional::<String>("authorization"))
            .and(warp::ws())
            .then(move |auth: Option<String>, ws: Ws| {
                let hub = hub.clone();
                async move { hub.upgrade(auth, ws).await }
            })
    }

    async fn upgrade(self: Arc<Self>, auth: Option<String>, ws: Ws) -> warp::reply::Response {
        let token = auth
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        let node = match self.cms.authenticate_node(token).await {
            Ok(node) => node,
            Err(e) => {
                tracing::warn!("node link refused: {e}");
                return cms::http::reply::error(&e, cms::i18n::Lang::En);
            }
        };
        ws.max_message_size(MAX_FRAME_BYTES)
            .max_frame_size(MAX_FRAME_BYTES)
            .on_upgrade(move |socket| async move { self.run_session(node, socket).await })
            .into_response()
    }

    async fn run_session(self: Arc<Self>, node: NodeIdentity, socket: WebSocket) {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let old = self.lock_sessions().insert(
            node.id,
            SessionHandle {
                conn,
                tx: tx.clone(),
            },
        );
        if let Some(old) = old {
            let _ = old
                .tx
                .send(Outgoing::Close("replaced by a newer connection"));
        }
        let span = tracing::info_span!("node", id = node.id, conn);
        let _enter = span.enter();
        tracing::info!(name = %node.name, "node connected");
        let session = NodeSession {
            tx,
            hub: self.clone(),
            node: node.clone(),
            sent_version: None,
            seen_generation: None,
        };
        let reason = session.run(socket, rx).await;
        tracing::info!(%reason, "node link closed");
        let mut sessions = self.lock_sessions();
        if sessions.get(&node.id).is_some_and(|s| s.conn == conn) {
            sessions.remove(&node.id);
        }
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<i64, SessionHandle>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_liveness(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Liveness>> {
        self.liveness.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node was heard from: online again if it was not.
    async fn heard(&self, node: &NodeIdentity) {
        let came_online = {
            let mut map = self.lock_liveness();
            let entry = map.entry(node.id).or_insert_with(|| Liveness {
                name: node.name.clone(),
                last_heard: Instant::now(),
                online: false,
            });
            entry.last_heard = Instant::now();
            !std::mem::replace(&mut entry.online, true)
        };
        if came_online {
            self.transition(node.id, &node.name, "online").await;
        }
    }

    async fn check_liveness(&self) {
        let silent: Vec<(i64, String)> = {
            let mut map = self.lock_liveness();
            map.iter_mut()
                .filter(|(_, l)| {
                    l.online && l.last_heard.elapsed() > Duration::from_millis(OFFLINE_AFTER_MS)
                })
                .map(|(id, l)| {
                    l.online = false;
                    (*id, l.name.clone())
                })
                .collect()
        };
        for (id, name) in silent {
            self.transition(id, &name, "offline").await;
        }
    }

    async fn transition(&self, id: i64, name: &str, event: &'static str) {
        tracing::info!(node = id, %name, event, "node {event}");
        if let Err(e) = self.cms.node_event(id, event, String::new()).await {
            tracing::warn!(node = id, "cannot record {event}: {e}");
        }
        let Some(url) = self.webhook.clone() else {
            return;
        };
        let body = serde_json::json!({
            "event": event,
            "node_id": id,
            "name": name,
            "at": chrono::Utc::now().to_rfc3339(),
        });
        let http = self.http.clone();
        // Never hold up the hub for a slow receiver.
        tokio::spawn(async move {
            match http.post(&url).json(&body).send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(status = r.status().as_u16(), "webhook refused"),
                Err(e) => tracing::warn!("webhook failed: {e}"),
            }
        });
    }

    fn send(&self, node_id: i64, out: Outgoing) -> bool {
        self.lock_sessions()
            .get(&node_id)
            .is_some_and(|s| s.tx.send(out).is_ok())
    }
}

impl cms::FleetLink for Hub {
    fn command(&self, node_id: i64, id: u64, command: Command) -> bool {
        self.send(
            node_id,
            Outgoing::Msg(ControllerMsg::Command { id, command }),
        )
    }

    fn disconnect(&self, node_id: i64) {
        self.send(node_id, Outgoing::Close("revoked"));
    }
}

/// One node's live session.
struct NodeSession {
    /// This session's own queue (replies made by background tasks go through it).
    tx: mpsc::UnboundedSender<Outgoing>,
    hub: Arc<Hub>,
    node: NodeIdentity,
    /// The desired-state version last sent, and the CMS generation it was computed at.
    sent_version: Option<String>,
    seen_generation: Option<u64>,
}

impl NodeSession {
    /// Runs until the link ends; returns why.
    async fn run(mut self, socket: WebSocket, mut rx: mpsc::UnboundedReceiver<Outgoing>) -> String {
        let (mut sink, mut stream) = socket.split();
        let mut desired_tick = tokio::time::interval(DESIRED_CHECK);
        let mut keepalive = tokio::time::interval(Duration::from_millis(KEEPALIVE_MS));
        let mut last_rx = Instant::now();
        let mut greeted = false;
        loop {
            let out: Vec<ControllerMsg> = tokio::select! {
                frame = stream.next() => {
                    let t1 = now_ns();
                    last_rx = Instant::now();
                    let msg = match frame {
                        None => return "closed by the node".into(),
                        Some(Err(e)) => return format!("read error: {e}"),
                        Some(Ok(m)) => m,
                    };
                    if msg.is_close() {
                        return "closed by the node".into();
                    }
                    if msg.is_ping() || msg.is_pong() {
                        continue;
                    }
                    let Ok(text) = msg.to_str() else {
                        let _ = sink.send(Message::close_with(1003u16, "text frames only")).await;
                        return "binary frame".into();
                    };
                    let parsed = match NodeMsg::decode(text) {
                        Ok(m) => m,
                        Err(e) => {
                            let _ = sink.send(Message::close_with(1008u16, "malformed message")).await;
                            return format!("refused: {e}");
                        }
                    };
                    match self.handle(parsed, t1, &mut greeted).await {
                        Ok(replies) => replies,
                        Err(reason) => {
                            let _ = sink.send(Message::close_with(1008u16, reason.clone())).await;
                            return reason;
                        }
                    }
                }
                out = rx.recv() => match out {
                    Some(Outgoing::Msg(m)) => vec![m],
                    Some(Outgoing::Close(reason)) => {
                        let _ = sink.send(Message::close_with(1000u16, reason)).await;
                        return reason.into();
                    }
                    None => return "hub gone".into(),
                },
                _ = desired_tick.tick() => {
                    if last_rx.elapsed() > Duration::from_millis(DEAD_AFTER_MS) {
                        return "no traffic: link dead".into();
                    }
                    match greeted {
                        true => self.desired_if_changed().await.into_iter().collect(),
                        false => Vec::new(),
                    }
                }
                _ = keepalive.tick() => {
                    if sink.send(Message::ping(Vec::<u8>::new())).await.is_err() {
                        return "write failed".into();
                    }
                    continue;
                }
            };
            for m in out {
                if let Err(e) = sink.send(Message::text(link::encode(&m))).await {
                    return format!("write failed: {e}");
                }
            }
        }
    }

    /// Answers one message; `Err` closes the link with that reason.
    async fn handle(
        &mut self,
        msg: NodeMsg,
        t1: i64,
        greeted: &mut bool,
    ) -> Result<Vec<ControllerMsg>, String> {
        let cms = &self.hub.cms;
        let id = self.node.id;
        if !*greeted && !matches!(msg, NodeMsg::Hello { .. }) {
            return Err("hello first".into());
        }
        self.hub.heard(&self.node).await;
        let stored = |r: cms::Result<()>| {
            if let Err(e) = r {
                tracing::warn!("store failed: {e}");
            }
        };
        // Database writes run beside the session, so a slow disk never holds up the next
        // frame (a clock ping queued behind a write would be skewed).
        let background =
            |fut: std::pin::Pin<Box<dyn std::future::Future<Output = cms::Result<()>> + Send>>| {
                tokio::spawn(async move {
                    if let Err(e) = fut.await {
                        tracing::warn!("store failed: {e}");
                    }
                });
            };
        match msg {
            NodeMsg::Hello {
                protocol,
                agent,
                applied,
            } => {
                if protocol != PROTOCOL_VERSION {
                    return Err(format!(
                        "protocol {protocol} not spoken here ({PROTOCOL_VERSION})"
                    ));
                }
                tracing::info!(%agent, ?applied, "hello");
                *greeted = true;
                stored(cms.node_seen(id, None).await);
                if let Some(v) = applied {
                    stored(cms.node_applied(id, v).await);
                }
                let mut out = vec![ControllerMsg::Welcome {
                    protocol: PROTOCOL_VERSION,
                    node_id: id,
                    name: self.node.name.clone(),
                }];
                out.extend(self.desired_if_changed().await);
                Ok(out)
            }
            NodeMsg::Ping { t0 } => Ok(vec![ControllerMsg::Pong {
                t0,
                t1,
                t2: now_ns(),
            }]),
            NodeMsg::Applied { version } => {
                tracing::debug!(%version, "applied");
                let cms = cms.clone();
                background(Box::pin(async move { cms.node_applied(id, version).await }));
                Ok(Vec::new())
            }
            NodeMsg::Heartbeat(health) => {
                let json = serde_json::to_string(&health).unwrap_or_default();
                if json.len() > MAX_HEALTH_BYTES {
                    return Err(format!("heartbeat of {} bytes", json.len()));
                }
                let cms = cms.clone();
                background(Box::pin(async move { cms.node_seen(id, Some(json)).await }));
                Ok(Vec::new())
            }
            NodeMsg::PlayLogs { entries } => {
                if entries.len() > PLAYLOG_BATCH {
                    return Err(format!(
                        "more than {PLAYLOG_BATCH} play logs in one message"
                    ));
                }
                let (cms, tx) = (cms.clone(), self.tx.clone());
                tokio::spawn(async move {
                    match cms.store_playlogs(id, entries).await {
                        Ok(ids) => {
                            let _ = tx.send(Outgoing::Msg(ControllerMsg::PlayLogsAck { ids }));
                        }
                        Err(cms::CmsError::Invalid(t)) => {
                            tracing::warn!("play logs refused: {}", t.en);
                            let _ = tx.send(Outgoing::Close("malformed play log"));
                        }
                        // Not acknowledged: the node sends them again later.
                        Err(e) => tracing::warn!("cannot store play logs: {e}"),
                    }
                });
                Ok(Vec::new())
            }
            NodeMsg::CommandDone {
                id: cmd,
                ok,
                message,
            } => {
                let detail = format!("{cmd} {} {message}", if ok { "ok" } else { "failed" });
                let cms = cms.clone();
                background(Box::pin(async move {
                    cms.node_event(id, "command_done", detail).await
                }));
                Ok(Vec::new())
            }
            NodeMsg::Unknown => {
                tracing::debug!("unknown message kind ignored");
                Ok(Vec::new())
            }
        }
    }

    /// The node's desired state when it differs from what was last sent.
    async fn desired_if_changed(&mut self) -> Option<ControllerMsg> {
        let generation = self.hub.cms.generation();
        if self.seen_generation == Some(generation) {
            return None;
        }
        let state = match self.hub.cms.node_desired_state(self.node.id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("desired state: {e}");
                return None;
            }
        };
        self.seen_generation = Some(generation);
        if self.sent_version.as_deref() == Some(state.version.as_str()) {
            return None;
        }
        self.sent_version = Some(state.version.clone());
        Some(ControllerMsg::Desired(Box::new(state)))
    }
}
