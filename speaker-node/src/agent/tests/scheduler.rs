//! The scheduler's turn, on the controller clock it is handed: what goes to the playout
//! when, what a new plan does, what is logged as skipped.

use protocol::link::PlayOutcome;
use protocol::schedule::Priority;

use super::support::{MS, T0, desired, once};
use crate::agent::cache::BlobCache;
use crate::agent::scheduler::Scheduler;

fn cache() -> (tempfile::TempDir, BlobCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(dir.path().join("cache")).unwrap();
    (dir, cache)
}

#[test]
fn a_play_is_queued_three_seconds_ahead_once() {
    let (_d, cache) = cache();
    let start = T0 + 60_000 * MS;
    let state = desired(1, "v1", vec![once(7, Priority::Normal, start, 10_000)]);
    let mut s = Scheduler::new(T0);
    assert!(s.tick(&state, start - 3_001 * MS, &cache).jobs.is_empty());
    let turn = s.tick(&state, start - 2_999 * MS, &cache);
    let (jobs, skips) = (turn.jobs, turn.skips);
    assert_eq!(jobs.len(), 1);
    assert!(skips.is_empty());
    assert_eq!(jobs[0].start_ns, start);
    assert_eq!(jobs[0].schedule_id, Some(7));
    assert_eq!(jobs[0].nominal_ms, 10_000);
    assert!(
        s.tick(&state, start - 2_000 * MS, &cache).jobs.is_empty(),
        "queued once"
    );
    // A new plan queues again what had not started...
    s.replan();
    assert_eq!(s.tick(&state, start - 1_000 * MS, &cache).jobs.len(), 1);
    // ...but not what the playout already started.
    s.started(&jobs[0].key);
    s.replan();
    assert!(s.tick(&state, start + 1_000 * MS, &cache).jobs.is_empty());
}

#[test]
fn a_play_missed_while_down_starts_late_inside_its_window_and_not_after() {
    let (_d, cache) = cache();
    let start = T0 + 60_000 * MS;
    let state = desired(1, "v1", vec![once(7, Priority::Normal, start, 600_000)]);
    let window = state.schedules[0].max_delay_ms() as i64 * MS;
    // Restarted 5 s after the start, inside the window: from the beginning, now.
    let now = start + 5_000 * MS;
    let jobs = Scheduler::new(T0).tick(&state, now, &cache).jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].start_ns, now);
    // Restarted after the window: nothing.
    let late = start + window + 1_000 * MS;
    assert!(
        Scheduler::new(T0)
            .tick(&state, late, &cache)
            .jobs
            .is_empty()
    );
}

#[test]
fn a_skipped_play_is_logged_once_when_its_time_comes() {
    let (_d, cache) = cache();
    let start = T0 + 60_000 * MS;
    // Two plays at once: the second cannot wait (its window is short) and is skipped.
    let mut a = once(1, Priority::Priority, start, 600_000);
    a.max_delay_ms = Some(0);
    let mut b = once(2, Priority::Priority, start, 600_000);
    b.max_delay_ms = Some(0);
    let state = desired(1, "v1", vec![a, b]);
    let mut s = Scheduler::new(T0);
    let turn = s.tick(&state, start - 2_000 * MS, &cache);
    let (jobs, skips) = (turn.jobs, turn.skips);
    assert_eq!(jobs.len(), 1);
    assert!(skips.is_empty(), "not before its time");
    let skips = s.tick(&state, start + 1, &cache).skips;
    assert_eq!(skips.len(), 1);
    assert_eq!(skips[0].outcome, PlayOutcome::Skipped);
    assert!(
        s.tick(&state, start + 500 * MS, &cache).skips.is_empty(),
        "once"
    );
}

#[test]
fn an_emergency_without_its_audio_waits_for_it_then_starts_late() {
    let (d, cache) = cache();
    let start = T0 + 60_000 * MS;
    let storm = once(9, Priority::Emergency, start, 30_000);
    let sha = storm.program.items[0].sha256.clone().unwrap();
    let state = desired(1, "v1", vec![storm]);
    let mut s = Scheduler::new(T0);
    let turn = s.tick(&state, start - 1_000 * MS, &cache);
    assert!(turn.jobs.is_empty(), "not failed on an empty cache");
    assert_eq!(turn.waiting.len(), 1);
    assert_eq!(turn.waiting[0].schedule_id, 9);
    // The fetch brings it 4 s late: it starts then, whole, marked as an emergency.
    std::fs::write(d.path().join("cache").join(&sha), b"x").unwrap();
    let now = start + 4_000 * MS;
    let turn = s.tick(&state, now, &cache);
    assert!(turn.waiting.is_empty());
    assert_eq!(turn.jobs.len(), 1);
    assert_eq!(turn.jobs[0].start_ns, now);
    assert!(turn.jobs[0].emergency);
}
