//! Live ingest, Icecast style: a broadcast tool (ffmpeg, BUTT, Liquidsoap, Mixxx) sends
//! MP3, AAC or Ogg to `PUT /live/{village_id}` (or the older `SOURCE` method) with HTTP
//! basic auth `source:PASSWORD`. The controller's connection loop hands such connections
//! here ([`is_source`]): their bodies have no framing and run until the tool hangs up.
//! The controller decodes what arrives (the node's own decoder, fed as the body streams
//! in), mixes it to mono, resamples it to 48 kHz, encodes 20 ms Opus frames and stamps
//! each with the instant it is to leave every node's output: the moment it was encoded
//! plus one fleet-wide buffer. Two frames go out per binary link message to the village's
//! nodes. The session itself is a schedule (`Cms::start_live`): nodes play it as any other
//! play, at its priority, and log it.
//!
//! Pacing: a source faster than real time is held back (its TCP stream waits); a source
//! that stalls leaves a gap and resumes at the buffer's distance, never behind. A source
//! that ends (or drops) ends the session once its last frame has played, after a short
//! grace. A second source on a busy mount is refused with 409.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use audio::decode::Decoder;
use audio::dsp::StreamResampler;
use audio::voice::{self, VoiceEncoder};
use bytes::Buf;
use protocol::live::LivePacket;
use protocol::schedule::Priority;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use warp::http::StatusCode;

use crate::hub::Hub;

/// Frames per link message: 40 ms of voice in ~150 bytes.
const FRAMES_PER_PACKET: usize = 2;
/// A frame is sent no later than this before it is due (else the stream resumes later).
const MIN_LEAD_NS: i64 = 60_000_000;
/// A source this far ahead of real time is held back.
const MAX_AHEAD_NS: i64 = 2_000_000_000;
/// After the source ends, the session stays this long past its last frame.
const END_GRACE: Duration = Duration::from_secs(2);
/// Body chunks queued between the socket and the decoder.
const QUEUE: usize = 64;

/// Live ingest settings.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// `source:PASSWORD` on the mount; `None`: live ingest is off (403).
    pub source_password: Option<String>,
    /// Encode-to-output distance every node keeps (ms).
    pub buffer_ms: u64,
    pub bitrate: i32,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            source_password: None,
            buffer_ms: 200,
            bitrate: voice::BITRATE,
        }
    }
}

/// Villages on air: a source holds its villages' mounts until it ends. A source of a
/// higher priority may take a held mount (an approver speaking at emergency level over an
/// Icecast relay); the nodes' resolver then plays the higher one.
#[derive(Default)]
pub struct Mounts {
    busy: Mutex<Vec<Mount>>,
    next: std::sync::atomic::AtomicU64,
}

struct Mount {
    token: u64,
    villages: Vec<i64>,
    priority: Priority,
}

impl Mounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Mount>> {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the villages' mounts, unless one is held at this priority or higher; the
    /// token gives them back.
    fn take(&self, villages: &[i64], priority: Priority) -> Option<u64> {
        let mut busy = self.lock();
        let held = busy
            .iter()
            .any(|m| m.priority >= priority && m.villages.iter().any(|v| villages.contains(v)));
        if held {
            return None;
        }
        let token = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        busy.push(Mount {
            token,
            villages: villages.to_vec(),
            priority,
        });
        Some(token)
    }

    fn free(&self, token: u64) {
        self.lock().retain(|m| m.token != token);
    }
}

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
pub async fn serve_source(
    hub: Arc<Hub>,
    mounts: Arc<Mounts>,
    mut stream: TcpStream,
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
    let (village, token) = match check {
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
    let (reader, mut writer) = stream.into_split();
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(QUEUE);
    let feeder = tokio::spawn(read_body(reader, rest, req.chunked, req.length, tx));
    let result = run_session(hub, village, addr.to_string(), rx).await;
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

/// Credentials, the village, the mount: the village id, and the token of its mount.
fn check_source(hub: &Hub, mounts: &Mounts, req: &SourceRequest) -> Result<(i64, u64), Refusal> {
    let Some(password) = hub.live_config().source_password.as_deref() else {
        return Err((
            StatusCode::FORBIDDEN,
            "live ingest is off (controller serve --source-password)".into(),
        ));
    };
    if !authorised(req.authorization.as_deref(), password) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "wrong source credentials (source:PASSWORD)".into(),
        ));
    }
    let Some(village) = req.village.parse::<i64>().ok().filter(|v| *v > 0) else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no village {:?}", req.village),
        ));
    };
    match mounts.take(&[village], Priority::Priority) {
        Some(token) => Ok((village, token)),
        None => Err((
            StatusCode::CONFLICT,
            format!("village {village} is already live"),
        )),
    }
}

/// Reads up to the end of the request head; returns it and the body bytes read past it.
async fn read_head(stream: &mut TcpStream) -> Result<(String, Vec<u8>), String> {
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
async fn read_body(
    mut reader: OwnedReadHalf,
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

async fn refuse(stream: &mut TcpStream, refusal: Refusal) {
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

type Refusal = (StatusCode, String);

/// Checks `source:PASSWORD` (constant time).
fn authorised(auth: Option<&str>, password: &str) -> bool {
    use base64::Engine;
    let Some(b64) = auth.and_then(|a| a.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    let expected = format!("source:{password}");
    decoded.len() == expected.len()
        && decoded
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn run_session(
    hub: Arc<Hub>,
    village: i64,
    addr: String,
    chunks_rx: mpsc::Receiver<bytes::Bytes>,
) -> Result<(), Refusal> {
    let lead = hub.live_config().buffer_ms as i64;
    let start = hub
        .cms()
        .start_live(
            None,
            vec![village],
            Priority::Priority,
            "icecast",
            addr,
            lead,
        )
        .await
        .map_err(refusal)?;
    carry(hub, start, chunks_rx).await;
    Ok(())
}

fn refusal(e: cms::CmsError) -> Refusal {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    (status, e.message(cms::i18n::Lang::En))
}

/// Carries a started session's audio to its nodes until the source ends, lets the last
/// frames play out, then ends the session everywhere.
async fn carry(hub: Arc<Hub>, start: cms::LiveStart, chunks_rx: mpsc::Receiver<bytes::Bytes>) {
    let config = hub.live_config().clone();
    let session = start.session.id;
    let sessions = hub.sessions().clone();
    let clock = hub.clock_arc();
    let nodes = start.nodes;
    let encoded = tokio::task::spawn_blocking(move || {
        encode_loop(
            chunks_rx,
            session as u32,
            &config,
            clock.as_ref(),
            |packet| {
                sessions.send_live(&nodes, &Arc::new(packet));
            },
        )
    })
    .await;
    let (reason, last_due_ns) = match encoded {
        Ok(Ok(last)) => ("the source ended".to_string(), last),
        Ok(Err((e, last))) => (format!("the source's audio: {e}"), last),
        Err(e) => (format!("the encoder failed: {e}"), None),
    };
    let now = hub.clock_arc().now_ns();
    let tail = last_due_ns.map_or(0, |due| (due - now).max(0) as u64);
    tokio::time::sleep(Duration::from_nanos(tail) + END_GRACE).await;
    if let Err(e) = hub.cms().end_live(session, &reason).await {
        tracing::error!(session, "cannot end the live session: {e}");
    }
}

/// `GET /api/v1/live/mic?villages=1,2&csrf=TOKEN[&priority=normal|priority|emergency]`:
/// the web UI's microphone. A WebSocket from a logged-in browser session (its cookie, and
/// its CSRF token in the query since a browser cannot set headers on a WebSocket); binary
/// messages carry what the browser's MediaRecorder makes (WebM Opus), decoded and sent on
/// exactly as an Icecast source's. The session ends when the socket closes.
pub fn mic_filter(
    hub: &Arc<Hub>,
    mounts: Arc<Mounts>,
) -> impl warp::Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + use<>
{
    use warp::Filter;
    let hub = hub.clone();
    warp::path!("api" / "v1" / "live" / "mic")
        .and(warp::get())
        .and(warp::cookie::optional::<String>(
            cms::http::reply::SESSION_COOKIE,
        ))
        .and(warp::query::<MicQuery>())
        .and(warp::ext::optional::<cms::http::Peer>())
        .and(warp::ws())
        .then(
            move |cookie: Option<String>,
                  q: MicQuery,
                  peer: Option<cms::http::Peer>,
                  ws: warp::ws::Ws| {
                let (hub, mounts) = (hub.clone(), mounts.clone());
                async move {
                    use warp::Reply;
                    let addr = peer.map(|p| p.0.to_string()).unwrap_or_default();
                    match open_mic(&hub, &mounts, cookie, &q, addr).await {
                        Ok((start, villages)) => ws
                            .on_upgrade(move |socket| {
                                mic_session(hub, mounts, start, villages, socket)
                            })
                            .into_response(),
                        Err(e) => cms::http::reply::error(&e, cms::i18n::Lang::Vi),
                    }
                }
            },
        )
}

#[derive(serde::Deserialize)]
pub struct MicQuery {
    villages: String,
    csrf: String,
    #[serde(default)]
    priority: Option<String>,
}

/// Checks the browser's session, its CSRF token and the mounts; starts the session.
async fn open_mic(
    hub: &Hub,
    mounts: &Mounts,
    cookie: Option<String>,
    q: &MicQuery,
    addr: String,
) -> Result<(cms::LiveStart, u64), cms::CmsError> {
    let secret = cookie.ok_or(cms::CmsError::Unauthenticated)?;
    let p = hub
        .cms()
        .authenticate(&secret, cms::auth::Via::Cookie)
        .await?;
    let good = !p.csrf.is_empty()
        && q.csrf.len() == p.csrf.len()
        && q.csrf
            .bytes()
            .zip(p.csrf.bytes())
            .fold(0u8, |a, (x, y)| a | (x ^ y))
            == 0;
    if !good {
        return Err(cms::CmsError::forbidden(
            "Thiếu mã chống giả mạo (CSRF). Hãy tải lại trang.",
            "Missing or wrong CSRF token. Reload the page.",
        ));
    }
    let villages: Vec<i64> = q
        .villages
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .filter(|v| *v > 0)
        .collect();
    let priority = match q.priority.as_deref() {
        None | Some("") => Priority::Priority,
        Some(p) => Priority::parse(p).ok_or_else(|| {
            cms::CmsError::invalid("Mức ưu tiên không hợp lệ.", "Unknown priority.")
        })?,
    };
    let Some(token) = mounts.take(&villages, priority) else {
        return Err(cms::CmsError::conflict(
            "Đang có người phát trực tiếp ở thôn này.",
            "Someone is already live in this village.",
        ));
    };
    let lead = hub.live_config().buffer_ms as i64;
    match hub
        .cms()
        .start_live(Some(&p), villages, priority, "browser", addr, lead)
        .await
    {
        Ok(start) => Ok((start, token)),
        Err(e) => {
            mounts.free(token);
            Err(e)
        }
    }
}

async fn mic_session(
    hub: Arc<Hub>,
    mounts: Arc<Mounts>,
    start: cms::LiveStart,
    token: u64,
    socket: warp::ws::WebSocket,
) {
    use futures_util::StreamExt;
    let (tx, rx) = mpsc::channel::<bytes::Bytes>(QUEUE);
    let (_sink, mut stream) = socket.split();
    let reader = tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            if msg.is_close() {
                break;
            }
            if msg.is_binary() && tx.send(msg.into_bytes()).await.is_err() {
                break;
            }
        }
    });
    carry(hub, start, rx).await;
    reader.abort();
    mounts.free(token);
}

/// Blocking reads of the body queue, for the decoder.
struct ChunkReader {
    rx: mpsc::Receiver<bytes::Bytes>,
    current: bytes::Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Stamps frames on the controller's clock: frame `n` leaves every node at `epoch + n x
/// 20 ms`; a late source moves the epoch on (a gap), a fast one is held back.
struct Stamper {
    epoch: Option<i64>,
    seq: u32,
    buffer_ns: i64,
    gaps: u32,
}

impl Stamper {
    /// The instant frame `self.seq` is due, and how long to wait before sending it.
    fn next(&mut self, now: i64) -> (i64, Duration) {
        let epoch = *self.epoch.get_or_insert(now + self.buffer_ns);
        let mut due = epoch + i64::from(self.seq) * voice::FRAME_NS;
        if due < now + MIN_LEAD_NS {
            // The source fell behind (a stall): resume at the buffer's distance.
            let shift = now + self.buffer_ns - due;
            self.epoch = Some(epoch + shift);
            due += shift;
            self.gaps += 1;
        }
        let ahead = due - now - MAX_AHEAD_NS;
        (due, Duration::from_nanos(ahead.max(0) as u64))
    }
}

type EncodeError = (String, Option<i64>);

/// Decodes, mixes to mono, resamples to 48 kHz, encodes and stamps until the body ends;
/// returns when the last frame is due.
fn encode_loop(
    rx: mpsc::Receiver<bytes::Bytes>,
    session: u32,
    config: &LiveConfig,
    clock: &dyn protocol::time::Clock,
    mut send: impl FnMut(Vec<u8>),
) -> Result<Option<i64>, EncodeError> {
    let reader = ChunkReader {
        rx,
        current: bytes::Bytes::new(),
    };
    let mut decoder = Decoder::from_stream(reader).map_err(|e| (e.to_string(), None))?;
    let info = decoder.info().clone();
    let rate = info.sample_rate.max(1);
    let channels = usize::from(info.channels.max(1));
    tracing::info!(session, codec = %info.codec, rate, channels, "live source decoding");
    let mut resampler = match rate {
        voice::RATE => None,
        r => Some(StreamResampler::new(r, voice::RATE, 1).map_err(|e| (e.to_string(), None))?),
    };
    let mut encoder = VoiceEncoder::new(config.bitrate).map_err(|e| (e.to_string(), None))?;
    let mut stamper = Stamper {
        epoch: None,
        seq: 0,
        buffer_ns: config.buffer_ms as i64 * 1_000_000,
        gaps: 0,
    };
    let mut pcm: Vec<f32> = Vec::new();
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut batch_start: Option<(u32, i64)> = None;
    let mut last_due = None;
    let mut mono = Vec::new();
    loop {
        let chunk = match decoder.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err((e.to_string(), last_due)),
        };
        mono.clear();
        mono.extend(
            chunk
                .chunks(channels)
                .map(|f| f.iter().sum::<f32>() / channels as f32),
        );
        match resampler.as_mut() {
            Some(r) => pcm.extend_from_slice(r.push(&mono).map_err(|e| (e.to_string(), last_due))?),
            None => pcm.extend_from_slice(&mono),
        }
        let mut used = 0;
        while pcm.len() - used >= voice::FRAME {
            let frame = &pcm[used..used + voice::FRAME];
            used += voice::FRAME;
            let packet = encoder
                .encode(frame)
                .map_err(|e| (e.to_string(), last_due))?
                .to_vec();
            let (due, wait) = stamper.next(clock.now_ns());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            // A gap moved the timeline: what is batched goes first, on its own stamps.
            if let Some((_, first_due)) = batch_start {
                let expected = first_due + batch.len() as i64 * voice::FRAME_NS;
                if expected != due {
                    flush(&mut batch, &mut batch_start, session, &mut send);
                }
            }
            batch_start.get_or_insert((stamper.seq, due));
            batch.push(packet);
            stamper.seq += 1;
            last_due = Some(due + voice::FRAME_NS);
            if batch.len() >= FRAMES_PER_PACKET {
                flush(&mut batch, &mut batch_start, session, &mut send);
            }
        }
        pcm.drain(..used);
    }
    flush(&mut batch, &mut batch_start, session, &mut send);
    tracing::info!(
        session,
        frames = stamper.seq,
        gaps = stamper.gaps,
        "live source ended"
    );
    Ok(last_due)
}

fn flush(
    batch: &mut Vec<Vec<u8>>,
    start: &mut Option<(u32, i64)>,
    session: u32,
    send: &mut impl FnMut(Vec<u8>),
) {
    if let Some((seq, play_at_ns)) = start.take() {
        let packet = LivePacket {
            session,
            seq,
            play_at_ns,
            frames: std::mem::take(batch),
        };
        send(packet.encode());
    }
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
    fn a_mount_is_held_unless_a_higher_priority_comes() {
        let m = Mounts::default();
        let a = m.take(&[1, 2], Priority::Priority).unwrap();
        assert!(m.take(&[2], Priority::Priority).is_none(), "busy");
        assert!(m.take(&[2], Priority::Normal).is_none(), "lower");
        assert!(
            m.take(&[3], Priority::Priority).is_some(),
            "another village"
        );
        let e = m.take(&[2], Priority::Emergency).unwrap();
        assert!(
            m.take(&[2], Priority::Emergency).is_none(),
            "one emergency at a time"
        );
        m.free(e);
        m.free(a);
        assert!(m.take(&[1, 2], Priority::Priority).is_some());
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

    #[test]
    fn frames_are_stamped_every_20_ms_and_a_stall_resumes_at_the_buffer() {
        let mut s = Stamper {
            epoch: None,
            seq: 0,
            buffer_ns: 200_000_000,
            gaps: 0,
        };
        let t0 = 1_000_000_000_000;
        let (due0, _) = s.next(t0);
        assert_eq!(due0, t0 + 200_000_000);
        s.seq = 10;
        let (due10, wait) = s.next(t0 + 150_000_000);
        assert_eq!((due10, wait), (due0 + 200_000_000, Duration::ZERO));
        // A 2 s stall: frame 11 would be long past; it resumes 200 ms ahead of now.
        s.seq = 11;
        let now = t0 + 2_500_000_000;
        let (due11, _) = s.next(now);
        assert_eq!((due11, s.gaps), (now + 200_000_000, 1));
        // A source far ahead of real time waits.
        s.seq = 11 + 500;
        let (_, wait) = s.next(now);
        assert!(wait > Duration::from_secs(7), "{wait:?}");
    }
}
