//! What the network and bad peers do to the fleet link: a download cut by a node's death
//! resumes without a corrupt cache; wrong and revoked tokens, malformed and oversized
//! frames are refused and close only their own connection.

// Test helpers: a failed set-up step should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use loa_tests::{Controller, Node, now_ns, sha256_hex, tone_wav, wait_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A slow mirror of one blob (as a CDN in front of the controller would be): serves
/// `GET /content/SHA` with Range support at about 1 MB/s and records each Range asked
/// (and `authorization!` for a request that carried credentials: it never should).
async fn slow_mirror(blob: Vec<u8>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let blob = Arc::new(blob);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (blob, seen) = (blob.clone(), seen.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && sock.read(&mut byte).await.unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_lowercase();
                let start: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("range: bytes="))
                    .and_then(|r| r.trim().trim_end_matches('-').parse().ok())
                    .unwrap_or(0);
                if head.lines().any(|l| l.starts_with("authorization:")) {
                    seen.lock().unwrap().push("authorization!".into());
                }
                seen.lock().unwrap().push(format!("bytes={start}-"));
                let body = &blob[start.min(blob.len())..];
                let status = if start > 0 {
                    "206 Partial Content"
                } else {
                    "200 OK"
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-range: bytes {start}-{}/{}\r\nconnection: close\r\n\r\n",
                    body.len(),
                    blob.len() - 1,
                    blob.len()
                );
                if sock.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
                for chunk in body.chunks(16 * 1024) {
                    if sock.write_all(chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(16)).await;
                }
            });
        }
    });
    (url, ranges)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_by_a_killed_node_resumes_and_the_cache_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    let village = ctl.api.village("Thôn Bắc").await;
    let wav = tone_wav(30.0); // ~2.9 MB: about 3 s through the mirror
    let (content, sha) = ctl.api.approved_audio("Bản tin dài", wav.clone()).await;
    let mut node = Node::enroll(&ctl, dir.path(), "loa-mirror", village).await;
    ctl.api
        .play_once(
            "Tối nay",
            content,
            &[node.id],
            now_ns() + 3_600_000_000_000,
            "normal",
        )
        .await;
    let (mirror, ranges) = slow_mirror(wav.clone()).await;
    let args = ["--content-base-url", mirror.as_str()];
    node.start(&dir.path().join("m1.wav"), &args);
    let partial = node.state.join("cache/partial").join(&sha);
    let cached = node.state.join("cache").join(&sha);
    wait_for("half a download", Duration::from_secs(30), || async {
        let len = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        (len > wav.len() as u64 / 4).then_some(())
    })
    .await;
    node.proc().kill();
    let kept = std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
    assert!(
        kept > 0 && kept < wav.len() as u64,
        "partial {kept} of {}",
        wav.len()
    );
    assert!(!cached.exists(), "an incomplete blob is in the cache");
    node.start(&dir.path().join("m2.wav"), &args);
    wait_for("the resumed download", Duration::from_secs(30), || async {
        cached.exists().then_some(())
    })
    .await;
    node.wait_ready(&ctl.api).await;
    let got = std::fs::read(&cached).unwrap();
    assert_eq!(sha256_hex(&got), sha);
    assert!(!partial.exists());
    let ranges = ranges.lock().unwrap().clone();
    // The node token never goes to a mirror: with it, anyone could pass for the node.
    assert!(!ranges.iter().any(|r| r == "authorization!"), "{ranges:?}");
    assert_eq!(ranges[0], "bytes=0-");
    let resumed: u64 = ranges[1]
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(
        resumed >= kept.saturating_sub(64 * 1024) && resumed > 0,
        "{ranges:?}, kept {kept}"
    );
    let log = node.proc().log_text();
    assert!(log.contains("resuming download"), "{log}");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn dial(url: &str, token: &str) -> Result<Ws, String> {
    let link = format!("{}/api/v1/nodes/link", url.replace("http://", "ws://"));
    let mut req = link.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

async fn hello(ws: &mut Ws) {
    let hello = r#"{"kind":"hello","protocol":1,"agent":"test"}"#;
    ws.send(Message::text(hello)).await.unwrap();
    let welcome = next_text(ws).await.unwrap_or_default();
    assert!(welcome.contains(r#""kind":"welcome""#), "{welcome}");
    let desired = next_text(ws).await.unwrap_or_default();
    assert!(desired.contains(r#""kind":"desired""#), "{desired}");
}

/// The next text frame, skipping pings; `None` once closed.
async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .ok()??
        {
            Ok(Message::Text(t)) => return Some(t.to_string()),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_bad_frames_are_refused_and_only_their_link_closes() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    let village = ctl.api.village("Thôn Nam").await;
    // A real node that must not notice any of this.
    let mut good = Node::enroll(&ctl, dir.path(), "loa-tot", village).await;
    good.start(&dir.path().join("good.wav"), &[]);
    good.wait_ready(&ctl.api).await;
    // Raw links with the tokens of two more enrolled nodes.
    let x = Node::enroll(&ctl, dir.path(), "loa-x", village).await;
    let y = Node::enroll(&ctl, dir.path(), "loa-y", village).await;
    let token = |n: &Node| std::fs::read_to_string(n.state.join("token")).unwrap();

    // Wrong, user and missing tokens: no link.
    for bad in ["ln_0000", "not-a-token", ctl.api.token.as_str(), ""] {
        let err = dial(&ctl.url, bad).await.err().unwrap_or_default();
        assert!(err.contains("401"), "{bad:?}: {err}");
    }
    // A node token opens nothing but node routes and blobs.
    let user_route = ctl
        .api
        .http
        .get(format!("{}/api/v1/content", ctl.url))
        .bearer_auth(token(&x))
        .send()
        .await
        .unwrap();
    assert_eq!(user_route.status().as_u16(), 403);

    // Unknown kinds are ignored: the link answers the next ping.
    let mut ws = dial(&ctl.url, &token(&x)).await.unwrap();
    hello(&mut ws).await;
    ws.send(Message::text(r#"{"kind":"from_the_future","x":1}"#))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"kind":"ping","t0":5}"#))
        .await
        .unwrap();
    let pong = next_text(&mut ws).await.unwrap_or_default();
    assert!(
        pong.contains(r#""kind":"pong""#) && pong.contains(r#""t0":5"#),
        "{pong}"
    );
    // Malformed: closed.
    ws.send(Message::text("this is not json")).await.unwrap();
    assert_eq!(next_text(&mut ws).await, None);

    // A message before hello, and an oversized frame: closed.
    let mut ws = dial(&ctl.url, &token(&x)).await.unwrap();
    ws.send(Message::text(r#"{"kind":"ping","t0":1}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, None);
    let mut ws = dial(&ctl.url, &token(&y)).await.unwrap();
    hello(&mut ws).await;
    let huge = format!(
        r#"{{"kind":"ping","t0":1,"pad":"{}"}}"#,
        "x".repeat(5 << 20)
    );
    let _ = ws.send(Message::text(huge)).await;
    assert_eq!(next_text(&mut ws).await, None);

    // Revoking a node ends its live link at once, and its token stops working.
    let mut ws = dial(&ctl.url, &token(&y)).await.unwrap();
    hello(&mut ws).await;
    ctl.api
        .post(
            &format!("/api/v1/nodes/{}/revoke", y.id),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(next_text(&mut ws).await, None);
    let err = dial(&ctl.url, &token(&y)).await.err().unwrap_or_default();
    assert!(err.contains("401"), "{err}");

    // The good node never noticed: still online, and it still gets new schedules.
    let (content, _) = ctl.api.approved_audio("Sau cùng", tone_wav(0.5)).await;
    ctl.api
        .play_once(
            "Kiểm tra",
            content,
            &[good.id],
            now_ns() + 3_600_000_000_000,
            "normal",
        )
        .await;
    good.wait_ready(&ctl.api).await;
    assert!(good.proc().running());
    let events = ctl
        .api
        .get(&format!("/api/v1/nodes/{}/events", good.id))
        .await;
    let offline = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "offline")
        .count();
    assert_eq!(offline, 0, "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_peer_is_noticed_within_15_s_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctl = Controller::start(dir.path()).await;
    let village = ctl.api.village("Thôn Lặng").await;
    let mut node = Node::enroll(&ctl, dir.path(), "loa-lang", village).await;
    node.start(&dir.path().join("f.wav"), &[]);
    node.wait_ready(&ctl.api).await;
    let dead = "link dead";
    // A frozen node (a hung board, a link that silently drops everything).
    node.proc().signal("STOP");
    let frozen = std::time::Instant::now();
    wait_for(
        "the controller to drop the frozen node",
        Duration::from_secs(25),
        || async { ctl.proc.log_text().contains(dead).then_some(()) },
    )
    .await;
    let took = frozen.elapsed();
    eprintln!("the controller dropped a frozen node after {took:?}");
    assert!(
        took <= Duration::from_secs(15),
        "controller noticed after {took:?}"
    );
    node.proc().signal("CONT");
    // Back: the node notices its own dead link at once and dials again.
    let node_log = node.proc().log.clone();
    let count = |what: &str| {
        std::fs::read_to_string(&node_log)
            .unwrap_or_default()
            .matches(what)
            .count()
    };
    wait_for("the node to redial", Duration::from_secs(20), || async {
        (count("link up") >= 2).then_some(())
    })
    .await;
    let deaths = count(dead);
    // A frozen controller.
    ctl.proc.signal("STOP");
    let frozen = std::time::Instant::now();
    wait_for(
        "the node to drop the frozen controller",
        Duration::from_secs(25),
        || async { (count(dead) > deaths).then_some(()) },
    )
    .await;
    let took = frozen.elapsed();
    eprintln!("the node dropped a frozen controller after {took:?}");
    ctl.proc.signal("CONT");
    assert!(
        took <= Duration::from_secs(15),
        "node noticed after {took:?}"
    );
    ctl.proc.kill();
}
