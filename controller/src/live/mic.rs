//! The web UI's microphone: a WebSocket from a logged-in browser carrying MediaRecorder
//! output into the same path as an Icecast source.

use std::sync::Arc;

use protocol::schedule::Priority;
use tokio::sync::mpsc;

use super::{Mounts, QUEUE, carry};
use crate::hub::Hub;

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
    let good =
        !p.csrf.is_empty() && cms::http::constant_time_eq(q.csrf.as_bytes(), p.csrf.as_bytes());
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
