//! `speaker-node enroll`: trades the one-time code an admin got when adding the node for
//! the node's long-lived token, kept in the state directory (mode 0600).

use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::link::{EnrollRequest, EnrollResponse};
use serde::Deserialize;

use super::error::{AgentError, Result, chain};
use super::state::{Identity, StateDir};
use super::tls;

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// How to reach the controller to enrol.
#[derive(Debug, Default, Clone)]
pub struct EnrollTls {
    /// The commune's CA (PEM): trusted for this request and kept as `STATE/ca.pem` for
    /// `run`.
    pub ca_file: Option<PathBuf>,
    /// Allow a plain-http controller off this machine.
    pub insecure_http: bool,
}

/// Enrols and stores the token; returns the identity.
pub fn enroll(server: &str, code: &str, state: &Path, opts: &EnrollTls) -> Result<Identity> {
    let server = server.trim_end_matches('/').to_string();
    tls::check_url("server", &server, opts.insecure_http)?;
    // Read before anything is written: a bad CA file leaves no half enrolment behind.
    let ca = match &opts.ca_file {
        Some(path) => Some((
            tls::read_ca(path)?,
            std::fs::read(path).map_err(|e| AgentError::file(path, e))?,
        )),
        None => None,
    };
    let dir = StateDir::open(state)?;
    let config = tls::client_config(&opts.ca_file.iter().cloned().collect::<Vec<_>>())?;
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
        let http = tls::http_client(
            &config,
            reqwest::Client::builder().timeout(Duration::from_secs(30)),
        )?;
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
        broker_scope: res.broker_scope,
    };
    if let Some((_, pem)) = ca {
        dir.write_private(tls::STATE_CA, &pem)?;
    }
    dir.save_enrolment(&identity, &res.token)?;
    Ok(identity)
}
