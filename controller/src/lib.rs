//! The controller process: the CMS (and, with the fleet link, the node hub) behind one
//! listener. [`run`] is the whole server; the binary only parses its configuration.

pub mod config;
pub mod demo;
pub mod demo_nodes;
pub mod hub;

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
pub async fn serve(
    hub: Arc<Hub>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    hub.spawn_liveness();
    let cms = hub.cms().clone();
    let routes = hub::websocket::filter(&hub)
        .or(cms::http::routes(cms))
        .unify();
    warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}
