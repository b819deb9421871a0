//! One node's session, whatever carries it: hello, clock exchanges, heartbeats, play
//! logs (acknowledged only once durably stored), desired state pushed on connect and
//! whenever the CMS generation moves and the node's version changed, and the hub's
//! commands. Written against [`Transport`] so tests run it over an in-memory pair.

use std::sync::Arc;
use std::time::Duration;

use cms::store::node_link::NodeIdentity;
use protocol::link::{
    self, ControllerMsg, KEEPALIVE_MS, NodeMsg, PLAYLOG_BATCH, PROTOCOL_VERSION, PlayLogEntry,
};
use protocol::schedule::Priority;
use protocol::transport::{CloseCode, Frame, Transport, TransportError};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::{Hub, Outgoing};

/// How often a session checks its link and looks for a new desired state (besides being
/// woken by every change of the CMS generation).
const DESIRED_CHECK: Duration = Duration::from_millis(300);
/// A heartbeat is a few hundred bytes; one this large is refused (it is stored each time).
const MAX_HEALTH_BYTES: usize = 64 * 1024;

/// One node's live session.
pub(super) struct NodeSession {
    /// This session's own queue (replies made by background tasks go through it).
    tx: mpsc::UnboundedSender<Outgoing>,
    hub: Arc<Hub>,
    node: NodeIdentity,
    /// The desired-state version last sent, and the CMS generation it was computed at.
    sent_version: Option<String>,
    seen_generation: Option<u64>,
    /// The node said hello (nothing else is taken before).
    greeted: bool,
    /// When anything was last received (ns, hub clock), for the registry to tell a live
    /// session from a dead one.
    last_rx: Arc<std::sync::atomic::AtomicI64>,
    /// Held while what the node was last sent is being recorded.
    recording: Arc<tokio::sync::Mutex<()>>,
}

impl NodeSession {
    pub(super) fn new(
        hub: Arc<Hub>,
        node: NodeIdentity,
        tx: mpsc::UnboundedSender<Outgoing>,
        last_rx: Arc<std::sync::atomic::AtomicI64>,
    ) -> Self {
        NodeSession {
            tx,
            hub,
            node,
            sent_version: None,
            seen_generation: None,
            greeted: false,
            last_rx,
            recording: Arc::default(),
        }
    }

    /// Runs until the link ends; returns why.
    pub(super) async fn run<T: Transport>(
        mut self,
        mut transport: T,
        mut rx: mpsc::UnboundedReceiver<Outgoing>,
    ) -> String {
        let mut desired_tick = tokio::time::interval(DESIRED_CHECK);
        // A change is pushed at once (an emergency cannot wait for the next check).
        let mut generation = self.hub.cms().watch_generation();
        let mut keepalive = tokio::time::interval(Duration::from_millis(KEEPALIVE_MS));
        loop {
            let out: Vec<ControllerMsg> = tokio::select! {
                frame = transport.recv() => {
                    let t1 = self.hub.clock().now_ns();
                    self.last_rx.store(t1, std::sync::atomic::Ordering::Relaxed);
                    let text = match frame {
                        Ok(Some(Frame::Text(text))) => text,
                        Ok(Some(Frame::Binary(_))) => {
                            transport.close(CloseCode::Unsupported, "text frames only").await;
                            return "binary frame from the node".into();
                        }
                        Ok(None) => continue,
                        Err(TransportError::Closed(_)) => return "closed by the node".into(),
                        Err(TransportError::BadFrame(what)) => {
                            transport.close(CloseCode::Unsupported, "text frames only").await;
                            return what;
                        }
                        Err(e) => return format!("read error: {e}"),
                    };
                    match self.receive(&text, t1).await {
                        Ok(replies) => replies,
                        Err((code, reason)) => {
                            transport.close(code, &reason).await;
                            return reason;
                        }
                    }
                }
                out = rx.recv() => match out {
                    Some(Outgoing::Msg(m)) => vec![m],
                    Some(Outgoing::Live(packet)) => {
                        if let Err(e) = transport.send_binary(packet.to_vec()).await {
                            return format!("write failed: {e}");
                        }
                        continue;
                    }
                    Some(Outgoing::Close(reason)) => {
                        transport.close(CloseCode::Normal, reason).await;
                        return reason.into();
                    }
                    None => return "hub gone".into(),
                },
                _ = desired_tick.tick() => {
                    let last_rx = self.last_rx.load(std::sync::atomic::Ordering::Relaxed);
                    if self.hub.clock().ms_since(last_rx) > self.hub.dead_after_ms() {
                        return "no traffic: link dead".into();
                    }
                    self.desired_if_changed().await.into_iter().collect()
                }
                Ok(()) = generation.changed() => {
                    self.desired_if_changed().await.into_iter().collect()
                }
                _ = keepalive.tick() => {
                    if transport.keepalive().await.is_err() {
                        return "write failed".into();
                    }
                    continue;
                }
            };
            for m in out {
                if let Err(e) = transport.send(link::encode(&m)).await {
                    return format!("write failed: {e}");
                }
            }
        }
    }

    /// One text frame: decoded and answered; `Err` closes the link with that code/reason.
    pub(super) async fn receive(
        &mut self,
        text: &str,
        t1: i64,
    ) -> Result<Vec<ControllerMsg>, (CloseCode, String)> {
        let parsed = NodeMsg::decode(text)
            .map_err(|e| (CloseCode::Policy, format!("malformed message: {e}")))?;
        self.handle(parsed, t1)
            .await
            .map_err(|reason| (CloseCode::Policy, reason))
    }

    /// Answers one message; `Err` closes the link with that reason.
    async fn handle(&mut self, msg: NodeMsg, t1: i64) -> Result<Vec<ControllerMsg>, String> {
        if !self.greeted && !matches!(msg, NodeMsg::Hello { .. }) {
            return Err("hello first".into());
        }
        self.hub.heard(&self.node).await;
        let (cms, id) = (self.hub.cms().clone(), self.node.id);
        match msg {
            NodeMsg::Hello {
                protocol,
                agent,
                applied,
                ..
            } => self.hello(protocol, &agent, applied).await,
            NodeMsg::Ping { t0 } => Ok(vec![ControllerMsg::Pong {
                t0,
                t1,
                t2: self.hub.clock().now_ns(),
            }]),
            NodeMsg::Applied { version } => {
                tracing::debug!(%version, "applied");
                cms.node_applied_batched(id, version);
                Ok(Vec::new())
            }
            NodeMsg::Heartbeat(health) => {
                let json = serde_json::to_string(&health).unwrap_or_default();
                if json.len() > MAX_HEALTH_BYTES {
                    return Err(format!("heartbeat of {} bytes", json.len()));
                }
                cms.node_heard(id, Some(json));
                Ok(Vec::new())
            }
            NodeMsg::PlayLogs { entries } => self.play_logs(entries),
            NodeMsg::CommandDone {
                id: cmd,
                ok,
                message,
            } => {
                let detail = format!("{cmd} {} {message}", if ok { "ok" } else { "failed" });
                beside(async move { cms.node_event(id, "command_done", detail).await });
                Ok(Vec::new())
            }
            NodeMsg::PlayState {
                schedule_id,
                state,
                priority,
                message,
                ..
            } => {
                // In order (waiting, playing, ended follow each other closely); rare
                // enough not to hold up the clock exchanges.
                if priority == Priority::Emergency {
                    cms.emergency_reported(id, schedule_id, state, message);
                }
                Ok(Vec::new())
            }
            NodeMsg::Unknown => {
                tracing::debug!("unknown message kind ignored");
                Ok(Vec::new())
            }
        }
    }

    async fn hello(
        &mut self,
        protocol: u32,
        agent: &str,
        applied: Option<String>,
    ) -> Result<Vec<ControllerMsg>, String> {
        if protocol != PROTOCOL_VERSION {
            return Err(format!(
                "protocol {protocol} not spoken here ({PROTOCOL_VERSION})"
            ));
        }
        tracing::info!(%agent, ?applied, "hello");
        self.greeted = true;
        let (cms, id) = (self.hub.cms(), self.node.id);
        logged(cms.node_seen(id, None).await);
        if let Some(v) = applied {
            logged(cms.node_applied(id, v).await);
        }
        let mut out = vec![ControllerMsg::Welcome {
            protocol: PROTOCOL_VERSION,
            node_id: id,
            name: self.node.name.clone(),
            village_id: Some(self.node.village_id),
        }];
        out.extend(self.desired_if_changed().await);
        Ok(out)
    }

    /// Stores a batch beside the session; the ack goes out once it is committed.
    fn play_logs(&self, entries: Vec<PlayLogEntry>) -> Result<Vec<ControllerMsg>, String> {
        if entries.len() > PLAYLOG_BATCH {
            return Err(format!(
                "more than {PLAYLOG_BATCH} play logs in one message"
            ));
        }
        let (cms, tx, id) = (self.hub.cms().clone(), self.tx.clone(), self.node.id);
        let recording = self.recording.clone();
        let store = async move {
            // Checked against what the node was sent: that record first.
            drop(recording.lock().await);
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
        };
        tokio::spawn(cms::store::as_fleet(store).in_current_span());
        Ok(Vec::new())
    }

    /// The node's desired state when it differs from what was last sent (once greeted).
    async fn desired_if_changed(&mut self) -> Option<ControllerMsg> {
        if !self.greeted {
            return None;
        }
        let generation = self.hub.cms().generation();
        if self.seen_generation == Some(generation) {
            return None;
        }
        let state = match self
            .hub
            .cms()
            .node_desired_state_in(self.node.id, self.node.commune_id)
            .await
        {
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
        // What it is sent is what its play logs may name. Recorded beside the session
        // (10,000 nodes waiting in turn for the one SQLite writer made an emergency take
        // seconds to reach the last), under a lock taken before the state leaves: any
        // play log that follows waits for the record.
        // Written in a batch with other nodes' records; the guard goes with it.
        let guard = self.recording.clone().lock_owned().await;
        self.hub
            .cms()
            .record_sent_batched(self.node.id, &state, Box::new(guard));
        Some(ControllerMsg::Desired(Box::new(state)))
    }
}

fn logged(r: cms::Result<()>) {
    if let Err(e) = r {
        tracing::warn!("store failed: {e}");
    }
}

/// A database write beside the session, so a slow disk never holds up the next frame (a
/// clock ping queued behind a write would be skewed).
fn beside(write: impl std::future::Future<Output = cms::Result<()>> + Send + 'static) {
    tokio::spawn(cms::store::as_fleet(async move { logged(write.await) }).in_current_span());
}
