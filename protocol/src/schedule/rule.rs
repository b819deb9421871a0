//! When a schedule fires: the rule kinds of the schedules API (docs/INTERFACES.md) and their expansion into instants.
//!
//! Rules are written in the commune's local time ("06:00 every day") and expanded into UTC
//! instants here, so daylight-saving edges are handled in one place: a local time that
//! does not exist (spring forward) plays at the first instant after the gap; one that
//! exists twice (fall back) plays once, at the first of the two.

use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many instants one expansion may produce: a guard against rules such as
/// `* * * * * *` over a long window, which would otherwise eat a request's memory.
pub const MAX_OCCURRENCES: usize = 20_000;

/// A schedule's timing: one of the kinds below, optionally bounded by local dates
/// (`from` and `until` both inclusive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Rule {
    #[serde(flatten)]
    pub kind: RuleKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// One instant (RFC 3339, any offset).
    Once(DateTime<Utc>),
    /// Every day at these local times.
    Daily(#[cfg_attr(feature = "schema", schemars(length(min = 1)))] Vec<LocalTime>),
    Weekly {
        #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
        days: Vec<Day>,
        #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
        times: Vec<LocalTime>,
    },
    /// On these days of the month (1-31; a day a month lacks is skipped that month).
    Monthly {
        #[cfg_attr(
            feature = "schema",
            schemars(length(min = 1), inner(range(min = 1, max = 31)))
        )]
        days: Vec<u8>,
        #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
        times: Vec<LocalTime>,
    },
    /// A cron expression in local time: 5 fields (minute first) or 6-7 (seconds first,
    /// optional year), as the `cron` crate reads them. For the API; the UI never asks
    /// staff to type one.
    Cron(#[cfg_attr(feature = "schema", schemars(length(min = 9)))] String),
}

/// A wall-clock time of day, written `HH:MM` (or `HH:MM:SS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(pub NaiveTime);

impl LocalTime {
    pub fn hm(hour: u32, minute: u32) -> Option<Self> {
        NaiveTime::from_hms_opt(hour, minute, 0).map(Self)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for LocalTime {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LocalTime".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
        })
    }
}

impl FromStr for LocalTime {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, RuleError> {
        NaiveTime::parse_from_str(s, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
            .map(Self)
            .map_err(|_| RuleError::BadTime(s.to_owned()))
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.format("%H:%M").to_string())
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A day of the week, written `mon` ... `sun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];
    /// The wire name: `mon` ... `sun`.
    pub fn as_str(self) -> &'static str {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][self as usize]
    }

    fn of(date: NaiveDate) -> Day {
        Day::ALL[date.weekday().num_days_from_monday() as usize]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("bad time of day {0:?} (expected HH:MM)")]
    BadTime(String),
    #[error("the rule lists no times")]
    NoTimes,
    #[error("the rule lists no days")]
    NoDays,
    #[error("day of month {0} is not between 1 and 31")]
    BadMonthDay(u8),
    #[error("bad cron expression {expr:?}: {reason}")]
    BadCron { expr: String, reason: String },
    #[error("'from' ({from}) is after 'until' ({until})")]
    EmptyRange { from: NaiveDate, until: NaiveDate },
}

impl Rule {
    pub fn new(kind: RuleKind) -> Self {
        Self {
            kind,
            from: None,
            until: None,
        }
    }

    /// Checks what serde cannot: non-empty lists, day numbers, cron syntax, date range.
    pub fn validate(&self) -> Result<(), RuleError> {
        if let (Some(from), Some(until)) = (self.from, self.until) {
            if from > until {
                return Err(RuleError::EmptyRange { from, until });
            }
        }
        match &self.kind {
            RuleKind::Once(_) => Ok(()),
            RuleKind::Daily(times) => non_empty(times, RuleError::NoTimes),
            RuleKind::Weekly { days, times } => {
                non_empty(days, RuleError::NoDays)?;
                non_empty(times, RuleError::NoTimes)
            }
            RuleKind::Monthly { days, times } => {
                non_empty(days, RuleError::NoDays)?;
                non_empty(times, RuleError::NoTimes)?;
                match days.iter().find(|d| !(1..=31).contains(*d)) {
                    Some(bad) => Err(RuleError::BadMonthDay(*bad)),
                    None => Ok(()),
                }
            }
            RuleKind::Cron(expr) => parse_cron(expr).map(|_| ()),
        }
    }

    /// Every instant in `[from, to)` at which the rule fires, sorted, at most
    /// [`MAX_OCCURRENCES`]. An invalid rule fires never.
    pub fn occurrences(
        &self,
        tz: Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        if from >= to || self.validate().is_err() {
            return Vec::new();
        }
        let mut out = match &self.kind {
            RuleKind::Once(at) => vec![*at],
            RuleKind::Daily(times) => self.by_date(tz, from, to, times, |_| true),
            RuleKind::Weekly { days, times } => {
                self.by_date(tz, from, to, times, |d| days.contains(&Day::of(d)))
            }
            RuleKind::Monthly { days, times } => {
                self.by_date(tz, from, to, times, |d| days.contains(&(d.day() as u8)))
            }
            RuleKind::Cron(expr) => self.by_cron(tz, expr, from, to),
        };
        out.retain(|t| *t >= from && *t < to && self.in_date_range(tz, *t));
        out.sort();
        out.dedup();
        out.truncate(MAX_OCCURRENCES);
        out
    }

    fn in_date_range(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        let day = t.with_timezone(&tz).date_naive();
        self.from.is_none_or(|f| day >= f) && self.until.is_none_or(|u| day <= u)
    }

    fn by_date(
        &self,
        tz: Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        times: &[LocalTime],
        day_matches: impl Fn(NaiveDate) -> bool,
    ) -> Vec<DateTime<Utc>> {
        // One day of margin each side: a local date maps to instants up to ±14 h away.
        let mut day = from.with_timezone(&tz).date_naive() - Duration::days(1);
        let last = to.with_timezone(&tz).date_naive() + Duration::days(1);
        let mut out = Vec::new();
        while day <= last && out.len() < MAX_OCCURRENCES {
            if day_matches(day) {
                out.extend(times.iter().map(|t| local_to_utc(tz, day, t.0)));
            }
            day += Duration::days(1);
        }
        out
    }

    fn by_cron(
        &self,
        tz: Tz,
        expr: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let Ok(schedule) = parse_cron(expr) else {
            return Vec::new();
        };
        // `after` is exclusive: start one second early so an instant at `from` counts.
        let start = (from - Duration::seconds(1)).with_timezone(&tz);
        schedule
            .after(&start)
            .map(|t| t.with_timezone(&Utc))
            .take_while(|t| *t < to)
            .take(MAX_OCCURRENCES)
            .collect()
    }
}

fn non_empty<T>(list: &[T], err: RuleError) -> Result<(), RuleError> {
    if list.is_empty() { Err(err) } else { Ok(()) }
}

/// Parses a cron expression; 5-field (classic, minute first) gets a `0` seconds field.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, RuleError> {
    let fields = expr.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {expr}")
    } else {
        expr.to_owned()
    };
    cron::Schedule::from_str(&full).map_err(|e| RuleError::BadCron {
        expr: expr.to_owned(),
        reason: e.to_string(),
    })
}

/// The instant a local wall-clock time names. Spring-forward gaps move to the first
/// instant after the gap; fall-back repeats take the earlier instant.
pub fn local_to_utc(tz: Tz, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let local = day.and_time(time);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // Walk forward a minute at a time (gaps are at most a few hours) to the first
            // local time that exists: the instant the clocks jumped.
            let mut probe = local;
            for _ in 0..(24 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            // No zone has a day-long gap; fall back to reading the time as UTC.
            Utc.from_utc_datetime(&local)
        }
    }
}
