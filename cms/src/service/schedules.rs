//! Schedules (rule + program + targets + priority) and their preview through the shared
//! resolver in `protocol`: what staff see is what the node will play.

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use protocol::Tz;
use protocol::schedule::{
    self, LocalTime, Outcome, Play, Priority, Program, ProgramItem, QuietHours, Rule, ScheduleSpec,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod desired;

pub(crate) use desired::{CommuneSet, PreviewInput};

use super::{audit_by, required, to_json};
use crate::Cms;
use crate::auth::{Perm, Principal};
use crate::error::{CmsError, Result, Text};
use crate::model::{
    Commune, Content, ContentKind, ContentStatus, Schedule, StoredProgram, Targets,
};
use crate::store::{self as q, ScheduleRow};

/// `POST /api/v1/schedules` (docs/INTERFACES.md), plus the program options (gap, repeat, chime).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub title: String,
    /// Approved items, played in this order.
    #[schemars(length(min = 1, max = 50), inner(range(min = 1)))]
    pub content_ids: Vec<i64>,
    pub targets: Targets,
    pub priority: Priority,
    pub rule: Rule,
    /// 0-100 (default 80).
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub volume: Option<u8>,
    /// Silence between items.
    #[serde(default)]
    #[schemars(range(max = 600_000))]
    pub gap_ms: Option<u64>,
    /// Times the whole program plays (default 1).
    #[serde(default)]
    #[schemars(range(min = 1, max = 20))]
    pub repeat: Option<u32>,
    /// Silence between repeats.
    #[serde(default)]
    #[schemars(range(max = 3_600_000))]
    pub pause_ms: Option<u64>,
    /// An approved item played before the program.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub chime_id: Option<i64>,
    /// How late the program may still start (waiting behind another).
    #[serde(default)]
    #[schemars(range(max = 86_400_000))]
    pub max_delay_ms: Option<u64>,
}

impl ScheduleRequest {
    /// The program as stored: items, gap, repeats with pauses, chime.
    fn program(&self) -> StoredProgram {
        StoredProgram {
            content_ids: self.content_ids.clone(),
            gap_ms: self.gap_ms.unwrap_or(0),
            repeat: self.repeat.unwrap_or(1),
            pause_ms: self.pause_ms.unwrap_or(0),
            chime_id: self.chime_id,
            live: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum PreviewTarget {
    Node(i64),
    Village(i64),
}

/// One play in a preview (the resolver's [`Play`]), with what staff need to read it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PreviewPlay {
    #[serde(flatten)]
    pub play: Play,
    pub title: String,
    /// Delayed, interrupted or skipped because of another schedule.
    pub conflict: bool,
    pub content_ids: Vec<i64>,
    pub volume: u8,
}

/// Longest preview window (a month); the week view asks for 7 days.
pub const MAX_PREVIEW: Duration = Duration::days(31);

const MAX_ITEMS: usize = 50;

/// The commune's zone. Zones are checked when set, so an unknown one is a damaged
/// database: refused loudly rather than guessed (a wrong zone moves every play by hours).
pub fn commune_tz(c: &Commune) -> Result<Tz> {
    Tz::from_str(&c.tz).map_err(|_| {
        tracing::error!(commune = c.id, tz = %c.tz, "unknown time zone in the database");
        CmsError::Storage(format!(
            "commune {} has an unknown time zone {:?}",
            c.id, c.tz
        ))
    })
}

/// Every item is the commune's and approved.
fn check_items(items: &HashMap<i64, Content>, cid: i64) -> Result<()> {
    for item in items.values() {
        if item.commune_id != cid {
            return Err(CmsError::NotFound(Text::new(
                "Không tìm thấy nội dung",
                "Content item",
            )));
        }
        if item.archived_at.is_some() {
            return Err(super::content::archived(item));
        }
        if item.status != ContentStatus::Approved {
            return Err(CmsError::conflict(
                format!(
                    "“{}” chưa được phê duyệt: chỉ nội dung đã duyệt mới được lên lịch.",
                    item.title
                ),
                format!(
                    "“{}” is not approved: only approved items can be scheduled.",
                    item.title
                ),
            ));
        }
    }
    Ok(())
}

/// A non-emergency schedule never plays in the commune's quiet hours (checked 400 days
/// ahead, the program's length included).
fn check_quiet_hours(
    spec: Option<ScheduleSpec>,
    commune: &Commune,
    now: DateTime<Utc>,
) -> Result<()> {
    let tz = commune_tz(commune)?;
    let Some(at) =
        spec.and_then(|s| schedule::first_quiet_conflict(&s, tz, quiet_hours(commune), now))
    else {
        return Ok(());
    };
    let local = at.with_timezone(&tz).format("%d/%m/%Y %H:%M");
    Err(CmsError::invalid(
        format!(
            "Lịch phát vào giờ yên tĩnh ({}–{}), lần đầu lúc {local}. Chỉ tin khẩn cấp được phát trong giờ này.",
            commune.quiet_start, commune.quiet_end
        ),
        format!(
            "This schedule plays in quiet hours ({}–{}), first at {local}. Only emergencies may play then.",
            commune.quiet_start, commune.quiet_end
        ),
    ))
}

pub fn quiet_hours(c: &Commune) -> QuietHours {
    match (
        LocalTime::from_str(&c.quiet_start),
        LocalTime::from_str(&c.quiet_end),
    ) {
        (Ok(start), Ok(end)) => QuietHours { start, end },
        _ => QuietHours::default(),
    }
}

fn what() -> Text {
    Text::new("Không tìm thấy lịch phát", "Schedule")
}

/// Emergencies cut into everything: leaders (approvers, admins) decide them, Circular
/// 39/2020. Creating one, and changing, demoting or deleting an existing one, need them.
fn leaders_alone_touch_emergencies(p: &Principal, priority: Priority) -> Result<()> {
    if priority == Priority::Emergency {
        p.require(Perm::Approve)?;
    }
    Ok(())
}

impl Cms {
    pub async fn create_schedule(&self, p: &Principal, req: ScheduleRequest) -> Result<Schedule> {
        self.save_schedule(p, None, req).await
    }

    pub async fn update_schedule(
        &self,
        p: &Principal,
        id: i64,
        req: ScheduleRequest,
    ) -> Result<Schedule> {
        self.save_schedule(p, Some(id), req).await
    }

    async fn save_schedule(
        &self,
        p: &Principal,
        id: Option<i64>,
        req: ScheduleRequest,
    ) -> Result<Schedule> {
        p.require(Perm::Schedule)?;
        leaders_alone_touch_emergencies(p, req.priority)?;
        let cid = p.commune(None)?;
        let commune = self.commune(cid).await?;
        let title = required(&req.title, 200, "tên lịch", "Title")?;
        req.rule.validate().map_err(|e| {
            CmsError::invalid(
                format!("Quy tắc lịch không hợp lệ: {e}"),
                format!("Invalid rule: {e}"),
            )
        })?;
        let program = req.program();
        check_program(&program, req.volume)?;
        if req.targets.is_empty() {
            return Err(CmsError::invalid(
                "Chưa chọn nơi phát (thôn, nhóm hoặc cụm loa).",
                "Choose where it plays (villages, groups or nodes).",
            ));
        }
        let p2 = p.clone();
        let now = Utc::now();
        self.write(move |c| {
            let tx = c.transaction()?;
            check_targets(&tx, cid, &req.targets)?;
            let items = load_items(&tx, &program)?;
            check_items(&items, cid)?;
            let row = ScheduleRow {
                commune_id: cid,
                title: &title,
                priority: req.priority,
                volume: req.volume.unwrap_or(100),
                rule: &req.rule,
                program: &program,
                targets: &req.targets,
                max_delay_ms: req.max_delay_ms,
                created_by: Some(p2.user.id),
            };
            let spec = to_spec(
                0,
                &title,
                req.priority,
                row.volume,
                &req.rule,
                &program,
                req.max_delay_ms,
                &items,
            );
            check_quiet_hours(spec, &commune, now)?;
            let (id, before) = match id {
                Some(id) => {
                    let before = q::schedules::get(&tx, id)?;
                    p2.check_commune(before.commune_id, what())?;
                    leaders_alone_touch_emergencies(&p2, before.priority)?;
                    q::schedules::update(&tx, id, &row)?;
                    (id, to_json(&before))
                }
                None => (q::schedules::insert(&tx, &row)?, None),
            };
            let after = q::schedules::get(&tx, id)?;
            let action = if before.is_some() { "update" } else { "create" };
            q::audit(
                &tx,
                &audit_by(&p2, cid, action, "schedule", id, before, to_json(&after)),
            )?;
            tx.commit()?;
            Ok(after)
        })
        .await
    }

    pub async fn delete_schedule(&self, p: &Principal, id: i64) -> Result<()> {
        p.require(Perm::Schedule)?;
        let p = p.clone();
        self.write(move |c| {
            let tx = c.transaction()?;
            let before = q::schedules::get(&tx, id)?;
            p.check_commune(before.commune_id, what())?;
            leaders_alone_touch_emergencies(&p, before.priority)?;
            Cms::emergency_of_schedule(&tx, id)?;
            q::schedules::delete(&tx, id)?;
            q::audit(
                &tx,
                &audit_by(
                    &p,
                    before.commune_id,
                    "delete",
                    "schedule",
                    id,
                    to_json(&before),
                    None,
                ),
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    pub async fn schedules(&self, p: &Principal) -> Result<Vec<Schedule>> {
        p.require(Perm::Read)?;
        let cid = p.commune(None)?;
        self.store().call(move |c| q::schedules::list(c, cid)).await
    }

    pub async fn schedule(&self, p: &Principal, id: i64) -> Result<Schedule> {
        p.require(Perm::Read)?;
        let s = self.store().call(move |c| q::schedules::get(c, id)).await?;
        p.check_commune(s.commune_id, what())?;
        Ok(s)
    }

    /// The exact plays on a node (or in a village) over `[from, to)`, conflicts resolved.
    pub async fn preview(
        &self,
        p: &Principal,
        target: PreviewTarget,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<PreviewPlay>> {
        p.require(Perm::Read)?;
        if to <= from || to - from > MAX_PREVIEW {
            return Err(CmsError::invalid(
                "Khoảng thời gian xem trước phải từ 1 giây đến 31 ngày.",
                "The preview window must be between 1 second and 31 days.",
            ));
        }
        let input = self.preview_input(target).await?;
        p.check_commune(
            input.commune.id,
            Text::new("Không tìm thấy nơi phát", "Target"),
        )?;
        let PreviewInput {
            specs, tz, titles, ..
        } = &*input;
        let plays = schedule::resolve(specs, *tz, from, to);
        Ok(plays
            .into_iter()
            .map(|play| {
                let spec = specs.iter().find(|s| s.id == play.schedule_id);
                PreviewPlay {
                    title: titles.get(&play.schedule_id).cloned().unwrap_or_default(),
                    conflict: play.outcome != Outcome::Complete
                        || play.delay() > Duration::zero()
                        || play.attempt > 0,
                    content_ids: spec
                        .map(|s| s.program.items.iter().map(|i| i.content_id).collect())
                        .unwrap_or_default(),
                    volume: spec.map_or(100, |s| s.volume),
                    play,
                }
            })
            .collect())
    }
}

fn check_program(p: &StoredProgram, volume: Option<u8>) -> Result<()> {
    let bad = |vi: &str, en: &str| Err(CmsError::invalid(vi, en));
    if p.content_ids.is_empty() {
        return bad(
            "Chương trình chưa có nội dung nào.",
            "The program has no items.",
        );
    }
    if p.content_ids.len() > MAX_ITEMS {
        return bad(
            "Chương trình có quá 50 mục.",
            "A program holds at most 50 items.",
        );
    }
    if !(1..=20).contains(&p.repeat) {
        return bad(
            "Số lần lặp phải từ 1 đến 20.",
            "Repeat between 1 and 20 times.",
        );
    }
    if p.gap_ms > 600_000 || p.pause_ms > 3_600_000 {
        return bad(
            "Khoảng nghỉ quá dài (tối đa 10 phút giữa các mục, 1 giờ giữa các lần lặp).",
            "Gaps too long (at most 10 minutes between items, 1 hour between repeats).",
        );
    }
    if volume.is_some_and(|v| v > 100) {
        return bad("Âm lượng từ 0 đến 100.", "Volume is 0 to 100.");
    }
    Ok(())
}

pub(super) fn check_targets(c: &rusqlite::Connection, cid: i64, t: &Targets) -> Result<()> {
    let foreign = || {
        CmsError::invalid(
            "Nơi phát không thuộc xã này.",
            "A target is not in this commune.",
        )
    };
    for v in &t.villages {
        if q::places::village(c, *v).map_err(|_| foreign())?.commune_id != cid {
            return Err(foreign());
        }
    }
    for n in &t.nodes {
        if q::places::node(c, *n).map_err(|_| foreign())?.commune_id != cid {
            return Err(foreign());
        }
    }
    let groups = q::places::groups(c, cid)?;
    if t.groups.iter().any(|g| !groups.iter().any(|x| x.id == *g)) {
        return Err(foreign());
    }
    Ok(())
}

fn load_items(c: &rusqlite::Connection, p: &StoredProgram) -> Result<HashMap<i64, Content>> {
    let mut out = HashMap::new();
    for id in p.content_ids.iter().chain(p.chime_id.iter()) {
        if !out.contains_key(id) {
            out.insert(*id, q::content::get(c, *id)?);
        }
    }
    Ok(out)
}

/// Resolver input for stored schedules, with only approved items (an item sent back for
/// approval drops out of every program until approved again).
pub fn specs_of(
    c: &rusqlite::Connection,
    schedules: &[Schedule],
) -> Result<(Vec<ScheduleSpec>, HashMap<i64, String>)> {
    let mut specs = Vec::new();
    let mut titles = HashMap::new();
    for s in schedules {
        let items = match load_items(c, &s.program) {
            Ok(items) => items,
            Err(_) => continue,
        };
        titles.insert(s.id, s.title.clone());
        specs.extend(
            to_spec(
                s.id,
                &s.title,
                s.priority,
                s.volume,
                &s.rule,
                &s.program,
                s.max_delay_ms,
                &items,
            )
            .map(|spec| ScheduleSpec {
                stopped_at: s.stopped_at,
                ..spec
            }),
        );
    }
    Ok((specs, titles))
}

#[allow(clippy::too_many_arguments)]
fn to_spec(
    id: i64,
    title: &str,
    priority: Priority,
    volume: u8,
    rule: &Rule,
    program: &StoredProgram,
    max_delay_ms: Option<u64>,
    items: &HashMap<i64, Content>,
) -> Option<ScheduleSpec> {
    let item = |id: &i64| {
        let c = items
            .get(id)
            .filter(|c| c.status == ContentStatus::Approved)?;
        Some(ProgramItem {
            content_id: c.id,
            sha256: c.sha256.clone(),
            url: (c.kind == ContentKind::Relay)
                .then(|| c.relay_url.clone())
                .flatten(),
            live: None,
            size: c.size.unwrap_or(0),
            duration_ms: c.duration_ms,
            gain_db: c.gain_db as f32,
            gap_after_ms: program.gap_ms,
        })
    };
    let list: Vec<ProgramItem> = match program.live {
        true => vec![ProgramItem {
            content_id: 0,
            sha256: None,
            url: None,
            live: u32::try_from(id).ok(),
            size: 0,
            duration_ms: super::live::LIVE_MAX_MS,
            gain_db: 0.0,
            gap_after_ms: 0,
        }],
        false => program.content_ids.iter().filter_map(item).collect(),
    };
    if list.is_empty() {
        return None;
    }
    Some(ScheduleSpec {
        id,
        title: title.to_owned(),
        priority,
        rule: rule.clone(),
        program: Program {
            items: list,
            repeat: program.repeat,
            pause_ms: program.pause_ms,
            chime: program.chime_id.as_ref().and_then(item),
        },
        volume,
        max_delay_ms,
        stopped_at: None,
    })
}
