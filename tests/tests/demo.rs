//! The README's run command: `controller demo` starts the whole system — the controller
//! with the demo commune and its speaker nodes — and takes the nodes down with it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use loa_tests::{Api, bin, wait_for};

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .filter(|c| String::from_utf8_lossy(c).contains(needle))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_three_nodes_that_stop_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../audio-samples");
    let mut child = Command::new(bin("controller"))
        .args(["demo", "--listen", "127.0.0.1:0", "--nodes", "3", "--data"])
        .arg(&data)
        .arg("--samples")
        .arg(&samples)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let lines: Vec<String> = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let done = l.starts_with("listening on ");
            lines.push(l);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    let url = lines
        .last()
        .and_then(|l| l.strip_prefix("listening on "))
        .unwrap_or_else(|| panic!("{lines:?}"))
        .trim_end_matches('/')
        .to_string();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.trim_start().starts_with("node "))
            .count(),
        3,
        "{lines:?}"
    );
    let api = Api::login(&url, "admin", "loalang-demo").await;
    wait_for(
        "three demo nodes online and in step",
        Duration::from_secs(60),
        || async {
            let nodes = api.get("/api/v1/nodes").await;
            let ready = nodes
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|n| n["online"] == true && n["lagging"] == false)
                        .count()
                })
                .unwrap_or(0);
            (ready == 3).then_some(())
        },
    )
    .await;
    let needle = data.join("nodes").display().to_string();
    assert_eq!(processes_with(&needle), 3);
    // Even a killed controller takes its nodes down (they watch their stdin).
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for(
        "the demo nodes to stop",
        Duration::from_secs(15),
        || async { (processes_with(&needle) == 0).then_some(()) },
    )
    .await;
}
