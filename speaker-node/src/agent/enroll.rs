//! `speaker-node enroll`: trades the one-time code an admin got when adding the node for
//! the node's long-lived token, kept in the state directory (mode 0600).

use std::path::Path;
use std::time::Duration;

use protocol::link::{EnrollRequest, EnrollResponse};
use serde::Deserialize;

use super::error::{AgentError, Result, chain};
use super::state::{Identity, StateDir};

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// Enrols and stores the token; returns the identity.
pub fn enroll(server: &str, code: &str, state: &Path) -> Result<Identity> {
    let dir = StateDir::open(state)?;
    let server = server.trim_end_matches('/').to_string();
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(AgentError::Config(format!(
            "{server}: the server is an http:// or https:// URL"
        )));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AgentError::Runtime)?;
    let url = format!("{server}/api/v1/nodes/enroll");
    let http_err = |reason: String| AgentError::Http {
        url: url.clone(),
        reason,
    };
    let res: EnrollResponse = rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| http_err(chain(&e)))?;
        let res = http
            .post(&url)
            .json(&EnrollRequest { code: code.into() })
            .send()
            .await
            .map_err(|e| http_err(chain(&e)))?;
        let status = res.status();
        let body = res.bytes().await.map_err(|e| http_err(chain(&e)))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&body)
                .map(|b| b.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(http_err(format!("{} {message}", status.as_u16())));
        }
        serde_json::from_slice(&body).map_err(|e| http_err(format!("unexpected answer: {e}")))
    })?;
    let identity = Identity {
        server,
        node_id: res.node_id,
        name: res.name,
    };
    dir.save_enrolment(&identity, &res.token)?;
    Ok(identity)
}
