//! The province's view over real HTTP: a province-wide admin sees every commune, silent
//! villages first; a commune's staff cannot; a token scoped to the province reads those
//! figures and nothing else.

mod common;

use cms::NewUserRequest;
use common::{Server, json_of};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn the_province_sees_every_commune_and_its_token_sees_nothing_else() {
    let s = Server::start().await;
    let other = s.cms.ensure_commune("xa-b", "Xã Bình An").await.unwrap();
    let tinh = s
        .cms
        .create_user(
            None,
            NewUserRequest {
                username: "tinh".into(),
                password: common::PASSWORD.into(),
                role: "admin".into(),
                display_name: None,
                commune_id: None,
                province_wide: true,
            },
        )
        .await
        .unwrap();
    let province = s.login("tinh").await;
    let as_tinh = |commune: i64| cms::auth::Principal {
        user: tinh.clone(),
        csrf: String::new(),
        via: cms::auth::Via::Bearer,
        default_commune: commune,
        scope: None,
    };
    // A node in a village of each commune; neither has played anything this week.
    for commune in [None, Some(other.id)] {
        let mut body = json!({ "name": "Thôn Một" });
        if let Some(c) = commune {
            body["commune_id"] = json!(c);
        }
        let (code, v) = json_of(province.post("/api/v1/villages", body).await).await;
        assert_eq!(code, 201, "{v}");
        let node = s
            .cms
            .create_node(
                &as_tinh(commune.unwrap_or(s.cms.default_commune())),
                cms::service_node_request("Loa".into(), v["id"].as_i64().unwrap(), 21.0, 107.0),
            )
            .await;
        assert!(node.is_ok(), "{node:?}");
    }
    let (code, list) = json_of(province.get("/api/v1/province").await).await;
    assert_eq!(code, 200, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for c in list {
        assert_eq!(
            (c["nodes"].as_u64(), c["offline"].as_u64()),
            (Some(1), Some(1)),
            "{c}"
        );
        assert_eq!(c["silent_villages"], json!(["Thôn Một"]), "{c}");
    }
    let page = province.get("/ui/province").await.text().await.unwrap();
    assert!(page.contains("Xã Bình An") && page.contains("Thôn Một"));
    let detail = province.get(&format!("/ui/province/{}", other.id)).await;
    assert_eq!(detail.status(), 200);

    // A commune's admin sees neither, and cannot mint a province token.
    let admin = s.client("quantri", "admin").await;
    assert_eq!(admin.get("/api/v1/province").await.status(), 403);
    assert_eq!(admin.get("/ui/province").await.status(), 403);
    let res = admin
        .post(
            "/api/v1/tokens",
            json!({ "name": "tinh", "scope": "province" }),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = province
        .post(
            "/api/v1/tokens",
            json!({ "name": "x", "scope": "everything" }),
        )
        .await;
    assert_eq!(res.status(), 400);

    // The provincial system's token: the figures, nothing else.
    let (code, t) = json_of(
        province
            .post(
                "/api/v1/tokens",
                json!({ "name": "Hệ thống tỉnh", "scope": "province" }),
            )
            .await,
    )
    .await;
    assert_eq!(code, 201, "{t}");
    let scoped = common::Api {
        url: s.url.clone(),
        token: t["token"].as_str().unwrap().to_owned(),
        http: reqwest::Client::new(),
    };
    let (code, again) = json_of(scoped.get("/api/v1/province").await).await;
    assert_eq!((code, again.as_array().map(Vec::len)), (200, Some(2)));
    for path in ["/api/v1/content", "/api/v1/nodes", "/api/v1/users", "/"] {
        assert_eq!(scoped.get(path).await.status(), 403, "{path}");
    }
    let res = scoped
        .post("/api/v1/villages", json!({ "name": "X" }))
        .await;
    assert_eq!(res.status(), 403);
    let _: Value = again;
}
