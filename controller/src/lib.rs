//! The controller process: the CMS (and, with the fleet link, the node hub) behind one
//! listener. [`run`] is the whole server; the binary only parses its configuration.

pub mod alerts;
pub mod config;
pub mod demo;
pub mod demo_nodes;
pub mod hub;
pub mod live;

use std::future::Future;
use std::sync::Arc;

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

/// Serves an open hub (node link + everything of its CMS) on `listener`.
///
/// One connection loop for all: a connection whose first bytes are a live source's
/// request goes to [`live::serve_source`] (its body has no HTTP framing); every other one
/// is HTTP, served by warp's routes with the client's address as a request extension.
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
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
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small messages leave when written: clock exchanges and live voice frames (every
        // 20 ms) must not wait for the previous segment's acknowledgement (Nagle).
        let _ = stream.set_nodelay(true);
        let (hub, mounts, service) = (hub.clone(), mounts.clone(), service.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let mut head = [0u8; 16];
            let n = peek_head(&stream, &mut head).await;
            if live::is_source(&head[..n]) {
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
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn =
                builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), svc);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!("connection: {e}");
            }
        });
    }
    // Requests in flight finish (node links close with the process).
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
}

/// The connection's first bytes, without taking them (fewer if the client is slow to
/// send them: whatever came within a second).
async fn peek_head(stream: &tokio::net::TcpStream, head: &mut [u8]) -> usize {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    let mut n = 0;
    while n < head.len() {
        match tokio::time::timeout_at(deadline, stream.peek(head)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(got)) if got == n => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await
            }
            Ok(Ok(got)) => n = got,
        }
    }
    n
}
