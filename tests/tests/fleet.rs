//! The fleet link end to end: a real controller and real speaker-node processes with
//! simulated sound cards (`wav:PATH`), timing measured against the host clock through
//! each card's sidecar.

use std::time::Duration;

use loa_tests::{Card, Controller, Node, now_ns, tone_wav, wait_for};

/// CONTRACT/issue target: the first sample within 20 ms of the scheduled time.
const ON_TIME_MS: f64 = 20.0;

/// Schedules are stored to the millisecond.
fn whole_ms(ns: i64) -> i64 {
    ns / 1_000_000 * 1_000_000
}

fn error_ms(card: &Card, at_ns: i64) -> f64 {
    let heard = card
        .first_sound_after(at_ns - 2_000_000_000)
        .unwrap_or_else(|| panic!("nothing played around {at_ns}"));
    (heard - at_ns) as f64 / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_play_on_time_and_their_logs_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = Controller::start(dir.path()).await;
    let village = ctl.api.village("Thôn Đông").await;
    let (content, _) = ctl.api.approved_audio("Thông báo thử", tone_wav(1.0)).await;
    // One node on true time, one whose clock reads 700 ms fast, one whose clock and card
    // run 200 ppm fast: clock sync must bring all three to the controller's time.
    let knobs: [&[&str]; 3] = [
        &[],
        &["--clock-offset-ms", "700"],
        &["--clock-drift-ppm", "200", "--clock-offset-ms", "-300"],
    ];
    let mut nodes = Vec::new();
    for (i, extra) in knobs.iter().enumerate() {
        let mut n = Node::enroll(&ctl, dir.path(), &format!("loa-{i}"), village).await;
        n.start(&dir.path().join(format!("loa-{i}.wav")), extra);
        nodes.push(n);
    }
    for n in &nodes {
        n.wait_ready(&ctl.api).await;
    }
    let ids: Vec<i64> = nodes.iter().map(|n| n.id).collect();
    let at = whole_ms(now_ns() + 6_000_000_000);
    ctl.api.play_once("Đúng giờ", content, &ids, at, "normal").await;
    for n in &nodes {
        let logs = wait_for("play logs", Duration::from_secs(30), || async {
            let logs = ctl.api.playlogs(n.id).await;
            (!logs.is_empty()).then_some(logs)
        })
        .await;
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert_eq!(logs[0]["outcome"], "completed", "{logs:?}");
        assert_eq!(logs[0]["content_id"], content);
    }
    let mut errors = Vec::new();
    for n in &mut nodes {
        let status = n.proc().stop();
        assert!(status.is_some_and(|s| s.success()), "node exit: {status:?}");
        let card = Card::read(n.wav.as_ref().unwrap());
        errors.push(error_ms(&card, at));
    }
    eprintln!("start errors (ms): {errors:?}");
    for e in &errors {
        assert!(e.abs() <= ON_TIME_MS, "started {e:.2} ms off: {errors:?}");
    }
}
