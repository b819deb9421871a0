//! The demo's speaker nodes: real `speaker-node run` processes beside the controller,
//! enrolled on first start (state under `DATA/nodes/ID`). The first plays on the default
//! sound device when the machine has one; the others (and the first without a device)
//! play into simulated cards, `DATA/nodes/ID.wav` (16 kHz mono, so a demo left running
//! grows about 115 MB an hour per node; each start begins the file afresh).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cms::Cms;

pub struct DemoNodes {
    children: Vec<(String, Child)>,
}

/// `speaker-node` beside this executable (a cargo build puts them together), else on PATH.
fn node_binary() -> Option<PathBuf> {
    let sibling = std::env::current_exe().ok()?.parent()?.join("speaker-node");
    if sibling.exists() {
        return Some(sibling);
    }
    let on_path = Command::new("speaker-node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    on_path.then(|| PathBuf::from("speaker-node"))
}

fn has_default_device(bin: &Path) -> bool {
    Command::new(bin)
        .args(["devices", "--json"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v.as_array().cloned())
        .is_some_and(|list| list.iter().any(|d| d["is_default"] == true))
}

impl DemoNodes {
    /// Enrols (first time) and starts the first `count` nodes of the demo commune, linked
    /// by WebSocket or, with `broker` (its URLs and the commune's topic scope), through
    /// the broker.
    pub async fn start(
        cms: &Cms,
        url: &str,
        data: &Path,
        count: u32,
        broker: Option<(String, String)>,
    ) -> Result<DemoNodes> {
        let mut out = DemoNodes {
            children: Vec::new(),
        };
        let Some(bin) = node_binary() else {
            println!(
                "  (demo nodes not started: build speaker-node, e.g. cargo build -p speaker-node)"
            );
            return Ok(out);
        };
        let cid = cms.default_commune();
        let nodes = cms
            .store()
            .call(move |c| cms::store::places::nodes(c, cid))
            .await?;
        let mut nodes: Vec<_> = nodes.into_iter().collect();
        nodes.sort_by_key(|n| n.id);
        let device = has_default_device(&bin);
        let dir = data.join("nodes");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for (i, node) in nodes.iter().take(count as usize).enumerate() {
            let state = dir.join(node.id.to_string());
            if !state.join("token").exists() {
                let code = cms.new_enrollment_code(node.id).await?;
                let status = Command::new(&bin)
                    .args(["enroll", "--server", url, "--code", &code, "--state"])
                    .arg(&state)
                    .stdout(Stdio::null())
                    .status()
                    .context("speaker-node enroll")?;
                anyhow::ensure!(status.success(), "enrolling demo node {} failed", node.name);
            }
            let output = match i == 0 && device {
                true => "device".to_string(),
                false => format!("wav:{}", dir.join(format!("{}.wav", node.id)).display()),
            };
            let log = dir.join(format!("{}.log", node.id));
            let log_file = std::fs::File::create(&log)
                .with_context(|| format!("cannot create {}", log.display()))?;
            let child = Command::new(&bin)
                .arg("run")
                .arg("--state")
                .arg(&state)
                .args([
                    "--output",
                    &output,
                    "--card-rate",
                    "16000",
                    "--card-channels",
                    "1",
                ])
                .arg("--stop-on-stdin-eof")
                .args(broker.iter().flat_map(|(urls, scope)| {
                    ["--broker", urls.as_str(), "--broker-scope", scope.as_str()]
                }))
                .env("SPEAKER_NODE_LOG", "info")
                // The node's stdin is ours: when this process ends, even killed, it stops.
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .context("cannot start speaker-node")?;
            let link = if broker.is_some() { ", via MQTT" } else { "" };
            println!(
                "  node        {} -> {output}{link} (log {})",
                node.name,
                log.display()
            );
            out.children.push((node.name.clone(), child));
        }
        Ok(out)
    }

    /// SIGTERM to every node, then wait for them (they finish their cards and logs).
    pub fn stop(mut self) {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .args(["-s", "TERM", &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (name, child) in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        tracing::warn!(%name, "demo node did not stop; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for DemoNodes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
        }
    }
}
