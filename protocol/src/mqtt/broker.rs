//! A node's link through an MQTT broker (feature `mqtt`, rumqttc; `mqtts://` with rustls):
//! the [`Transport`] the
//! agent's session runs over, as it runs over a WebSocket. One connection per link: its
//! event loop runs in a task of its own (rumqttc's poll is not cancel-safe; the session
//! `select!`s on `recv`) and hands what arrives to a channel. On every connection it
//! subscribes to the node's topics and says `online` (retained); its last will says
//! `offline`, so whoever watches presence learns of a dead node from the broker. The
//! controller's welcome names the node's village, whose live topic it then listens to;
//! the controller's [`super::bye`] ends the link as a WebSocket close would.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

use super::{BYE, OFFLINE, ONLINE, Qos, Scope, Topic, kind, parse_bye, up_qos};
use crate::link::ControllerMsg;
use crate::transport::{CloseCode, Frame, Transport, TransportError};

/// Frames waiting for the session, at most.
const QUEUE: usize = 256;
/// The broker hears from the node at least this often (MQTT keepalive).
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The largest message either way (a desired state with many schedules).
const MAX_PACKET: usize = 4 << 20;

/// Who the node is on the broker, and where its topics are.
#[derive(Debug, Clone)]
pub struct NodeBroker {
    /// `mqtt://HOST:PORT`.
    pub url: String,
    pub scope: Scope,
    pub node_id: i64,
    /// Broker credentials, if the broker asks for them.
    pub credentials: Option<Credentials>,
    /// For `mqtts://`: trust roots, and a client certificate if the broker asks for one.
    pub tls: Option<TlsConfig>,
}

/// A user and password on a broker.
pub type Credentials = (String, String);

/// Brokers to try in turn, and who to be on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brokers {
    pub urls: Vec<String>,
    pub credentials: Option<Credentials>,
}

/// Brokers and credentials as configured (a node's or the controller's): the URLs,
/// trimmed and checked, none if the list is empty; user and password, both or neither.
pub fn configured(
    urls: &[String],
    user: Option<&String>,
    password: Option<&String>,
) -> Result<Option<Brokers>, String> {
    let urls: Vec<String> = urls
        .iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect();
    if urls.is_empty() {
        return Ok(None);
    }
    for url in &urls {
        parse_url(url).map_err(|e| format!("broker: {e}"))?;
    }
    let credentials = match (user, password) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (None, None) => None,
        _ => return Err("broker_username and broker_password go together".into()),
    };
    Ok(Some(Brokers { urls, credentials }))
}

/// TLS client settings for `mqtts://` brokers (rustls: the same the rest of the link uses).
pub type TlsConfig = std::sync::Arc<rumqttc::tokio_rustls::rustls::ClientConfig>;

/// A broker's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: TLS, checked against the client's trust roots.
    pub tls: bool,
}

/// `mqtt://HOST[:PORT]` (1883 by default) or `mqtts://HOST[:PORT]` (8883).
pub fn parse_url(url: &str) -> Result<BrokerUrl, TransportError> {
    let bad = || {
        TransportError::Io(format!(
            "not a broker URL: {url} (mqtt://HOST[:PORT] or mqtts://HOST[:PORT])"
        ))
    };
    let (rest, tls, default_port) = match url.strip_prefix("mqtts://") {
        Some(rest) => (rest, true, 8883),
        None => (url.strip_prefix("mqtt://").ok_or_else(bad)?, false, 1883),
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (rest, default_port),
    };
    if host.is_empty() || host.contains('/') || port == 0 {
        return Err(bad());
    }
    Ok(BrokerUrl {
        host: host.to_owned(),
        port,
        tls,
    })
}

/// A client's options for `url`: keepalive, packet limit, the credentials if any, and
/// TLS with `tls` for an `mqtts://` URL. Shared by nodes and the controller.
pub fn options(
    url: &str,
    client_id: String,
    credentials: Option<&Credentials>,
    tls: Option<&TlsConfig>,
) -> Result<MqttOptions, TransportError> {
    let BrokerUrl {
        host,
        port,
        tls: on,
    } = parse_url(url)?;
    let mut opts = MqttOptions::new(client_id, host, port);
    if on {
        let config = tls.ok_or_else(|| {
            TransportError::Io(format!("{url}: no TLS settings for an mqtts:// broker"))
        })?;
        opts.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config.clone()),
        ));
    }
    opts.set_keep_alive(KEEP_ALIVE);
    opts.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    opts.set_clean_session(true);
    if let Some((user, password)) = credentials {
        opts.set_credentials(user, password);
    }
    Ok(opts)
}

/// The rumqttc QoS of ours.
pub fn qos(q: Qos) -> QoS {
    match q {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
    }
}

/// The node's end of a link through the broker.
pub struct BrokerTransport {
    client: AsyncClient,
    frames: mpsc::Receiver<Result<Frame, TransportError>>,
    task: tokio::task::JoinHandle<()>,
    up: String,
    presence: String,
}

impl BrokerTransport {
    /// Connects and waits for the broker to accept (and the subscriptions to be asked).
    pub async fn connect(b: &NodeBroker) -> Result<Self, TransportError> {
        let client_id = format!("loa-node-{}", b.node_id);
        let mut opts = options(&b.url, client_id, b.credentials.as_ref(), b.tls.as_ref())?;
        opts.set_last_will(LastWill::new(
            b.scope.topic(Topic::Presence(b.node_id)),
            OFFLINE,
            QoS::AtLeastOnce,
            true,
        ));
        let (client, mut events) = AsyncClient::new(opts, QUEUE);
        let (tx, frames) = mpsc::channel(QUEUE);
        let (connected_tx, connected) = tokio::sync::oneshot::channel();
        let (me, filters) = (client.clone(), b.scope.node_filters(b.node_id));
        let presence = b.scope.topic(Topic::Presence(b.node_id));
        let (scope, announce) = (b.scope.clone(), presence.clone());
        let task = tokio::spawn(async move {
            let mut connected_tx = Some(connected_tx);
            // The village's live topic, once a welcome has named it.
            let mut live: Option<String> = None;
            loop {
                let frame = match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        // Every connection: the node's topics, then "online" (retained).
                        for f in filters.iter().chain(live.as_ref()) {
                            let _ = me.try_subscribe(f.clone(), QoS::AtLeastOnce);
                        }
                        let _ = me.try_publish(announce.clone(), QoS::AtLeastOnce, true, ONLINE);
                        if let Some(c) = connected_tx.take() {
                            let _ = c.send(Ok(()));
                        }
                        continue;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => match scope.parse(&p.topic) {
                        Some(Topic::Down(_)) => match String::from_utf8(p.payload.to_vec()) {
                            Ok(text) => down(text, &scope, &me, &mut live),
                            Err(_) => Err(not_utf8()),
                        },
                        Some(Topic::Desired(_)) => match String::from_utf8(p.payload.to_vec()) {
                            // An empty retained message clears the state (a deleted node).
                            Ok(text) if text.is_empty() => continue,
                            Ok(text) => Ok(Frame::Text(text)),
                            Err(_) => Err(not_utf8()),
                        },
                        Some(Topic::Live(_)) => Ok(Frame::Binary(p.payload.to_vec())),
                        _ => continue,
                    },
                    Ok(_) => continue,
                    Err(e) => {
                        let err = TransportError::Io(format!("broker: {e}"));
                        if let Some(c) = connected_tx.take() {
                            let _ = c.send(Err(err));
                            return;
                        }
                        Err(err)
                    }
                };
                let end = frame.is_err();
                if tx.send(frame).await.is_err() || end {
                    return;
                }
            }
        });
        let up = b.scope.topic(Topic::Up(b.node_id));
        match connected.await {
            Ok(Ok(())) => Ok(BrokerTransport {
                client,
                frames,
                task,
                up,
                presence,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TransportError::Closed(None)),
        }
    }
}

fn not_utf8() -> TransportError {
    TransportError::BadFrame("a text message that is not UTF-8".into())
}

/// A message on the node's `down` topic: a goodbye closes the link; a welcome naming a
/// village moves the live subscription (`live`) there; the rest goes to the session.
fn down(
    text: String,
    scope: &Scope,
    me: &AsyncClient,
    live: &mut Option<String>,
) -> Result<Frame, TransportError> {
    match kind(&text).as_deref() {
        Some(BYE) => return Err(TransportError::Closed(parse_bye(&text))),
        Some("welcome") => {
            if let Ok(ControllerMsg::Welcome {
                village_id: Some(v),
                ..
            }) = ControllerMsg::decode(&text)
            {
                let filter = scope.live_filter(v);
                if live.as_ref() != Some(&filter) {
                    if let Some(old) = live.replace(filter.clone()) {
                        let _ = me.try_unsubscribe(old);
                    }
                    let _ = me.try_subscribe(filter, QoS::AtMostOnce);
                }
            }
        }
        _ => {}
    }
    Ok(Frame::Text(text))
}

impl Drop for BrokerTransport {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Transport for BrokerTransport {
    async fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        match self.frames.recv().await {
            Some(frame) => frame.map(Some),
            None => Err(TransportError::Closed(None)),
        }
    }

    async fn send(&mut self, text: String) -> Result<(), TransportError> {
        let q = qos(up_qos(&text));
        self.client
            .publish(self.up.clone(), q, false, text)
            .await
            .map_err(|e| TransportError::Io(format!("broker: {e}")))
    }

    async fn send_binary(&mut self, _bytes: Vec<u8>) -> Result<(), TransportError> {
        Err(TransportError::BadFrame(
            "nodes send no binary messages".into(),
        ))
    }

    /// A clean goodbye sends no last will: the node says `offline` itself first.
    async fn close(&mut self, _code: CloseCode, _reason: &str) {
        let presence = self.presence.clone();
        let _ = self
            .client
            .publish(presence, QoS::AtLeastOnce, true, OFFLINE)
            .await;
        let _ = self.client.disconnect().await;
    }
}

#[cfg(test)]
mod tests {
    use super::{BrokerUrl, configured, options, parse_url};

    #[test]
    fn broker_urls() {
        let at = |host: &str, port, tls| BrokerUrl {
            host: host.into(),
            port,
            tls,
        };
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1884").unwrap(),
            at("127.0.0.1", 1884, false)
        );
        assert_eq!(
            parse_url("mqtt://broker.xa/").unwrap(),
            at("broker.xa", 1883, false)
        );
        assert_eq!(
            parse_url("mqtts://broker.xa").unwrap(),
            at("broker.xa", 8883, true)
        );
        assert!(options("mqtts://broker.xa", "n".into(), None, None).is_err());
        let urls = ["mqtt://a:1".to_string(), " ".into()];
        let b = configured(&urls, None, None).unwrap().unwrap();
        assert_eq!(
            (b.urls, b.credentials),
            (vec!["mqtt://a:1".to_string()], None)
        );
        assert_eq!(configured(&[], None, None), Ok(None));
        let user = "u".to_string();
        assert!(configured(&["mqtt://a".into()], Some(&user), None).is_err());
        assert!(configured(&["http://a".into()], None, None).is_err());
        for bad in [
            "http://x",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://x:0",
            "mqtt://x:y",
            "mqtts://",
            "ws://x",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }
}
