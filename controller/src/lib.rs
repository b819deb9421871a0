//! The controller process: the CMS (and, with the fleet link, the node hub) behind one
//! listener. [`run`] is the whole server; the binary only parses its configuration.

pub mod demo;

use std::future::Future;

use cms::{Cms, CmsConfig};
use tokio::net::TcpListener;

/// Serves the CMS on `listener` until `shutdown` resolves.
pub async fn run(
    config: CmsConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> cms::Result<()> {
    let cms = Cms::open(config)?;
    cms::http::serve(cms, listener, shutdown).await;
    Ok(())
}
