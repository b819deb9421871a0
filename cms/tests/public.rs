//! The villagers' side over real HTTP, no login: the public page lists only items marked
//! public, the RSS feed is read by feedparser (what podcast tools use) and every
//! enclosure it names is fetched with its stated length and type; nothing else leaks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed step fails the test

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Server, approved_item, json_of};
use reqwest::Method;
use serde_json::{Value, json};

/// The feed as feedparser reads it: its entries' titles and enclosures.
fn parse_feed(xml: &str) -> Value {
    let script = r#"
import sys, json, feedparser
f = feedparser.parse(sys.stdin.buffer.read())
print(json.dumps({
  "bozo": bool(f.bozo), "version": f.version, "title": f.feed.get("title"),
  "entries": [{"title": e.title, "published": e.get("published_parsed") is not None,
               "enclosures": [{"href": x.href, "length": x.length, "type": x.type} for x in e.enclosures]}
              for e in f.entries]}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with feedparser (./loa deps installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "feedparser failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn villagers_hear_public_items_on_the_page_and_in_their_podcast_app() {
    let s = Server::start().await;
    let (editor, approver, public) = approved_item(&s).await;
    let private = editor.upload_sample("Việc nội bộ", "chime.wav").await["id"]
        .as_i64()
        .unwrap();
    for a in ["submit", "approve"] {
        let api = if a == "submit" { &editor } else { &approver };
        let res = api
            .post(&format!("/api/v1/content/{private}/{a}"), json!({}))
            .await;
        assert_eq!(res.status(), 200);
    }
    let res = editor
        .req(Method::PATCH, &format!("/api/v1/content/{public}"))
        .json(&json!({ "public": true, "description": "Bản tin sáng & tối <thứ hai>" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The edit sent it back for approval: approve it again.
    let res = approver
        .post(&format!("/api/v1/content/{public}/approve"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let http = reqwest::Client::new();

    // The page: the public item only, its words escaped, cacheable.
    let res = http
        .get(format!("{}/public/default/", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=300")
    );
    let page = res.text().await.unwrap();
    assert!(page.contains("Bản tin") && page.contains("Nghe lại thông báo"));
    assert!(page.contains("Bản tin sáng &amp; tối &lt;thứ hai&gt;"));
    assert!(!page.contains("Việc nội bộ"));
    assert!(page.len() < 20_000, "small page: {} bytes", page.len());

    // The feed, as a podcast app reads it; every enclosure fetched as stated.
    let res = http
        .get(format!("{}/public/default/feed.xml", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["content-type"],
        "application/rss+xml; charset=utf-8"
    );
    let feed = parse_feed(&res.text().await.unwrap());
    assert_eq!(feed["bozo"], false, "{feed}");
    assert_eq!(feed["version"], "rss20");
    let entries = feed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{feed}");
    assert_eq!(entries[0]["title"], "Bản tin");
    assert_eq!(entries[0]["published"], true);
    let enc = &entries[0]["enclosures"][0];
    assert_eq!(enc["type"], "audio/mpeg");
    let res = http
        .get(enc["href"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "audio/mpeg");
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len().to_string(), enc["length"].as_str().unwrap());
    // Seeking works for a phone's player.
    let res = http
        .get(enc["href"].as_str().unwrap())
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);

    // Nothing private leaks, and unknown places are not found.
    let (_, item) = json_of(editor.get(&format!("/api/v1/content/{private}")).await).await;
    let sha = item["sha256"].as_str().unwrap();
    let href = enc["href"].as_str().unwrap();
    for path in [
        format!("/public/default/audio/{sha}.wav"),
        href.replace(".mp3", ".ogg").replace(&s.url, ""),
        "/public/khong-co-xa/".to_owned(),
        "/public/khong-co-xa/feed.xml".to_owned(),
    ] {
        let res = http.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    // Archived, it leaves the page and the feed.
    let res = editor
        .post(&format!("/api/v1/content/{public}/archive"), json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let feed = http
        .get(format!("{}/public/default/feed.xml", s.url))
        .send()
        .await
        .unwrap();
    let feed = parse_feed(&feed.text().await.unwrap());
    assert_eq!(feed["entries"].as_array().unwrap().len(), 0);
}
