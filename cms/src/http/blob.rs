//! Serving blobs: immutable (addressed by hash), so cacheable for a year by any cache;
//! `Range` requests for resuming downloads and seeking in the browser's player.

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use warp::Reply;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::Req;
use crate::Cms;
use crate::error::{CmsError, Result};

pub async fn serve(cms: &Cms, sha256: &str, req: &Req) -> Result<Response> {
    let missing = || CmsError::not_found("Không tìm thấy tệp âm thanh", "Audio blob");
    let path = cms.blobs().path(sha256).ok_or_else(missing)?;
    let size = tokio::fs::metadata(&path)
        .await
        .map_err(|_| missing())?
        .len();
    let etag = format!("\"{sha256}\"");
    if req
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        let mut res =
            super::reply::with_status(304, "application/octet-stream", bytes::Bytes::new());
        res.headers_mut().insert(
            header::ETAG,
            HeaderValue::from_str(&etag).map_err(|e| CmsError::Storage(e.to_string()))?,
        );
        return Ok(res);
    }
    let range = match req.header("range") {
        None => None,
        Some(r) => match parse_range(r, size) {
            Some(range) => Some(range),
            None => {
                let err =
                    CmsError::invalid("Khoảng byte không hợp lệ.", "Unsatisfiable byte range.");
                let mut res = super::reply::error(&err, req.lang);
                *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                res.headers_mut().insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{size}")),
                );
                return Ok(res);
            }
        },
    };
    let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
    let len = if size == 0 { 0 } else { end - start + 1 };
    let gate = cms.blobs().streams();
    let mut res = match cms.blobs().hot().get(sha256, &path, size).await {
        // Slices of the one copy in memory: no read, no copy.
        Some(bytes) if len > 0 => {
            let mut rest = bytes.slice(start as usize..=end as usize);
            let mut chunks = Vec::new();
            while !rest.is_empty() {
                chunks.push(Ok::<_, std::io::Error>(
                    rest.split_to(CHUNK.min(rest.len())),
                ));
            }
            warp::reply::stream(gated(gate, futures_util::stream::iter(chunks))).into_response()
        }
        _ => {
            let mut file = tokio::fs::File::open(&path).await.map_err(|_| missing())?;
            file.seek(std::io::SeekFrom::Start(start)).await?;
            // 256 KiB a read: each read of a tokio file is a trip to the blocking pool,
            // and the default 4 KiB made a 5 MB blob 1,300 of them.
            let stream = ReaderStream::with_capacity(file.take(len), CHUNK);
            warp::reply::stream(gated(gate, stream)).into_response()
        }
    };
    if range.is_some() {
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
        res.headers_mut().insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes {start}-{end}/{size}")),
        );
    }
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, header_value(&len.to_string()));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::ETAG, header_value(&etag));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(res)
}

/// What a blob body is handed out in.
const CHUNK: usize = 256 * 1024;

/// `body`, once one of the blob streams is free, holding it for at most [`HOLD`]. A fleet
/// fetching a new item all at once over loopback or a LAN gets it as fast (the pipe is as
/// full), and the API's requests wait behind a few dozen busy transfers, not a thousand. A
/// body still going after [`HOLD`] is a slow link (3G), which costs the server little:
/// it gives its place up and goes on ungated, so slow nodes never hold fast ones back for
/// long. The response's head goes out at once; the body waits.
fn gated<S, T>(
    gate: std::sync::Arc<tokio::sync::Semaphore>,
    body: S,
) -> impl futures_util::Stream<Item = T> + Send + 'static
where
    S: futures_util::Stream<Item = T> + Send + 'static,
{
    use futures_util::StreamExt;
    let body = Box::pin(body);
    futures_util::stream::unfold(
        (Some(gate), None, body),
        |(gate, permit, mut body)| async move {
            let permit = match (permit, gate) {
                (Some(held), _) => Some(held),
                (None, Some(gate)) => {
                    Some((gate.acquire_owned().await.ok()?, std::time::Instant::now()))
                }
                (None, None) => None,
            };
            let permit = permit.filter(|(_, since)| since.elapsed() < HOLD);
            let chunk = body.next().await?;
            Some((chunk, (None, permit, body)))
        },
    )
}

/// How long a blob body may hold its place among [`crate::blobs::BLOB_STREAMS`].
const HOLD: std::time::Duration = std::time::Duration::from_secs(1);

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""))
}

/// One `bytes=a-b`, `bytes=a-` or `bytes=-n` range, inclusive, within `size`.
fn parse_range(header: &str, size: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.checked_sub(n.min(size))?, size - 1)
        }
        (a, "") => (a.parse().ok()?, size - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::{HOLD, gated, parse_range};
    use futures_util::StreamExt;

    #[tokio::test]
    async fn a_body_holds_its_place_until_it_ends_or_the_hold_is_over() {
        let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        let mut short = Box::pin(gated(gate.clone(), futures_util::stream::iter([1])));
        assert_eq!(short.next().await, Some(1));
        assert_eq!(gate.available_permits(), 0, "held while the body may go on");
        assert_eq!(short.next().await, None);
        assert_eq!(gate.available_permits(), 1, "given back at the end");
        let mut slow = Box::pin(gated(gate.clone(), futures_util::stream::iter([1, 2, 3])));
        assert_eq!(slow.next().await, Some(1));
        assert_eq!(gate.available_permits(), 0);
        tokio::time::sleep(HOLD + std::time::Duration::from_millis(50)).await;
        assert_eq!(slow.next().await, Some(2));
        assert_eq!(
            gate.available_permits(),
            1,
            "a slow link gives its place up"
        );
        assert_eq!(slow.next().await, Some(3));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99", 1000), Some((0, 99)));
        assert_eq!(parse_range("bytes=900-", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=-100", 1000), Some((900, 999)));
        assert_eq!(parse_range("bytes=0-5000", 1000), Some((0, 999)));
        assert_eq!(parse_range("bytes=1000-", 1000), None);
        assert_eq!(parse_range("bytes=5-1", 1000), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(parse_range("items=0-1", 1000), None);
        assert_eq!(parse_range("bytes=x-", 1000), None);
    }
}
