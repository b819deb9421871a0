//! The technician's side: a node added and its enrolment code shown once; a demo node
//! watched in step, sent a test tone whose answer comes back without a reload, and the
//! new-code flow that asks first.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn technician_adds_a_node_and_sees_its_enrolment_code() {
    let dir = tempfile::tempdir().unwrap();
    let (_controller, base) = start_controller(&dir.path().join("data"));
    let (_driver, c) = start_browser(&dir.path().join("profile")).await;
    login(&c, &base, "kythuat").await;
    c.goto(&format!("{base}/ui/places")).await.unwrap();
    type_into(&c, Locator::Id("n-name"), "Cụm loa chợ").await;
    type_into(&c, Locator::Id("n-notes"), "Cột điện đầu chợ").await;
    click(
        &c,
        Locator::Css("form[data-api='/api/v1/nodes'] button[type=submit]"),
    )
    .await;
    // The answer shows in the form's message box (the page does not reload: the code is
    // shown once).
    let started = Instant::now();
    let message = loop {
        let text = match c
            .find(Locator::Css("form[data-api='/api/v1/nodes'] .msg.ok"))
            .await
        {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.starts_with("Đã thêm. Mã kích hoạt") {
            break text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no enrolment code shown"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    };
    let code = message.rsplit(' ').next().unwrap();
    let html = c.source().await.unwrap();
    assert_eq!(code.len(), 19, "XXXX-XXXX-XXXX-XXXX: {code}");
    // Technicians do not manage villages or commune settings.
    assert!(!html.contains("/api/v1/villages\""));
    assert!(!html.contains("/api/v1/communes/"));
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn technician_watches_a_demo_node_and_sends_it_a_test_tone() {
    let dir = tempfile::tempdir().unwrap();
    let (_controller, base) = start_controller(&dir.path().join("data"));
    let (_driver, c) = start_browser(&dir.path().join("profile")).await;
    login(&c, &base, "kythuat").await;
    c.goto(&format!("{base}/ui/places")).await.unwrap();
    click(&c, Locator::LinkText("Cụm loa 1")).await;
    wait_path(&c, "/ui/nodes/1").await;
    // The demo's node reports in within seconds: online, on its latest schedule, every
    // scheduled item on the node. The page refreshes itself: no reload.
    c.execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let html = c.source().await.unwrap_or_default();
        if html.contains("Trực tuyến, đúng lịch")
            && !html.contains("Đang tải về")
            && html.contains("Đã có trên cụm loa")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "node never in step:\n{html}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    click(
        &c,
        Locator::Css("form[data-api='/api/v1/nodes/1/commands'] input[value='test_tone'] ~ button"),
    )
    .await;
    // The command's result comes back into its form's message and the history, without
    // a reload.
    let tone_form =
        "form[data-api='/api/v1/nodes/1/commands']:has(input[value='test_tone']) .msg.ok";
    let started = Instant::now();
    loop {
        let said = match c.find(Locator::Css(tone_form)).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if said.contains("Cụm loa đã thực hiện") {
            assert!(said.contains("Phát âm thử 5 giây"), "{said}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no command result in the form: {said:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let still = c
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(still, json!(true), "the page reloaded");
    let started = Instant::now();
    loop {
        let html = c.source().await.unwrap_or_default();
        // In words, with what was asked: no event names, ids or wire JSON.
        if html.contains("Cụm loa đã thực hiện") {
            assert!(html.contains("Phát âm thử 5 giây"), "{html}");
            assert!(html.contains("Đã gửi lệnh"), "{html}");
            for machine in ["command_done", "{&quot;type", "{\"type"] {
                assert!(!html.contains(machine), "{machine} in:\n{html}");
            }
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no command result:\n{html}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The volume box shows what the node reported, not a default.
    let volume = c
        .execute(
            "return document.querySelector('input[name=volume]').value",
            vec![],
        )
        .await
        .unwrap();
    let health = c.source().await.unwrap();
    assert!(
        volume
            .as_str()
            .is_some_and(|v| health.contains(&format!("Âm lượng</th><td>{v}</td>"))),
        "volume box {volume} is not the reported volume"
    );
    // Restarting asks first, naming the node; declined, nothing is sent.
    click(
        &c,
        Locator::Css("form[data-api='/api/v1/nodes/1/commands'] input[value='restart'] ~ button"),
    )
    .await;
    let asked = c.get_alert_text().await.unwrap();
    assert!(asked.contains("“Cụm loa 1”"), "{asked}");
    c.dismiss_alert().await.unwrap();
    // A new enrolment code cuts the node off: asked first, saying so; then the code is
    // shown once, with the command that enrols the node again.
    click(&c, Locator::Css("button[data-code-panel]")).await;
    let asked = c.get_alert_text().await.unwrap();
    assert!(
        asked.contains("“Cụm loa 1”") && asked.contains("mất kết nối"),
        "{asked}"
    );
    c.accept_alert().await.unwrap();
    let shown = wait_text(&c, "speaker-node enroll --server").await;
    let code = text_of(&c, "node-code").await;
    assert!(
        code.contains("--code ") && code.contains("Mã kích hoạt mới"),
        "{code}"
    );
    assert!(shown.contains(&base), "{code}");
    c.close().await.unwrap();
}
