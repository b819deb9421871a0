//! A node's link through a real MQTT broker (Debian's mosquitto, started here on a
//! loopback port): the node's transport connects and says `online` (retained); what it
//! sends reaches the controller's topic at its QoS; the desired state the controller
//! leaves retained reaches the node, and a node that connects later gets it at once
//! without anyone sending it again; live audio on the village topic arrives as binary;
//! the controller's goodbye ends a node's link with its reason; a node that dies without
//! a goodbye is reported `offline` by the broker (its last will),
//! and one that closes cleanly says so itself.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use protocol::link::{self, ControllerMsg, NodeMsg, PROTOCOL_VERSION};
use protocol::mqtt::{BrokerTransport, NodeBroker, OFFLINE, ONLINE, Root, Scope, Topic};
use protocol::transport::{CloseCode, Frame, Transport, TransportError};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

/// The controller's side: a plain client subscribed to the commune's node topics, its
/// event loop driven in a task that hands on what it receives (topic, payload).
async fn controller(port: u16) -> (AsyncClient, mpsc::UnboundedReceiver<(String, String)>) {
    controller_as(port, None).await
}

/// [`controller`] as a broker user.
async fn controller_as(
    port: u16,
    user: Option<(&str, &str)>,
) -> (AsyncClient, mpsc::UnboundedReceiver<(String, String)>) {
    let mut opts = MqttOptions::new("loa-controller-test", "127.0.0.1", port);
    if let Some((u, p)) = user {
        opts.set_credentials(u, p);
    }
    let (client, mut events) = AsyncClient::new(opts, 64);
    let root = Root::parse_str("loa/ha-tinh").unwrap();
    for f in root.controller_filters() {
        client.subscribe(f, QoS::AtLeastOnce).await.unwrap();
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                let text = String::from_utf8(p.payload.to_vec()).unwrap();
                if tx.send((p.topic, text)).is_err() {
                    return;
                }
            }
        }
    });
    (client, rx)
}

/// The next publish the controller's client receives: (topic, payload).
async fn next_publish(rx: &mut mpsc::UnboundedReceiver<(String, String)>) -> (String, String) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a publish within 10 s")
        .unwrap()
}

async fn next_frame(t: &mut BrokerTransport) -> Frame {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(f) = t.recv().await.unwrap() {
                return f;
            }
        }
    })
    .await
    .expect("a frame within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_links_through_mosquitto() {
    let broker = loa_tests::broker::Mosquitto::start().await;
    let scope = Scope::new("loa", "ha-tinh", "xa-cam-binh").unwrap();
    let (ctl, mut ctl_events) = controller(broker.port).await;
    let node = |id| NodeBroker {
        url: format!("mqtt://127.0.0.1:{}", broker.port),
        scope: scope.clone(),
        node_id: id,
        credentials: None,
        tls: None,
    };

    // Online, then its hello on its own topic.
    let mut n42 = BrokerTransport::connect(&node(42)).await.unwrap();
    let (topic, payload) = next_publish(&mut ctl_events).await;
    assert_eq!(
        (topic.as_str(), payload.as_str()),
        (scope.topic(Topic::Presence(42)).as_str(), ONLINE)
    );
    let hello = NodeMsg::Hello {
        protocol: PROTOCOL_VERSION,
        agent: "test".into(),
        applied: None,
        token: Some("loa_n_secret".into()),
    };
    n42.send(link::encode(&hello)).await.unwrap();
    let (topic, payload) = next_publish(&mut ctl_events).await;
    assert_eq!(topic, scope.topic(Topic::Up(42)));
    assert!(matches!(
        NodeMsg::decode(&payload).unwrap(),
        NodeMsg::Hello { .. }
    ));

    // The controller's welcome names the node's village, whose live topic it then hears.
    let welcome = ControllerMsg::Welcome {
        protocol: PROTOCOL_VERSION,
        node_id: 42,
        name: "loa-42".into(),
        village_id: Some(3),
    };
    ctl.publish(
        scope.topic(Topic::Down(42)),
        QoS::AtLeastOnce,
        false,
        link::encode(&welcome),
    )
    .await
    .unwrap();
    assert_eq!(
        next_frame(&mut n42).await,
        Frame::Text(link::encode(&welcome))
    );
    // The controller's answer on the node's topic; live audio on the village's.
    let ack = ControllerMsg::PlayLogsAck {
        ids: vec!["1-a".into()],
    };
    ctl.publish(
        scope.topic(Topic::Down(42)),
        QoS::AtLeastOnce,
        false,
        link::encode(&ack),
    )
    .await
    .unwrap();
    match next_frame(&mut n42).await {
        Frame::Text(t) => assert_eq!(t, link::encode(&ack)),
        Frame::Binary(_) => panic!("text expected"),
    }
    ctl.publish(
        scope.topic(Topic::Live(3)),
        QoS::AtMostOnce,
        false,
        vec![1u8, 2, 3],
    )
    .await
    .unwrap();
    match next_frame(&mut n42).await {
        Frame::Binary(b) => assert_eq!(b, vec![1, 2, 3]),
        Frame::Text(t) => panic!("binary expected, got {t}"),
    }

    // A desired state left retained: a node connecting later has it at once.
    let desired =
        r#"{"type":"desired","version":"v1","node_id":43,"tz":"Asia/Ho_Chi_Minh","schedules":[]}"#;
    ctl.publish(
        scope.topic(Topic::Desired(43)),
        QoS::AtLeastOnce,
        true,
        desired,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut n43 = BrokerTransport::connect(&node(43)).await.unwrap();
    match next_frame(&mut n43).await {
        Frame::Text(t) => assert_eq!(t, desired),
        Frame::Binary(_) => panic!("text expected"),
    }
    let (topic, payload) = next_publish(&mut ctl_events).await;
    assert_eq!(
        (topic, payload.as_str()),
        (scope.topic(Topic::Presence(43)), ONLINE)
    );

    // The controller ends 43's session: its transport reports the link closed, with why.
    ctl.publish(
        scope.topic(Topic::Down(43)),
        QoS::AtLeastOnce,
        false,
        protocol::mqtt::bye("revoked"),
    )
    .await
    .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match n43.recv().await {
                Ok(_) => continue,
                Err(e) => return e,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ended, TransportError::Closed(Some("revoked".into())));

    // Its connection ends with it, and the broker says so.
    let (topic, payload) = next_publish(&mut ctl_events).await;
    assert_eq!(
        (topic, payload.as_str()),
        (scope.topic(Topic::Presence(43)), OFFLINE)
    );

    // 42 dies without a goodbye: the broker says so (its last will, after its keepalive
    // lapses or at once when the socket closes).
    drop(n42);
    let (topic, payload) = next_publish(&mut ctl_events).await;
    assert_eq!(
        (topic, payload.as_str()),
        (scope.topic(Topic::Presence(42)), OFFLINE)
    );

    // A node that closes cleanly says so itself (a clean disconnect sends no last will).
    let mut n44 = BrokerTransport::connect(&node(44)).await.unwrap();
    let (topic, payload) = next_publish(&mut ctl_events).await;
    assert_eq!(
        (topic, payload.as_str()),
        (scope.topic(Topic::Presence(44)), ONLINE)
    );
    n44.close(CloseCode::Normal, "bye").await;
    let (topic, payload) = next_publish(&mut ctl_events).await;
    assert_eq!(
        (topic, payload.as_str()),
        (scope.topic(Topic::Presence(44)), OFFLINE)
    );
}

/// Mosquitto with users and the ACL `protocol::mqtt::node_acl` writes: a node gets in
/// with its own password only, and even then reads no other node's messages and cannot
/// pass for another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acl_confines_each_node_to_its_own_topics() {
    let broker = loa_tests::broker::Mosquitto::start_secured().await;
    let scope = Scope::new("loa", "ha-tinh", "xa-cam-binh").unwrap();
    let mut acl = String::from("user loa-controller\ntopic readwrite loa/ha-tinh/#\n");
    for id in [42, 43] {
        broker.add_user(&format!("node-{id}"), &format!("pw-{id}"));
        acl.push_str(&protocol::mqtt::node_acl(&scope, &format!("node-{id}"), id, 3).unwrap());
    }
    broker.add_user("loa-controller", "pw-ctl");
    broker.set_acl(&acl);
    broker.reload();
    let node = |id: i64, password: &str| NodeBroker {
        url: broker.url(),
        scope: scope.clone(),
        node_id: id,
        credentials: Some((format!("node-{id}"), password.into())),
        tls: None,
    };
    assert!(
        BrokerTransport::connect(&node(42, "wrong")).await.is_err(),
        "a wrong password gets in"
    );
    let (ctl, mut ctl_events) =
        controller_as(broker.port, Some(("loa-controller", "pw-ctl"))).await;
    let mut n43 = BrokerTransport::connect(&node(43, "pw-43")).await.unwrap();
    // 42's credentials on a client of their own, after everything there is.
    let mut opts = MqttOptions::new("rogue", "127.0.0.1", broker.port);
    opts.set_credentials("node-42", "pw-42");
    let (rogue, mut rogue_events) = AsyncClient::new(opts, 16);
    rogue.subscribe("loa/#", QoS::AtLeastOnce).await.unwrap();
    rogue
        .subscribe(scope.topic(Topic::Down(43)), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(e) = rogue_events.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = e {
                let _ = seen_tx.send(p.topic);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The controller's message to 43 reaches 43, and only 43.
    let ack = link::encode(&ControllerMsg::PlayLogsAck { ids: vec![] });
    ctl.publish(
        scope.topic(Topic::Down(43)),
        QoS::AtLeastOnce,
        false,
        ack.clone(),
    )
    .await
    .unwrap();
    assert_eq!(next_frame(&mut n43).await, Frame::Text(ack));
    // 42 writing as 43: the controller never hears it.
    rogue
        .publish(
            scope.topic(Topic::Up(43)),
            QoS::AtLeastOnce,
            false,
            "{\"kind\":\"hello\"}",
        )
        .await
        .unwrap();
    n43.send(link::encode(&NodeMsg::Ping { t0: 1 }))
        .await
        .unwrap();
    loop {
        let (topic, payload) = next_publish(&mut ctl_events).await;
        if topic == scope.topic(Topic::Up(43)) {
            assert!(
                payload.contains("ping"),
                "the forged message arrived: {payload}"
            );
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seen.try_recv().is_err(), "42 read another node's topic");
}

/// A CA, a broker certificate for 127.0.0.1 and a client certificate for `user`, as PEM
/// files in `dir`: (ca, broker cert, broker key, client cert, client key).
fn certificates(dir: &std::path::Path, user: &str) -> [std::path::PathBuf; 5] {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let broker_key = KeyPair::generate().unwrap();
    let broker = CertificateParams::new(vec!["127.0.0.1".into()])
        .unwrap()
        .signed_by(&broker_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, user);
    let client = client.signed_by(&client_key, &ca).unwrap();
    let files = [
        "ca.pem",
        "broker.pem",
        "broker.key",
        "client.pem",
        "client.key",
    ]
    .map(|name| dir.join(name));
    let texts = [
        ca.pem(),
        broker.pem(),
        broker_key.serialize_pem(),
        client.pem(),
        client_key.serialize_pem(),
    ];
    for (path, text) in files.iter().zip(texts) {
        std::fs::write(path, text).unwrap();
    }
    files
}

/// A real `speaker-node run` links over `mqtts://` with its own certificate (the broker
/// takes its name as the broker user, and the ACL confines that user): it says `online`
/// and its hello reaches the controller's side with its token. Without the certificate,
/// the broker lets it in nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_links_over_mqtts_with_its_own_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key, client_cert, client_key] = certificates(dir.path(), "node-7");
    let scope = Scope::new("loa", "ha-tinh", "xa-cam-binh").unwrap();
    let acl = dir.path().join("acl");
    std::fs::write(
        &acl,
        protocol::mqtt::node_acl(&scope, "node-7", 7, 3).unwrap(),
    )
    .unwrap();
    let plain = loa_tests::free_port();
    let broker = loa_tests::broker::Mosquitto::start_conf(|tls| {
        format!(
            "per_listener_settings true\n\
             listener {tls} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
             require_certificate true\nuse_identity_as_username true\nacl_file {}\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\npersistence false\n",
            ca.display(),
            cert.display(),
            key.display(),
            acl.display()
        )
    })
    .await;
    let (_ctl, mut ctl_events) = controller(plain).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // An enrolled node's state, as `speaker-node enroll` leaves it.
    let node = |id: i64| {
        let state = dir.path().join(format!("node-{id}"));
        std::fs::create_dir_all(&state).unwrap();
        let identity = serde_json::json!({
            "server": "http://127.0.0.1:9", "node_id": id, "name": format!("loa-{id}"),
            "broker_scope": scope.to_string(),
        });
        std::fs::write(state.join("node.json"), identity.to_string()).unwrap();
        std::fs::write(state.join("token"), format!("loa_n_token-of-{id}")).unwrap();
        state
    };
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let run = |state: std::path::PathBuf, extra: &[&std::path::Path]| {
        let mut cmd = std::process::Command::new(loa_tests::bin("speaker-node"));
        cmd.args(["run", "--output", "null", "--broker", &url, "--state"])
            .arg(&state)
            .arg("--ca-file")
            .arg(&ca);
        if let [cert, key] = extra {
            cmd.arg("--broker-cert-file").arg(cert);
            cmd.arg("--broker-key-file").arg(key);
        }
        loa_tests::Proc::start(&mut cmd, state.with_extension("log"))
    };
    let _seven = run(node(7), &[&client_cert, &client_key]);
    let (topic, payload) = next_publish(&mut ctl_events).await;
    assert_eq!(
        (topic.as_str(), payload.as_str()),
        (scope.topic(Topic::Presence(7)).as_str(), ONLINE)
    );
    let (topic, payload) = next_publish(&mut ctl_events).await;
    assert_eq!(topic, scope.topic(Topic::Up(7)));
    match NodeMsg::decode(&payload).unwrap() {
        NodeMsg::Hello { token, .. } => assert_eq!(token.as_deref(), Some("loa_n_token-of-7")),
        other => panic!("a hello first, not {other:?}"),
    }
    // Node 8 has no certificate: nothing of it gets through.
    let eight = run(node(8), &[]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    while let Ok((topic, _)) = ctl_events.try_recv() {
        assert!(!topic.contains("/node/8/"), "{topic}");
    }
    let log = eight.log_text();
    assert!(
        log.contains("link: ") && !log.contains("broker connected"),
        "{log}"
    );
}
