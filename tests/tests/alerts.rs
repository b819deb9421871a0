//! Alerts end to end: a real node killed and started again; a real SMTP server (Debian's
//! python3-aiosmtpd, writing a maildir) receives exactly one offline alert and one
//! recovery, and the commune's webhook gets the same two as JSON.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loa_tests::{Controller, Node, Proc, free_port, wait_for};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An SMTP server on `port` writing every message into `maildir`.
fn start_smtp(dir: &Path, port: u16) -> Proc {
    assert!(
        Path::new("/usr/lib/python3/dist-packages/aiosmtpd").exists(),
        "python3-aiosmtpd is needed (./loa deps installs it)"
    );
    Proc::start(
        Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.join("maildir")),
        dir.join("smtp.log"),
    )
}

/// The subjects and bodies of the messages received so far, decoded.
fn mails(dir: &Path) -> Vec<(String, String)> {
    let script = r#"
import sys, json, email, email.header, email.policy, pathlib
out = []
for p in sorted(pathlib.Path(sys.argv[1]).glob("new/*")):
    m = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
    out.append([str(m["subject"]), m.get_content()])
print(json.dumps(out))
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(dir.join("maildir"))
        .output()
        .unwrap();
    serde_json::from_slice::<Vec<(String, String)>>(&out.stdout).unwrap_or_default()
}

/// A webhook receiver: every POST body, as JSON.
async fn start_webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        if let Ok(v) = serde_json::from_str::<Value>(&body[..len]) {
                            keep.lock().unwrap().push(v);
                        }
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        return;
                    }
                }
            });
        }
    });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_and_back_is_one_alert_and_one_recovery_by_email_and_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let _smtp = start_smtp(dir.path(), smtp_port);
    let (hook, posts) = start_webhook().await;
    let smtp = format!("smtp://127.0.0.1:{smtp_port}");
    let ctl = Controller::start_with(
        dir.path(),
        &[
            "--smtp-url",
            &smtp,
            "--alert-interval-s",
            "1",
            "--node-offline-after-s",
            "12",
        ],
    )
    .await;
    let (status, body) = ctl
        .api
        .call(
            reqwest::Method::PUT,
            "/api/v1/alerts/settings",
            Some(json!({ "emails": ["truongthon@xa-dong.vn"], "webhook_url": hook, "offline_minutes": 0 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let village = ctl.api.village("Thôn Đông").await;
    let mut node = Node::enroll(&ctl, dir.path(), "loa-1", village).await;
    node.start(&dir.path().join("loa-1.wav"), &[]);
    node.wait_ready(&ctl.api).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(mails(dir.path()).is_empty(), "no alert while all is well");

    // Power cut: one offline alert.
    node.proc().kill();
    let down = wait_for("the offline email", Duration::from_secs(60), || async {
        let m = mails(dir.path());
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(down.len(), 1, "{down:?}");
    assert!(
        down[0].0.contains("loa-1 (Thôn Đông): mất kết nối"),
        "{down:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(mails(dir.path()).len(), 1, "told once while it lasts");

    // Power back: one recovery.
    node.start(&dir.path().join("loa-1b.wav"), &[]);
    let both = wait_for("the recovery email", Duration::from_secs(60), || async {
        let m = mails(dir.path());
        (m.len() >= 2).then_some(m)
    })
    .await;
    assert!(both[1].0.contains("đã kết nối lại"), "{both:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(mails(dir.path()).len(), 2);
    let events: Vec<(String, String)> = posts
        .lock()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["event"].as_str().unwrap_or("").to_owned(),
                p["kind"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want =
        [("alert", "offline"), ("recovered", "offline")].map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(events, want);
    let alerts = ctl.api.get("/api/v1/alerts").await;
    assert_eq!(alerts[0]["kind"], "offline");
    assert!(alerts[0]["closed_at"].is_string(), "{alerts}");
    node.proc().stop();
}
