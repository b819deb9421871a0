//! Schedules: when ([`Rule`]), what ([`Program`]), how urgently ([`Priority`]), and the
//! resolver that turns a speaker's schedules into the plays it makes ([`resolve`]).

mod program;
mod resolver;
mod rule;

#[cfg(test)]
mod tests;

pub use program::{Priority, Program, ProgramItem, ScheduleSpec};
pub use resolver::{Outcome, Play, resolve};
pub use rule::{
    Day, LocalTime, MAX_OCCURRENCES, Rule, RuleError, RuleKind, local_to_utc, parse_cron,
};

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Hours when only emergencies may sound (default 22:00-05:00), in the commune's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct QuietHours {
    pub start: LocalTime,
    pub end: LocalTime,
}

impl Default for QuietHours {
    fn default() -> Self {
        Self {
            start: LocalTime(NaiveTime::MIN + Duration::hours(22)),
            end: LocalTime(NaiveTime::MIN + Duration::hours(5)),
        }
    }
}

impl QuietHours {
    /// Whether a local time of day lies inside (start inclusive, end exclusive; the span
    /// may cross midnight). Equal start and end means no quiet hours.
    pub fn contains(&self, t: NaiveTime) -> bool {
        let (s, e) = (self.start.0, self.end.0);
        if s <= e {
            t >= s && t < e
        } else {
            t >= s || t < e
        }
    }

    /// Whether air time `[start, start + length)` touches the quiet hours.
    pub fn overlaps(&self, tz: Tz, start: DateTime<Utc>, length: Duration) -> bool {
        if self.start == self.end {
            return false;
        }
        let local = start.with_timezone(&tz).naive_local();
        if self.contains(local.time()) {
            return true;
        }
        // Minutes from the start to the next beginning of quiet hours.
        let mut until_quiet = self.start.0 - local.time();
        if until_quiet <= Duration::zero() {
            until_quiet += Duration::days(1);
        }
        length > until_quiet
    }
}

/// How far ahead a schedule is checked against quiet hours when saved.
pub const QUIET_CHECK_HORIZON: Duration = Duration::days(400);

/// The first play of a non-emergency schedule that would sound in quiet hours, looking
/// [`QUIET_CHECK_HORIZON`] ahead of `now` (or from the rule's own start date).
pub fn first_quiet_conflict(
    spec: &ScheduleSpec,
    tz: Tz,
    quiet: QuietHours,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if spec.priority == Priority::Emergency {
        return None;
    }
    let length = Duration::milliseconds(spec.program.duration_ms() as i64);
    let from = match (&spec.rule.kind, spec.rule.from) {
        (RuleKind::Once(at), _) => *at,
        (_, Some(day)) => local_to_utc(tz, day, NaiveTime::MIN).max(now),
        _ => now,
    };
    spec.rule
        .occurrences(tz, from, from + QUIET_CHECK_HORIZON)
        .into_iter()
        .find(|t| quiet.overlaps(tz, *t, length))
}
