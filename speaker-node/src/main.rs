//! `speaker-node`: the command a technician runs on a loudspeaker cluster's board.
//! Parses arguments, calls the library, and turns every failure into one stderr line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use speaker_node::decode::{self, DecodeReport, Decoder};
use speaker_node::output::{self, AudioFormat, OutputSpec};
use speaker_node::player::{self, Loudness};

#[derive(Parser)]
#[command(
    name = "speaker-node",
    version,
    about = "Loa Làng speaker node: plays announcements on a village loudspeaker cluster",
    long_about = "Loa Làng speaker node: plays announcements on a village loudspeaker cluster.\n\n\
        Files are recognised by their content, not their name: MP3, MP2, AAC (M4A/MP4), \
        FLAC, Ogg Vorbis, WAV (PCM, float, IMA ADPCM) and AIFF.",
    after_help = "Examples:\n  speaker-node devices\n  speaker-node play thong-bao.mp3 --volume 80\n  \
        speaker-node play thong-bao.mp3 --output wav:/tmp/check.wav\n  speaker-node probe ban-tin.m4a"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as JSON objects (for journald/Loki/ELK); also SPEAKER_NODE_LOG_FORMAT=json.
    #[arg(long, global = true)]
    log_json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Print what a file holds as JSON: format, codec, sample rate, channels, duration.
    Probe { file: PathBuf },
    /// Decode a file as fast as possible, at its own sample rate and channels (a check, or
    /// to convert it to WAV).
    Decode {
        file: PathBuf,
        /// Where the samples go: wav:PATH (32-bit float WAV) or null (discard).
        #[arg(long, short, default_value = "null")]
        output: OutputSpec,
    },
    /// Play files one after another.
    Play {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// device (the default sound card), device:NAME (see `devices`), wav:PATH (write
        /// exactly what the card would play, 48 kHz stereo) or null.
        #[arg(long, short, default_value = "device")]
        output: OutputSpec,
        /// Loudness 0-100; 50 is a quarter of the amplitude (-12 dB).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(0..=100))]
        volume: u8,
        /// Extra gain for these files in dB, e.g. -6 or 3.5. Peaks above full scale are clipped.
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, value_parser = parse_gain)]
        gain_db: f32,
    },
    /// List the sound output devices; the default one is marked with *.
    Devices {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Enrol this node with the controller using the one-time code from the admin.
    Enroll {
        /// The controller, e.g. http://loa.xa-ha-long.vn:8080
        #[arg(long)]
        server: String,
        /// The enrolment code shown when the node was added (XXXX-XXXX-XXXX-XXXX).
        #[arg(long)]
        code: String,
        /// The node's state directory (token, schedule, cache).
        #[arg(long, env = "LOA_NODE_STATE")]
        state: PathBuf,
        /// The commune's CA certificate (PEM), if its controller's certificate is not from
        /// a public CA: trusted now and kept for `run`.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Accept a plain-http controller off this machine (anyone on the path could
        /// forge what the node plays).
        #[arg(long)]
        insecure_http: bool,
    },
    /// Run the node: keep the link, sync schedule and content, play on time.
    Run(Box<RunArgs>),
    /// N simulated nodes in one process, created and enrolled through the API, speaking
    /// the real link (a fleet for load tests; null outputs, no disk).
    Swarm(SwarmArgs),
}

#[derive(clap::Args)]
struct SwarmArgs {
    /// The controller, e.g. http://127.0.0.1:8080
    #[arg(long)]
    server: String,
    /// An admin's API token (nodes are added and enrolled with it).
    #[arg(long, env = "LOA_SWARM_TOKEN")]
    token: String,
    /// How many nodes.
    #[arg(long)]
    count: usize,
    /// The village they go in (default: a new one).
    #[arg(long)]
    village: Option<i64>,
    /// Node names are PREFIX-1, PREFIX-2... (default swarm-<unix time>).
    #[arg(long)]
    prefix: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Accept a plain-http controller off this machine.
    #[arg(long)]
    insecure_http: bool,
    /// once (one download per blob for the swarm), each (every node downloads), none.
    #[arg(long, default_value = "once")]
    fetch: speaker_node::swarm::FetchMode,
    /// Links opened per second at the start.
    #[arg(long, default_value_t = 500)]
    connect_rate: u32,
    /// Clock exchanges this often (ms) instead of the agent's schedule (125 ms for 3
    /// minutes, 500 ms for 3 more, then 1 s).
    #[arg(long)]
    sync_every_ms: Option<u64>,
    /// A status line on stdout this often (s).
    #[arg(long, default_value_t = 2)]
    report_every_s: u64,
    /// Stop after this many seconds (default: at Ctrl-C / SIGTERM).
    #[arg(long)]
    run_for_s: Option<u64>,
    /// Link the nodes through this MQTT broker (mqtt://HOST:PORT) instead of the
    /// controller's WebSocket (the controller must serve it: `--broker`).
    #[arg(long)]
    broker: Option<String>,
}

/// `run` settings; each overrides the config file (`--config`), which overrides defaults.
#[derive(clap::Args)]
struct RunArgs {
    /// A TOML file with the settings below (see packaging/node.toml).
    #[arg(long, env = "LOA_NODE_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "LOA_NODE_STATE")]
    state: Option<PathBuf>,
    /// device, device:NAME, wav:PATH (a simulated real-time card) or null.
    #[arg(long, short, env = "LOA_NODE_OUTPUT")]
    output: Option<OutputSpec>,
    /// Volume 0-100 until a technician sets one remotely.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    volume: Option<u8>,
    /// Blob cache size limit in MB.
    #[arg(long)]
    cache_quota_mb: Option<u64>,
    /// Fetch blobs from this base URL (a mirror or CDN) instead of the controller.
    #[arg(long)]
    content_base_url: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's and the enrolment's.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Accept a plain-http controller or mirror off this machine (warned at every start).
    #[arg(long)]
    insecure_http: bool,
    /// Test knob: the node's clock reads this many ms off the host's.
    #[arg(long, allow_negative_numbers = true)]
    clock_offset_ms: Option<f64>,
    /// Test knob: the node's clock and simulated card run this many ppm fast.
    #[arg(long, allow_negative_numbers = true)]
    clock_drift_ppm: Option<f64>,
    /// Test knob: the node's clock is set this many ms forward (or back) while it runs...
    #[arg(long, allow_negative_numbers = true)]
    clock_step_ms: Option<f64>,
    /// ...this many seconds after the start (default 0).
    #[arg(long)]
    clock_step_after_s: Option<f64>,
    /// Sample rate of a wav:/null card (default 48000).
    #[arg(long)]
    card_rate: Option<u32>,
    /// Channels of a wav:/null card (default 2).
    #[arg(long)]
    card_channels: Option<u16>,
    /// Stop when standard input closes (for a supervisor that owns the node).
    #[arg(long)]
    stop_on_stdin_eof: bool,
    /// Link through MQTT brokers instead of the controller's WebSocket,
    /// mqtt://HOST[:PORT][,...] (tried in turn).
    #[arg(long, env = "LOA_NODE_BROKER", value_delimiter = ',')]
    broker: Option<Vec<String>>,
    /// The node's user on the broker.
    #[arg(long, env = "LOA_NODE_BROKER_USERNAME")]
    broker_username: Option<String>,
    /// Its password (better in the environment or the config file).
    #[arg(long, env = "LOA_NODE_BROKER_PASSWORD", hide_env_values = true)]
    broker_password: Option<String>,
    /// PREFIX/PROVINCE/COMMUNE: the node's topics, if not the ones told at enrolment.
    #[arg(long, env = "LOA_NODE_BROKER_SCOPE")]
    broker_scope: Option<String>,
    /// The node's certificate (PEM) for an mqtts:// broker that asks for one...
    #[arg(long, env = "LOA_NODE_BROKER_CERT_FILE")]
    broker_cert_file: Option<PathBuf>,
    /// ...and its private key (PEM).
    #[arg(long, env = "LOA_NODE_BROKER_KEY_FILE")]
    broker_key_file: Option<PathBuf>,
}

fn parse_gain(s: &str) -> Result<f32, String> {
    let db: f32 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of dB"))?;
    if !(-60.0..=24.0).contains(&db) {
        return Err("gain must be between -60 and 24 dB".into());
    }
    Ok(db)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // SPEAKER_NODE_LOG=error|warn|info|debug|trace; off by default for the one-shot
    // commands so that errors stay one line, info for the `run` service. (A plain level
    // rather than tracing's env-filter keeps a regex engine out of a binary that runs on
    // small boards.)
    use tracing_subscriber::filter::LevelFilter;
    let default = match cli.command {
        Command::Run(_) => LevelFilter::INFO,
        Command::Swarm(_) => LevelFilter::WARN,
        _ => LevelFilter::OFF,
    };
    let level = std::env::var("SPEAKER_NODE_LOG")
        .ok()
        .and_then(|l| l.parse().ok());
    let json = cli.log_json
        || std::env::var("SPEAKER_NODE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let max = level.unwrap_or(default);
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(max);
    if json {
        fmt.json().init();
    } else {
        // Colours only on a terminal: a service's log file stays plain text.
        use std::io::IsTerminal;
        fmt.with_ansi(std::io::stderr().is_terminal()).init();
    }
    std::panic::set_hook(Box::new(|info| {
        if decode::inside_decoder() {
            // Contained by the decoder and reported as a corrupt file.
            tracing::debug!(%info, "decoder panic contained");
        } else {
            eprintln!("speaker-node: internal error: {info}");
        }
    }));
    let result = match cli.command {
        Command::Probe { file } => probe(&file),
        Command::Decode { file, output } => decode_file(&file, &output),
        Command::Play {
            files,
            output,
            volume,
            gain_db,
        } => play(&files, &output, Loudness { volume, gain_db }),
        Command::Devices { json } => devices(json),
        Command::Enroll {
            server,
            code,
            state,
            ca_file,
            insecure_http,
        } => speaker_node::agent::enroll::enroll(
            &server,
            &code,
            &state,
            &speaker_node::agent::enroll::EnrollTls {
                ca_file,
                insecure_http,
            },
        )
        .map(|id| {
            println!(
                "{}",
                serde_json::json!({"node_id": id.node_id, "name": id.name})
            );
        })
        .map_err(|e| e.to_string()),
        Command::Run(args) => run_agent(*args),
        Command::Swarm(a) => speaker_node::swarm::run(speaker_node::swarm::SwarmConfig {
            server: a.server,
            admin_token: a.token,
            count: a.count,
            village: a.village,
            prefix: a.prefix,
            ca_file: a.ca_file,
            insecure_http: a.insecure_http,
            fetch: a.fetch,
            connect_rate: a.connect_rate,
            sync_every: a.sync_every_ms.map(std::time::Duration::from_millis),
            broker: a.broker,
            report_every: std::time::Duration::from_secs(a.report_every_s.max(1)),
            run_for: a.run_for_s.map(std::time::Duration::from_secs),
        })
        .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("speaker-node: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `FILE: reason`, the form of every file error.
fn file_error(file: &Path, err: impl std::fmt::Display) -> String {
    format!("{}: {err}", file.display())
}

/// One warning line for a file that played only in part.
fn warn_report(file: &Path, report: &DecodeReport) {
    let file = file.display();
    let skipped = report.skipped_packets;
    let lost = report.lost_ms as f64 / 1000.0;
    let missing = match report.missing_ms {
        0 => String::new(),
        ms => format!(
            ": about {} frames ({:.2} s) missing",
            report.missing_packets,
            ms as f64 / 1000.0
        ),
    };
    let message = match (skipped > 0, report.truncated) {
        (false, false) => return,
        (true, false) => {
            format!("skipped {skipped} corrupt frames ({lost:.2} s of audio); played the rest")
        }
        (false, true) => format!("file is cut short or damaged{missing}; played what it holds"),
        (true, true) => format!(
            "skipped {skipped} corrupt frames and the file is cut short or damaged{missing}; played what it holds"
        ),
    };
    eprintln!("speaker-node: warning: {file}: {message}");
}

fn probe(file: &Path) -> Result<(), String> {
    let info = decode::probe(file).map_err(|e| file_error(file, e))?;
    let json = serde_json::to_string(&info).map_err(|e| e.to_string())?;
    println!("{json}");
    Ok(())
}

fn decode_file(file: &Path, output: &OutputSpec) -> Result<(), String> {
    if output.is_device() {
        return Err("decode writes to wav:PATH or null; use `play` for a sound card".into());
    }
    let decoder = Decoder::open(file).map_err(|e| file_error(file, e))?;
    let info = decoder.info();
    let format = AudioFormat {
        sample_rate: info.sample_rate,
        channels: info.channels,
    };
    let mut sink = output.open(format).map_err(|e| e.to_string())?;
    let report = player::decode_to(decoder, sink.as_mut()).map_err(|e| file_error(file, e))?;
    warn_report(file, &report);
    Ok(())
}

fn play(files: &[PathBuf], output: &OutputSpec, loudness: Loudness) -> Result<(), String> {
    // Check every file before the first sound, so a typo never leaves a half-played list.
    let mut decoders = Vec::with_capacity(files.len());
    for file in files {
        decoders.push(Decoder::open(file).map_err(|e| file_error(file, e))?);
    }
    let mut sink = output
        .open(AudioFormat::PLAYBACK)
        .map_err(|e| format!("{output}: {e}"))?;
    for (file, decoder) in files.iter().zip(decoders) {
        let report =
            player::play(decoder, sink.as_mut(), loudness).map_err(|e| file_error(file, e))?;
        warn_report(file, &report);
    }
    sink.finish().map_err(|e| format!("{output}: {e}"))?;
    let underruns = sink.stats().underruns;
    if underruns > 0 {
        eprintln!(
            "speaker-node: warning: {output}: {underruns} buffer underruns (the output waited for audio)"
        );
    }
    Ok(())
}

fn run_agent(args: RunArgs) -> Result<(), String> {
    use speaker_node::agent::{self, AgentConfig};
    let mut cfg = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
            toml::from_str::<AgentConfig>(&text).map_err(|e| file_error(path, e.message()))?
        }
        None => AgentConfig::default(),
    };
    if let Some(v) = args.state {
        cfg.state = v;
    }
    if let Some(v) = args.output {
        cfg.output = v.to_string();
    }
    if let Some(v) = args.volume {
        cfg.volume = v;
    }
    if let Some(v) = args.cache_quota_mb {
        cfg.cache_quota_mb = v;
    }
    if let Some(v) = args.content_base_url {
        cfg.content_base_url = Some(v);
    }
    if let Some(v) = args.ca_file {
        cfg.ca_file = Some(v);
    }
    cfg.insecure_http |= args.insecure_http;
    if let Some(v) = args.clock_offset_ms {
        cfg.clock_offset_ms = v;
    }
    if let Some(v) = args.clock_drift_ppm {
        cfg.clock_drift_ppm = v;
    }
    if let Some(v) = args.clock_step_ms {
        cfg.clock_step_ms = v;
    }
    if let Some(v) = args.clock_step_after_s {
        cfg.clock_step_after_s = v.max(0.0);
    }
    if let Some(v) = args.card_rate {
        cfg.card_rate = v;
    }
    if let Some(v) = args.card_channels {
        cfg.card_channels = v;
    }
    cfg.stop_on_stdin_eof = args.stop_on_stdin_eof;
    if let Some(v) = args.broker {
        cfg.broker = v;
    }
    if let Some(v) = args.broker_username {
        cfg.broker_username = Some(v);
    }
    if let Some(v) = args.broker_password {
        cfg.broker_password = Some(v);
    }
    if let Some(v) = args.broker_scope {
        cfg.broker_scope = Some(v);
    }
    if let Some(v) = args.broker_cert_file {
        cfg.broker_cert_file = Some(v);
    }
    if let Some(v) = args.broker_key_file {
        cfg.broker_key_file = Some(v);
    }
    agent::run(cfg).map(|_| ()).map_err(|e| e.to_string())
}

fn devices(json: bool) -> Result<(), String> {
    let devices = output::list_devices().map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&devices).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    if devices.is_empty() {
        println!("no output devices found");
    }
    for d in devices {
        let mark = if d.is_default { "*" } else { " " };
        println!("{mark} {:<24} {}", d.name, d.description);
    }
    Ok(())
}
