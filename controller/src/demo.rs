//! Demo data: xã Hạ Long with five villages, a user per role, sample content approved and
//! scheduled. Seeding runs once per data directory (when the commune has no villages).

use std::path::Path;

use chrono::{Duration, Utc};
use cms::auth::{Principal, Via};
use cms::model::{Role, Targets, User};
use cms::{Cms, NewUserRequest, ScheduleRequest, UploadMeta};
use protocol::Tz;
use protocol::schedule::{QuietHours, local_to_utc};

pub const COMMUNE_SLUG: &str = "ha-long";
pub const COMMUNE_NAME: &str = "Xã Hạ Long";
/// Demo only: printed on start so the demo can be tried at once.
pub const PASSWORD: &str = "loalang-demo";

const VILLAGES: [(&str, &str); 5] = [
    ("Thôn Đồng Tâm", "thon"),
    ("Thôn Hải Hà", "thon"),
    ("Thôn Bắc Sơn", "thon"),
    ("Thôn Nam Hải", "thon"),
    ("Tổ dân phố Tân Tiến", "to_dan_pho"),
];

const USERS: [(&str, Role, &str); 5] = [
    ("admin", Role::Admin, "Nguyễn Văn Quản"),
    ("bientap", Role::Editor, "Trần Thị Biên"),
    ("pheduyet", Role::Approver, "Lê Văn Duyệt"),
    ("kythuat", Role::Technician, "Phạm Văn Kỹ"),
    ("xem", Role::Viewer, "Hoàng Thị Xem"),
];

/// Seeds the demo (if not done yet); returns the logins to print: (role, user, password).
pub async fn seed(
    cms: &Cms,
    samples: &Path,
    nodes: u32,
) -> cms::Result<Vec<(&'static str, &'static str, &'static str)>> {
    let logins = USERS
        .iter()
        .map(|(u, r, _)| (r.as_str(), *u, PASSWORD))
        .collect();
    let cid = cms.default_commune();
    let village_count = cms
        .store()
        .call(move |c| cms::store::places::villages(c, cid))
        .await?
        .len();
    if village_count > 0 {
        return Ok(logins);
    }
    let mut users = Vec::new();
    for (username, role, name) in USERS {
        let req = NewUserRequest {
            username: username.into(),
            password: PASSWORD.into(),
            role: role.as_str().into(),
            display_name: Some(name.into()),
            commune_id: Some(cid),
            province_wide: false,
        };
        users.push(cms.create_user(None, req).await?);
    }
    let [admin, editor, approver, tech, _viewer] = &users[..] else {
        return Ok(logins);
    };
    let (admin, editor, approver, tech) = (
        as_p(cms, admin),
        as_p(cms, editor),
        as_p(cms, approver),
        as_p(cms, tech),
    );

    let (village_ids, coast) = seed_places(cms, &admin, &tech, nodes).await?;
    let approved = seed_content(cms, samples, &editor, &approver).await?;
    seed_schedules(cms, &approver, &approved, village_ids, coast).await;
    Ok(logins)
}

/// Five villages, a group of the two on the coast, and the nodes; returns the village
/// ids and the group's.
async fn seed_places(
    cms: &Cms,
    admin: &Principal,
    tech: &Principal,
    nodes: u32,
) -> cms::Result<(Vec<i64>, i64)> {
    let mut village_ids = Vec::new();
    for (name, kind) in VILLAGES {
        village_ids.push(cms.create_village(admin, name, Some(kind), None).await?.id);
    }
    let coast = cms
        .create_group(admin, "Ven biển", vec![village_ids[1], village_ids[3]])
        .await?;
    for i in 0..nodes as usize {
        let village = village_ids[i % village_ids.len()];
        let req = cms::service_node_request(
            format!("Cụm loa {}", i + 1),
            village,
            20.95 + i as f64 * 0.01,
            107.07,
        );
        cms.create_node(tech, req).await?;
    }

    Ok((village_ids, coast.id))
}

/// The sample recordings and a typed announcement, submitted and approved; their ids.
async fn seed_content(
    cms: &Cms,
    samples: &Path,
    editor: &Principal,
    approver: &Principal,
) -> cms::Result<Vec<i64>> {
    let mut approved = Vec::new();
    for (file, title, category) in [
        ("news.mp3", "Bản tin sáng", "news"),
        ("announcement.mp3", "Thông báo họp dân", "announcement"),
        ("chime.flac", "Nhạc hiệu", "chime"),
    ] {
        let path = samples.join(file);
        if !path.exists() {
            continue;
        }
        let meta = UploadMeta {
            title: title.into(),
            category: category.into(),
            ..UploadMeta::default()
        };
        approved.push(cms.upload_file(editor, meta, &path).await?.id);
    }
    let tts = cms
        .create_tts(
            editor,
            "Thông báo tiêm chủng",
            "Trạm y tế xã thông báo: tiêm chủng mở rộng cho trẻ em dưới năm tuổi vào sáng thứ bảy tại nhà văn hoá thôn.",
            None,
            None,
            Some("announcement"),
        )
        .await;
    match tts {
        Ok(item) => approved.push(item.id),
        Err(e) => tracing::warn!(cause = %e, "demo: text to speech unavailable"),
    }
    for id in &approved {
        cms.submit(editor, *id).await?;
        cms.approve(approver, *id).await?;
    }
    // Villagers can hear the morning news and the typed notice again on the public page.
    for id in approved.iter().take(1).chain(approved.iter().skip(3)) {
        let public = cms::ContentPatch {
            public: Some(true),
            ..cms::ContentPatch::default()
        };
        cms.patch_content(editor, *id, public).await?;
    }
    Ok(approved)
}

/// The morning news every day, a play a minute after start, and a vaccination notice
/// three evenings running on the coast (each skipped, with a warning, if refused).
async fn seed_schedules(
    cms: &Cms,
    approver: &Principal,
    approved: &[i64],
    village_ids: Vec<i64>,
    coast: i64,
) {
    let Some(&first) = approved.first() else {
        return;
    };
    let all = Targets {
        villages: village_ids.clone(),
        ..Targets::default()
    };
    let schedule = |title: &str,
                    ids: Vec<i64>,
                    rule: serde_json::Value,
                    targets: Targets,
                    priority: &str| {
        serde_json::from_value::<ScheduleRequest>(serde_json::json!({
            "title": title, "content_ids": ids, "targets": targets, "priority": priority, "rule": rule,
        }))
    };
    let soon = first_audible(Utc::now() + Duration::minutes(1)).to_rfc3339();
    let today = Utc::now().date_naive();
    let plans = [
        schedule(
            "Bản tin sáng hằng ngày",
            vec![first],
            serde_json::json!({ "daily": ["06:00"] }),
            all.clone(),
            "normal",
        ),
        schedule(
            "Phát thử sau khi khởi động",
            vec![*approved.last().unwrap_or(&first)],
            serde_json::json!({ "once": soon }),
            all.clone(),
            "normal",
        ),
        schedule(
            "Thông báo tiêm chủng ba tối liền",
            vec![*approved.last().unwrap_or(&first)],
            serde_json::json!({ "daily": ["19:00"], "from": today, "until": today + Duration::days(2) }),
            Targets {
                groups: vec![coast],
                ..Targets::default()
            },
            "priority",
        ),
    ];
    for plan in plans {
        match plan {
            Ok(req) => {
                let title = req.title.clone();
                if let Err(e) = cms.create_schedule(approver, req).await {
                    // E.g. the one-minute play when the demo starts in quiet hours.
                    tracing::warn!(cause = %e, schedule = %title, "demo schedule not created");
                }
            }
            Err(e) => tracing::warn!(cause = %e, "demo schedule"),
        }
    }
}

/// `at`, or when that falls in the default quiet hours, a minute after they end (the demo
/// may start at night; only emergencies may sound then).
fn first_audible(at: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    let tz = Tz::Asia__Ho_Chi_Minh;
    let quiet = QuietHours::default();
    let local = at.with_timezone(&tz);
    if !quiet.contains(local.time()) {
        return at;
    }
    let mut day = local.date_naive();
    if local.time() >= quiet.start.0 {
        day += Duration::days(1);
    }
    local_to_utc(tz, day, quiet.end.0 + Duration::minutes(1))
}

/// Acts as `user` (a bearer principal, as a tool would).
pub fn as_p(cms: &Cms, user: &User) -> Principal {
    Principal {
        user: user.clone(),
        csrf: String::new(),
        via: Via::Bearer,
        default_commune: cms.default_commune(),
        scope: None,
    }
}
