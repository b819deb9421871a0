//! Speaking live through the browser's microphone: Chromium's fake capture device plays
//! a known WAV (the news sample), the page streams it, the demo's nodes play it.

use super::*;

/// A browser whose microphone plays the news sample (speech), as WAV (Chromium's fake
/// capture device), in Vietnamese as the commune's staff have it.
pub(super) async fn start_mic_browser(dir: &Path) -> (Proc, Client) {
    let voice = dir.join("voice.wav");
    let ok = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(samples().join("news.mp3"))
        .args(["-ac", "1", "-ar", "48000", "-c:a", "pcm_s16le"])
        .arg(&voice)
        .status()
        .unwrap();
    assert!(ok.success());
    let extra = [
        "--use-fake-ui-for-media-stream".to_string(),
        "--use-fake-device-for-media-stream".to_string(),
        format!("--use-file-for-fake-audio-capture={}", voice.display()),
        "--autoplay-policy=no-user-gesture-required".to_string(),
        "--lang=vi-VN".to_string(),
    ];
    start_browser_with(&dir.join("profile"), &extra).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_editor_speaks_live_through_the_browser_microphone() {
    let dir = tempfile::tempdir().unwrap();
    let (_controller, base) = start_controller(&dir.path().join("data"));
    let (_driver, c) = start_mic_browser(dir.path()).await;
    let api = api_login(&base, "bientap").await;
    login(&c, &base, "bientap").await;
    c.goto(&format!("{base}/ui/live")).await.unwrap();
    wait_text(&c, "Bắt đầu nói").await;
    // The village of a demo node that plays into a simulated card (the first may have the
    // machine's sound device).
    let nodes = api_get(&api, &base, "/api/v1/nodes").await;
    let card_of = |n: &serde_json::Value| {
        dir.path()
            .join("data/nodes")
            .join(format!("{}.wav", n["id"]))
    };
    let node = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| card_of(n).exists())
        .cloned()
        .expect("a demo node with a simulated card");
    let village_id = node["village_id"].as_i64().unwrap();
    click(
        &c,
        Locator::Css(&format!("input[name='mic-village'][value='{village_id}']")),
    )
    .await;
    click(&c, Locator::Id("mic-start")).await;
    wait_text(&c, "Đang phát trực tiếp — nói vào micrô").await;
    // On air, from the browser, in that village; the level meter moves.
    let session = {
        let started = Instant::now();
        loop {
            let on_air = api_get(&api, &base, "/api/v1/live").await;
            if let Some(s) = on_air.as_array().and_then(|a| a.first()).cloned() {
                break s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no session on air"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(session["source"], "browser");
    assert_eq!(session["started_by_name"], "bientap");
    assert_eq!(session["villages"], json!([village_id]));
    let mut loudest = 0.0f64;
    for _ in 0..20 {
        let v = c
            .execute("return document.getElementById('mic-level').value", vec![])
            .await
            .unwrap();
        loudest = loudest.max(v.as_f64().unwrap_or(0.0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(loudest > 0.05, "the level meter never moved: {loudest}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    click(&c, Locator::Id("mic-stop")).await;
    wait_text(&c, "Đã dừng.").await;
    // The session ends, and the village's node logged it as played whole.
    let id = session["id"].as_i64().unwrap();
    let started = Instant::now();
    loop {
        let logs = api_get(
            &api,
            &base,
            &format!("/api/v1/playlogs?node={}", node["id"]),
        )
        .await;
        let live = logs
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["schedule_id"] == id)
            .cloned();
        if let Some(log) = live {
            assert_eq!(log["outcome"], "completed", "{log}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the node never logged the live play"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let ended = api_get(&api, &base, &format!("/api/v1/live/{id}")).await;
    assert!(ended["ended_at"].is_string(), "{ended}");
    // From the microphone to the loudspeaker: the fake microphone plays voice.wav from the
    // moment it opens (the page notes when, on this machine's clock), the node's card says
    // when each of its samples left. Second 1 to 4 of the voice is looked for on the card.
    let opened_ms = c
        .execute(
            "return Number(document.getElementById('mic').dataset.openedAt)",
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    let card = loa_tests::Card::read(&card_of(&node));
    let voice = voice_at(dir.path(), card.rate.round() as u32);
    let per_s = card.rate.round() as usize;
    let (at, corr) = locate(&card, &voice[per_s..4 * per_s]);
    let played_ms = (card.first_ns as f64 + at / card.rate * 1e9) / 1e6;
    let latency = played_ms - (opened_ms + 1_000.0);
    eprintln!(
        "browser microphone to node output: {latency:.0} ms (the voice found on the card at \
         correlation {corr:.2})"
    );
    assert!(
        corr > 0.5,
        "the voice is not on the card: correlation {corr:.2}"
    );
    assert!(
        (0.0..1_500.0).contains(&latency),
        "microphone to output {latency:.0} ms"
    );
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_speaks_an_emergency_live_watches_its_reach_and_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_controller, base) = start_controller(&dir.path().join("data"));
    let (_driver, c) = start_mic_browser(dir.path()).await;
    let api = api_login(&base, "pheduyet").await;
    login(&c, &base, "pheduyet").await;
    // From the red button's form to the microphone, the emergency level already chosen.
    click(&c, Locator::Css("a.emergency-button")).await;
    wait_path(&c, "/ui/emergency").await;
    click(&c, Locator::Id("e-live")).await;
    wait_text(&c, "Bắt đầu nói").await;
    let level = c
        .execute(
            "return document.getElementById('mic-priority').value",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(level, json!("emergency"));
    // Every village with a demo node.
    let nodes = api_get(&api, &base, "/api/v1/nodes").await;
    let mut villages: Vec<i64> = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["village_id"].as_i64())
        .collect();
    villages.dedup();
    for v in &villages {
        click(
            &c,
            Locator::Css(&format!("input[name='mic-village'][value='{v}']")),
        )
        .await;
    }
    click(&c, Locator::Id("mic-start")).await;
    wait_text(&c, "Đang phát trực tiếp — nói vào micrô").await;
    // The page links the emergency's reach; every node confirms it plays the live voice.
    let started = Instant::now();
    let id = loop {
        let href = c
            .execute(
                "const a = document.getElementById('mic-reach'); \
                 return a.classList.contains('hidden') ? null : a.getAttribute('href')",
                vec![],
            )
            .await
            .unwrap();
        if let Some(id) = href
            .as_str()
            .and_then(|h| h.strip_prefix("/ui/emergency/"))
            .and_then(|id| id.parse::<i64>().ok())
        {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no reach link on the live page"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let emergency = loop {
        let e = api_get(&api, &base, &format!("/api/v1/emergency/{id}")).await;
        if e["total"] == json!(nodes.as_array().unwrap().len()) && e["reached"] == e["total"] {
            break e;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the live emergency never reached every node: {e}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(emergency["live"], json!(true), "{emergency}");
    assert!(emergency["content_id"].is_null(), "{emergency}");
    // Stopped through the API: the session ends and the browser's connection closes.
    let stopped = api
        .0
        .delete(format!("{base}/api/v1/emergency/{id}"))
        .bearer_auth(&api.1)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200);
    wait_text(&c, "Đã dừng.").await;
    let schedule = emergency["schedule_id"].as_i64().unwrap();
    let session = api_get(&api, &base, &format!("/api/v1/live/{schedule}")).await;
    assert!(session["ended_at"].is_string(), "{session}");
    assert_eq!(session["emergency_id"], json!(id));
    c.close().await.unwrap();
}

/// The fake microphone's voice, mono at `rate`.
fn voice_at(dir: &Path, rate: u32) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(dir.join("voice.wav"))
        .args(["-ac", "1", "-ar", &rate.to_string(), "-f", "f32le", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// Pearson correlation of `a` and `b` (same length).
fn pearson(a: &[f32], b: impl Iterator<Item = f32>) -> f64 {
    let n = a.len() as f64;
    let (mut sa, mut sb, mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (&x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        sa += x;
        sb += y;
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    let (va, vb) = (saa - sa * sa / n, sbb - sb * sb / n);
    if va <= 0.0 || vb <= 0.0 {
        return 0.0;
    }
    (sab - sa * sb / n) / (va * vb).sqrt()
}

/// Where on `card` (channel 0, frame) `clip` plays, and how well it matches there. The
/// voice went through the browser's audio processing (noise suppression, echo cancelling)
/// and two Opus encodings, which keep its loudness contour but not its waveform: the
/// 10-ms loudness envelope is found over the whole card, then the 1-ms one within 20 ms.
fn locate(card: &loa_tests::Card, clip: &[f32]) -> (f64, f64) {
    let played: Vec<f32> = card
        .samples
        .iter()
        .step_by(card.channels)
        .copied()
        .collect();
    let envelope = |x: &[f32], block: usize| -> Vec<f32> {
        x.chunks_exact(block)
            .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
            .collect()
    };
    let best = |lags: std::ops::Range<usize>, clip: &[f32], card: &[f32]| {
        lags.filter(|lag| lag + clip.len() <= card.len())
            .map(|lag| (pearson(clip, card[lag..].iter().copied()), lag))
            .fold((f64::MIN, 0), |a, b| if b.0 > a.0 { b } else { a })
    };
    let ms = (card.rate / 1000.0) as usize;
    let (corr, coarse) = best(
        0..played.len() / (10 * ms),
        &envelope(clip, 10 * ms),
        &envelope(&played, 10 * ms),
    );
    let fine = best(
        (coarse * 10).saturating_sub(20)..coarse * 10 + 20,
        &envelope(clip, ms),
        &envelope(&played, ms),
    );
    ((fine.1 * ms) as f64, corr)
}
