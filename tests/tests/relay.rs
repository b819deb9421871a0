//! Relays (tiếp sóng) on a real node: a scheduled relay item makes the node open the
//! stream URL and play it for the span. The stream here (a local server) dies, then
//! refuses, then comes back: the node dials again with backoff, plays silence in between,
//! never sticks, and the play log says how much of the span played and how many
//! reconnects it took.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use loa_tests::{Card, Controller, Node, id, now_ns, timing_turn, wait_for, whole_ms};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A station on loopback streaming `mp3` in real time: the first connection dies after
/// 3 s, the second is refused (503), the rest stream to the end.
async fn station(mp3: Vec<u8>, seconds: f64) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/radio.mp3", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    let per_second = (mp3.len() as f64 / seconds) as usize;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let mp3 = mp3.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 2048];
                let _ = socket.read(&mut head).await;
                if n == 1 {
                    let _ = socket
                        .write_all(b"HTTP/1.0 503 Service Unavailable\r\n\r\n")
                        .await;
                    return;
                }
                let _ = socket
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n")
                    .await;
                let limit = if n == 0 { 3 * per_second } else { mp3.len() };
                let began = Instant::now();
                let mut sent = 0;
                for chunk in mp3[..limit].chunks(per_second / 10) {
                    if socket.write_all(chunk).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                    let due = Duration::from_secs_f64(sent as f64 / per_second as f64);
                    if let Some(wait) = due.checked_sub(began.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
            });
        }
    });
    (url, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_plays_its_span_through_a_dying_source_and_logs_what_played() {
    let _turn = timing_turn().await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    let village = ctl.api.village("Thôn Tiếp Sóng").await;
    let mut node = Node::enroll(&ctl, dir.path(), "relay-node", village).await;
    node.start(&dir.path().join("r.wav"), &[]);
    node.wait_ready(&ctl.api).await;
    // 60 s of the news sample at 64 kbps as the station's programme.
    let programme = dir.path().join("programme.mp3");
    let samples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../audio-samples/news.mp3");
    let ok = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-stream_loop",
            "-1",
            "-i",
        ])
        .arg(&samples)
        .args(["-t", "60", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k"])
        .arg(&programme)
        .status()
        .unwrap();
    assert!(ok.success());
    let (url, connections) = station(std::fs::read(&programme).unwrap(), 60.0).await;
    let relay = ctl
        .api
        .post(
            "/api/v1/content/relay",
            json!({ "title": "Đài tỉnh", "url": url, "duration_ms": 12_000 }),
        )
        .await;
    let relay_id = id(&relay);
    ctl.api.approve(relay_id).await;
    let t = whole_ms(now_ns() + 5_000_000_000);
    ctl.api
        .play_once("Tiếp sóng đài tỉnh", relay_id, &[node.id], t, "normal")
        .await;
    let log = wait_for("the relay's play log", Duration::from_secs(40), || async {
        let logs = ctl.api.playlogs(node.id).await;
        logs.into_iter().find(|l| l["content_id"] == relay_id)
    })
    .await;
    node.proc().stop();
    let reason = log["reason"].as_str().unwrap_or_default().to_string();
    println!("relay: {} — {reason}", log["outcome"]);
    assert_eq!(log["outcome"], "completed", "{log}");
    assert!(reason.starts_with("relay: "), "{reason}");
    assert!(
        connections.load(Ordering::SeqCst) >= 3,
        "it dialled again after the failures"
    );
    assert!(!reason.contains(" 0 reconnects"), "{reason}");
    // On the card: sound from the start, a gap after the source died, sound again, and
    // the span over on time (12 s), then silence.
    let card = Card::read(&dir.path().join("r.wav"));
    let start = card.first_sound_after(t - 1_000_000_000).unwrap();
    assert!(
        ((start - t) as f64 / 1e6).abs() < 500.0,
        "started {} ms off",
        (start - t) / 1_000_000
    );
    let after = card.first_sound_after(t + 12_500_000_000);
    assert!(after.is_none(), "still sounding after the span");
    let resumed = card.first_sound_after(t + 4_000_000_000);
    assert!(
        resumed.is_some_and(|r| r < t + 12_000_000_000),
        "the stream came back"
    );
}
