//! The owner task on a temporary state directory and a test playout: desired states
//! stored before they are acknowledged, plays journalled, commands answered, and a
//! shutdown that loses nothing the playout logged on its way out.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use protocol::link::{Command, NodeMsg, PlayOutcome};
use protocol::schedule::Priority;
use tokio::sync::{Notify, mpsc, watch};

use super::support::{MS, T0, TestPlayout, desired, once, playout};
use crate::agent::Exit;
use crate::agent::cache::BlobCache;
use crate::agent::fetcher::Fetcher;
use crate::agent::journal::PlayJournal;
use crate::agent::owner::{AgentCmd, AgentCore, AgentHandle, CoreLinks, CoreParts, ToLink};
use crate::agent::state::StateDir;

struct Fixture {
    _dir: tempfile::TempDir,
    state: StateDir,
    seen: Arc<super::support::Seen>,
    handle: AgentHandle,
    to_link: mpsc::UnboundedReceiver<ToLink>,
    exit: watch::Receiver<Option<Exit>>,
    owner: tokio::task::JoinHandle<()>,
}

fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let cache = Arc::new(BlobCache::open(state.cache_dir()).unwrap());
    let TestPlayout {
        clock,
        seen,
        handle: playout,
        events,
        ..
    } = playout();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let handle = AgentHandle::new(cmd_tx);
    let (to_link_tx, to_link) = mpsc::unbounded_channel();
    let (wanted, _) = watch::channel(None);
    let (exit_tx, exit) = watch::channel(None);
    let fetcher = Fetcher {
        http: reqwest::Client::new(),
        base: "http://127.0.0.1:9".into(),
        token: Some("ln_test".into()),
        cache: cache.clone(),
    };
    let core = AgentCore::new(
        CoreParts {
            node_id: 1,
            state: state.clone(),
            clock,
            cache,
            journal: PlayJournal::open(&state.playlog_dir()).unwrap(),
            desired: None,
            playout,
            fetcher,
            output_name: "test".into(),
            cache_quota_bytes: 1 << 30,
        },
        CoreLinks {
            handle: handle.clone(),
            to_link: to_link_tx,
            wanted,
            fetch_now: Arc::new(Notify::new()),
            exit: exit_tx,
        },
    );
    let owner = tokio::spawn(core.run(cmd_rx, events));
    Fixture {
        _dir: dir,
        state,
        seen,
        handle,
        to_link,
        exit,
        owner,
    }
}

/// The next message for the link (logs-changed notices skipped).
async fn next_msg(f: &mut Fixture) -> NodeMsg {
    loop {
        let got = tokio::time::timeout(Duration::from_secs(5), f.to_link.recv()).await;
        match got.expect("the owner answers").expect("owner alive") {
            ToLink::Send(m) => return m,
            ToLink::LogsChanged => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desired_state_is_stored_before_it_is_acknowledged_and_others_are_refused() {
    let mut f = start();
    f.handle
        .send(AgentCmd::Desired(Box::new(desired(2, "other", vec![]))));
    let refused = f.handle.health().await.unwrap().last_error.unwrap();
    assert!(refused.contains("node 2 refused"), "{refused}");
    let mut martian = desired(1, "mars", vec![]);
    martian.tz = "Mars/Olympus_Mons".into();
    f.handle.send(AgentCmd::Desired(Box::new(martian)));
    let refused = f.handle.health().await.unwrap().last_error.unwrap();
    assert!(refused.contains("unknown time zone"), "{refused}");
    let state = desired(
        1,
        "v1",
        vec![once(5, Priority::Normal, T0 + 3_600_000 * MS, 1000)],
    );
    f.handle.send(AgentCmd::Desired(Box::new(state)));
    assert!(matches!(next_msg(&mut f).await, NodeMsg::Applied { version } if version == "v1"));
    assert_eq!(f.state.desired().unwrap().unwrap().version, "v1");
    let health = f.handle.health().await.unwrap();
    assert_eq!(health.applied_version.as_deref(), Some("v1"));
    assert_eq!(health.missing_blobs, [format!("{:064x}", 5)]);
    assert_eq!(f.handle.applied_version().await.as_deref(), Some("v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_play_is_journalled_until_acknowledged() {
    let mut f = start();
    // Not in the cache: the play fails, and says why.
    let state = desired(
        1,
        "v1",
        vec![once(5, Priority::Normal, T0 + 1_000 * MS, 1000)],
    );
    f.handle.send(AgentCmd::Desired(Box::new(state)));
    next_msg(&mut f).await;
    f.seen.go.store(true, Ordering::SeqCst);
    let logs = loop {
        let logs = f.handle.pending_logs(10).await;
        if !logs.is_empty() {
            break logs;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(logs[0].schedule_id, Some(5));
    assert_eq!(logs[0].outcome, PlayOutcome::Failed);
    assert!(
        logs[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("not in the cache")
    );
    f.handle.send(AgentCmd::AckLogs(vec![logs[0].id.clone()]));
    assert!(f.handle.pending_logs(10).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_answered_and_volume_is_kept_on_disk() {
    let mut f = start();
    // The card runs: the playout takes the new volume.
    f.seen.go.store(true, Ordering::SeqCst);
    f.handle.send(AgentCmd::Remote {
        id: 9,
        command: Command::SetVolume { volume: 65 },
    });
    match next_msg(&mut f).await {
        NodeMsg::CommandDone { id, ok, message } => {
            assert_eq!((id, ok), (9, true));
            assert_eq!(message, "volume 65");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.state.settings().volume, Some(65));
    // The heartbeat a second later shows it.
    match next_msg(&mut f).await {
        NodeMsg::Heartbeat(h) => assert_eq!(h.volume, 65),
        other => panic!("{other:?}"),
    }
    f.handle.send(AgentCmd::Remote {
        id: 10,
        command: Command::Restart,
    });
    f.exit.wait_for(Option::is_some).await.unwrap();
    assert_eq!(*f.exit.borrow(), Some(Exit::Restart));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_journals_the_play_cut_on_the_way_out() {
    let f = start();
    f.handle.send(AgentCmd::Remote {
        id: 3,
        command: Command::TestTone { seconds: 60 },
    });
    f.seen.go.store(true, Ordering::SeqCst);
    while f.seen.onsets.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    f.handle.send(AgentCmd::Shutdown);
    f.owner.await.unwrap();
    let journal = PlayJournal::open(&f.state.playlog_dir()).unwrap();
    let cut = journal.pending();
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(cut[0].outcome, PlayOutcome::Interrupted);
    assert_eq!(cut[0].reason.as_deref(), Some("the node stopped"));
}
