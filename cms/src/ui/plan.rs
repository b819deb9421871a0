//! Schedules (list and editor built from plain choices: staff never type cron) and the
//! week view of what plays in each village.

use chrono::{Datelike, Duration, Utc};
use protocol::schedule::{Outcome, Priority, RuleKind};
use warp::reply::Response;

use super::{Page, esc};
use crate::auth::Perm;
use crate::error::Result;
use crate::http::Req;
use crate::model::{ContentStatus, Schedule};
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

fn priority_label(page: &Page<'_>, p: Priority) -> String {
    format!(
        r#"<span class="badge {}">{}</span>"#,
        p.as_str(),
        priority_name(page, p)
    )
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
    esc(&(text + &range))
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
    let rows: String = list
        .iter()
        .map(|s| {
            let places: Vec<String> = s
                .targets
                .villages
                .iter()
                .filter_map(|v| villages.iter().find(|x| x.id == *v).map(|x| esc(&x.name)))
                .chain(s.targets.groups.iter().filter_map(|g| groups.iter().find(|x| x.id == *g).map(|x| format!("{} {}", page.t("nhóm", "group"), esc(&x.name)))))
                .collect();
            let delete = if p.can(Perm::Schedule) {
                format!(
                    r#"<a class="button secondary" href="/ui/schedules?edit={id}#schedule-form">{edit}</a> <button type="button" class="secondary" data-delete="/api/v1/schedules/{id}" data-confirm="{confirm}">✕</button>"#,
                    id = s.id,
                    edit = page.t("Sửa", "Edit"),
                    confirm = page.t("Xoá lịch này?", "Delete this schedule?")
                )
            } else {
                String::new()
            };
            format!(
                "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.title),
                rule_text(page, s),
                priority_label(page, s.priority),
                places.join(", "),
                delete
            )
        })
        .collect();
    let table = if list.is_empty() {
        format!(
            r#"<p class="muted">{}</p>"#,
            page.t("Chưa có lịch phát.", "No schedules yet.")
        )
    } else {
        format!(
            r#"<div class="table-wrap"><table id="schedule-table"><tbody>{rows}</tbody></table></div>"#
        )
    };
    let editor = if p.can(Perm::Schedule) {
        let editing = req
            .q("edit")
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|id| list.iter().find(|s| s.id == id));
        editor(page, &approved, &villages, &groups, editing)
    } else {
        String::new()
    };
    Ok(page.render(
        page.t("Lịch phát", "Schedules"),
        &format!("{table}{editor}"),
    ))
}

fn editor(
    page: &Page<'_>,
    approved: &[crate::model::Content],
    villages: &[crate::model::Village],
    groups: &[crate::model::VillageGroup],
    editing: Option<&Schedule>,
) -> String {
    let f = Prefill::of(page, editing);
    let on = |yes: bool| if yes { " checked" } else { "" };
    let check = |name: &str, id: i64, label: &str, checked: bool| {
        format!(
            r#"<label><input type="checkbox" name="{name}" value="{id}" data-type="ints"{}> {}</label>"#,
            on(checked),
            esc(label)
        )
    };
    let items: String = approved
        .iter()
        .map(|c| check("content_ids", c.id, &c.title, f.content.contains(&c.id)))
        .collect();
    let places: String = villages
        .iter()
        .map(|v| {
            check(
                "targets.villages",
                v.id,
                &v.name,
                f.villages.contains(&v.id),
            )
        })
        .chain(groups.iter().map(|g| {
            check(
                "targets.groups",
                g.id,
                &format!("{} {}", page.t("Nhóm", "Group"), g.name),
                f.groups.contains(&g.id),
            )
        }))
        .collect();
    let days: String = DAYS
        .iter()
        .map(|(v, vi, en)| {
            format!(
                r#"<label><input type="checkbox" name="day" value="{v}"{}> {}</label>"#,
                on(f.days.contains(&v.to_string())),
                page.t(vi, en)
            )
        })
        .collect();
    let priorities: String = Priority::ALL
        .iter()
        .filter(|p| **p != Priority::Emergency || page.p.can(Perm::Approve))
        .map(|p| {
            let sel = if *p == f.priority { " selected" } else { "" };
            format!(
                r#"<option value="{}"{sel}>{}</option>"#,
                p.as_str(),
                priority_name(page, *p)
            )
        })
        .collect();
    let offset = Utc::now().with_timezone(&page.tz).format("%:z").to_string();
    format!(
        r#"<div class="card"><h2>{new}</h2>
<form id="schedule-form" data-schedule="{action}" data-method="{method}" data-next="/ui/schedules" data-offset="{offset}" data-ok="{saved}">{csrf}
<label for="s-title">{title}</label><input type="text" id="s-title" name="title" value="{title_v}" required maxlength="200">
<label>{what}</label><div class="checks">{items}</div>
<label>{where_}</label><div class="checks">{places}</div>
<label for="s-kind">{when}</label><select id="s-kind" name="rule_kind">
{kinds}</select>
<div data-rule="once"><label for="s-once">{at}</label><input type="datetime-local" id="s-once" name="once" value="{once_v}"></div>
<div data-rule="daily weekly monthly"><label for="s-times">{times}</label><input type="text" id="s-times" name="times" value="{times_v}" placeholder="06:00, 17:30"></div>
<div data-rule="weekly"><label>{ondays}</label><div class="checks">{days}</div></div>
<div data-rule="monthly"><label for="s-mdays">{mdays}</label><input type="text" id="s-mdays" name="month_days" value="{mdays_v}" placeholder="1, 15"></div>
<div data-rule="daily weekly monthly" class="row"><span><label for="s-from">{from}</label><input type="date" id="s-from" name="from" value="{from_v}" data-optional></span>
<span><label for="s-until">{until}</label><input type="date" id="s-until" name="until" value="{until_v}" data-optional></span></div>
<div class="row"><span><label for="s-priority">{prio}</label><select id="s-priority" name="priority">{priorities}</select></span>
<span><label for="s-repeat">{repeat}</label><input type="number" id="s-repeat" name="repeat" value="{repeat_v}" min="1" max="20"></span>
<span><label for="s-pause">{pause}</label><input type="number" id="s-pause" name="pause_s" value="{pause_v}" min="0" max="3600" data-optional></span>
<span><label for="s-gap">{gap}</label><input type="number" id="s-gap" name="gap_s" value="{gap_v}" min="0" max="600" data-optional></span>
<span><label for="s-volume">{volume}</label><input type="number" id="s-volume" name="volume" value="{volume_v}" min="0" max="100"></span></div>
<label for="s-chime">{chime}</label><select id="s-chime" name="chime_id" data-optional><option value="">{nochime}</option>{chimes}</select>
<div class="msg hidden"></div><p><button type="submit" id="schedule-save">{save}</button></p></form></div>"#,
        new = if editing.is_some() {
            page.t("Sửa lịch phát", "Edit schedule")
        } else {
            page.t("Lịch phát mới", "New schedule")
        },
        action = editing.map_or("/api/v1/schedules".to_owned(), |s| format!(
            "/api/v1/schedules/{}",
            s.id
        )),
        method = if editing.is_some() { "PUT" } else { "POST" },
        title_v = esc(&f.title),
        kinds = [
            ("daily", page.t("Hằng ngày", "Every day")),
            ("weekly", page.t("Hằng tuần", "Every week")),
            ("monthly", page.t("Hằng tháng", "Every month")),
            ("once", page.t("Một lần", "Once"))
        ]
        .iter()
        .map(|(k, label)| format!(
            r#"<option value="{k}"{}>{label}</option>"#,
            if *k == f.kind { " selected" } else { "" }
        ))
        .collect::<String>(),
        once_v = f.once,
        times_v = f.times,
        mdays_v = f.month_days,
        from_v = f.from,
        until_v = f.until,
        repeat_v = f.repeat,
        pause_v = f.pause_s,
        gap_v = f.gap_s,
        volume_v = f.volume,
        saved = page.t("Đã lưu lịch phát.", "Schedule saved."),
        csrf = page.csrf_field(),
        title = page.t("Tên lịch", "Title"),
        what = page.t("Phát nội dung (đã duyệt)", "Play (approved items)"),
        where_ = page.t("Tại", "Where"),
        when = page.t("Khi nào", "When"),
        at = page.t("Thời điểm", "At"),
        times = page.t(
            "Giờ phát (cách nhau bằng dấu phẩy)",
            "Times (comma separated)"
        ),
        ondays = page.t("Vào các ngày", "On days"),
        mdays = page.t("Ngày trong tháng", "Days of the month"),
        from = page.t("Từ ngày", "From"),
        until = page.t("Đến ngày", "Until"),
        prio = page.t("Mức ưu tiên", "Priority"),
        repeat = page.t("Số lần lặp", "Repeat"),
        volume = page.t("Âm lượng", "Volume"),
        pause = page.t("Nghỉ giữa các lần lặp (giây)", "Pause between repeats (s)"),
        gap = page.t("Nghỉ giữa các mục (giây)", "Gap between items (s)"),
        chime = page.t("Nhạc hiệu trước khi phát", "Chime before"),
        nochime = page.t("Không có", "None"),
        chimes = approved
            .iter()
            .map(|c| {
                let sel = if f.chime == Some(c.id) {
                    " selected"
                } else {
                    ""
                };
                format!(
                    r#"<option value="{}"{sel}>{}</option>"#,
                    c.id,
                    esc(&c.title)
                )
            })
            .collect::<String>(),
        save = page.t("Lưu lịch", "Save schedule"),
    )
}

pub async fn week(cms: &Cms, page: &Page<'_>, req: &Req) -> Result<Response> {
    let p = page.p;
    let today = Utc::now().with_timezone(&page.tz).date_naive();
    let start = req
        .q("from")
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(today);
    let from = protocol::schedule::local_to_utc(page.tz, start, chrono::NaiveTime::MIN);
    let to = protocol::schedule::local_to_utc(
        page.tz,
        start + Duration::days(7),
        chrono::NaiveTime::MIN,
    );
    let days: Vec<chrono::NaiveDate> = (0..7).map(|i| start + Duration::days(i)).collect();
    let head: String = days
        .iter()
        .map(|d| {
            let (_, vi, en) = DAYS[d.weekday().num_days_from_monday() as usize];
            format!("<th>{} {}</th>", page.t(vi, en), d.format("%d/%m"))
        })
        .collect();
    let mut rows = String::new();
    for v in cms.villages(p, None).await? {
        let plays = cms
            .preview(p, PreviewTarget::Village(v.id), from, to)
            .await?;
        let cells: String = days
            .iter()
            .map(|d| {
                let list: String = plays
                    .iter()
                    .filter(|pl| {
                        pl.play.outcome != Outcome::Skipped
                            && pl.play.start.with_timezone(&page.tz).date_naive() == *d
                    })
                    .map(|pl| {
                        let class = if pl.conflict { "play conflict" } else { "play" };
                        format!(
                            r#"<div class="{class}" title="{}">{} {}</div>"#,
                            pl.play.priority.as_str(),
                            pl.play.start.with_timezone(&page.tz).format("%H:%M"),
                            esc(&pl.title)
                        )
                    })
                    .collect();
                format!("<td>{list}</td>")
            })
            .collect();
        rows.push_str(&format!("<tr><th>{}</th>{cells}</tr>", esc(&v.name)));
    }
    let prev = (start - Duration::days(7)).format("%Y-%m-%d");
    let next = (start + Duration::days(7)).format("%Y-%m-%d");
    let body = format!(
        r#"<p class="row"><a href="/ui/week?from={prev}">← {before}</a><a href="/ui/week?from={next}">{after} →</a></p>
<div class="table-wrap"><table class="week" id="week-table"><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table></div>
<p class="muted">{legend}</p>"#,
        before = page.t("Tuần trước", "Previous week"),
        after = page.t("Tuần sau", "Next week"),
        legend = page.t("Viền cam: bị lùi, ngắt hoặc phát lại do trùng lịch. Giờ theo múi giờ của xã.", "Orange edge: delayed, interrupted or restarted by a conflict. Times in the commune's zone."),
    );
    Ok(page.render(page.t("Lịch phát trong tuần", "This week"), &body))
}

/// The editor's fields, from a schedule being edited or the defaults of a new one.
struct Prefill {
    title: String,
    content: Vec<i64>,
    villages: Vec<i64>,
    groups: Vec<i64>,
    kind: &'static str,
    once: String,
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
                once: String::new(),
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
                    .format("%Y-%m-%dT%H:%M")
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
            d.map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        };
        Prefill {
            title: s.title.clone(),
            content: s.program.content_ids.clone(),
            villages: s.targets.villages.clone(),
            groups: s.targets.groups.clone(),
            kind,
            once,
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
