//! The fleet through a real MQTT broker (Debian's mosquitto on a loopback port, users and
//! the ACL `controller broker-acl` writes), end to end: a controller serving nodes through
//! the broker beside the WebSocket link, and real
//! speaker-node processes linked through it — enrolled over HTTP, told their topics then,
//! clock-synced through the broker, playing on time, taking remote commands, playing on
//! with the broker killed and their play logs counted exactly once after it is back, an
//! emergency reaching them, live speech heard through the broker in step with a WebSocket
//! node, and a node that goes away reported offline by the broker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use loa_tests::broker::{Mosquitto, NatsCluster};
use loa_tests::{Card, Controller, Node, id, now_ns, timing_turn, tone_wav, wait_for, whole_ms};
use serde_json::json;

/// The bound on a start through a broker (the WebSocket link does better).
const ON_TIME_MS: f64 = 20.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_linked_through_mosquitto_play_report_and_obey() {
    let _turn = timing_turn().await;
    let dir = tempfile::tempdir().unwrap();
    // A broker that lets in only its users, each to the topics its ACL gives it.
    let mut broker = Mosquitto::start_secured().await;
    broker.add_user("loa-controller", "pw-controller");
    let url = broker.url();
    let ctl = Controller::start_with(
        dir.path(),
        &[
            "--source-password",
            loa_tests::live::SOURCE_PASSWORD,
            "--broker",
            &url,
            "--broker-topic-root",
            "loa/ha-tinh",
            "--broker-username",
            "loa-controller",
            "--broker-password",
            "pw-controller",
        ],
    )
    .await;
    let village = ctl.api.village("Thôn Bắc").await;
    let (content, _) = ctl
        .api
        .approved_audio("Qua máy chủ MQTT", tone_wav(1.0))
        .await;

    // Two nodes through the broker (one whose clock reads 700 ms fast), one by WebSocket.
    let mut a = Node::enroll(&ctl, dir.path(), "loa-mqtt-a", village).await;
    let mut b = Node::enroll(&ctl, dir.path(), "loa-mqtt-b", village).await;
    let mut c = Node::enroll(&ctl, dir.path(), "loa-ws-c", village).await;
    let told = std::fs::read_to_string(a.state.join("node.json")).unwrap();
    assert!(told.contains("\"broker_scope\": \"loa/ha-tinh/"), "{told}");
    // The operator's step after enrolling: the ACL from the node table, a user per node.
    let acl = std::process::Command::new(loa_tests::bin("controller"))
        .args(["broker-acl", "--broker-topic-root", "loa/ha-tinh", "--data"])
        .arg(&ctl.data)
        .output()
        .unwrap();
    assert!(
        acl.status.success(),
        "{}",
        String::from_utf8_lossy(&acl.stderr)
    );
    broker.set_acl(&String::from_utf8(acl.stdout).unwrap());
    for n in [&a, &b] {
        broker.add_user(&format!("node-{}", n.id), &format!("pw-{}", n.id));
    }
    broker.reload();
    let creds = |n: &Node| (format!("node-{}", n.id), format!("pw-{}", n.id));
    let ((user_a, pw_a), (user_b, pw_b)) = (creds(&a), creds(&b));
    let (wav_a, wav_b, wav_c) = (
        dir.path().join("a.wav"),
        dir.path().join("b.wav"),
        dir.path().join("c.wav"),
    );
    a.start(
        &wav_a,
        &[
            "--broker",
            &url,
            "--clock-offset-ms",
            "700",
            "--broker-username",
            &user_a,
            "--broker-password",
            &pw_a,
        ],
    );
    b.start(
        &wav_b,
        &[
            "--broker",
            &url,
            "--broker-username",
            &user_b,
            "--broker-password",
            &pw_b,
        ],
    );
    c.start(&wav_c, &[]);
    for n in [&a, &b, &c] {
        n.wait_ready(&ctl.api).await;
    }
    let rtt = |n: serde_json::Value| n["health"]["round_trip_ms"].as_f64().unwrap_or(-1.0);
    println!(
        "clock exchange round trip: through the broker {:.2} and {:.2} ms, WebSocket {:.2} ms",
        rtt(ctl.api.node(a.id).await),
        rtt(ctl.api.node(b.id).await),
        rtt(ctl.api.node(c.id).await)
    );

    // One play for all three, and one for the broker's nodes while the broker is down.
    let ids = [a.id, b.id, c.id];
    let t1 = whole_ms(now_ns() + 6_000_000_000);
    let t2 = t1 + 12_000_000_000;
    ctl.api
        .play_once("Lần 1", content, &ids, t1, "normal")
        .await;
    ctl.api
        .play_once("Lần 2", content, &[a.id, b.id], t2, "normal")
        .await;
    for n in [&a, &b, &c] {
        let what = format!("node {} has both plays", n.id);
        wait_for(&what, Duration::from_secs(10), || async {
            let h = &ctl.api.node(n.id).await;
            (h["lagging"] == false && h["health"]["missing_blobs"] == json!([])).then_some(())
        })
        .await;
    }

    // A remote command through the broker, answered through it.
    let res = ctl
        .api
        .post(
            &format!("/api/v1/nodes/{}/commands", a.id),
            json!({"type": "set_volume", "volume": 90}),
        )
        .await;
    assert_eq!(res["delivered"], true, "{res}");
    wait_for("the command's answer", Duration::from_secs(10), || async {
        let events = ctl.api.get(&format!("/api/v1/nodes/{}/events", a.id)).await;
        let text = events.to_string();
        (text.contains("command_done") && text.contains(" ok")).then_some(())
    })
    .await;

    // The first play, on time on all three.
    wait_for("the first play", Duration::from_secs(30), || async {
        (now_ns() > t1 + 2_000_000_000).then_some(())
    })
    .await;
    // The broker dies (SIGKILL) before the second play: the nodes play it from their
    // disk, and their logs wait.
    broker.kill();
    wait_for("the second play", Duration::from_secs(30), || async {
        (now_ns() > t2 + 2_000_000_000).then_some(())
    })
    .await;
    broker.restart().await;
    for n in [&a, &b] {
        let logs = wait_for(
            "logs after the broker is back",
            Duration::from_secs(60),
            || async {
                let logs = ctl.api.playlogs(n.id).await;
                (logs.len() >= 2).then_some(logs)
            },
        )
        .await;
        assert_eq!(logs.len(), 2, "{logs:?}");
        assert!(logs.iter().all(|l| l["outcome"] == "completed"), "{logs:?}");
        assert_ne!(logs[0]["scheduled_at"], logs[1]["scheduled_at"], "{logs:?}");
    }
    // Nothing counted twice, even with QoS 1 and a broker restart on the way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = ctl.api.get("/api/v1/reports/summary").await;
    let counted = (report["scheduled"].as_u64(), report["played"].as_u64());
    assert_eq!(counted, (Some(5), Some(5)), "{report}");

    // An emergency reaches the nodes through the broker as it does by WebSocket.
    for n in [&a, &b] {
        n.wait_ready(&ctl.api).await;
    }
    let reach_ms = emergency_reaching(&ctl, village, 3.0, 3).await;
    println!("emergency: API call to 3 of 3 nodes (2 through the broker) playing: {reach_ms} ms");

    // Live speech to the village: published once to its topic, heard by the nodes through
    // the broker and by the WebSocket node alike, in step. 4 s of tone with a 60 ms mark
    // (silence) at 2 s.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let live_url = format!("{}/live/{village}", ctl.url);
    let live_wav = loa_tests::tone_wav_with_gap(5.0, Some((2.0, 0.06)));
    let live_began = loa_tests::live::send_paced(&live_url, live_wav, 4.0).await;
    let live_mark = live_began + 2_060_000_000;
    wait_for(
        "the live session ended",
        Duration::from_secs(15),
        || async {
            let on_air = ctl.api.get("/api/v1/live").await;
            on_air.as_array().is_some_and(Vec::is_empty).then_some(())
        },
    )
    .await;

    // Revoking a node ends its session and takes its schedule off the broker.
    let scope = serde_json::from_str::<serde_json::Value>(&told).unwrap()["broker_scope"]
        .as_str()
        .unwrap()
        .to_owned();
    let desired_a = format!("{scope}/node/{}/desired", a.id);
    let ctl_user = ("loa-controller", "pw-controller");
    assert!(retained(broker.port, ctl_user, &desired_a).await.is_some());
    ctl.api
        .post(&format!("/api/v1/nodes/{}/revoke", a.id), json!({}))
        .await;
    wait_for("a's schedule gone", Duration::from_secs(10), || async {
        retained(broker.port, ctl_user, &desired_a)
            .await
            .is_none()
            .then_some(())
    })
    .await;

    // A node that goes away is offline at once: the broker says so (its last will), well
    // before the controller's 30 s of silence.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let gone = Instant::now();
    b.proc().stop();
    wait_for("b offline", Duration::from_secs(10), || async {
        (ctl.api.node(b.id).await["online"] == false).then_some(())
    })
    .await;
    println!(
        "offline reported {} ms after the node stopped",
        gone.elapsed().as_millis()
    );

    a.proc().stop();
    c.proc().stop();
    let errors = [
        ("a", Card::read(&wav_a).start_error_ms(t1)),
        ("b", Card::read(&wav_b).start_error_ms(t1)),
        ("c (WebSocket)", Card::read(&wav_c).start_error_ms(t1)),
        ("a, broker down", Card::read(&wav_a).start_error_ms(t2)),
        ("b, broker down", Card::read(&wav_b).start_error_ms(t2)),
    ];
    println!("start errors (ms): {errors:?}");
    for (who, e) in errors {
        assert!(
            e.abs() <= ON_TIME_MS,
            "{who} started {e:.2} ms off: {errors:?}"
        );
    }
    // The live mark, on each card: the ingest-to-output latency, and how far apart.
    let heard: Vec<f64> = [&wav_a, &wav_b, &wav_c]
        .iter()
        .map(|w| {
            let at = Card::read(w)
                .sound_after_gap(live_mark - 1_000_000_000, 0.01)
                .expect("the live mark on the card");
            (at - live_mark) as f64 / 1e6
        })
        .collect();
    let spread = heard.iter().cloned().fold(f64::MIN, f64::max)
        - heard.iter().cloned().fold(f64::MAX, f64::min);
    println!("live: latency a, b (broker), c (WebSocket): {heard:.1?} ms; spread {spread:.2} ms");
    for l in &heard {
        assert!((0.0..400.0).contains(l), "live latency {l} ms: {heard:?}");
    }
    assert!(
        spread < 2.0,
        "live out of step by {spread:.2} ms: {heard:?}"
    );
}

/// An emergency (a tone of `seconds`) for `village`: ms from the API call until `nodes`
/// of them are confirmed playing it.
async fn emergency_reaching(ctl: &Controller, village: i64, seconds: f32, nodes: u64) -> u128 {
    let (storm, _) = ctl
        .api
        .approved_audio("Bão khẩn cấp", tone_wav(seconds))
        .await;
    let body = json!({ "content_id": storm, "targets": { "villages": [village] } });
    let called = Instant::now();
    let eid = id(&ctl.api.post("/api/v1/emergency", body).await);
    let what = format!("{nodes} nodes playing the emergency");
    wait_for(&what, Duration::from_secs(30), || async {
        let e = ctl.api.get(&format!("/api/v1/emergency/{eid}")).await;
        (e["reached"] == nodes).then_some(())
    })
    .await;
    called.elapsed().as_millis()
}

/// The retained message on `topic`, if any, as a client `user` sees it on subscribing.
async fn retained(port: u16, user: (&str, &str), topic: &str) -> Option<Vec<u8>> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let mut opts = MqttOptions::new(format!("probe-{}", now_ns()), "127.0.0.1", port);
    opts.set_credentials(user.0, user.1);
    let (client, mut events) = AsyncClient::new(opts, 8);
    client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    let found = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => return p.payload.to_vec(),
                Ok(_) => {}
                Err(e) => panic!("probe: {e}"),
            }
        }
    })
    .await
    .ok();
    let _ = client.disconnect().await;
    found.filter(|payload| !payload.is_empty())
}

/// Three NATS servers in a cluster, each with an MQTT listener: the controller on the
/// first, one node on the second and one on the third. Both get an emergency and a
/// schedule change; the second server is killed -9 between two plays, and its node moves
/// to the third, missing no play and losing no log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_cluster_carries_the_fleet_through_a_server_killed() {
    let _turn = timing_turn().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = NatsCluster::start(3).await;
    let all = [cluster.url(0), cluster.url(1), cluster.url(2)].join(",");
    let ctl = Controller::start_with(dir.path(), &["--broker", &all]).await;
    let village = ctl.api.village("Thôn Nam").await;
    let (content, _) = ctl.api.approved_audio("Qua cụm NATS", tone_wav(1.0)).await;
    let mut a = Node::enroll(&ctl, dir.path(), "loa-nats-a", village).await;
    let mut b = Node::enroll(&ctl, dir.path(), "loa-nats-b", village).await;
    let (wav_a, wav_b) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    let on_a = [cluster.url(1), cluster.url(2)].join(",");
    let on_b = [cluster.url(2), cluster.url(0)].join(",");
    a.start(&wav_a, &["--broker", &on_a]);
    b.start(&wav_b, &["--broker", &on_b]);
    for n in [&a, &b] {
        n.wait_ready(&ctl.api).await;
    }

    // An emergency reaches both, through different servers.
    let reach_ms = emergency_reaching(&ctl, village, 2.0, 2).await;
    println!("emergency through the cluster: 2 of 2 playing in {reach_ms} ms");
    tokio::time::sleep(Duration::from_secs(3)).await;

    // A schedule change reaches both, through different servers.
    let t1 = whole_ms(now_ns() + 6_000_000_000);
    let t2 = t1 + 12_000_000_000;
    ctl.api
        .play_once("Lần 1", content, &[a.id, b.id], t1, "normal")
        .await;
    ctl.api
        .play_once("Lần 2", content, &[a.id, b.id], t2, "normal")
        .await;
    for n in [&a, &b] {
        wait_for("the change applied", Duration::from_secs(10), || async {
            (ctl.api.node(n.id).await["lagging"] == false).then_some(())
        })
        .await;
    }
    wait_for("the first play", Duration::from_secs(30), || async {
        (now_ns() > t1 + 2_000_000_000).then_some(())
    })
    .await;
    // a's server dies: a moves to the next of its brokers, and plays on from its disk
    // meanwhile. (A cluster that lost a server takes its time to give its streams new
    // leaders: up to several seconds on these busy cores, during which messages wait.)
    cluster.kill(1);
    wait_for("the second play", Duration::from_secs(30), || async {
        (now_ns() > t2 + 2_000_000_000).then_some(())
    })
    .await;
    for n in [&a, &b] {
        let logs = wait_for("both logs", Duration::from_secs(90), || async {
            let logs: Vec<_> = ctl
                .api
                .playlogs(n.id)
                .await
                .into_iter()
                .filter(|l| l["content_id"] == content)
                .collect();
            (logs.len() >= 2).then_some(logs)
        })
        .await;
        assert_eq!(logs.len(), 2, "{logs:?}");
        assert!(logs.iter().all(|l| l["outcome"] == "completed"), "{logs:?}");
    }
    // (Its logs came through the third server: a is linked there.)
    a.wait_ready_within(&ctl.api, 5.0, Duration::from_secs(90))
        .await;
    a.proc().stop();
    b.proc().stop();
    let errors = [
        Card::read(&wav_a).start_error_ms(t1),
        Card::read(&wav_a).start_error_ms(t2),
        Card::read(&wav_b).start_error_ms(t1),
        Card::read(&wav_b).start_error_ms(t2),
    ];
    println!("start errors (ms): {errors:?}");
    for e in errors {
        assert!(e.abs() <= ON_TIME_MS, "{errors:?}");
    }
}
