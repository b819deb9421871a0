//! Live sources for the tests: the source password the test controllers are started with,
//! and a source that PUTs a WAV in real time.

use std::time::{Duration, Instant};

use crate::now_ns;

/// The `--source-password` of controllers that take live sources in the tests.
pub const SOURCE_PASSWORD: &str = "nguon-truc-tiep";
/// Their `--emergency-source-password`, where a test needs one.
pub const WARNING_PASSWORD: &str = "canh-bao-khan";

/// PUTs a 48 kHz mono 16-bit WAV to `url` in real time, 20 ms a chunk, and drops the
/// connection after `seconds` (mid-stream, as a source that dies); returns when its first
/// sample left.
pub async fn send_paced(url: &str, wav: Vec<u8>, seconds: f32) -> i64 {
    send_paced_as(url, SOURCE_PASSWORD, wav, seconds).await
}

/// [`send_paced`] with the source password `password`.
pub async fn send_paced_as(url: &str, password: &str, wav: Vec<u8>, seconds: f32) -> i64 {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let put = reqwest::Client::new()
        .put(url)
        .basic_auth("source", Some(password))
        .body(body)
        .send();
    let put = tokio::spawn(put);
    let began = Instant::now();
    let began_ns = now_ns();
    let chunk = 48_000 * 2 / 50; // 20 ms of 16-bit mono
    let header = 44;
    // The body's receiver goes only with the request (refused, or the server gone).
    let _ = tx.send(Ok(wav[..header].to_vec())).await;
    let mut sent = header;
    let stop_at = (header + (seconds * 48_000.0) as usize * 2).min(wav.len());
    while sent < stop_at {
        let next = (sent + chunk).min(stop_at);
        if tx.send(Ok(wav[sent..next].to_vec())).await.is_err() {
            break;
        }
        sent = next;
        let due = Duration::from_nanos(((sent - header) as u64 / 2) * 1_000_000_000 / 48_000);
        if let Some(wait) = due.checked_sub(began.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    tx.send(Err(std::io::Error::other("source gone")))
        .await
        .ok();
    drop(tx);
    let _ = put.await;
    began_ns
}
