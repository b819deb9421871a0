//! Emergencies over real HTTP: who may call one, what is refused (and leaves nothing
//! behind), what the nodes are sent, the reach count, stopping, the audit trail and the
//! live event stream. Nodes' own reports are exercised end to end in the tests crate.

mod common;

use common::{Server, json_of};
use reqwest::Method;
use serde_json::{Value, json};

struct Commune {
    admin: common::Api,
    approver: common::Api,
    editor: common::Api,
    item: i64,
    villages: Vec<i64>,
    nodes: Vec<Value>,
}

/// Two villages, three enrolled nodes and one never enrolled, an approved item.
#[allow(clippy::unwrap_used)] // test set-up
async fn commune(s: &Server) -> Commune {
    let admin = s.client("quantri", "admin").await;
    let approver = s.client("pheduyet", "approver").await;
    let editor = s.client("bientap", "editor").await;
    let item = editor.upload_sample("Bão số 5", "announcement.mp3").await["id"]
        .as_i64()
        .unwrap();
    editor
        .post(&format!("/api/v1/content/{item}/submit"), json!({}))
        .await;
    let (code, _) = json_of(
        approver
            .post(&format!("/api/v1/content/{item}/approve"), json!({}))
            .await,
    )
    .await;
    assert_eq!(code, 200);
    let mut villages = Vec::new();
    let mut nodes = Vec::new();
    for (i, name) in ["Thôn Đông", "Thôn Tây"].iter().enumerate() {
        let (_, v) = json_of(
            admin
                .post("/api/v1/villages", json!({ "name": name }))
                .await,
        )
        .await;
        villages.push(v["id"].as_i64().unwrap());
        for (j, enrol) in [true, i == 1].into_iter().enumerate() {
            let body = json!({ "name": format!("Cụm {i}.{j}"), "village_id": v["id"] });
            let (code, created) = json_of(admin.post("/api/v1/nodes", body).await).await;
            assert_eq!(code, 201, "{created}");
            if enrol {
                let code = created["enrollment_code"].as_str().unwrap();
                let res = s
                    .anonymous()
                    .post("/api/v1/nodes/enroll", json!({ "code": code }))
                    .await;
                assert_eq!(res.status(), 200);
                nodes.push(created.clone());
            }
        }
    }
    Commune {
        admin,
        approver,
        editor,
        item,
        villages,
        nodes,
    }
}

#[allow(clippy::unwrap_used)] // test helper
async fn delete(api: &common::Api, path: &str) -> u16 {
    api.req(Method::DELETE, path)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn count(api: &common::Api, path: &str) -> usize {
    json_of(api.get(path).await)
        .await
        .1
        .as_array()
        .map_or(0, Vec::len)
}

/// The schedule `id` in a node's desired state.
fn schedule_in(state: &Value, id: &Value) -> Value {
    state["schedules"]
        .as_array()
        .and_then(|all| all.iter().find(|s| &s["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("schedule {id} in {state}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn leaders_cut_in_nodes_get_it_and_stopping_resumes() {
    let s = Server::start().await;
    let c = commune(&s).await;
    assert_eq!(
        c.nodes.len(),
        3,
        "two enrolled in Thôn Tây, one in Thôn Đông, one not"
    );
    let body = json!({ "content_id": c.item, "targets": "all", "repeat": 2, "pause_ms": 1000 });

    // Editors and viewers cannot; approvers and admins can.
    assert_eq!(
        c.editor
            .post("/api/v1/emergency", body.clone())
            .await
            .status(),
        403
    );
    let viewer = s.client("xem", "viewer").await;
    assert_eq!(
        viewer
            .post("/api/v1/emergency", body.clone())
            .await
            .status(),
        403
    );
    let before = chrono::Utc::now();
    let (code, e) = json_of(c.approver.post("/api/v1/emergency", body).await).await;
    assert_eq!(code, 201, "{e}");
    let id = e["id"].as_i64().unwrap();
    assert_eq!(
        (e["reached"].as_u64(), e["total"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(e["active"], true);
    assert_eq!(e["title"], "Bão số 5");
    assert!(
        e["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "sent")
    );

    // Every enrolled node's desired state carries it: emergency priority, once, a few
    // hundred ms from the call, twice with the pause.
    let desired = |n: &Value| format!("/api/v1/nodes/{}/desired", n["id"]);
    let (_, state) = json_of(c.editor.get(&desired(&c.nodes[0])).await).await;
    let spec = schedule_in(&state, &e["schedule_id"]);
    assert_eq!(spec["priority"], "emergency");
    assert_eq!(
        (
            spec["program"]["repeat"].as_u64(),
            spec["program"]["pause_ms"].as_u64()
        ),
        (Some(2), Some(1000))
    );
    let at: chrono::DateTime<chrono::Utc> = spec["rule"]["once"].as_str().unwrap().parse().unwrap();
    let lead = (at - before).num_milliseconds();
    assert!(
        (cms::EMERGENCY_LEAD_MS..cms::EMERGENCY_LEAD_MS + 2_000).contains(&lead),
        "starts {lead} ms after the call"
    );
    assert!(spec.get("stopped_at").is_none());

    // Its schedule cannot be deleted (stop the emergency instead); editors cannot stop it.
    let sched = format!("/api/v1/schedules/{}", e["schedule_id"]);
    assert_eq!(delete(&c.admin, &sched).await, 409);
    let path = format!("/api/v1/emergency/{id}");
    assert_eq!(delete(&c.editor, &path).await, 403);
    let (code, listed) = json_of(c.editor.get("/api/v1/emergency").await).await;
    assert_eq!((code, listed[0]["id"].as_i64()), (200, Some(id)));

    // Stopped: the schedule says so, the emergency is over, a second stop is a conflict.
    let (code, stopped) = json_of(c.admin.req(Method::DELETE, &path).send().await.unwrap()).await;
    assert_eq!(code, 200, "{stopped}");
    assert_eq!(stopped["active"], false);
    assert!(stopped["stopped_at"].is_string());
    let (_, state) = json_of(c.editor.get(&desired(&c.nodes[2])).await).await;
    let spec = schedule_in(&state, &e["schedule_id"]);
    assert!(spec["stopped_at"].is_string());
    assert_eq!(delete(&c.admin, &path).await, 409);

    // The audit log has who called it, where, and the reach when it was stopped.
    let (_, audit) = json_of(c.admin.get("/api/v1/audit").await).await;
    let entries: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["entity"] == "emergency")
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0]["action"].as_str(),
            entries[0]["username"].as_str()
        ),
        (Some("stop"), Some("quantri"))
    );
    assert_eq!(entries[0]["after"]["total"], 3);
    assert_eq!(entries[1]["action"], "create");
    assert_eq!(entries[1]["username"], "pheduyet");
    assert_eq!(
        entries[1]["after"]["targets"]["villages"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_emergencies_are_refused_and_leave_nothing() {
    let s = Server::start().await;
    let c = commune(&s).await;
    let schedules = count(&c.admin, "/api/v1/schedules").await;
    let items = count(&c.admin, "/api/v1/content").await;
    let pending = c.editor.upload_sample("Chưa duyệt", "news.mp3").await["id"]
        .as_i64()
        .unwrap();
    let cases = [
        (json!({ "targets": "all" }), 400),
        (
            json!({ "content_id": c.item, "text": "Bão", "targets": "all" }),
            400,
        ),
        (json!({ "text": "   ", "targets": "all" }), 400),
        (json!({ "content_id": c.item, "targets": {} }), 400),
        (
            json!({ "content_id": c.item, "targets": "everywhere" }),
            400,
        ),
        (
            json!({ "content_id": c.item, "targets": { "villages": [999] } }),
            400,
        ),
        (
            json!({ "content_id": c.item, "targets": "all", "repeat": 0 }),
            400,
        ),
        (
            json!({ "content_id": c.item, "targets": "all", "repeat": 21 }),
            400,
        ),
        (
            json!({ "content_id": c.item, "targets": "all", "pause_ms": 600_001 }),
            400,
        ),
        (
            json!({ "content_id": c.item, "targets": "all", "volume": 5 }),
            400,
        ),
        (json!({ "content_id": 999, "targets": "all" }), 404),
        (json!({ "content_id": pending, "targets": "all" }), 409),
        // A text emergency to a place with no enrolled node: refused before any speech.
        (
            json!({ "text": "Bão", "targets": { "nodes": [] , "groups": [] , "villages": [] } }),
            400,
        ),
    ];
    for (body, want) in cases {
        let (code, err) = json_of(c.approver.post("/api/v1/emergency", body.clone()).await).await;
        assert_eq!(code, want, "{body} -> {err}");
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}: {err}"
        );
    }
    // A village without an enrolled node.
    let (_, empty) = json_of(
        c.admin
            .post("/api/v1/villages", json!({ "name": "Thôn Trống" }))
            .await,
    )
    .await;
    let body = json!({ "text": "Bão", "targets": { "villages": [empty["id"]] } });
    assert_eq!(
        c.approver.post("/api/v1/emergency", body).await.status(),
        400
    );
    assert_eq!(count(&c.admin, "/api/v1/schedules").await, schedules);
    assert_eq!(
        count(&c.admin, "/api/v1/content").await,
        items + 1,
        "only the pending upload"
    );
    assert_eq!(count(&c.admin, "/api/v1/emergency").await, 0);
    // Unknown ids.
    assert_eq!(c.admin.get("/api/v1/emergency/999").await.status(), 404);
    assert_eq!(c.admin.get("/api/v1/emergency/abc").await.status(), 404);
    assert_eq!(delete(&c.admin, "/api/v1/emergency/999").await, 404);
    assert_eq!(
        c.admin.get("/api/v1/emergency/999/events").await.status(),
        404
    );
    let _ = c.villages;
}

#[tokio::test(flavor = "multi_thread")]
async fn text_is_spoken_on_the_spot_and_reach_streams_as_events() {
    use futures_util::StreamExt;
    let s = Server::start().await;
    let c = commune(&s).await;
    let body = json!({ "text": "Bão số 5 sắp đổ bộ. Bà con không ra khơi.", "targets": { "villages": [c.villages[1]] } });
    let (code, e) = json_of(c.approver.post("/api/v1/emergency", body).await).await;
    assert_eq!(code, 201, "{e}");
    assert_eq!(e["total"], 2, "the two enrolled nodes of Thôn Tây");
    assert_eq!(e["title"], "Tin khẩn cấp");
    let (_, item) = json_of(
        c.editor
            .get(&format!("/api/v1/content/{}", e["content_id"]))
            .await,
    )
    .await;
    assert_eq!(
        (
            item["kind"].as_str(),
            item["status"].as_str(),
            item["category"].as_str()
        ),
        (Some("tts"), Some("approved"), Some("emergency"))
    );

    // The event stream: the state at once, then after every change.
    let res = c
        .editor
        .get(&format!("/api/v1/emergency/{}/events", e["id"]))
        .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    let next_event = async |body: &mut (
                                     dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>>
                                         + Unpin
                                 ),
                            seen: &mut String|
           -> Value {
        loop {
            if let Some(end) = seen.find("\n\n") {
                let event: String = seen.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) {
                    return serde_json::from_str(data.trim()).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    let first = next_event(&mut body, &mut seen).await;
    assert_eq!(
        (first["reached"].as_u64(), first["total"].as_u64()),
        (Some(0), Some(2))
    );
    // A node of Thôn Tây confirms: the stream says so.
    let node = first["nodes"][0]["node_id"].as_i64().unwrap();
    s.cms
        .emergency_report(
            node,
            e["schedule_id"].as_i64().unwrap(),
            protocol::link::PlayStage::Playing,
            String::new(),
        )
        .await
        .unwrap();
    let second = next_event(&mut body, &mut seen).await;
    assert_eq!(second["reached"], 1);
    let reached = second["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node_id"] == node)
        .unwrap();
    assert_eq!(reached["state"], "playing");
    assert!(reached["reached_at"].is_string());
    // A node of another commune, or a schedule that is no emergency, counts for nothing.
    s.cms
        .emergency_report(
            node,
            424242,
            protocol::link::PlayStage::Playing,
            String::new(),
        )
        .await
        .unwrap();
    let (_, now) = json_of(
        c.editor
            .get(&format!("/api/v1/emergency/{}", e["id"]))
            .await,
    )
    .await;
    assert_eq!(now["reached"], 1);
}
