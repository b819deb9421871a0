//! The node's side of the link: dial the controller's WebSocket (nodes sit behind NAT),
//! say hello, then keep the clock synced, report heartbeats, upload play logs until
//! acknowledged, apply desired states and run commands. A dead link (nothing heard for
//! [`DEAD_AFTER_MS`]) is dropped and dialled again with jittered exponential backoff up
//! to a minute. None of this is needed to play: the scheduler runs from disk.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use protocol::clock::SyncSample;
use protocol::link::{
    self, ControllerMsg, DEAD_AFTER_MS, HEARTBEAT_MS, KEEPALIVE_MS, MAX_FRAME_BYTES, NodeMsg,
    PLAYLOG_BATCH, PROTOCOL_VERSION,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::Agent;

const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Clock exchanges right after connecting, then one a second.
const FAST_SYNCS: u32 = 8;

/// `http://host` -> `ws://host/api/v1/nodes/link` (and https -> wss).
pub fn link_url(server: &str) -> String {
    let base = server.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    format!("{base}/api/v1/nodes/link")
}

/// Keeps the link up for as long as the agent runs.
pub async fn run(agent: Arc<Agent>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let began = Instant::now();
        match session(&agent).await {
            Ok(()) => tracing::info!("link closed"),
            Err(e) => {
                tracing::warn!("link: {e}");
                agent.note_error(format!("link: {e}"));
            }
        }
        // A session that lasted resets the backoff; quick failures grow it.
        if began.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_secs(1);
        }
        let jittered = backoff.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        tokio::time::sleep(jittered).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(agent: &Agent) -> Result<Ws, String> {
    let url = link_url(&agent.server);
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("{url}: {e}"))?;
    let auth = format!("Bearer {}", agent.token)
        .parse()
        .map_err(|_| "the node token is not a valid header".to_string())?;
    req.headers_mut().insert("authorization", auth);
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let connecting = tokio_tungstenite::connect_async_with_config(req, Some(config), true);
    match tokio::time::timeout(Duration::from_secs(15), connecting).await {
        Err(_) => Err(format!("{url}: no answer in 15 s")),
        Ok(Err(tungstenite::Error::Http(res))) => {
            let status = res.status().as_u16();
            let detail = match status {
                401 => " (the node token was refused: revoked? enrol again)",
                _ => "",
            };
            Err(format!("{url}: HTTP {status}{detail}"))
        }
        Ok(Err(e)) => Err(format!("{url}: {}", super::chain(&e))),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

fn local_ip(ws: &Ws) -> Option<String> {
    match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => {
            tcp.local_addr().ok().map(|a| a.ip().to_string())
        }
        _ => None,
    }
}

async fn session(agent: &Arc<Agent>) -> Result<(), String> {
    let ws = connect(agent).await?;
    if let Some(ip) = local_ip(&ws) {
        agent.set_ip(ip);
    }
    tracing::info!(server = %agent.server, "link up");
    let (mut tx, mut rx) = ws.split();
    let send = |m: &NodeMsg| Message::text(link::encode(m));
    let hello = NodeMsg::Hello {
        protocol: PROTOCOL_VERSION,
        agent: env!("CARGO_PKG_VERSION").into(),
        applied: agent.applied_version(),
    };
    tx.send(send(&hello)).await.map_err(|e| e.to_string())?;
    let mut syncs = 0u32;
    let mut next_sync = tokio::time::Instant::now();
    let mut heartbeat = tokio::time::interval(Duration::from_millis(HEARTBEAT_MS));
    let mut keepalive = tokio::time::interval(Duration::from_millis(KEEPALIVE_MS));
    let mut last_rx = Instant::now();
    let mut inflight: HashSet<String> = HashSet::new();
    let mut outbox = agent.outbox_rx.lock().await;
    loop {
        // Checked at least every second (the clock exchanges wake the loop): a dead link
        // is noticed within DEAD_AFTER_MS and a second.
        if last_rx.elapsed() > Duration::from_millis(DEAD_AFTER_MS) {
            return Err("no traffic from the controller: link dead".into());
        }
        // Upload pending play logs, one batch in flight at a time.
        if inflight.is_empty() {
            let batch: Vec<_> = agent.pending_logs(PLAYLOG_BATCH);
            if !batch.is_empty() {
                inflight = batch.iter().map(|e| e.id.clone()).collect();
                let msg = NodeMsg::PlayLogs { entries: batch };
                tx.send(send(&msg)).await.map_err(|e| e.to_string())?;
            }
        }
        let reply: Option<NodeMsg> = tokio::select! {
            frame = rx.next() => {
                let t3 = agent.clock.local_ns();
                last_rx = Instant::now();
                let msg = match frame {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(m)) => m,
                };
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Close(_) => return Ok(()),
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                    Message::Binary(_) => return Err("binary frame from the controller".into()),
                };
                let msg = match ControllerMsg::decode(&text) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = tx.send(Message::Close(None)).await;
                        return Err(format!("controller sent a bad message: {e}"));
                    }
                };
                match msg {
                    ControllerMsg::Pong { t0, t1, t2 } => {
                        agent.clock.add_sample(SyncSample { t0, t1, t2, t3 });
                        // Kept on disk so a restart without a link stays on fleet time.
                        if syncs == FAST_SYNCS || syncs.is_multiple_of(60) {
                            let a = agent.clone();
                            tokio::task::spawn_blocking(move || a.save_clock());
                        }
                        None
                    }
                    ControllerMsg::PlayLogsAck { ids } => {
                        agent.ack_logs(&ids);
                        for id in &ids {
                            inflight.remove(id);
                        }
                        None
                    }
                    other => {
                        agent.handle(other);
                        None
                    }
                }
            }
            _ = tokio::time::sleep_until(next_sync) => {
                syncs += 1;
                let every = if syncs < FAST_SYNCS { 100 } else { 1_000 };
                next_sync = tokio::time::Instant::now() + Duration::from_millis(every);
                Some(NodeMsg::Ping { t0: agent.clock.local_ns() })
            }
            _ = heartbeat.tick() => Some(NodeMsg::Heartbeat(Box::new(agent.health()))),
            _ = agent.logs_changed.notified() => None,
            out = outbox.recv() => out,
            _ = keepalive.tick() => {
                tx.send(Message::Ping(Vec::new().into())).await.map_err(|e| e.to_string())?;
                None
            }
        };
        if let Some(m) = reply {
            tx.send(send(&m)).await.map_err(|e| e.to_string())?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::link_url;

    #[test]
    fn urls() {
        assert_eq!(link_url("http://h:8080/"), "ws://h:8080/api/v1/nodes/link");
        assert_eq!(
            link_url("https://loa.example"),
            "wss://loa.example/api/v1/nodes/link"
        );
    }
}
