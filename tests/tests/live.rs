//! Live voice end to end: real ffmpeg as an Icecast source, a real controller encoding
//! Opus, real nodes playing it on their simulated cards. The same moment of the source is
//! heard on every node (one of them joining after the session began), the session ends
//! with its source, a busy mount and wrong credentials are refused; latency from the
//! ingest to the output is measured with a source the test paces itself.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use loa_tests::live::{SOURCE_PASSWORD as PASSWORD, WARNING_PASSWORD, send_paced, send_paced_as};
use loa_tests::{
    Card, Controller, Node, now_ns, timing_turn, tone_wav, tone_wav_with_gap, wait_for, whole_ms,
};
use serde_json::Value;

fn mount(ctl: &Controller, village: i64) -> String {
    format!("{}/live/{village}", ctl.url)
}

/// A source that sends a few bytes to the village's mount with `password`: the answer.
async fn put_source(ctl: &Controller, village: i64, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .put(mount(ctl, village))
        .basic_auth("source", Some(password))
        .body(vec![0u8; 64])
        .send()
        .await
        .unwrap()
}

async fn live_logs(ctl: &Controller, node: i64) -> Vec<Value> {
    ctl.api
        .playlogs(node)
        .await
        .into_iter()
        .filter(|l| l["content_id"].is_null() || l["content_id"] == 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_icecast_source_is_heard_on_every_node_in_step_and_ends_with_its_source() {
    let _turn = timing_turn().await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start_with(dir.path(), &["--source-password", PASSWORD]).await;
    let village = ctl.api.village("Thôn Trực Tiếp").await;
    let mut a = Node::enroll(&ctl, dir.path(), "live-a", village).await;
    let mut b = Node::enroll(&ctl, dir.path(), "live-b", village).await;
    a.start(&dir.path().join("a.wav"), &[]);
    a.wait_ready(&ctl.api).await;
    // 8 s of tone with a 60 ms silence 5 s in: the mark to find on each card.
    let source = dir.path().join("source.wav");
    std::fs::write(&source, tone_wav_with_gap(8.0, Some((5.0, 0.06)))).unwrap();
    let url = format!(
        "icecast://source:{PASSWORD}@{}/live/{village}",
        ctl.url.trim_start_matches("http://")
    );
    let mut ffmpeg = Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-i",
        ])
        .arg(&source)
        .args([
            "-c:a",
            "libmp3lame",
            "-b:a",
            "64k",
            "-content_type",
            "audio/mpeg",
            "-f",
            "mp3",
            &url,
        ])
        .spawn()
        .unwrap();
    let session = wait_for("the session on air", Duration::from_secs(10), || async {
        let on_air = ctl.api.get("/api/v1/live").await;
        on_air.as_array().and_then(|a| a.first().cloned())
    })
    .await;
    assert_eq!(session["source"], "icecast");
    assert_eq!(session["villages"][0], village);

    // A second source on the busy mount, and wrong credentials, are refused.
    assert_eq!(put_source(&ctl, village, PASSWORD).await.status(), 409);
    let wrong = put_source(&ctl, village, "sai").await;
    assert_eq!(wrong.status(), 401);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["error"],
        "unauthenticated"
    );

    // The second node's link comes up during the session: it joins live.
    b.start(&dir.path().join("b.wav"), &[]);
    let status = tokio::task::spawn_blocking(move || ffmpeg.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "ffmpeg: {status}");
    // The session ends with its source, on every node.
    let id = session["id"].as_i64().unwrap();
    let ended = wait_for("the session ended", Duration::from_secs(15), || async {
        let s = ctl.api.get(&format!("/api/v1/live/{id}")).await;
        s["ended_at"].is_string().then_some(s)
    })
    .await;
    assert_eq!(ended["end_reason"], "the source ended");
    for node in [&a, &b] {
        let logs = wait_for("the live play logged", Duration::from_secs(15), || async {
            let logs = live_logs(&ctl, node.id).await;
            (!logs.is_empty()).then_some(logs)
        })
        .await;
        assert_eq!(logs[0]["schedule_id"], id, "{logs:?}");
        assert_eq!(logs[0]["outcome"], "completed", "{logs:?}");
        assert_eq!(logs[0]["reason"], "the live session ended", "{logs:?}");
    }
    a.proc().stop();
    b.proc().stop();
    let (ca, cb) = (
        Card::read(&dir.path().join("a.wav")),
        Card::read(&dir.path().join("b.wav")),
    );
    if std::env::var_os("LOA_LIVE_KEEP").is_some() {
        println!("kept {}", dir.keep().display());
        return;
    }
    let started = session["started_at"].as_str().unwrap();
    let started = chrono::DateTime::parse_from_rfc3339(started)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap();
    let mark_a = ca
        .sound_after_gap(started + 3_000_000_000, 0.01)
        .expect("the mark on node a");
    let mark_b = cb
        .sound_after_gap(started + 3_000_000_000, 0.01)
        .expect("the mark on node b");
    let spread = (mark_a - mark_b).abs() as f64 / 1e6;
    println!("live: the source's mark on two nodes {spread:.3} ms apart (one joined late)");
    // Typically 0.03 ms; a loaded machine stalls cards (see the emergency test).
    assert!(spread < 15.0, "{spread} ms apart");
}

/// A source paced by the test (a WAV, 20 ms a chunk in real time), so the instant the
/// mark left the source is known; the mark on the node's card says the latency. The
/// source then drops mid-stream: the session ends by itself. A normal item on air when
/// the talk began is paused by it and played again after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_from_the_ingest_to_the_output_and_a_source_that_drops() {
    let _turn = timing_turn().await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start_with(dir.path(), &["--source-password", PASSWORD]).await;
    let village = ctl.api.village("Thôn Đo Trễ").await;
    let (news, _) = ctl
        .api
        .approved_audio("Bản tin", tone_wav_with_gap(6.0, None))
        .await;
    let mut node = Node::enroll(&ctl, dir.path(), "live-lat", village).await;
    node.start(&dir.path().join("n.wav"), &[]);
    node.wait_ready(&ctl.api).await;
    // A normal item on air when the live talk begins: paused by it, played again after.
    let t = whole_ms(now_ns() + 2_000_000_000);
    ctl.api
        .play_once("Bản tin", news, &[node.id], t, "normal")
        .await;
    tokio::time::sleep(Duration::from_nanos(
        (t - now_ns()).max(0) as u64 + 1_000_000_000,
    ))
    .await;
    // 10 s of tone, marks (60 ms of silence) at 3, 5 and 7 s; dropped after 8 s.
    let mut wav = tone_wav_with_gap(10.0, Some((3.0, 0.06)));
    for at in [5.0f32, 7.0] {
        let start = 44 + (at * 48_000.0) as usize * 2;
        for b in &mut wav[start..start + (0.06 * 48_000.0) as usize * 2] {
            *b = 0;
        }
    }
    // Sent in real time; the source drops mid-stream after 8 s.
    let began_ns = send_paced(&mount(&ctl, village), wav, 8.0).await;
    wait_for(
        "the dropped session ended",
        Duration::from_secs(15),
        || async {
            let on_air = ctl.api.get("/api/v1/live").await;
            on_air.as_array().is_some_and(Vec::is_empty).then_some(())
        },
    )
    .await;
    // The news: cut by the live talk, then played whole once it ended.
    let logs = wait_for("the news played again", Duration::from_secs(20), || async {
        let logs = ctl.api.playlogs(node.id).await;
        let news_logs = logs.iter().filter(|l| l["content_id"] == news).count();
        (news_logs >= 2).then_some(logs)
    })
    .await;
    let mut order: Vec<(String, String, String)> = logs
        .iter()
        .map(|l| {
            let what = if l["content_id"] == news {
                "news"
            } else {
                "live"
            };
            (
                l["started_at"].as_str().unwrap_or("").to_string(),
                what.to_string(),
                l["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    order.sort();
    let order: Vec<(&str, &str)> = order
        .iter()
        .map(|(_, w, o)| (w.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("news", "interrupted"),
            ("live", "completed"),
            ("news", "completed")
        ],
        "{logs:?}"
    );
    node.proc().stop();
    let card = Card::read(&dir.path().join("n.wav"));
    let mut latencies = Vec::new();
    for mark in [3.0, 5.0, 7.0] {
        let sent_ns = began_ns + (mark * 1e9) as i64 + 60_000_000;
        let heard = card
            .sound_after_gap(sent_ns - 1_000_000_000, 0.01)
            .expect("the mark on the card");
        latencies.push((heard - sent_ns) as f64 / 1e6);
    }
    println!("live: ingest to output latency of three marks: {latencies:.1?} ms");
    for l in &latencies {
        assert!((0.0..400.0).contains(l), "latency {l} ms");
    }
}

/// Live speech (the news sample) to a node behind a counting proxy: what the node's link
/// carries while it plays, against the 48 kbps a node may use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_voice_takes_under_48_kbps_per_node() {
    let _turn = timing_turn().await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start_with(dir.path(), &["--source-password", PASSWORD]).await;
    let village = ctl.api.village("Thôn Băng Thông").await;
    let target: std::net::SocketAddr = ctl.url.trim_start_matches("http://").parse().unwrap();
    let proxy = loa_tests::impair::Proxy::start(target, Default::default(), 7).await;
    let mut node = Node::enroll_via(&ctl, &proxy.url(), dir.path(), "live-bw", village).await;
    node.start(&dir.path().join("bw.wav"), &[]);
    node.wait_ready(&ctl.api).await;
    let speech = dir.path().join("speech.wav");
    let samples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../audio-samples/news.mp3");
    let ok = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(&samples)
        .args(["-ac", "1", "-ar", "48000", "-c:a", "pcm_s16le"])
        .arg(&speech)
        .status()
        .unwrap();
    assert!(ok.success());
    let wav = std::fs::read(&speech).unwrap();
    let url = mount(&ctl, village);
    let source = tokio::spawn(async move { send_paced(&url, wav, 12.0).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (b0, r0) = proxy.downstream();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (b1, r1) = proxy.downstream();
    let secs = t0.elapsed().as_secs_f64();
    source.await.unwrap();
    node.proc().stop();
    let payload_kbps = (b1 - b0) as f64 * 8.0 / secs / 1000.0;
    // TCP/IPv4 headers with timestamps: 52 bytes a segment.
    let wire_kbps = ((b1 - b0) + 52 * (r1 - r0)) as f64 * 8.0 / secs / 1000.0;
    println!(
        "live: one node's link while it plays live speech: {payload_kbps:.1} kbps of WebSocket bytes, {wire_kbps:.1} kbps with TCP/IP headers ({} segments a second)",
        ((r1 - r0) as f64 / secs).round()
    );
    assert!(payload_kbps > 8.0, "voice flowed: {payload_kbps} kbps");
    assert!(wire_kbps <= 48.0, "{wire_kbps} kbps on the wire");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_source_takes_a_held_mount_and_its_reach_is_counted() {
    let _turn = timing_turn().await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start_with(
        dir.path(),
        &[
            "--source-password",
            PASSWORD,
            "--emergency-source-password",
            WARNING_PASSWORD,
        ],
    )
    .await;
    let village = ctl.api.village("Thôn Cảnh Báo").await;
    let mut node = Node::enroll(&ctl, dir.path(), "warn", village).await;
    node.start(&dir.path().join("warn.wav"), &[]);
    node.wait_ready(&ctl.api).await;
    // A normal source holds the village's mount.
    let url = mount(&ctl, village);
    let normal = {
        let url = url.clone();
        tokio::spawn(async move { send_paced(&url, tone_wav(10.0), 10.0).await })
    };
    wait_for("the normal session", Duration::from_secs(10), || async {
        let on_air = ctl.api.get("/api/v1/live").await;
        on_air.as_array().and_then(|a| a.first().cloned())
    })
    .await;
    // The warning feed's password speaks at emergency level: it takes the held mount, and
    // it is an emergency whose reach the node confirms.
    let warning = {
        let url = url.clone();
        tokio::spawn(async move { send_paced_as(&url, WARNING_PASSWORD, tone_wav(5.0), 5.0).await })
    };
    let emergency = wait_for(
        "the live emergency reached",
        Duration::from_secs(15),
        || async {
            let list = ctl.api.get("/api/v1/emergency").await;
            list.as_array()
                .and_then(|a| a.first().cloned())
                .filter(|e| e["reached"] == 1 && e["total"] == 1)
        },
    )
    .await;
    assert_eq!(emergency["live"], true, "{emergency}");
    assert!(emergency["content_id"].is_null(), "{emergency}");
    // Another normal source is refused while it speaks.
    assert_eq!(put_source(&ctl, village, PASSWORD).await.status(), 409);
    // The warning ends with its source: the emergency is over (stopped), the normal
    // session goes on to its own end.
    warning.await.unwrap();
    let id = emergency["id"].as_i64().unwrap();
    wait_for("the emergency over", Duration::from_secs(15), || async {
        let e = ctl.api.get(&format!("/api/v1/emergency/{id}")).await;
        e["stopped_at"].is_string().then_some(())
    })
    .await;
    normal.await.unwrap();
}
