//! The web UI in real headless Chromium (Debian's chromium + chromium-driver, installed by
//! `./loa deps`), against a real `controller demo` process: log in -> upload -> submit ->
//! approve as another user -> schedule -> see it in the week view; and the English switch.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

mod fleet;
mod mic;
mod technician;
mod walk;

/// Kills a child process when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../audio-samples")
        .canonicalize()
        .unwrap()
}

/// `controller demo` on a free port; its URL once it says it listens.
fn start_controller(data: &Path) -> (Proc, String) {
    start_controller_with(data, &[])
}

fn start_controller_with(data: &Path, extra: &[&str]) -> (Proc, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .args(["demo", "--listen", "127.0.0.1:0", "--nodes", "2"])
        .args(extra)
        .arg("--data")
        .arg(data)
        .arg("--samples")
        .arg(samples())
        .env("LOA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start controller");
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            return (proc, url.trim_end_matches('/').to_owned());
        }
    }
    panic!("controller exited before listening");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_browser(profile: &Path) -> (Proc, Client) {
    start_browser_with(profile, &[]).await
}

async fn start_browser_with(profile: &Path, extra: &[String]) -> (Proc, Client) {
    let driver = Path::new("/usr/bin/chromedriver");
    assert!(
        driver.exists() && Path::new("/usr/bin/chromium").exists(),
        "Chromium and ChromeDriver are needed (Debian packages chromium and chromium-driver; `./loa deps` installs them)"
    );
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let url = format!("http://127.0.0.1:{port}");
    // Ready when /status answers.
    let started = Instant::now();
    while reqwest::get(format!("{url}/status")).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--window-size=1280,1000",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.extend(extra.iter().cloned());
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
    });
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&url)
        .await
        .expect("WebDriver session");
    (proc, client)
}

async fn click(c: &Client, at: Locator<'_>) {
    c.find(at).await.unwrap().click().await.unwrap();
}

async fn type_into(c: &Client, at: Locator<'_>, text: &str) {
    c.find(at).await.unwrap().send_keys(text).await.unwrap();
}

async fn submit_login(c: &Client, base: &str, user: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    type_into(c, Locator::Id("username"), user).await;
    type_into(c, Locator::Id("password"), password).await;
    click(c, Locator::Id("login")).await;
}

async fn login(c: &Client, base: &str, user: &str) {
    submit_login(c, base, user, "loalang-demo").await;
    wait_path(c, "/").await;
}

async fn wait_path(c: &Client, path: &str) {
    let started = Instant::now();
    loop {
        if c.current_url().await.unwrap().path() == path {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never reached {path}: at {}",
            c.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the row of item `id` contains every one of `needles`. The page reloads
/// after each action, so a row read mid-reload is simply read again.
async fn wait_row(c: &Client, id: &str, needles: &[&str]) {
    let started = Instant::now();
    loop {
        let text = match c.find(Locator::Css(&format!("tr[data-id='{id}']"))).await {
            Ok(row) => row.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if needles.iter().all(|n| text.contains(n)) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "row {id} never showed {needles:?}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Waits until the page source contains `text`.
async fn wait_text(c: &Client, text: &str) -> String {
    let started = Instant::now();
    loop {
        let html = c.source().await.unwrap_or_default(); // mid-navigation: read again
        if html.contains(text) {
            return html;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "page never showed {text:?}:\n{html}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_upload_approve_schedule_and_see_the_week() {
    let dir = tempfile::tempdir().unwrap();
    let (_controller, base) = start_controller(&dir.path().join("data"));
    let (_driver, c) = start_browser(&dir.path().join("profile")).await;

    // Editor: log in, upload with the form, submit for approval.
    login(&c, &base, "bientap").await;
    wait_text(&c, "Tổng quan").await;
    c.goto(&format!("{base}/ui/content/new")).await.unwrap();
    type_into(&c, Locator::Id("up-title"), "Thông báo lịch lấy nước").await;
    let file = samples().join("announcement.mp3");
    type_into(&c, Locator::Id("up-file"), &file.to_string_lossy()).await;
    click(&c, Locator::Id("upload-button")).await;
    wait_path(&c, "/ui/content").await;
    wait_text(&c, "Thông báo lịch lấy nước").await;
    let row = c
        .find(Locator::XPath(
            "//tr[.//strong[text()='Thông báo lịch lấy nước']]",
        ))
        .await
        .unwrap();
    let id = row.attr("data-id").await.unwrap().unwrap();
    row.find(Locator::Css("button[data-submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_row(&c, &id, &["chờ duyệt"]).await;
    // The editor's menu has no approval queue.
    assert!(!c.source().await.unwrap().contains("href=\"/ui/approvals\""));
    click(&c, Locator::Css("header form button")).await;
    wait_path(&c, "/login").await;

    // Approver: approve it from the queue.
    login(&c, &base, "pheduyet").await;
    c.goto(&format!("{base}/ui/approvals")).await.unwrap();
    // The approver can listen first: a whole player, not a sliver of a table cell.
    wait_text(&c, "approval-table").await;
    let width = c
        .execute(
            "return document.querySelector('#approval-table audio').getBoundingClientRect().width",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        width.as_f64().unwrap_or(0.0) >= 200.0,
        "the queue's player is {width} px wide"
    );
    wait_text(&c, "Thông báo lịch lấy nước").await;
    click(&c, Locator::Css(&format!("button[data-approve='{id}']"))).await;
    wait_text(&c, "Không có nội dung chờ duyệt").await;
    // The audit log says it in words: what was done to what, statuses by name.
    c.goto(&format!("{base}/ui/audit")).await.unwrap();
    let audit = wait_text(&c, "Duyệt nội dung").await;
    assert!(audit.contains("chờ duyệt → đã duyệt"), "{audit}");
    for machine in ["approve content", "\"pending\"", "{&quot;"] {
        assert!(!audit.contains(machine), "{machine} in:\n{audit}");
    }

    // Schedule it daily at 07:30 for the first village, from the editor's plain choices.
    c.goto(&format!("{base}/ui/schedules")).await.unwrap();
    type_into(&c, Locator::Id("s-title"), "Lịch lấy nước hằng ngày").await;
    click(
        &c,
        Locator::Css(&format!("input[name='content_ids'][value='{id}']")),
    )
    .await;
    click(&c, Locator::Css("input[name='targets.villages']")).await;
    // As people write it: "7h30".
    type_into(&c, Locator::Id("s-times"), "7h30").await;
    click(&c, Locator::Id("schedule-save")).await;
    wait_text(&c, "Hằng ngày lúc 07:30").await;

    // Next week's view (Monday to Sunday) shows it every day in that village, at 07:30
    // local time; this week's shows it only from now on.
    let next_week = (chrono::Utc::now() + chrono::Duration::days(7)).format("%Y-%m-%d");
    let week = format!("{base}/ui/week?from={next_week}");
    c.goto(&week).await.unwrap();
    let html = wait_text(&c, "07:30 Lịch lấy nước hằng ngày").await;
    assert_eq!(
        html.matches("07:30 Lịch lấy nước hằng ngày").count(),
        7,
        "one play a day for a week"
    );
    let monday = html.find(">T2 ").expect("a Monday column");
    assert!(
        monday < html.find(">CN ").unwrap(),
        "weeks run Monday to Sunday"
    );

    // Move it to 08:15 with the editor: the week follows.
    c.goto(&format!("{base}/ui/schedules")).await.unwrap();
    click(
        &c,
        Locator::XPath("//tr[.//strong[text()='Lịch lấy nước hằng ngày']]//a"),
    )
    .await;
    wait_text(&c, "Sửa lịch phát").await;
    let times = c.find(Locator::Id("s-times")).await.unwrap();
    assert_eq!(times.prop("value").await.unwrap().as_deref(), Some("07:30"));
    times.clear().await.unwrap();
    times.send_keys("08:15").await.unwrap();
    click(&c, Locator::Id("schedule-save")).await;
    wait_text(&c, "Hằng ngày lúc 08:15").await;
    c.goto(&week).await.unwrap();
    let html = wait_text(&c, "08:15 Lịch lấy nước hằng ngày").await;
    assert_eq!(html.matches("08:15 Lịch lấy nước hằng ngày").count(), 7);
    assert!(!html.contains("07:30 Lịch lấy nước"));

    // English on request, remembered.
    c.goto(&format!("{base}/ui/week?lang=en")).await.unwrap();
    wait_text(&c, "This week").await;
    c.goto(&format!("{base}/ui/schedules")).await.unwrap();
    wait_text(&c, "Daily at 08:15").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_shows_a_message_and_bad_uploads_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let (_controller, base) = start_controller(&dir.path().join("data"));
    let (_driver, c) = start_browser(&dir.path().join("profile")).await;
    submit_login(&c, &base, "bientap", "sai").await;
    wait_text(&c, "Sai tên đăng nhập hoặc mật khẩu").await;
    // A bad link is a page, not JSON.
    c.goto(&format!("{base}/ui/khong-co-trang-nay"))
        .await
        .unwrap();
    let missing = wait_text(&c, "Không có trang này").await;
    assert!(!missing.contains("\"error\""), "{missing}");

    login(&c, &base, "bientap").await;
    c.goto(&format!("{base}/ui/content/new")).await.unwrap();
    type_into(&c, Locator::Id("up-title"), "Không phải âm thanh").await;
    let not_audio = dir.path().join("notes.mp3");
    std::fs::write(
        &not_audio,
        "Biên bản họp thôn, không phải âm thanh.\n".repeat(100),
    )
    .unwrap();
    type_into(&c, Locator::Id("up-file"), &not_audio.to_string_lossy()).await;
    click(&c, Locator::Id("upload-button")).await;
    wait_text(&c, "Đây không phải tệp âm thanh").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/ui/content/new");

    // Editing an approved item's title sends it back for approval.
    c.goto(&format!("{base}/ui/content?status=approved"))
        .await
        .unwrap();
    let row = c
        .find(Locator::XPath("//tr[.//strong[text()='Bản tin sáng']]"))
        .await
        .unwrap();
    let id = row.attr("data-id").await.unwrap().unwrap();
    c.goto(&format!("{base}/ui/content?edit={id}"))
        .await
        .unwrap();
    wait_text(&c, "sẽ đưa nó về chờ duyệt lại").await;
    let title = c.find(Locator::Id("e-title")).await.unwrap();
    title.clear().await.unwrap();
    title.send_keys("Bản tin sáng (đã sửa)").await.unwrap();
    click(&c, Locator::Css("#edit-form button[type=submit]")).await;
    wait_row(&c, &id, &["Bản tin sáng (đã sửa)", "chờ duyệt"]).await;
    c.close().await.unwrap();
}

/// The text of the element with this id (empty while the page reloads).
async fn text_of(c: &Client, id: &str) -> String {
    match c.find(Locator::Id(id)).await {
        Ok(el) => el.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_calls_an_emergency_watches_it_reach_every_node_and_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_controller, base) = start_controller(&dir.path().join("data"));
    let (_driver, c) = start_browser(&dir.path().join("profile")).await;
    // An editor has no red button.
    login(&c, &base, "bientap").await;
    assert!(!c.source().await.unwrap().contains("emergency-button"));
    click(&c, Locator::Css("header form button")).await;
    wait_path(&c, "/login").await;

    login(&c, &base, "pheduyet").await;
    click(&c, Locator::Css("a.emergency-button")).await;
    wait_path(&c, "/ui/emergency").await;
    type_into(&c, Locator::Id("e-title"), "Bão số 5").await;
    type_into(
        &c,
        Locator::Id("e-text"),
        "Bão số 5 sắp đổ bộ. Tàu thuyền vào nơi tránh trú ngay.",
    )
    .await;
    click(&c, Locator::Css("form.emergency button[type=submit]")).await;
    // Confirmed first: it cuts into everything.
    let asked = c.get_alert_text().await.unwrap();
    assert!(asked.contains("NGAY"), "{asked}");
    c.accept_alert().await.unwrap();
    // The live page: both demo nodes confirm, without a reload.
    let started = Instant::now();
    loop {
        let path = c.current_url().await.unwrap().path().to_owned();
        let (reached, total) = (text_of(&c, "reached").await, text_of(&c, "total").await);
        if path.starts_with("/ui/emergency/") && total == "2" && reached == "2" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "reach never 2 / 2 at {path}: {reached} / {total}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let table = text_of(&c, "reach-nodes").await;
    assert!(table.contains("Đang phát"), "{table}");
    // The dashboard says it is on air.
    c.goto(&base).await.unwrap();
    wait_text(&c, "Đang phát khẩn cấp: Bão số 5").await;
    c.back().await.unwrap();
    // Stopped, with a confirmation; the page says so.
    click(&c, Locator::Id("stop")).await;
    c.accept_alert().await.unwrap();
    wait_text(&c, "Đã dừng lúc").await;
    c.goto(&base).await.unwrap();
    wait_text(&c, "Tổng quan").await;
    assert!(!c.source().await.unwrap().contains("Đang phát khẩn cấp"));
    c.close().await.unwrap();
}

/// The demo's API as a logged-in user.
async fn api_login(base: &str, user: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": user, "password": "loalang-demo" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (http, login["token"].as_str().unwrap().to_string())
}

async fn api_get(api: &(reqwest::Client, String), base: &str, path: &str) -> serde_json::Value {
    api.0
        .get(format!("{base}{path}"))
        .bearer_auth(&api.1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
