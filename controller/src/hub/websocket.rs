//! The node link over WebSocket: the warp route `GET /api/v1/nodes/link` (node token as
//! a bearer), and [`WsTransport`], warp's socket behind the link's [`Transport`] trait.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use protocol::link::MAX_FRAME_BYTES;
use protocol::transport::{CloseCode, Frame, Transport, TransportError};
use warp::Filter;
use warp::filters::ws::{Message, WebSocket, Ws};
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
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::ws())
        .then(move |auth: Option<String>, ws: Ws| {
            let hub = hub.clone();
            async move { upgrade(hub, auth, ws).await }
        })
}

async fn upgrade(hub: Arc<Hub>, auth: Option<String>, ws: Ws) -> warp::reply::Response {
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
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| hub.run_session(node, WsTransport(socket)))
        .into_response()
}

/// warp's WebSocket as a node link transport: text frames carry messages, binary frames
/// live audio, pings keep it alive.
pub struct WsTransport(pub WebSocket);

impl Transport for WsTransport {
    async fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        let msg = match self.0.next().await {
            None => return Err(TransportError::Closed(None)),
            Some(Err(e)) => return Err(TransportError::Io(e.to_string())),
            Some(Ok(m)) => m,
        };
        if msg.is_close() {
            return Err(TransportError::Closed(None));
        }
        if msg.is_ping() || msg.is_pong() {
            return Ok(None);
        }
        match msg.to_str() {
            Ok(text) => Ok(Some(Frame::Text(text.to_owned()))),
            Err(()) => Ok(Some(Frame::Binary(msg.into_bytes().to_vec()))),
        }
    }

    async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), TransportError> {
        self.0
            .send(Message::binary(bytes))
            .await
            .map_err(|e| TransportError::Io(e.to_string()))
    }

    async fn send(&mut self, text: String) -> Result<(), TransportError> {
        self.0
            .send(Message::text(text))
            .await
            .map_err(|e| TransportError::Io(e.to_string()))
    }

    async fn keepalive(&mut self) -> Result<(), TransportError> {
        self.0
            .send(Message::ping(Vec::<u8>::new()))
            .await
            .map_err(|e| TransportError::Io(e.to_string()))
    }

    async fn close(&mut self, code: CloseCode, reason: &str) {
        // A close frame's reason holds at most 123 bytes (RFC 6455 §5.5).
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let _ = self
            .0
            .send(Message::close_with(code.as_u16(), reason[..end].to_owned()))
            .await;
    }
}
