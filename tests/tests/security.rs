//! The security review's findings that need the real controller process: slow and silent
//! connections let go, a burst of logins that cannot take the server's memory, a node
//! token copied onto a second device refused while the node is linked, data files for
//! the service's user only, and passwords that never have to be on the command line.

// Test helpers: a failed set-up step should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use loa_tests::{Controller, Node, bin, tone_wav};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Waits for the server to close `sock`; how long that took.
async fn closed_after(mut sock: tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout_at((start + limit).into(), sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_connections_are_let_go_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start_with(dir.path(), &["--header-timeout-s", "2"]).await;
    // Twenty slowloris clients: a request head a byte at a time, never finished.
    let mut slow = Vec::new();
    for i in 0..20 {
        let mut sock = tokio::net::TcpStream::connect(ctl.addr).await.unwrap();
        sock.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-{i}: ").as_bytes())
            .await
            .unwrap();
        slow.push(tokio::spawn(async move {
            let (mut rd, mut wr) = sock.into_split();
            let drip = tokio::spawn(async move {
                while wr.write_all(b"a").await.is_ok() {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            });
            let start = Instant::now();
            let mut buf = [0u8; 256];
            let closed = loop {
                match tokio::time::timeout(Duration::from_secs(15), rd.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break Some(start.elapsed()),
                    Ok(Ok(_)) => continue,
                    Err(_) => break None,
                }
            };
            drip.abort();
            closed
        }));
    }
    // One that connects and says nothing at all.
    let silent = tokio::net::TcpStream::connect(ctl.addr).await.unwrap();
    let silent = tokio::spawn(closed_after(silent, Duration::from_secs(15)));
    // Meanwhile everyone else is served.
    let res = ctl
        .api
        .http
        .get(format!("{}/healthz", ctl.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for s in slow {
        let took = s
            .await
            .unwrap()
            .expect("a slowloris connection was held 15 s");
        assert!(took < Duration::from_secs(8), "{took:?}");
    }
    let took = silent
        .await
        .unwrap()
        .expect("a silent connection was held 15 s");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_logins_waits_for_hashing_slots_instead_of_taking_memory() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    let before = ctl.proc.rss_mb();
    // 25 users (so the per-user limit does not cut the burst short), one wrong password
    // each, all at once: argon2 takes ~19 MB a hash; unbounded that was +430 MB.
    let names: Vec<String> = (0..25).map(|i| format!("nguoi{i}")).collect();
    let burst = names.iter().map(|name| {
        let http = ctl.api.http.clone();
        let url = format!("{}/api/v1/auth/login", ctl.url);
        let body = serde_json::json!({ "username": name, "password": "sai mật khẩu" });
        async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    let sampler = async {
        let mut peak: f64 = 0.0;
        for _ in 0..100 {
            peak = peak.max(ctl.proc.rss_mb());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak
    };
    let (codes, peak) = tokio::join!(futures_util::future::join_all(burst), sampler);
    // A burst from one address: some checked (401), the rest refused (429); none failed.
    assert!(
        codes.iter().all(|c| matches!(c, Ok(401) | Ok(429))),
        "{codes:?}"
    );
    let grew = peak - before;
    eprintln!("controller RSS {before:.0} MB before, peak {peak:.0} MB in a burst of 25 logins");
    assert!(grew < 150.0, "memory grew {grew:.0} MB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_node_token_cannot_take_over_a_linked_node() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    let village = ctl.api.village("Thôn Nam").await;
    let mut node = Node::enroll(&ctl, dir.path(), "loa-that", village).await;
    node.start_output("null", &[]);
    node.wait_ready(&ctl.api).await;
    let token = std::fs::read_to_string(node.state.join("token")).unwrap();
    let link = format!("{}/api/v1/nodes/link", ctl.url.replace("http://", "ws://"));
    let mut req = link.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut impostor, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), impostor.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.reason.to_string()),
            Ok(Some(Ok(_))) => continue,
            other => panic!("the impostor's link was not closed: {other:?}"),
        }
    };
    assert_eq!(
        closed.as_deref(),
        Some("this node is already linked from elsewhere")
    );
    // The real node stayed linked; its history says what happened.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ctl.api.node(node.id).await["online"], true);
    let events = ctl
        .api
        .get(&format!("/api/v1/nodes/{}/events", node.id))
        .await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "duplicate_link"),
        "{events}"
    );
    assert!(
        !node
            .proc()
            .log_text()
            .contains("replaced by a newer connection")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_the_services_own_and_passwords_come_from_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    ctl.api.approved_audio("Bản tin", tone_wav(0.5)).await;
    let mut checked = 0;
    let mut stack = vec![ctl.data.clone()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
        checked += 1;
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    assert!(checked >= 4, "{checked} files");
    // A user added with the password on standard input (not in argv or the environment).
    let mut add = Command::new(bin("controller"))
        .args([
            "user",
            "add",
            "--username",
            "bientap",
            "--role",
            "editor",
            "--data",
        ])
        .arg(&ctl.data)
        .env_remove("LOA_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all("mật khẩu từ stdin\n".as_bytes())
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = loa_tests::Api::login(&ctl.url, "bientap", "mật khẩu từ stdin").await;
    assert!(!api.token.is_empty());
}
