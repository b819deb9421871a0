//! The controller process: the CMS (and, with the fleet link, the node hub) behind one
//! listener. [`run`] is the whole server; the binary only parses its configuration.

pub mod config;
pub mod demo;
pub mod demo_nodes;
pub mod fleet;

use std::future::Future;

use cms::{Cms, CmsConfig};
use tokio::net::TcpListener;
use warp::Filter;

/// Serves the CMS on `listener` until `shutdown` resolves.
pub async fn run(
    config: CmsConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> cms::Result<()> {
    let cms = Cms::open(config)?;
    serve(cms, None, listener, shutdown).await;
    Ok(())
}

/// Serves an open CMS and its fleet hub (node link + everything of the CMS) on `listener`.
pub async fn serve(
    cms: Cms,
    webhook: Option<String>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let hub = fleet::Hub::start(cms.clone(), webhook);
    let routes = hub.filter().or(cms::http::routes(cms)).unify();
    warp::serve(routes)
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}
