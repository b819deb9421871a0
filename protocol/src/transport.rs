//! The node link's transport, as both ends see it: text messages in and out of one
//! connection (and, controller to node, binary live audio), whatever carries them. The WebSocket link implements it today (the node
//! dials, the controller accepts); an MQTT broker can carry the same messages. The
//! session logic on each side — hello, clock exchanges, desired state, play logs,
//! liveness — is written against this trait only, so tests run it over an in-memory
//! [`memory`] pair, without sockets.

use std::future::Future;

/// Why a transport failed or closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The peer closed the connection (with its reason, when it gave one).
    #[error("closed by the peer{}", .0.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),
    /// A frame this link does not carry (binary on a text link).
    #[error("{0}")]
    BadFrame(String),
    #[error("{0}")]
    Io(String),
}

/// Close codes, as WebSocket numbers them (RFC 6455 §7.4.1); other transports map them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// Done (revoked, replaced, shutting down).
    Normal,
    /// A message that breaks the protocol.
    Policy,
    /// A kind of frame this end does not take.
    Unsupported,
}

impl CloseCode {
    pub fn as_u16(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::Unsupported => 1003,
            CloseCode::Policy => 1008,
        }
    }
}

/// One message of the link: JSON text, or binary live audio ([`crate::live`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// One live connection of the node link. `recv` must be cancel-safe (sessions `select!`
/// on it beside their timers).
pub trait Transport: Send {
    /// The next message; `Ok(None)` when the peer only proved itself alive (a keepalive
    /// frame); `Err(Closed)` once the peer has gone.
    fn recv(&mut self) -> impl Future<Output = Result<Option<Frame>, TransportError>> + Send;
    fn send(&mut self, text: String) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// A binary message (live audio, controller to node).
    fn send_binary(
        &mut self,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), TransportError>> + Send;
    /// Proves the link alive to the peer (a WebSocket ping); transports with their own
    /// keepalive do nothing.
    fn keepalive(&mut self) -> impl Future<Output = Result<(), TransportError>> + Send {
        async { Ok(()) }
    }
    /// Closes with a code and a reason for the peer; errors are moot by then.
    fn close(&mut self, code: CloseCode, reason: &str) -> impl Future<Output = ()> + Send;
}

/// An in-memory transport pair for tests of the session logic: what one end sends, the
/// other receives, in order; closing (or dropping) one end closes the other.
pub mod memory {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex, PoisonError};
    use std::task::{Poll, Waker};

    use super::{CloseCode, Frame, Transport, TransportError};

    /// One direction: frames waiting, the receiver's waker, whether the sender is gone.
    #[derive(Default)]
    struct Queue {
        frames: VecDeque<Result<Frame, TransportError>>,
        waker: Option<Waker>,
        sender_gone: bool,
    }

    type Shared = Arc<Mutex<Queue>>;

    fn lock(q: &Shared) -> std::sync::MutexGuard<'_, Queue> {
        q.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(q: &Shared, frame: Result<Frame, TransportError>) {
        let mut q = lock(q);
        q.frames.push_back(frame);
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }

    /// One end; works on any executor.
    pub struct MemoryTransport {
        outgoing: Shared,
        incoming: Shared,
        closed: bool,
    }

    /// Two connected ends.
    pub fn pair() -> (MemoryTransport, MemoryTransport) {
        let (a, b) = (Shared::default(), Shared::default());
        let end = |outgoing: &Shared, incoming: &Shared| MemoryTransport {
            outgoing: outgoing.clone(),
            incoming: incoming.clone(),
            closed: false,
        };
        (end(&a, &b), end(&b, &a))
    }

    impl MemoryTransport {
        fn send_frame(&mut self, frame: Frame) -> Result<(), TransportError> {
            if self.closed || lock(&self.incoming).sender_gone {
                return Err(TransportError::Closed(None));
            }
            push(&self.outgoing, Ok(frame));
            Ok(())
        }

        /// The next message if one is waiting (tests poll the peer's side with it).
        pub fn try_recv(&mut self) -> Option<Result<Frame, TransportError>> {
            let mut q = lock(&self.incoming);
            match q.frames.pop_front() {
                Some(f) => Some(f),
                None if q.sender_gone => Some(Err(TransportError::Closed(None))),
                None => None,
            }
        }
    }

    impl Drop for MemoryTransport {
        fn drop(&mut self) {
            let mut q = lock(&self.outgoing);
            q.sender_gone = true;
            if let Some(w) = q.waker.take() {
                w.wake();
            }
        }
    }

    impl Transport for MemoryTransport {
        async fn recv(&mut self) -> Result<Option<Frame>, TransportError> {
            std::future::poll_fn(|cx| match self.try_recv() {
                Some(r) => Poll::Ready(r.map(Some)),
                None => {
                    lock(&self.incoming).waker = Some(cx.waker().clone());
                    // A frame may have arrived between the check and the waker.
                    match self.try_recv() {
                        Some(r) => Poll::Ready(r.map(Some)),
                        None => Poll::Pending,
                    }
                }
            })
            .await
        }

        async fn send(&mut self, text: String) -> Result<(), TransportError> {
            self.send_frame(Frame::Text(text))
        }

        async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), TransportError> {
            self.send_frame(Frame::Binary(bytes))
        }

        async fn close(&mut self, _code: CloseCode, reason: &str) {
            self.closed = true;
            push(
                &self.outgoing,
                Err(TransportError::Closed(Some(reason.to_owned()))),
            );
        }
    }
}
