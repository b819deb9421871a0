//! Approval, schedules, preview, quiet hours, audit, login and CSRF over real HTTP.

mod common;

use common::{PASSWORD, Server, approved_item, json_of};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn approval_workflow() {
    let s = Server::start().await;
    let editor = s.client("bientap", "editor").await;
    let approver = s.client("pheduyet", "approver").await;
    let admin = s.client("quantri", "admin").await;
    let id = editor.upload_sample("Thông báo", "announcement.mp3").await["id"]
        .as_i64()
        .unwrap();
    let path = |a: &str| format!("/api/v1/content/{id}/{a}");

    // Draft cannot be approved; editors cannot approve at all.
    assert_eq!(
        approver.post(&path("approve"), json!({})).await.status(),
        409
    );
    assert_eq!(editor.post(&path("submit"), json!({})).await.status(), 200);
    assert_eq!(editor.post(&path("submit"), json!({})).await.status(), 409);
    assert_eq!(editor.post(&path("approve"), json!({})).await.status(), 403);
    // Reject needs a reason.
    assert_eq!(
        approver
            .post(&path("reject"), json!({ "reason": " " }))
            .await
            .status(),
        400
    );
    let (code, item) = json_of(
        approver
            .post(&path("reject"), json!({ "reason": "Sai ngày họp" }))
            .await,
    )
    .await;
    assert_eq!(
        (
            code,
            item["status"].as_str(),
            item["reject_reason"].as_str()
        ),
        (200, Some("rejected"), Some("Sai ngày họp"))
    );
    // Sent back unchanged, it would only be rejected again: fix it first.
    let (code, body) = json_of(editor.post(&path("submit"), json!({})).await).await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("chưa được sửa"),
        "{body}"
    );
    let (code, _) = json_of(
        editor
            .req(Method::PATCH, &format!("/api/v1/content/{id}"))
            .json(&json!({ "description": "Họp ngày 12/12" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200);
    // Resubmitted, the approver still sees why it came back; approval clears it.
    let (code, item) = json_of(editor.post(&path("submit"), json!({})).await).await;
    assert_eq!(
        (code, item["reject_reason"].as_str()),
        (200, Some("Sai ngày họp"))
    );
    let (code, item) = json_of(approver.post(&path("approve"), json!({})).await).await;
    assert_eq!((code, item["status"].as_str()), (200, Some("approved")));
    assert_eq!(item["approver"], "pheduyet");
    assert_eq!(item["reject_reason"], Value::Null);
    // Making it public keeps it approved; editing the title sends it back to pending.
    let (_, item) = json_of(
        editor
            .req(Method::PATCH, &format!("/api/v1/content/{id}"))
            .json(&json!({ "public": true }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (item["status"].as_str(), item["public"].as_bool()),
        (Some("approved"), Some(true))
    );
    let (_, item) = json_of(
        editor
            .req(Method::PATCH, &format!("/api/v1/content/{id}"))
            .json(&json!({ "title": "Thông báo (sửa)" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(item["status"], "pending");
    assert_eq!(item["approver"], Value::Null);
    assert_eq!(
        editor
            .req(Method::PATCH, &format!("/api/v1/content/{id}"))
            .json(&json!({ "colour": "red" }))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

    // Nobody approves their own item, admins included.
    let own = admin.upload_sample("Của admin", "chime.wav").await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        admin
            .post(&format!("/api/v1/content/{own}/submit"), json!({}))
            .await
            .status(),
        200
    );
    let (code, body) = json_of(
        admin
            .post(&format!("/api/v1/content/{own}/approve"), json!({}))
            .await,
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        approver
            .post(&format!("/api/v1/content/{own}/approve"), json!({}))
            .await
            .status(),
        200
    );

    // Every change is in the audit log, with before and after.
    let (code, log) = json_of(admin.get("/api/v1/audit").await).await;
    assert_eq!(code, 200);
    let actions: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "content" && e["entity_id"] == id)
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "update", "update", "approve", "submit", "update", "reject", "submit", "create"
        ]
    );
    let reject = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "reject")
        .unwrap();
    assert_eq!(reject["before"]["status"], "pending");
    assert_eq!(reject["after"]["status"], "rejected");
    assert_eq!(reject["username"], "pheduyet");
    assert_eq!(editor.get("/api/v1/audit").await.status(), 403);
}

fn daily(times: &[&str]) -> Value {
    json!({ "daily": times })
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_need_approved_content_and_respect_quiet_hours() {
    let s = Server::start().await;
    let (editor, approver, id) = approved_item(&s).await;
    let admin = s.client("quantri", "admin").await;
    let (_, village) = json_of(
        admin
            .post("/api/v1/villages", json!({ "name": "Thôn Đồng Tâm" }))
            .await,
    )
    .await;
    let v = village["id"].as_i64().unwrap();
    let draft = editor.upload_sample("Nháp", "chime.wav").await["id"]
        .as_i64()
        .unwrap();
    let body = |ids: Vec<i64>, rule: Value, priority: &str| json!({ "title": "Bản tin sáng", "content_ids": ids, "targets": { "villages": [v] }, "priority": priority, "rule": rule });
    let (code, err) = json_of(
        editor
            .post(
                "/api/v1/schedules",
                body(vec![draft], daily(&["06:00"]), "normal"),
            )
            .await,
    )
    .await;
    assert_eq!(code, 409, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("chưa được phê duyệt")
    );
    let (code, err) = json_of(
        editor
            .post(
                "/api/v1/schedules",
                body(vec![id], daily(&["22:30"]), "normal"),
            )
            .await,
    )
    .await;
    assert_eq!(code, 400, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("giờ yên tĩnh"),
        "{err}"
    );
    // Editors may not schedule emergencies; approvers may, in quiet hours too.
    assert_eq!(
        editor
            .post(
                "/api/v1/schedules",
                body(vec![id], daily(&["23:00"]), "emergency")
            )
            .await
            .status(),
        403
    );
    let (code, storm) = json_of(
        approver
            .post(
                "/api/v1/schedules",
                body(vec![id], daily(&["23:00"]), "emergency"),
            )
            .await,
    )
    .await;
    assert_eq!(code, 201, "{storm}");
    // Nor change, demote or delete one a leader made; the leader may.
    let path = format!("/api/v1/schedules/{}", storm["id"]);
    let demoted = body(vec![id], daily(&["06:00"]), "normal");
    let send = |api: &common::Api, method: reqwest::Method, b: Option<Value>| {
        let req = api.req(method, &path);
        let req = match b {
            Some(b) => req.json(&b),
            None => req,
        };
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send(&editor, Method::PUT, Some(demoted.clone())).await, 403);
    assert_eq!(send(&editor, Method::DELETE, None).await, 403);
    let kept = approver.get(&path).await.json::<Value>().await.unwrap();
    assert_eq!(kept["priority"], "emergency", "{kept}");
    assert_eq!(send(&approver, Method::PUT, Some(demoted)).await, 200);
    assert_eq!(send(&approver, Method::DELETE, None).await, 200);
    // Bad rules, targets and programs.
    for bad in [
        body(vec![id], json!({ "daily": [] }), "normal"),
        body(vec![id], json!({ "daily": ["25:00"] }), "normal"),
        body(vec![id], json!({ "cron": "every morning" }), "normal"),
        body(vec![], daily(&["06:00"]), "normal"),
        body(vec![id], daily(&["06:00"]), "loud"),
        json!({ "title": "x", "content_ids": [id], "targets": {}, "priority": "normal", "rule": daily(&["06:00"]) }),
        json!({ "title": "x", "content_ids": [id], "targets": { "villages": [9999] }, "priority": "normal", "rule": daily(&["06:00"]) }),
        json!({ "title": "x", "content_ids": [id], "targets": { "villages": [v] }, "priority": "normal", "rule": daily(&["06:00"]), "repeat": 0 }),
    ] {
        let (code, err) = json_of(editor.post("/api/v1/schedules", bad.clone()).await).await;
        assert!(code == 400 || code == 404, "{bad} -> {code} {err}");
    }
    let (code, created) = json_of(
        editor
            .post(
                "/api/v1/schedules",
                body(vec![id], daily(&["06:00"]), "normal"),
            )
            .await,
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert!(created["id"].as_i64().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_shows_exact_plays_with_conflicts() {
    let s = Server::start().await;
    let (editor, approver, id) = approved_item(&s).await;
    let admin = s.client("quantri", "admin").await;
    let tech = s.client("kythuat", "technician").await;
    let (_, v1) = json_of(
        admin
            .post("/api/v1/villages", json!({ "name": "Thôn 1" }))
            .await,
    )
    .await;
    let (_, v2) = json_of(
        admin
            .post("/api/v1/villages", json!({ "name": "Thôn 2" }))
            .await,
    )
    .await;
    let (v1, v2) = (v1["id"].as_i64().unwrap(), v2["id"].as_i64().unwrap());
    let (_, group) = json_of(
        admin
            .post(
                "/api/v1/groups",
                json!({ "name": "Ven biển", "village_ids": [v1, v2] }),
            )
            .await,
    )
    .await;
    let (code, node) = json_of(
        tech.post(
            "/api/v1/nodes",
            json!({ "name": "Cụm loa 1", "village_id": v1, "lat": 20.95, "lon": 107.07 }),
        )
        .await,
    )
    .await;
    assert_eq!(code, 201, "{node}");
    assert!(node["enrollment_code"].as_str().unwrap().len() >= 16);
    let n = node["id"].as_i64().unwrap();

    // 06:00 Vietnam every day to the group; a priority item at 06:00:05 on 1 Dec to village 1.
    let news = json!({ "title": "Bản tin", "content_ids": [id], "targets": { "groups": [group["id"]] }, "priority": "normal", "rule": daily(&["06:00"]) });
    let (code, body) = json_of(editor.post("/api/v1/schedules", news).await).await;
    assert_eq!(code, 201, "{body}");
    let urgent = json!({ "title": "Khẩn", "content_ids": [id], "targets": { "villages": [v1] }, "priority": "priority", "rule": { "once": "2026-12-01T06:00:05+07:00" } });
    let (code, body) = json_of(approver.post("/api/v1/schedules", urgent).await).await;
    assert_eq!(code, 201, "{body}");

    let (_, item) = json_of(editor.get(&format!("/api/v1/content/{id}")).await).await;
    let duration = chrono::Duration::milliseconds(item["duration_ms"].as_i64().unwrap());
    let restart = chrono::DateTime::parse_from_rfc3339("2026-11-30T23:00:05Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
        + duration;
    let restart = restart.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let window = "from=2026-11-30T17:00:00Z&to=2026-12-02T17:00:00Z";
    let (code, plays) = json_of(
        editor
            .get(&format!("/api/v1/schedules/preview?node={n}&{window}"))
            .await,
    )
    .await;
    assert_eq!(code, 200, "{plays}");
    let plays = plays.as_array().unwrap();
    let summary: Vec<(String, String, String)> = plays
        .iter()
        .map(|p| {
            (
                p["title"].as_str().unwrap().into(),
                p["start"].as_str().unwrap().into(),
                p["outcome"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "Bản tin".into(),
                "2026-11-30T23:00:00Z".into(),
                "interrupted".into()
            ),
            (
                "Khẩn".into(),
                "2026-11-30T23:00:05Z".into(),
                "complete".into()
            ),
            ("Bản tin".into(), restart, "complete".into()),
            (
                "Bản tin".into(),
                "2026-12-01T23:00:00Z".into(),
                "complete".into()
            ),
        ],
        "{plays:#?}"
    );
    assert_eq!(plays[0]["conflict"], true);
    assert_eq!(plays[3]["conflict"], false);
    // Village 2 only has the daily news.
    let (_, plays) = json_of(
        editor
            .get(&format!("/api/v1/schedules/preview?village={v2}&{window}"))
            .await,
    )
    .await;
    assert_eq!(plays.as_array().unwrap().len(), 2);
    // Bad previews.
    for q in [
        "",
        "node=1&village=1",
        &format!("node={n}&from=yesterday"),
        &format!("node={n}&from=2026-12-01T00:00:00Z&to=2027-03-01T00:00:00Z"),
        "node=99999",
    ] {
        let code = editor
            .get(&format!("/api/v1/schedules/preview?{q}"))
            .await
            .status()
            .as_u16();
        assert!(code == 400 || code == 404, "{q} -> {code}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn login_sessions_csrf_and_rate_limit() {
    let s = Server::start().await;
    s.user("bientap", "editor").await;
    let http = reqwest::Client::new();
    let login = |password: &str| {
        http.post(format!("{}/api/v1/auth/login", s.url))
            .json(&json!({ "username": "bientap", "password": password }))
            .send()
    };
    let res = login(PASSWORD).await.unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let csrf = body["csrf"].as_str().unwrap().to_owned();
    // The cookie reads; a cookie write without the CSRF token is refused.
    let get = http
        .get(format!("{}/api/v1/content", s.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let relay = json!({ "title": "x", "url": "http://r.example/a", "duration_ms": 1000 });
    let post = http
        .post(format!("{}/api/v1/content/relay", s.url))
        .header("cookie", &session)
        .json(&relay)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);
    let post = http
        .post(format!("{}/api/v1/content/relay", s.url))
        .header("cookie", &session)
        .header("x-csrf-token", "wrong")
        .json(&relay)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);
    let post = http
        .post(format!("{}/api/v1/content/relay", s.url))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .json(&relay)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 201);
    // Logout ends the session.
    let out = http
        .post(format!("{}/api/v1/auth/logout", s.url))
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let get = http
        .get(format!("{}/api/v1/content", s.url))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 401);
    // Garbage credentials.
    for auth in ["Bearer nope", "Basic YTpi", "Bearer "] {
        assert_eq!(
            http.get(format!("{}/api/v1/content", s.url))
                .header("authorization", auth)
                .send()
                .await
                .unwrap()
                .status(),
            401
        );
    }
    // Five wrong passwords, then even the right one waits.
    for _ in 0..5 {
        assert_eq!(login("sai mật khẩu").await.unwrap().status(), 401);
    }
    let res = login(PASSWORD).await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    // Malformed login bodies.
    for body in ["", "{", "[]", "{\"username\":1}"] {
        let res = http
            .post(format!("{}/api/v1/auth/login", s.url))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn communes_are_separate() {
    let s = Server::start().await;
    let (editor, _, id) = approved_item(&s).await;
    let other = s
        .cms
        .ensure_commune("van-don", "Đặc khu Vân Đồn")
        .await
        .unwrap();
    let req = cms::NewUserRequest {
        username: "vandon".into(),
        password: common::PASSWORD.into(),
        role: "editor".into(),
        display_name: None,
        commune_id: Some(other.id),
        province_wide: false,
    };
    s.cms.create_user(None, req).await.unwrap();
    let outsider = s.login("vandon").await;
    assert_eq!(
        outsider
            .get(&format!("/api/v1/content/{id}"))
            .await
            .status(),
        404
    );
    let (_, list) = json_of(outsider.get("/api/v1/content").await).await;
    assert_eq!(list, json!([]));
    let (_, communes) = json_of(outsider.get("/api/v1/communes").await).await;
    assert_eq!(communes.as_array().unwrap().len(), 1);
    assert_eq!(communes[0]["slug"], "van-don");
    assert_eq!(
        outsider
            .get(&format!(
                "/api/v1/content?commune={}",
                s.cms.default_commune()
            ))
            .await
            .status(),
        403
    );
    let (_, mine) = json_of(editor.get("/api/v1/content").await).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn commune_settings_move_quiet_hours() {
    let s = Server::start().await;
    let (editor, _, id) = approved_item(&s).await;
    let admin = s.client("quantri", "admin").await;
    let (_, village) = json_of(
        admin
            .post("/api/v1/villages", json!({ "name": "Thôn 1" }))
            .await,
    )
    .await;
    let cid = s.cms.default_commune();
    let patch = |body: Value| {
        admin
            .req(Method::PATCH, &format!("/api/v1/communes/{cid}"))
            .json(&body)
            .send()
    };
    for bad in [
        json!({ "tz": "Mars/Olympus" }),
        json!({ "quiet_start": "24:61" }),
        json!({ "loudness_target": 3.0 }),
        json!({ "colour": 1 }),
    ] {
        assert_eq!(patch(bad.clone()).await.unwrap().status(), 400, "{bad}");
    }
    let late = json!({ "title": "Muộn", "content_ids": [id], "targets": { "villages": [village["id"]] }, "priority": "normal", "rule": daily(&["22:30"]) });
    assert_eq!(
        editor
            .post("/api/v1/schedules", late.clone())
            .await
            .status(),
        400
    );
    let (code, commune) = json_of(
        patch(json!({ "quiet_start": "23:00", "quiet_end": "4:30" }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{commune}");
    assert_eq!(
        (
            commune["quiet_start"].as_str(),
            commune["quiet_end"].as_str()
        ),
        (Some("23:00"), Some("04:30"))
    );
    assert_eq!(editor.post("/api/v1/schedules", late).await.status(), 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_bodies_are_refused_cleanly() {
    let s = Server::start().await;
    let admin = s.client("quantri", "admin").await;
    let raw = |path: &str, body: Vec<u8>| {
        admin
            .req(Method::POST, path)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("/api/v1/villages", b"".to_vec(), 400),
        ("/api/v1/villages", b"{\"name\":".to_vec(), 400),
        ("/api/v1/villages", b"{\"name\": 7}".to_vec(), 400),
        (
            "/api/v1/villages",
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
            400,
        ),
        ("/api/v1/villages", deep.into_bytes(), 400),
        // An array is not an object, even where every field could be left out.
        ("/api/v1/tokens", b"[null, null]".to_vec(), 400),
        ("/api/v1/tokens", b" [\"x\"]".to_vec(), 400),
        (
            "/api/v1/villages",
            format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20)).into_bytes(),
            413,
        ),
        (
            "/api/v1/schedules",
            b"{\"title\":\"x\",\"content_ids\":\"all\"}".to_vec(),
            400,
        ),
        (
            "/api/v1/nodes",
            b"{\"name\":\"n\",\"village_id\":1,\"lat\":95,\"lon\":10}".to_vec(),
            400,
        ),
        (
            "/api/v1/users",
            b"{\"username\":\"a b\",\"password\":\"12345678\",\"role\":\"viewer\"}".to_vec(),
            400,
        ),
        (
            "/api/v1/users",
            b"{\"username\":\"ab\",\"password\":\"short\",\"role\":\"viewer\"}".to_vec(),
            400,
        ),
        (
            "/api/v1/users",
            b"{\"username\":\"ab\",\"password\":\"12345678\",\"role\":\"king\"}".to_vec(),
            400,
        ),
    ];
    for (path, body, status) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let (code, reply) = json_of(raw(path, body).await.unwrap()).await;
        assert_eq!(code, status, "{path} {shown}: {reply}");
        assert!(
            reply["error"].is_string() && reply["message"].is_string(),
            "{reply}"
        );
    }
    let (_, villages) = json_of(admin.get("/api/v1/villages").await).await;
    assert_eq!(villages, json!([]), "nothing stored");
    // The same name twice is a conflict, not a crash.
    assert_eq!(
        admin
            .post("/api/v1/villages", json!({ "name": "Thôn 1" }))
            .await
            .status(),
        201
    );
    assert_eq!(
        admin
            .post("/api/v1/villages", json!({ "name": "Thôn 1" }))
            .await
            .status(),
        409
    );
}

async fn desired(api: &common::Api, node: &Value) -> Value {
    json_of(
        api.get(&format!("/api/v1/nodes/{}/desired", node["id"]))
            .await,
    )
    .await
    .1
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_desired_state_changes_exactly_when_its_schedules_do() {
    let s = Server::start().await;
    let (editor, _, id) = approved_item(&s).await;
    let admin = s.client("quantri", "admin").await;
    let (_, v1) = json_of(
        admin
            .post("/api/v1/villages", json!({ "name": "Thôn 1" }))
            .await,
    )
    .await;
    let (_, v2) = json_of(
        admin
            .post("/api/v1/villages", json!({ "name": "Thôn 2" }))
            .await,
    )
    .await;
    let (_, node) = json_of(
        admin
            .post(
                "/api/v1/nodes",
                json!({ "name": "Cụm 1", "village_id": v1["id"] }),
            )
            .await,
    )
    .await;
    let empty = desired(&editor, &node).await;
    assert_eq!(empty["schedules"], json!([]));
    assert_eq!(empty["tz"], "Asia/Ho_Chi_Minh");
    let plan = |v: &Value| json!({ "title": "Bản tin", "content_ids": [id], "targets": { "villages": [v["id"]] }, "priority": "normal", "rule": daily(&["06:00"]) });
    assert_eq!(
        admin.post("/api/v1/schedules", plan(&v1)).await.status(),
        201
    );
    let one = desired(&editor, &node).await;
    assert_ne!(one["version"], empty["version"]);
    let sched = &one["schedules"][0];
    assert_eq!(sched["program"]["items"][0]["content_id"], id);
    assert_eq!(
        sched["program"]["items"][0]["sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert!(
        sched["program"]["items"][0]["duration_ms"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Another village's schedule leaves this node's version alone; asking twice is stable.
    assert_eq!(
        admin.post("/api/v1/schedules", plan(&v2)).await.status(),
        201
    );
    assert_eq!(desired(&editor, &node).await["version"], one["version"]);
    // Its item sent back for approval: it drops out.
    let res = admin
        .req(Method::PATCH, &format!("/api/v1/content/{id}"))
        .json(&json!({ "title": "Sửa" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let after = desired(&editor, &node).await;
    assert_eq!(after["schedules"], json!([]));
    assert_eq!(after["version"], empty["version"]);
    assert_eq!(
        s.anonymous()
            .get(&format!("/api/v1/nodes/{}/desired", node["id"]))
            .await
            .status(),
        401
    );
    assert_eq!(admin.get("/api/v1/nodes/99999/desired").await.status(), 404);
}
