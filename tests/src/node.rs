//! A speaker node process for the whole-system tests: enrolled through the API, run with
//! a wav or null card, waited for until its clock is settled.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::{Api, Controller, Proc, bin, id, now_ns, wait_for};

/// A speaker node: its state directory and, when running, its process and wav card.
pub struct Node {
    pub id: i64,
    pub state: PathBuf,
    pub proc: Option<Proc>,
    pub wav: Option<PathBuf>,
}

impl Node {
    /// Adds a node in `village` through the API and enrols it with `speaker-node enroll`.
    pub async fn enroll(ctl: &Controller, dir: &Path, name: &str, village: i64) -> Node {
        Self::enroll_via(ctl, &ctl.url, dir, name, village).await
    }

    /// [`Node::enroll`] with the node dialling `server` (an impairing proxy in front of
    /// the controller, say) for its enrolment and from then on.
    pub async fn enroll_via(
        ctl: &Controller,
        server: &str,
        dir: &Path,
        name: &str,
        village: i64,
    ) -> Node {
        Self::enroll_args(ctl, server, dir, name, village, &[]).await
    }

    /// [`Node::enroll_via`] with extra `enroll` arguments (`--ca-file`...).
    pub async fn enroll_args(
        ctl: &Controller,
        server: &str,
        dir: &Path,
        name: &str,
        village: i64,
        extra: &[&str],
    ) -> Node {
        let created = ctl
            .api
            .post(
                "/api/v1/nodes",
                json!({ "name": name, "village_id": village }),
            )
            .await;
        let code = created["enrollment_code"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let state = dir.join(name);
        let out = Command::new(bin("speaker-node"))
            .args(["enroll", "--server", server, "--code", &code, "--state"])
            .arg(&state)
            .args(extra)
            .output()
            .unwrap_or_else(|e| panic!("enroll: {e}"));
        assert!(
            out.status.success(),
            "enroll: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Node {
            id: id(&created),
            state,
            proc: None,
            wav: None,
        }
    }

    /// Runs the node with a wav card at `wav` and extra arguments (clock knobs...).
    pub fn start(&mut self, wav: &Path, extra: &[&str]) {
        self.start_output(&format!("wav:{}", wav.display()), extra);
        self.wav = Some(wav.to_path_buf());
    }

    /// Runs the node on `output` (`null`, `wav:PATH`...) with extra arguments.
    pub fn start_output(&mut self, output: &str, extra: &[&str]) {
        let mut cmd = Command::new(bin("speaker-node"));
        cmd.arg("run")
            .arg("--state")
            .arg(&self.state)
            .arg("--output")
            .arg(output)
            .args(extra)
            .env("SPEAKER_NODE_LOG", "info");
        let log = self.state.with_extension(format!("{}.log", now_ns()));
        self.proc = Some(Proc::spawn(&mut cmd, log).0);
        self.wav = None;
    }

    pub fn proc(&mut self) -> &mut Proc {
        self.proc
            .as_mut()
            .unwrap_or_else(|| panic!("node not started"))
    }

    /// Waits until the controller reports the node online with its desired state applied
    /// and every blob cached.
    pub async fn wait_ready(&self, api: &Api) {
        self.wait_ready_within(api, 5.0, Duration::from_secs(30))
            .await
    }

    /// [`Node::wait_ready`] with the clock settled once it rests on an exchange faster
    /// than `round_trip_ms` (over an impaired link), waiting up to `timeout`.
    pub async fn wait_ready_within(&self, api: &Api, round_trip_ms: f64, timeout: Duration) {
        let what = format!("node {} ready", self.id);
        wait_for(&what, timeout, || async {
            let n = api.node(self.id).await;
            // A settled clock too: an estimate resting on a fast exchange.
            let settled = n["health"]["round_trip_ms"]
                .as_f64()
                .is_some_and(|rtt| rtt < round_trip_ms);
            let ready = n["online"] == true
                && n["lagging"] == false
                && settled
                && n["applied_version"].is_string()
                && n["health"]["missing_blobs"]
                    .as_array()
                    .is_some_and(Vec::is_empty);
            ready.then_some(())
        })
        .await;
    }
}
