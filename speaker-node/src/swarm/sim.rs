//! One simulated node: the real link protocol over a real WebSocket (or through an MQTT
//! broker, `--broker`), timed plays instead of a sound card.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use protocol::desired::DesiredState;
use protocol::link::{
    self, ControllerMsg, HEARTBEAT_MS, Health, KEEPALIVE_MS, NodeMsg, PLAYLOG_BATCH,
    PROTOCOL_VERSION, PlayLogEntry, PlayOutcome, PlayStage,
};
use protocol::schedule::{Outcome, Play, Priority, resolve};
use protocol::transport::{Frame, Transport, TransportError};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::stats::Stats;
use crate::agent::websocket;
use protocol::mqtt::{BrokerTransport, NodeBroker, Scope};

/// Who the node is, from its enrolment.
pub struct Identity {
    pub node_id: i64,
    pub token: String,
    /// Its topics on a broker, as the enrolment told them.
    pub scope: Option<String>,
}

/// How the swarm's nodes get their audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchMode {
    /// One download per blob for the whole swarm (hash-checked), shared by every node.
    Once,
    /// Every node downloads every blob it needs (a real fleet's traffic).
    Each,
    /// No downloads: plays start as if the audio were there.
    None,
}

impl std::str::FromStr for FetchMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "once" => Ok(FetchMode::Once),
            "each" => Ok(FetchMode::Each),
            "none" => Ok(FetchMode::None),
            other => Err(format!("{other:?}: once, each or none")),
        }
    }
}

/// What every simulated node shares.
pub struct Ctx {
    pub server: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub http: reqwest::Client,
    pub fetch: FetchMode,
    pub stats: Arc<Stats>,
    /// Blobs fetched once for the swarm (`FetchMode::Once`): whether each came whole.
    pub blobs: Mutex<HashMap<String, Arc<OnceCell<bool>>>>,
    /// Clock exchanges this often instead of the agent's own schedule.
    pub sync_every: Option<Duration>,
    /// Link through this MQTT broker instead of the controller's WebSocket.
    pub broker: Option<String>,
}

/// A play's start or end, due at an instant.
#[derive(Debug, Clone)]
enum Event {
    Start(Play),
    End(Play),
}

struct Node {
    id: Identity,
    started: Instant,
    applied: Option<String>,
    desired: Option<DesiredState>,
    /// Plays' starts and ends still to come, in time order.
    events: VecDeque<(DateTime<Utc>, Event)>,
    /// Until when the events were resolved.
    resolved_to: DateTime<Utc>,
    /// The desired state changed: resolve from scratch.
    fresh: bool,
    started_plays: HashSet<(i64, i64, u32)>,
    /// Blobs this node has (fetched for it, or by the swarm).
    have: Arc<Mutex<HashSet<String>>>,
    logs: Vec<PlayLogEntry>,
    inflight: HashSet<String>,
    round_trip_ms: Option<f64>,
}

/// Runs one node for ever: dial, session, back off, again.
pub async fn run(id: Identity, ctx: Arc<Ctx>) {
    let mut node = Node {
        id,
        started: Instant::now(),
        applied: None,
        desired: None,
        events: VecDeque::new(),
        resolved_to: Utc::now(),
        fresh: false,
        started_plays: HashSet::new(),
        have: Arc::default(),
        logs: Vec::new(),
        inflight: HashSet::new(),
        round_trip_ms: None,
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let began = Instant::now();
        let linked = match &ctx.broker {
            Some(url) => match broker_dial(url, &node.id).await {
                Ok(t) => node.linked(t, &ctx).await,
                Err(e) => Err(e.to_string()),
            },
            None => match websocket::dial(&ctx.server, &node.id.token, ctx.tls.clone()).await {
                Ok((t, _)) => node.linked(t, &ctx).await,
                Err(e) => Err(e.to_string()),
            },
        };
        match linked {
            Ok(()) if began.elapsed() > Duration::from_secs(30) => {
                backoff = Duration::from_secs(1);
            }
            Ok(()) => {}
            Err(e) => {
                ctx.stats.dial_failed();
                tracing::debug!(node = node.id.node_id, "dial: {e}");
            }
        }
        let jittered = backoff.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        tokio::time::sleep(jittered).await;
        backoff = (backoff * 2).min(Duration::from_secs(60));
    }
}

async fn broker_dial(url: &str, id: &Identity) -> Result<BrokerTransport, TransportError> {
    let scope = id
        .scope
        .as_deref()
        .ok_or_else(|| TransportError::Io("the enrolment named no broker topics".into()))?;
    let scope = Scope::parse_str(scope).map_err(|e| TransportError::Io(e.to_string()))?;
    let node = NodeBroker {
        url: url.to_owned(),
        scope,
        node_id: id.node_id,
        credentials: None,
        tls: None,
    };
    BrokerTransport::connect(&node).await
}

fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

impl Node {
    /// One link, until it ends (`Ok` once it was up, however it ended).
    async fn linked<T: Transport>(&mut self, t: T, ctx: &Ctx) -> Result<(), String> {
        ctx.stats.link_up();
        let ended = self.session(t, ctx).await;
        ctx.stats.link_down();
        tracing::debug!(node = self.id.node_id, ?ended, "link ended");
        Ok(())
    }

    async fn session<T: Transport>(&mut self, mut t: T, ctx: &Ctx) -> Result<(), TransportError> {
        let hello = NodeMsg::Hello {
            protocol: PROTOCOL_VERSION,
            agent: format!("swarm/{}", env!("CARGO_PKG_VERSION")),
            applied: self.applied.clone(),
            // No socket carries the token through a broker: the hello does.
            token: ctx.broker.as_ref().map(|_| self.id.token.clone()),
        };
        t.send(link::encode(&hello)).await?;
        // Heartbeats spread over their period, as a fleet's boards are.
        let offset = Duration::from_millis(rand::random::<u64>() % HEARTBEAT_MS);
        let mut heartbeat =
            tokio::time::interval_at(Instant::now() + offset, Duration::from_millis(HEARTBEAT_MS));
        let mut keepalive = tokio::time::interval(Duration::from_millis(KEEPALIVE_MS));
        let mut next_sync = Instant::now();
        self.inflight.clear();
        loop {
            if self.inflight.is_empty() && !self.logs.is_empty() {
                let entries: Vec<PlayLogEntry> =
                    self.logs.iter().take(PLAYLOG_BATCH).cloned().collect();
                self.inflight = entries.iter().map(|e| e.id.clone()).collect();
                t.send(link::encode(&NodeMsg::PlayLogs { entries })).await?;
            }
            self.resolve_ahead();
            let next_event = self.events.front().map(|(at, _)| *at);
            let event_in = next_event
                .map(|at| (at - Utc::now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(3600));
            let out: Vec<NodeMsg> = tokio::select! {
                frame = t.recv() => match frame {
                    Ok(Some(Frame::Text(text))) => match ControllerMsg::decode(&text) {
                        Ok(msg) => self.received(msg, ctx),
                        Err(e) => return Err(TransportError::BadFrame(e.to_string())),
                    },
                    Ok(Some(Frame::Binary(_))) => {
                        ctx.stats.live_frame();
                        Vec::new()
                    }
                    Ok(None) => Vec::new(),
                    Err(e) => return Err(e),
                },
                _ = tokio::time::sleep_until(next_sync) => {
                    next_sync = Instant::now() + self.sync_interval(ctx);
                    ctx.stats.ping();
                    vec![NodeMsg::Ping { t0: now_ns() }]
                }
                _ = heartbeat.tick() => {
                    ctx.stats.heartbeat();
                    vec![NodeMsg::Heartbeat(Box::new(self.health(ctx)))]
                }
                _ = keepalive.tick() => {
                    t.keepalive().await?;
                    Vec::new()
                }
                _ = tokio::time::sleep(event_in) => self.due(ctx),
            };
            for m in out {
                t.send(link::encode(&m)).await?;
            }
        }
    }

    /// The agent's own schedule of clock exchanges: fast while its estimate settles.
    fn sync_interval(&self, ctx: &Ctx) -> Duration {
        if let Some(every) = ctx.sync_every {
            return every;
        }
        Duration::from_millis(match self.started.elapsed().as_secs() {
            0..180 => 125,
            180..360 => 500,
            _ => 1_000,
        })
    }

    fn received(&mut self, msg: ControllerMsg, ctx: &Ctx) -> Vec<NodeMsg> {
        match msg {
            ControllerMsg::Pong { t0, .. } => {
                self.round_trip_ms = Some((now_ns() - t0) as f64 / 1e6);
                Vec::new()
            }
            ControllerMsg::Desired(state) => {
                let version = state.version.clone();
                self.fetch(&state, ctx);
                self.desired = Some(*state);
                self.events.clear();
                self.resolved_to = Utc::now() - chrono::Duration::hours(6);
                self.fresh = true;
                self.applied = Some(version.clone());
                ctx.stats.applied(self.id.node_id);
                vec![NodeMsg::Applied { version }]
            }
            ControllerMsg::PlayLogsAck { ids } => {
                let acked: HashSet<String> = ids.into_iter().collect();
                ctx.stats.logs_acked(acked.len());
                self.logs.retain(|e| !acked.contains(&e.id));
                self.inflight.retain(|id| !acked.contains(id));
                Vec::new()
            }
            ControllerMsg::Command { id, .. } => {
                ctx.stats.command();
                vec![NodeMsg::CommandDone {
                    id,
                    ok: true,
                    message: String::new(),
                }]
            }
            ControllerMsg::Welcome { .. } | ControllerMsg::Unknown => Vec::new(),
        }
    }

    /// Resolves the next two hours of plays into start and end events, once the ones
    /// resolved so far run out (or the desired state changed).
    fn resolve_ahead(&mut self) {
        let now = Utc::now();
        if self.resolved_to > now + chrono::Duration::minutes(30) {
            return;
        }
        let Some(state) = &self.desired else {
            return;
        };
        let Some(tz) = state.zone() else {
            return;
        };
        let (from, to) = (self.resolved_to, now + chrono::Duration::hours(2));
        // After a new state every play still on air counts; otherwise only plays that
        // begin in the new part of the window (the earlier ones are queued already).
        let fresh = std::mem::take(&mut self.fresh);
        let plays = resolve(&state.schedules, tz, from, to);
        let mut events: Vec<(DateTime<Utc>, Event)> = self.events.drain(..).collect();
        for p in plays.into_iter().filter(|p| p.outcome != Outcome::Skipped) {
            let key = (p.schedule_id, p.scheduled_at.timestamp_millis(), p.attempt);
            // A play already on air when the state came (a link back after the start of
            // an emergency) starts now, late, as the agent starts it.
            if p.end <= now || self.started_plays.contains(&key) || (!fresh && p.start < from) {
                continue;
            }
            events.push((p.start.max(now), Event::Start(p.clone())));
            events.push((p.end, Event::End(p)));
        }
        events.sort_by_key(|(at, e)| (*at, matches!(e, Event::Start(_))));
        self.events = events.into();
        self.resolved_to = to;
    }

    /// Plays whose start or end has come.
    fn due(&mut self, ctx: &Ctx) -> Vec<NodeMsg> {
        let mut out = Vec::new();
        let now = Utc::now();
        while self.events.front().is_some_and(|(at, _)| *at <= now) {
            let Some((_, event)) = self.events.pop_front() else {
                break;
            };
            match event {
                Event::Start(p) => {
                    if !self.audio_here(&p) {
                        // Held until the audio comes, as the agent does an emergency.
                        if p.priority == Priority::Emergency {
                            out.push(state(&p, PlayStage::Waiting));
                        }
                        let retry = now + chrono::Duration::milliseconds(200);
                        if retry < p.end {
                            self.events.push_front((retry, Event::Start(p)));
                        }
                        break;
                    }
                    let key = (p.schedule_id, p.scheduled_at.timestamp_millis(), p.attempt);
                    self.started_plays.insert(key);
                    ctx.stats.played();
                    if p.priority == Priority::Emergency {
                        ctx.stats.emergency_playing(p.schedule_id);
                        out.push(state(&p, PlayStage::Playing));
                    }
                }
                Event::End(p) => {
                    let key = (p.schedule_id, p.scheduled_at.timestamp_millis(), p.attempt);
                    if !self.started_plays.contains(&key) {
                        continue;
                    }
                    if p.priority == Priority::Emergency {
                        out.push(state(&p, PlayStage::Ended));
                    }
                    self.logs.push(self.log_entry(&p));
                }
            }
        }
        out
    }

    fn audio_here(&self, p: &Play) -> bool {
        let Some(spec) = self
            .desired
            .as_ref()
            .and_then(|d| d.schedules.iter().find(|s| s.id == p.schedule_id))
        else {
            return false;
        };
        let have = self.have.lock().unwrap_or_else(|e| e.into_inner());
        let items = spec.program.chime.iter().chain(spec.program.items.iter());
        items
            .filter_map(|i| i.sha256.as_ref())
            .all(|sha| have.contains(sha))
    }

    fn log_entry(&self, p: &Play) -> PlayLogEntry {
        let content_id = self
            .desired
            .as_ref()
            .and_then(|d| d.schedules.iter().find(|s| s.id == p.schedule_id))
            .and_then(|s| s.program.items.first())
            .map(|i| i.content_id);
        PlayLogEntry {
            id: format!("{:032x}", rand::random::<u128>()),
            schedule_id: Some(p.schedule_id),
            content_id,
            scheduled_at: Some(p.scheduled_at),
            started_at: Some(p.start),
            ended_at: Some(p.end),
            outcome: match p.outcome {
                Outcome::Interrupted => PlayOutcome::Interrupted,
                _ => PlayOutcome::Completed,
            },
            reason: None,
        }
    }

    /// Gets the state's blobs as the fetch mode says, beside the session.
    fn fetch(&self, state: &DesiredState, ctx: &Ctx) {
        let wanted: Vec<String> = {
            let have = self.have.lock().unwrap_or_else(|e| e.into_inner());
            state
                .blobs()
                .into_iter()
                .filter(|s| !have.contains(*s))
                .map(str::to_owned)
                .collect()
        };
        if wanted.is_empty() {
            return;
        }
        if ctx.fetch == FetchMode::None {
            let mut have = self.have.lock().unwrap_or_else(|e| e.into_inner());
            have.extend(wanted);
            return;
        }
        let (have, http, server, token, mode, stats) = (
            self.have.clone(),
            ctx.http.clone(),
            ctx.server.clone(),
            self.id.token.clone(),
            ctx.fetch,
            ctx.stats.clone(),
        );
        let shared: Vec<Arc<OnceCell<bool>>> = {
            let mut blobs = ctx.blobs.lock().unwrap_or_else(|e| e.into_inner());
            wanted
                .iter()
                .map(|s| blobs.entry(s.clone()).or_default().clone())
                .collect()
        };
        tokio::spawn(async move {
            for (sha, cell) in wanted.into_iter().zip(shared) {
                let ok = match mode {
                    FetchMode::Once => {
                        *cell
                            .get_or_init(|| download(&http, &server, &token, &sha, &stats))
                            .await
                    }
                    _ => download(&http, &server, &token, &sha, &stats).await,
                };
                if ok {
                    have.lock().unwrap_or_else(|e| e.into_inner()).insert(sha);
                }
            }
        });
    }

    fn health(&self, ctx: &Ctx) -> Health {
        let missing: Vec<String> = match &self.desired {
            None => Vec::new(),
            Some(d) => {
                let have = self.have.lock().unwrap_or_else(|e| e.into_inner());
                d.blobs()
                    .into_iter()
                    .filter(|s| !have.contains(*s))
                    .map(str::to_owned)
                    .collect()
            }
        };
        Health {
            agent: format!("swarm/{}", env!("CARGO_PKG_VERSION")),
            uptime_s: self.started.elapsed().as_secs(),
            ip: vec!["10.0.0.2".into()],
            clock_offset_ms: Some(0.0),
            round_trip_ms: self.round_trip_ms,
            cache_quota_bytes: 2_000_000_000,
            disk_free_bytes: Some(8_000_000_000),
            missing_blobs: missing,
            volume: 100,
            output: if ctx.fetch == FetchMode::None {
                "null (swarm)".into()
            } else {
                "null".into()
            },
            output_ok: true,
            load: Some(0.1),
            applied_version: self.applied.clone(),
            pending_logs: self.logs.len() as u64,
            ..Health::default()
        }
    }
}

fn state(p: &Play, stage: PlayStage) -> NodeMsg {
    NodeMsg::PlayState {
        schedule_id: p.schedule_id,
        scheduled_at: p.scheduled_at,
        priority: p.priority,
        state: stage,
        message: String::new(),
    }
}

/// Downloads a blob with the node token and checks it against its hash.
async fn download(
    http: &reqwest::Client,
    server: &str,
    token: &str,
    sha256: &str,
    stats: &Stats,
) -> bool {
    let url = format!("{server}/content/{sha256}");
    let ok = async {
        let res = http.get(&url).bearer_auth(token).send().await.ok()?;
        if !res.status().is_success() {
            return None;
        }
        let mut hasher = Sha256::new();
        let mut body = res.bytes_stream();
        while let Some(chunk) = body.next().await {
            hasher.update(chunk.ok()?);
        }
        let digest: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (digest == sha256).then_some(())
    }
    .await
    .is_some();
    stats.fetch(ok);
    ok
}
