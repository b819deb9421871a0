//! The fetcher task: keeps the cache holding what the desired state needs — what the next
//! [`NEEDED_DAYS`](super::scheduler::NEEDED_DAYS) play first, nearest first, then the
//! rest — and evicts beyond the quota (never what those days need). It works from the
//! desired state the owner publishes, reports what is still missing back to the owner,
//! and retries failures with backoff.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use protocol::desired::DesiredState;
use tokio::sync::{Notify, watch};

use super::cache::{BlobCache, FetchError};
use super::clock::NodeClock;
use super::owner::{AgentCmd, AgentHandle};
use super::scheduler;

/// With everything cached, look again this often (the day moves on).
const IDLE_RECHECK: Duration = Duration::from_secs(60);

/// Downloads blobs into the cache. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    pub http: reqwest::Client,
    /// Where blobs come from: the controller, or a mirror/CDN.
    pub base: String,
    /// The node token, for the controller only (`None` for a mirror).
    pub token: Option<String>,
    pub cache: Arc<BlobCache>,
}

impl Fetcher {
    pub async fn fetch(&self, sha256: &str) -> Result<(), FetchError> {
        self.cache
            .fetch(&self.http, &self.base, self.token.as_deref(), sha256)
            .await
    }
}

/// The fetcher's inputs.
pub struct FetchLoop {
    pub fetcher: Fetcher,
    pub clock: Arc<NodeClock>,
    pub wanted: watch::Receiver<Option<Arc<DesiredState>>>,
    pub fetch_now: Arc<Notify>,
    pub agent: AgentHandle,
    pub quota_bytes: u64,
}

impl FetchLoop {
    pub async fn run(mut self) {
        let mut failures = 0u32;
        loop {
            let desired = self.wanted.borrow_and_update().clone();
            let ok = self.round(desired.as_deref()).await;
            failures = if ok { 0 } else { failures + 1 };
            let wait = match failures {
                0 => IDLE_RECHECK,
                n => Duration::from_secs(2u64.pow(n.min(5))),
            };
            tokio::select! {
                changed = self.wanted.changed() => if changed.is_err() { return },
                _ = self.fetch_now.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Fetches what is missing, nearest first, then evicts; false after a failure.
    async fn round(&self, desired: Option<&DesiredState>) -> bool {
        let (soon, later) = match desired {
            Some(s) => scheduler::needed_blobs(s, self.clock.controller_ns()),
            None => (Vec::new(), Vec::new()),
        };
        let mut missing: Vec<String> = soon
            .iter()
            .chain(later.iter())
            .filter(|s| !self.fetcher.cache.has(s))
            .cloned()
            .collect();
        self.agent.send(AgentCmd::Missing(missing.clone()));
        let mut ok = true;
        while let Some(sha) = missing.first().cloned() {
            match self.fetcher.fetch(&sha).await {
                Ok(()) => {
                    tracing::info!(%sha, "blob cached");
                    missing.remove(0);
                    self.agent.send(AgentCmd::Missing(missing.clone()));
                }
                Err(e) => {
                    self.agent.send(AgentCmd::Error(format!("fetch: {e}")));
                    ok = false;
                    break;
                }
            }
        }
        let keep: HashSet<String> = soon.into_iter().collect();
        let removed = self.fetcher.cache.evict(self.quota_bytes, &keep);
        if !removed.is_empty() {
            tracing::info!(count = removed.len(), "evicted from the cache");
        }
        ok
    }
}
