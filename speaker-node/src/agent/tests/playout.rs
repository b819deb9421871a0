//! The playout state machine on a test sink: where a job's first frame lands, how a later
//! job cuts an earlier one, late and missed starts, and stop.

use std::sync::atomic::Ordering;
use std::time::Duration;

use protocol::link::PlayOutcome;
use protocol::time::Clock;

use super::support::{MS, RATE, T0, TestPlayout, playout};
use crate::agent::playout::{Job, PlayKey, PlayoutCmd, PlayoutEvent, Segment};

fn tone_job(id: i64, start_ns: i64, ms: u64) -> Job {
    Job {
        key: PlayKey {
            schedule_id: id,
            scheduled_at_ns: start_ns,
            attempt: 0,
        },
        schedule_id: Some(id),
        scheduled_at_ns: Some(start_ns),
        start_ns,
        deadline_ns: start_ns + 1_000 * MS,
        segments: vec![Segment::Tone { ms }],
        content_id: None,
        volume: 100,
        nominal_ms: ms,
        emergency: false,
    }
}

/// The frame at controller time `ns` on the test sink (time is the frames played).
fn frame_at(ns: i64) -> u64 {
    ((ns - T0) as i128 * i128::from(RATE) / 1_000_000_000) as u64
}

/// Every play log entry until `n` have ended.
fn ended(p: &mut TestPlayout, n: usize) -> Vec<protocol::link::PlayLogEntry> {
    let mut out = Vec::new();
    while out.len() < n {
        let ev = p.events.blocking_recv().expect("playout runs");
        if let PlayoutEvent::Ended(_, entry) = ev {
            out.push(entry);
        }
    }
    out
}

fn stop(p: TestPlayout) {
    let _ = p.handle.tx.send(PlayoutCmd::Shutdown);
    p.handle.thread.join().unwrap();
}

fn run_with(jobs: Vec<Job>) -> TestPlayout {
    let p = playout();
    for j in jobs {
        p.handle.tx.send(PlayoutCmd::Queue(j)).unwrap();
    }
    // Let the thread take the jobs before the first frame leaves.
    std::thread::sleep(Duration::from_millis(20));
    p.seen.go.store(true, Ordering::SeqCst);
    p
}

#[test]
fn a_job_starts_on_its_exact_frame_and_completes() {
    let start = T0 + 137 * MS;
    let mut p = run_with(vec![tone_job(1, start, 200)]);
    let log = ended(&mut p, 1);
    assert_eq!(log[0].outcome, PlayOutcome::Completed, "{log:?}");
    assert_eq!(
        log[0].started_at.unwrap().timestamp_nanos_opt(),
        Some(start)
    );
    let ended_ns = log[0].ended_at.unwrap().timestamp_nanos_opt().unwrap();
    assert_eq!(ended_ns - start, 200 * MS);
    // The tone's first sample is sin(0) = 0: sound begins one frame after the start.
    assert_eq!(p.seen.onsets.lock().unwrap()[0], frame_at(start) + 1);
    stop(p);
}

#[test]
fn a_later_job_cuts_the_one_on_air_at_its_own_start() {
    let (a, b) = (T0 + 50 * MS, T0 + 300 * MS);
    let mut p = run_with(vec![tone_job(1, a, 5_000), tone_job(2, b, 100)]);
    let log = ended(&mut p, 2);
    assert_eq!(log[0].schedule_id, Some(1));
    assert_eq!(log[0].outcome, PlayOutcome::Interrupted);
    assert_eq!(log[0].ended_at.unwrap().timestamp_nanos_opt(), Some(b));
    assert_eq!(log[1].schedule_id, Some(2));
    assert_eq!(log[1].outcome, PlayOutcome::Completed);
    assert_eq!(log[1].started_at.unwrap().timestamp_nanos_opt(), Some(b));
    stop(p);
}

#[test]
fn a_job_whose_window_closed_is_skipped_and_a_late_one_starts_now() {
    let p = playout();
    p.seen.go.store(true, Ordering::SeqCst);
    // Let the card run 1.2 s before anything is queued.
    while p.host.now_ns() < T0 + 1_200 * MS {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut p = p;
    let mut missed = tone_job(1, T0 + 10 * MS, 100);
    missed.deadline_ns = T0 + 20 * MS;
    p.handle.tx.send(PlayoutCmd::Queue(missed)).unwrap();
    // The card runs free (as fast as the machine goes): a window it cannot outrun.
    let mut late = tone_job(2, T0 + 30 * MS, 100);
    late.deadline_ns = T0 + 3_600_000 * MS;
    p.handle.tx.send(PlayoutCmd::Queue(late)).unwrap();
    let log = ended(&mut p, 2);
    assert_eq!(log[0].outcome, PlayOutcome::Skipped);
    assert_eq!(log[1].outcome, PlayOutcome::Completed);
    let late = log[1].started_at.unwrap().timestamp_nanos_opt().unwrap();
    assert!(
        late > T0 + 1_200 * MS,
        "more than a second late: started whole when it came, not in the past"
    );
    stop(p);
}

#[test]
fn a_job_a_little_late_joins_in_step_where_the_others_are() {
    let p = playout();
    // The card runs 500 ms and holds there while the job is queued: time is the frames
    // played, and the card runs as fast as the machine goes, so anything slower than
    // the card itself stopping could let it run past the job's window first.
    let half_second = u64::from(RATE) / 2;
    p.seen.run_until.store(half_second, Ordering::SeqCst);
    p.seen.go.store(true, Ordering::SeqCst);
    while p.seen.frames.load(Ordering::SeqCst) < half_second {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut p = p;
    let start = T0 + 200 * MS;
    p.handle
        .tx
        .send(PlayoutCmd::Queue(tone_job(1, start, 1_000)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    p.seen.run_until.store(0, Ordering::SeqCst);
    let log = ended(&mut p, 1);
    assert_eq!(log[0].outcome, PlayOutcome::Completed);
    // On the timeline of the nodes that started on time: its start and end are theirs.
    assert_eq!(
        log[0].started_at.unwrap().timestamp_nanos_opt(),
        Some(start)
    );
    let ended_ns = log[0].ended_at.unwrap().timestamp_nanos_opt().unwrap();
    assert_eq!(ended_ns - start, 1_000 * MS);
    let onset = p.seen.onsets.lock().unwrap()[0];
    assert!(
        onset > frame_at(T0 + 500 * MS),
        "heard only from where it joined"
    );
    stop(p);
}

/// A minute-long tone on air, then `cmd`: the play's log entry.
fn on_air_then(cmd: PlayoutCmd) -> (TestPlayout, protocol::link::PlayLogEntry) {
    let mut p = run_with(vec![tone_job(1, T0 + 20 * MS, 60_000)]);
    while p.seen.onsets.lock().unwrap().is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    p.handle.tx.send(cmd).unwrap();
    let log = ended(&mut p, 1).remove(0);
    assert_eq!(log.outcome, PlayOutcome::Interrupted);
    (p, log)
}

#[test]
fn stop_interrupts_the_play_on_air() {
    let (p, log) = on_air_then(PlayoutCmd::Stop);
    assert_eq!(log.reason.as_deref(), Some("stopped by a technician"));
    stop(p);
}

#[test]
fn shutdown_logs_the_play_on_air_and_closes_the_event_channel() {
    let (mut p, log) = on_air_then(PlayoutCmd::Shutdown);
    assert_eq!(log.reason.as_deref(), Some("the node stopped"));
    p.handle.thread.join().unwrap();
    assert!(
        p.events.blocking_recv().is_none(),
        "the sender went with the thread"
    );
}
