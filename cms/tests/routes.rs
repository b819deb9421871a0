//! Every route x every role: the OpenAPI document lists the API routes with the permission
//! each needs; this test states the role policy on its own and checks the server's answer
//! for each pair (anonymous: 401; role without the permission: 403; with it: neither).
//! It also checks that the document and the served routes match.

mod common;

use common::{Server, json_of};
use reqwest::Method;
use serde_json::{Value, json};

/// The policy, written independently of `cms::auth::allowed`.
fn may(role: &str, perm: &str) -> bool {
    match perm {
        "Public" | "Read" => true,
        "EditContent" => matches!(role, "admin" | "editor"),
        "Approve" => matches!(role, "admin" | "approver"),
        "Schedule" => matches!(role, "admin" | "editor" | "approver"),
        "ManagePlaces" | "ManageUsers" => role == "admin",
        "ManageNodes" => matches!(role, "admin" | "technician"),
        "Audit" => matches!(role, "admin" | "approver"),
        "Node" => false,
        other => panic!("unknown permission {other}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_checks_authentication_and_role() {
    let s = Server::start().await;
    let roles = ["admin", "editor", "approver", "technician", "viewer"];
    let mut clients = Vec::new();
    for role in roles {
        clients.push((role, Some(s.client(&format!("u_{role}"), role).await)));
    }
    clients.push(("anonymous", None));
    let anon = s.anonymous();
    let (_, doc) = json_of(anon.get("/api/v1/openapi.json").await).await;
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    // Logout ends the session it is called with: do it last.
    let mut paths: Vec<(&String, &Value)> = paths.iter().collect();
    paths.sort_by_key(|(p, _)| p.ends_with("/logout"));
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let perm = op["x-loa-permission"].as_str().unwrap();
            let concrete = path
                .replace("{id}", "1")
                .replace("{sha256}", &"a".repeat(64));
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for (role, client) in &clients {
                let api = client.as_ref().unwrap_or(&anon);
                // An empty JSON object: enough to reach the permission check, invalid beyond it.
                let res = api
                    .req(method.clone(), &concrete)
                    .json(&serde_json::json!({}))
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body = res.text().await.unwrap();
                let label = format!("{role} {method} {path} ({perm}) -> {status} {body}");
                if perm == "Public" {
                    assert!(status != 401 && status != 403, "{label}");
                } else if *role == "anonymous" {
                    assert_eq!(status, 401, "{label}");
                } else if path == "/api/v1/province" {
                    // Province-wide users only; these are all commune staff (tests/province.rs).
                    assert_eq!(status, 403, "{label}");
                } else if may(role, perm) {
                    assert!(status != 401 && status != 403, "{label}");
                } else {
                    assert_eq!(status, 403, "{label}");
                }
                assert!(status != 405, "{label}: documented but not served");
                if status >= 400 && !body.is_empty() {
                    let v: Value =
                        serde_json::from_str(&body).unwrap_or_else(|_| panic!("{label}: not JSON"));
                    assert!(
                        v["error"].is_string() && v["message"].is_string(),
                        "{label}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 6 * 35, "only {checked} checks");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_lists_the_stable_routes() {
    let s = Server::start().await;
    let (code, doc) = json_of(s.anonymous().get("/api/v1/openapi.json").await).await;
    assert_eq!(code, 200);
    assert_eq!(doc["openapi"], "3.0.3");
    for (method, path) in [
        ("get", "/healthz"),
        ("post", "/api/v1/auth/login"),
        ("get", "/api/v1/content"),
        ("post", "/api/v1/content"),
        ("post", "/api/v1/content/tts"),
        ("post", "/api/v1/content/{id}/submit"),
        ("post", "/api/v1/content/{id}/approve"),
        ("post", "/api/v1/content/{id}/reject"),
        ("patch", "/api/v1/content/{id}"),
        ("post", "/api/v1/villages"),
        ("get", "/api/v1/villages"),
        ("get", "/api/v1/communes"),
        ("post", "/api/v1/nodes"),
        ("get", "/api/v1/nodes"),
        ("post", "/api/v1/schedules"),
        ("get", "/api/v1/schedules/preview"),
        ("get", "/api/v1/playlogs"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from OpenAPI"
        );
    }
    // Unknown paths and methods.
    assert_eq!(s.anonymous().get("/api/v1/nothing").await.status(), 404);
    // A method the path lacks: 405 naming those it has (a literal path owns every method:
    // PATCH /api/v1/content/tts is not PATCH /api/v1/content/{id} with id "tts").
    for (method, path, allow) in [
        (Method::DELETE, "/api/v1/content", "GET, POST"),
        (Method::PATCH, "/api/v1/content/tts", "POST"),
        (Method::PUT, "/api/v1/schedules/preview", "GET"),
    ] {
        let res = s
            .anonymous()
            .req(method.clone(), path)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method} {path}");
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_checks_login_and_role() {
    let s = Server::start().await;
    let roles = ["admin", "editor", "approver", "technician", "viewer"];
    let mut clients = Vec::new();
    for role in roles {
        clients.push((role, s.client(&format!("p_{role}"), role).await));
    }
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (_, doc) = json_of(s.anonymous().get("/api/v1/openapi.json").await).await;
    // A record for the pages that show one.
    let admin = &clients[0].1;
    let (_, village) = json_of(
        admin
            .post("/api/v1/villages", json!({"name": "Thôn 1"}))
            .await,
    )
    .await;
    let (_, node) = json_of(
        admin
            .post(
                "/api/v1/nodes",
                json!({"name": "Loa 1", "village_id": village["id"]}),
            )
            .await,
    )
    .await;
    let node_id = node["id"].as_i64().unwrap().to_string();
    // ...and an emergency for its page: the node enrolled, an approved item.
    let code = node["enrollment_code"].as_str().unwrap();
    let res = s
        .anonymous()
        .post("/api/v1/nodes/enroll", json!({ "code": code }))
        .await;
    assert_eq!(res.status(), 200);
    let item = clients[1].1.upload_sample("Bão", "news.mp3").await["id"]
        .as_i64()
        .unwrap();
    clients[1]
        .1
        .post(&format!("/api/v1/content/{item}/submit"), json!({}))
        .await;
    admin
        .post(&format!("/api/v1/content/{item}/approve"), json!({}))
        .await;
    let (code, emergency) = json_of(
        admin
            .post(
                "/api/v1/emergency",
                json!({ "content_id": item, "targets": "all" }),
            )
            .await,
    )
    .await;
    assert_eq!(code, 201, "{emergency}");
    let emergency_id = emergency["id"].as_i64().unwrap().to_string();
    let mut pages = 0;
    for route in cms::http::table::ROUTES {
        let documented = doc["paths"][route.path][route.method.as_str().to_lowercase()].is_object();
        assert_eq!(
            route.is_api(),
            documented,
            "{} {}: OpenAPI and route table disagree",
            route.method,
            route.path
        );
        // A public item's audio needs a public item (tests/public.rs fetches it); the
        // province's pages are for province-wide users (tests/province.rs).
        if route.is_api()
            || route.method != Method::GET
            || route.path.contains("/audio/")
            || route.path.starts_with("/ui/province")
        {
            continue;
        }
        let id = match route.path.contains("emergency") {
            true => &emergency_id,
            false => &node_id,
        };
        let path = route
            .path
            .replace("{file}", "app.css")
            .replace("{id}", id)
            .replace("{commune}", "default");
        let perm = format!("{:?}", route.perm);
        // Anonymous: pages send you to the login page.
        let res = no_redirects
            .get(format!("{}{path}", s.url))
            .send()
            .await
            .unwrap();
        if perm == "Public" {
            assert_eq!(res.status(), 200, "anonymous GET {path}");
        } else {
            assert_eq!(res.status(), 303, "anonymous GET {path}");
            assert_eq!(res.headers()["location"], "/login");
        }
        for (role, api) in &clients {
            let status = api.get(&path).await.status().as_u16();
            let expected = if may(role, &perm) { 200 } else { 403 };
            assert_eq!(status, expected, "{role} GET {path} ({perm})");
        }
        pages += 1;
    }
    assert!(pages >= 10, "{pages} pages");
    // The login form sets the session cookie; a page POST with that cookie needs the
    // page's CSRF token too.
    let res = no_redirects
        .post(format!("{}/login", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "username=p_viewer&password={}",
            common::PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = no_redirects
        .get(format!("{}/", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let res = no_redirects
        .post(format!("{}/logout", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "no CSRF token");
    let res = no_redirects
        .post(format!("{}/logout", s.url))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = no_redirects
        .get(format!("{}/", s.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "logged out");
}
