//! The Loa Làng CMS: what commune staff work with.
//!
//! ```text
//! http (warp: REST API + web UI + OpenAPI)  ->  service (Cms: rules, approval, audit)
//!                                           ->  store (SQLite)  +  blobs (files by SHA-256)
//! ```
//!
//! - [`store`]: the SQLite database (rusqlite, WAL, migrations); errors become [`CmsError`].
//! - [`blobs`]: audio files addressed by SHA-256, written atomically.
//! - [`media`]: the upload check — the node's decoder decodes every upload in full and
//!   EBU R128 loudness is measured — and [`tts`] for typed announcements.
//! - [`auth`]: passwords, sessions, tokens, roles and permissions, login rate limits.
//! - `service`: the operations staff perform ([`Cms`] methods), each checked against the
//!   caller's role and commune and written to the audit log with its before/after.
//! - [`http`]: every route in one table, the JSON API, the web UI and the OpenAPI document.
//!
//! The `controller` binary mounts [`http::routes`] and owns the process.

pub mod auth;
pub mod blobs;
pub mod collate;
mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod hot_blobs;
pub mod http;
pub mod i18n;
pub mod media;
pub mod metrics;
pub mod model;
mod service;
pub mod store;
pub mod tts;
mod ui;

use std::sync::Arc;

pub use config::{CmsConfig, DEFAULT_TOPIC_ROOT};
pub use error::{CmsError, Result, Text};
pub use service::alerts;
pub use service::{
    CommandRequest, CommandResponse, ContentPatch, EMERGENCY_LEAD_MS, EmergencyRequest,
    EmergencyTargets, EnrollRequest, EnrollResponse, FleetLink, LIVE_MAX_MS, LiveStart,
    NODE_TOKEN_PREFIX, NewUserRequest, NodeRequest, PreviewPlay, PreviewTarget, ScheduleRequest,
    UploadMeta, VILLAGE_KINDS,
};

/// A node record request (for seeding and tools).
pub fn service_node_request(name: String, village_id: i64, lat: f64, lon: f64) -> NodeRequest {
    NodeRequest {
        name,
        village_id,
        lat: Some(lat),
        lon: Some(lon),
        notes: None,
    }
}

use auth::Limiter;
use blobs::BlobStore;
use store::Store;

/// Entries the fleet's caches (node identities, approved blobs) hold before starting
/// afresh: a province's fleet.
const FLEET_CACHE_MAX: usize = 100_000;

/// The CMS: storage plus the rules staff work under. Cheap to clone.
#[derive(Clone)]
pub struct Cms {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    blobs: BlobStore,
    config: CmsConfig,
    /// Failed logins (per user at an address, per address)...
    limiter: Limiter,
    /// ...and failed enrolments, counted apart.
    enrol_limiter: Limiter,
    /// Password hashes running at once (argon2 takes ~19 MB and a core's worth each):
    /// a burst of logins waits its turn instead of taking the server's memory.
    hashing: auth::HashPool,
    default_commune: i64,
    /// Bumped by every write that can change what plays where (see `write`).
    generation: std::sync::atomic::AtomicU64,
    /// The generation again, for those who wait on it (node sessions push at once).
    generation_tx: tokio::sync::watch::Sender<u64>,
    /// Moves on whenever an emergency or a node's reach of one changes.
    emergencies_tx: tokio::sync::watch::Sender<u64>,
    preview_cache: service::PreviewCache,
    /// How staff actions reach live node sessions (commands, revocation): the
    /// controller's session registry, given at open; `None` where no hub runs (tools,
    /// tests), and commands then report "not delivered".
    fleet: Option<Arc<dyn FleetLink>>,
    /// Request latency and play counts for `/metrics`.
    metrics: metrics::Metrics,
    /// When health history was last pruned (Unix seconds).
    history_pruned: std::sync::atomic::AtomicI64,
    /// Heartbeats for their batch's write (node, health, Unix seconds).
    heard: Arc<service::Batcher<(i64, Option<String>, i64)>>,
    /// Emergency reach reports for theirs.
    reach: Arc<service::Batcher<service::ReachReport>>,
    /// Nodes' "applied" answers (node, version) for theirs.
    applied: Arc<service::Batcher<(i64, String)>>,
    /// What nodes were sent, for theirs.
    sent: Arc<service::Batcher<service::SentRecord>>,
    /// Nodes by token hash, for as long as no token was revoked and no node changed
    /// (`token_epoch`): a fleet fetching a new item all at once asks a thousand times.
    node_ids: service::ByGeneration<String, store::node_link::NodeIdentity>,
    token_epoch: std::sync::atomic::AtomicU64,
    /// (commune, hash) of blobs approved there, for the generation.
    approved_blobs: service::ByGeneration<(i64, String), ()>,
    /// Nodes a broker reported gone (their last will), and when: offline from then until
    /// heard from again, not only once silent for the threshold.
    gone: std::sync::Mutex<std::collections::HashMap<i64, chrono::DateTime<chrono::Utc>>>,
}

impl Cms {
    /// Opens the data directory (database, blobs), applying migrations and making sure the
    /// default commune exists.
    pub fn open(config: CmsConfig) -> Result<Cms> {
        Self::open_inner(config, None)
    }

    /// [`Cms::open`] with the link to live node sessions (the controller's hub registry).
    pub fn open_with_fleet(config: CmsConfig, fleet: Arc<dyn FleetLink>) -> Result<Cms> {
        Self::open_inner(config, Some(fleet))
    }

    fn open_inner(config: CmsConfig, fleet: Option<Arc<dyn FleetLink>>) -> Result<Cms> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            CmsError::Storage(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let store = Store::open(&config.data_dir.join("loa.db"))?;
        let blobs = BlobStore::open(config.data_dir.join("blobs"))?;
        let commune = store.call_sync(|c| {
            store::ensure_commune_for_config(c, &config.commune_slug, &config.commune_name)
        })?;
        Ok(Cms {
            inner: Arc::new(Inner {
                store,
                blobs,
                config,
                limiter: Limiter::default(),
                enrol_limiter: Limiter::default(),
                hashing: auth::HashPool::new(
                    std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
                ),
                default_commune: commune,
                generation: std::sync::atomic::AtomicU64::new(0),
                generation_tx: tokio::sync::watch::Sender::new(0),
                emergencies_tx: tokio::sync::watch::Sender::new(0),
                preview_cache: service::PreviewCache::default(),
                fleet,
                metrics: metrics::Metrics::default(),
                history_pruned: std::sync::atomic::AtomicI64::new(0),
                heard: Arc::default(),
                reach: Arc::default(),
                applied: Arc::default(),
                sent: Arc::default(),
                node_ids: service::ByGeneration::new(FLEET_CACHE_MAX),
                token_epoch: std::sync::atomic::AtomicU64::new(0),
                gone: std::sync::Mutex::default(),
                approved_blobs: service::ByGeneration::new(FLEET_CACHE_MAX),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }
    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }
    pub fn config(&self) -> &CmsConfig {
        &self.inner.config
    }
    pub fn default_commune(&self) -> i64 {
        self.inner.default_commune
    }

    /// Changes whenever content, schedules or places change.
    pub fn generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// A database write that can change what plays where: runs `f`, then moves the
    /// generation on (also on failure: harmless, and never stale).
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        let result = self.store().call(f).await;
        let generation = self
            .inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1;
        self.inner.generation_tx.send_replace(generation);
        result
    }

    /// Wakes when the generation moves (a node session then recomputes its state).
    pub fn watch_generation(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.generation_tx.subscribe()
    }

    /// Wakes when an emergency, or a node's reach of one, changes.
    pub fn watch_emergencies(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.emergencies_tx.subscribe()
    }

    pub(crate) fn emergencies_changed(&self) {
        self.inner.emergencies_tx.send_modify(|n| *n += 1);
    }
}
