//! The node agent (`speaker-node run`): plays the village's schedule on time with or
//! without a link.
//!
//! ```text
//!                 link task (session over a Transport: WebSocket)
//!  controller <──── hello, pings, heartbeats, play logs, applied, command results
//!             ────> pongs, desired states, commands, acks
//!                        │ AgentCmd                     ^ ToLink
//!                        v                              │
//!                 owner task (core: desired state, scheduler, journal, health)
//!                  │ wanted (watch)       │ PlayoutCmd (jobs 3 s ahead)   ^ PlayoutEvent
//!                  v                      v                               │
//!            fetcher task           playout thread (continuous output, frame-exact starts)
//!            (cache by SHA-256)                       └──> sink (sound card | wav card | null)
//! ```
//!
//! - [`owner`]: the owner task and its handle; [`commands`]: remote commands;
//!   [`health`]: the heartbeat. [`scheduler`] and [`playout`]: what plays when.
//! - [`link`]: the session logic, over [`protocol::transport::Transport`];
//!   [`websocket`] and [`broker`] (MQTT): the carriers. [`fetcher`] and [`cache`]: blobs.
//! - [`clock`]: the node's clock (an injected host clock with the test knobs) and the
//!   controller offset. [`state`]: the state directory; [`journal`]: the play log.
//! - [`config`], [`error`], [`amp`] (amplifier power), [`enroll`].

pub mod amp;
pub mod broker;
pub mod cache;
pub mod clock;
pub mod commands;
pub mod config;
pub mod enroll;
pub mod error;
pub mod fetcher;
mod health;
pub mod journal;
pub mod link;
pub mod live;
pub mod owner;
pub mod playout;
pub mod relay;
pub mod scheduler;
pub mod state;
pub mod tls;
pub mod websocket;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};

pub use config::AgentConfig;
pub use error::{AgentError, chain};

use crate::output::{AudioFormat, OutputSpec};
use amp::{AmpConfig, Amplifier};
use cache::BlobCache;
use clock::NodeClock;
use fetcher::{FetchLoop, Fetcher};
use journal::PlayJournal;
use link::LinkContext;
use owner::{AgentCmd, AgentCore, AgentHandle, CoreLinks, CoreParts};
use state::StateDir;

/// How `run` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM / Ctrl-C, or standard input closed (with `stop_on_stdin_eof`).
    Stopped,
    /// A technician asked for a restart (the service manager starts us again).
    Restart,
}

/// What `run` reads from the state directory before it starts anything.
struct Stored {
    state: StateDir,
    identity: state::Identity,
    token: String,
    desired: Option<protocol::desired::DesiredState>,
    settings: state::Settings,
    journal: PlayJournal,
    cache: Arc<BlobCache>,
}

impl Stored {
    fn open(cfg: &AgentConfig) -> Result<Self, AgentError> {
        let state = StateDir::open(&cfg.state)?;
        let (identity, token) = state.identity()?;
        Ok(Stored {
            desired: state.desired()?,
            settings: state.settings(),
            journal: PlayJournal::open(&state.playlog_dir())?,
            cache: Arc::new(BlobCache::open(state.cache_dir())?),
            state,
            identity,
            token,
        })
    }
}

/// Runs the agent until it is stopped; every failure to start is one line for stderr.
pub fn run(cfg: AgentConfig) -> Result<Exit, AgentError> {
    let output: OutputSpec = cfg.output.parse()?;
    let stored = Stored::open(&cfg)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(AgentError::Runtime)?;
    rt.block_on(serve(cfg, output, stored))
}

async fn serve(cfg: AgentConfig, output: OutputSpec, stored: Stored) -> Result<Exit, AgentError> {
    let clock = Arc::new(
        NodeClock::new(
            protocol::time::host(),
            cfg.clock_offset_ms,
            cfg.clock_drift_ppm,
            stored
                .settings
                .clock_offset_ns
                .map(|offset_ns| clock::SavedClock {
                    offset_ns,
                    at_ns: stored.settings.clock_saved_at_ns,
                    drift_ppm: stored.settings.clock_drift_ppm.unwrap_or(0.0),
                }),
        )
        .set_later(cfg.clock_step_after_s, cfg.clock_step_ms),
    );
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let live = Arc::new(live::LiveFeed::default());
    let playout = playout::spawn(
        playout_config(&cfg, output, &stored, live.clone()),
        clock.clone(),
        events_tx,
    )
    .map_err(AgentError::Runtime)?;
    let server = cfg.server.clone().unwrap_or(stored.identity.server.clone());
    tls::check_url("server", &server, cfg.insecure_http)?;
    if let Some(mirror) = &cfg.content_base_url {
        tls::check_url("content_base_url", mirror, cfg.insecure_http)?;
    }
    let mut trusted = vec![stored.state.root().join(tls::STATE_CA)];
    trusted.extend(cfg.ca_file.clone());
    let tls = tls::client_config(&trusted)?;
    let brokers = broker::BrokerDial::from_config(&cfg, &stored.identity, &trusted)?;
    let fetcher = fetcher(&cfg, &stored, &server, &tls)?;
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let handle = AgentHandle::new(cmd_tx);
    let (to_link, outbox) = mpsc::unbounded_channel();
    let (wanted, wanted_rx) = watch::channel(None);
    let (exit, exit_rx) = watch::channel(None);
    let fetch_now = Arc::new(Notify::new());
    let quota = cfg.cache_quota_mb.saturating_mul(1_000_000);
    let core = AgentCore::new(
        CoreParts {
            node_id: stored.identity.node_id,
            state: stored.state,
            clock: clock.clone(),
            cache: stored.cache,
            journal: stored.journal,
            desired: stored.desired,
            playout,
            fetcher: fetcher.clone(),
            output_name: cfg.output.clone(),
            cache_quota_bytes: quota,
        },
        CoreLinks {
            handle: handle.clone(),
            to_link,
            wanted,
            fetch_now: fetch_now.clone(),
            exit: exit.clone(),
        },
    );
    tracing::info!(node = stored.identity.node_id, name = %stored.identity.name, "agent started");
    let owner = tokio::spawn(core.run(cmd_rx, events_rx));
    let fetch = FetchLoop {
        fetcher,
        clock: clock.clone(),
        wanted: wanted_rx,
        fetch_now,
        agent: handle.clone(),
        quota_bytes: quota,
    };
    tokio::spawn(fetch.run());
    let mut ctx = LinkContext {
        agent: handle.clone(),
        clock,
        dead_after_ms: cfg.link_dead_after_ms,
        live,
        hello_token: None,
    };
    let token = stored.token;
    let link = match brokers {
        Some(brokers) => {
            // No socket carries the token to the controller: the hello does.
            ctx.hello_token = Some(token);
            let brokers = Arc::new(brokers);
            let dial = move || {
                let brokers = brokers.clone();
                async move { brokers.dial().await }
            };
            tokio::spawn(link::run(ctx, outbox, dial))
        }
        None => {
            let dial = move || {
                let (server, token, tls) = (server.clone(), token.clone(), tls.clone());
                async move { websocket::dial(&server, &token, tls).await }
            };
            tokio::spawn(link::run(ctx, outbox, dial))
        }
    };
    if cfg.stop_on_stdin_eof {
        stop_when_stdin_closes(exit);
    }
    Ok(stop(exit_rx, link, handle, owner).await)
}

/// Waits for a signal or a restart command, then stops: the link first, then the owner,
/// which stops the playout and journals everything it logged on its way out.
async fn stop(
    mut exit_rx: watch::Receiver<Option<Exit>>,
    link: tokio::task::JoinHandle<()>,
    handle: AgentHandle,
    owner: tokio::task::JoinHandle<()>,
) -> Exit {
    let how = tokio::select! {
        _ = shutdown_signal() => Exit::Stopped,
        how = exit_rx.wait_for(Option::is_some) => how.ok().and_then(|h| *h).unwrap_or(Exit::Stopped),
    };
    tracing::info!(?how, "stopping");
    link.abort();
    handle.send(AgentCmd::Shutdown);
    if let Err(e) = owner.await {
        tracing::error!("owner task: {e}");
    }
    how
}

/// Blobs come from the controller with the node token, or from a mirror without it: a
/// mirror is content-addressed (every blob is checked against its hash) and must never
/// see a secret that would let it pass for the node.
fn fetcher(
    cfg: &AgentConfig,
    stored: &Stored,
    server: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Fetcher, AgentError> {
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60));
    let (base, token) = match &cfg.content_base_url {
        Some(mirror) => (mirror.clone(), None),
        None => (server.to_owned(), Some(stored.token.clone())),
    };
    Ok(Fetcher {
        http: tls::http_client(tls, builder)?,
        base,
        token,
        cache: stored.cache.clone(),
    })
}

/// A supervisor that owns the node (the demo) ends it by exiting, even when killed: its
/// end of our standard input closes.
fn stop_when_stdin_closes(exit: watch::Sender<Option<Exit>>) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = exit.send(Some(Exit::Stopped));
    });
}

fn playout_config(
    cfg: &AgentConfig,
    output: OutputSpec,
    stored: &Stored,
    live: Arc<live::LiveFeed>,
) -> playout::PlayoutConfig {
    let format = AudioFormat {
        sample_rate: cfg.card_rate.clamp(8_000, 192_000),
        channels: cfg.card_channels.clamp(1, 8),
    };
    let drift_ppm = cfg.clock_drift_ppm;
    playout::PlayoutConfig {
        open: Box::new(move || output.open_clocked(format, drift_ppm)),
        output_name: cfg.output.clone(),
        volume: stored.settings.volume.unwrap_or(cfg.volume),
        emergency_volume: cfg.emergency_volume.min(100),
        live,
        amp: Amplifier::new(AmpConfig {
            on_command: cfg.amplifier_on_command.clone(),
            off_command: cfg.amplifier_off_command.clone(),
            lead_ms: cfg.amplifier_lead_ms,
            tail_ms: cfg.amplifier_tail_ms,
        }),
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

#[cfg(test)]
mod tests;
