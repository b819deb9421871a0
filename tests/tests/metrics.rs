//! `/metrics` as a real Prometheus server (Debian's `prometheus`, installed by `./loa
//! deps`) scrapes it from a running controller with a real node, answered through
//! Prometheus's own HTTP query API.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use loa_tests::{Controller, Node, Proc, free_port, wait_for};
use serde_json::Value;

/// Prometheus scraping `target` every second; its API's base URL.
fn start_prometheus(dir: &Path, target: &str) -> (Proc, String) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: loa\n    metrics_path: /metrics\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    assert!(
        Path::new("/usr/bin/prometheus").exists(),
        "prometheus is needed (Debian package prometheus; ./loa deps installs it)"
    );
    let proc = Proc::start(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        dir.join("prometheus.log"),
    );
    (proc, format!("http://127.0.0.1:{port}"))
}

/// An instant query's result vector.
async fn query(base: &str, q: &str) -> Vec<Value> {
    let encoded: String = q
        .bytes()
        .map(|b| match b.is_ascii_alphanumeric() {
            true => (b as char).to_string(),
            false => format!("%{b:02X}"),
        })
        .collect();
    let Ok(res) = reqwest::get(format!("{base}/api/v1/query?query={encoded}")).await else {
        return Vec::new();
    };
    let body: Value = res.json().await.unwrap_or(Value::Null);
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    let village = ctl.api.village("Thôn Đông").await;
    let mut node = Node::enroll(&ctl, dir.path(), "loa-1", village).await;
    node.start(&dir.path().join("loa-1.wav"), &[]);
    node.wait_ready(&ctl.api).await;
    // A node never connected: offline.
    let _silent = Node::enroll(&ctl, dir.path(), "loa-2", village).await;

    // The text itself.
    let text = reqwest::get(format!("{}/metrics", ctl.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("loa_build_info{version="), "{text}");

    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let (_prom, base) = start_prometheus(&prom_dir, &ctl.addr.to_string());
    let up = wait_for("a scrape", Duration::from_secs(60), || async {
        let r = query(&base, "up{job=\"loa\"}").await;
        r.first().filter(|s| s["value"][1] == "1").cloned()
    })
    .await;
    assert_eq!(up["metric"]["job"], "loa");
    // Nodes by status, per village.
    let nodes = query(&base, "loa_nodes{village=\"Thôn Đông\"}").await;
    let count = |status: &str| {
        nodes
            .iter()
            .find(|s| s["metric"]["status"] == status)
            .map_or(0.0, |s| {
                s["value"][1]
                    .as_str()
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
            })
    };
    assert_eq!(count("offline"), 1.0, "{nodes:?}");
    assert_eq!(count("online") + count("degraded"), 1.0, "{nodes:?}");
    // Request latency by route: the route's pattern, not the raw path.
    let routes = query(
        &base,
        "sum by (route) (loa_http_request_duration_seconds_count{route=\"/api/v1/villages\"})",
    )
    .await;
    assert!(!routes.is_empty(), "no request histogram");
    let sessions = query(&base, "loa_node_link_sessions").await;
    assert_eq!(sessions[0]["value"][1], "1", "{sessions:?}");
    node.proc().stop();
}
