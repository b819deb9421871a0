//! `speaker-node swarm`: N simulated nodes in one process, for proving a controller at
//! fleet scale. Each is created and enrolled through the API like a real board, then
//! speaks the real link: hello, clock exchanges on the agent's own schedule, heartbeats
//! every 10 s, the desired state acknowledged once its blobs are fetched, plays at their
//! resolved times with play states for emergencies and play logs uploaded until
//! acknowledged, commands answered, live audio frames counted. What it does not have is
//! a sound card or a disk: plays are timed, not rendered, and blobs are fetched once for
//! the whole swarm (checked against their hash) and shared, so 10,000 nodes do not need
//! 10,000 copies of each file (`--fetch each` fetches per node instead).
//!
//! Progress goes to stdout as one JSON object a line (`kind`: `enrolled`, `status`), for
//! the benchmark to read: how many are linked, when each desired-state version was
//! applied by how many, when each emergency was confirmed playing by how many.

mod sim;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use protocol::link::{EnrollRequest, EnrollResponse};
use serde_json::{Value, json};

use crate::agent::error::{AgentError, Result, chain};
use crate::agent::tls;
pub use sim::FetchMode;
use stats::Stats;

/// How a swarm runs.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    pub server: String,
    /// An admin's (or technician's) API token: nodes are added and enrolled with it.
    pub admin_token: String,
    pub count: usize,
    /// The village the nodes go in; `None`: a new one.
    pub village: Option<i64>,
    /// Node names are `PREFIX-1`...; default `swarm-<unix seconds>`.
    pub prefix: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub insecure_http: bool,
    pub fetch: FetchMode,
    /// Links opened per second at the start (a fleet powering up is not one instant).
    pub connect_rate: u32,
    /// Clock exchanges this often instead of the agent's own schedule.
    pub sync_every: Option<Duration>,
    /// Link the nodes through this MQTT broker (`mqtt://HOST:PORT`) instead.
    pub broker: Option<String>,
    pub report_every: Duration,
    /// Stop after this long (`None`: at SIGINT/SIGTERM).
    pub run_for: Option<Duration>,
}

/// Creates and enrols the nodes, runs them until stopped.
pub fn run(cfg: SwarmConfig) -> Result<()> {
    let server = cfg.server.trim_end_matches('/').to_owned();
    tls::check_url("server", &server, cfg.insecure_http)?;
    let tls_config = tls::client_config(&cfg.ca_file.iter().cloned().collect::<Vec<_>>())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AgentError::Runtime)?;
    rt.block_on(async move {
        let http = tls::http_client(
            &tls_config,
            reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(64),
        )?;
        let api = Api {
            http: http.clone(),
            server: server.clone(),
            token: cfg.admin_token.clone(),
        };
        let started = Instant::now();
        let village = match cfg.village {
            Some(v) => v,
            None => new_village(&api).await?,
        };
        let prefix = cfg
            .prefix
            .clone()
            .unwrap_or_else(|| format!("swarm-{}", chrono::Utc::now().timestamp()));
        let nodes: Vec<sim::Identity> = futures_util::stream::iter(1..=cfg.count)
            .map(|i| enrol(&api, village, format!("{prefix}-{i}")))
            .buffer_unordered(16)
            .try_collect()
            .await?;
        say(
            &json!({"kind": "enrolled", "nodes": nodes.len(), "village": village,
                    "ms": started.elapsed().as_millis() as u64, "at_ms": stats::now_ms()})
            .to_string(),
        );
        let stats = Arc::new(Stats::default());
        let ctx = Arc::new(sim::Ctx {
            server,
            tls: tls_config,
            http,
            fetch: cfg.fetch,
            stats: stats.clone(),
            blobs: Default::default(),
            sync_every: cfg.sync_every,
            broker: cfg.broker.clone(),
        });
        let gap = Duration::from_secs_f64(1.0 / f64::from(cfg.connect_rate.max(1)));
        let spawner = {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(gap);
                for node in nodes {
                    tick.tick().await;
                    tokio::spawn(sim::run(node, ctx.clone()));
                }
            })
        };
        let reporter = tokio::spawn(async move {
            let mut tick = tokio::time::interval(cfg.report_every);
            loop {
                tick.tick().await;
                say(&stats.report());
            }
        });
        match cfg.run_for {
            Some(d) => tokio::time::sleep(d).await,
            None => stop_signal().await,
        }
        spawner.abort();
        reporter.abort();
        Ok(())
    })
}

/// One line on stdout; a reader that went away is no reason to stop.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

async fn stop_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

/// The API as the admin whose token the swarm was given.
struct Api {
    http: reqwest::Client,
    server: String,
    token: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value, auth: bool) -> Result<Value> {
        let url = format!("{}{path}", self.server);
        let fail = |reason: String| AgentError::Http {
            url: url.clone(),
            reason,
        };
        let mut req = self.http.post(&url).json(&body);
        if auth {
            req = req.bearer_auth(&self.token);
        }
        let res = req.send().await.map_err(|e| fail(chain(&e)))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body["message"].as_str().unwrap_or_default().to_owned();
            return Err(fail(format!("{} {message}", status.as_u16())));
        }
        Ok(body)
    }
}

async fn new_village(api: &Api) -> Result<i64> {
    let name = format!("Thôn thử tải {}", chrono::Utc::now().format("%H%M%S"));
    let v = api
        .post("/api/v1/villages", json!({ "name": name }), true)
        .await?;
    v["id"]
        .as_i64()
        .ok_or_else(|| AgentError::Config(format!("the new village has no id: {v}")))
}

/// Adds a node through the API and enrols it with its one-time code.
async fn enrol(api: &Api, village: i64, name: String) -> Result<sim::Identity> {
    let created = api
        .post(
            "/api/v1/nodes",
            json!({ "name": name, "village_id": village }),
            true,
        )
        .await?;
    let code = created["enrollment_code"].as_str().unwrap_or_default();
    let req = serde_json::to_value(EnrollRequest { code: code.into() })
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let enrolled: EnrollResponse =
        serde_json::from_value(api.post("/api/v1/nodes/enroll", req, false).await?)
            .map_err(|e| AgentError::Config(format!("unexpected enrolment answer: {e}")))?;
    Ok(sim::Identity {
        node_id: enrolled.node_id,
        token: enrolled.token,
        scope: enrolled.broker_scope,
    })
}
