//! The link session over an in-memory transport, with the test playing the controller
//! and the owner task: hello first, clock exchanges feed the clock, desired states and
//! commands go to the owner, play logs are uploaded one batch at a time until
//! acknowledged, and a silent controller is given up on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::link::{self, ControllerMsg, NodeMsg, PlayLogEntry, PlayOutcome};
use protocol::time::TestClock;
use protocol::transport::Transport;
use protocol::transport::memory::{self, MemoryTransport};
use tokio::sync::mpsc;

use super::support::{MS, T0, desired};
use crate::agent::clock::NodeClock;
use crate::agent::link::{LinkContext, LinkError, session};
use crate::agent::owner::{AgentCmd, AgentHandle, ToLink};

struct Fixture {
    host: Arc<TestClock>,
    clock: Arc<NodeClock>,
    controller: MemoryTransport,
    /// What the session told the owner, bar the requests the fake owner answers.
    owner: mpsc::UnboundedReceiver<AgentCmd>,
    /// Play logs the fake owner reports as pending.
    pending: Arc<Mutex<Vec<PlayLogEntry>>>,
    to_link: mpsc::UnboundedSender<ToLink>,
    session: tokio::task::JoinHandle<Result<(), LinkError>>,
}

fn start(dead_after_ms: u64) -> Fixture {
    let host = TestClock::new(T0);
    let clock = Arc::new(NodeClock::new(host.clone(), 0.0, 0.0, None));
    let (tx, mut requests) = mpsc::unbounded_channel();
    let (forward, owner) = mpsc::unbounded_channel();
    let pending: Arc<Mutex<Vec<PlayLogEntry>>> = Arc::default();
    let logs = pending.clone();
    tokio::spawn(async move {
        while let Some(cmd) = requests.recv().await {
            match cmd {
                AgentCmd::AppliedVersion(reply) => {
                    let _ = reply.send(Some("v0".into()));
                }
                AgentCmd::PendingLogs { reply, .. } => {
                    let _ = reply.send(logs.lock().unwrap().clone());
                }
                // No heartbeat today: the session carries on without one.
                AgentCmd::Health(_) => {}
                other => {
                    let _ = forward.send(other);
                }
            }
        }
    });
    let ctx = LinkContext {
        agent: AgentHandle::new(tx),
        clock: clock.clone(),
        dead_after_ms,
        live: Default::default(),
        hello_token: None,
    };
    let (node_end, controller) = memory::pair();
    let (to_link, mut outbox) = mpsc::unbounded_channel();
    let session = tokio::spawn(async move { session(&ctx, node_end, &mut outbox).await });
    Fixture {
        host,
        clock,
        controller,
        owner,
        pending,
        to_link,
        session,
    }
}

async fn from_node(f: &mut Fixture) -> NodeMsg {
    let text = tokio::time::timeout(Duration::from_secs(5), f.controller.recv())
        .await
        .expect("the node speaks")
        .unwrap()
        .unwrap();
    match text {
        protocol::transport::Frame::Text(text) => NodeMsg::decode(&text).unwrap(),
        other => panic!("a text message, not {other:?}"),
    }
}

/// The next thing the session told the owner.
async fn to_owner(f: &mut Fixture) -> AgentCmd {
    tokio::time::timeout(Duration::from_secs(5), f.owner.recv())
        .await
        .expect("the session tells the owner")
        .unwrap()
}

async fn say(f: &mut Fixture, msg: &ControllerMsg) {
    f.controller.send(link::encode(msg)).await.unwrap();
}

fn entry(id: &str) -> PlayLogEntry {
    PlayLogEntry {
        id: id.into(),
        schedule_id: Some(1),
        content_id: None,
        scheduled_at: None,
        started_at: None,
        ended_at: None,
        outcome: PlayOutcome::Completed,
        reason: None,
    }
}

#[tokio::test]
async fn hello_then_clock_exchanges_and_desired_states_reach_the_owner() {
    let mut f = start(14_000);
    assert!(
        matches!(from_node(&mut f).await, NodeMsg::Hello { applied: Some(v), .. } if v == "v0")
    );
    // Its first clock exchange: the controller's clock is 2 s ahead, the trip instant.
    let NodeMsg::Ping { t0 } = from_node(&mut f).await else {
        panic!("pings first")
    };
    assert_eq!(t0, T0);
    let (t1, t2) = (T0 + 2_000 * MS, T0 + 2_000 * MS);
    say(&mut f, &ControllerMsg::Pong { t0, t1, t2 }).await;
    let state = desired(1, "v1", vec![]);
    say(&mut f, &ControllerMsg::Desired(Box::new(state))).await;
    match to_owner(&mut f).await {
        AgentCmd::Desired(d) => assert_eq!(d.version, "v1"),
        _ => panic!("the desired state goes to the owner"),
    }
    // The pong, handled before it, set the node's view of the controller's clock.
    assert_eq!(f.clock.offset_ns(), 2_000 * MS);
    assert_eq!(f.clock.controller_ns(), T0 + 2_000 * MS);
    f.session.abort();
}

#[tokio::test]
async fn play_logs_go_up_one_batch_at_a_time_until_acknowledged() {
    let mut f = start(14_000);
    *f.pending.lock().unwrap() = vec![entry("a"), entry("b")];
    let batches = |m: &NodeMsg| matches!(m, NodeMsg::PlayLogs { .. });
    let mut first = from_node(&mut f).await;
    while !batches(&first) {
        first = from_node(&mut f).await;
    }
    let NodeMsg::PlayLogs { entries } = first else {
        unreachable!()
    };
    assert_eq!(entries.len(), 2);
    // While that batch is in flight, news of more logs uploads nothing.
    f.to_link.send(ToLink::LogsChanged).unwrap();
    f.host.advance_ms(1_000);
    for _ in 0..3 {
        assert!(!batches(&from_node(&mut f).await), "one batch in flight");
    }
    f.pending.lock().unwrap().clear();
    say(
        &mut f,
        &ControllerMsg::PlayLogsAck {
            ids: vec!["a".into(), "b".into()],
        },
    )
    .await;
    loop {
        if let AgentCmd::AckLogs(ids) = to_owner(&mut f).await {
            assert_eq!(ids, ["a", "b"]);
            break;
        }
    }
    f.session.abort();
}

#[tokio::test]
async fn a_silent_controller_is_given_up_on() {
    let mut f = start(14_000);
    from_node(&mut f).await;
    f.host.advance_ms(14_001);
    // Noticed at the next turn of the loop (a clock exchange wakes it within a second).
    let ended = tokio::time::timeout(Duration::from_secs(3), f.session)
        .await
        .expect("the session ends");
    assert!(matches!(ended.unwrap(), Err(LinkError::Dead)));
}

#[tokio::test]
async fn a_malformed_message_closes_the_link() {
    let mut f = start(14_000);
    from_node(&mut f).await;
    f.controller.send("{\"kind\":".into()).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(3), f.session)
        .await
        .expect("the session ends");
    assert!(matches!(ended.unwrap(), Err(LinkError::BadMessage(_))));
}
