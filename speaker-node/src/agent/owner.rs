//! The agent's owner task: the one place the node's state lives — the desired state, the
//! scheduler, the play journal, what the cache lacks, the last error — and the one task
//! that changes it. Everything else talks to it with messages: the link sends
//! [`AgentCmd`]s through an [`AgentHandle`] (a desired state, a command, an ack, a
//! request for the heartbeat), the playout thread sends its events, and the owner answers
//! the link through [`ToLink`]. No locks around the state, so no lock order to get wrong.
//!
//! Its loop: a scheduler turn every [`TICK`] and at once on a new desired state; playout
//! events appended to the journal before anything else; commands as they come.
//! Shutdown stops the playout, then drains its events into the journal until the
//! playout's sender is gone: nothing it logged on its way out is lost.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use protocol::desired::DesiredState;
use protocol::link::{Command, Health, NodeMsg, PlayLogEntry, PlayOutcome, PlayStage};
use protocol::schedule::Priority;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::Exit;
use super::cache::BlobCache;
use super::clock::NodeClock;
use super::error::AgentError;
use super::fetcher::Fetcher;
use super::journal::PlayJournal;
use super::playout::{PlayKey, PlayoutCmd, PlayoutEvent, PlayoutHandle, PlayoutStatus};
use super::scheduler::Scheduler;
use super::state::StateDir;

/// A scheduler turn this often (and at once on a new desired state).
pub const TICK: Duration = Duration::from_millis(250);

/// What the rest of the agent asks of the owner.
pub enum AgentCmd {
    /// A desired state from the controller.
    Desired(Box<DesiredState>),
    /// A remote command from the controller.
    Remote {
        id: u64,
        command: Command,
    },
    /// The controller durably stored these play log entries.
    AckLogs(Vec<String>),
    /// Up to `max` unacknowledged play log entries, oldest first.
    PendingLogs {
        max: usize,
        reply: oneshot::Sender<Vec<PlayLogEntry>>,
    },
    Health(oneshot::Sender<Health>),
    AppliedVersion(oneshot::Sender<Option<String>>),
    /// The link came up from this local address.
    LinkUp {
        ip: Option<String>,
    },
    /// Something failed beside the owner (link, fetcher): shown in the heartbeat.
    Error(String),
    /// The fetcher's count of what the schedule needs and the cache lacks, nearest first.
    Missing(Vec<String>),
    /// A `play_now` blob is in the cache now (or could not be had).
    PlayNowReady {
        id: u64,
        play: super::commands::PlayNow,
        fetched: Result<(), String>,
    },
    /// Send a heartbeat now (a second after a command, so its effect shows at once).
    Heartbeat,
    /// Keep the clock offset on disk (a restart without a link stays on fleet time).
    SaveClock,
    Shutdown,
}

/// What the owner tells the link session of the moment.
#[derive(Debug)]
pub enum ToLink {
    Send(NodeMsg),
    /// New play log entries to upload.
    LogsChanged,
}

/// The way to the owner task. Cheap to clone; every method returns at once or after one
/// round trip to the owner.
#[derive(Clone)]
pub struct AgentHandle {
    tx: mpsc::UnboundedSender<AgentCmd>,
}

impl AgentHandle {
    pub fn new(tx: mpsc::UnboundedSender<AgentCmd>) -> Self {
        AgentHandle { tx }
    }

    pub fn send(&self, cmd: AgentCmd) {
        let _ = self.tx.send(cmd);
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> AgentCmd) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).ok()?;
        answer.await.ok()
    }

    pub async fn health(&self) -> Option<Health> {
        self.ask(AgentCmd::Health).await
    }

    pub async fn pending_logs(&self, max: usize) -> Vec<PlayLogEntry> {
        self.ask(|reply| AgentCmd::PendingLogs { max, reply })
            .await
            .unwrap_or_default()
    }

    pub async fn applied_version(&self) -> Option<String> {
        self.ask(AgentCmd::AppliedVersion).await.flatten()
    }
}

/// What the owner starts with.
pub struct CoreParts {
    pub node_id: i64,
    pub state: StateDir,
    pub clock: Arc<NodeClock>,
    pub cache: Arc<BlobCache>,
    pub journal: PlayJournal,
    pub desired: Option<DesiredState>,
    pub playout: PlayoutHandle,
    pub fetcher: Fetcher,
    pub output_name: String,
    pub cache_quota_bytes: u64,
}

/// The owner's channels to the others.
pub struct CoreLinks {
    /// Back to the owner itself (for work finished in spawned tasks).
    pub handle: AgentHandle,
    pub to_link: mpsc::UnboundedSender<ToLink>,
    /// The desired state the fetcher works from.
    pub wanted: watch::Sender<Option<Arc<DesiredState>>>,
    pub fetch_now: Arc<Notify>,
    pub exit: watch::Sender<Option<Exit>>,
}

pub struct AgentCore {
    pub(super) node_id: i64,
    pub(super) state: StateDir,
    pub(super) clock: Arc<NodeClock>,
    pub(super) cache: Arc<BlobCache>,
    journal: PlayJournal,
    desired: Option<DesiredState>,
    scheduler: Scheduler,
    playout: std::sync::mpsc::Sender<PlayoutCmd>,
    playout_thread: Option<std::thread::JoinHandle<()>>,
    /// The playout thread's own report (it is a real-time thread; the owner only reads).
    pub(super) status: Arc<Mutex<PlayoutStatus>>,
    pub(super) missing: Vec<String>,
    pub(super) last_error: Option<String>,
    pub(super) ip: Option<String>,
    /// Local clock when the agent started.
    pub(super) started_ns: i64,
    pub(super) output_name: String,
    pub(super) cache_quota_bytes: u64,
    pub(super) fetcher: Fetcher,
    pub(super) links: CoreLinks,
    /// Emergencies held for their audio, with what the controller was last told of each.
    waiting: std::collections::HashMap<PlayKey, String>,
    /// The fetcher's last failure, said of held emergencies.
    fetch_error: Option<String>,
}

/// Runs blocking work (an fsync) without stalling the other tasks: on a multi-threaded
/// runtime the worker hands its tasks over first; elsewhere (tests) it just runs.
pub(super) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl AgentCore {
    pub fn new(parts: CoreParts, links: CoreLinks) -> Self {
        let CoreParts {
            node_id,
            state,
            clock,
            cache,
            journal,
            desired,
            playout,
            fetcher,
            output_name,
            cache_quota_bytes,
        } = parts;
        let mut core = AgentCore {
            node_id,
            state,
            scheduler: Scheduler::new(clock.controller_ns()),
            started_ns: clock.local_ns(),
            clock,
            cache,
            journal,
            desired: None,
            playout: playout.tx,
            playout_thread: Some(playout.thread),
            status: playout.status,
            missing: Vec::new(),
            last_error: None,
            ip: None,
            output_name,
            cache_quota_bytes,
            fetcher,
            links,
            waiting: Default::default(),
            fetch_error: None,
        };
        // The first heartbeat must not claim a complete cache the fetcher has not checked.
        core.set_desired(desired);
        core
    }

    /// Runs until [`AgentCmd::Shutdown`] (or every handle is gone), then shuts down.
    pub async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<AgentCmd>,
        mut events: mpsc::UnboundedReceiver<PlayoutEvent>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None | Some(AgentCmd::Shutdown) => break,
                    Some(cmd) => self.handle(cmd),
                },
                Some(ev) = events.recv() => self.on_playout(ev),
                _ = tick.tick() => self.tick(false),
            }
        }
        self.shutdown(events).await;
    }

    /// One message from the rest of the agent.
    pub fn handle(&mut self, cmd: AgentCmd) {
        match cmd {
            AgentCmd::Desired(state) => self.apply(*state),
            AgentCmd::Remote { id, command } => self.remote(id, command),
            AgentCmd::AckLogs(ids) => {
                if let Err(e) = blocking(|| self.journal.ack(&ids)) {
                    self.note_error(format!("play log: {e}"));
                }
            }
            AgentCmd::PendingLogs { max, reply } => {
                let _ = reply.send(self.journal.pending().iter().take(max).cloned().collect());
            }
            AgentCmd::Health(reply) => {
                let _ = reply.send(self.health());
            }
            AgentCmd::AppliedVersion(reply) => {
                let _ = reply.send(self.applied_version());
            }
            AgentCmd::LinkUp { ip } => self.ip = ip,
            AgentCmd::Error(e) => {
                if e.starts_with("fetch") {
                    self.fetch_error = Some(e.clone());
                }
                self.note_error(e)
            }
            AgentCmd::Missing(missing) => {
                if missing.is_empty() {
                    self.fetch_error = None;
                }
                self.missing = missing
            }
            AgentCmd::PlayNowReady { id, play, fetched } => self.play_now_ready(id, play, fetched),
            AgentCmd::Heartbeat => {
                self.to_link(ToLink::Send(NodeMsg::Heartbeat(Box::new(self.health()))))
            }
            AgentCmd::SaveClock => self.save_clock(),
            AgentCmd::Shutdown => {}
        }
    }

    pub(super) fn to_link(&self, msg: ToLink) {
        let _ = self.links.to_link.send(msg);
    }

    pub(super) fn to_playout(&self, cmd: PlayoutCmd) {
        let _ = self.playout.send(cmd);
    }

    pub(super) fn note_error(&mut self, e: String) {
        tracing::warn!("{e}");
        self.last_error = Some(e);
    }

    pub(super) fn applied_version(&self) -> Option<String> {
        self.desired.as_ref().map(|d| d.version.clone())
    }

    /// Play log entries waiting for the controller's ack.
    pub fn pending_logs(&self) -> &[PlayLogEntry] {
        self.journal.pending()
    }

    /// A new desired state in force: the fetcher and the heartbeat's missing list follow.
    fn set_desired(&mut self, desired: Option<DesiredState>) {
        self.missing = desired
            .as_ref()
            .map(|d| {
                d.blobs()
                    .into_iter()
                    .filter(|s| !self.cache.has(s))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        self.links
            .wanted
            .send_replace(desired.clone().map(Arc::new));
        self.desired = desired;
    }

    /// Stores a desired state (atomically, before acknowledging) and runs it.
    fn apply(&mut self, state: DesiredState) {
        if state.node_id != self.node_id {
            self.note_error(format!(
                "desired state for node {} refused (this is node {})",
                state.node_id, self.node_id
            ));
            return;
        }
        if state.zone().is_none() {
            self.note_error(format!(
                "desired state {} refused: unknown time zone {:?}",
                state.version, state.tz
            ));
            return;
        }
        let version = state.version.clone();
        if self.applied_version().as_deref() != Some(version.as_str()) {
            if let Err(e) = blocking(|| self.state.save_desired(&state)) {
                self.note_error(format!("cannot store the desired state: {e}"));
                return;
            }
            tracing::info!(%version, schedules = state.schedules.len(), "desired state applied");
            self.cut_if_withdrawn(&state);
            self.set_desired(Some(state));
            self.tick(true);
        }
        self.to_link(ToLink::Send(NodeMsg::Applied { version }));
    }

    /// One scheduler turn: plays due within the dispatch horizon go to the playout;
    /// skipped plays are logged. `replan`: the desired state changed.
    pub fn tick(&mut self, replan: bool) {
        let Some(state) = self.desired.as_ref() else {
            return;
        };
        if replan {
            self.scheduler.replan();
            self.to_playout(PlayoutCmd::ClearPending);
        }
        let turn = self
            .scheduler
            .tick(state, self.clock.controller_ns(), &self.cache);
        for job in turn.jobs {
            tracing::debug!(schedule = ?job.schedule_id, start_ns = job.start_ns, "queued");
            self.to_playout(PlayoutCmd::Queue(job));
        }
        for entry in turn.skips {
            self.log(entry);
        }
        self.report_waiting(turn.waiting);
    }

    /// Tells the controller about emergencies held for their audio (once, and again when
    /// the reason changes).
    fn report_waiting(&mut self, waiting: Vec<PlayKey>) {
        self.waiting.retain(|k, _| waiting.contains(k));
        let why = match &self.fetch_error {
            Some(e) => format!("the audio could not be fetched yet ({e})"),
            None => "fetching the audio".to_string(),
        };
        for key in waiting {
            if self.waiting.get(&key) == Some(&why) {
                continue;
            }
            tracing::warn!(schedule = key.schedule_id, "emergency waiting: {why}");
            self.play_state(&key, PlayStage::Waiting, why.clone());
            self.waiting.insert(key, why.clone());
        }
    }

    /// A desired state that drops or stops the schedule on air ends its play now
    /// (an emergency ended by staff, a schedule deleted while it played).
    fn cut_if_withdrawn(&self, next: &protocol::desired::DesiredState) {
        let Some(id) = self.playout_status().playing.and_then(|p| p.schedule_id) else {
            return;
        };
        let now = chrono::DateTime::from_timestamp_nanos(self.clock.controller_ns());
        let (reason, completed) = match next.schedules.iter().find(|s| s.id == id) {
            None => ("its schedule was withdrawn", false),
            Some(s) if s.stopped_at.is_some_and(|t| t <= now) => {
                match s.program.items.iter().any(|i| i.live.is_some()) {
                    true => ("the live session ended", true),
                    false => ("stopped by the commune", false),
                }
            }
            Some(_) => return,
        };
        self.to_playout(PlayoutCmd::Cut {
            schedule_id: id,
            reason: reason.into(),
            completed,
        });
    }

    /// Says "playing" once the play's first sample has left the output (it is committed
    /// to the output's buffer a little earlier).
    fn on_air(&self, key: &PlayKey, leaves_ns: i64) {
        let Some(msg) = self.play_state_msg(key, PlayStage::Playing, String::new()) else {
            return;
        };
        let wait = (leaves_ns - self.clock.controller_ns()).clamp(0, 2_000_000_000);
        let to_link = self.links.to_link.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_nanos(wait as u64)).await;
            let _ = to_link.send(ToLink::Send(msg));
        });
    }

    /// Sends the controller where a scheduled play stands (not for commands' plays).
    fn play_state(&self, key: &PlayKey, state: PlayStage, message: String) {
        if let Some(msg) = self.play_state_msg(key, state, message) {
            self.to_link(ToLink::Send(msg));
        }
    }

    fn play_state_msg(&self, key: &PlayKey, state: PlayStage, message: String) -> Option<NodeMsg> {
        if key.schedule_id <= 0 {
            return None;
        }
        let priority = self
            .desired
            .as_ref()
            .and_then(|d| d.schedules.iter().find(|s| s.id == key.schedule_id))
            .map_or(Priority::Normal, |s| s.priority);
        Some(NodeMsg::PlayState {
            schedule_id: key.schedule_id,
            scheduled_at: chrono::DateTime::from_timestamp_nanos(key.scheduled_at_ns),
            priority,
            state,
            message,
        })
    }

    fn on_playout(&mut self, ev: PlayoutEvent) {
        match ev {
            PlayoutEvent::Started(key, leaves_ns, begun) => {
                if let Err(e) = blocking(|| self.journal.begin(begun)) {
                    tracing::error!("play log: {e}");
                    self.note_error(format!("play log: {e}"));
                }
                self.scheduler.started(&key);
                self.on_air(&key, leaves_ns);
            }
            PlayoutEvent::Ended(key, entry) => {
                let stage = match entry.outcome {
                    PlayOutcome::Failed | PlayOutcome::Skipped => PlayStage::Failed,
                    PlayOutcome::Completed | PlayOutcome::Interrupted => PlayStage::Ended,
                };
                let message = entry.reason.clone().unwrap_or_default();
                self.log(entry);
                self.play_state(&key, stage, message);
            }
        }
    }

    /// Appends to the journal (fsynced) and tells the link there is something to upload.
    pub(super) fn log(&mut self, entry: PlayLogEntry) {
        if let Err(e) = blocking(|| self.journal.append(entry)) {
            tracing::error!("play log: {e}");
            self.note_error(format!("play log: {e}"));
        }
        self.to_link(ToLink::LogsChanged);
    }

    fn save_clock(&mut self) {
        let (Some(e), Some(saved)) = (self.clock.estimate(), self.clock.saved()) else {
            return;
        };
        tracing::info!(
            offset_ms = saved.offset_ns as f64 / 1e6,
            drift_ppm = saved.drift_ppm,
            drift_measured = e.drift_measured,
            round_trip_ms = e.round_trip_ns as f64 / 1e6,
            samples = e.samples,
            "clock saved"
        );
        let mut settings = self.state.settings();
        settings.clock_offset_ns = Some(saved.offset_ns);
        settings.clock_saved_at_ns = saved.at_ns;
        settings.clock_drift_ppm = Some(saved.drift_ppm);
        if let Err(e) = blocking(|| self.state.save_settings(&settings)) {
            self.note_error(e.to_string());
        }
    }

    /// Stops the playout and waits for it; every event it sent is journalled.
    async fn shutdown(mut self, mut events: mpsc::UnboundedReceiver<PlayoutEvent>) {
        self.to_playout(PlayoutCmd::Shutdown);
        if let Some(thread) = self.playout_thread.take() {
            if let Err(e) = tokio::task::spawn_blocking(move || thread.join()).await {
                tracing::error!("playout thread: {}", AgentError::Task(e.to_string()));
            }
        }
        // The thread is gone, and with it the only sender: this ends.
        while let Some(ev) = events.recv().await {
            self.on_playout(ev);
        }
        self.save_clock();
    }

    pub(super) fn playout_status(&self) -> PlayoutStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
