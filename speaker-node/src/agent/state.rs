//! The node's state directory: everything it needs to play with no link, written so that a
//! power cut leaves either the old or the new version of each file.
//!
//! ```text
//! STATE/token          node token (0600)
//! STATE/node.json      server URL, node id and name (from enrolment)
//! STATE/desired.json   the last desired state applied
//! STATE/settings.json  volume set remotely, last clock offset
//! STATE/cache/         blobs by SHA-256 (see cache.rs)
//! STATE/playlog/       the durable play log (see journal.rs)
//! ```

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use protocol::desired::DesiredState;
use serde::{Deserialize, Serialize};

use super::error::{AgentError, Result};
use crate::write_atomic;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub server: String,
    pub node_id: i64,
    pub name: String,
    /// The node's topics on an MQTT broker, as the controller told them at enrolment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_scope: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub volume: Option<u8>,
    /// The controller clock as last disciplined (`agent::clock::SavedClock`).
    pub clock_offset_ns: Option<i64>,
    pub clock_saved_at_ns: Option<i64>,
    pub clock_drift_ppm: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens (creating) the directory. Everything the agent writes from then on (token,
    /// schedule, cache, play log) is its own user's alone (umask 077).
    pub fn open(root: &Path) -> Result<Self> {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        for dir in [root.to_path_buf(), root.join("cache"), root.join("playlog")] {
            std::fs::create_dir_all(&dir).map_err(|e| AgentError::file(&dir, e))?;
        }
        Ok(StateDir {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub fn playlog_dir(&self) -> PathBuf {
        self.root.join("playlog")
    }

    fn read_json<T: for<'a> Deserialize<'a>>(&self, name: &str) -> Result<Option<T>> {
        let path = self.root.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| AgentError::Damaged {
                        path,
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AgentError::file(path, e)),
        }
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let path = self.root.join(name);
        let body = serde_json::to_vec_pretty(value).map_err(|e| AgentError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(write_atomic(&path, &body)?)
    }

    /// The enrolment: identity and token (the token file readable by its owner only).
    pub fn save_enrolment(&self, identity: &Identity, token: &str) -> Result<()> {
        self.write_private("token", token.as_bytes())?;
        self.write_json("node.json", identity)
    }

    /// Writes a file readable by its owner only, whole or not at all.
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.root.join(name);
        let tmp = self.root.join(format!("{name}.tmp"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| AgentError::file(&tmp, e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| AgentError::file(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| AgentError::file(&path, e))?;
        crate::sync_dir(&path);
        Ok(())
    }

    pub fn identity(&self) -> Result<(Identity, String)> {
        let not_enrolled = || AgentError::NotEnrolled(self.root.clone());
        let identity: Identity = self.read_json("node.json")?.ok_or_else(not_enrolled)?;
        let path = self.root.join("token");
        let token = std::fs::read_to_string(&path).map_err(|_| not_enrolled())?;
        Ok((identity, token.trim().to_string()))
    }

    pub fn desired(&self) -> Result<Option<DesiredState>> {
        self.read_json("desired.json")
    }

    pub fn save_desired(&self, state: &DesiredState) -> Result<()> {
        self.write_json("desired.json", state)
    }

    pub fn settings(&self) -> Settings {
        self.read_json("settings.json")
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    pub fn save_settings(&self, s: &Settings) -> Result<()> {
        self.write_json("settings.json", s)
    }
}
