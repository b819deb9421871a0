//! Alert settings over real HTTP: admins set who hears of problems; bad addresses are
//! refused with nothing stored; other roles read but cannot change them.

mod common;

use common::{Server, json_of};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn alert_recipients_are_checked_and_kept() {
    let s = Server::start().await;
    let admin = s.client("quantri", "admin").await;
    let put = |api: &common::Api, body: serde_json::Value| {
        api.req(Method::PUT, "/api/v1/alerts/settings")
            .json(&body)
            .send()
    };
    let (code, d) = json_of(admin.get("/api/v1/alerts/settings").await).await;
    assert_eq!(
        (code, d["offline_minutes"].as_u64()),
        (200, Some(10)),
        "{d}"
    );
    let good = json!({ "emails": [" truongthon@xa-dong.vn ", "kythuat@xa-dong.vn"], "webhook_url": "https://hook.example.vn/a", "offline_minutes": 5 });
    let (code, saved) = json_of(put(&admin, good).await.unwrap()).await;
    assert_eq!(code, 200, "{saved}");
    assert_eq!(
        saved["emails"],
        json!(["truongthon@xa-dong.vn", "kythuat@xa-dong.vn"])
    );
    for bad in [
        json!({ "emails": ["khong-phai-email"] }),
        json!({ "emails": ["a@b.vn\r\nBcc: x@y.vn"] }),
        json!({ "webhook_url": "ftp://x" }),
        json!({ "offline_minutes": 5000 }),
        json!({ "emails": "a@b.vn" }),
        json!({ "colour": "red" }),
    ] {
        let (code, err) = json_of(put(&admin, bad.clone()).await.unwrap()).await;
        assert_eq!(code, 400, "{bad}: {err}");
        assert!(err["message"].is_string());
    }
    let (_, now) = json_of(admin.get("/api/v1/alerts/settings").await).await;
    assert_eq!(now["offline_minutes"], 5, "nothing stored by a bad request");
    let editor = s.client("bientap", "editor").await;
    assert_eq!(editor.get("/api/v1/alerts/settings").await.status(), 200);
    let res = put(&editor, json!({ "emails": [] })).await.unwrap();
    assert_eq!(res.status(), 403);
    let page = admin.get("/ui/alerts").await.text().await.unwrap();
    assert!(page.contains("truongthon@xa-dong.vn") && page.contains("Chưa có cảnh báo nào"));
}
