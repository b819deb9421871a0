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
    pub max_upload_mb: u64,
    /// Text-to-speech command template; {voice} and {out} are replaced, text on stdin.
    pub tts_command: Option<String>,
    /// Slug of the commune a new data directory starts with.
    pub commune: String,
    /// Gets a JSON POST on every node online/offline transition.
    pub webhook_url: Option<String>,
    /// A node silent this long is marked offline (three missed heartbeats by default).
    pub node_offline_after_s: u64,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            data: PathBuf::from("data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_upload_mb: 200,
            tts_command: None,
            commune: "default".into(),
            webhook_url: None,
            node_offline_after_s: protocol::link::OFFLINE_AFTER_MS / 1000,
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
        c
    }

    pub fn hub(&self) -> crate::hub::HubConfig {
        crate::hub::HubConfig {
            webhook: self.webhook_url.clone(),
            offline_after_ms: self.node_offline_after_s.max(1).saturating_mul(1000),
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
}
