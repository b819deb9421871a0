//! `speaker-node run` settings: a TOML file, then environment and flags over it.
//! [`AgentConfig::default`] is the one place the defaults live.

use std::path::PathBuf;

use protocol::link::DEAD_AFTER_MS;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The state directory (token, desired state, cache, play log).
    pub state: PathBuf,
    /// The controller; default: the one the node enrolled with.
    pub server: Option<String>,
    /// Where blobs come from (a mirror or CDN); default: the controller.
    pub content_base_url: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's and the one kept at enrolment.
    pub ca_file: Option<PathBuf>,
    /// Allow a plain-http controller or mirror off this machine (warned at every start).
    pub insecure_http: bool,
    pub output: String,
    /// The node's volume until a technician sets one remotely.
    pub volume: u8,
    /// Emergencies play at this volume (0-100), whatever the node's own.
    pub emergency_volume: u8,
    pub cache_quota_mb: u64,
    pub amplifier_on_command: Option<String>,
    pub amplifier_off_command: Option<String>,
    pub amplifier_lead_ms: u64,
    pub amplifier_tail_ms: u64,
    /// Test knobs (docs/INTERFACES.md): the node's clock reads this far off the host's...
    pub clock_offset_ms: f64,
    /// ...and runs (with its simulated card) this fast...
    pub clock_drift_ppm: f64,
    /// ...and is set this far forward (or back) `clock_step_after_s` after the start.
    pub clock_step_ms: f64,
    pub clock_step_after_s: f64,
    /// Sample rate and channels of a `wav:`/`null` card (a sound card picks its own).
    /// Lower them for long simulations: a 48 kHz stereo float card grows 1.4 GB an hour.
    pub card_rate: u32,
    pub card_channels: u16,
    /// A link with nothing heard for this long is dropped and dialled again (ms).
    pub link_dead_after_ms: u64,
    /// Link through these MQTT brokers (`mqtt://HOST[:PORT]`, tried in turn) instead of
    /// the controller's WebSocket. Empty: WebSocket.
    pub broker: Vec<String>,
    pub broker_username: Option<String>,
    pub broker_password: Option<String>,
    /// `PREFIX/PROVINCE/COMMUNE`: the node's topics; default: as told at enrolment.
    pub broker_scope: Option<String>,
    /// The node's certificate (PEM chain) and key for an `mqtts://` broker that asks for
    /// one.
    pub broker_cert_file: Option<PathBuf>,
    pub broker_key_file: Option<PathBuf>,
    /// Stop when standard input closes: a supervisor that owns the node (the demo) ends
    /// it by exiting, even when killed.
    #[serde(skip)]
    pub stop_on_stdin_eof: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            state: PathBuf::from("/var/lib/loa-node"),
            server: None,
            content_base_url: None,
            ca_file: None,
            insecure_http: false,
            output: "device".into(),
            volume: 100,
            emergency_volume: 100,
            cache_quota_mb: 2048,
            amplifier_on_command: None,
            amplifier_off_command: None,
            amplifier_lead_ms: 1500,
            amplifier_tail_ms: 5000,
            clock_offset_ms: 0.0,
            clock_drift_ppm: 0.0,
            clock_step_ms: 0.0,
            clock_step_after_s: 0.0,
            card_rate: audio::AudioFormat::PLAYBACK.sample_rate,
            card_channels: audio::AudioFormat::PLAYBACK.channels,
            link_dead_after_ms: DEAD_AFTER_MS,
            broker: Vec::new(),
            broker_username: None,
            broker_password: None,
            broker_scope: None,
            broker_cert_file: None,
            broker_key_file: None,
            stop_on_stdin_eof: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AgentConfig;

    #[test]
    fn the_packaged_config_template_parses() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/node.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let c: AgentConfig = toml::from_str(&text).unwrap();
        assert_eq!(c.state, std::path::PathBuf::from("/var/lib/loa-node"));
        assert_eq!(c.output, "device");
        assert!(toml::from_str::<AgentConfig>("stat = \"x\"").is_err());
    }
}
