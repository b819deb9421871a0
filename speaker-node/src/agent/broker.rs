//! The node link through MQTT brokers (`speaker-node run --broker URL[,URL...]`): the
//! same session as over the controller's WebSocket ([`super::link`]), over
//! [`protocol::mqtt::BrokerTransport`]. Several brokers are tried in turn, starting with
//! the one that last worked; the node's topics are the scope it was told at enrolment
//! (or `broker_scope`), and its hello carries its token for the controller to check.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use protocol::mqtt::{BrokerTransport, NodeBroker, Scope};

use super::config::AgentConfig;
use super::error::AgentError;
use super::link::LinkError;
use super::state::Identity;

/// No answer from a broker in this long: try the next.
const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

/// Where and who the node is on its brokers.
pub struct BrokerDial {
    urls: Vec<String>,
    /// The broker to try first: the one that last worked.
    next: AtomicUsize,
    node: NodeBroker,
}

impl BrokerDial {
    /// The brokers of `cfg`, if any, checked before anything starts; `mqtts://` ones are
    /// checked against the CA files among `trusted` besides the system's roots.
    pub fn from_config(
        cfg: &AgentConfig,
        id: &Identity,
        trusted: &[std::path::PathBuf],
    ) -> Result<Option<Self>, AgentError> {
        let configured = protocol::mqtt::configured(
            &cfg.broker,
            cfg.broker_username.as_ref(),
            cfg.broker_password.as_ref(),
        )
        .map_err(AgentError::Config)?;
        let Some(protocol::mqtt::broker::Brokers { urls, credentials }) = configured else {
            return Ok(None);
        };
        let scope = cfg.broker_scope.as_ref().or(id.broker_scope.as_ref()).ok_or_else(|| {
            AgentError::Config(
                "broker: the node's topics are unknown (enrolled with an older controller): set broker_scope = \"PREFIX/PROVINCE/COMMUNE\" or enrol again".into(),
            )
        })?;
        let scope = Scope::parse_str(scope)
            .map_err(|e| AgentError::Config(format!("broker_scope: {e}")))?;
        let client = match (&cfg.broker_cert_file, &cfg.broker_key_file) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            (None, None) => None,
            _ => {
                return Err(AgentError::Config(
                    "broker_cert_file and broker_key_file go together".into(),
                ));
            }
        };
        // Trust roots (read from disk) only where a broker speaks TLS.
        let tls_wanted = urls
            .iter()
            .any(|u| protocol::mqtt::parse_url(u).is_ok_and(|b| b.tls));
        let tls = match tls_wanted {
            true => Some(super::tls::broker_config(trusted, client)?),
            false => None,
        };
        Ok(Some(BrokerDial {
            node: NodeBroker {
                url: urls[0].clone(),
                scope,
                node_id: id.node_id,
                credentials,
                tls,
            },
            urls,
            next: AtomicUsize::new(0),
        }))
    }

    /// Connects to the first broker that answers, from the one that last worked.
    pub async fn dial(&self) -> Result<(BrokerTransport, Option<String>), LinkError> {
        let first = self.next.load(Ordering::Relaxed);
        let mut failed = Vec::new();
        for k in 0..self.urls.len() {
            let i = (first + k) % self.urls.len();
            let node = NodeBroker {
                url: self.urls[i].clone(),
                ..self.node.clone()
            };
            match tokio::time::timeout(DIAL_TIMEOUT, BrokerTransport::connect(&node)).await {
                Ok(Ok(t)) => {
                    self.next.store(i, Ordering::Relaxed);
                    tracing::info!(broker = %node.url, "broker connected");
                    return Ok((t, None));
                }
                Ok(Err(e)) => failed.push(format!("{}: {e}", node.url)),
                Err(_) => failed.push(format!(
                    "{}: no answer in {} s",
                    node.url,
                    DIAL_TIMEOUT.as_secs()
                )),
            }
        }
        Err(LinkError::Dial(failed.join("; ")))
    }
}
