use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::*;

const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;
const BERLIN: Tz = chrono_tz::Europe::Berlin;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn t(s: &str) -> LocalTime {
    s.parse().unwrap()
}

fn item(id: i64, secs: u64) -> ProgramItem {
    ProgramItem {
        size: 0,
        content_id: id,
        sha256: None,
        url: None,
        live: None,
        duration_ms: secs * 1000,
        gain_db: 0.0,
        gap_after_ms: 0,
    }
}

fn spec(id: i64, priority: Priority, rule: RuleKind, secs: u64) -> ScheduleSpec {
    ScheduleSpec {
        id,
        title: format!("s{id}"),
        priority,
        rule: Rule::new(rule),
        program: Program {
            items: vec![item(id, secs)],
            repeat: 1,
            pause_ms: 0,
            chime: None,
        },
        volume: 100,
        max_delay_ms: None,
        stopped_at: None,
    }
}

fn once(s: &str) -> RuleKind {
    RuleKind::Once(utc(s))
}

// ---- rules ----

#[test]
fn rule_json_matches_contract() {
    let cases = [
        r#"{"once":"2026-12-01T06:00:00+07:00"}"#,
        r#"{"daily":["06:00","17:30"]}"#,
        r#"{"weekly":{"days":["mon","fri"],"times":["18:00"]},"from":"2026-12-01"}"#,
        r#"{"monthly":{"days":[1,15],"times":["07:00"]},"until":"2027-01-31"}"#,
        r#"{"cron":"0 6 * * *"}"#,
    ];
    for json in cases {
        let rule: Rule = serde_json::from_str(json).unwrap();
        rule.validate().unwrap();
        let back: Rule = serde_json::from_str(&serde_json::to_string(&rule).unwrap()).unwrap();
        assert_eq!(rule, back, "{json}");
    }
    for bad in [
        r#"{"daily":["25:00"]}"#,
        r#"{"hourly":["06:00"]}"#,
        r#"{"weekly":{"days":["funday"],"times":["06:00"]}}"#,
        r#"{"once":"tomorrow"}"#,
    ] {
        assert!(serde_json::from_str::<Rule>(bad).is_err(), "{bad}");
    }
}

#[test]
fn validate_catches_what_serde_cannot() {
    let bad = [
        Rule::new(RuleKind::Daily(vec![])),
        Rule::new(RuleKind::Weekly {
            days: vec![],
            times: vec![t("06:00")],
        }),
        Rule::new(RuleKind::Monthly {
            days: vec![0],
            times: vec![t("06:00")],
        }),
        Rule::new(RuleKind::Monthly {
            days: vec![32],
            times: vec![t("06:00")],
        }),
        Rule::new(RuleKind::Cron("every day".into())),
        Rule {
            kind: RuleKind::Daily(vec![t("06:00")]),
            from: NaiveDate::from_ymd_opt(2026, 2, 1),
            until: NaiveDate::from_ymd_opt(2026, 1, 1),
        },
    ];
    for rule in bad {
        assert!(rule.validate().is_err(), "{rule:?}");
        assert!(
            rule.occurrences(
                HCM,
                utc("2026-01-01T00:00:00Z"),
                utc("2027-01-01T00:00:00Z")
            )
            .is_empty()
        );
    }
}

#[test]
fn daily_is_local_time() {
    let rule = Rule::new(RuleKind::Daily(vec![t("06:00")]));
    let got = rule.occurrences(
        HCM,
        utc("2026-12-01T00:00:00Z"),
        utc("2026-12-03T00:00:00Z"),
    );
    // 06:00 in Hanoi/Saigon (UTC+7) is 23:00 UTC the day before.
    assert_eq!(
        got,
        vec![utc("2026-12-01T23:00:00Z"), utc("2026-12-02T23:00:00Z")]
    );
}

#[test]
fn window_is_half_open() {
    let rule = Rule::new(RuleKind::Daily(vec![t("06:00")]));
    let at = utc("2026-12-01T23:00:00Z");
    assert_eq!(
        rule.occurrences(HCM, at, at + Duration::seconds(1)),
        vec![at]
    );
    assert!(
        rule.occurrences(HCM, at - Duration::hours(1), at)
            .is_empty()
    );
}

#[test]
fn weekly_and_monthly_pick_their_days() {
    let weekly = Rule::new(RuleKind::Weekly {
        days: vec![Day::Mon, Day::Sun],
        times: vec![t("18:00")],
    });
    // 2026-11-30 is a Monday.
    let got = weekly.occurrences(
        HCM,
        utc("2026-11-29T00:00:00Z"),
        utc("2026-12-07T00:00:00Z"),
    );
    let local: Vec<_> = got
        .iter()
        .map(|x| x.with_timezone(&HCM).format("%a %d %H:%M").to_string())
        .collect();
    assert_eq!(local, ["Sun 29 18:00", "Mon 30 18:00", "Sun 06 18:00"]);

    let monthly = Rule::new(RuleKind::Monthly {
        days: vec![31],
        times: vec![t("07:00")],
    });
    let got = monthly.occurrences(
        HCM,
        utc("2026-01-01T00:00:00Z"),
        utc("2026-06-01T00:00:00Z"),
    );
    let months: Vec<_> = got
        .iter()
        .map(|x| x.with_timezone(&HCM).format("%m-%d").to_string())
        .collect();
    assert_eq!(
        months,
        ["01-31", "03-31", "05-31"],
        "months without a 31st are skipped"
    );
}

#[test]
fn from_until_are_inclusive_local_dates() {
    let rule = Rule {
        kind: RuleKind::Daily(vec![t("06:00"), t("23:30")]),
        from: NaiveDate::from_ymd_opt(2026, 12, 2),
        until: NaiveDate::from_ymd_opt(2026, 12, 3),
    };
    let got = rule.occurrences(
        HCM,
        utc("2026-11-01T00:00:00Z"),
        utc("2027-01-01T00:00:00Z"),
    );
    let local: Vec<_> = got
        .iter()
        .map(|x| x.with_timezone(&HCM).format("%d %H:%M").to_string())
        .collect();
    assert_eq!(local, ["02 06:00", "02 23:30", "03 06:00", "03 23:30"]);
}

#[test]
fn three_evenings_running() {
    // The vaccination notice of the mission: three evenings running at 19:00.
    let rule = Rule {
        kind: RuleKind::Daily(vec![t("19:00")]),
        from: NaiveDate::from_ymd_opt(2026, 12, 5),
        until: NaiveDate::from_ymd_opt(2026, 12, 7),
    };
    assert_eq!(
        rule.occurrences(
            HCM,
            utc("2026-12-01T00:00:00Z"),
            utc("2026-12-31T00:00:00Z")
        )
        .len(),
        3
    );
}

#[test]
fn cron_five_and_six_fields_in_local_time() {
    let five = Rule::new(RuleKind::Cron("30 6 * * *".into()));
    let six = Rule::new(RuleKind::Cron("0 30 6 * * *".into()));
    let (from, to) = (utc("2026-12-01T00:00:00Z"), utc("2026-12-03T00:00:00Z"));
    let a = five.occurrences(HCM, from, to);
    assert_eq!(a, six.occurrences(HCM, from, to));
    assert_eq!(
        a,
        vec![utc("2026-12-01T23:30:00Z"), utc("2026-12-02T23:30:00Z")]
    );
    // An instant exactly at `from` is included.
    assert_eq!(five.occurrences(HCM, a[0], to)[0], a[0]);
}

#[test]
fn occurrences_are_capped() {
    let every_second = Rule::new(RuleKind::Cron("* * * * * *".into()));
    let got = every_second.occurrences(
        HCM,
        utc("2026-01-01T00:00:00Z"),
        utc("2027-01-01T00:00:00Z"),
    );
    assert_eq!(got.len(), MAX_OCCURRENCES);
}

#[test]
fn spring_forward_gap_plays_after_the_gap() {
    // Berlin 2026-03-29: 02:00 -> 03:00. A 02:30 daily plays at 03:00 local (01:00 UTC).
    let rule = Rule::new(RuleKind::Daily(vec![t("02:30")]));
    let got = rule.occurrences(
        BERLIN,
        utc("2026-03-28T12:00:00Z"),
        utc("2026-03-30T12:00:00Z"),
    );
    assert_eq!(
        got,
        vec![utc("2026-03-29T01:00:00Z"), utc("2026-03-30T00:30:00Z")]
    );
}

#[test]
fn fall_back_repeat_plays_once() {
    // Berlin 2026-10-25: 03:00 -> 02:00, so 02:30 happens twice; play the first.
    let rule = Rule::new(RuleKind::Daily(vec![t("02:30")]));
    let got = rule.occurrences(
        BERLIN,
        utc("2026-10-24T12:00:00Z"),
        utc("2026-10-25T12:00:00Z"),
    );
    assert_eq!(got, vec![utc("2026-10-25T00:30:00Z")]);
}

#[test]
fn cron_across_dst_keeps_local_time() {
    let rule = Rule::new(RuleKind::Cron("0 6 * * *".into()));
    let got = rule.occurrences(
        BERLIN,
        utc("2026-10-24T00:00:00Z"),
        utc("2026-10-27T00:00:00Z"),
    );
    let local: Vec<_> = got
        .iter()
        .map(|x| x.with_timezone(&BERLIN).format("%H:%M").to_string())
        .collect();
    assert_eq!(local, ["06:00", "06:00", "06:00"]);
}

// ---- programs ----

#[test]
fn program_duration_counts_chime_repeats_pauses_not_last_gap() {
    let mut p = Program {
        items: vec![
            ProgramItem {
                gap_after_ms: 2000,
                ..item(1, 10)
            },
            ProgramItem {
                gap_after_ms: 5000,
                ..item(2, 20)
            },
        ],
        repeat: 3,
        pause_ms: 60_000,
        chime: Some(ProgramItem {
            gap_after_ms: 1000,
            ..item(9, 4)
        }),
    };
    // chime 4+1, 3 x (10+2+20+5), 2 pauses of 60, minus the final 5 s gap.
    assert_eq!(p.duration_ms(), 5000 + 3 * 37_000 + 120_000 - 5000);
    p.repeat = 0; // treated as 1
    assert_eq!(p.duration_ms(), 5000 + 37_000 - 5000);
}

// ---- resolver ----

#[test]
fn lone_play_is_complete_on_time() {
    let s = spec(1, Priority::Normal, once("2026-12-01T06:00:00Z"), 60);
    let plays = resolve(
        &[s],
        HCM,
        utc("2026-12-01T00:00:00Z"),
        utc("2026-12-02T00:00:00Z"),
    );
    assert_eq!(plays.len(), 1);
    assert_eq!(plays[0].outcome, Outcome::Complete);
    assert_eq!(plays[0].start, utc("2026-12-01T06:00:00Z"));
    assert_eq!(plays[0].end, utc("2026-12-01T06:01:00Z"));
}

/// Every play on 1 December 2026 (UTC).
fn first_of_december(specs: &[ScheduleSpec]) -> Vec<Play> {
    resolve(
        specs,
        HCM,
        utc("2026-12-01T00:00:00Z"),
        utc("2026-12-02T00:00:00Z"),
    )
}

#[test]
fn emergency_interrupts_and_the_news_restarts() {
    let news = spec(1, Priority::Normal, once("2026-12-01T06:00:00Z"), 600);
    let storm = spec(2, Priority::Emergency, once("2026-12-01T06:05:00Z"), 120);
    let plays = first_of_december(&[news, storm]);
    let summary: Vec<_> = plays
        .iter()
        .map(|p| {
            (
                p.schedule_id,
                p.outcome,
                p.start.format("%H:%M").to_string(),
                p.attempt,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, Outcome::Interrupted, "06:00".into(), 0),
            (2, Outcome::Complete, "06:05".into(), 0),
            (1, Outcome::Complete, "06:07".into(), 1),
        ]
    );
    assert_eq!(plays[0].end, utc("2026-12-01T06:05:00Z"));
    assert_eq!(plays[0].because_of, Some(2));
}

#[test]
fn a_stopped_emergency_ends_there_and_the_news_restarts_at_once() {
    let news = spec(1, Priority::Normal, once("2026-12-01T06:00:00Z"), 600);
    let mut storm = spec(2, Priority::Emergency, once("2026-12-01T06:05:00Z"), 120);
    storm.stopped_at = Some(utc("2026-12-01T06:05:30Z"));
    let plays = first_of_december(&[news, storm]);
    let summary: Vec<_> = plays
        .iter()
        .map(|p| {
            (
                p.schedule_id,
                p.outcome,
                p.start.format("%H:%M:%S").to_string(),
                p.end.format("%H:%M:%S").to_string(),
                p.because_of,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                1,
                Outcome::Interrupted,
                "06:00:00".into(),
                "06:05:00".into(),
                Some(2)
            ),
            (
                2,
                Outcome::Interrupted,
                "06:05:00".into(),
                "06:05:30".into(),
                None
            ),
            (
                1,
                Outcome::Complete,
                "06:05:30".into(),
                "06:15:30".into(),
                None
            ),
        ]
    );
}

#[test]
fn a_stopped_schedule_starts_nothing_afterwards() {
    let mut daily = spec(1, Priority::Normal, RuleKind::Daily(vec![t("06:00")]), 60);
    daily.stopped_at = Some(utc("2026-12-01T12:00:00Z"));
    let plays = resolve(
        &[daily.clone()],
        HCM,
        utc("2026-11-30T00:00:00Z"),
        utc("2026-12-05T00:00:00Z"),
    );
    // 06:00 in Ho Chi Minh City is 23:00 UTC the day before.
    let starts: Vec<_> = plays.iter().map(|p| p.start.to_rfc3339()).collect();
    assert_eq!(starts, ["2026-11-30T23:00:00+00:00"]);
    // Stopped before it fired: nothing; and one stopped long after plays as before.
    daily.stopped_at = Some(utc("2026-11-29T00:00:00Z"));
    assert!(
        resolve(
            &[daily],
            HCM,
            utc("2026-11-30T00:00:00Z"),
            utc("2026-12-05T00:00:00Z")
        )
        .is_empty()
    );
}

#[test]
fn equal_priority_waits_then_plays() {
    let a = spec(1, Priority::Normal, once("2026-12-01T06:00:00Z"), 600);
    let b = spec(2, Priority::Normal, once("2026-12-01T06:05:00Z"), 60);
    let plays = resolve(
        &[a, b],
        HCM,
        utc("2026-12-01T00:00:00Z"),
        utc("2026-12-02T00:00:00Z"),
    );
    assert_eq!(plays[1].schedule_id, 2);
    assert_eq!(plays[1].start, utc("2026-12-01T06:10:00Z"));
    assert_eq!(plays[1].delay(), Duration::minutes(5));
    assert!(plays.iter().all(|p| p.outcome == Outcome::Complete));
}

#[test]
fn equal_priority_skipped_when_window_closes() {
    let a = spec(1, Priority::Normal, once("2026-12-01T06:00:00Z"), 3600);
    let mut b = spec(2, Priority::Normal, once("2026-12-01T06:05:00Z"), 60);
    b.max_delay_ms = Some(10 * 60 * 1000);
    let plays = resolve(
        &[a, b],
        HCM,
        utc("2026-12-01T00:00:00Z"),
        utc("2026-12-02T00:00:00Z"),
    );
    let skipped: Vec<_> = plays
        .iter()
        .filter(|p| p.outcome == Outcome::Skipped)
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].schedule_id, 2);
    assert_eq!(skipped[0].because_of, Some(1));
}

#[test]
fn lower_priority_does_not_interrupt() {
    let pri = spec(1, Priority::Priority, once("2026-12-01T06:00:00Z"), 600);
    let bg = spec(2, Priority::Background, once("2026-12-01T06:01:00Z"), 600);
    let plays = resolve(
        &[pri, bg],
        HCM,
        utc("2026-12-01T00:00:00Z"),
        utc("2026-12-02T00:00:00Z"),
    );
    assert_eq!(plays[0].outcome, Outcome::Complete);
    assert_eq!(plays[1].start, utc("2026-12-01T06:10:00Z"));
}

#[test]
fn same_instant_higher_priority_first() {
    let n = spec(1, Priority::Normal, once("2026-12-01T06:00:00Z"), 60);
    let p = spec(2, Priority::Priority, once("2026-12-01T06:00:00Z"), 60);
    let plays = resolve(
        &[n, p],
        HCM,
        utc("2026-12-01T00:00:00Z"),
        utc("2026-12-02T00:00:00Z"),
    );
    assert_eq!(
        (plays[0].schedule_id, plays[0].outcome),
        (2, Outcome::Complete)
    );
    assert_eq!(
        (plays[1].schedule_id, plays[1].start),
        (1, utc("2026-12-01T06:01:00Z"))
    );
}

#[test]
fn back_to_back_plays_touch_without_conflict() {
    let a = spec(1, Priority::Normal, once("2026-12-01T06:00:00Z"), 60);
    let b = spec(2, Priority::Normal, once("2026-12-01T06:01:00Z"), 60);
    let plays = resolve(
        &[a, b],
        HCM,
        utc("2026-12-01T00:00:00Z"),
        utc("2026-12-02T00:00:00Z"),
    );
    assert_eq!(plays[1].start, utc("2026-12-01T06:01:00Z"));
    assert_eq!(plays[1].delay(), Duration::zero());
}

#[test]
fn play_started_before_window_is_reported() {
    let a = spec(1, Priority::Normal, once("2026-12-01T05:50:00Z"), 1200);
    let plays = resolve(
        &[a],
        HCM,
        utc("2026-12-01T06:00:00Z"),
        utc("2026-12-01T07:00:00Z"),
    );
    assert_eq!(plays.len(), 1);
    assert_eq!(plays[0].start, utc("2026-12-01T05:50:00Z"));
}

#[test]
fn empty_program_and_empty_window_yield_nothing() {
    let mut a = spec(1, Priority::Normal, once("2026-12-01T06:00:00Z"), 60);
    a.program.items.clear();
    assert!(
        resolve(
            &[a.clone()],
            HCM,
            utc("2026-12-01T00:00:00Z"),
            utc("2026-12-02T00:00:00Z")
        )
        .is_empty()
    );
    a = spec(1, Priority::Normal, once("2026-12-01T06:00:00Z"), 60);
    assert!(
        resolve(
            &[a],
            HCM,
            utc("2026-12-02T00:00:00Z"),
            utc("2026-12-01T00:00:00Z")
        )
        .is_empty()
    );
}

// ---- quiet hours ----

#[test]
fn quiet_hours_wrap_midnight() {
    let q = QuietHours::default();
    let at = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap();
    assert!(q.contains(at(22, 0)));
    assert!(q.contains(at(2, 0)));
    assert!(q.contains(at(4, 59)));
    assert!(!q.contains(at(5, 0)));
    assert!(!q.contains(at(21, 59)));
}

#[test]
fn quiet_conflicts_found_at_save() {
    let now = utc("2026-11-24T00:00:00Z");
    let q = QuietHours::default();
    let late = spec(1, Priority::Normal, RuleKind::Daily(vec![t("22:30")]), 60);
    assert!(first_quiet_conflict(&late, HCM, q, now).is_some());
    // Starts at 21:55 but runs 10 minutes: into quiet hours.
    let long = spec(2, Priority::Normal, RuleKind::Daily(vec![t("21:55")]), 600);
    assert!(first_quiet_conflict(&long, HCM, q, now).is_some());
    let fine = spec(3, Priority::Normal, RuleKind::Daily(vec![t("06:00")]), 600);
    assert_eq!(first_quiet_conflict(&fine, HCM, q, now), None);
    let storm = spec(
        4,
        Priority::Emergency,
        RuleKind::Daily(vec![t("23:00")]),
        60,
    );
    assert_eq!(first_quiet_conflict(&storm, HCM, q, now), None);
    // 16:00 UTC is 23:00 in Vietnam.
    let once_late = spec(5, Priority::Priority, once("2026-12-01T16:00:00Z"), 60);
    assert!(first_quiet_conflict(&once_late, HCM, q, now).is_some());
}

// ---- properties ----

fn arb_priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL.to_vec())
}

prop_compose! {
    fn arb_spec(id: i64)(
        priority in arb_priority(),
        minute in 0i64..(3 * 24 * 60),
        secs in 1u64..4000,
        daily in any::<bool>(),
        max_delay_min in prop::option::of(0u64..180),
    ) -> ScheduleSpec {
        let base = utc("2026-12-01T00:00:00Z");
        let kind = if daily {
            let at = base + Duration::minutes(minute);
            RuleKind::Daily(vec![LocalTime(at.with_timezone(&HCM).time())])
        } else {
            RuleKind::Once(base + Duration::minutes(minute))
        };
        let mut s = spec(id, priority, kind, secs);
        s.max_delay_ms = max_delay_min.map(|m| m * 60_000);
        s
    }
}

fn arb_specs() -> impl Strategy<Value = Vec<ScheduleSpec>> {
    (1usize..12).prop_flat_map(|n| (0..n).map(|i| arb_spec(i as i64 + 1)).collect::<Vec<_>>())
}

fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    (utc("2026-12-01T00:00:00Z"), utc("2026-12-04T00:00:00Z"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_two_plays_overlap(specs in arb_specs()) {
        let (from, to) = window();
        let plays = resolve(&specs, HCM, from, to);
        let mut aired: Vec<_> = plays.iter().filter(|p| p.outcome != Outcome::Skipped).collect();
        aired.sort_by_key(|p| p.start);
        for pair in aired.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start, "{:?} overlaps {:?}", pair[0], pair[1]);
        }
    }

    #[test]
    fn only_higher_priorities_interrupt(specs in arb_specs()) {
        let (from, to) = window();
        let plays = resolve(&specs, HCM, from, to);
        for p in plays.iter().filter(|p| p.outcome == Outcome::Interrupted) {
            let by = plays.iter().find(|q| Some(q.schedule_id) == p.because_of && q.start == p.end);
            prop_assert!(by.is_some_and(|q| q.priority > p.priority), "{p:?}");
        }
    }

    #[test]
    fn plays_start_inside_their_window(specs in arb_specs()) {
        let (from, to) = window();
        for p in resolve(&specs, HCM, from, to) {
            let s = specs.iter().find(|s| s.id == p.schedule_id).unwrap();
            prop_assert!(p.start >= p.scheduled_at);
            prop_assert!(p.delay() <= Duration::milliseconds(s.max_delay_ms() as i64), "{p:?}");
            if p.outcome == Outcome::Complete {
                prop_assert_eq!(p.end - p.start, Duration::milliseconds(s.program.duration_ms() as i64));
            }
        }
    }

    #[test]
    fn every_occurrence_is_accounted_for(specs in arb_specs()) {
        // Resolve a day beyond: a play that waits may start after the window.
        let (from, to) = window();
        let plays = resolve(&specs, HCM, from, to + Duration::days(1));
        for s in &specs {
            for at in s.rule.occurrences(HCM, from, to) {
                prop_assert!(plays.iter().any(|p| p.schedule_id == s.id && p.scheduled_at == at),
                    "schedule {} at {} vanished", s.id, at);
            }
        }
    }

    #[test]
    fn emergencies_start_on_time_unless_another_emergency_plays(specs in arb_specs()) {
        let (from, to) = window();
        let plays = resolve(&specs, HCM, from, to);
        // Plays scheduled before the window may have waited behind one that ended before it.
        for p in plays.iter().filter(|p| p.priority == Priority::Emergency && p.attempt == 0 && p.scheduled_at >= from) {
            if p.delay() > Duration::zero() {
                let blocker = plays.iter().any(|q| q.priority == Priority::Emergency
                    && q.outcome != Outcome::Skipped && q.start <= p.scheduled_at && q.end > p.scheduled_at);
                prop_assert!(blocker, "emergency {p:?} delayed without another emergency");
            }
        }
    }

    #[test]
    fn input_order_does_not_matter(specs in arb_specs()) {
        let (from, to) = window();
        let mut reversed = specs.clone();
        reversed.reverse();
        prop_assert_eq!(resolve(&specs, HCM, from, to), resolve(&reversed, HCM, from, to));
    }

    #[test]
    fn sub_windows_agree_with_the_whole(specs in arb_specs(), cut in 1i64..(3 * 24)) {
        // The node resolves a day at a time; the CMS a week: the same plays either way.
        let (from, to) = window();
        let mid = from + Duration::hours(cut);
        let whole = resolve(&specs, HCM, from, to);
        let left = resolve(&specs, HCM, from, mid);
        let key = |p: &Play| (p.schedule_id, p.scheduled_at, p.start, p.attempt);
        for p in whole.iter().filter(|p| p.start < mid && p.outcome != Outcome::Skipped) {
            prop_assert!(left.iter().any(|q| key(q) == key(p)), "{p:?} missing from the first part");
        }
    }
}

#[test]
fn day_names_match_the_wire() {
    for d in Day::ALL {
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            format!("\"{}\"", d.as_str())
        );
    }
}
