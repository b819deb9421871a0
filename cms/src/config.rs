use std::path::PathBuf;

/// Settings of the CMS part of the controller. `Default` is the one place defaults live.
#[derive(Clone)]
pub struct CmsConfig {
    /// Holds `loa.db` and `blobs/`.
    pub data_dir: PathBuf,
    /// Uploads above this are refused with 413 (default 200 MB).
    pub max_upload_bytes: u64,
    /// Text-to-speech command template (see `tts`).
    pub tts_command: Vec<String>,
    /// The commune a new data directory starts with.
    pub commune_slug: String,
    pub commune_name: String,
    /// Whether an approver may approve their own item (off: four eyes on everything aired).
    pub allow_self_approval: bool,
    /// Browser sessions last this long.
    pub session_hours: u32,
    /// Mark cookies `Secure`: browsers then send them over HTTPS only. The controller
    /// turns it on when its public URL is https (behind a TLS proxy).
    pub secure_cookies: bool,
    /// A node not heard from this long is shown offline (and the hub marks it so).
    pub node_offline_after_ms: u64,
    /// The address villagers reach the server at (`https://loa.example.vn`): the public
    /// feed's links use it. Unset, they use the request's `Host`.
    pub public_url: Option<String>,
    /// Reverse proxies (nginx on this machine, say) whose `X-Forwarded-For` names the
    /// client: login and enrolment limits then count the client, not the proxy. Empty:
    /// the header is ignored (anyone could write it).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `PREFIX/PROVINCE`: where the province's topics are on an MQTT broker. Each node
    /// learns its commune's scope below it when it enrols, so a commune can move its
    /// nodes to a broker later without enrolling them again.
    pub broker_topic_root: String,
}

/// The topic root when none is configured.
pub const DEFAULT_TOPIC_ROOT: &str = "loa/tinh";

impl Default for CmsConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            max_upload_bytes: 200_000_000,
            tts_command: crate::tts::default_command(),
            commune_slug: "default".into(),
            commune_name: "Xã mặc định".into(),
            allow_self_approval: false,
            session_hours: 12,
            secure_cookies: false,
            node_offline_after_ms: protocol::link::OFFLINE_AFTER_MS,
            public_url: None,
            trusted_proxies: Vec::new(),
            broker_topic_root: DEFAULT_TOPIC_ROOT.into(),
        }
    }
}

impl std::fmt::Debug for CmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmsConfig")
            .field("data_dir", &self.data_dir)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("tts_command", &self.tts_command)
            .field("commune_slug", &self.commune_slug)
            .field("allow_self_approval", &self.allow_self_approval)
            .field("secure_cookies", &self.secure_cookies)
            .field("node_offline_after_ms", &self.node_offline_after_ms)
            .field("broker_topic_root", &self.broker_topic_root)
            .finish_non_exhaustive()
    }
}
