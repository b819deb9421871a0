//! The node's scheduler: runs the stored desired state through the shared resolver
//! (`protocol::schedule::resolve`, the same function the CMS preview runs) on the
//! controller's clock, and hands each play to the playout thread a few seconds before it
//! starts. Skipped plays are logged when their time comes.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use protocol::desired::DesiredState;
use protocol::link::{PlayLogEntry, PlayOutcome};
use protocol::schedule::{Outcome, Play, Priority, ScheduleSpec, resolve};

use super::cache::BlobCache;
use super::journal;
use super::playout::{Job, PlayKey, Segment};

/// Plays go to the playout this far ahead of their start (it needs a little more than the
/// output's buffer; a desired state changed after that applies from the next play).
const DISPATCH_AHEAD_MS: i64 = 3_000;
/// How far back a play may have begun and still be started late (after a restart).
const LOOKBACK_MS: i64 = 6 * 3_600_000;
/// Blobs needed within this many days are fetched first and never evicted.
pub const NEEDED_DAYS: i64 = 7;

fn time(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

fn ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(0)
}

fn key(p: &Play) -> PlayKey {
    PlayKey {
        schedule_id: p.schedule_id,
        scheduled_at_ns: ns(p.scheduled_at),
        attempt: p.attempt,
    }
}

/// One scheduler turn's work for the owner.
#[derive(Default)]
pub struct Turn {
    /// Jobs for the playout.
    pub jobs: Vec<Job>,
    /// Skipped plays to log.
    pub skips: Vec<PlayLogEntry>,
    /// Emergencies due whose audio is not in the cache yet: held (not failed) until the
    /// fetch brings it or their window closes.
    pub waiting: Vec<PlayKey>,
}

pub struct Scheduler {
    /// Plays handed to the playout (true once started), by key.
    dispatched: HashMap<PlayKey, bool>,
    skips_logged: HashSet<PlayKey>,
    /// Controller time the agent started: skips before it are not logged.
    started_ns: i64,
}

impl Scheduler {
    pub fn new(started_ns: i64) -> Self {
        Scheduler {
            dispatched: HashMap::new(),
            skips_logged: HashSet::new(),
            started_ns,
        }
    }

    pub fn started(&mut self, key: &PlayKey) {
        if let Some(s) = self.dispatched.get_mut(key) {
            *s = true;
        }
    }

    /// The plan changed: plays queued but not started will be planned again.
    pub fn replan(&mut self) {
        self.dispatched.retain(|_, started| *started);
    }

    /// One turn: the jobs to queue now, the skip entries to log, the emergencies held.
    pub fn tick(&mut self, state: &DesiredState, now_ns: i64, cache: &BlobCache) -> Turn {
        // The owner refuses a state whose zone is unknown; one cannot get here.
        let Some(tz) = state.zone() else {
            return Turn::default();
        };
        let plays = resolve(
            &state.schedules,
            tz,
            time(now_ns - LOOKBACK_MS * 1_000_000),
            time(now_ns + DISPATCH_AHEAD_MS * 1_000_000),
        );
        let specs: HashMap<i64, &ScheduleSpec> =
            state.schedules.iter().map(|s| (s.id, s)).collect();
        let mut turn = Turn::default();
        for p in &plays {
            let k = key(p);
            let Some(spec) = specs.get(&p.schedule_id) else {
                continue;
            };
            let deadline = ns(p.scheduled_at) + spec.max_delay_ms() as i64 * 1_000_000;
            if p.outcome == Outcome::Skipped {
                if ns(p.scheduled_at) <= now_ns
                    && ns(p.scheduled_at) >= self.started_ns
                    && self.skips_logged.insert(k)
                {
                    turn.skips.push(skip_entry(p));
                }
                continue;
            }
            if self.dispatched.contains_key(&k) {
                continue;
            }
            let end = ns(p.end);
            if end <= now_ns {
                continue;
            }
            // Missed its start (the agent restarted mid-play, or the state came late): from
            // the beginning, now, if its window is still open.
            let mut start = ns(p.start);
            if start < now_ns - 1_000_000_000 {
                if now_ns > deadline {
                    continue;
                }
                start = now_ns;
            }
            // An emergency late is far better than an emergency failed.
            if spec.priority == Priority::Emergency && !has_audio(spec, cache) {
                turn.waiting.push(k);
                continue;
            }
            self.dispatched.insert(k.clone(), false);
            turn.jobs.push(job(spec, p, k, start, deadline, cache));
        }
        // Forget what is long past.
        let horizon = now_ns - 2 * LOOKBACK_MS * 1_000_000;
        self.dispatched.retain(|k, _| k.scheduled_at_ns > horizon);
        self.skips_logged.retain(|k| k.scheduled_at_ns > horizon);
        turn
    }
}

/// Whether every blob of the program is in the cache.
fn has_audio(spec: &ScheduleSpec, cache: &BlobCache) -> bool {
    let program = &spec.program;
    program
        .chime
        .iter()
        .chain(program.items.iter())
        .filter_map(|i| i.sha256.as_deref())
        .all(|sha| cache.has(sha))
}

fn skip_entry(p: &Play) -> PlayLogEntry {
    PlayLogEntry {
        id: journal::new_id(),
        schedule_id: Some(p.schedule_id),
        content_id: None,
        scheduled_at: Some(p.scheduled_at),
        started_at: None,
        ended_at: None,
        outcome: PlayOutcome::Skipped,
        reason: Some(match p.because_of {
            Some(other) => format!("schedule {other} played instead until its window closed"),
            None => "its window closed".into(),
        }),
    }
}

/// The program as segments: chime, items with their gaps, repeats with pauses.
fn job(
    spec: &ScheduleSpec,
    p: &Play,
    key: PlayKey,
    start_ns: i64,
    deadline: i64,
    cache: &BlobCache,
) -> Job {
    let audio = |i: &protocol::schedule::ProgramItem| {
        if let Some(session) = i.live {
            return Segment::Live { session };
        }
        if let Some(url) = &i.url {
            return Segment::Relay {
                content_id: i.content_id,
                url: url.clone(),
                ms: i.duration_ms,
            };
        }
        let sha = i.sha256.clone().unwrap_or_default();
        Segment::Audio {
            content_id: i.content_id,
            path: cache.path_of(&sha),
            sha256: sha,
            gain_db: i.gain_db,
        }
    };
    let program = &spec.program;
    let mut segments = Vec::new();
    if let Some(chime) = &program.chime {
        segments.push(audio(chime));
        segments.push(Segment::Silence {
            ms: chime.gap_after_ms,
        });
    }
    let repeat = program.repeat.max(1);
    for r in 0..repeat {
        if r > 0 && program.pause_ms > 0 {
            segments.push(Segment::Silence {
                ms: program.pause_ms,
            });
        }
        for (i, item) in program.items.iter().enumerate() {
            segments.push(audio(item));
            let last = r + 1 == repeat && i + 1 == program.items.len();
            if !last && item.gap_after_ms > 0 {
                segments.push(Segment::Silence {
                    ms: item.gap_after_ms,
                });
            }
        }
    }
    Job {
        key,
        schedule_id: Some(p.schedule_id),
        scheduled_at_ns: Some(ns(p.scheduled_at)),
        start_ns,
        deadline_ns: deadline.max(start_ns),
        segments,
        content_id: program.items.first().map(|i| i.content_id),
        volume: spec.volume,
        nominal_ms: program.duration_ms(),
        emergency: spec.priority == Priority::Emergency,
    }
}

/// Blobs the next [`NEEDED_DAYS`] need, nearest first, then the rest of the state's.
pub fn needed_blobs(state: &DesiredState, now_ns: i64) -> (Vec<String>, Vec<String>) {
    let Some(tz) = state.zone() else {
        return (Vec::new(), Vec::new());
    };
    let plays = resolve(
        &state.schedules,
        tz,
        time(now_ns),
        time(now_ns) + Duration::days(NEEDED_DAYS),
    );
    let specs: HashMap<i64, &ScheduleSpec> = state.schedules.iter().map(|s| (s.id, s)).collect();
    let mut soon: Vec<String> = Vec::new();
    for p in plays.iter().filter(|p| p.outcome != Outcome::Skipped) {
        let Some(spec) = specs.get(&p.schedule_id) else {
            continue;
        };
        let items = spec.program.chime.iter().chain(spec.program.items.iter());
        for sha in items.filter_map(|i| i.sha256.as_ref()) {
            if !soon.contains(sha) {
                soon.push(sha.clone());
            }
        }
    }
    let later = state
        .blobs()
        .into_iter()
        .filter(|b| !soon.iter().any(|s| s == b))
        .map(str::to_owned)
        .collect();
    (soon, later)
}
