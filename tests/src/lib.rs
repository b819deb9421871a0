//! Whole-system tests: real controller and speaker-node processes on loopback.
//!
//! This library is the harness: it starts the binaries the workspace built (building them
//! if a test runs on its own), waits on readiness signals (the controller's "listening on"
//! line, nodes reported online with their desired state applied) rather than sleeping,
//! drives the REST API as staff would, and reads what the nodes' simulated sound cards
//! played (`wav:PATH` + `PATH.json`, docs/INTERFACES.md) to measure timing against the host clock.
//! Every process is killed when its handle drops, so a failing test leaves nothing behind.

pub mod broker;
mod card;
pub mod impair;
pub mod live;
mod node;

pub use card::Card;
pub use node::Node;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const PASSWORD: &str = "mat-khau-thu-nghiem";

/// A workspace binary, built on first use when the run did not build it.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/loa_tests-HASH -> target/debug
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = dir.join(name);
    // `cargo test --workspace` (the README's command) builds them fresh; a test run of this
    // package alone may find them missing or older than the sources: build them then.
    if !path.exists() || stale(&path) {
        BUILT.get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let ok = Command::new(cargo)
                .args(["build", "--quiet", "-p", "controller", "-p", "speaker-node"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot build the controller and speaker-node binaries");
        });
    }
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// Whether any source of the binaries is newer than `bin`.
fn stale(bin: &Path) -> bool {
    fn newest(dir: &Path) -> Option<std::time::SystemTime> {
        let mut best = None;
        for e in std::fs::read_dir(dir).ok()?.filter_map(Result::ok) {
            let path = e.path();
            let t = if path.is_dir() {
                newest(&path)
            } else {
                e.metadata().ok()?.modified().ok()
            };
            best = best.max(t);
        }
        best
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok();
    [
        "audio/src",
        "protocol/src",
        "cms/src",
        "cms/static",
        "controller/src",
        "speaker-node/src",
    ]
    .iter()
    .filter_map(|d| newest(&root.join(d)))
    .any(|t| Some(t) > built)
}

/// Timing tests take turns within a test binary: three systems starting at once on a
/// 2-core machine measure the machine, not the system. Hold the guard for the test.
pub async fn timing_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    TURN.lock().await
}

/// `ns` rounded down to the millisecond, as schedules store times.
pub fn whole_ms(ns: i64) -> i64 {
    ns / 1_000_000 * 1_000_000
}

/// Current host time, ns since the Unix epoch.
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// Polls `check` until it returns `Some`, or panics naming `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .args(["-s", sig, &child.id().to_string()])
        .status();
}

/// A free TCP port on loopback (for servers the tests start: SMTP, Prometheus).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A child process killed when dropped.
pub struct Proc {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: PathBuf) -> (Proc, Option<std::process::ChildStdout>) {
        let err = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let out = child.stdout.take();
        (
            Proc {
                child: Some(child),
                log,
            },
            out,
        )
    }

    /// Any program, its standard error kept in `log` and its standard output for the
    /// caller to read.
    pub fn start_piped(cmd: &mut Command, log: PathBuf) -> (Proc, std::process::ChildStdout) {
        let (proc, out) = Self::spawn(cmd.stdin(Stdio::null()), log);
        let out = out.unwrap_or_else(|| panic!("no stdout"));
        (proc, out)
    }

    /// Any program, its standard error kept in `log`.
    pub fn start(cmd: &mut Command, log: PathBuf) -> Proc {
        Self::spawn(cmd.stdin(Stdio::null()), log).0
    }

    /// SIGKILL: no chance to clean up (a power cut).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (a service stop); returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        signal(&c, "TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return c.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal by name (`STOP` freezes the process, `CONT` resumes it).
    pub fn signal(&self, sig: &str) {
        if let Some(c) = self.child.as_ref() {
            signal(c, sig);
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Resident memory now, in MB (`VmRSS` of /proc); 0 once the process is gone.
    pub fn rss_mb(&self) -> f64 {
        let Some(c) = self.child.as_ref() else {
            return 0.0;
        };
        std::fs::read_to_string(format!("/proc/{}/status", c.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The controller process with its data directory and an admin session.
pub struct Controller {
    pub proc: Proc,
    pub url: String,
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub api: Api,
    extra: Vec<String>,
    /// The client the API is reached with (one that trusts the test CA over https).
    http: reqwest::Client,
}

impl Controller {
    /// A fresh data directory under `dir` with an admin, served on a free port.
    pub async fn start(dir: &Path) -> Controller {
        Self::start_with(dir, &[]).await
    }

    /// [`Controller::start`] with extra `serve` arguments (they are kept for restarts).
    pub async fn start_with(dir: &Path, extra: &[&str]) -> Controller {
        Self::start_client(dir, extra, reqwest::Client::new()).await
    }

    /// [`Controller::start_with`], reaching the API with `http` (for https, a client that
    /// trusts the certificate the `extra` arguments give the controller).
    pub async fn start_client(dir: &Path, extra: &[&str], http: reqwest::Client) -> Controller {
        let data = dir.join("data");
        let out = Command::new(bin("controller"))
            .args(["user", "add", "--username", "admin", "--role", "admin"])
            .arg("--data")
            .arg(&data)
            .env("LOA_PASSWORD", PASSWORD)
            .output()
            .unwrap_or_else(|e| panic!("controller user add: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let ctl = Self::serve(dir, &data, listen, extra, http).await;
        // Tests schedule normal plays seconds ahead at whatever hour they run: their
        // commune has no quiet hours (22:00-05:00 by default would refuse them).
        let communes = ctl.api.get("/api/v1/communes").await;
        for c in communes.as_array().into_iter().flatten() {
            let path = format!("/api/v1/communes/{}", c["id"]);
            let off = json!({ "quiet_start": "00:00", "quiet_end": "00:00" });
            let (status, body) = ctl.api.call(reqwest::Method::PATCH, &path, Some(off)).await;
            assert_eq!(status, 200, "PATCH {path}: {body}");
        }
        ctl
    }

    async fn serve(
        dir: &Path,
        data: &Path,
        listen: SocketAddr,
        extra: Vec<String>,
        http: reqwest::Client,
    ) -> Controller {
        let mut cmd = Command::new(bin("controller"));
        cmd.arg("serve")
            .args(&extra)
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg(listen.to_string())
            .env("LOA_LOG", "info");
        let log = dir.join(format!("controller-{}.log", now_ns()));
        let (proc, out) = Proc::spawn(&mut cmd, log);
        let out = out.unwrap_or_else(|| panic!("no stdout"));
        let url = tokio::task::spawn_blocking(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("the controller did not start: {}", proc.log_text()));
        let url = url.trim_end_matches('/').to_string();
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .parse()
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let api = Api::login_with(http.clone(), &url, "admin", PASSWORD).await;
        Controller {
            proc,
            url,
            addr,
            data: data.to_path_buf(),
            api,
            extra,
            http,
        }
    }

    /// Starts the controller again on the same address and data (after a kill).
    pub async fn restart(&mut self, dir: &Path) {
        self.proc.kill();
        let again = Self::serve(
            dir,
            &self.data,
            self.addr,
            self.extra.clone(),
            self.http.clone(),
        )
        .await;
        *self = again;
    }
}

/// The REST API as a logged-in user.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub async fn login(base: &str, username: &str, password: &str) -> Api {
        Self::login_with(reqwest::Client::new(), base, username, password).await
    }

    pub async fn login_with(
        http: reqwest::Client,
        base: &str,
        username: &str,
        password: &str,
    ) -> Api {
        let res = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("login: {e:?}"));
        let body: Value = res.json().await.unwrap_or_default();
        let token = body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login: {body}"))
            .to_string();
        Api {
            http,
            base: base.to_string(),
            token,
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// GET that may fail (the controller down): `None` then, or on any status but 200.
    pub async fn try_get(&self, path: &str) -> Option<Value> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        if res.status() != 200 {
            return None;
        }
        res.json().await.ok()
    }

    /// POST expecting success (2xx).
    pub async fn post(&self, path: &str, body: Value) -> Value {
        let (status, res) = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!((200..300).contains(&status), "POST {path}: {status} {res}");
        res
    }

    pub async fn village(&self, name: &str) -> i64 {
        id(&self.post("/api/v1/villages", json!({ "name": name })).await)
    }

    /// An approved item: `wav` uploaded by this user, approved by a second admin.
    pub async fn approved_audio(&self, title: &str, wav: Vec<u8>) -> (i64, String) {
        let part = reqwest::multipart::Part::bytes(wav).file_name("tone.wav");
        let form = reqwest::multipart::Form::new()
            .part("file", part)
            .text("title", title.to_string())
            .text("category", "announcement");
        let res = self
            .http
            .post(format!("{}/api/v1/content", self.base))
            .bearer_auth(&self.token)
            .multipart(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload: {e}"));
        let item: Value = res.json().await.unwrap_or_default();
        let cid = id(&item);
        self.approve(cid).await;
        (cid, item["sha256"].as_str().unwrap_or_default().to_string())
    }

    /// Submits an item of this user's and has a second user approve it.
    pub async fn approve(&self, cid: i64) {
        self.post(&format!("/api/v1/content/{cid}/submit"), json!({}))
            .await;
        let approver = self.second_admin().await;
        approver
            .post(&format!("/api/v1/content/{cid}/approve"), json!({}))
            .await;
    }

    async fn second_admin(&self) -> Api {
        let (status, _) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/users",
                Some(json!({ "username": "duyet", "password": PASSWORD, "role": "approver" })),
            )
            .await;
        assert!(status == 201 || status == 409, "second user: {status}");
        Api::login_with(self.http.clone(), &self.base, "duyet", PASSWORD).await
    }

    /// A one-time schedule at `at_ns` (host clock) for `nodes`.
    pub async fn play_once(
        &self,
        title: &str,
        content_id: i64,
        nodes: &[i64],
        at_ns: i64,
        priority: &str,
    ) -> i64 {
        let at = chrono::DateTime::from_timestamp_nanos(at_ns)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = json!({
            "title": title,
            "content_ids": [content_id],
            "targets": { "nodes": nodes },
            "priority": priority,
            "rule": { "once": at },
        });
        id(&self.post("/api/v1/schedules", body).await)
    }

    pub async fn node(&self, node_id: i64) -> Value {
        let nodes = self.get("/api/v1/nodes").await;
        nodes
            .as_array()
            .and_then(|a| a.iter().find(|n| n["id"] == node_id).cloned())
            .unwrap_or(Value::Null)
    }

    /// Play logs of a node in a generous window around now.
    /// The node's play logs as a user asks for them first: no window, so the default
    /// (the last day up to now) must hold what was just played.
    pub async fn playlogs(&self, node_id: i64) -> Vec<Value> {
        self.get(&format!("/api/v1/playlogs?node={node_id}"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// SHA-256 of `bytes` in lower-case hex, as the cache and the CMS name blobs.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn id(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

/// A WAV of a 1 kHz tone at half scale starting at full amplitude on its first sample
/// (a cosine), so its first sample marks the start exactly.
pub fn tone_wav(seconds: f32) -> Vec<u8> {
    tone_wav_with_gap(seconds, None)
}

/// [`tone_wav`] with silence over `[at, at + len)` seconds: a mark in the content whose
/// place on each card tells where in the item a node was.
pub fn tone_wav_with_gap(seconds: f32, gap: Option<(f32, f32)>) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap_or_else(|e| panic!("{e}"));
        let n = (48_000.0 * seconds) as usize;
        let silent = |i: usize| {
            let t = i as f32 / 48_000.0;
            gap.is_some_and(|(at, len)| t >= at && t < at + len)
        };
        for i in 0..n {
            let s = match silent(i) {
                true => 0.0,
                false => (i as f32 * 1000.0 * std::f32::consts::TAU / 48_000.0).cos() * 0.5,
            };
            let _ = w.write_sample((s * 32767.0) as i16);
        }
        let _ = w.finalize();
    }
    cursor.into_inner()
}
