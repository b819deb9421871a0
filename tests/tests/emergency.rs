//! An emergency on real nodes and a real controller: it cuts into the news on every node
//! of the village on the same sample, at the emergency volume; the reach count follows
//! the nodes' confirmations; a node whose link comes back during it still gets it (after
//! fetching the audio); stopping it ends it everywhere and the news restarts.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use loa_tests::{
    Card, Controller, Node, id, now_ns, timing_turn, tone_wav, tone_wav_with_gap, wait_for,
    whole_ms,
};
use serde_json::{Value, json};

/// Host times of the first and last frames above `level` in `[from_ns, to_ns)`.
fn loud_span(card: &Card, level: f32, from_ns: i64, to_ns: i64) -> Option<(i64, i64)> {
    let frame = |ns: i64| ((ns - card.first_ns).max(0) as f64 / 1e9 * card.rate) as usize;
    let frames = card.samples.len() / card.channels;
    let (a, b) = (frame(from_ns), frame(to_ns).min(frames));
    let loud = |f: &usize| card.samples[f * card.channels].abs() > level;
    let first = (a..b).find(loud)?;
    let last = (a..b).rev().find(loud)?;
    let at = |f: usize| card.first_ns + (f as f64 / card.rate * 1e9) as i64;
    Some((at(first), at(last)))
}

async fn emergency(ctl: &Controller, id: i64) -> Value {
    ctl.api.get(&format!("/api/v1/emergency/{id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_reaches_every_node_in_sync_and_stops_everywhere() {
    let _turn = timing_turn().await;
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    let village = ctl.api.village("Thôn Bãi Biển").await;
    let (news, _) = ctl.api.approved_audio("Bản tin", tone_wav(40.0)).await;
    // 50 ms of silence 1.5 s in: where it falls on each card is where in the item it was.
    let storm_wav = tone_wav_with_gap(12.0, Some((1.5, 0.05)));
    let (storm, _) = ctl.api.approved_audio("Bão số 5", storm_wav).await;
    let mut nodes = Vec::new();
    for name in ["loa-a", "loa-b", "loa-c"] {
        nodes.push(Node::enroll(&ctl, dir.path(), name, village).await);
    }
    // Two nodes run at a low volume of their own; the third is down for now.
    for n in &mut nodes[..2] {
        let wav = dir.path().join(format!("{}.wav", n.id));
        n.start(&wav, &["--volume", "40"]);
        n.wait_ready(&ctl.api).await;
    }
    let ids: Vec<i64> = nodes.iter().map(|n| n.id).collect();
    let t = whole_ms(now_ns() + 4_000_000_000);
    ctl.api.play_once("Bản tin", news, &ids, t, "normal").await;
    tokio::time::sleep(Duration::from_nanos(
        (t - now_ns()).max(0) as u64 + 1_500_000_000,
    ))
    .await;

    // The leader calls it: both running nodes confirm playing it, and the page's count
    // says so, within a fraction of a second.
    let called = Instant::now();
    let called_ns = now_ns();
    let body = json!({ "content_id": storm, "targets": { "villages": [village] } });
    let e = ctl.api.post("/api/v1/emergency", body).await;
    let eid = id(&e);
    assert_eq!(
        (e["reached"].as_u64(), e["total"].as_u64()),
        (Some(0), Some(3))
    );
    wait_for("two nodes playing it", Duration::from_secs(5), || async {
        (emergency(&ctl, eid).await["reached"] == 2).then_some(())
    })
    .await;
    let reach_ms = called.elapsed().as_millis();
    println!("emergency: API call to 2 of 2 running nodes confirmed playing: {reach_ms} ms");
    assert!(reach_ms < 2_000, "reach took {reach_ms} ms");

    // The third node's link comes back during the emergency: it fetches the audio, plays
    // it (late, from the beginning) and is counted.
    let wav_c = dir.path().join(format!("{}.wav", nodes[2].id));
    nodes[2].start(&wav_c, &["--volume", "40"]);
    // (A bound on the test, not a figure: starting a node process, its hello and the
    // audio's download took over 20 s once when the whole suite ran.)
    let e = wait_for(
        "the late node playing it",
        Duration::from_secs(40),
        || async {
            let e = emergency(&ctl, eid).await;
            (e["reached"] == 3).then_some(e)
        },
    )
    .await;
    assert!(
        e["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "playing"),
        "{e}"
    );

    // Stopped: it ends on every node at once, and the news restarts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop_ns = now_ns();
    let (status, stopped) = ctl
        .api
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/emergency/{eid}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{stopped}");
    wait_for("every node ended it", Duration::from_secs(10), || async {
        let e = emergency(&ctl, eid).await;
        let ended = e["nodes"].as_array()?.iter().all(|n| n["state"] == "ended");
        ended.then_some(())
    })
    .await;

    // The play logs: news interrupted, the emergency stopped by the commune (the news
    // playing again is logged when it ends).
    let logs = wait_for("two play logs", Duration::from_secs(10), || async {
        let logs = ctl.api.playlogs(ids[0]).await;
        (logs.len() >= 2).then_some(logs)
    })
    .await;
    let mut seen: Vec<(i64, String, String)> = logs
        .iter()
        .map(|l| {
            (
                l["content_id"].as_i64().unwrap_or(0),
                l["outcome"].as_str().unwrap_or("").to_string(),
                l["started_at"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.2.cmp(&b.2));
    let outcomes: Vec<(i64, &str)> = seen.iter().map(|(c, o, _)| (*c, o.as_str())).collect();
    assert_eq!(
        &outcomes[..2],
        [(news, "interrupted"), (storm, "interrupted")],
        "{logs:?}"
    );
    let cut = logs
        .iter()
        .find(|l| l["content_id"] == storm)
        .and_then(|l| l["reason"].as_str())
        .unwrap_or_default();
    assert!(cut.contains("stopped"), "{cut}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in &mut nodes {
        n.proc().stop();
    }

    // The cards: the emergency is far louder than the news (emergency volume 100 against
    // the node's 40), starts on the same sample on both nodes that were up, and ends at
    // the stop; the news is heard again after it.
    let cards: Vec<Card> = nodes[..2]
        .iter()
        .map(|n| Card::read(n.wav.as_ref().unwrap()))
        .collect();
    // The loudest sample over 100 ms from `from_ns`.
    let peak = |card: &Card, from_ns: i64| -> f32 {
        let f = ((from_ns - card.first_ns) as f64 / 1e9 * card.rate) as usize;
        (f..f + card.rate as usize / 10)
            .map(|i| card.samples.get(i * card.channels).map_or(0.0, |s| s.abs()))
            .fold(0.0, f32::max)
    };
    let quiet = peak(&cards[0], t + 500_000_000);
    let mut marks = Vec::new();
    for card in &cards {
        let loud = peak(card, called_ns + 1_000_000_000);
        assert!(loud > 2.0 * quiet, "emergency {loud} against news {quiet}");
        let (start, end) = loud_span(card, (loud + quiet) / 2.0, called_ns, now_ns()).unwrap();
        let since_call = (start - called_ns) / 1_000_000;
        assert!(
            (200..1_000).contains(&since_call),
            "started {since_call} ms after the call"
        );
        let after_stop = (end - stop_ns) / 1_000_000;
        assert!(
            (-100..1_000).contains(&after_stop),
            "ended {after_stop} ms after the stop"
        );
        let news_again = loud_span(card, quiet / 2.0, end + 10_000_000, now_ns());
        assert!(news_again.is_some(), "the news restarts");
        // The mark 1.5 s into the item (a node that heard of it late joined where the
        // others were: its onset is later, its mark is not).
        marks.push(card.sound_after_gap(start + 200_000_000, 1e-4).unwrap());
    }
    let spread_ms = (marks[0] - marks[1]).abs() as f64 / 1e6;
    println!("emergency: the same sample on two nodes {spread_ms:.3} ms apart");
    // Typically under 0.1 ms on this loopback; several ms when the whole suite loads both
    // cores and stalls a node's card (the drift correction then catches up at 2 ms a
    // second: BENCHMARKS.md, sync, tracks the 1 ms target). Far from an echo either way.
    assert!(
        spread_ms < 15.0,
        "the two nodes played it {spread_ms} ms apart"
    );
}

/// `./loa bench reach` (ignored in the suite): LOA_REACH_NODES real node processes
/// (default 100, null outputs) on one controller; five emergencies in turn, each timed from
/// the API call until every node confirmed playing it, as the page's count shows it. The
/// first round includes every node fetching the audio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: ./loa bench reach"]
async fn emergency_reach_of_many_nodes() {
    let count: usize = std::env::var("LOA_REACH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    let village = ctl.api.village("Thôn Lớn").await;
    let (storm, _) = ctl.api.approved_audio("Bão", tone_wav(2.0)).await;
    let mut nodes = Vec::new();
    for i in 0..count {
        let mut n = Node::enroll(&ctl, dir.path(), &format!("n{i}"), village).await;
        n.start_output("null", &[]);
        nodes.push(n);
    }
    for n in &nodes {
        n.wait_ready_within(&ctl.api, 50.0, Duration::from_secs(120))
            .await;
    }
    let mut times = Vec::new();
    for round in 0..6 {
        let called = Instant::now();
        let body = json!({ "content_id": storm, "targets": "all" });
        let eid = id(&ctl.api.post("/api/v1/emergency", body).await);
        wait_for("every node playing it", Duration::from_secs(30), || async {
            (emergency(&ctl, eid).await["reached"] == count).then_some(())
        })
        .await;
        let ms = called.elapsed().as_millis();
        println!("round {round}: {count} of {count} nodes confirmed playing in {ms} ms");
        if round > 0 {
            times.push(ms);
        }
        let stop = format!("/api/v1/emergency/{eid}");
        ctl.api.call(reqwest::Method::DELETE, &stop, None).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    times.sort_unstable();
    println!(
        "emergency reach, {count} real nodes, audio cached: median {} ms (min {}, max {}); nodes start 300 ms after the call",
        times[2], times[0], times[4]
    );
}
