//! Prometheus metrics (`GET /metrics`, text format). What is counted as it happens lives
//! here (request latency by route, play logs by outcome); what is a state (nodes by
//! status, downloads pending, sessions) is read at each scrape.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Cms;
use crate::error::Result;
use crate::service::fleet;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The route's pattern (`/api/v1/nodes/{id}`), never the raw path.
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    commune: String,
    village: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

fn latency() -> Histogram {
    // 0.5 ms .. ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The metrics counted as they happen.
pub struct Metrics {
    requests: Family<RouteLabels, Histogram, fn() -> Histogram>,
    plays: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Family::new_with_constructor(latency),
            plays: Family::default(),
        }
    }
}

impl Metrics {
    pub fn request(&self, labels: RouteLabels, seconds: f64) {
        self.requests.get_or_create(&labels).observe(seconds);
    }

    /// Play logs stored (new ones only), by outcome.
    pub fn plays(&self, outcome: &str, n: u64) {
        self.plays
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc_by(n);
    }
}

impl Cms {
    /// Everything, in the Prometheus text format.
    pub async fn metrics_text(&self) -> Result<String> {
        let m = &self.inner.metrics;
        let mut r = Registry::with_prefix("loa");
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        r.register("build_info", "The controller's version", build);
        r.register(
            "http_request_duration_seconds",
            "HTTP requests by route, method and status",
            m.requests.clone(),
        );
        r.register(
            "plays",
            "Play logs received from nodes, by outcome",
            m.plays.clone(),
        );

        let nodes = Family::<NodeLabels, Gauge>::default();
        let pending = Gauge::<i64>::default();
        for (commune, village, n) in self.all_nodes().await? {
            let (status, _) = fleet::status(&n);
            nodes
                .get_or_create(&NodeLabels {
                    commune: commune.clone(),
                    village,
                    status: status.as_str().to_owned(),
                })
                .inc();
            if n.online {
                pending.inc_by(
                    n.health
                        .as_ref()
                        .map_or(0, |h| h.missing_blobs.len() as i64),
                );
            }
        }
        r.register(
            "nodes",
            "Speaker nodes by commune, village and status",
            nodes,
        );
        r.register(
            "content_downloads_pending",
            "Scheduled items online nodes still have to download",
            pending,
        );
        let sessions = Gauge::<i64>::default();
        sessions.set(self.inner.fleet.as_ref().map_or(0, |f| f.sessions() as i64));
        r.register("node_link_sessions", "Node links connected now", sessions);
        let live = Gauge::<i64>::default();
        live.set(self.live_on_air_count().await? as i64);
        r.register("live_sessions", "Live sessions on air now", live);

        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r)
            .map_err(|e| crate::CmsError::Storage(format!("metrics: {e}")))?;
        Ok(out)
    }
}
