//! Schedules (list and editor built from plain choices: staff never type cron) and the
//! week view of what plays in each village.

use chrono::{Datelike, Duration, Utc};
use maud::{Markup, html};
use protocol::schedule::{Outcome, Priority, RuleKind};
use warp::reply::Response;

use super::{Page, badge};
use crate::auth::Perm;
use crate::error::Result;
use crate::http::Req;
use crate::model::{Content, ContentStatus, Schedule, Village, VillageGroup};
use crate::store::ContentFilter;
use crate::{Cms, PreviewTarget};

fn priority_name<'a>(page: &Page<'_>, p: Priority) -> &'a str {
    let (vi, en) = match p {
        Priority::Background => ("Nền", "Background"),
        Priority::Normal => ("Thông thường", "Normal"),
        Priority::Priority => ("Ưu tiên", "Priority"),
        Priority::Emergency => ("Khẩn cấp", "Emergency"),
    };
    page.lang.t(vi, en)
}

fn priority_label(page: &Page<'_>, p: Priority) -> Markup {
    badge(p.as_str(), priority_name(page, p))
}

const DAYS: [(&str, &str, &str); 7] = [
    ("mon", "T2", "Mon"),
    ("tue", "T3", "Tue"),
    ("wed", "T4", "Wed"),
    ("thu", "T5", "Thu"),
    ("fri", "T6", "Fri"),
    ("sat", "T7", "Sat"),
    ("sun", "CN", "Sun"),
];

fn rule_text(page: &Page<'_>, s: &Schedule) -> String {
    let times = |t: &[protocol::schedule::LocalTime]| {
        t.iter()
            .map(|t| t.0.format("%H:%M").to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = match &s.rule.kind {
        RuleKind::Once(at) => format!("{} {}", page.t("Một lần lúc", "Once at"), page.time(*at)),
        RuleKind::Daily(t) => format!("{} {}", page.t("Hằng ngày lúc", "Daily at"), times(t)),
        RuleKind::Weekly { days, times: t } => {
            let d: Vec<&str> = days
                .iter()
                .map(|d| {
                    DAYS.iter()
                        .find(|x| x.0 == d.as_str())
                        .map_or("?", |x| page.t(x.1, x.2))
                })
                .collect();
            format!(
                "{} ({}) {}",
                page.t("Hằng tuần", "Weekly"),
                d.join(", "),
                times(t)
            )
        }
        RuleKind::Monthly { days, times: t } => {
            let d: Vec<String> = days.iter().map(u8::to_string).collect();
            format!(
                "{} {} {}",
                page.t("Hằng tháng ngày", "Monthly on day"),
                d.join(", "),
                times(t)
            )
        }
        RuleKind::Cron(expr) => format!("cron {expr}"),
    };
    let range = match (s.rule.from, s.rule.until) {
        (None, None) => String::new(),
        (f, u) => format!(
            " ({} {} {} {})",
            page.t("từ", "from"),
            f.map(|d| d.format("%d/%m/%Y").to_string())
                .unwrap_or_else(|| "…".into()),
            page.t("đến", "until"),
            u.map(|d| d.format("%d/%m/%Y").to_string())
                .unwrap_or_else(|| "…".into())
        ),
    };
    text + &range
}

/// Where a schedule plays, as names.
fn places_text(
    page: &Page<'_>,
    s: &Schedule,
    villages: &[Village],
    groups: &[VillageGroup],
) -> String {
    let villages = s
        .targets
        .villages
        .iter()
        .filter_map(|v| villages.iter().find(|x| x.id == *v).map(|x| x.name.clone()));
    let groups = s.targets.groups.iter().filter_map(|g| {
        groups
            .iter()
            .find(|x| x.id == *g)
            .map(|x| format!("{} {}", page.t("nhóm", "group"), x.name))
    });
    villages.chain(groups).collect::<Vec<_>>().join(", ")
}

/// What a schedule plays, as titles (chime first).
fn program_text(s: &Schedule, items: &[Content]) -> String {
    let title = |id: &i64| items.iter().find(|c| c.id == *id).map(|c| c.title.clone());
    let mut out: Vec<String> = s
        .program
        .chime_id
        .iter()
        .filter_map(title)
        .map(|t| format!("♪ {t}"))
        .collect();
    out.extend(s.program.content_ids.iter().filter_map(title));
    let mut text = out.join(" → ");
    if s.program.repeat > 1 {
        text += &format!(" ×{}", s.program.repeat);
    }
    text
}

fn schedule_table(
    page: &Page<'_>,
    list: &[Schedule],
    items: &[Content],
    villages: &[Village],
    groups: &[VillageGroup],
) -> Markup {
    let can_edit = page.p.can(Perm::Schedule);
    html! {
        @if list.is_empty() {
            p.muted { (page.t("Chưa có lịch phát.", "No schedules yet.")) }
        } @else {
            div.table-wrap { table #schedule-table {
                thead { tr {
                    th { (page.t("Tên lịch", "Title")) } th { (page.t("Phát gì", "Plays")) }
                    th { (page.t("Khi nào", "When")) } th { (page.t("Mức ưu tiên", "Priority")) }
                    th { (page.t("Ở đâu", "Where")) } @if can_edit { th {} }
                } }
                tbody { @for s in list { tr {
                td { strong { (s.title) } }
                td { (program_text(s, items)) }
                td { (rule_text(page, s)) }
                td { (priority_label(page, s.priority)) }
                td { (places_text(page, s, villages, groups)) }
                @if can_edit { td {
                    a.button.secondary href={ "/ui/schedules?edit=" (s.id) "#schedule-form" } { (page.t("Sửa", "Edit")) }
                    " "
                    button.secondary type="button" data-delete={ "/api/v1/schedules/" (s.id) }
                        data-confirm=(format!("{} “{}”?", page.t("Xoá lịch", "Delete the schedule"), s.title))
                        data-ok=(page.t("Đã xoá lịch.", "Schedule deleted.")) {
                        (page.t("Xoá", "Delete"))
                    }
                } }
            } } }
            } }
        }
    }
}

pub async fn schedules(cms: &Cms, page: &Page<'_>, req: &Req) -> Result<Response> {
    let p = page.p;
    let list = cms.schedules(p).await?;
    let villages = cms.villages(p, None).await?;
    let groups = cms.groups(p).await?;
    let approved = cms
        .list_content(
            p,
            None,
            ContentFilter {
                status: Some(ContentStatus::Approved),
                limit: 500,
                ..ContentFilter::default()
            },
        )
        .await?;
    let editing = req
        .q("edit")
        .and_then(|v| v.parse::<i64>().ok())
        .and_then(|id| list.iter().find(|s| s.id == id));
    let body = html! {
        (schedule_table(page, &list, &approved, &villages, &groups))
        @if p.can(Perm::Schedule) { (editor(page, &approved, &villages, &groups, editing)) }
    };
    Ok(page.render(page.t("Lịch phát", "Schedules"), body))
}

/// A checkbox carrying an id in a list of ids.
fn check(name: &str, id: i64, label: &str, checked: bool) -> Markup {
    html! { label { input type="checkbox" name=(name) value=(id) data-type="ints" checked[checked]; " " (label) } }
}

/// A labelled number input inside a row of them.
fn number(
    id: &str,
    name: &str,
    label: &str,
    value: u64,
    min: u32,
    max: u32,
    optional: bool,
) -> Markup {
    html! { span {
        label for=(id) { (label) }
        input type="number" id=(id) name=(name) value=(value) min=(min) max=(max) data-optional[optional];
    } }
}

/// What plays, and where.
fn what_and_where(
    page: &Page<'_>,
    f: &Prefill,
    approved: &[Content],
    villages: &[Village],
    groups: &[VillageGroup],
) -> Markup {
    html! {
        label { (page.t("Phát nội dung (đã duyệt)", "Play (approved items)")) }
        div.checks { @for c in approved { (check("content_ids", c.id, &c.title, f.content.contains(&c.id))) } }
        label { (page.t("Tại", "Where")) }
        div.checks {
            @for v in villages { (check("targets.villages", v.id, &v.name, f.villages.contains(&v.id))) }
            @for g in groups {
                (check("targets.groups", g.id, &format!("{} {}", page.t("Nhóm", "Group"), g.name), f.groups.contains(&g.id)))
            }
        }
    }
}

/// A date as Vietnamese write it (dd/mm/yyyy), whatever the browser's locale; the
/// script sends it as ISO.
fn date_field(id: &str, name: &str, value: &str, optional: bool) -> Markup {
    html! {
        input type="text" id=(id) name=(name) value=(value) placeholder="dd/mm/yyyy" inputmode="numeric"
            pattern=r"\d{1,2}/\d{1,2}/\d{4}" data-date data-optional[optional];
    }
}

/// When: the rule kind and the fields each kind shows (the script hides the others).
fn when(page: &Page<'_>, f: &Prefill) -> Markup {
    let kinds = [
        ("daily", page.t("Hằng ngày", "Every day")),
        ("weekly", page.t("Hằng tuần", "Every week")),
        ("monthly", page.t("Hằng tháng", "Every month")),
        ("once", page.t("Một lần", "Once")),
    ];
    html! {
        label for="s-kind" { (page.t("Khi nào", "When")) }
        select id="s-kind" name="rule_kind" {
            @for (k, label) in kinds { option value=(k) selected[k == f.kind] { (label) } }
        }
        div.row data-rule="once" {
            span {
                label for="s-once-date" { (page.t("Ngày", "Date")) }
                (date_field("s-once-date", "once_date", &f.once_date, false))
            }
            span {
                label for="s-once-time" { (page.t("Giờ", "Time")) }
                input type="text" id="s-once-time" name="once_time" value=(f.once_time) placeholder="6h30"
                    inputmode="numeric" data-clock;
            }
        }
        div data-rule="daily weekly monthly" {
            label for="s-times" { (page.t("Giờ phát (cách nhau bằng dấu phẩy)", "Times (comma separated)")) }
            input type="text" id="s-times" name="times" value=(f.times) placeholder="6h30, 17:30";
            // A picker for whoever prefers one: each time picked is added to the list.
            div.row {
                input type="time" id="s-time-pick" aria-label=(page.t("Chọn giờ", "Pick a time"));
                button.secondary type="button" data-add-time="s-times" { "+ " (page.t("Thêm giờ", "Add time")) }
            }
        }
        div data-rule="weekly" {
            label { (page.t("Vào các ngày", "On days")) }
            div.checks { @for (v, vi, en) in DAYS {
                label { input type="checkbox" name="day" value=(v) checked[f.days.iter().any(|d| d == v)]; " " (page.t(vi, en)) }
            } }
            p.row {
                button.secondary type="button" data-days="mon tue wed thu fri" { (page.t("T2–T6", "Mon–Fri")) }
                button.secondary type="button" data-days="mon tue wed thu fri sat sun" { (page.t("Cả tuần", "Every day")) }
                button.secondary type="button" data-days="sat sun" { (page.t("T7, CN", "Weekend")) }
            }
        }
        div data-rule="monthly" {
            label for="s-mdays" { (page.t("Ngày trong tháng", "Days of the month")) }
            input type="text" id="s-mdays" name="month_days" value=(f.month_days) placeholder="1, 15";
        }
        div.row data-rule="daily weekly monthly" {
            span {
                label for="s-from" { (page.t("Từ ngày", "From")) }
                (date_field("s-from", "from", &f.from, true))
            }
            span {
                label for="s-until" { (page.t("Đến ngày", "Until")) }
                (date_field("s-until", "until", &f.until, true))
            }
        }
    }
}

/// How: priority, repeats, pauses, volume, chime.
fn how(page: &Page<'_>, f: &Prefill, approved: &[Content]) -> Markup {
    // Chimes: the chime category, and whatever the schedule being edited already uses.
    let chimes: Vec<&Content> = approved
        .iter()
        .filter(|c| c.category == "chime" || f.chime == Some(c.id))
        .collect();
    let priorities = Priority::ALL
        .iter()
        .filter(|p| **p != Priority::Emergency || page.p.can(Perm::Approve));
    html! {
        div.row {
            span {
                label for="s-priority" { (page.t("Mức ưu tiên", "Priority")) }
                select id="s-priority" name="priority" {
                    @for p in priorities { option value=(p.as_str()) selected[*p == f.priority] { (priority_name(page, *p)) } }
                }
            }
            (number("s-repeat", "repeat", page.t("Số lần lặp", "Repeat"), u64::from(f.repeat), 1, 20, false))
            (number("s-pause", "pause_s", page.t("Nghỉ giữa các lần lặp (giây)", "Pause between repeats (s)"), f.pause_s, 0, 3600, true))
            (number("s-gap", "gap_s", page.t("Nghỉ giữa các mục (giây)", "Gap between items (s)"), f.gap_s, 0, 600, true))
            (number("s-volume", "volume", page.t("Âm lượng", "Volume"), u64::from(f.volume), 0, 100, false))
        }
        label for="s-chime" { (page.t("Nhạc hiệu trước khi phát", "Chime before")) }
        select id="s-chime" name="chime_id" data-optional {
            option value="" { (page.t("Không có", "None")) }
            @for c in &chimes { option value=(c.id) selected[f.chime == Some(c.id)] { (c.title) } }
        }
        @if chimes.is_empty() {
            p.muted { (page.t(
                "Chưa có nhạc hiệu đã duyệt: tải lên một bản với thể loại “Nhạc hiệu”.",
                "No approved chime yet: upload one in the “Chime” category.",
            )) }
        }
    }
}

fn editor(
    page: &Page<'_>,
    approved: &[Content],
    villages: &[Village],
    groups: &[VillageGroup],
    editing: Option<&Schedule>,
) -> Markup {
    let f = Prefill::of(page, editing);
    let (heading, action, method) = match editing {
        Some(s) => (
            page.t("Sửa lịch phát", "Edit schedule"),
            format!("/api/v1/schedules/{}", s.id),
            "PUT",
        ),
        None => (
            page.t("Lịch phát mới", "New schedule"),
            "/api/v1/schedules".to_owned(),
            "POST",
        ),
    };
    let offset = Utc::now().with_timezone(&page.tz).format("%:z").to_string();
    html! {
        div.card {
            h2 { (heading) }
            form #schedule-form data-schedule=(action) data-method=(method) data-next="/ui/schedules"
                data-offset=(offset) data-ok=(page.t("Đã lưu lịch phát.", "Schedule saved.")) {
                (page.csrf_field())
                label for="s-title" { (page.t("Tên lịch", "Title")) }
                input type="text" id="s-title" name="title" value=(f.title) required maxlength="200";
                (what_and_where(page, &f, approved, villages, groups))
                (when(page, &f))
                (how(page, &f, approved))
                div.msg.hidden {}
                p { button type="submit" id="schedule-save" { (page.t("Lưu lịch", "Save schedule")) } }
            }
        }
    }
}

pub async fn week(cms: &Cms, page: &Page<'_>, req: &Req) -> Result<Response> {
    let p = page.p;
    let now = Utc::now();
    let today = now.with_timezone(&page.tz).date_naive();
    // Weeks run Monday to Sunday, as calendars on the office wall do.
    let day = req
        .q("from")
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(today);
    let start = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
    let from = protocol::schedule::local_to_utc(page.tz, start, chrono::NaiveTime::MIN);
    let to = protocol::schedule::local_to_utc(
        page.tz,
        start + Duration::days(7),
        chrono::NaiveTime::MIN,
    );
    let days: Vec<chrono::NaiveDate> = (0..7).map(|i| start + Duration::days(i)).collect();
    // A schedule plays from when it was made: no plays of it are shown before that.
    let made: std::collections::HashMap<i64, chrono::DateTime<Utc>> = cms
        .schedules(p)
        .await?
        .iter()
        .map(|s| (s.id, s.created_at))
        .collect();
    let mut rows = Vec::new();
    for v in cms.villages(p, None).await? {
        let mut plays = cms
            .preview(p, PreviewTarget::Village(v.id), from, to)
            .await?;
        plays.retain(|pl| {
            pl.play.outcome != Outcome::Skipped
                && made
                    .get(&pl.play.schedule_id)
                    .is_none_or(|m| pl.play.scheduled_at >= *m)
        });
        rows.push((v, plays));
    }
    let local = |t: chrono::DateTime<Utc>| t.with_timezone(&page.tz);
    let on = |plays: &[crate::PreviewPlay], d: chrono::NaiveDate| -> Vec<crate::PreviewPlay> {
        plays
            .iter()
            .filter(|pl| local(pl.play.start).date_naive() == d)
            .cloned()
            .collect()
    };
    let day_name = |d: &chrono::NaiveDate| {
        let (_, vi, en) = DAYS[d.weekday().num_days_from_monday() as usize];
        format!("{} {}", page.t(vi, en), d.format("%d/%m"))
    };
    let play = |pl: &crate::PreviewPlay| {
        html! {
            div.play.conflict[pl.conflict].past[pl.play.end < now] title=(priority_name(page, pl.play.priority)) {
                (local(pl.play.start).format("%H:%M")) " " (pl.title)
            }
        }
    };
    let prev = (start - Duration::days(7)).format("%Y-%m-%d").to_string();
    let next = (start + Duration::days(7)).format("%Y-%m-%d").to_string();
    let body = html! {
        p.row {
            a href={ "/ui/week?from=" (prev) } { "← " (page.t("Tuần trước", "Previous week")) }
            strong { (start.format("%d/%m/%Y")) " – " ((start + Duration::days(6)).format("%d/%m/%Y")) }
            a href={ "/ui/week?from=" (next) } { (page.t("Tuần sau", "Next week")) " →" }
        }
        // Wide screens: villages by days.
        div.table-wrap.wide-only { table.week #week-table {
            thead { tr {
                th {}
                @for d in &days { th.today[*d == today] { (day_name(d)) } }
            } }
            tbody { @for (v, plays) in &rows { tr {
                th { (v.name) }
                @for d in &days { td.today[*d == today] { @for pl in &on(plays, *d) { (play(pl)) } } }
            } } }
        } }
        // Phones: each village's days as a list.
        div.narrow-only #week-list {
            @for (v, plays) in &rows {
                details.card open[!plays.is_empty()] {
                    summary { strong { (v.name) } " · " (plays.len()) " " (page.t("lần phát", "plays")) }
                    @for d in &days {
                        @let list = on(plays, *d);
                        @if !list.is_empty() {
                            div.day.today[*d == today] {
                                div.muted { (day_name(d)) }
                                @for pl in &list {
                                    div.play.conflict[pl.conflict].past[pl.play.end < now] {
                                        span.time { (local(pl.play.start).format("%H:%M")) } " · " (pl.title)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.muted { (page.t(
            "Viền cam: bị lùi, ngắt hoặc phát lại do trùng lịch. Mờ: đã qua. Giờ theo múi giờ của xã.",
            "Orange edge: delayed, interrupted or restarted by a conflict. Faded: already past. Times in the commune's zone.",
        )) }
    };
    Ok(page.render(page.t("Lịch phát trong tuần", "This week"), body))
}

/// The editor's fields, from a schedule being edited or the defaults of a new one.
struct Prefill {
    title: String,
    content: Vec<i64>,
    villages: Vec<i64>,
    groups: Vec<i64>,
    kind: &'static str,
    once_date: String,
    once_time: String,
    times: String,
    days: Vec<String>,
    month_days: String,
    from: String,
    until: String,
    priority: Priority,
    repeat: u32,
    pause_s: u64,
    gap_s: u64,
    volume: u8,
    chime: Option<i64>,
}

impl Prefill {
    fn of(page: &Page<'_>, s: Option<&Schedule>) -> Prefill {
        let Some(s) = s else {
            return Prefill {
                title: String::new(),
                content: vec![],
                villages: vec![],
                groups: vec![],
                kind: "daily",
                once_date: String::new(),
                once_time: String::new(),
                times: String::new(),
                days: vec![],
                month_days: String::new(),
                from: String::new(),
                until: String::new(),
                priority: Priority::Normal,
                repeat: 1,
                pause_s: 0,
                gap_s: 0,
                volume: 100,
                chime: None,
            };
        };
        let hm = |t: &[protocol::schedule::LocalTime]| {
            t.iter()
                .map(|t| t.0.format("%H:%M").to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (kind, once, times, days, month_days) = match &s.rule.kind {
            RuleKind::Once(at) => (
                "once",
                at.with_timezone(&page.tz)
                    .format("%d/%m/%Y %H:%M")
                    .to_string(),
                String::new(),
                vec![],
                String::new(),
            ),
            RuleKind::Daily(t) => ("daily", String::new(), hm(t), vec![], String::new()),
            RuleKind::Weekly { days, times } => {
                let days = days.iter().map(|d| d.as_str().to_owned()).collect();
                ("weekly", String::new(), hm(times), days, String::new())
            }
            RuleKind::Monthly { days, times } => (
                "monthly",
                String::new(),
                hm(times),
                vec![],
                days.iter()
                    .map(u8::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            // Cron rules come from the API; the editor shows them as daily with no times.
            RuleKind::Cron(_) => ("daily", String::new(), String::new(), vec![], String::new()),
        };
        let date = |d: Option<chrono::NaiveDate>| {
            d.map(|d| d.format("%d/%m/%Y").to_string())
                .unwrap_or_default()
        };
        let (once_date, once_time) = once
            .split_once(' ')
            .map(|(d, t)| (d.to_owned(), t.to_owned()))
            .unwrap_or_default();
        Prefill {
            title: s.title.clone(),
            content: s.program.content_ids.clone(),
            villages: s.targets.villages.clone(),
            groups: s.targets.groups.clone(),
            kind,
            once_date,
            once_time,
            times,
            days,
            month_days,
            from: date(s.rule.from),
            until: date(s.rule.until),
            priority: s.priority,
            repeat: s.program.repeat,
            pause_s: s.program.pause_ms / 1000,
            gap_s: s.program.gap_ms / 1000,
            volume: s.volume,
            chime: s.program.chime_id,
        }
    }
}
