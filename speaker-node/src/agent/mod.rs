//! The node agent (`speaker-node run`): plays the village's schedule on time with or
//! without a link.
//!
//! ```text
//!            link (WebSocket) ──desired state──> state dir (desired.json) ──┐
//! controller <──heartbeats, play logs, acks──   cache (blobs by SHA-256) <──┤ fetcher
//!                                                                           v
//!                    scheduler (protocol::schedule::resolve, controller clock)
//!                                      │ jobs, 3 s ahead
//!                                      v
//!                    playout thread (continuous output, frame-exact starts) ──> sink
//!                                      │ play log entries
//!                                      v
//!                    journal (durable, uploaded until acknowledged)
//! ```
//!
//! - [`clock`]: the node's clock (with the test knobs) and the controller offset.
//! - [`state`]: the state directory, atomic writes. [`cache`]: blobs. [`journal`]: play log.
//! - [`link`]: the WebSocket session. [`scheduler`] and [`playout`]: what plays when.
//! - [`amp`]: amplifier power. [`enroll`]: trading a code for a node token.

pub mod amp;
pub mod cache;
pub mod clock;
pub mod enroll;
mod health;
pub mod journal;
pub mod link;
pub mod playout;
pub mod scheduler;
pub mod state;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use protocol::desired::DesiredState;
use protocol::link::{Command, ControllerMsg, NodeMsg, PlayLogEntry};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::output::OutputSpec;
use amp::{AmpConfig, Amplifier};
use cache::BlobCache;
use clock::NodeClock;
use journal::PlayJournal;
use playout::{Job, PlayKey, PlayoutCmd, PlayoutEvent, PlayoutStatus, Segment};
use scheduler::Scheduler;
use state::{Settings, StateDir};

/// `speaker-node run` settings: a TOML file, then environment and flags over it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The state directory (token, desired state, cache, play log).
    pub state: PathBuf,
    /// The controller; default: the one the node enrolled with.
    pub server: Option<String>,
    /// Where blobs come from (a mirror or CDN); default: the controller.
    pub content_base_url: Option<String>,
    pub output: String,
    /// The node's volume until a technician sets one remotely.
    pub volume: u8,
    pub cache_quota_mb: u64,
    pub amplifier_on_command: Option<String>,
    pub amplifier_off_command: Option<String>,
    pub amplifier_lead_ms: u64,
    pub amplifier_tail_ms: u64,
    /// Test knobs (CONTRACT.md): the node's clock reads this far off the host's...
    pub clock_offset_ms: f64,
    /// ...and runs (with its simulated card) this fast.
    pub clock_drift_ppm: f64,
    /// Sample rate and channels of a `wav:`/`null` card (a sound card picks its own).
    /// Lower them for long simulations: a 48 kHz stereo float card grows 1.4 GB an hour.
    pub card_rate: u32,
    pub card_channels: u16,
    /// Stop when standard input closes: a supervisor that owns the node (the demo) ends
    /// it by exiting, even when killed.
    #[serde(skip)]
    pub stop_on_stdin_eof: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            state: PathBuf::from("/var/lib/loa-node"),
            server: None,
            content_base_url: None,
            output: "device".into(),
            volume: 100,
            cache_quota_mb: 2048,
            amplifier_on_command: None,
            amplifier_off_command: None,
            amplifier_lead_ms: 1500,
            amplifier_tail_ms: 5000,
            clock_offset_ms: 0.0,
            clock_drift_ppm: 0.0,
            card_rate: crate::output::AudioFormat::PLAYBACK.sample_rate,
            card_channels: crate::output::AudioFormat::PLAYBACK.channels,
            stop_on_stdin_eof: false,
        }
    }
}

/// How `run` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM / Ctrl-C.
    Stopped,
    /// A technician asked for a restart (the service manager starts us again).
    Restart,
}

/// What the agent's tasks share.
pub struct Agent {
    server: String,
    content_base: String,
    token: String,
    node_id: i64,
    state: StateDir,
    cfg: AgentConfig,
    clock: Arc<NodeClock>,
    cache: BlobCache,
    journal: Mutex<PlayJournal>,
    desired: RwLock<Option<DesiredState>>,
    scheduler: Mutex<Scheduler>,
    playout: Mutex<std::sync::mpsc::Sender<PlayoutCmd>>,
    status: Arc<Mutex<PlayoutStatus>>,
    /// Something new for the scheduler and the fetcher.
    desired_changed: Notify,
    fetch_now: Notify,
    logs_changed: Notify,
    missing: Mutex<Vec<String>>,
    last_error: Mutex<Option<String>>,
    ip: Mutex<Option<String>>,
    started: Instant,
    http: reqwest::Client,
    exit: tokio::sync::watch::Sender<Option<Exit>>,
    /// Messages made beside the link session (acks of applied states, command results);
    /// the session of the moment sends them.
    outbox: tokio::sync::mpsc::UnboundedSender<NodeMsg>,
    outbox_rx: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<NodeMsg>>,
    /// The latest desired state received, for the applier (latest wins, applied in order).
    incoming: tokio::sync::watch::Sender<Option<DesiredState>>,
}

/// An error with its causes, `a: b: c` (reqwest's own text hides why a request failed).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the agent until it is stopped; every failure to start is one line for stderr.
pub fn run(cfg: AgentConfig) -> Result<Exit, String> {
    let output: OutputSpec = cfg
        .output
        .parse()
        .map_err(|e: crate::Error| e.to_string())?;
    let state = StateDir::open(&cfg.state)?;
    let (identity, token) = state.identity()?;
    let desired = state.desired()?;
    let settings = state.settings();
    let journal = PlayJournal::open(&state.playlog_dir())?;
    let cache = BlobCache::open(state.cache_dir())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    rt.block_on(async move {
        let clock = Arc::new(NodeClock::new(
            cfg.clock_offset_ms,
            cfg.clock_drift_ppm,
            settings.clock_offset_ns,
        ));
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let amp = Amplifier::new(AmpConfig {
            on_command: cfg.amplifier_on_command.clone(),
            off_command: cfg.amplifier_off_command.clone(),
            lead_ms: cfg.amplifier_lead_ms,
            tail_ms: cfg.amplifier_tail_ms,
        });
        let handle = playout::spawn(
            playout::PlayoutConfig {
                output,
                format: crate::output::AudioFormat {
                    sample_rate: cfg.card_rate.clamp(8_000, 192_000),
                    channels: cfg.card_channels.clamp(1, 8),
                },
                drift_ppm: cfg.clock_drift_ppm,
                volume: settings.volume.unwrap_or(cfg.volume),
                amp,
            },
            clock.clone(),
            events_tx,
        );
        let server = cfg.server.clone().unwrap_or(identity.server.clone());
        let (exit, mut exit_rx) = tokio::sync::watch::channel(None);
        let (outbox, outbox_rx) = tokio::sync::mpsc::unbounded_channel();
        let (incoming, incoming_rx) = tokio::sync::watch::channel(None);
        let agent = Arc::new(Agent {
            content_base: cfg.content_base_url.clone().unwrap_or(server.clone()),
            server,
            token,
            node_id: identity.node_id,
            state,
            clock: clock.clone(),
            cache,
            journal: Mutex::new(journal),
            desired: RwLock::new(desired),
            scheduler: Mutex::new(Scheduler::new(clock.controller_ns())),
            playout: Mutex::new(handle.tx.clone()),
            status: handle.status.clone(),
            desired_changed: Notify::new(),
            fetch_now: Notify::new(),
            logs_changed: Notify::new(),
            missing: Mutex::new(Vec::new()),
            last_error: Mutex::new(None),
            ip: Mutex::new(None),
            started: Instant::now(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(15))
                .read_timeout(Duration::from_secs(60))
                .build()
                .map_err(|e| e.to_string())?,
            cfg,
            exit,
            outbox,
            outbox_rx: tokio::sync::Mutex::new(outbox_rx),
            incoming,
        });
        // The first heartbeat must not claim a complete cache the fetcher has not checked.
        *lock(&agent.missing) = agent.missing_now();
        tracing::info!(node = agent.node_id, name = %identity.name, "agent started");
        tokio::spawn(events(agent.clone(), events_rx));
        tokio::spawn(schedule(agent.clone()));
        tokio::spawn(fetch(agent.clone()));
        tokio::spawn(applier(agent.clone(), incoming_rx));
        if agent.cfg.stop_on_stdin_eof {
            let exit = agent.exit.clone();
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
                let _ = exit.send(Some(Exit::Stopped));
            });
        }
        tokio::spawn(link::run(agent.clone()));
        let how = tokio::select! {
            _ = shutdown_signal() => Exit::Stopped,
            how = exit_rx.wait_for(Option::is_some) => match how.ok().and_then(|h| *h) {
                Some(Exit::Restart) => Exit::Restart,
                _ => Exit::Stopped,
            },
        };
        tracing::info!(?how, "stopping");
        let _ = handle.tx.send(PlayoutCmd::Shutdown);
        let _ = tokio::task::spawn_blocking(move || handle.thread.join()).await;
        // Entries the playout logged on its way out.
        tokio::time::sleep(Duration::from_millis(50)).await;
        agent.save_clock();
        Ok(how)
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

/// Play log entries from the playout go to the journal (durably) before anything else.
async fn events(agent: Arc<Agent>, mut rx: tokio::sync::mpsc::UnboundedReceiver<PlayoutEvent>) {
    while let Some(ev) = rx.recv().await {
        match ev {
            PlayoutEvent::Started(key) => lock(&agent.scheduler).started(&key),
            PlayoutEvent::Ended(_, entry) => {
                // An fsync: off the async workers.
                let a = agent.clone();
                let _ = tokio::task::spawn_blocking(move || a.log(entry)).await;
            }
        }
    }
}

/// Stores and runs desired states one at a time, latest first, beside the link session
/// (an fsync must not delay the session's clock exchanges).
async fn applier(agent: Arc<Agent>, mut rx: tokio::sync::watch::Receiver<Option<DesiredState>>) {
    while rx.changed().await.is_ok() {
        let Some(state) = rx.borrow_and_update().clone() else {
            continue;
        };
        if let Some(reply) = agent.apply(state).await {
            *lock(&agent.missing) = agent.missing_now();
            let _ = agent.outbox.send(reply);
        }
    }
}

/// The scheduler's loop: a turn every quarter second and on every new desired state.
async fn schedule(agent: Arc<Agent>) {
    loop {
        let changed = tokio::select! {
            _ = agent.desired_changed.notified() => true,
            _ = tokio::time::sleep(Duration::from_millis(250)) => false,
        };
        let (jobs, skips) = {
            let desired = agent.desired.read().unwrap_or_else(PoisonError::into_inner);
            let Some(state) = desired.as_ref() else {
                continue;
            };
            let mut sched = lock(&agent.scheduler);
            if changed {
                sched.replan();
                agent.to_playout(PlayoutCmd::ClearPending);
            }
            sched.tick(state, agent.clock.controller_ns(), &agent.cache)
        };
        for job in jobs {
            tracing::debug!(schedule = ?job.schedule_id, start_ns = job.start_ns, "queued");
            agent.to_playout(PlayoutCmd::Queue(job));
        }
        if !skips.is_empty() {
            let a = agent.clone();
            let _ =
                tokio::task::spawn_blocking(move || skips.into_iter().for_each(|e| a.log(e))).await;
        }
    }
}

/// Fetches what the schedule needs (the next days first, nearest first), then evicts.
async fn fetch(agent: Arc<Agent>) {
    let mut failures = 0u32;
    loop {
        let (soon, later) = {
            let desired = agent.desired.read().unwrap_or_else(PoisonError::into_inner);
            match desired.as_ref() {
                Some(s) => scheduler::needed_blobs(s, agent.clock.controller_ns()),
                None => (Vec::new(), Vec::new()),
            }
        };
        let wanted: Vec<String> = soon.iter().chain(later.iter()).cloned().collect();
        let mut missing: Vec<String> = wanted
            .iter()
            .filter(|s| !agent.cache.has(s))
            .cloned()
            .collect();
        *lock(&agent.missing) = missing.clone();
        let mut ok = true;
        while let Some(sha) = missing.first().cloned() {
            match agent
                .cache
                .fetch(&agent.http, &agent.content_base, &agent.token, &sha)
                .await
            {
                Ok(()) => {
                    tracing::info!(%sha, "blob cached");
                    missing.remove(0);
                    *lock(&agent.missing) = missing.clone();
                }
                Err(e) => {
                    tracing::warn!("fetch: {e}");
                    agent.note_error(format!("fetch: {e}"));
                    ok = false;
                    break;
                }
            }
        }
        let keep: HashSet<String> = soon.into_iter().collect();
        let removed = agent
            .cache
            .evict(agent.cfg.cache_quota_mb * 1_000_000, &keep);
        if !removed.is_empty() {
            tracing::info!(count = removed.len(), "evicted from the cache");
        }
        failures = if ok { 0 } else { failures + 1 };
        let wait = match failures {
            0 => Duration::from_secs(60),
            n => Duration::from_secs(2u64.pow(n.min(5))),
        };
        tokio::select! {
            _ = agent.desired_changed.notified() => {}
            _ = agent.fetch_now.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

impl Agent {
    /// Blobs the desired state needs that the cache lacks.
    fn missing_now(&self) -> Vec<String> {
        let desired = self.desired.read().unwrap_or_else(PoisonError::into_inner);
        desired
            .as_ref()
            .map(|d| {
                d.blobs()
                    .into_iter()
                    .filter(|s| !self.cache.has(s))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn to_playout(&self, cmd: PlayoutCmd) {
        let _ = lock(&self.playout).send(cmd);
    }

    fn note_error(&self, e: String) {
        *lock(&self.last_error) = Some(e);
    }

    fn set_ip(&self, ip: String) {
        *lock(&self.ip) = Some(ip);
    }

    fn log(&self, entry: PlayLogEntry) {
        if let Err(e) = lock(&self.journal).append(entry) {
            tracing::error!("play log: {e}");
            self.note_error(format!("play log: {e}"));
        }
        self.logs_changed.notify_one();
    }

    fn pending_logs(&self, max: usize) -> Vec<PlayLogEntry> {
        lock(&self.journal)
            .pending()
            .iter()
            .take(max)
            .cloned()
            .collect()
    }

    fn ack_logs(&self, ids: &[String]) {
        if let Err(e) = lock(&self.journal).ack(ids) {
            tracing::error!("play log: {e}");
        }
    }

    fn applied_version(&self) -> Option<String> {
        self.desired
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|d| d.version.clone())
    }

    fn save_clock(&self) {
        let mut settings = self.state.settings();
        if let Some(e) = self.clock.estimate() {
            tracing::info!(
                offset_ms = self.clock.offset_ns() as f64 / 1e6,
                drift_ppm = e.drift_ppm,
                round_trip_ms = e.round_trip_ns as f64 / 1e6,
                samples = e.samples,
                "clock offset saved"
            );
            settings.clock_offset_ns = Some(self.clock.offset_ns());
            let _ = self.state.save_settings(&settings);
        }
    }

    /// A controller message other than pongs and acks. Work that can take time runs
    /// beside the session; its replies go through the outbox.
    fn handle(self: &Arc<Self>, msg: ControllerMsg) {
        match msg {
            ControllerMsg::Welcome { node_id, name, .. } => {
                tracing::info!(node_id, %name, "welcomed");
            }
            ControllerMsg::Desired(state) => {
                self.incoming.send_replace(Some(*state));
            }
            ControllerMsg::Command { id, command } => {
                let agent = self.clone();
                tokio::spawn(async move {
                    let done = agent.command(id, command).await;
                    let _ = agent.outbox.send(done);
                    // The effect shows in the CMS at once, not at the next heartbeat (a
                    // second: a play asked for starts half a second after the command).
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let _ = agent
                        .outbox
                        .send(NodeMsg::Heartbeat(Box::new(agent.health())));
                });
            }
            ControllerMsg::Pong { .. } | ControllerMsg::PlayLogsAck { .. } => {}
            ControllerMsg::Unknown => tracing::debug!("unknown message kind ignored"),
        }
    }

    /// Stores a desired state (atomically, before acknowledging) and runs it.
    async fn apply(&self, state: DesiredState) -> Option<NodeMsg> {
        if state.node_id != self.node_id {
            tracing::error!(
                for_node = state.node_id,
                "desired state for another node refused"
            );
            return None;
        }
        if self.applied_version().as_deref() == Some(state.version.as_str()) {
            return Some(NodeMsg::Applied {
                version: state.version,
            });
        }
        let dir = self.state.clone();
        let to_save = state.clone();
        match tokio::task::spawn_blocking(move || dir.save_desired(&to_save)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!("cannot store the desired state: {e}");
                self.note_error(e);
                return None;
            }
            Err(e) => {
                self.note_error(e.to_string());
                return None;
            }
        }
        let version = state.version.clone();
        tracing::info!(%version, schedules = state.schedules.len(), "desired state applied");
        *self.desired.write().unwrap_or_else(PoisonError::into_inner) = Some(state);
        self.desired_changed.notify_waiters();
        Some(NodeMsg::Applied { version })
    }

    async fn command(self: &Arc<Self>, id: u64, command: Command) -> NodeMsg {
        tracing::info!(id, ?command, "command");
        let result: Result<String, String> = match command {
            Command::SetVolume { volume } => {
                self.to_playout(PlayoutCmd::SetVolume(volume.min(100)));
                let mut s: Settings = self.state.settings();
                s.volume = Some(volume.min(100));
                self.state
                    .save_settings(&s)
                    .map(|()| format!("volume {volume}"))
            }
            Command::Stop => {
                self.to_playout(PlayoutCmd::Stop);
                Ok("stopped".into())
            }
            Command::PlayNow {
                content_id,
                sha256,
                gain_db,
                duration_ms,
            } => {
                self.play_now(id, content_id, sha256, gain_db, duration_ms)
                    .await
            }
            Command::TestTone { seconds } => {
                let ms = u64::from(seconds.clamp(1, 60)) * 1000;
                self.queue_now(id, vec![Segment::Tone { ms }], None, ms);
                Ok(format!("{seconds} s test tone"))
            }
            Command::Resync => {
                self.fetch_now.notify_one();
                self.desired_changed.notify_waiters();
                Ok("resyncing".into())
            }
            Command::Restart => {
                let _ = self.exit.send(Some(Exit::Restart));
                Ok("restarting".into())
            }
        };
        let (ok, message) = match result {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        NodeMsg::CommandDone { id, ok, message }
    }

    async fn play_now(
        &self,
        id: u64,
        content_id: i64,
        sha256: String,
        gain_db: f32,
        duration_ms: u64,
    ) -> Result<String, String> {
        if !self.cache.has(&sha256) {
            self.cache
                .fetch(&self.http, &self.content_base, &self.token, &sha256)
                .await
                .map_err(|e| e.to_string())?;
        }
        let seg = Segment::Audio {
            content_id,
            path: self.cache.path_of(&sha256),
            sha256,
            gain_db,
        };
        self.queue_now(id, vec![seg], Some(content_id), duration_ms);
        Ok(format!("playing content {content_id}"))
    }

    /// A job starting half a second from now (time for the output to take it).
    fn queue_now(&self, id: u64, segments: Vec<Segment>, content_id: Option<i64>, nominal_ms: u64) {
        let now = self.clock.controller_ns();
        let start = now + 500_000_000;
        self.to_playout(PlayoutCmd::Queue(Job {
            key: PlayKey {
                schedule_id: 0,
                scheduled_at_ns: id as i64,
                attempt: 0,
            },
            schedule_id: None,
            scheduled_at_ns: Some(start),
            start_ns: start,
            deadline_ns: start + 60_000_000_000,
            segments,
            content_id,
            volume: 100,
            nominal_ms,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::AgentConfig;

    #[test]
    fn the_packaged_config_template_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/node.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let c: AgentConfig = toml::from_str(&text).unwrap();
        assert_eq!(c.state, std::path::PathBuf::from("/var/lib/loa-node"));
        assert_eq!(c.output, "device");
        assert!(toml::from_str::<AgentConfig>("stat = \"x\"").is_err());
    }
}
