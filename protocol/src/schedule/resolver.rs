//! Rules -> concrete plays, with conflicts settled by the rules of docs/ARCHITECTURE.md:
//!
//! - a higher priority interrupts a lower one; the interrupted play is logged as
//!   interrupted and restarts from its beginning afterwards if its window is still open;
//! - at equal priority the one already playing finishes and the other waits if its
//!   window allows, else it is skipped;
//! - a play's window runs from its scheduled time to that plus its schedule's max delay;
//! - a schedule stopped by staff (`stopped_at`) ends its play on air there (interrupted,
//!   by nobody) and starts nothing from then on; what it had interrupted restarts.
//!
//! One pure function, [`resolve`], run by the CMS preview and by the node's scheduler, so
//! what staff see is what plays. It simulates one speaker over the window: events are the
//! occurrences' arrivals and the current play's end.

use std::cmp::Reverse;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{Priority, ScheduleSpec};

/// What became of one attempt to play an occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Played to the end.
    Complete,
    /// Cut off at `end` by a higher priority (`because_of`), or stopped by staff.
    Interrupted,
    /// Never started: its window closed while others played. `start == end`.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Play {
    pub schedule_id: i64,
    pub priority: Priority,
    /// When the rule fired.
    pub scheduled_at: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub outcome: Outcome,
    /// 0 for the first attempt, 1 for the first restart after an interruption...
    pub attempt: u32,
    /// Who interrupted this play, or who played instead while it waited and was skipped.
    #[serde(default)]
    pub because_of: Option<i64>,
}

impl Play {
    /// How late the play started compared with its schedule.
    pub fn delay(&self) -> Duration {
        self.start - self.scheduled_at
    }
}

/// The longest a play can reach back: plays that began before the window but still run
/// inside it are found by resolving from this much earlier.
const MAX_LOOKBACK: Duration = Duration::hours(36);

/// Every play on one speaker whose air time overlaps `[from, to)` (skips: whose scheduled
/// time falls inside), sorted by start. `schedules` are those that target the speaker.
pub fn resolve(
    schedules: &[ScheduleSpec],
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Play> {
    if from >= to {
        return Vec::new();
    }
    let lookback = schedules
        .iter()
        .map(|s| Duration::milliseconds((s.program.duration_ms() + s.max_delay_ms()) as i64))
        .max()
        .unwrap_or_default()
        .min(MAX_LOOKBACK);
    let occurrences = expand(schedules, tz, from - lookback, to);
    let mut plays = simulate(occurrences);
    plays.retain(|p| match p.outcome {
        Outcome::Skipped => p.scheduled_at >= from && p.scheduled_at < to,
        _ => p.end > from && p.start < to,
    });
    plays
}

/// One firing of one schedule, waiting to play.
#[derive(Debug, Clone)]
struct Occurrence {
    schedule_id: i64,
    priority: Priority,
    at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    duration: Duration,
    attempt: u32,
    /// The schedule was stopped then.
    stop: Option<DateTime<Utc>>,
}

impl Occurrence {
    /// Queue order: highest priority, then earliest, then lowest schedule id.
    fn rank(&self) -> (Reverse<Priority>, DateTime<Utc>, i64) {
        (Reverse(self.priority), self.at, self.schedule_id)
    }
}

fn expand(
    schedules: &[ScheduleSpec],
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Occurrence> {
    let mut all: Vec<Occurrence> = schedules
        .iter()
        .filter(|s| !s.program.items.is_empty())
        .flat_map(|s| {
            let duration = Duration::milliseconds(s.program.duration_ms() as i64);
            let max_delay = Duration::milliseconds(s.max_delay_ms() as i64);
            let stop = s.stopped_at;
            s.rule
                .occurrences(tz, from, to)
                .into_iter()
                .filter(move |at| stop.is_none_or(|stop| *at < stop))
                .map(move |at| Occurrence {
                    schedule_id: s.id,
                    priority: s.priority,
                    at,
                    deadline: at + max_delay,
                    duration,
                    attempt: 0,
                    stop,
                })
        })
        .collect();
    all.sort_by_key(|o| (o.at, Reverse(o.priority), o.schedule_id));
    all
}

struct Current {
    occ: Occurrence,
    start: DateTime<Utc>,
}

impl Current {
    /// When it ends: its natural end, or earlier where staff stopped it.
    fn end(&self) -> DateTime<Utc> {
        let natural = self.start + self.occ.duration;
        self.occ.stop.map_or(natural, |stop| natural.min(stop))
    }

    fn stopped(&self) -> bool {
        self.occ
            .stop
            .is_some_and(|stop| stop < self.start + self.occ.duration)
    }
}

fn simulate(occurrences: Vec<Occurrence>) -> Vec<Play> {
    let mut plays = Vec::new();
    let mut waiting: Vec<Occurrence> = Vec::new();
    let mut current: Option<Current> = None;
    let mut arrivals = occurrences.into_iter().peekable();
    loop {
        let next_arrival = arrivals.peek().map(|o| o.at);
        let current_end = current.as_ref().map(Current::end);
        match (next_arrival, current_end) {
            (None, None) => break,
            // A play ending at the instant another arrives finishes first.
            (Some(at), Some(end)) if end <= at => {
                finish(&mut current, &mut waiting, &mut plays, end);
            }
            (None, Some(end)) => finish(&mut current, &mut waiting, &mut plays, end),
            (Some(_), _) => {
                let Some(occ) = arrivals.next() else { break };
                arrive(occ, &mut current, &mut waiting, &mut plays);
            }
        }
    }
    plays.sort_by_key(|p| (p.start, Reverse(p.priority), p.schedule_id));
    plays
}

fn arrive(
    occ: Occurrence,
    current: &mut Option<Current>,
    waiting: &mut Vec<Occurrence>,
    plays: &mut Vec<Play>,
) {
    let now = occ.at;
    match current.take() {
        None => *current = Some(Current { occ, start: now }),
        Some(cur) if occ.priority > cur.occ.priority => {
            plays.push(play(
                &cur.occ,
                cur.start,
                now,
                Outcome::Interrupted,
                Some(occ.schedule_id),
            ));
            let mut again = cur.occ;
            again.attempt += 1;
            waiting.push(again);
            *current = Some(Current { occ, start: now });
        }
        Some(cur) => {
            *current = Some(cur);
            waiting.push(occ);
        }
    }
}

fn finish(
    current: &mut Option<Current>,
    waiting: &mut Vec<Occurrence>,
    plays: &mut Vec<Play>,
    now: DateTime<Utc>,
) {
    let played_by = current.as_ref().map(|c| c.occ.schedule_id);
    if let Some(cur) = current.take() {
        let outcome = match cur.stopped() {
            true => Outcome::Interrupted,
            false => Outcome::Complete,
        };
        plays.push(play(&cur.occ, cur.start, now, outcome, None));
    }
    waiting.sort_by_key(Occurrence::rank);
    let mut rest = std::mem::take(waiting).into_iter();
    for occ in rest.by_ref() {
        let stopped = occ.stop.is_some_and(|stop| stop <= now);
        if occ.deadline >= now && !stopped {
            *current = Some(Current { occ, start: now });
            break;
        }
        // Window closed (or the schedule was stopped). An interrupted play already has
        // its record; a never-started one is logged as skipped.
        if occ.attempt == 0 {
            plays.push(play(&occ, occ.at, occ.at, Outcome::Skipped, played_by));
        }
    }
    waiting.extend(rest);
}

fn play(
    occ: &Occurrence,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    outcome: Outcome,
    because_of: Option<i64>,
) -> Play {
    Play {
        schedule_id: occ.schedule_id,
        priority: occ.priority,
        scheduled_at: occ.at,
        start,
        end,
        outcome,
        attempt: occ.attempt,
        because_of,
    }
}
