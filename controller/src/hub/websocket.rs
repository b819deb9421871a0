//! The node link over WebSocket: the route `GET /api/v1/nodes/link` (node token as a
//! bearer), upgraded here rather than by warp's `ws()` so the link's buffers are ours to
//! size ([`protocol::ws::config`]: an idle link holds ~8 KiB, not tungstenite's default
//! 128 KiB — at 10,000 nodes, the difference between 0.3 and 1.5 GB).

use std::sync::Arc;

use protocol::ws::WsTransport;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use warp::Filter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Reply;

use super::Hub;

/// The node link route; requests that are not WebSocket upgrades fall through (to the
/// CMS, which answers them with a clear error).
pub fn filter(
    hub: &Arc<Hub>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + use<> {
    let hub = hub.clone();
    warp::path!("api" / "v1" / "nodes" / "link")
        .and(warp::get())
        .and(warp::header::exact_ignore_case("upgrade", "websocket"))
        .and(warp::header::exact("sec-websocket-version", "13"))
        .and(warp::header::<String>("sec-websocket-key"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::ext::optional::<hyper::upgrade::OnUpgrade>())
        .then(
            move |key: String, auth: Option<String>, on: Option<hyper::upgrade::OnUpgrade>| {
                let hub = hub.clone();
                async move { upgrade(hub, key, auth, on).await }
            },
        )
}

async fn upgrade(
    hub: Arc<Hub>,
    key: String,
    auth: Option<String>,
    on: Option<hyper::upgrade::OnUpgrade>,
) -> warp::reply::Response {
    let token = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let node = match hub.cms().authenticate_node(token).await {
        Ok(node) => node,
        Err(e) => {
            tracing::warn!("node link refused: {e}");
            return cms::http::reply::error(&e, cms::i18n::Lang::En);
        }
    };
    let Some(on) = on else {
        // Not a connection that can be upgraded (HTTP/2, or a server without upgrades).
        return StatusCode::UPGRADE_REQUIRED.into_response();
    };
    tokio::spawn(async move {
        match on.await {
            Ok(upgraded) => {
                let io = hyper_util::rt::TokioIo::new(upgraded);
                let config = Some(protocol::ws::config());
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, config).await;
                cms::store::as_fleet(hub.run_session(node, WsTransport(ws))).await;
            }
            Err(e) => tracing::debug!("node link upgrade: {e}"),
        }
    });
    let mut res = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    res
}
