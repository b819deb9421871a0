//! The fleet link through an MQTT broker (`controller serve --broker URL[,URL...]`),
//! beside the WebSocket link: one client subscribed to every node's `up` and `presence`
//! topics under the province's root ([`protocol::mqtt`] has the topic map), and for each
//! node that says hello a session — the same [`super::session`] code as over a WebSocket —
//! over a [`GatewayTransport`] fed from that subscription.
//!
//! - **Who a node is.** The topic names a node; its hello carries its token, checked like
//!   a WebSocket's bearer token and against the node (and commune) the topic names. A
//!   message from a node with no session that is not a hello gets a [`bye`]: the node
//!   says hello again (a controller that restarted picks its nodes up this way).
//! - **Liveness.** The broker's `offline` on a node's presence topic (its last will, or
//!   its own goodbye) ends the session and marks the node offline at once.
//! - **Live audio** goes once per village topic ([`Gateway::publish_live`]); the broker
//!   copies it to every node listening there.
//! - **Fail-over.** With several URLs the client moves to the next when its broker is
//!   lost; every session ends then and the nodes, which lost theirs too, say hello again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use protocol::link::{MAX_FRAME_BYTES, NodeMsg};
use protocol::mqtt::{OFFLINE, Qos, Root, Scope, Topic, broker, bye, down_route, kind};
use protocol::transport::{CloseCode, Frame, Transport, TransportError};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::Hub;

/// Messages waiting for one node's session, at most (beyond: dropped and logged; a node
/// sends again what must arrive).
const NODE_QUEUE: usize = 64;
/// Requests waiting for the client's event loop.
const CLIENT_QUEUE: usize = 16_384;
/// QoS 1 messages of the controller's awaiting the broker's ack, at most.
const INFLIGHT: u16 = 1_000;
/// A broker lost: try the next this long after.
const RETRY: Duration = Duration::from_secs(1);
/// A node without a session is told to say hello once it has been heard from this long
/// without one (a broker may deliver a node's QoS 0 messages before its QoS 1 hello: MQTT
/// orders messages only within a QoS), and then at most every [`BYE_EVERY`].
const STRAY_GRACE: Duration = Duration::from_secs(3);
const BYE_EVERY: Duration = Duration::from_secs(5);

/// Why a hello was refused, as the node is told.
const TOKEN_REFUSED: &str = "the node token was refused";

/// A node heard from without a session.
struct Stray {
    since: tokio::time::Instant,
    last: tokio::time::Instant,
    told: Option<tokio::time::Instant>,
}

/// Where the controller's broker is and where its topics are.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `mqtt://HOST[:PORT]`, tried in turn.
    pub urls: Vec<String>,
    pub root: Root,
    pub credentials: Option<broker::Credentials>,
    /// For `mqtts://` brokers: the system's roots and the configured CA.
    pub tls: broker::TlsConfig,
}

/// One node's link through the broker, as the gateway holds it.
struct Link {
    frames: mpsc::Sender<Result<Frame, TransportError>>,
    /// Turns true (or closes) once the node's session has ended.
    done: watch::Receiver<bool>,
}

/// The controller's client on the broker and the nodes linked through it.
pub struct Gateway {
    hub: Weak<Hub>,
    root: Root,
    client: Mutex<Option<AsyncClient>>,
    links: Mutex<HashMap<i64, Link>>,
    strays: Mutex<HashMap<i64, Stray>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Gateway {
    /// Connects in the background (and again whenever the broker is lost) for as long
    /// as the hub lives. The hub sends live audio through it. The URLs come checked
    /// ([`protocol::mqtt::configured`]).
    pub fn start(hub: &Arc<Hub>, config: BrokerConfig) -> Arc<Gateway> {
        let gw = Arc::new(Gateway {
            hub: Arc::downgrade(hub),
            root: config.root.clone(),
            client: Mutex::default(),
            links: Mutex::default(),
            strays: Mutex::default(),
        });
        hub.set_broker(gw.clone());
        tokio::spawn(gw.clone().run(config));
        gw
    }

    async fn run(self: Arc<Self>, config: BrokerConfig) {
        let client_id = format!("loa-controller-{}", self.root).replace('/', "-");
        for url in config.urls.iter().cycle() {
            let creds = config.credentials.as_ref();
            let Ok(mut opts) = broker::options(url, client_id.clone(), creds, Some(&config.tls))
            else {
                return;
            };
            // A change goes to every node at once: its desired states (QoS 1) need not wait
            // a round trip per hundred.
            opts.set_inflight(INFLIGHT);
            let (client, mut events) = AsyncClient::new(opts, CLIENT_QUEUE);
            *lock(&self.client) = Some(client.clone());
            loop {
                if self.hub.strong_count() == 0 {
                    return;
                }
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        tracing::info!(%url, root = %self.root, "broker connected");
                        for f in self.root.controller_filters() {
                            let _ = client.try_subscribe(f, QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => self.incoming(&p.topic, p.payload),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(%url, "broker: {e}");
                        break;
                    }
                }
            }
            *lock(&self.client) = None;
            // Every session ends; the nodes lost the broker too, or will be told to say
            // hello again by the next.
            lock(&self.links).clear();
            tokio::time::sleep(RETRY).await;
        }
    }

    fn incoming(self: &Arc<Self>, topic: &str, payload: Bytes) {
        let Some((commune, topic)) = self.root.parse(topic) else {
            return;
        };
        match topic {
            Topic::Up(node) => self.up(commune, node, payload),
            Topic::Presence(node) if payload.as_ref() == OFFLINE.as_bytes() => {
                // The broker lost it (its last will) or it said goodbye: its session ends
                // and it is offline now, not after the silence limit.
                if lock(&self.links).remove(&node).is_some()
                    && let Some(hub) = self.hub.upgrade()
                {
                    tokio::spawn(async move { hub.gone(node).await });
                }
            }
            _ => {}
        }
    }

    /// One message from a node: to its session, or a hello that starts one.
    fn up(self: &Arc<Self>, commune: &str, node: i64, payload: Bytes) {
        if payload.len() > MAX_FRAME_BYTES {
            tracing::warn!(
                node,
                bytes = payload.len(),
                "broker: oversized message dropped"
            );
            return;
        }
        let Ok(text) = String::from_utf8(payload.to_vec()) else {
            tracing::warn!(node, "broker: a message that is not UTF-8 dropped");
            return;
        };
        let hello = kind(&text).as_deref() == Some("hello");
        if !hello {
            let links = lock(&self.links);
            if let Some(l) = links.get(&node).filter(|l| !l.frames.is_closed()) {
                if l.frames.try_send(Ok(Frame::Text(text))).is_err() {
                    tracing::warn!(node, "broker: the session is behind; a message dropped");
                }
                return;
            }
        }
        // No session (or a hello to start one): only now is the node's scope needed.
        // (`parse` checked the commune's segment, so it is a valid one.)
        let Ok(scope) = self.root.scope(commune) else {
            return;
        };
        if !hello {
            return self.say_hello_again(&scope, node);
        }
        let token = match NodeMsg::decode(&text) {
            Ok(NodeMsg::Hello { token: Some(t), .. }) => t,
            _ => {
                tracing::warn!(node, "broker: a hello without a node token");
                self.bye(&scope, node, TOKEN_REFUSED);
                return;
            }
        };
        lock(&self.strays).remove(&node);
        let (frames, rx) = mpsc::channel(NODE_QUEUE);
        let _ = frames.try_send(Ok(Frame::Text(text)));
        let (done_tx, done) = watch::channel(false);
        // A node that says hello again replaced its connection: the old session ends
        // first, then this one starts.
        let before = lock(&self.links)
            .insert(node, Link { frames, done })
            .map(|old| old.done);
        let gw = self.clone();
        let task = async move {
            if let Some(mut before) = before {
                let _ = before.wait_for(|ended| *ended).await;
            }
            gw.session(scope, node, &token, rx).await;
            let _ = done_tx.send(true);
        };
        tokio::spawn(task.instrument(tracing::info_span!("broker", node)));
    }

    /// Checks the hello's token against the node the topic names, then runs its session.
    async fn session(
        self: &Arc<Self>,
        scope: Scope,
        node: i64,
        token: &str,
        rx: mpsc::Receiver<Result<Frame, TransportError>>,
    ) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let identity = match hub.cms().authenticate_node(token).await {
            Ok(n) if n.id == node && self.root.scope(&n.commune_slug).as_ref() == Ok(&scope) => n,
            Ok(n) => {
                tracing::warn!(
                    node,
                    token_of = n.id,
                    "broker: a node token used on another node's topic"
                );
                return self.refuse(&scope, node);
            }
            Err(e) => {
                tracing::warn!(node, "broker: node link refused: {e}");
                return self.refuse(&scope, node);
            }
        };
        let transport = GatewayTransport {
            frames: rx,
            gw: self.clone(),
            scope,
            node,
        };
        cms::store::as_fleet(hub.run_session_via(identity, transport, true)).await;
    }

    fn refuse(&self, scope: &Scope, node: i64) {
        lock(&self.links).remove(&node);
        self.bye(scope, node, TOKEN_REFUSED);
    }

    /// A message from a node with no session here (this controller restarted, or the
    /// session ended): once that has lasted [`STRAY_GRACE`] (its hello may be on the way),
    /// it is told to say hello, at most every [`BYE_EVERY`].
    fn say_hello_again(&self, scope: &Scope, node: i64) {
        let now = tokio::time::Instant::now();
        {
            let mut strays = lock(&self.strays);
            strays.retain(|_, s| now.duration_since(s.last) < BYE_EVERY * 2);
            let s = strays.entry(node).or_insert(Stray {
                since: now,
                last: now,
                told: None,
            });
            s.last = now;
            let due = now.duration_since(s.since) >= STRAY_GRACE
                && s.told.is_none_or(|t| now.duration_since(t) >= BYE_EVERY);
            if !due {
                return;
            }
            s.told = Some(now);
        }
        self.bye(scope, node, "hello first");
    }

    /// Ends a node's link from outside its session (no session, or a refused one).
    fn bye(&self, scope: &Scope, node: i64, reason: &str) {
        let Some(client) = lock(&self.client).clone() else {
            return;
        };
        let _ = client.try_publish(
            scope.topic(Topic::Down(node)),
            QoS::AtLeastOnce,
            false,
            bye(reason),
        );
    }

    async fn publish(
        &self,
        topic: String,
        q: Qos,
        retain: bool,
        payload: String,
    ) -> Result<(), TransportError> {
        let client = lock(&self.client)
            .clone()
            .ok_or_else(|| TransportError::Closed(Some("broker lost".into())))?;
        client
            .publish(topic, broker::qos(q), retain, payload)
            .await
            .map_err(|e| TransportError::Io(format!("broker: {e}")))
    }

    /// Live audio, once to each village's topic (QoS 0: a late frame is a lost frame);
    /// returns how many topics it went to. Called from the encoder's thread.
    pub fn publish_live(&self, topics: &[String], packet: &[u8]) -> usize {
        let Some(client) = lock(&self.client).clone() else {
            return 0;
        };
        topics
            .iter()
            .filter(|t| {
                client
                    .try_publish(t.as_str(), QoS::AtMostOnce, false, packet.to_vec())
                    .is_ok()
            })
            .count()
    }

    /// The live topics of `villages` of the commune `slug`.
    pub fn live_topics(&self, slug: &str, villages: &[i64]) -> Vec<String> {
        match self.root.scope(slug) {
            Ok(scope) => villages.iter().map(|v| scope.live_filter(*v)).collect(),
            Err(e) => {
                tracing::warn!("live over the broker: {e}");
                Vec::new()
            }
        }
    }
}

/// A node's session's end of the broker: what the gateway hands on, in; its topics, out.
pub struct GatewayTransport {
    frames: mpsc::Receiver<Result<Frame, TransportError>>,
    gw: Arc<Gateway>,
    scope: Scope,
    node: i64,
}

impl Transport for GatewayTransport {
    async fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
        match self.frames.recv().await {
            Some(frame) => frame.map(Some),
            None => Err(TransportError::Closed(None)),
        }
    }

    async fn send(&mut self, text: String) -> Result<(), TransportError> {
        let (topic, q, retain) = down_route(&text, self.node);
        self.gw
            .publish(self.scope.topic(topic), q, retain, text)
            .await
    }

    /// Live audio goes once per village ([`Gateway::publish_live`]), not per node.
    async fn send_binary(&mut self, _bytes: Vec<u8>) -> Result<(), TransportError> {
        Ok(())
    }

    async fn close(&mut self, _code: CloseCode, reason: &str) {
        if reason == super::REVOKED {
            // Its schedule leaves the broker with it (an empty retained message clears
            // the retained one).
            let desired = self.scope.topic(Topic::Desired(self.node));
            let _ = self
                .gw
                .publish(desired, Qos::AtLeastOnce, true, String::new())
                .await;
        }
        let down = self.scope.topic(Topic::Down(self.node));
        let _ = self
            .gw
            .publish(down, Qos::AtLeastOnce, false, bye(reason))
            .await;
    }
}
