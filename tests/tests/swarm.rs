//! `speaker-node swarm` against a real controller, the short version of the fleet
//! benchmark (`./loa bench swarm` runs 1,000 to 10,000): twenty simulated nodes enrolled
//! through the API link, apply a schedule change, play it and have their play logs
//! stored, and confirm an emergency; by WebSocket, and through a real Mosquitto.

// Test helpers: a failed set-up step should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use loa_tests::{Controller, Proc, bin, now_ns, tone_wav};
use serde_json::{Value, json};

const NODES: i64 = 20;

/// The swarm's status lines, as they come.
struct Lines(mpsc::Receiver<Value>);

impl Lines {
    /// The first line that `check` accepts, within `timeout`.
    fn until(&self, what: &str, timeout: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.0.recv_timeout(left) {
                Ok(v) if check(&v) => return v,
                Ok(v) => last = v,
                Err(_) => break,
            }
        }
        panic!("{what}: not within {timeout:?}; last line {last}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_links_applies_plays_and_confirms_an_emergency() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    swarm(&ctl, dir.path(), &[]).await;
}

/// The same through a broker: the controller serves the swarm's nodes through Mosquitto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_through_mosquitto_links_applies_plays_and_confirms_an_emergency() {
    let dir = tempfile::tempdir().unwrap();
    let broker = loa_tests::broker::Mosquitto::start().await;
    let ctl = Controller::start_with(dir.path(), &["--broker", &broker.url()]).await;
    swarm(&ctl, dir.path(), &["--broker", &broker.url()]).await;
}

/// Twenty swarm nodes against `ctl` (with `extra` swarm arguments): linked, online, a
/// change applied and played and logged, an emergency confirmed and counted.
async fn swarm(ctl: &Controller, dir: &std::path::Path, extra: &[&str]) {
    let (content, _) = ctl.api.approved_audio("Bản tin", tone_wav(1.0)).await;
    let mut cmd = Command::new(bin("speaker-node"));
    cmd.args(["swarm", "--server", &ctl.url, "--count", &NODES.to_string()])
        .args(extra)
        .args([
            "--prefix",
            "bay",
            "--report-every-s",
            "1",
            "--run-for-s",
            "120",
        ])
        .env("LOA_SWARM_TOKEN", &ctl.api.token);
    let (mut swarm, out) = Proc::start_piped(&mut cmd, dir.join("swarm.log"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    let lines = Lines(rx);
    let enrolled = lines.until("enrolment", Duration::from_secs(60), |v| {
        v["kind"] == "enrolled"
    });
    assert_eq!(enrolled["nodes"], NODES);
    let village = enrolled["village"].as_i64().unwrap();
    lines.until("all linked", Duration::from_secs(30), |v| {
        v["linked"] == NODES
    });
    let nodes = ctl.api.get("/api/v1/nodes").await;
    let online = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["name"].as_str().unwrap_or("").starts_with("bay-") && n["online"] == true)
        .count();
    assert_eq!(online as i64, NODES, "{nodes}");

    // A schedule for the village: every node applies the new version and plays it.
    let at = chrono::DateTime::from_timestamp_nanos(now_ns() + 4_000_000_000)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let asked = chrono::Utc::now().timestamp_millis();
    ctl.api
        .post(
            "/api/v1/schedules",
            json!({ "title": "Bản tin thử", "content_ids": [content],
                    "targets": { "villages": [village] }, "priority": "normal",
                    "rule": { "once": at } }),
        )
        .await;
    // Every node's latest apply moved past the change.
    let applied = lines.until("the change applied", Duration::from_secs(20), |v| {
        v["applied"]["nodes"] == NODES && v["applied"]["first_ms"].as_i64() > Some(asked)
    });
    let took = applied["applied"]["last_ms"].as_i64().unwrap() - asked;
    assert!(took < 5_000, "the change took {took} ms to reach all");
    lines.until("the plays logged", Duration::from_secs(30), |v| {
        v["plays"].as_i64() >= Some(NODES) && v["logs_acked"].as_i64() >= Some(NODES)
    });
    let summary = ctl
        .api
        .get(&format!("/api/v1/reports/summary?village={village}"))
        .await;
    assert!(summary.to_string().contains("\"played\""), "{summary}");

    // An emergency: every node confirms it playing, and the controller counts them.
    let asked = chrono::Utc::now().timestamp_millis();
    let e = ctl
        .api
        .post(
            "/api/v1/emergency",
            json!({ "content_id": content, "targets": { "villages": [village] } }),
        )
        .await;
    let status = lines.until("the emergency confirmed", Duration::from_secs(20), |v| {
        v["emergencies"]
            .as_array()
            .is_some_and(|es| es.iter().any(|x| x["nodes"] == NODES))
    });
    let last = status["emergencies"][0]["last_ms"].as_i64().unwrap();
    assert!(last - asked < 3_000, "confirmed {} ms after", last - asked);
    let reach = loa_tests::wait_for("the reach", Duration::from_secs(10), || async {
        let r = ctl.api.get(&format!("/api/v1/emergency/{}", e["id"])).await;
        (r["reached"] == NODES).then_some(r)
    })
    .await;
    assert_eq!(reach["total"], NODES);
    assert!(swarm.running(), "{}", swarm.log_text());
    swarm.stop();
}
