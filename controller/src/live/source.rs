//! The Icecast-style source connection: its request head read and checked by hand, its
//! body (unframed, chunked, or with a length) fed to the session as it comes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::schedule::Priority;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use warp::http::StatusCode;

use super::{Mounts, QUEUE, Refusal, carry, refusal};
use crate::Conn;
use crate::hub::Hub;

/// Whether a connection's first bytes are a live source's request (`PUT /live/` or the
/// older `SOURCE /live/`). Such requests are served here, not by the HTTP stack: broadcast
/// tools send the body with neither a length nor chunked framing, until they hang up,
/// which an HTTP/1.1 server must read as an empty body.
pub fn is_source(head: &[u8]) -> bool {
    head.starts_with(b"PUT /live/") || head.starts_with(b"SOURCE /live/")
}

/// The largest request head taken from a source.
const MAX_HEAD: usize = 16 * 1024;
/// A source has this long to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// What a source's request head says.
struct SourceRequest {
    legacy: bool,
    village: String,
    authorization: Option<String>,
    expect_continue: bool,
    chunked: bool,
    length: Option<u64>,
}

fn parse_head(head: &str) -> Option<SourceRequest> {
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let method = parts.next()?;
    let path = parts.next()?.split('?').next()?;
    let village = path
        .strip_prefix("/live/")?
        .trim_end_matches('/')
        .to_owned();
    let mut req = SourceRequest {
        legacy: method == "SOURCE",
        village,
        authorization: None,
        expect_continue: false,
        chunked: false,
        length: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "authorization" => req.authorization = Some(value.to_owned()),
            "expect" => req.expect_continue = value.eq_ignore_ascii_case("100-continue"),
            "transfer-encoding" => req.chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-length" => req.length = value.parse().ok(),
            _ => {}
        }
    }
    Some(req)
}

/// Serves one live source connection to its end.
/// Any bytes as what a source sends first: whether it is one, its head read (within
/// [`MAX_HEAD`]: at most one read past it), parsed, its credentials checked and, if it
/// says chunked, the rest de-chunked. What the `ingest` fuzz target and the replay of
/// mutated handshakes run: it must never panic.
pub async fn handshake(bytes: &[u8]) {
    let _ = is_source(bytes);
    let mut reader: &[u8] = bytes;
    let Ok((head, rest)) = read_head(&mut reader).await else {
        return;
    };
    assert!(
        head.len() <= MAX_HEAD + 2048,
        "head of {} bytes",
        head.len()
    );
    if let Some(req) = parse_head(&head) {
        let _ = authorised(req.authorization.as_deref(), "hackme");
        if req.chunked {
            let _ = Dechunker::default().feed(&rest);
        }
    }
}

pub async fn serve_source<S: Conn>(
    hub: Arc<Hub>,
    mounts: Arc<Mounts>,
    mut stream: S,
    addr: SocketAddr,
) {
    let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            tracing::warn!(%addr, "live source: {e}");
            return refuse(&mut stream, (StatusCode::BAD_REQUEST, e)).await;
        }
        Err(_) => return,
    };
    let Some(req) = parse_head(&head) else {
        return refuse(
            &mut stream,
            (StatusCode::BAD_REQUEST, "malformed request".into()),
        )
        .await;
    };
    let check = check_source(&hub, &mounts, &req);
    let (village, token, priority) = match check {
        Ok(v) => v,
        Err(refusal) => {
            tracing::warn!(%addr, village = %req.village, status = refusal.0.as_u16(), "live source refused: {}", refusal.1);
            return refuse(&mut stream, refusal).await;
        }
    };
    // Accepted: the source may stream.
    let go: &[u8] = match (req.legacy, req.expect_continue) {
        (true, _) => b"HTTP/1.0 200 OK\r\n\r\n",
        (false, true) => b"HTTP/1.1 100 Continue\r\n\r\n",
        (false, false) => b"",
    };
    if stream.write_all(go).await.is_err() {
        mounts.free(token);
        return;
    }
    let (reader, mut writer) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(QUEUE);
    let feeder = tokio::spawn(read_body(reader, rest, req.chunked, req.length, tx));
    let result = run_session(hub, village, priority, addr.to_string(), rx).await;
    feeder.abort();
    mounts.free(token);
    let reply: &[u8] = match (&result, req.legacy) {
        (_, true) => b"",
        (Ok(()), false) => b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        (Err(_), false) => b"",
    };
    if let Err(refusal) = result {
        let mut stream = writer;
        let _ = write_refusal(&mut stream, refusal).await;
        return;
    }
    let _ = writer.write_all(reply).await;
}

/// Credentials, the village, the mount: the village id, the token of its mount and the
/// level the source speaks at (its password says which).
fn check_source(
    hub: &Hub,
    mounts: &Mounts,
    req: &SourceRequest,
) -> Result<(i64, u64, Priority), Refusal> {
    let config = hub.live_config();
    let levels = [
        (
            config.emergency_source_password.as_deref(),
            Priority::Emergency,
        ),
        (config.source_password.as_deref(), Priority::Priority),
    ];
    if levels.iter().all(|(p, _)| p.is_none()) {
        return Err((
            StatusCode::FORBIDDEN,
            "live ingest is off (controller serve --source-password)".into(),
        ));
    }
    let Some(priority) = levels.iter().find_map(|(password, level)| {
        password
            .filter(|p| authorised(req.authorization.as_deref(), p))
            .map(|_| *level)
    }) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "wrong source credentials (source:PASSWORD)".into(),
        ));
    };
    let Some(village) = req.village.parse::<i64>().ok().filter(|v| *v > 0) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no village {:?}", req.village),
        ));
    };
    match mounts.take(&[village], priority) {
        Some(token) => Ok((village, token, priority)),
        None => Err((
            StatusCode::CONFLICT,
            format!("village {village} is already live"),
        )),
    }
}

/// Reads up to the end of the request head; returns it and the body bytes read past it.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(String, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the request head ended".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            buf.truncate(end);
            let head =
                String::from_utf8(buf).map_err(|_| "request head is not text".to_string())?;
            return Ok((head, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err("request head too large".into());
        }
    }
}

/// The body as it comes: chunked framing undone, a length honoured, or to the end of
/// the connection (what broadcast tools send).
async fn read_body<R: AsyncRead + Unpin>(
    mut reader: R,
    first: Vec<u8>,
    chunked: bool,
    length: Option<u64>,
    tx: mpsc::Sender<bytes::Bytes>,
) {
    let mut pending = first;
    let mut left = length;
    let mut dechunk = Dechunker::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !pending.is_empty() {
            let data = match chunked {
                true => match dechunk.feed(&pending) {
                    Some(d) => d,
                    None => return,
                },
                false => std::mem::take(&mut pending),
            };
            pending.clear();
            let data = match left {
                Some(l) => {
                    let take = (l as usize).min(data.len());
                    left = Some(l - take as u64);
                    data[..take].to_vec()
                }
                None => data,
            };
            if !data.is_empty() && tx.send(bytes::Bytes::from(data)).await.is_err() {
                return;
            }
            if left == Some(0) || dechunk.done {
                return;
            }
        }
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

/// Undoes HTTP/1.1 chunked framing, fed bytes as they come.
#[derive(Default)]
struct Dechunker {
    /// Bytes left in the current chunk.
    left: usize,
    /// Framing bytes held until a line is whole.
    line: Vec<u8>,
    /// The CRLF after a chunk's data is still to skip.
    skip_crlf: usize,
    done: bool,
}

impl Dechunker {
    /// The data in `input`; `None` on malformed framing.
    fn feed(&mut self, mut input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        while !input.is_empty() && !self.done {
            if self.left > 0 {
                let n = self.left.min(input.len());
                out.extend_from_slice(&input[..n]);
                self.left -= n;
                input = &input[n..];
                if self.left == 0 {
                    self.skip_crlf = 2;
                }
                continue;
            }
            if self.skip_crlf > 0 {
                let n = self.skip_crlf.min(input.len());
                self.skip_crlf -= n;
                input = &input[n..];
                continue;
            }
            self.line.push(input[0]);
            input = &input[1..];
            if self.line.len() > 64 {
                return None;
            }
            if self.line.ends_with(b"\r\n") {
                let text = std::str::from_utf8(&self.line[..self.line.len() - 2]).ok()?;
                let size = text.split(';').next()?.trim();
                let size = usize::from_str_radix(size, 16).ok()?;
                self.line.clear();
                if size == 0 {
                    self.done = true;
                } else {
                    self.left = size;
                }
            }
        }
        Some(out)
    }
}

async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, refusal: Refusal) {
    let _ = write_refusal(stream, refusal).await;
}

async fn write_refusal(
    stream: &mut (impl AsyncWriteExt + Unpin),
    (status, message): Refusal,
) -> std::io::Result<()> {
    let body = serde_json::json!({ "error": error_code(status), "message": message }).to_string();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

fn error_code(s: StatusCode) -> &'static str {
    match s {
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        _ => "invalid",
    }
}

/// Checks `source:PASSWORD` (constant time).
fn authorised(auth: Option<&str>, password: &str) -> bool {
    use base64::Engine;
    let Some(b64) = auth.and_then(|a| a.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    cms::http::constant_time_eq(&decoded, format!("source:{password}").as_bytes())
}

async fn run_session(
    hub: Arc<Hub>,
    village: i64,
    priority: Priority,
    addr: String,
    chunks_rx: mpsc::Receiver<bytes::Bytes>,
) -> Result<(), Refusal> {
    let lead = hub.live_config().buffer_ms as i64;
    let start = hub
        .cms()
        .start_live(None, vec![village], priority, "icecast", addr, lead)
        .await
        .map_err(refusal)?;
    carry(hub, start, chunks_rx).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_source_and_the_password() {
        use base64::Engine;
        let b = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        assert!(authorised(Some(&b("source:hackme")), "hackme"));
        assert!(!authorised(Some(&b("source:hackm")), "hackme"));
        assert!(!authorised(Some(&b("admin:hackme")), "hackme"));
        assert!(!authorised(Some("Bearer x"), "hackme"));
        assert!(!authorised(Some("Basic !!!"), "hackme"));
        assert!(!authorised(None, "hackme"));
    }

    #[test]
    fn heads_and_chunked_bodies_are_read() {
        let head = "PUT /live/7?x=1 HTTP/1.1\r\nAuthorization: Basic abc\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked";
        let req = parse_head(head).unwrap();
        assert_eq!(req.village, "7");
        assert!(req.expect_continue && req.chunked && !req.legacy);
        assert_eq!(req.authorization.as_deref(), Some("Basic abc"));
        assert!(parse_head("SOURCE /live/3 HTTP/1.0").unwrap().legacy);
        assert!(parse_head("GET / HTTP/1.1").is_none());
        assert!(is_source(b"SOURCE /live/3 HTTP/1.0") && !is_source(b"PUT /api/v1/x"));
        let mut d = Dechunker::default();
        let mut out = d.feed(b"5\r\nhel").unwrap();
        out.extend(d.feed(b"lo\r\n3;ext=1\r\n wo\r\n0\r\n\r\n").unwrap());
        assert_eq!(out, b"hello wo");
        assert!(d.done);
        assert!(Dechunker::default().feed(b"zz\r\n").is_none());
        assert!(Dechunker::default().feed(&[b'1'; 100]).is_none());
    }

    /// The live ingest handshake under a few thousand deterministic mutations of real
    /// source requests (what ffmpeg, BUTT and a chunked PUT send: the fuzz target's seeds): reading the head,
    /// parsing it, checking the credentials and de-chunking the body never panic, and the
    /// head read never takes more than its limit.
    #[tokio::test]
    async fn mutated_source_handshakes_never_panic() {
        use protocol::fuzzing::{Rng, mutate, mutate_text, seeds};
        // The fuzz target's seeds (controller/fuzz/corpus/ingest).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ingest");
        let seeds: Vec<Vec<u8>> = seeds(&dir, 4).into_iter().map(|(_, b)| b).collect();
        let mut rng = Rng(0x2545_f491);
        for seed in &seeds {
            for i in 0..400 {
                let bytes = if i % 2 == 0 {
                    mutate(seed, &mut Rng(rng.next_u32()))
                } else {
                    let text = String::from_utf8_lossy(seed);
                    mutate_text(&text, &mut Rng(rng.next_u32())).into_bytes()
                };
                handshake(&bytes).await;
            }
        }
    }
}
