//! The node's side of the link: dial the controller (nodes sit behind NAT), say hello,
//! then keep the clock synced, report heartbeats, upload play logs until acknowledged,
//! and hand desired states and commands to the owner task. A dead link (nothing heard
//! for `link_dead_after_ms`) is dropped and dialled again with jittered exponential
//! backoff up to a minute. None of this is needed to play: the scheduler runs from disk.
//!
//! [`session`] is written against [`Transport`]: the WebSocket carrier is in
//! [`super::websocket`], and tests run a session over an in-memory pair.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use protocol::clock::SyncSample;
use protocol::link::{
    self, ControllerMsg, HEARTBEAT_MS, KEEPALIVE_MS, NodeMsg, PLAYLOG_BATCH, PROTOCOL_VERSION,
};
use protocol::live::LivePacket;
use protocol::transport::{CloseCode, Frame, Transport, TransportError};
use tokio::sync::mpsc;

use super::clock::NodeClock;
use super::owner::{AgentCmd, AgentHandle, ToLink};

const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A session that lasted this long resets the backoff.
const LASTED: Duration = Duration::from_secs(30);
/// The disciplined clock is saved after the first few exchanges, then every this many
/// (ten minutes at one a second: the saved drift carries it forward in between).
const SAVE_CLOCK_FIRST: u32 = 8;
const SAVE_CLOCK_EVERY: u32 = 600;

/// What a session works with.
#[derive(Clone)]
pub struct LinkContext {
    pub agent: AgentHandle,
    pub clock: Arc<NodeClock>,
    pub dead_after_ms: u64,
    /// Where live audio goes (the playout takes it out when due).
    pub live: Arc<super::live::LiveFeed>,
    /// Sent in the hello when the transport does not carry the token itself (a broker).
    pub hello_token: Option<String>,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{0}")]
    Dial(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("controller sent a bad message: {0}")]
    BadMessage(String),
    #[error("no traffic from the controller: link dead")]
    Dead,
}

/// Keeps the link up for as long as the agent runs; `dial` opens one connection.
pub async fn run<T, F, Fut>(ctx: LinkContext, mut outbox: mpsc::UnboundedReceiver<ToLink>, dial: F)
where
    T: Transport,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(T, Option<String>), LinkError>>,
{
    let mut backoff = Duration::from_secs(1);
    loop {
        let began = tokio::time::Instant::now();
        let ended = match dial().await {
            Ok((transport, ip)) => {
                ctx.agent.send(AgentCmd::LinkUp { ip });
                tracing::info!("link up");
                session(&ctx, transport, &mut outbox).await
            }
            Err(e) => Err(e),
        };
        match ended {
            Ok(()) => tracing::info!("link closed"),
            Err(e) => ctx.agent.send(AgentCmd::Error(format!("link: {e}"))),
        }
        if began.elapsed() > LASTED {
            backoff = Duration::from_secs(1);
        }
        let jittered = backoff.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        tokio::time::sleep(jittered).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection, until it ends: `Ok` when the controller closed it.
pub async fn session<T: Transport>(
    ctx: &LinkContext,
    mut transport: T,
    outbox: &mut mpsc::UnboundedReceiver<ToLink>,
) -> Result<(), LinkError> {
    let hello = NodeMsg::Hello {
        protocol: PROTOCOL_VERSION,
        agent: env!("CARGO_PKG_VERSION").into(),
        applied: ctx.agent.applied_version().await,
        token: ctx.hello_token.clone(),
    };
    transport.send(link::encode(&hello)).await?;
    let mut syncs = 0u32;
    let mut next_sync = tokio::time::Instant::now();
    let mut heartbeat = tokio::time::interval(Duration::from_millis(HEARTBEAT_MS));
    let mut keepalive = tokio::time::interval(Duration::from_millis(KEEPALIVE_MS));
    let mut last_rx = ctx.clock.local_ns();
    let mut inflight: HashSet<String> = HashSet::new();
    // Asked of the owner only when something may be waiting, so a busy owner (an fsync)
    // never holds up a clock exchange.
    let mut logs_waiting = true;
    loop {
        // Checked at least every second (the clock exchanges wake the loop): a dead link
        // is noticed within the limit and a second.
        if (ctx.clock.local_ns() - last_rx) / 1_000_000 > ctx.dead_after_ms as i64 {
            return Err(LinkError::Dead);
        }
        if inflight.is_empty() && logs_waiting {
            logs_waiting = false;
            inflight = upload_logs(ctx, &mut transport).await?;
        }
        let reply: Option<NodeMsg> = tokio::select! {
            frame = transport.recv() => {
                let t3 = ctx.clock.local_ns();
                last_rx = t3;
                let text = match frame {
                    Ok(Some(Frame::Text(text))) => text,
                    Ok(Some(Frame::Binary(bytes))) => {
                        match LivePacket::decode(&bytes) {
                            Ok(packet) => ctx.live.push(packet, ctx.clock.controller_ns()),
                            Err(e) => {
                                transport.close(CloseCode::Policy, "malformed live audio").await;
                                return Err(LinkError::BadMessage(e.to_string()));
                            }
                        }
                        continue;
                    }
                    Ok(None) => continue,
                    Err(TransportError::Closed(_)) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                let msg = match ControllerMsg::decode(&text) {
                    Ok(m) => m,
                    Err(e) => {
                        transport.close(CloseCode::Policy, "malformed message").await;
                        return Err(LinkError::BadMessage(e.to_string()));
                    }
                };
                if received(ctx, msg, t3, syncs, &mut inflight) {
                    // More may be waiting behind the batch just acknowledged.
                    logs_waiting = true;
                }
                None
            }
            _ = tokio::time::sleep_until(next_sync) => {
                syncs += 1;
                let every = ctx.clock.exchange_interval_ms();
                next_sync = tokio::time::Instant::now() + Duration::from_millis(every);
                Some(NodeMsg::Ping { t0: ctx.clock.local_ns() })
            }
            _ = heartbeat.tick() => ctx.agent.health().await.map(|h| NodeMsg::Heartbeat(Box::new(h))),
            out = outbox.recv() => match out {
                Some(ToLink::Send(m)) => Some(m),
                Some(ToLink::LogsChanged) => {
                    logs_waiting = true;
                    None
                }
                None => return Ok(()),
            },
            _ = keepalive.tick() => {
                transport.keepalive().await?;
                None
            }
        };
        if let Some(m) = reply {
            transport.send(link::encode(&m)).await?;
        }
    }
}

/// Sends the next batch of play logs, if any; returns the ids now in flight.
async fn upload_logs<T: Transport>(
    ctx: &LinkContext,
    transport: &mut T,
) -> Result<HashSet<String>, LinkError> {
    let batch = ctx.agent.pending_logs(PLAYLOG_BATCH).await;
    let ids = batch.iter().map(|e| e.id.clone()).collect();
    if !batch.is_empty() {
        let msg = NodeMsg::PlayLogs { entries: batch };
        transport.send(link::encode(&msg)).await?;
    }
    Ok(ids)
}

/// One controller message: pongs feed the clock, acks end the batch in flight (true),
/// the rest go to the owner task.
fn received(
    ctx: &LinkContext,
    msg: ControllerMsg,
    t3: i64,
    syncs: u32,
    inflight: &mut HashSet<String>,
) -> bool {
    match msg {
        ControllerMsg::Pong { t0, t1, t2 } => {
            ctx.clock.add_sample(SyncSample { t0, t1, t2, t3 });
            if syncs == SAVE_CLOCK_FIRST || syncs.is_multiple_of(SAVE_CLOCK_EVERY) {
                ctx.agent.send(AgentCmd::SaveClock);
            }
            false
        }
        ControllerMsg::PlayLogsAck { ids } => {
            for id in &ids {
                inflight.remove(id);
            }
            ctx.agent.send(AgentCmd::AckLogs(ids));
            true
        }
        other => {
            deliver(&ctx.agent, other);
            false
        }
    }
}

/// A controller message for the owner task (pongs and acks are the session's own).
fn deliver(agent: &AgentHandle, msg: ControllerMsg) {
    match msg {
        ControllerMsg::Welcome { node_id, name, .. } => {
            tracing::info!(node_id, %name, "welcomed");
        }
        ControllerMsg::Desired(state) => agent.send(AgentCmd::Desired(state)),
        ControllerMsg::Command { id, command } => agent.send(AgentCmd::Remote { id, command }),
        ControllerMsg::Pong { .. } | ControllerMsg::PlayLogsAck { .. } => {}
        ControllerMsg::Unknown => tracing::debug!("unknown message kind ignored"),
    }
}
