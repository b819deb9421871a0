//! The controller process: the CMS (and, with the fleet link, the node hub) behind one
//! listener. [`run`] is the whole server; the binary only parses its configuration.

pub mod alerts;
pub mod broker_acl;
pub mod config;
pub mod demo;
pub mod demo_nodes;
pub mod hub;
pub mod live;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cms::{Cms, CmsConfig};
use hub::{Hub, HubConfig, Sessions};
use tokio::net::TcpListener;
use warp::Filter;

/// Opens the CMS with the hub's session registry as its fleet link — wired once, here:
/// the CMS reaches nodes through the registry, the hub holds the CMS.
pub fn open(config: CmsConfig, hub: HubConfig) -> anyhow::Result<Arc<Hub>> {
    let sessions = Arc::new(Sessions::default());
    let cms = Cms::open_with_fleet(config, sessions.clone())?;
    Ok(Hub::new(cms, sessions, hub)?)
}

/// Serves the CMS and its fleet hub on `listener` until `shutdown` resolves.
pub async fn run(
    config: CmsConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let hub = open(config, HubConfig::default())?;
    serve(hub, listener, shutdown).await;
    Ok(())
}

/// A client connection, plain or TLS.
pub trait Conn: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Conn for T {}

/// How the listener treats its connections.
#[derive(Clone)]
pub struct ListenOptions {
    /// https with this acceptor; `None`: plain http.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// A client has this long to send a request's head (and an idle keep-alive
    /// connection this long to start the next one): slowloris and silent sockets are let
    /// go.
    pub header_timeout: Duration,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            tls: None,
            header_timeout: Duration::from_secs(20),
        }
    }
}
/// ...and this long to finish a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves an open hub (node link + everything of its CMS) on `listener`, plain http.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    serve_with(hub, listener, ListenOptions::default(), shutdown).await
}

/// Serves an open hub on `listener` as `options` say (TLS, timeouts).
///
/// One connection loop for all: a connection whose first bytes are a live source's
/// request goes to [`live::serve_source`] (its body has no HTTP framing); every other one
/// is HTTP, served by warp's routes with the client's address as a request extension.
pub async fn serve_with(
    hub: Arc<Hub>,
    listener: TcpListener,
    options: ListenOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let (tls, header_timeout) = (options.tls, options.header_timeout);
    hub.spawn_liveness();
    alerts::spawn(&hub, hub.alert_config().clone());
    let cms = hub.cms().clone();
    // Sessions whose sources were lost with a previous process end now.
    match cms.end_orphaned_live().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            sessions = n,
            "ended live sessions left open by a previous run"
        ),
        Err(e) => tracing::error!("cannot end old live sessions: {e}"),
    }
    let mounts = Arc::new(live::Mounts::default());
    let routes = hub::websocket::filter(&hub)
        .or(live::mic_filter(&hub, mounts.clone()))
        .unify()
        .or(cms::http::routes(cms))
        .unify();
    let service = warp::service(routes);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait a little, never spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small messages leave when written: clock exchanges and live voice frames (every
        // 20 ms) must not wait for the previous segment's acknowledgement (Nagle).
        let _ = stream.set_nodelay(true);
        let (hub, mounts, service, tls) =
            (hub.clone(), mounts.clone(), service.clone(), tls.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let (stream, head): (Box<dyn Conn>, Vec<u8>) = match tls {
                None => {
                    let mut head = [0u8; 16];
                    let n = peek_head(&stream, &mut head, header_timeout).await;
                    (Box::new(stream), head[..n].to_vec())
                }
                Some(acceptor) => {
                    let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let mut tls = match accepted.await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!(%addr, "TLS handshake: {e}"),
                        Err(_) => return tracing::debug!(%addr, "TLS handshake timed out"),
                    };
                    let head = read_head(&mut tls, header_timeout).await;
                    (Box::new(tls::Prefixed::new(head.clone(), tls)), head)
                }
            };
            // Silent, or the start of an HTTP/2 preface left unfinished (HTTP/1 only is
            // served; hyper would wait for the rest with no timeout): let go.
            if head.is_empty() || (head.starts_with(b"PRI") && head.len() < 16) {
                return;
            }
            if live::is_source(&head) {
                live::serve_source(hub, mounts, stream, addr).await;
                return;
            }
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(cms::http::Peer(addr));
                    let mut service = service.clone();
                    async move { tower_service::Service::call(&mut service, req).await }
                },
            );
            let mut builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn =
                builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!("connection: {e}");
            }
        });
    }
    // Requests in flight finish (node links close with the process).
    let _ = tokio::time::timeout(Duration::from_secs(5), graceful.shutdown()).await;
}

/// When a client's first bytes must have come: a second for the whole head of a live
/// source or an HTTP request line's start, the header timeout for the first byte.
fn head_deadlines(header_timeout: Duration) -> (tokio::time::Instant, tokio::time::Instant) {
    let now = tokio::time::Instant::now();
    (now + Duration::from_secs(1), now + header_timeout)
}

/// The first bytes of a TLS connection's plaintext (up to 16), read and so to be
/// replayed; empty if nothing came within the header timeout.
async fn read_head(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    header_timeout: Duration,
) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let (soon, late) = head_deadlines(header_timeout);
    let mut head = vec![0u8; 16];
    let mut n = 0;
    while n < head.len() {
        let deadline = if n == 0 { late } else { soon };
        match tokio::time::timeout_at(deadline, stream.read(&mut head[n..])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(got)) => n += got,
        }
    }
    head.truncate(n);
    head
}

/// The connection's first bytes, without taking them (fewer if the client is slow to
/// send them; none if it sent nothing within the header timeout).
async fn peek_head(
    stream: &tokio::net::TcpStream,
    head: &mut [u8],
    header_timeout: Duration,
) -> usize {
    let (soon, late) = head_deadlines(header_timeout);
    let mut n = 0;
    while n < head.len() {
        let deadline = if n == 0 { late } else { soon };
        match tokio::time::timeout_at(deadline, stream.peek(head)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(got)) if got == n => {
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await
            }
            Ok(Ok(got)) => n = got,
        }
    }
    n
}
