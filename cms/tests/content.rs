//! The content library over real HTTP: uploads checked by the node's decoder, loudness,
//! TTS, bad input refused with nothing stored, blobs served with Range.

mod common;

use common::{Server, json_of, sample};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn upload_is_decoded_measured_and_stored_by_hash() {
    let s = Server::start().await;
    let editor = s.client("bientap", "editor").await;
    let item = editor.upload_sample("Bản tin sáng", "news.mp3").await;
    assert_eq!(item["status"], "draft");
    assert_eq!(item["title"], "Bản tin sáng");
    assert_eq!(
        item["category"], "announcement",
        "Vietnamese category names are accepted"
    );
    assert_eq!(item["codec"], "mp3");
    let duration = item["duration_ms"].as_u64().unwrap();
    let expected = speaker_node_duration("news.wav");
    assert!(
        duration.abs_diff(expected) <= 30,
        "{duration} vs {expected}"
    );
    let lufs = item["loudness_lufs"].as_f64().unwrap();
    assert!((-40.0..-5.0).contains(&lufs), "{lufs}");
    let gain = item["gain_db"].as_f64().unwrap();
    assert!(
        (gain - (-16.0 - lufs)).abs() < 0.02,
        "gain {gain} for {lufs} LUFS"
    );
    let sha = item["sha256"].as_str().unwrap();
    let bytes = std::fs::read(sample("news.mp3")).unwrap();
    assert_eq!(sha, cms::blobs::sha256_hex(&bytes));
    assert_eq!(s.blob_files(), (1, 0));

    // The blob, whole and by range, with immutable caching.
    let res = editor.get(&format!("/content/{sha}")).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    assert_eq!(res.bytes().await.unwrap(), bytes);
    let res = editor
        .req(Method::GET, &format!("/content/{sha}"))
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 100-199/{}", bytes.len())
    );
    assert_eq!(res.bytes().await.unwrap(), bytes[100..200]);
    let res = editor
        .req(Method::GET, &format!("/content/{sha}"))
        .header("range", "bytes=999999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 416);
    assert_eq!(
        editor
            .get(&format!("/content/{}", "0".repeat(64)))
            .await
            .status(),
        404
    );
    assert_eq!(editor.get("/content/..%2F..%2Floa.db").await.status(), 404);
    // Anonymous: no audio.
    assert_eq!(
        s.anonymous().get(&format!("/content/{sha}")).await.status(),
        401
    );

    // The same file again: a second item, one blob.
    editor.upload_sample("Bản tin sáng (lại)", "news.mp3").await;
    assert_eq!(s.blob_files(), (1, 0));
    let (_, list) = json_of(editor.get("/api/v1/content").await).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[allow(clippy::unwrap_used)] // test helper
fn speaker_node_duration(name: &str) -> u64 {
    audio::decode::probe(&sample(name))
        .unwrap()
        .duration_ms
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_format_of_the_samples_is_accepted() {
    let s = Server::start().await;
    let editor = s.client("bientap", "editor").await;
    for name in [
        "chime.flac",
        "chime.m4a",
        "chime.ogg",
        "chime.wav",
        "formats/tone-ima-adpcm.wav",
        "formats/tone.aiff",
        "formats/tone.mp2",
        "tone-opus.ogg",
        "voice-note.webm",
    ] {
        let item = editor.upload_sample(name, name).await;
        assert!(item["duration_ms"].as_u64().unwrap() > 0, "{name}");
    }
    // Phone voice notes (Opus) are measured like the rest: 2 s, 48 kHz.
    let note = editor.upload_sample("Ghi âm", "voice-note.webm").await;
    assert_eq!(
        (note["codec"].as_str(), note["sample_rate"].as_u64()),
        (Some("opus"), Some(48_000)),
        "{note}"
    );
    assert!(
        (1_900..=2_100).contains(&note["duration_ms"].as_u64().unwrap()),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_uploads_are_refused_and_leave_nothing() {
    let s = Server::start_with(|c| c.max_upload_bytes = 2_000_000).await;
    let editor = s.client("bientap", "editor").await;
    let mp3 = std::fs::read(sample("news.mp3")).unwrap();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("empty.mp3", vec![], 400, "rỗng"),
        (
            "notes.txt",
            "Đây là văn bản, không phải âm thanh.\n"
                .repeat(50)
                .into_bytes(),
            400,
            "không phải tệp âm thanh",
        ),
        (
            "pic.png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"
                .iter()
                .copied()
                .chain(std::iter::repeat_n(7u8, 4000))
                .collect(),
            400,
            "không phải tệp âm thanh",
        ),
        (
            "zeros.wav",
            vec![0; 100_000],
            400,
            "không phải tệp âm thanh",
        ),
        (
            "ac3.mka",
            std::fs::read(sample("unsupported/tone-ac3.mka")).unwrap(),
            415,
            "ac3",
        ),
        ("cut.mp3", mp3[..mp3.len() / 2].to_vec(), 400, "hỏng"),
        ("big.wav", vec![1; 2_100_000], 413, "quá lớn"),
    ];
    for (name, data, status, words) in cases {
        let (code, body) = json_of(editor.upload("x", name, data).await).await;
        assert_eq!(code, status, "{name}: {body}");
        assert!(body["error"].is_string(), "{name}: {body}");
        let msg = body["message"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(words), "{name}: {msg}");
    }
    // Too large with no Content-Length (chunked): caught mid-stream, still a clean 413.
    let chunks =
        futures_util::stream::iter((0..21).map(|_| Ok::<_, std::io::Error>(vec![1u8; 100_000])));
    let part =
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(chunks)).file_name("big.wav");
    let form = reqwest::multipart::Form::new()
        .text("title", "x")
        .text("category", "news")
        .part("file", part);
    let (code, body) = json_of(
        editor
            .req(Method::POST, "/api/v1/content")
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 413, "{body}");
    // English on request.
    let res = editor
        .req(Method::POST, "/api/v1/content")
        .header("accept-language", "en-US,en;q=0.9")
        .multipart(
            reqwest::multipart::Form::new()
                .text("title", "x")
                .text("category", "news")
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("a.mp3"),
                ),
        )
        .send()
        .await
        .unwrap();
    let (code, body) = json_of(res).await;
    assert_eq!(code, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not an audio file"),
        "{body}"
    );
    // Bad fields with a good file.
    let good = std::fs::read(sample("chime.wav")).unwrap();
    let form = |title: &str, category: &str| {
        reqwest::multipart::Form::new()
            .text("title", title.to_owned())
            .text("category", category.to_owned())
            .part(
                "file",
                reqwest::multipart::Part::bytes(good.clone()).file_name("c.wav"),
            )
    };
    for (title, category) in [
        ("", "news"),
        ("ok", "thời tiết"),
        (&"x".repeat(201)[..], "news"),
    ] {
        let res = editor
            .req(Method::POST, "/api/v1/content")
            .multipart(form(title, category))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{title:?} {category:?}");
    }
    // Not multipart, no file field, a broken multipart body.
    let res = editor
        .post("/api/v1/content", json!({ "title": "x" }))
        .await;
    assert_eq!(res.status(), 400);
    let res = editor
        .req(Method::POST, "/api/v1/content")
        .multipart(reqwest::multipart::Form::new().text("title", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = editor
        .req(Method::POST, "/api/v1/content")
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    let (_, list) = json_of(editor.get("/api/v1/content").await).await;
    assert_eq!(list, json!([]), "nothing stored");
    assert_eq!(s.blob_files(), (0, 0), "no blob and no temp file left");
}

#[tokio::test(flavor = "multi_thread")]
async fn text_to_speech_makes_an_item_with_its_text() {
    let s = Server::start().await;
    let editor = s.client("bientap", "editor").await;
    let text = "Thông báo: ngày mai mất điện từ bảy giờ đến mười một giờ.";
    let (code, item) = json_of(
        editor
            .post(
                "/api/v1/content/tts",
                json!({ "title": "Lịch cắt điện", "text": text }),
            )
            .await,
    )
    .await;
    assert_eq!(code, 201, "{item}");
    assert_eq!(item["kind"], "tts");
    assert_eq!(item["tts_text"], text);
    assert_eq!(item["status"], "draft");
    assert!(item["duration_ms"].as_u64().unwrap() > 2000, "{item}");
    assert!(item["loudness_lufs"].is_number());
    // Bad requests.
    for body in [
        json!({ "title": "x", "text": "" }),
        json!({ "title": "x", "text": "a", "voice": "vi; rm -rf /" }),
        json!({ "title": "x" }),
    ] {
        assert_eq!(
            editor
                .post("/api/v1/content/tts", body.clone())
                .await
                .status(),
            400,
            "{body}"
        );
    }
    assert_eq!(s.blob_files().1, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_tts_engine_is_a_clear_error() {
    let s = Server::start_with(|c| c.tts_command = vec!["false".into()]).await;
    let editor = s.client("bientap", "editor").await;
    let (code, body) = json_of(
        editor
            .post(
                "/api/v1/content/tts",
                json!({ "title": "x", "text": "xin chào" }),
            )
            .await,
    )
    .await;
    assert_eq!(code, 502, "{body}");
    assert_eq!(body["error"], "tts_failed");
    assert_eq!(s.blob_files(), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn relay_items_and_search() {
    let s = Server::start().await;
    let editor = s.client("bientap", "editor").await;
    let (code, relay) = json_of(
        editor.post("/api/v1/content/relay", json!({ "title": "Đài tỉnh Quảng Ninh", "url": "http://radio.example/live.mp3", "duration_ms": 3_600_000 })).await,
    )
    .await;
    assert_eq!(code, 201, "{relay}");
    assert_eq!(relay["kind"], "relay");
    assert_eq!(relay["category"], "relay");
    assert_eq!(
        editor
            .post(
                "/api/v1/content/relay",
                json!({ "title": "x", "url": "ftp://x", "duration_ms": 1000 })
            )
            .await
            .status(),
        400
    );
    editor.upload_sample("Bản tin sáng", "news.mp3").await;
    let (_, found) = json_of(editor.get("/api/v1/content?q=t%E1%BB%89nh").await).await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let (_, found) = json_of(editor.get("/api/v1/content?category=news").await).await;
    assert_eq!(found.as_array().unwrap().len(), 0);
    let (_, found) = json_of(editor.get("/api/v1/content?status=draft&limit=1").await).await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(
        editor.get("/api/v1/content?status=bogus").await.status(),
        400
    );
    assert_eq!(editor.get("/api/v1/content?limit=abc").await.status(), 400);
}

/// Whatever staff type is text on every page: the templates escape it, never the caller.
#[tokio::test(flavor = "multi_thread")]
async fn typed_text_is_escaped_on_every_page() {
    let s = Server::start().await;
    let admin = s.client("quantri", "admin").await;
    let hostile = r#"<script>alert("x")</script> & 'q'"#;
    let item = admin.upload_sample(hostile, "news.mp3").await;
    let res = admin
        .req(Method::PATCH, &format!("/api/v1/content/{}", item["id"]))
        .json(&json!({ "description": hostile }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let village = admin
        .post("/api/v1/villages", json!({ "name": hostile }))
        .await;
    let (status, v) = json_of(village).await;
    assert_eq!(status, 201, "{v}");
    let node = json!({ "name": hostile, "village_id": v["id"], "notes": hostile });
    let (status, n) = json_of(admin.post("/api/v1/nodes", node).await).await;
    assert_eq!(status, 201, "{n}");
    for page in [
        "/".to_string(),
        "/ui/content".into(),
        format!("/ui/content?edit={}", item["id"]),
        "/ui/places".into(),
        format!("/ui/nodes/{}", n["id"]),
        "/ui/audit".into(),
    ] {
        let res = admin.get(&page).await;
        assert_eq!(res.status(), 200, "{page}");
        let html = res.text().await.unwrap();
        assert!(
            !html.contains("<script>alert"),
            "{page} carries the raw text"
        );
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp;"),
            "{page} shows it as text"
        );
    }
}

/// Writes racing on one item all land: a transaction that read first could not wait for
/// the write lock and answered 500 "database is locked" (found by schemathesis).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_edits_all_land() {
    let s = Server::start().await;
    let editor = s.client("bientap", "editor").await;
    let item = editor.upload_sample("Bản tin", "news.mp3").await;
    let path = format!("/api/v1/content/{}", item["id"]);
    let edits = (0..24).map(|i| {
        let req = editor
            .req(Method::PATCH, &path)
            .json(&json!({ "description": format!("lần sửa {i}") }));
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures_util::future::join_all(edits).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}
