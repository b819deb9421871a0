//! `controller`: serves the CMS and runs the fleet hub. Thin: parses the command line and
//! calls the library (docs/INTERFACES.md lists the stable commands).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use cms::{Cms, CmsConfig, NewUserRequest};
use controller::config::ControllerConfig;

#[derive(Parser)]
#[command(
    name = "controller",
    version,
    about = "Loa Làng controller: the CMS and the fleet hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as JSON objects (for journald/Loki/ELK); also LOA_LOG_FORMAT=json.
    #[arg(long, global = true)]
    log_json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the CMS (web UI and API) and the fleet hub from a data directory.
    Serve {
        #[command(flatten)]
        opts: ServeOpts,
    },
    /// Print a Mosquitto acl_file for the fleet: the controller's user may use the whole
    /// province's topics, each enrolled node (user node-ID) only its own. Write it again
    /// and send Mosquitto SIGHUP after enrolling, moving or revoking nodes.
    BrokerAcl {
        #[arg(long, env = "LOA_DATA", default_value = "data")]
        data: PathBuf,
        /// PREFIX/PROVINCE, as the controller serves it.
        #[arg(long, env = "LOA_BROKER_TOPIC_ROOT", default_value = cms::DEFAULT_TOPIC_ROOT)]
        broker_topic_root: String,
        /// The controller's user on the broker.
        #[arg(long, env = "LOA_BROKER_USERNAME", default_value = "loa-controller")]
        broker_username: String,
    },
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The whole system with demo data: xã Hạ Long, five villages, a user per role,
    /// sample content approved and scheduled, and its speaker nodes.
    Demo {
        /// Demo speaker nodes, started as `speaker-node run` processes beside the controller.
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// Where the sample recordings are.
        #[arg(long, default_value = "audio-samples")]
        samples: PathBuf,
        #[command(flatten)]
        opts: ServeOpts,
    },
}

/// Each overrides `--config`, which overrides the defaults (see `ControllerConfig`).
#[derive(clap::Args)]
struct ServeOpts {
    /// A TOML file with these settings (see packaging/controller.toml).
    #[arg(long, env = "LOA_CONFIG")]
    config: Option<PathBuf>,
    /// Holds the database (loa.db) and the audio blobs.
    #[arg(long, env = "LOA_DATA")]
    data: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free one (printed on start).
    #[arg(long, env = "LOA_LISTEN")]
    listen: Option<SocketAddr>,
    /// https: the certificate chain (PEM) of the listener; with --tls-key.
    #[arg(long, env = "LOA_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// https: the private key (PEM) of --tls-cert.
    #[arg(long, env = "LOA_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Seconds a client has to send a request's head.
    #[arg(long, env = "LOA_HEADER_TIMEOUT_S")]
    header_timeout_s: Option<u64>,
    /// Largest accepted upload, in megabytes.
    #[arg(long, env = "LOA_MAX_UPLOAD_MB")]
    max_upload_mb: Option<u64>,
    /// Text-to-speech command template; {voice} and {out} are replaced, text on stdin.
    #[arg(long, env = "LOA_TTS_COMMAND")]
    tts_command: Option<String>,
    /// Slug of the commune a new data directory starts with.
    #[arg(long, env = "LOA_COMMUNE")]
    commune: Option<String>,
    /// A URL that gets a JSON POST when a node goes offline or comes back online.
    #[arg(long, env = "LOA_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Seconds of silence after which a node is marked offline.
    #[arg(long, env = "LOA_NODE_OFFLINE_AFTER_S")]
    node_offline_after_s: Option<u64>,
    /// The address staff use, e.g. https://loa.example.vn behind a TLS proxy; https makes
    /// session cookies Secure.
    #[arg(long, env = "LOA_PUBLIC_URL")]
    public_url: Option<String>,
    /// Mark session cookies Secure (true/false) whatever the public URL says.
    #[arg(long, env = "LOA_SECURE_COOKIES")]
    secure_cookies: Option<bool>,
    /// Reverse proxies (comma-separated addresses) whose X-Forwarded-For names the client.
    #[arg(long, env = "LOA_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Option<Vec<std::net::IpAddr>>,
    /// Password of live sources (Icecast style: PUT /live/VILLAGE as source:PASSWORD);
    /// without one, live ingest is off.
    #[arg(long, env = "LOA_SOURCE_PASSWORD")]
    source_password: Option<String>,
    /// Password of live sources that speak at emergency level (a warning feed): they take
    /// a mount a normal source holds and count their reach as an emergency.
    #[arg(long, env = "LOA_EMERGENCY_SOURCE_PASSWORD")]
    emergency_source_password: Option<String>,
    /// Live audio: ms from encoding to every node's output.
    #[arg(long, env = "LOA_LIVE_BUFFER_MS")]
    live_buffer_ms: Option<u64>,
    /// Alert emails go through this mail relay, smtp://host:port.
    #[arg(long, env = "LOA_SMTP_URL")]
    smtp_url: Option<String>,
    /// The sender of alert emails.
    #[arg(long, env = "LOA_MAIL_FROM")]
    mail_from: Option<String>,
    /// Seconds between alert rounds.
    #[arg(long, env = "LOA_ALERT_INTERVAL_S")]
    alert_interval_s: Option<u64>,
    /// MQTT brokers to serve nodes through beside the WebSocket link,
    /// mqtt://HOST[:PORT][,...] (tried in turn).
    #[arg(long, env = "LOA_BROKER", value_delimiter = ',')]
    broker: Option<Vec<String>>,
    /// PREFIX/PROVINCE: where the province's topics are on the broker (default loa/tinh).
    #[arg(long, env = "LOA_BROKER_TOPIC_ROOT")]
    broker_topic_root: Option<String>,
    /// The controller's user on the broker.
    #[arg(long, env = "LOA_BROKER_USERNAME")]
    broker_username: Option<String>,
    /// Its password (better in the environment or the config file than on a command line).
    #[arg(long, env = "LOA_BROKER_PASSWORD", hide_env_values = true)]
    broker_password: Option<String>,
    /// A CA certificate (PEM) to trust for mqtts:// brokers besides the system's.
    #[arg(long, env = "LOA_BROKER_CA_FILE")]
    broker_ca_file: Option<PathBuf>,
}

impl ServeOpts {
    /// File, then environment and flags.
    fn resolve(self, default_data: Option<&str>) -> Result<ControllerConfig> {
        let mut c = ControllerConfig::load(self.config.as_deref()).map_err(anyhow::Error::msg)?;
        if let (Some(d), None) = (default_data, &self.config) {
            c.data = PathBuf::from(d);
        }
        if let Some(v) = self.data {
            c.data = v;
        }
        if let Some(v) = self.listen {
            c.listen = v;
        }
        if let Some(v) = self.tls_cert {
            c.tls_cert = Some(v);
        }
        if let Some(v) = self.tls_key {
            c.tls_key = Some(v);
        }
        if let Some(v) = self.trusted_proxies {
            c.trusted_proxies = v;
        }
        if let Some(v) = self.header_timeout_s {
            c.header_timeout_s = v;
        }
        if let Some(v) = self.max_upload_mb {
            c.max_upload_mb = v;
        }
        if let Some(v) = self.tts_command {
            c.tts_command = Some(v);
        }
        if let Some(v) = self.commune {
            c.commune = v;
        }
        if let Some(v) = self.webhook_url {
            c.webhook_url = Some(v);
        }
        if let Some(v) = self.node_offline_after_s {
            c.node_offline_after_s = v;
        }
        if let Some(v) = self.public_url {
            c.public_url = Some(v);
        }
        if let Some(v) = self.secure_cookies {
            c.secure_cookies = Some(v);
        }
        if let Some(v) = self.source_password {
            c.source_password = Some(v);
        }
        if let Some(v) = self.emergency_source_password {
            c.emergency_source_password = Some(v);
        }
        if let Some(v) = self.live_buffer_ms {
            c.live_buffer_ms = v;
        }
        if let Some(v) = self.smtp_url {
            c.smtp_url = Some(v);
        }
        if let Some(v) = self.mail_from {
            c.mail_from = v;
        }
        if let Some(v) = self.alert_interval_s {
            c.alert_interval_s = v;
        }
        if let Some(v) = self.broker {
            c.broker = v;
        }
        if let Some(v) = self.broker_topic_root {
            c.broker_topic_root = v;
        }
        if let Some(v) = self.broker_username {
            c.broker_username = Some(v);
        }
        if let Some(v) = self.broker_password {
            c.broker_password = Some(v);
        }
        if let Some(v) = self.broker_ca_file {
            c.broker_ca_file = Some(v);
        }
        Ok(c)
    }
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user (the first admin is made this way).
    Add {
        #[arg(long, env = "LOA_DATA", default_value = "data")]
        data: PathBuf,
        #[arg(long)]
        username: String,
        /// The password (for scripts; it shows in the process list and shell history).
        /// Without it: LOA_PASSWORD, else asked at the terminal (not echoed), else read
        /// as one line from standard input.
        #[arg(long, env = "LOA_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, value_parser = ["admin", "editor", "approver", "technician", "viewer"])]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Admins only: see and manage every commune of the deployment.
        #[arg(long)]
        province_wide: bool,
    },
}

fn main() -> ExitCode {
    // Everything the controller writes (database, audio, its key) is for its own user.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = match Cli::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_logs(cli.log_json);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("controller: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `LOA_LOG` sets the level (info by default); text with colours only on a terminal, or
/// JSON objects, one a line.
fn init_logs(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let level: LevelFilter = std::env::var("LOA_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(LevelFilter::INFO);
    // warp logs a client that hangs up mid-request as a server error: that is the
    // client's business, not an operator's.
    let filter = Targets::new()
        .with_default(level)
        .with_target("warp::server", LevelFilter::OFF);
    let json =
        json || std::env::var("LOA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        let layer = fmt.json().with_current_span(true).with_span_list(false);
        tracing_subscriber::registry()
            .with(layer)
            .with(filter)
            .init();
    } else {
        let layer = fmt.with_ansi(std::io::stderr().is_terminal());
        tracing_subscriber::registry()
            .with(layer)
            .with(filter)
            .init();
    }
}

/// The command line, its help showing the defaults of [`ControllerConfig::default`] (the
/// one place they live).
fn command() -> clap::Command {
    let d = ControllerConfig::default();
    let defaults = [
        ("data", d.data.display().to_string()),
        ("listen", d.listen.to_string()),
        ("max_upload_mb", d.max_upload_mb.to_string()),
        ("header_timeout_s", d.header_timeout_s.to_string()),
        ("commune", d.commune.clone()),
        ("node_offline_after_s", d.node_offline_after_s.to_string()),
        ("live_buffer_ms", d.live_buffer_ms.to_string()),
        ("mail_from", d.mail_from.clone()),
        ("alert_interval_s", d.alert_interval_s.to_string()),
    ];
    let with_defaults = |mut cmd: clap::Command, demo: bool| {
        for (arg, value) in &defaults {
            let value = match (demo, *arg) {
                (true, "data") => DEMO_DATA.to_string(),
                _ => value.clone(),
            };
            cmd = cmd.mut_arg(*arg, |a| {
                let help = a.get_help().map(ToString::to_string).unwrap_or_default();
                a.help(format!("{help} [default: {value}]"))
            });
        }
        cmd
    };
    Cli::command()
        .mut_subcommand("serve", |c| with_defaults(c, false))
        .mut_subcommand("demo", |c| with_defaults(c, true))
}

/// Where the demo keeps its data unless told otherwise.
const DEMO_DATA: &str = ".loa/demo";

fn run(cli: Cli) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.command {
            Command::Serve { opts } => {
                let c = opts.resolve(None)?;
                serve(&c, c.cms(), None).await
            }
            Command::Demo {
                nodes,
                samples,
                opts,
            } => {
                let c = opts.resolve(Some(DEMO_DATA))?;
                let mut cfg = c.cms();
                cfg.commune_slug = controller::demo::COMMUNE_SLUG.into();
                cfg.commune_name = controller::demo::COMMUNE_NAME.into();
                serve(&c, cfg, Some((nodes, samples))).await
            }
            Command::BrokerAcl {
                data,
                broker_topic_root,
                broker_username,
            } => {
                let root = protocol::mqtt::Root::parse_str(&broker_topic_root)
                    .map_err(|e| anyhow::anyhow!("--broker-topic-root: {e}"))?;
                let cms = Cms::open(CmsConfig {
                    data_dir: data,
                    ..CmsConfig::default()
                })?;
                let acl = controller::broker_acl::acl_file(&cms, &root, &broker_username);
                print!("{}", acl.await?);
                Ok(())
            }
            Command::User {
                command:
                    UserCommand::Add {
                        data,
                        username,
                        password,
                        role,
                        display_name,
                        province_wide,
                    },
            } => {
                let password = match password {
                    Some(p) => p,
                    None => read_password(&username)?,
                };
                let cms = Cms::open(CmsConfig {
                    data_dir: data,
                    ..CmsConfig::default()
                })?;
                let req = NewUserRequest {
                    username,
                    password,
                    role,
                    display_name,
                    commune_id: None,
                    province_wide,
                };
                let user = cms.create_user(None, req).await?;
                println!("{}", serde_json::to_string(&user)?);
                Ok(())
            }
        }
    })
}

/// A new user's password from the terminal (asked twice, not echoed) or, when standard
/// input is not a terminal, its first line.
fn read_password(username: &str) -> Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Mật khẩu cho {username}: "))?;
        let again = rpassword::prompt_password("Nhập lại: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}

async fn serve(c: &ControllerConfig, cfg: CmsConfig, demo: Option<(u32, PathBuf)>) -> Result<()> {
    let listen = c.listen;
    let tls = match (&c.tls_cert, &c.tls_key) {
        (Some(cert), Some(key)) => Some(controller::tls::acceptor(cert, key)?),
        (None, None) => None,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let data = cfg.data_dir.clone();
    let hub = controller::open(cfg, c.hub())?;
    // Read once: the TLS roots come from disk.
    let broker = c.broker().map_err(anyhow::Error::msg)?;
    if let Some(b) = &broker {
        controller::hub::broker::Gateway::start(&hub, b.clone());
        println!("nodes also through the broker at {}", b.urls.join(","));
    }
    let cms = hub.cms().clone();
    let url = format!("{scheme}://{addr}/");
    let shutdown = async {
        // Ctrl-C in a terminal, SIGTERM from systemd: finish requests in flight, then stop.
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
        tracing::info!("stopping");
    };
    let options = controller::ListenOptions {
        tls,
        header_timeout: std::time::Duration::from_secs(c.header_timeout_s.clamp(1, 3600)),
    };
    let server = tokio::spawn(controller::serve_with(hub, listener, options, shutdown));
    let mut nodes = None;
    if let Some((count, samples)) = demo {
        let logins = controller::demo::seed(&cms, &samples, count).await?;
        println!("Loa Làng demo — {} — {url}", controller::demo::COMMUNE_NAME);
        for (role, user, pass) in logins {
            println!("  {role:<11} {user} / {pass}");
        }
        println!(
            "  villagers   {}/public/{} (no login)",
            url.trim_end_matches('/'),
            controller::demo::COMMUNE_SLUG
        );
        // Nodes on this machine reach the controller on loopback whatever it listens on.
        let local = format!("{scheme}://127.0.0.1:{}", addr.port());
        let broker = broker
            .as_ref()
            .map(|b| {
                let scope = b.root.scope(controller::demo::COMMUNE_SLUG)?;
                Ok::<_, protocol::mqtt::BadSegment>((b.urls.join(","), scope.to_string()))
            })
            .transpose()?;
        let started = controller::demo_nodes::DemoNodes::start(&cms, &local, &data, count, broker);
        nodes = Some(started.await?);
    }
    // One machine-readable line for scripts and tests: the address actually bound.
    println!("listening on {url}");
    tracing::info!(%addr, "serving");
    server.await?;
    if let Some(nodes) = nodes {
        tokio::task::spawn_blocking(move || nodes.stop()).await?;
    }
    Ok(())
}
