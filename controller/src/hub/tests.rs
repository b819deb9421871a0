//! The hub's session handling and liveness, run over in-memory transports with a test
//! clock: a real CMS (SQLite file in a temp dir), no sockets, no waiting for timers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cms::model::Role;
use cms::{CmsConfig, NewUserRequest};
use protocol::link::{self, ControllerMsg, NodeMsg, PROTOCOL_VERSION, PlayLogEntry, PlayOutcome};
use protocol::time::TestClock;
use protocol::transport::memory::{self, MemoryTransport};
use protocol::transport::{Transport, TransportError};

use super::{Hub, HubConfig};
use crate::demo::as_p;

const T0: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

struct Fixture {
    hub: Arc<Hub>,
    clock: Arc<TestClock>,
    node: cms::store::node_link::NodeIdentity,
    _dir: tempfile::TempDir,
}

async fn fixture(offline_after_ms: u64) -> Fixture {
    fixture_with(offline_after_ms, protocol::link::DEAD_AFTER_MS).await
}

/// A hub whose sessions drop a link silent for `dead_after_ms` (of the test clock).
async fn fixture_with(offline_after_ms: u64, dead_after_ms: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = TestClock::new(T0);
    let config = CmsConfig {
        data_dir: dir.path().to_path_buf(),
        node_offline_after_ms: offline_after_ms,
        ..CmsConfig::default()
    };
    let hub = crate::open(
        config,
        HubConfig {
            clock: clock.clone(),
            dead_after_ms,
            ..HubConfig::default()
        },
    )
    .unwrap();
    let cms = hub.cms().clone();
    let admin = cms
        .create_user(
            None,
            NewUserRequest {
                username: "admin".into(),
                password: "a long enough password".into(),
                role: Role::Admin.as_str().into(),
                display_name: None,
                commune_id: Some(cms.default_commune()),
                province_wide: false,
            },
        )
        .await
        .unwrap();
    let admin = as_p(&cms, &admin);
    let village = cms
        .create_village(&admin, "Thôn 1", None, None)
        .await
        .unwrap();
    let req = cms::service_node_request("Cụm loa 1".into(), village.id, 21.0, 107.0);
    let (_, code) = cms.create_node(&admin, req).await.unwrap();
    let enrolled = cms
        .enroll_node(link::EnrollRequest { code }, "127.0.0.1")
        .await
        .unwrap();
    let node = cms.authenticate_node(&enrolled.token).await.unwrap();
    Fixture {
        hub,
        clock,
        node,
        _dir: dir,
    }
}

/// Starts a session; the test holds the node's end.
fn connect(f: &Fixture) -> (MemoryTransport, tokio::task::JoinHandle<()>) {
    let (node_end, hub_end) = memory::pair();
    let task = tokio::spawn(f.hub.clone().run_session(f.node.clone(), hub_end));
    (node_end, task)
}

async fn send(t: &mut MemoryTransport, msg: &NodeMsg) {
    t.send(link::encode(msg)).await.unwrap();
}

async fn next(t: &mut MemoryTransport) -> Result<ControllerMsg, TransportError> {
    let text = tokio::time::timeout(std::time::Duration::from_secs(5), t.recv())
        .await
        .expect("the hub answers")?;
    match text.unwrap() {
        protocol::transport::Frame::Text(text) => Ok(ControllerMsg::decode(&text).unwrap()),
        other => panic!("a text message, not {other:?}"),
    }
}

fn hello() -> NodeMsg {
    NodeMsg::Hello {
        protocol: PROTOCOL_VERSION,
        agent: "test".into(),
        applied: None,
        token: None,
    }
}

/// Hello, and the welcome and desired state it brings.
async fn greet(t: &mut MemoryTransport) {
    send(t, &hello()).await;
    next(t).await.unwrap();
    next(t).await.unwrap();
}

async fn events(f: &Fixture) -> Vec<String> {
    let cms = f.hub.cms();
    cms.store()
        .call({
            let id = f.node.id;
            move |c| cms::store::node_link::events(c, id, 50)
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

#[tokio::test]
async fn hello_gets_welcome_and_desired_state_and_pings_get_the_hub_clock() {
    let f = fixture(30_000).await;
    let (mut t, _task) = connect(&f);
    send(&mut t, &hello()).await;
    match next(&mut t).await.unwrap() {
        ControllerMsg::Welcome { node_id, .. } => assert_eq!(node_id, f.node.id),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        next(&mut t).await.unwrap(),
        ControllerMsg::Desired(_)
    ));
    f.clock.advance_ms(250);
    send(&mut t, &NodeMsg::Ping { t0: 42 }).await;
    match next(&mut t).await.unwrap() {
        ControllerMsg::Pong { t0, t1, t2 } => {
            assert_eq!(t0, 42);
            assert_eq!((t1, t2), (T0 + 250_000_000, T0 + 250_000_000));
        }
        other => panic!("{other:?}"),
    }
    assert!(f.hub.sessions().is_connected(f.node.id));
}

#[tokio::test]
async fn anything_before_hello_or_malformed_closes_the_session() {
    let f = fixture(30_000).await;
    let (mut t, task) = connect(&f);
    send(&mut t, &NodeMsg::Ping { t0: 1 }).await;
    assert!(
        matches!(next(&mut t).await, Err(TransportError::Closed(Some(r))) if r == "hello first")
    );
    task.await.unwrap();
    assert!(!f.hub.sessions().is_connected(f.node.id));

    let (mut t, task) = connect(&f);
    t.send("{not json".into()).await.unwrap();
    assert!(
        matches!(next(&mut t).await, Err(TransportError::Closed(Some(r))) if r.starts_with("malformed"))
    );
    task.await.unwrap();
}

#[tokio::test]
async fn play_logs_are_acknowledged_once_stored_and_counted_once() {
    let f = fixture(30_000).await;
    let (mut t, _task) = connect(&f);
    greet(&mut t).await;
    let entry = PlayLogEntry {
        id: "abc".into(),
        schedule_id: None,
        content_id: None,
        scheduled_at: None,
        started_at: None,
        ended_at: None,
        outcome: PlayOutcome::Skipped,
        reason: None,
    };
    for _ in 0..2 {
        let batch = NodeMsg::PlayLogs {
            entries: vec![entry.clone()],
        };
        send(&mut t, &batch).await;
        match next(&mut t).await.unwrap() {
            ControllerMsg::PlayLogsAck { ids } => assert_eq!(ids, ["abc"]),
            other => panic!("{other:?}"),
        }
    }
    let id = f.node.id;
    let stored = f
        .hub
        .cms()
        .store()
        .call(move |c| {
            c.query_row(
                "SELECT count(*) FROM playlogs WHERE node_id = ?1",
                [id],
                |r| r.get::<_, i64>(0),
            )
            .map_err(cms::CmsError::from)
        })
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn a_second_connection_is_refused_while_the_first_is_alive_and_replaces_a_silent_one() {
    let f = fixture(30_000).await;
    let (mut first, first_task) = connect(&f);
    greet(&mut first).await;
    // Someone else with the node's token while the node is heard from: refused (a copied
    // token must not take over a healthy node), and kept in the node's history.
    let (mut intruder, intruder_task) = connect(&f);
    assert!(matches!(
        next(&mut intruder).await,
        Err(TransportError::Closed(Some(r))) if r == super::DUPLICATE_REFUSED
    ));
    intruder_task.await.unwrap();
    assert!(f.hub.sessions().is_connected(f.node.id));
    let id = f.node.id;
    let recorded = f
        .hub
        .cms()
        .store()
        .call(move |c| {
            c.query_row(
                "SELECT count(*) FROM node_events WHERE node_id = ?1 AND event = 'duplicate_link'",
                [id],
                |r| r.get::<_, i64>(0),
            )
            .map_err(cms::CmsError::from)
        })
        .await
        .unwrap();
    assert_eq!(recorded, 1);
    // The first link goes silent without a goodbye (a dead 3G path): the node's next
    // connection replaces it.
    f.clock.advance_ms(super::ALIVE_WITHIN_MS as i64 + 1);
    let (mut second, _task) = connect(&f);
    assert!(matches!(
        next(&mut first).await,
        Err(TransportError::Closed(Some(r))) if r == "replaced by a newer connection"
    ));
    first_task.await.unwrap();
    // The older session's end does not unregister the newer one.
    assert!(f.hub.sessions().is_connected(f.node.id));
    send(&mut second, &hello()).await;
    assert!(matches!(
        next(&mut second).await.unwrap(),
        ControllerMsg::Welcome { .. }
    ));
}

#[tokio::test]
async fn commands_and_revocation_reach_the_live_session() {
    let f = fixture(30_000).await;
    let (mut t, task) = connect(&f);
    greet(&mut t).await;
    let sessions: &dyn cms::FleetLink = f.hub.sessions().as_ref();
    assert!(sessions.command(f.node.id, 7, link::Command::Stop));
    assert!(matches!(
        next(&mut t).await.unwrap(),
        ControllerMsg::Command {
            id: 7,
            command: link::Command::Stop
        }
    ));
    sessions.disconnect(f.node.id);
    assert!(matches!(next(&mut t).await, Err(TransportError::Closed(Some(r))) if r == "revoked"));
    task.await.unwrap();
    assert!(!sessions.command(f.node.id, 8, link::Command::Stop));
}

#[tokio::test]
async fn a_silent_node_goes_offline_after_the_threshold_and_back_online_when_heard() {
    // A link that stays up (no dead-link drop within the test) on a node that says nothing:
    // with the default 14 s dead limit the session could end, racing the ping below.
    let f = fixture_with(30_000, 120_000).await;
    let (mut t, _task) = connect(&f);
    greet(&mut t).await;
    f.clock.advance_ms(30_000);
    assert!(
        f.hub.check_liveness().await.is_empty(),
        "not past the threshold yet"
    );
    f.clock.advance_ms(1);
    assert_eq!(f.hub.check_liveness().await, [f.node.id]);
    assert!(
        f.hub.check_liveness().await.is_empty(),
        "one transition only"
    );
    send(&mut t, &NodeMsg::Ping { t0: 1 }).await;
    next(&mut t).await.unwrap();
    // Newest first.
    assert_eq!(events(&f).await[..3], ["online", "offline", "online"]);
}

#[tokio::test]
async fn a_session_silent_past_the_dead_limit_is_dropped() {
    let f = fixture(30_000).await;
    let (mut t, task) = connect(&f);
    send(&mut t, &hello()).await;
    next(&mut t).await.unwrap();
    f.clock.advance_ms(protocol::link::DEAD_AFTER_MS as i64 + 1);
    // The session notices at its next check (every 300 ms of real time).
    tokio::time::timeout(std::time::Duration::from_secs(2), task)
        .await
        .expect("the session ends")
        .unwrap();
    assert!(!f.hub.sessions().is_connected(f.node.id));
}

/// The Mosquitto ACL made from the node table: the controller's user reads and writes the
/// province's topics; the enrolled node only its own and its village's live audio.
#[tokio::test]
async fn the_broker_acl_confines_each_enrolled_node() {
    let f = fixture(30_000).await;
    let root = protocol::mqtt::Root::parse_str("loa/ha-tinh").unwrap();
    let acl = crate::broker_acl::acl_file(f.hub.cms(), &root, "loa-controller")
        .await
        .unwrap();
    assert!(
        acl.contains("user loa-controller\ntopic readwrite loa/ha-tinh/#\n"),
        "{acl}"
    );
    let (id, village) = (f.node.id, f.node.village_id);
    let own = format!("user node-{id}\ntopic write loa/ha-tinh/default/node/{id}/up\n");
    assert!(acl.contains(&own), "{acl}");
    assert!(acl.contains(&format!(
        "topic read loa/ha-tinh/default/village/{village}/live\n"
    )));
    assert_eq!(acl.matches("topic readwrite").count(), 1, "{acl}");
    assert_eq!(acl.matches("\nuser ").count(), 2, "{acl}");
}
