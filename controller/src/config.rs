//! `controller serve` settings: a TOML file (`--config`, see packaging/controller.toml),
//! then `LOA_*` environment variables and flags over it. [`ControllerConfig::default`] is
//! the one place defaults live.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControllerConfig {
    /// Database (loa.db) and audio blobs.
    pub data: PathBuf,
    pub listen: SocketAddr,
    /// https on the listener itself: a PEM certificate chain and its private key. Without
    /// them the listener is plain http (for a TLS proxy in front, or this machine only).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Seconds a client has to send a request's head (slow or silent ones are let go).
    pub header_timeout_s: u64,
    pub max_upload_mb: u64,
    /// Text-to-speech command template; {voice} and {out} are replaced, text on stdin.
    pub tts_command: Option<String>,
    /// Slug of the commune a new data directory starts with.
    pub commune: String,
    /// Gets a JSON POST on every node online/offline transition.
    pub webhook_url: Option<String>,
    /// A node silent this long is marked offline (three missed heartbeats by default).
    pub node_offline_after_s: u64,
    /// The address staff use, e.g. https://loa.xa-ha-long.vn (behind a TLS proxy): an
    /// https URL makes session cookies `Secure`.
    pub public_url: Option<String>,
    /// `Secure` cookies whatever the public URL says (`None`: from the public URL).
    pub secure_cookies: Option<bool>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (e.g. ["127.0.0.1"] with
    /// nginx on this machine): login limits then count clients, not the proxy.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Live ingest: broadcast tools send to /live/{village} as `source:PASSWORD`; none,
    /// no live ingest.
    pub source_password: Option<String>,
    /// A source sending with this password instead speaks at emergency level: it takes a
    /// mount a normal source holds, cuts into everything, and counts its reach as an
    /// emergency (for a provincial or district warning feed).
    pub emergency_source_password: Option<String>,
    /// Live audio: from encoding to every node's output, this many ms.
    pub live_buffer_ms: u64,
    /// Alert emails go through this relay, `smtp://host:port` (none: no email).
    pub smtp_url: Option<String>,
    /// The sender of alert emails.
    pub mail_from: String,
    /// Seconds between alert rounds.
    pub alert_interval_s: u64,
    /// MQTT brokers (`mqtt://HOST[:PORT]`, tried in turn) to serve nodes through, beside
    /// the WebSocket link. Empty: WebSocket only.
    pub broker: Vec<String>,
    /// `PREFIX/PROVINCE`: the province's topics on the broker (each commune's below, by
    /// its slug). Nodes learn it when they enrol.
    pub broker_topic_root: String,
    /// The controller's user and password on the broker, if it asks for them.
    pub broker_username: Option<String>,
    pub broker_password: Option<String>,
    /// A CA certificate (PEM) to trust for `mqtts://` brokers besides the system's.
    pub broker_ca_file: Option<PathBuf>,
}

/// The CMS's own defaults ([`cms::CmsConfig::default`]) are the ones used here: one
/// place for each.
impl Default for ControllerConfig {
    fn default() -> Self {
        let cms = cms::CmsConfig::default();
        ControllerConfig {
            data: cms.data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            header_timeout_s: crate::ListenOptions::default().header_timeout.as_secs(),
            max_upload_mb: cms.max_upload_bytes / 1_000_000,
            tts_command: None,
            commune: cms.commune_slug,
            webhook_url: None,
            node_offline_after_s: cms.node_offline_after_ms / 1000,
            public_url: None,
            secure_cookies: None,
            trusted_proxies: Vec::new(),
            source_password: None,
            emergency_source_password: None,
            live_buffer_ms: crate::live::LiveConfig::default().buffer_ms,
            smtp_url: None,
            mail_from: crate::alerts::AlertConfig::default().mail_from,
            alert_interval_s: crate::alerts::AlertConfig::default().interval.as_secs(),
            broker: Vec::new(),
            broker_topic_root: cms.broker_topic_root,
            broker_username: None,
            broker_password: None,
            broker_ca_file: None,
        }
    }
}

impl ControllerConfig {
    /// The file's settings over the defaults; no file, the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))
    }

    pub fn cms(&self) -> cms::CmsConfig {
        let mut c = cms::CmsConfig {
            data_dir: self.data.clone(),
            ..cms::CmsConfig::default()
        };
        c.max_upload_bytes = self.max_upload_mb.saturating_mul(1_000_000);
        if let Some(cmd) = &self.tts_command {
            c.tts_command = cmd.split_whitespace().map(str::to_owned).collect();
        }
        c.commune_slug = self.commune.clone();
        c.node_offline_after_ms = self.node_offline_after_s.max(1).saturating_mul(1000);
        let https = self
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        c.secure_cookies = self.secure_cookies.unwrap_or(https);
        c.public_url = self.public_url.clone();
        c.trusted_proxies = self.trusted_proxies.clone();
        c.broker_topic_root = self.broker_topic_root.clone();
        c
    }

    /// The broker link's settings, if brokers are configured.
    pub fn broker(&self) -> Result<Option<crate::hub::broker::BrokerConfig>, String> {
        let Some(protocol::mqtt::broker::Brokers { urls, credentials }) =
            protocol::mqtt::configured(
                &self.broker,
                self.broker_username.as_ref(),
                self.broker_password.as_ref(),
            )?
        else {
            return Ok(None);
        };
        let root = protocol::mqtt::Root::parse_str(&self.broker_topic_root)
            .map_err(|e| format!("broker_topic_root {:?}: {e}", self.broker_topic_root))?;
        let tls = crate::tls::client_config(self.broker_ca_file.as_deref())?;
        Ok(Some(crate::hub::broker::BrokerConfig {
            urls,
            root,
            credentials,
            tls,
        }))
    }

    pub fn hub(&self) -> crate::hub::HubConfig {
        crate::hub::HubConfig {
            webhook: self.webhook_url.clone(),
            live: crate::live::LiveConfig {
                source_password: self.source_password.clone().filter(|p| !p.is_empty()),
                emergency_source_password: self
                    .emergency_source_password
                    .clone()
                    .filter(|p| !p.is_empty()),
                buffer_ms: self.live_buffer_ms.clamp(60, 5_000),
                ..crate::live::LiveConfig::default()
            },
            alerts: crate::alerts::AlertConfig {
                interval: std::time::Duration::from_secs(self.alert_interval_s.max(1)),
                smtp_url: self.smtp_url.clone().filter(|u| !u.is_empty()),
                mail_from: self.mail_from.clone(),
            },
            ..crate::hub::HubConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses_and_unknown_keys_are_refused() {
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/controller.toml");
        let c = ControllerConfig::load(Some(&template)).unwrap();
        assert_eq!(c.data, PathBuf::from("/var/lib/loa"));
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "listne = \"x\"\n").unwrap();
        let err = ControllerConfig::load(Some(&bad)).unwrap_err();
        assert!(err.contains("listne"), "{err}");
    }

    #[test]
    fn cookies_are_secure_behind_an_https_public_url_unless_told_otherwise() {
        let mut c = ControllerConfig::default();
        assert!(!c.cms().secure_cookies);
        c.public_url = Some("https://loa.xa-ha-long.vn".into());
        assert!(c.cms().secure_cookies);
        c.secure_cookies = Some(false);
        assert!(!c.cms().secure_cookies);
        c.public_url = Some("http://10.0.0.2:8080".into());
        c.secure_cookies = Some(true);
        assert!(c.cms().secure_cookies);
    }
}
