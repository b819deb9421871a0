//! The security review's findings, each kept as a test (docs/SECURITY.md lists them):
//! login limits that hold under a burst and behind a proxy, enrolment codes that are used
//! once and expire, API tokens that expire and are revoked one by one, blobs scoped to
//! their commune, emergency schedules left to leaders, and hostile text and paths.

// Test helpers: a failed set-up step should fail the test loudly.
#![allow(clippy::unwrap_used)]

mod common;

use common::{PASSWORD, Server, approved_item, json_of};
use reqwest::{Client, Method};
use serde_json::{Value, json};

async fn login_from(s: &Server, username: &str, password: &str, client_ip: Option<&str>) -> u16 {
    let mut req = Client::new()
        .post(format!("{}/api/v1/auth/login", s.url))
        .json(&json!({ "username": username, "password": password }));
    if let Some(ip) = client_ip {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn enrol_from(s: &Server, code: &str, client_ip: &str) -> (u16, Value) {
    let res = Client::new()
        .post(format!("{}/api/v1/nodes/enroll", s.url))
        .header("x-forwarded-for", client_ip)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    json_of(res).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_wrong_logins_gets_five_tries_and_locks_only_its_sender() {
    // The server behind nginx on this machine: 127.0.0.1 is the trusted proxy.
    let s = Server::start_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    s.user("editor2", "editor").await;
    let attacker = "203.0.113.9";
    let burst = (0..25).map(|_| login_from(&s, "editor2", "đoán bừa", Some(attacker)));
    let codes = futures_util::future::join_all(burst).await;
    let tried = codes.iter().filter(|c| **c == 401).count();
    let refused = codes.iter().filter(|c| **c == 429).count();
    assert_eq!(tried + refused, 25, "{codes:?}");
    assert!(tried <= 5, "{tried} wrong passwords checked: {codes:?}");
    // The attacker's address is locked for that user, however the name is written.
    for name in ["editor2", " editor2", "editor2 ", "EDITOR2"] {
        assert_eq!(
            login_from(&s, name, PASSWORD, Some(attacker)).await,
            429,
            "{name:?}"
        );
    }
    // Everyone else behind the same proxy is not: the real user logs in, and a
    // technician enrols a node even from the attacker's address (counted apart).
    assert_eq!(
        login_from(&s, "editor2", PASSWORD, Some("198.51.100.7")).await,
        200
    );
    let (code, body) = enrol_from(&s, "AAAA-BBBB-CCCC-DDDD", attacker).await;
    assert_eq!(code, 403, "{body}");
    // The proxy's own address (no header) is its own client too.
    assert_eq!(login_from(&s, "editor2", PASSWORD, None).await, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_is_ignored_unless_the_proxy_is_trusted() {
    let s = Server::start().await;
    s.user("editor2", "editor").await;
    for i in 0..5 {
        let spoofed = format!("10.9.8.{i}");
        assert_eq!(login_from(&s, "editor2", "sai", Some(&spoofed)).await, 401);
    }
    assert_eq!(
        login_from(&s, "editor2", PASSWORD, Some("10.9.8.200")).await,
        429
    );
}

/// A node added in a new village: its id and enrolment code.
async fn new_node(admin: &common::Api, name: &str) -> (i64, String) {
    let village = admin.village(&format!("Thôn {name}")).await;
    let (code, node) = json_of(
        admin
            .post(
                "/api/v1/nodes",
                json!({ "name": name, "village_id": village }),
            )
            .await,
    )
    .await;
    assert_eq!(code, 201, "{node}");
    (
        node["id"].as_i64().unwrap(),
        node["enrollment_code"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn enrolment_codes_work_once_even_at_once_and_expire_after_a_week() {
    let s = Server::start().await;
    let admin = s.client("quantri", "admin").await;
    let (_, code) = new_node(&admin, "loa-a").await;
    // Eight boards race with one code: one gets a token.
    let race = (0..8).map(|i| {
        let (s, code) = (&s, code.clone());
        async move { enrol_from(s, &code, &format!("192.0.2.{i}")).await }
    });
    let results = futures_util::future::join_all(race).await;
    let won: Vec<_> = results.iter().filter(|(c, _)| *c == 200).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert!(won[0].1["token"].as_str().unwrap().starts_with("ln_"));
    assert!(results.iter().all(|(c, _)| *c == 200 || *c == 403));
    // Replayed later: refused.
    assert_eq!(enrol_from(&s, &code, "192.0.2.50").await.0, 403);
    // A code past its week says so.
    let (id, code) = new_node(&admin, "loa-b").await;
    s.cms
        .store()
        .call(move |c| {
            c.execute(
                "UPDATE nodes SET enrollment_code_expires_at = 1 WHERE id = ?1",
                [id],
            )
            .map_err(cms::CmsError::from)
        })
        .await
        .unwrap();
    let (status, body) = enrol_from(&s, &code, "192.0.2.60").await;
    assert_eq!(status, 403);
    assert!(
        body["message"].as_str().unwrap().contains("hết hạn"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_expire_are_listed_and_revoked_one_by_one() {
    let s = Server::start().await;
    let admin = s.client("quantri", "admin").await;
    let editor = s.client("bientap", "editor").await;
    for days in [0, 731] {
        let res = editor
            .post(
                "/api/v1/tokens",
                json!({ "name": "x", "expires_days": days }),
            )
            .await;
        assert_eq!(res.status(), 400, "{days} days");
    }
    let (code, made) = json_of(
        editor
            .post(
                "/api/v1/tokens",
                json!({ "name": "Báo cáo quý", "expires_days": 30 }),
            )
            .await,
    )
    .await;
    assert_eq!(code, 201);
    let script = common::Api {
        url: s.url.clone(),
        token: made["token"].as_str().unwrap().to_owned(),
        http: Client::new(),
    };
    assert_eq!(script.get("/api/v1/content").await.status(), 200);
    let (_, mine) = json_of(editor.get("/api/v1/tokens").await).await;
    let token = &mine.as_array().unwrap()[0];
    assert_eq!(token["name"], "Báo cáo quý");
    assert!(token.get("token").is_none() && !token.to_string().contains(&script.token));
    assert!(token["last_used_at"].is_string(), "{token}");
    let expires =
        chrono::DateTime::parse_from_rfc3339(token["expires_at"].as_str().unwrap()).unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.9..=30.0).contains(&days), "{days}");
    // Another user neither sees nor revokes it; the admin sees it.
    let other = s.client("bientap2", "editor").await;
    let (_, theirs) = json_of(other.get("/api/v1/tokens").await).await;
    assert_eq!(theirs, json!([]));
    let path = format!("/api/v1/tokens/{}", token["id"]);
    assert_eq!(other.delete(&path).await.status(), 404);
    let (_, all) = json_of(admin.get("/api/v1/tokens").await).await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|t| t["username"] == "bientap")
    );
    // Revoked: it stops at once.
    assert_eq!(editor.delete(&path).await.status(), 200);
    assert_eq!(script.get("/api/v1/content").await.status(), 401);
    // An expired one stops too.
    let (_, made) = json_of(
        editor
            .post("/api/v1/tokens", json!({ "name": "ngắn" }))
            .await,
    )
    .await;
    let late = common::Api {
        token: made["token"].as_str().unwrap().to_owned(),
        ..script
    };
    s.cms
        .store()
        .call(|c| {
            c.execute("UPDATE tokens SET expires_at = 1 WHERE kind = 'api'", [])
                .map_err(cms::CmsError::from)
        })
        .await
        .unwrap();
    assert_eq!(late.get("/api/v1/content").await.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn blobs_are_read_only_by_their_commune_and_nodes_by_what_they_may_play() {
    let s = Server::start().await;
    let (editor, _, id) = approved_item(&s).await;
    let (_, item) = json_of(editor.get(&format!("/api/v1/content/{id}")).await).await;
    let approved = item["sha256"].as_str().unwrap().to_owned();
    let draft = editor.upload_sample("Bản nháp", "chime.wav").await["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(editor.get(&format!("/content/{draft}")).await.status(), 200);
    // A viewer of another commune: both look missing.
    let other = s
        .cms
        .ensure_commune("van-don", "Đặc khu Vân Đồn")
        .await
        .unwrap();
    let req = cms::NewUserRequest {
        username: "xem-vandon".into(),
        password: PASSWORD.into(),
        role: "viewer".into(),
        display_name: None,
        commune_id: Some(other.id),
        province_wide: false,
    };
    s.cms.create_user(None, req).await.unwrap();
    let outsider = s.login("xem-vandon").await;
    for sha in [&approved, &draft] {
        assert_eq!(outsider.get(&format!("/content/{sha}")).await.status(), 404);
    }
    // A node of the commune: approved audio yes, a draft no.
    let admin = s.client("quantri", "admin").await;
    let (_, code) = new_node(&admin, "loa-a").await;
    let (_, enrolled) = enrol_from(&s, &code, "192.0.2.1").await;
    let node = common::Api {
        url: s.url.clone(),
        token: enrolled["token"].as_str().unwrap().to_owned(),
        http: Client::new(),
    };
    assert_eq!(
        node.get(&format!("/content/{approved}")).await.status(),
        200
    );
    assert_eq!(node.get(&format!("/content/{draft}")).await.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_leaders_change_or_delete_an_emergency_schedule() {
    let s = Server::start().await;
    let (editor, approver, id) = approved_item(&s).await;
    let admin = s.client("quantri", "admin").await;
    let village = admin.village("Thôn Đông").await;
    let schedule = |priority: &str| {
        json!({
            "title": "Cảnh báo bão",
            "content_ids": [id],
            "targets": { "villages": [village] },
            "priority": priority,
            "rule": { "daily": ["07:00"] },
        })
    };
    let (code, made) = json_of(
        approver
            .post("/api/v1/schedules", schedule("emergency"))
            .await,
    )
    .await;
    assert_eq!(code, 201, "{made}");
    let path = format!("/api/v1/schedules/{}", made["id"]);
    for priority in ["priority", "emergency"] {
        let res = editor
            .req(Method::PUT, &path)
            .json(&schedule(priority))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "editor PUT {priority}");
    }
    assert_eq!(editor.delete(&path).await.status(), 403);
    let (_, kept) = json_of(approver.get(&path).await).await;
    assert_eq!(kept["priority"], "emergency");
    assert_eq!(approver.delete(&path).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_and_script_in_text_fields_stay_text() {
    let s = Server::start().await;
    let admin = s.client("quantri", "admin").await;
    let hostile = [
        "Robert'); DROP TABLE content;--",
        "<script>alert('xss')</script>",
        "\" OR 1=1 --",
        "<img src=x onerror=alert(1)>",
    ];
    for text in hostile {
        let (code, village) = json_of(
            admin
                .post("/api/v1/villages", json!({ "name": text }))
                .await,
        )
        .await;
        assert_eq!(code, 201, "{text}: {village}");
        let relay =
            json!({ "title": text, "url": "http://radio.example/live", "duration_ms": 60000 });
        let (code, item) = json_of(admin.post("/api/v1/content/relay", relay).await).await;
        assert_eq!(code, 201, "{text}: {item}");
        let (_, back) = json_of(admin.get(&format!("/api/v1/content/{}", item["id"])).await).await;
        assert_eq!(back["title"], text);
    }
    let (_, all) = json_of(admin.get("/api/v1/content").await).await;
    assert_eq!(all.as_array().unwrap().len(), hostile.len());
    for page in ["/ui/content", "/ui/places"] {
        let html = admin.get(page).await.text().await.unwrap();
        assert!(!html.contains("<script>alert"), "{page}");
        assert!(!html.contains("<img src=x"), "{page}");
        assert!(html.contains("&lt;script&gt;alert"), "{page}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_that_climb_out_are_refused() {
    let s = Server::start().await;
    let (editor, _, _) = approved_item(&s).await;
    for path in [
        "/static/..%2f..%2fCargo.toml",
        "/static/%2e%2e/%2e%2e/loa.db",
        "/static/....//loa.db",
        "/content/..%2floa.db",
        "/content/%2e%2e%2f%2e%2e%2floa.db",
        "/public/default/audio/..%2f..%2floa.db",
        "/api/v1/content/1%2f..%2f..%2floa.db",
    ] {
        let res = editor.get(path).await;
        let status = res.status().as_u16();
        let body = res.bytes().await.unwrap();
        assert!((400..500).contains(&status), "{path}: {status}");
        assert!(!body.starts_with(b"SQLite format"), "{path}");
    }
}
