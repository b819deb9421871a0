//! A private PulseAudio server with a null sink, paced in real time like a sound card, and
//! a recorder on its monitor: the real device path (cpal -> ALSA -> pulse) with no card.
//! Everything lives in a temp dir; the user's own audio set-up is never touched.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PulseServer {
    dir: tempfile::TempDir,
    daemon: Child,
}

const READY_TIMEOUT: Duration = Duration::from_secs(15);

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + READY_TIMEOUT;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl PulseServer {
    pub fn start() -> PulseServer {
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().join("run");
        std::fs::create_dir(&runtime).unwrap();
        std::fs::write(
            dir.path().join(".asoundrc"),
            "pcm.!default { type pulse }\nctl.!default { type pulse }\n",
        )
        .unwrap();
        let socket = dir.path().join("pulse.sock");
        let daemon = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disable-shm=yes",
                "--log-target=stderr",
            ])
            .arg("--load=module-null-sink sink_name=out rate=48000 format=float32le channels=2")
            .arg(format!(
                "--load=module-native-protocol-unix auth-anonymous=1 socket={}",
                socket.display()
            ))
            .env("HOME", dir.path())
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pulseaudio is installed (./loa deps)");
        let server = PulseServer { dir, daemon };
        wait_until("pulseaudio", || {
            server
                .command("pactl")
                .arg("info")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        server
    }

    /// A command that talks to this server (and only this one) through pulse and ALSA.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env(
                "PULSE_SERVER",
                format!("unix:{}", self.dir.path().join("pulse.sock").display()),
            )
            .env("ALSA_CONFIG_PATH", self.alsa_config());
        cmd
    }

    fn alsa_config(&self) -> PathBuf {
        // The system's alsa.conf, then ours: ALSA_CONFIG_PATH replaces the search, so
        // name both. The pulse plugin reads PULSE_SERVER.
        let ours = self.dir.path().join(".asoundrc");
        let path = format!("/usr/share/alsa/alsa.conf:{}", ours.display());
        PathBuf::from(path)
    }

    /// Starts recording the sink's monitor (f32le, 48 kHz, stereo) into a file; returns
    /// once the recorder is attached, so nothing played afterwards is missed.
    pub fn record(&self) -> Recorder {
        let path = self.dir.path().join("capture.raw");
        let file = std::fs::File::create(&path).unwrap();
        let child = self
            .command("parec")
            .args([
                "-d",
                "out.monitor",
                "--format=float32le",
                "--rate=48000",
                "--channels=2",
                // A generous buffer: with a small one a loaded machine makes the
                // server drop recorded audio, which would read as a playback fault.
                "--latency-msec=100",
            ])
            .stdout(file)
            .spawn()
            .expect("parec is installed");
        wait_until("parec to attach", || {
            let out = self
                .command("pactl")
                .args(["list", "short", "source-outputs"])
                .output();
            out.is_ok_and(|o| !o.stdout.is_empty())
        });
        Recorder { child, path }
    }
}

impl Drop for PulseServer {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

pub struct Recorder {
    child: Child,
    path: PathBuf,
}

impl Recorder {
    /// Waits until everything buffered when playback ended has been recorded (the file
    /// grew by a good margin over the recorder's 100 ms buffer, or stopped growing as the
    /// sink went idle), stops the recorder (SIGINT, so it flushes) and returns what it heard.
    pub fn stop(mut self) -> Vec<f32> {
        const FLUSH_BYTES: u64 = 48_000 * 8 * 4 / 10; // 400 ms of f32 stereo at 48 kHz
        let size = || std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let start = size();
        let (mut last, mut since) = (start, Instant::now());
        let deadline = Instant::now() + Duration::from_secs(5);
        while last - start < FLUSH_BYTES
            && since.elapsed() < Duration::from_millis(600)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
            let now = size();
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        super::f32_le(&std::fs::read(&self.path).unwrap())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
