//! The node link over WebSocket (tokio-tungstenite), as both ends carry it: text frames
//! carry messages, binary frames live audio, pings keep it alive. The node dials
//! (`speaker-node`), the controller accepts (its own upgrade, so it sets the buffers:
//! a link is mostly idle, and tungstenite's 128 KiB read buffer per connection was most
//! of a 10,000-node controller's memory).

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::link::MAX_FRAME_BYTES;
use crate::transport::{CloseCode, Frame, Transport, TransportError};

/// Link settings for either end: frames up to [`MAX_FRAME_BYTES`], a small read buffer
/// that grows for the rare large frame (a desired state) instead of 128 KiB held by
/// every idle link.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES))
}

/// A WebSocket as a node link transport.
pub struct WsTransport<S>(pub WebSocketStream<S>);

fn io(e: tungstenite::Error) -> TransportError {
    TransportError::Io(e.to_string())
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for WsTransport<S> {
    async fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        match self.0.next().await {
            None => Err(TransportError::Closed(None)),
            Some(Err(e)) => Err(io(e)),
            Some(Ok(Message::Text(t))) => Ok(Some(Frame::Text(t.as_str().to_owned()))),
            Some(Ok(Message::Close(frame))) => Err(TransportError::Closed(
                frame.map(|f| f.reason.as_str().to_owned()),
            )),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(None),
            Some(Ok(Message::Binary(b))) => Ok(Some(Frame::Binary(b.to_vec()))),
        }
    }

    async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), TransportError> {
        self.0.send(Message::binary(bytes)).await.map_err(io)
    }

    async fn send(&mut self, text: String) -> Result<(), TransportError> {
        self.0.send(Message::text(text)).await.map_err(io)
    }

    async fn keepalive(&mut self) -> Result<(), TransportError> {
        self.0
            .send(Message::Ping(Vec::new().into()))
            .await
            .map_err(io)
    }

    async fn close(&mut self, code: CloseCode, reason: &str) {
        // A close frame's reason holds at most 123 bytes (RFC 6455 §5.5).
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let frame = CloseFrame {
            code: code.as_u16().into(),
            reason: reason[..end].to_owned().into(),
        };
        let _ = self.0.send(Message::Close(Some(frame))).await;
    }
}
