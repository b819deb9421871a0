//! The node link over WebSocket (tokio-tungstenite): dialling the controller's
//! `GET /api/v1/nodes/link` with the node token, and the socket behind the link's
//! [`Transport`] trait.

use std::time::Duration;

use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::error::chain;
use super::link::LinkError;

/// No answer to a dial in this long: try again later.
const DIAL_TIMEOUT: Duration = Duration::from_secs(15);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `http://host` -> `ws://host/api/v1/nodes/link` (and https -> wss).
pub fn link_url(server: &str) -> String {
    let base = server.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    format!("{base}/api/v1/nodes/link")
}

/// Dials the controller; the transport and the node's own address on that connection.
/// `wss://` is checked against `tls` (the node's trust roots), never the defaults.
pub async fn dial(
    server: &str,
    token: &str,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> Result<(WsTransport, Option<String>), LinkError> {
    let url = link_url(server);
    let fail = |reason: String| LinkError::Dial(format!("{url}: {reason}"));
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| fail(e.to_string()))?;
    let auth = format!("Bearer {token}")
        .parse()
        .map_err(|_| fail("the node token is not a valid header".into()))?;
    req.headers_mut().insert("authorization", auth);
    let config = protocol::ws::config();
    let connector = tokio_tungstenite::Connector::Rustls(tls);
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(req, Some(config), true, Some(connector));
    match tokio::time::timeout(DIAL_TIMEOUT, connecting).await {
        Err(_) => Err(fail(format!("no answer in {} s", DIAL_TIMEOUT.as_secs()))),
        Ok(Err(tungstenite::Error::Http(res))) => {
            let status = res.status().as_u16();
            let detail = match status {
                401 => " (the node token was refused: revoked? enrol again)",
                _ => "",
            };
            Err(fail(format!("HTTP {status}{detail}")))
        }
        Ok(Err(e)) => Err(fail(chain(&e))),
        Ok(Ok((ws, _))) => {
            let ip = local_ip(&ws);
            Ok((protocol::ws::WsTransport(ws), ip))
        }
    }
}

fn local_ip(ws: &Ws) -> Option<String> {
    match ws.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Plain(tcp) => {
            tcp.local_addr().ok().map(|a| a.ip().to_string())
        }
        tokio_tungstenite::MaybeTlsStream::Rustls(tls) => tls
            .get_ref()
            .0
            .local_addr()
            .ok()
            .map(|a| a.ip().to_string()),
        _ => None,
    }
}

/// A dialled WebSocket as a node link transport.
pub type WsTransport =
    protocol::ws::WsTransport<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[cfg(test)]
mod tests {
    use super::link_url;

    #[test]
    fn urls() {
        assert_eq!(link_url("http://h:8080/"), "ws://h:8080/api/v1/nodes/link");
        assert_eq!(
            link_url("https://loa.example"),
            "wss://loa.example/api/v1/nodes/link"
        );
    }
}
