//! Broadcast reports over real HTTP, from play logs stored the way the fleet link stores
//! them: counts per village and category, per item, the proof of one item's plays, CSV
//! for Excel; and logs naming what a node was never sent are kept but not counted.

mod common;

use chrono::{Duration, Utc};
use common::{Server, approved_item, json_of};
use protocol::link::{PlayLogEntry, PlayOutcome};
use serde_json::{Value, json};

fn log(
    id: &str,
    schedule: Option<i64>,
    content: Option<i64>,
    outcome: PlayOutcome,
    secs: i64,
) -> PlayLogEntry {
    let start = Utc::now() - Duration::hours(1);
    let played = outcome != PlayOutcome::Skipped;
    PlayLogEntry {
        id: id.into(),
        schedule_id: schedule,
        content_id: content,
        scheduled_at: schedule.map(|_| start),
        started_at: played.then_some(start),
        ended_at: played.then(|| start + Duration::seconds(secs)),
        outcome,
        reason: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_count_trusted_plays_per_village_category_and_item() {
    let s = Server::start().await;
    let (editor, _, item) = approved_item(&s).await;
    let admin = s.client("quantri", "admin").await;
    let mut villages = Vec::new();
    for name in ["Thôn Đông", "Thôn Bắc"] {
        let res = admin
            .post("/api/v1/villages", json!({ "name": name }))
            .await;
        villages.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let mut nodes = Vec::new();
    for (name, v) in [
        ("Loa 1", villages[0]),
        ("Loa 2", villages[0]),
        ("Loa 3", villages[1]),
    ] {
        let res = admin
            .post("/api/v1/nodes", json!({ "name": name, "village_id": v }))
            .await;
        nodes.push(res.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let (code, sched) = json_of(
        editor
            .post(
                "/api/v1/schedules",
                json!({ "title": "Sáng", "content_ids": [item], "targets": { "villages": villages },
                        "priority": "normal", "rule": { "daily": ["06:00"] } }),
            )
            .await,
    )
    .await;
    assert_eq!(code, 201, "{sched}");
    let sid = sched["id"].as_i64().unwrap();
    // What each node is sent, as the fleet link records it.
    for n in &nodes {
        let state = s.cms.node_desired_state(*n).await.unwrap();
        s.cms.record_sent(*n, &state).await.unwrap();
    }
    use PlayOutcome::*;
    let (s1, c1) = (Some(sid), Some(item));
    s.cms
        .store_playlogs(
            nodes[0],
            vec![
                log("a1", s1, c1, Completed, 60),
                log("a2", s1, c1, Interrupted, 30),
                // A test tone: no schedule, no item.
                log("a3", None, None, Completed, 5),
                // An item the schedule does not play.
                log("a4", s1, Some(item + 100), Completed, 60),
            ],
        )
        .await
        .unwrap();
    s.cms
        .store_playlogs(
            nodes[1],
            vec![
                log("b1", s1, c1, Completed, 60),
                log("b2", s1, c1, Failed, 2),
                // Never commanded to play it.
                log("b3", None, c1, Completed, 60),
            ],
        )
        .await
        .unwrap();
    s.cms
        .store_playlogs(
            nodes[2],
            vec![
                log("c1", s1, c1, Skipped, 0),
                // A schedule it was never sent.
                log("c2", Some(sid + 50), c1, Completed, 60),
            ],
        )
        .await
        .unwrap();

    // Untrusted logs are kept, saying why, and not counted.
    let (_, logs) = json_of(
        admin
            .get(&format!("/api/v1/playlogs?node={}", nodes[2]))
            .await,
    )
    .await;
    let rejected: Vec<&Value> = logs
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["rejected"].is_string())
        .collect();
    assert_eq!(rejected.len(), 1, "{logs}");

    let from = (Utc::now() - Duration::days(1)).to_rfc3339();
    let to = (Utc::now() + Duration::days(1)).to_rfc3339();
    let window = format!("from={}&to={}", urlencode(&from), urlencode(&to));
    let (code, r) = json_of(
        admin
            .get(&format!("/api/v1/reports/summary?{window}"))
            .await,
    )
    .await;
    assert_eq!(code, 200, "{r}");
    let counts = |v: &Value| {
        [
            "scheduled",
            "played",
            "failed",
            "interrupted",
            "skipped",
            "air_time_s",
        ]
        .map(|k| v[k].as_u64().unwrap())
    };
    assert_eq!(counts(&r), [5, 3, 1, 1, 1, 60 + 30 + 5 + 60], "{r}");
    assert_eq!(
        counts(&r["categories"]["announcement"]),
        [5, 2, 1, 1, 1, 150]
    );
    assert_eq!(counts(&r["categories"]["test"]), [0, 1, 0, 0, 0, 5]);
    // Air time: played and interrupted plays (a failed one did not go out).
    // Every village, silent ones too, in Vietnamese order (B before Đ).
    let names: Vec<&str> = r["villages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Thôn Bắc", "Thôn Đông"]);
    assert_eq!(counts(&r["villages"][1]), [4, 3, 1, 1, 0, 155]);
    assert_eq!(counts(&r["villages"][0]), [1, 0, 0, 0, 1, 0]);
    let (_, one) = json_of(
        admin
            .get(&format!(
                "/api/v1/reports/summary?{window}&village={}",
                villages[1]
            ))
            .await,
    )
    .await;
    assert_eq!(one["villages"].as_array().unwrap().len(), 1);
    assert_eq!(one["played"], 0);

    // Per item, and one item's plays: the proof, node by node.
    let (_, items) = json_of(admin.get(&format!("/api/v1/reports/items?{window}")).await).await;
    assert_eq!(items[0]["content_id"], item);
    assert_eq!(
        (items[0]["played"].as_u64(), items[0]["villages"].as_u64()),
        (Some(2), Some(1))
    );
    let (_, proof) = json_of(
        admin
            .get(&format!("/api/v1/reports/items/{item}?{window}"))
            .await,
    )
    .await;
    assert_eq!(proof["plays"].as_array().unwrap().len(), 5, "{proof}");
    assert_eq!(proof["content"]["title"], "Bản tin");

    // CSV for Excel: a byte-order mark, Vietnamese headings and names, CRLF.
    let res = admin
        .get(&format!("/api/v1/reports/summary?{window}&format=csv"))
        .await;
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let body = res.bytes().await.unwrap();
    assert!(body.starts_with("\u{feff}".as_bytes()));
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    assert!(
        text.starts_with("\"Thôn\",\"Thể loại\",\"Theo lịch\",\"Đã phát\""),
        "{text}"
    );
    assert!(
        text.contains("\"Thôn Đông\",\"Thông báo\",\"4\",\"2\""),
        "{text}"
    );
    assert!(
        text.contains("\"Toàn xã\",\"Tất cả\",\"5\",\"3\",\"1\",\"1\",\"1\""),
        "{text}"
    );
    assert!(text.contains("\r\n"));
    let proof_csv = admin
        .get(&format!("/api/v1/reports/items/{item}?{window}&format=csv"))
        .await;
    let proof_csv = proof_csv.text().await.unwrap();
    assert_eq!(proof_csv.lines().count(), 6, "{proof_csv}");
    assert!(proof_csv.contains("Loa 1") && proof_csv.contains("Bị ngắt"));

    // The page: figures, a chart, every village, the items with their proof, CSV links.
    let page = admin.get(&format!("/ui/reports?{window}")).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    for want in [
        "id=\"report-chart\"",
        "Thôn Bắc",
        "Toàn xã",
        "Bản tin",
        "format=csv",
        "Chủ tịch UBND xã",
    ] {
        assert!(page.contains(want), "{want} not on the page");
    }
    let proof = admin
        .get(&format!("/ui/reports/items/{item}?{window}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        proof.contains("Loa 3") && proof.contains("Bỏ qua"),
        "{proof}"
    );

    // Dates are the commune's; bad periods and places are clear errors.
    let (code, _) = json_of(
        admin
            .get("/api/v1/reports/summary?from=2026-10-01&to=2026-12-31")
            .await,
    )
    .await;
    assert_eq!(code, 200);
    for (q, want) in [
        ("from=hôm-qua", 400),
        ("from=2026-12-01&to=2026-11-01", 400),
        ("from=2020-01-01&to=2026-01-01", 400),
        ("village=99999", 404),
        ("village=abc", 400),
    ] {
        let (code, err) = json_of(admin.get(&format!("/api/v1/reports/summary?{q}")).await).await;
        assert_eq!(code, want, "{q}: {err}");
        assert!(err["message"].is_string(), "{q}: {err}");
    }
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
