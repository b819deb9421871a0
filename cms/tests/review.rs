//! The review loop over real HTTP: a new recording sends an item back to approval,
//! reasons reach both sides, archiving keeps what played; typed speech heard before
//! saving; villages renamed; decisions stay on the author's dashboard until read.

mod common;

use common::{Api, Server, approved_item, json_of, sample};
use reqwest::{Method, multipart};
use serde_json::{Value, json};

#[allow(clippy::unwrap_used)] // test set-up
async fn replace(api: &Api, id: i64, name: &str, data: Vec<u8>) -> (u16, Value) {
    let form = multipart::Form::new().part(
        "file",
        multipart::Part::bytes(data).file_name(name.to_owned()),
    );
    json_of(
        api.req(Method::POST, &format!("/api/v1/content/{id}/audio"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_recording_goes_back_to_approval_and_bad_ones_change_nothing() {
    let s = Server::start().await;
    let editor = s.client("bientap", "editor").await;
    let approver = s.client("pheduyet", "approver").await;
    let item = editor
        .post(
            "/api/v1/content/tts",
            json!({ "title": "Họp thôn", "text": "Mời bà con họp thôn tối nay." }),
        )
        .await;
    let item: Value = item.json().await.unwrap();
    let id = item["id"].as_i64().unwrap();
    let path = |a: &str| format!("/api/v1/content/{id}/{a}");
    assert_eq!(editor.post(&path("submit"), json!({})).await.status(), 200);
    let (code, _) = json_of(
        approver
            .post(
                &path("reject"),
                json!({ "reason": "Giọng máy khó nghe, hãy ghi âm" }),
            )
            .await,
    )
    .await;
    assert_eq!(code, 200);

    // Bad files are refused and the item is as it was.
    for (name, data) in [
        ("empty.wav", Vec::new()),
        ("notes.txt", b"khong phai am thanh ".repeat(200)),
    ] {
        let (code, body) = replace(&editor, id, name, data).await;
        assert_eq!(code, 400, "{name}: {body}");
        assert!(body["message"].is_string() && body["error"].is_string());
    }
    let (_, same) = json_of(editor.get(&format!("/api/v1/content/{id}")).await).await;
    assert_eq!(
        (
            same["kind"].as_str(),
            same["status"].as_str(),
            &same["sha256"]
        ),
        (Some("tts"), Some("rejected"), &item["sha256"])
    );
    // A viewer cannot; a real recording replaces the speech and goes back for approval,
    // the reason still with it for the approver.
    let viewer = s.client("xem", "viewer").await;
    let mp3 = std::fs::read(sample("news.mp3")).unwrap();
    assert_eq!(replace(&viewer, id, "news.mp3", mp3.clone()).await.0, 403);
    let (code, new) = replace(&editor, id, "news.mp3", mp3.clone()).await;
    assert_eq!(code, 200, "{new}");
    assert_eq!(new["kind"], "audio");
    assert_eq!(new["status"], "pending");
    assert_eq!(new["tts_text"], Value::Null);
    assert_eq!(new["sha256"], cms::blobs::sha256_hex(&mp3));
    assert_eq!(new["reject_reason"], "Giọng máy khó nghe, hãy ghi âm");
    let (_, queue) = json_of(approver.get("/api/v1/content?status=pending").await).await;
    assert_eq!(queue[0]["id"], id);
    // The new audio is what is served.
    let res = editor.get(&path("audio")).await;
    assert_eq!(res.bytes().await.unwrap(), mp3);
    // Approved, then replaced again: back to pending (a node stops playing it until then).
    assert_eq!(
        approver.post(&path("approve"), json!({})).await.status(),
        200
    );
    let chime = std::fs::read(sample("chime.wav")).unwrap();
    let (code, again) = replace(&editor, id, "chime.wav", chime).await;
    assert_eq!((code, again["status"].as_str()), (200, Some("pending")));
    assert_eq!(again["approver"], Value::Null);

    // A relay has no recording.
    let (_, relay) = json_of(
        editor
            .post(
                "/api/v1/content/relay",
                json!({ "title": "Đài tỉnh", "url": "http://127.0.0.1:9/x", "duration_ms": 60000 }),
            )
            .await,
    )
    .await;
    let rid = relay["id"].as_i64().unwrap();
    assert_eq!(replace(&editor, rid, "news.mp3", mp3).await.0, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn archived_items_leave_the_library_and_schedules_but_stay_whole() {
    let s = Server::start().await;
    let (editor, _, id) = approved_item(&s).await;
    let admin = s.client("quantri", "admin").await;
    let path = |a: &str| format!("/api/v1/content/{id}/{a}");
    let (_, v) = json_of(
        admin
            .post("/api/v1/villages", json!({ "name": "Thôn Đông" }))
            .await,
    )
    .await;
    let schedule = json!({ "title": "Sáng", "content_ids": [id], "targets": { "villages": [v["id"]] },
        "priority": "normal", "rule": { "daily": ["06:00"] } });
    let (code, sched) = json_of(editor.post("/api/v1/schedules", schedule.clone()).await).await;
    assert_eq!(code, 201, "{sched}");

    // In use: the schedule is named.
    let (code, body) = json_of(editor.post(&path("archive"), json!({})).await).await;
    assert_eq!(code, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Sáng"), "{body}");
    let sid = sched["id"].as_i64().unwrap();
    let res = editor
        .req(Method::DELETE, &format!("/api/v1/schedules/{sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (code, archived) = json_of(editor.post(&path("archive"), json!({})).await).await;
    assert_eq!(code, 200, "{archived}");
    assert!(archived["archived_at"].is_string());

    // Out of the library and of new schedules; still readable, its audio still served.
    let (_, list) = json_of(editor.get("/api/v1/content").await).await;
    assert!(list.as_array().unwrap().iter().all(|c| c["id"] != id));
    let (_, list) = json_of(editor.get("/api/v1/content?archived=true").await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(editor.get(&path("audio")).await.status(), 200);
    let (code, body) = json_of(editor.post("/api/v1/schedules", schedule.clone()).await).await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("lưu trữ"),
        "{body}"
    );
    assert_eq!(editor.post(&path("submit"), json!({})).await.status(), 409);
    let ui = editor
        .get("/ui/content?status=archived")
        .await
        .text()
        .await
        .unwrap();
    assert!(ui.contains("Bản tin") && ui.contains("Khôi phục"));

    // Restored, it schedules again.
    assert_eq!(editor.post(&path("restore"), json!({})).await.status(), 200);
    assert_eq!(
        editor.post("/api/v1/schedules", schedule).await.status(),
        201
    );
    let (_, log) = json_of(admin.get("/api/v1/audit").await).await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "content")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(&actions[..2], ["restore", "archive"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_reach_the_author_until_read() {
    let s = Server::start().await;
    let editor = s.client("bientap", "editor").await;
    let approver = s.client("pheduyet", "approver").await;
    let mut ids = Vec::new();
    for title in ["Tin được duyệt", "Tin bị trả lại"] {
        let id = editor.upload_sample(title, "chime.wav").await["id"]
            .as_i64()
            .unwrap();
        assert_eq!(
            editor
                .post(&format!("/api/v1/content/{id}/submit"), json!({}))
                .await
                .status(),
            200
        );
        ids.push(id);
    }
    // Nothing decided yet.
    let page = editor.get("/").await.text().await.unwrap();
    assert!(!page.contains("id=\"decisions\""));
    let approve = format!("/api/v1/content/{}/approve", ids[0]);
    assert_eq!(approver.post(&approve, json!({})).await.status(), 200);
    let reject = format!("/api/v1/content/{}/reject", ids[1]);
    let reason = json!({ "reason": "Thiếu giờ họp" });
    assert_eq!(approver.post(&reject, reason).await.status(), 200);

    let page = editor.get("/").await.text().await.unwrap();
    assert!(page.contains("id=\"decisions\""), "{page}");
    assert!(page.contains("Tin được duyệt") && page.contains("Tin bị trả lại"));
    assert!(page.contains("Thiếu giờ họp"));
    assert!(page.contains(&format!("/ui/content?edit={}", ids[1])));
    // They stay (a reload, another login) until the author marks them read.
    let page = editor.get("/").await.text().await.unwrap();
    assert!(page.contains("id=\"decisions\""));
    let res = editor.post("/api/v1/me/decisions/seen", json!({})).await;
    assert_eq!(res.status(), 200);
    let page = editor.get("/").await.text().await.unwrap();
    assert!(!page.contains("id=\"decisions\""));
    // The approver's dashboard never had them.
    let page = approver.get("/").await.text().await.unwrap();
    assert!(!page.contains("id=\"decisions\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn typed_speech_is_heard_before_saving_in_a_chosen_voice_and_speed() {
    let s = Server::start().await;
    let editor = s.client("bientap", "editor").await;
    let text = "Thông báo lịch tiêm chủng cho trẻ em.";
    let length = |wav: &[u8]| {
        let r = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
        f64::from(r.duration()) / f64::from(r.spec().sample_rate)
    };
    let mut seconds = Vec::new();
    for speed in [120, 180] {
        let res = editor
            .post(
                "/api/v1/content/tts/preview",
                json!({ "text": text, "voice": "vi-vn-x-south", "speed": speed }),
            )
            .await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "audio/wav");
        seconds.push(length(&res.bytes().await.unwrap()));
    }
    assert!(seconds[0] > seconds[1] * 1.2, "slow vs fast: {seconds:?}");
    // Nothing stored by a preview.
    let (_, list) = json_of(editor.get("/api/v1/content").await).await;
    assert!(list.as_array().unwrap().is_empty());
    for body in [
        json!({ "text": text, "speed": 20 }),
        json!({ "text": text, "voice": "vi; reboot" }),
        json!({ "text": "  " }),
        json!({ "text": text, "voice": "xx-none" }),
    ] {
        let (code, err) = json_of(
            editor
                .post("/api/v1/content/tts/preview", body.clone())
                .await,
        )
        .await;
        assert_eq!(code, 400, "{body}: {err}");
        assert!(err["message"].is_string());
    }
    let viewer = s.client("xem", "viewer").await;
    let res = viewer
        .post("/api/v1/content/tts/preview", json!({ "text": text }))
        .await;
    assert_eq!(res.status(), 403);
    // The voices on offer, named in the caller's language; each one speaks.
    let (_, voices) = json_of(editor.get("/api/v1/tts/voices").await).await;
    let voices = voices.as_array().unwrap();
    assert!(voices.iter().any(|v| v["name"] == "Giọng miền Trung"));
    for v in voices {
        let (code, item) = json_of(
            editor
                .post(
                    "/api/v1/content/tts",
                    json!({ "title": v["name"], "text": text, "voice": v["id"], "speed": 150 }),
                )
                .await,
        )
        .await;
        assert_eq!(code, 201, "{v}: {item}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn villages_are_renamed_with_their_nodes_kept() {
    let s = Server::start().await;
    let admin = s.client("quantri", "admin").await;
    let mut ids = Vec::new();
    for name in ["Thon Dong", "Thôn Bắc"] {
        let res = admin
            .post("/api/v1/villages", json!({ "name": name }))
            .await;
        ids.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let id = ids[0];
    let node = json!({ "name": "Cụm 1", "village_id": id });
    assert_eq!(admin.post("/api/v1/nodes", node).await.status(), 201);
    let put = |body: Value| {
        admin
            .req(Method::PUT, &format!("/api/v1/villages/{id}"))
            .json(&body)
            .send()
    };
    let (code, v) = json_of(
        put(json!({ "name": "Thôn Đông", "kind": "to_dan_pho" }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (code, v["name"].as_str(), v["kind"].as_str()),
        (200, Some("Thôn Đông"), Some("to_dan_pho"))
    );
    for (body, want) in [
        (json!({ "name": "Thôn Bắc" }), 409),
        (json!({ "name": " " }), 400),
        (json!({ "name": "X", "kind": "tinh" }), 400),
        (json!({ "name": "X", "commune_id": 2 }), 400),
    ] {
        let (code, err) = json_of(put(body.clone()).await.unwrap()).await;
        assert_eq!(code, want, "{body}: {err}");
    }
    let (_, nodes) = json_of(admin.get("/api/v1/nodes").await).await;
    assert_eq!(nodes[0]["village_id"], id);
    let editor = s.client("bientap", "editor").await;
    let res = editor
        .req(Method::PUT, &format!("/api/v1/villages/{id}"))
        .json(&json!({ "name": "Y" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}
