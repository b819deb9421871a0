//! Each role through its day, at a desktop width and a 390 px phone width, against a real
//! `controller demo`: the editor types an announcement and hears it first, the leader
//! listens in the queue and rejects it with a reason, the editor sees why, replaces the
//! recording and the leader approves; the technician changes a node's volume and sees the
//! node's answer without a reload; the admin adds and renames villages (Vietnamese order)
//! and disables a user. Every page visited is checked at both widths — nothing scrolls
//! sideways on the phone, no machine text (event names, raw JSON, English statuses) in
//! the Vietnamese UI — and a screenshot of each is written to
//! `target/tmp/ui-screenshots/ROLE-PAGE-WIDTH.png` for a reviewer to look at.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::{Value, json};

use super::mic::start_mic_browser;
use super::{click, login, samples, start_controller, type_into, wait_path};

const WIDTHS: [(u32, u32, &str); 2] = [(1280, 900, "desktop"), (390, 844, "phone")];

/// Words of the wire and the database that must never reach a Vietnamese page.
const MACHINE_WORDS: [&str; 16] = [
    "command",
    "command_done",
    "set_volume",
    "play_now",
    "test_tone",
    "new_code",
    "enrolled",
    "pending",
    "approved",
    "rejected",
    "draft",
    "null",
    "undefined",
    "NaN",
    "OK",
    "min",
];

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the page shows, and the widest thing on it.
async fn measure(c: &Client) -> Value {
    c.execute(
        r##"const w = window.innerWidth;
           const wide = [...document.querySelectorAll("body *")]
             .filter(e => e.getBoundingClientRect().right > w + 1)
             .slice(0, 5).map(e => e.tagName + "#" + e.id + "." + e.className);
           return { inner: w, scroll: document.documentElement.scrollWidth, text: document.body.innerText, wide };"##,
        vec![],
    )
    .await
    .unwrap()
}

/// Visits `path` at both widths, checks it and keeps a screenshot of each; returns the
/// page's text (at the phone width).
async fn look(c: &Client, base: &str, role: &str, name: &str, path: &str) -> String {
    let mut text = String::new();
    for (w, h, label) in WIDTHS {
        c.set_window_size(w, h).await.unwrap();
        c.goto(&format!("{base}{path}")).await.unwrap();
        wait_ready(c).await;
        let m = measure(c).await;
        text = m["text"].as_str().unwrap_or_default().to_owned();
        let (inner, scroll) = (m["inner"].as_f64().unwrap(), m["scroll"].as_f64().unwrap());
        if label == "phone" {
            assert!(inner <= 400.0, "the phone window is {inner} px wide");
            assert!(
                scroll <= inner + 0.5,
                "{role} {name}: {scroll} px of page in a {inner} px phone: {}",
                m["wide"]
            );
        }
        for token in text.split(|ch: char| !(ch.is_alphanumeric() || ch == '_')) {
            assert!(
                !MACHINE_WORDS.contains(&token),
                "{role} {name} ({label}) shows {token:?}:\n{text}"
            );
        }
        for raw in ["{\"", "\":", "{&quot;"] {
            assert!(!text.contains(raw), "{role} {name} shows raw JSON:\n{text}");
        }
        let png = c.screenshot().await.unwrap();
        std::fs::write(shots().join(format!("{role}-{name}-{label}.png")), png).unwrap();
    }
    text
}

/// The page has loaded and its script has run.
async fn wait_ready(c: &Client) {
    let started = Instant::now();
    loop {
        let state = c
            .execute("return document.readyState", vec![])
            .await
            .unwrap_or_default();
        if state == "complete" {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "page never loaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the text of the first element matching `css` to contain `want`.
async fn wait_in(c: &Client, css: &str, want: &str) -> String {
    let started = Instant::now();
    loop {
        let text = match c.find(Locator::Css(css)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(want) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{css} never said {want:?}: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Waits until `script` returns true.
async fn wait_js(c: &Client, script: &str, what: &str) {
    let started = Instant::now();
    while c.execute(script, vec![]).await.unwrap() != json!(true) {
        assert!(started.elapsed() < Duration::from_secs(30), "no {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Logs in as `user` (cookies of the last one dropped).
async fn as_user(c: &Client, base: &str, user: &str) {
    c.set_window_size(1280, 900).await.unwrap();
    c.delete_all_cookies().await.unwrap();
    login(c, base, user).await;
}

/// The alert's text, once it shows.
async fn alert_text(c: &Client) -> String {
    let started = Instant::now();
    loop {
        if let Ok(text) = c.get_alert_text().await {
            return text;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no alert");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const TITLE: &str = "Thông báo họp tổ dân phố";

#[tokio::test(flavor = "multi_thread")]
async fn every_role_through_its_day_on_a_desktop_and_a_phone() {
    let dir = tempfile::tempdir().unwrap();
    let (_controller, base) = start_controller(&dir.path().join("data"));
    // Its microphone plays the news sample: the editor records with it.
    let (_driver, c) = start_mic_browser(dir.path()).await;

    // A viewer looks around: plans and places, no actions.
    as_user(&c, &base, "xem").await;
    for (name, path) in [
        ("dashboard", "/"),
        ("week", "/ui/week"),
        ("schedules", "/ui/schedules"),
        ("content", "/ui/content"),
        ("places", "/ui/places"),
        ("reports", "/ui/reports"),
        ("fleet", "/ui/fleet"),
    ] {
        look(&c, &base, "viewer", name, path).await;
    }
    // A villager, no login: the commune's public page, the demo's news on it.
    c.delete_all_cookies().await.unwrap();
    let public = look(&c, &base, "villager", "public", "/public/ha-long").await;
    assert!(
        public.contains("Nghe lại thông báo") && public.contains("Bản tin sáng"),
        "{public}"
    );
    as_user(&c, &base, "xem").await;
    // On the phone the menu folds behind one button.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&format!("{base}/")).await.unwrap();
    wait_ready(&c).await;
    let nav = c.find(Locator::Css("header nav")).await.unwrap();
    assert!(!nav.is_displayed().await.unwrap(), "the menu starts folded");
    click(&c, Locator::Css(".menu-toggle")).await;
    assert!(nav.is_displayed().await.unwrap(), "the button unfolds it");

    editor_types_and_hears_an_announcement(&c, &base).await;
    let id = item_id(&c, &base).await;
    leader_listens_and_rejects(&c, &base, &id).await;
    editor_fixes_it(&c, &base, &id).await;
    editor_schedules_on_weekdays(&c, &base).await;

    // The leader approves the fixed item, and is told so.
    as_user(&c, &base, "pheduyet").await;
    let queue = look(&c, &base, "approver", "queue-again", "/ui/approvals").await;
    assert!(queue.contains("Lần trước bị từ chối vì"), "{queue}");
    c.set_window_size(1280, 900).await.unwrap();
    click(&c, Locator::Css(&format!("button[data-approve='{id}']"))).await;
    wait_in(&c, "#flash", "Đã duyệt").await;

    technician_sets_a_volume(&c, &base).await;
    admin_keeps_places_and_users(&c, &base).await;
    c.close().await.unwrap();
}

async fn editor_types_and_hears_an_announcement(c: &Client, base: &str) {
    as_user(c, base, "bientap").await;
    look(c, base, "editor", "dashboard", "/").await;
    look(c, base, "editor", "content", "/ui/content").await;
    look(c, base, "editor", "new", "/ui/content/new").await;
    // On the phone: type it, choose the southern voice, hear it first.
    type_into(c, Locator::Id("tts-title"), TITLE).await;
    type_into(
        c,
        Locator::Id("tts-text"),
        "Mời bà con tổ dân phố Tân Tiến họp lúc bảy giờ tối thứ sáu.",
    )
    .await;
    c.find(Locator::Css("#tts-voice option[value='vi-vn-x-south']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(c, Locator::Id("tts-preview")).await;
    let preview = "const a = document.getElementById('tts-audio'); return a.src.startsWith('blob:') && a.duration > 1;";
    wait_js(c, preview, "a preview to hear").await;
    click(c, Locator::Css("#tts-form button[type=submit]")).await;
    wait_path(c, "/ui/content").await;
    wait_in(c, "#flash", "Đã tạo giọng đọc").await;

    // Or recorded with the microphone: heard back, then saved as a draft recording.
    c.goto(&format!("{base}/ui/content/new")).await.unwrap();
    wait_ready(c).await;
    click(c, Locator::Id("rec-start")).await;
    wait_in(c, "#rec-time", "0:02").await;
    click(c, Locator::Id("rec-stop")).await;
    let take = "const a = document.getElementById('rec-audio'); return a.duration > 1.5 && a.duration < 60;";
    wait_js(c, take, "a recording to hear back").await;
    type_into(c, Locator::Id("rec-title"), "Ghi âm lời mời họp").await;
    click(c, Locator::Css("#record-form button[type=submit]")).await;
    wait_path(c, "/ui/content").await;
    wait_in(c, "#flash", "Đã lưu bản ghi âm").await;
    // Ticking "public" says what it means for villagers.
    click(c, Locator::Css("input[data-patch]")).await;
    wait_in(c, "#toast", "trang công khai").await;
    let row = "//tr[.//strong[text()='Ghi âm lời mời họp']]";
    let text = c
        .find(Locator::XPath(row))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("nháp") && text.contains("0:0"), "{text}");
}

/// The new item's id, and it submitted for approval by its editor.
async fn item_id(c: &Client, base: &str) -> String {
    c.goto(&format!("{base}/ui/content")).await.unwrap();
    let row = c
        .find(Locator::XPath(&format!(
            "//tr[.//strong[text()='{TITLE}']]"
        )))
        .await
        .unwrap();
    let id = row.attr("data-id").await.unwrap().unwrap();
    click(c, Locator::Css(&format!("button[data-submit='{id}']"))).await;
    wait_in(c, "#flash", "Đã gửi duyệt").await;
    id
}

async fn leader_listens_and_rejects(c: &Client, base: &str, id: &str) {
    as_user(c, base, "pheduyet").await;
    look(c, base, "approver", "dashboard", "/").await;
    look(c, base, "approver", "emergency", "/ui/emergency").await;
    look(c, base, "approver", "live", "/ui/live").await;
    let queue = look(c, base, "approver", "queue", "/ui/approvals").await;
    assert!(
        queue.contains("Mời bà con tổ dân phố"),
        "the typed text is beside it"
    );
    // On the phone: play it in the queue, hear it move.
    let audio = format!("tr:has(button[data-approve='{id}']) audio");
    let played = c
        .execute(
            &format!("const a = document.querySelector(\"{audio}\"); a.muted = true; a.play(); return a.getBoundingClientRect().width;"),
            vec![],
        )
        .await
        .unwrap();
    assert!(
        played.as_f64().unwrap() >= 200.0,
        "a whole player: {played}"
    );
    let moving = format!("return document.querySelector(\"{audio}\").currentTime > 0.3");
    wait_js(c, &moving, "playing in the queue").await;
    // Rejected with a reason, and told so.
    click(
        c,
        Locator::Css(&format!(
            "tr:has(button[data-approve='{id}']) button.secondary"
        )),
    )
    .await;
    alert_text(c).await;
    c.send_alert_text("Giọng máy khó nghe, hãy ghi âm giọng thật")
        .await
        .unwrap();
    c.accept_alert().await.unwrap();
    wait_in(c, "#flash", "Đã từ chối").await;
}

async fn editor_fixes_it(c: &Client, base: &str, id: &str) {
    as_user(c, base, "bientap").await;
    // The dashboard says what was decided, with the reason, until marked read.
    look(c, base, "editor", "decisions", "/").await;
    let card = wait_in(c, "#decisions", TITLE).await;
    assert!(card.contains("Giọng máy khó nghe"), "{card}");
    click(c, Locator::Id("decisions-seen")).await;
    wait_in(c, "#flash", "Đã đánh dấu là đã xem").await;
    assert!(c.find(Locator::Id("decisions")).await.is_err());
    // Sent back unchanged, it is refused, saying why.
    c.set_window_size(1280, 900).await.unwrap();
    c.goto(&format!("{base}/ui/content")).await.unwrap();
    click(c, Locator::Css(&format!("button[data-submit='{id}']"))).await;
    let said = alert_text(c).await;
    assert!(said.contains("chưa được sửa"), "{said}");
    c.accept_alert().await.unwrap();
    // The edit page shows the reason; a real recording replaces the speech.
    let edit = look(c, base, "editor", "edit", &format!("/ui/content?edit={id}")).await;
    assert!(edit.contains("Giọng máy khó nghe"), "{edit}");
    let file = samples().join("announcement.mp3");
    type_into(c, Locator::Id("replace-file"), &file.to_string_lossy()).await;
    click(c, Locator::Css("#replace-form button[type=submit]")).await;
    wait_path(c, "/ui/content").await;
    wait_in(c, "#flash", "chờ duyệt lại").await;
    wait_in(c, &format!("tr[data-id='{id}']"), "chờ duyệt").await;
}

/// The schedule editor as people fill it: a preset for the days, a time from the
/// picker, dates as dd/mm/yyyy (a wrong one explained), chimes from the chime category.
async fn editor_schedules_on_weekdays(c: &Client, base: &str) {
    look(c, base, "editor", "schedules", "/ui/schedules").await;
    c.set_window_size(1280, 900).await.unwrap();
    let chimes = c
        .execute(
            "return [...document.querySelectorAll('#s-chime option')].map(o => o.textContent)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        chimes,
        json!(["Không có", "Nhạc hiệu"]),
        "only chimes are offered"
    );
    type_into(c, Locator::Id("s-title"), "Bản tin ngày làm việc").await;
    click(
        c,
        Locator::XPath("//div[@class='checks']/label[contains(., 'Bản tin sáng')]/input"),
    )
    .await;
    click(c, Locator::Css("input[name='targets.villages']")).await;
    c.find(Locator::Css("#s-kind option[value='weekly']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(c, Locator::Css("button[data-days='mon tue wed thu fri']")).await;
    c.execute(
        "document.getElementById('s-time-pick').value = '06:30'",
        vec![],
    )
    .await
    .unwrap();
    click(c, Locator::Css("button[data-add-time]")).await;
    c.find(Locator::Css("#s-chime option[value]:not([value=''])"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    type_into(c, Locator::Id("s-from"), "31/02/2026").await;
    click(c, Locator::Id("schedule-save")).await;
    wait_in(c, "#schedule-form .msg.error", "dd/mm/yyyy").await;
    let from = c.find(Locator::Id("s-from")).await.unwrap();
    from.clear().await.unwrap();
    from.send_keys("1/12/2026").await.unwrap();
    click(c, Locator::Id("schedule-save")).await;
    wait_in(c, "#flash", "Đã lưu lịch phát").await;
    let row = c
        .find(Locator::XPath(
            "//tr[.//strong[text()='Bản tin ngày làm việc']]",
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "♪ Nhạc hiệu → Bản tin sáng",
        "Hằng tuần (T2, T3, T4, T5, T6) 06:30",
        "từ 01/12/2026",
    ] {
        assert!(row.contains(want), "{want:?} not in {row}");
    }
}

async fn technician_sets_a_volume(c: &Client, base: &str) {
    as_user(c, base, "kythuat").await;
    look(c, base, "technician", "places", "/ui/places").await;
    let node = look(c, base, "technician", "node", "/ui/nodes/1").await;
    // Its health over time: charts drawn from the heartbeats so far, its plays beside.
    assert!(node.contains("Sức khoẻ theo thời gian") && node.contains("Nhật ký phát"));
    let bars = "return document.querySelectorAll('#chart-online rect').length > 1 && document.querySelector('#chart-rtt polyline') !== null";
    wait_js(c, bars, "health charts").await;
    // On the phone: the node must be online to answer.
    wait_in(c, "#node-now", "Trực tuyến").await;
    c.execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    let form = "form:has(input[value='set_volume'])";
    let volume = c
        .find(Locator::Css(&format!("{form} input[name=volume]")))
        .await
        .unwrap();
    volume.clear().await.unwrap();
    volume.send_keys("65").await.unwrap();
    click(c, Locator::Css(&format!("{form} button"))).await;
    wait_in(c, &format!("{form} .msg.ok"), "Cụm loa đã thực hiện").await;
    wait_in(c, "#node-health", "65").await;
    let still = c
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(still, json!(true), "the page reloaded");
    let page = measure(c).await;
    let text = page["text"].as_str().unwrap();
    assert!(text.contains("Đặt âm lượng 65"), "{text}");
    std::fs::write(
        shots().join("technician-command-phone.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
}

async fn admin_keeps_places_and_users(c: &Client, base: &str) {
    as_user(c, base, "admin").await;
    look(c, base, "admin", "users", "/ui/users").await;
    look(c, base, "admin", "audit", "/ui/audit").await;
    look(c, base, "admin", "alerts", "/ui/alerts").await;
    c.set_window_size(1280, 900).await.unwrap();
    c.goto(&format!("{base}/ui/places")).await.unwrap();
    type_into(c, Locator::Id("v-name"), "Thôn Dương Liễu").await;
    click(
        c,
        Locator::Css("form[data-api='/api/v1/villages'] button[type=submit]"),
    )
    .await;
    wait_in(c, "#flash", "Đã thêm thôn").await;
    // Rename one in place.
    let bac = "//table[@id='village-table']//tr[td[1][text()='Thôn Bắc Sơn']]";
    click(c, Locator::XPath(&format!("{bac}//summary"))).await;
    let name = c
        .find(Locator::XPath(&format!("{bac}//input[@name='name']")))
        .await
        .unwrap();
    name.clear().await.unwrap();
    name.send_keys("Thôn Bắc Sơn Thượng").await.unwrap();
    click(c, Locator::XPath(&format!("{bac}//button[@type='submit']"))).await;
    wait_in(c, "#flash", "Đã lưu thôn").await;
    let places = look(c, base, "admin", "places", "/ui/places").await;
    let names: Vec<String> = c
        .execute(
            "return [...document.querySelectorAll('#village-table tbody tr td:first-child')].map(td => td.textContent)",
            vec![],
        )
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "Thôn Bắc Sơn Thượng",
            "Thôn Dương Liễu",
            "Thôn Đồng Tâm",
            "Thôn Hải Hà",
            "Thôn Nam Hải",
            "Tổ dân phố Tân Tiến"
        ],
        "Vietnamese order: Đ right after D\n{places}"
    );
    // Disable the viewer: asked first, then said.
    c.set_window_size(1280, 900).await.unwrap();
    c.goto(&format!("{base}/ui/users")).await.unwrap();
    click(
        c,
        Locator::XPath("//tr[td[1][text()='xem']]//button[contains(@data-post, '/disable')]"),
    )
    .await;
    let asked = alert_text(c).await;
    assert!(asked.contains("xem"), "{asked}");
    c.accept_alert().await.unwrap();
    wait_in(c, "#flash", "Đã khoá xem").await;
    let row = c
        .find(Locator::XPath("//tr[td[1][text()='xem']]"))
        .await
        .unwrap();
    assert!(row.text().await.unwrap().contains("Đã khoá"));
}
