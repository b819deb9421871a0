//! Scripted chaos: what villages' links and power do, all at once, on loopback. A real
//! controller and six real nodes, each behind its own impairing proxy (100 ± 100 ms, a
//! 400 ms stall every 6 s), while a script, round after round:
//! - partitions two links for 30 s (one of them while its node's clock is set back);
//! - sets one node's clock an hour forward and another's an hour back while they run;
//! - kills a node with SIGKILL mid-play, and again mid-download of a new item;
//! - kills the controller with SIGKILL twice and starts it again;
//! - and runs one node on a full disk throughout.
//!
//! A 2-second item plays every 10 s on every node. Afterwards: every play due on a node
//! that was up (and had the item) was played once, on time, and logged once; a play cut
//! by a kill is logged as such; no cache file is other than whole; every node came back
//! online within 60 s of its link returning.
//!
//! `LOA_CHAOS_S` sets the length (default one round, 100 s); `./loa bench chaos` runs 20
//! minutes: the script again and again.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use loa_tests::impair::{Impairment, Proxy};
use loa_tests::{
    Api, Controller, Node, Proc, bin, now_ns, sha256_hex, timing_turn, tone_wav, tone_wav_with_gap,
    wait_for,
};
use serde_json::{Value, json};

/// One round of the script, s.
const ROUND_S: i64 = 100;
/// The item plays every this many seconds.
const EVERY_S: i64 = 10;
/// A node (re)started this long ago may not have its schedule loaded yet, s.
const STARTING_S: i64 = 5;
/// A play that starts later than this after its time is late (ms).
const LATE_MS: i64 = 1_000;
/// A node is back within this long of its link returning (the issue's target), s.
const BACK_WITHIN_S: i64 = 60;
const S: i64 = 1_000_000_000;

// 0: a steady node, with only the common impairment.
const PARTITIONED: usize = 1;
const KILLED: usize = 2;
const FULL_DISK: usize = 3;
const AHEAD: usize = 4;
const BEHIND: usize = 5;
const NAMES: [&str; 6] = [
    "loa-steady",
    "loa-partitioned",
    "loa-killed",
    "loa-full-disk",
    "loa-clock-ahead",
    "loa-clock-behind",
];

/// What the script did, with host times (ns).
#[derive(Default)]
struct Record {
    /// (node, when its link returned: healed, restarted, the controller back).
    returns: Vec<(usize, i64)>,
    /// (node, from, to): the node was down or just starting; plays due then are excused.
    down: Vec<(usize, i64, i64)>,
    counts: HashMap<&'static str, u32>,
}

impl Record {
    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
}

/// Which nodes the controller shows online, polled every half second: (host ns, online).
type Seen = Arc<Mutex<Vec<(i64, Vec<i64>)>>>;

fn watch_online(api: Api) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let out = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            if let Some(nodes) = api.try_get("/api/v1/nodes").await {
                let online = nodes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|n| n["online"] == true)
                    .filter_map(|n| n["id"].as_i64())
                    .collect();
                out.lock().unwrap().push((now_ns(), online));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    (seen, task)
}

async fn sleep_until(at_ns: i64) {
    let wait = at_ns - now_ns();
    if wait > 0 {
        tokio::time::sleep(Duration::from_nanos(wait as u64)).await;
    }
}

fn time(v: &Value) -> Option<i64> {
    let t = DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    t.with_timezone(&Utc).timestamp_nanos_opt()
}

/// Starts the node on a disk with no byte free: its state copied onto a small tmpfs in a
/// mount namespace of its own, the rest filled.
fn start_on_a_full_disk(node: &mut Node, mount: &Path) {
    std::fs::create_dir_all(mount).unwrap();
    let script = r#"mount -t tmpfs -o size=16m tmpfs "$1" && cp -a "$2"/. "$1"/ &&
        { dd if=/dev/zero of="$1/filler" bs=64k 2>/dev/null; true; } &&
        exec "$3" run --state "$1" --output null"#;
    // Root makes the namespace itself; anyone else through a user namespace of their own.
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next().map(|id| id == "0"))
        .unwrap_or(false);
    let mut cmd = Command::new("unshare");
    if !root {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(mount)
    .arg(&node.state)
    .arg(bin("speaker-node"))
    .env("SPEAKER_NODE_LOG", "info");
    let log = node.state.with_extension(format!("{}.log", now_ns()));
    node.proc = Some(Proc::start(&mut cmd, log));
}

/// The clock nodes run with their clock set an hour either way `after_s` in.
fn start_with_clock_step(node: &mut Node, forward: bool, after_s: i64) {
    let step = if forward { "3600000" } else { "-3600000" };
    let after = after_s.to_string();
    node.start_output(
        "null",
        &["--clock-step-ms", step, "--clock-step-after-s", &after],
    );
}

/// Every file of the cache that is under a hash must hash to it.
fn corrupt_cache_files(cache: &Path) -> (usize, Vec<String>) {
    let mut whole = 0;
    let mut bad = Vec::new();
    for entry in std::fs::read_dir(cache).into_iter().flatten().flatten() {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        let bytes = std::fs::read(&path).unwrap_or_default();
        if sha256_hex(&bytes) == name {
            whole += 1;
        } else if name.len() == 64 {
            bad.push(path.display().to_string());
        }
    }
    (whole, bad)
}

/// A 40-second item of its own each round (a silent mark where the round says), so each
/// round's is a new download.
fn long_item(round: i64) -> Vec<u8> {
    tone_wav_with_gap(40.0, Some((1.0 + round as f32 * 0.5, 0.25)))
}

/// SIGKILL (a power cut), and the node starts again 3 s later.
async fn kill_and_restart(node: &mut Node, i: usize, rec: &mut Record) {
    let killed = now_ns();
    node.proc().kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    node.start_output("null", &[]);
    rec.down.push((i, killed, now_ns() + STARTING_S * S));
    rec.returns.push((i, now_ns()));
}

/// A normal-priority schedule of `content` for `nodes`.
async fn schedule(api: &Api, title: &str, content: i64, nodes: &[i64], rule: Value) -> i64 {
    let body = json!({
        "title": title,
        "content_ids": [content],
        "targets": { "nodes": nodes },
        "priority": "normal",
        "rule": rule,
    });
    api.post("/api/v1/schedules", body).await["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_ride_out_partitions_kills_a_full_disk_and_clock_steps() {
    let _turn = timing_turn().await;
    let length_s: i64 = std::env::var("LOA_CHAOS_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(ROUND_S);
    let rounds = (length_s / ROUND_S).max(1);
    let dir = tempfile::tempdir().unwrap();
    let mut ctl = Controller::start(dir.path()).await;
    let village = ctl.api.village("Thôn Bão").await;
    let (item, _) = ctl.api.approved_audio("Tin ngắn", tone_wav(2.0)).await;
    let link = Impairment {
        stall_every: Some(Duration::from_secs(6)),
        stall_for: Duration::from_millis(400),
        ..Impairment::jittery(100, 100)
    };
    let mut proxies = Vec::new();
    let mut nodes = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let proxy = Proxy::start(ctl.addr, link, 40 + i as u64).await;
        let mut n = Node::enroll_via(&ctl, &proxy.url(), dir.path(), name, village).await;
        n.start_output("null", &[]);
        proxies.push(proxy);
        nodes.push(n);
    }
    let ids: Vec<i64> = nodes.iter().map(|n| n.id).collect();
    let cron = format!("*/{EVERY_S} * * * * *");
    let every = schedule(&ctl.api, "Mỗi 10 giây", item, &ids, json!({ "cron": cron })).await;
    for n in &nodes {
        n.wait_ready_within(&ctl.api, 1_000.0, Duration::from_secs(120))
            .await;
    }
    let mut rec = Record::default();
    // The full disk: the node stops, and comes back on a disk with no byte free.
    let full_mount = dir.path().join("full-disk");
    let stopped = now_ns();
    nodes[FULL_DISK].proc().stop();
    start_on_a_full_disk(&mut nodes[FULL_DISK], &full_mount);
    rec.down
        .push((FULL_DISK, stopped, now_ns() + STARTING_S * S));
    rec.returns.push((FULL_DISK, now_ns()));
    let (seen, watcher) = watch_online(ctl.api.clone());

    let t0 = now_ns();
    for round in 0..rounds {
        let base = t0 + round * ROUND_S * S;
        let at = |s: i64| base + s * S;
        // Clocks: the two nodes restart, to be set an hour either way 20 s in.
        for (i, forward) in [(AHEAD, round % 2 == 0), (BEHIND, round % 2 == 1)] {
            let from = now_ns();
            nodes[i].proc().stop();
            start_with_clock_step(&mut nodes[i], forward, 20);
            rec.down.push((i, from, now_ns() + STARTING_S * S));
            rec.returns.push((i, now_ns()));
            rec.count("clock set ±1 h");
        }
        sleep_until(at(5)).await;
        proxies[PARTITIONED].partition();
        rec.count("30 s partition");
        sleep_until(at(15)).await;
        proxies[BEHIND].partition();
        rec.count("30 s partition");
        // Mid-play: a second into the next play.
        let due = (now_ns() / (EVERY_S * S) + 1) * EVERY_S * S;
        sleep_until(due + S).await;
        kill_and_restart(&mut nodes[KILLED], KILLED, &mut rec).await;
        rec.count("node killed mid-play");
        sleep_until(at(35)).await;
        proxies[PARTITIONED].heal();
        rec.returns.push((PARTITIONED, now_ns()));
        // Mid-download: a long new item, needed the day after tomorrow, over a thin pipe.
        sleep_until(at(38)).await;
        let (long, sha) = ctl
            .api
            .approved_audio(&format!("Bản tin dài {round}"), long_item(round))
            .await;
        let later = chrono::Utc::now() + chrono::Duration::days(2);
        let rule = json!({ "once": later.to_rfc3339() });
        schedule(&ctl.api, &format!("Ngày kia {round}"), long, &ids, rule).await;
        proxies[KILLED].set(Impairment {
            bytes_per_s: Some(300_000),
            ..link
        });
        let partial = nodes[KILLED].state.join("cache/partial").join(&sha);
        let downloading = wait_for("a download under way", Duration::from_secs(40), || {
            let size = std::fs::metadata(&partial).map_or(0, |m| m.len());
            async move { (size > 0).then_some(size) }
        })
        .await;
        kill_and_restart(&mut nodes[KILLED], KILLED, &mut rec).await;
        rec.count("node killed mid-download");
        eprintln!("round {round}: killed mid-download with {downloading} bytes in hand");
        sleep_until(at(45)).await;
        proxies[BEHIND].heal();
        rec.returns.push((BEHIND, now_ns()));
        for (kill, back) in [(55, 58), (72, 74)] {
            sleep_until(at(kill)).await;
            ctl.proc.kill();
            rec.count("controller killed");
            sleep_until(at(back)).await;
            ctl.restart(dir.path()).await;
            let now = now_ns();
            rec.returns.extend((0..nodes.len()).map(|i| (i, now)));
        }
        sleep_until(at(ROUND_S)).await;
        proxies[KILLED].set(link);
    }
    let t_end = now_ns();

    // Everything heals: every node online, every log delivered, every blob fetched (but
    // the long ones on the full disk).
    for n in &nodes {
        wait_for(
            "every node back with its logs",
            Duration::from_secs(90),
            || async {
                let v = ctl.api.node(n.id).await;
                let h = &v["health"];
                let missing = h["missing_blobs"].as_array().map_or(usize::MAX, Vec::len);
                let done = v["online"] == true
                    && h["pending_logs"] == 0
                    && (missing == 0 || n.id == ids[FULL_DISK]);
                done.then_some(())
            },
        )
        .await;
    }
    watcher.abort();
    let full_disk_health = ctl.api.node(ids[FULL_DISK]).await["health"].clone();

    // Back within 60 s of each return.
    let seen = seen.lock().unwrap().clone();
    let mut worst_back = 0.0f64;
    for &(i, at) in &rec.returns {
        let back = seen
            .iter()
            .find(|(t, online)| *t >= at && online.contains(&ids[i]))
            .map(|(t, _)| (t - at) as f64 / 1e9)
            .unwrap_or(f64::INFINITY);
        assert!(
            back <= BACK_WITHIN_S as f64,
            "{} back {back:.1} s after its link returned",
            NAMES[i]
        );
        worst_back = worst_back.max(back);
    }

    // The partitioned link was noticed (the node shown offline), and the clocks were set
    // under the running nodes.
    let partition = t0 + 5 * S..t0 + 35 * S;
    assert!(
        seen.iter()
            .any(|(t, online)| partition.contains(t) && !online.contains(&ids[PARTITIONED])),
        "the partitioned node was never shown offline"
    );
    for i in [AHEAD, BEHIND] {
        let log = nodes[i].proc().log_text();
        assert!(
            log.contains("the host clock was set"),
            "{}: no clock step seen: {log}",
            NAMES[i]
        );
    }

    // Every play due while a node was up: played once, on time, logged once.
    let (mut due_total, mut played, mut cut_short) = (0, 0, 0);
    let mut problems = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let logs: Vec<Value> = ctl
            .api
            .playlogs(n.id)
            .await
            .into_iter()
            .filter(|l| l["schedule_id"] == every)
            .collect();
        let mut by_due: HashMap<i64, Vec<&Value>> = HashMap::new();
        for l in &logs {
            if let Some(t) = time(&l["scheduled_at"]) {
                by_due.entry(t).or_default().push(l);
            }
        }
        let first = (t0 / (EVERY_S * S) + 1) * EVERY_S * S;
        let mut due = first;
        while due < t_end - EVERY_S * S {
            let excused = rec
                .down
                .iter()
                .any(|&(j, from, to)| j == i && (from - 3 * S..=to).contains(&due));
            let these = by_due.get(&due).cloned().unwrap_or_default();
            let completed: Vec<&&Value> = these
                .iter()
                .filter(|l| l["outcome"] == "completed")
                .collect();
            let mut starts: Vec<Option<i64>> =
                these.iter().map(|l| time(&l["started_at"])).collect();
            starts.sort();
            starts.dedup();
            if starts.len() != these.len() || completed.len() > 1 {
                problems.push(format!(
                    "{}: the play due {due} logged twice: {these:?}",
                    NAMES[i]
                ));
            }
            cut_short += these
                .iter()
                .filter(|l| {
                    l["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("cut short"))
                })
                .count();
            if !excused {
                due_total += 1;
                let on_time = completed.first().and_then(|l| time(&l["started_at"]));
                match on_time {
                    Some(start) if start - due <= LATE_MS * 1_000_000 => played += 1,
                    _ => problems.push(format!("{}: the play due {due}: {these:?}", NAMES[i])),
                }
            }
            due += EVERY_S * S;
        }
    }

    // No cache file other than whole (the full disk's seen through its own mount).
    let mut whole = 0;
    for (i, n) in nodes.iter_mut().enumerate() {
        let cache: PathBuf = if i == FULL_DISK {
            assert!(n.proc().running(), "the full-disk node is gone");
            let pid = n.proc().pid().unwrap_or(0);
            let inside = full_mount.join("cache");
            let inside = inside.strip_prefix("/").unwrap_or(&inside);
            Path::new(&format!("/proc/{pid}/root")).join(inside)
        } else {
            n.state.join("cache")
        };
        let (ok, bad) = corrupt_cache_files(&cache);
        assert!(bad.is_empty(), "{}: corrupt cache files {bad:?}", NAMES[i]);
        assert!(
            ok >= 1,
            "{}: nothing cached in {}",
            NAMES[i],
            cache.display()
        );
        whole += ok;
    }
    let table = [
        ("length, s", ((t_end - t0) / S).to_string()),
        ("nodes", nodes.len().to_string()),
        ("plays due on nodes up", due_total.to_string()),
        ("played on time and logged once", played.to_string()),
        ("plays cut by a kill, logged as such", cut_short.to_string()),
        ("problems", problems.len().to_string()),
        ("whole cache files checked", whole.to_string()),
        ("slowest back online, s", format!("{worst_back:.1}")),
    ];
    let mut counts: Vec<_> = rec.counts.iter().collect();
    counts.sort();
    eprintln!("chaos: {counts:?}");
    for (what, v) in table {
        eprintln!("chaos: {what}: {v}");
    }
    eprintln!(
        "chaos: the full-disk node's last error: {}",
        full_disk_health["last_error"]
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        cut_short >= rounds as usize,
        "every mid-play kill leaves a log of the play it cut"
    );
    assert!(played > 0);
}
