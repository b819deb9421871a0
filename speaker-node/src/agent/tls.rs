//! Who the node trusts to tell it what to play. Every build speaks https:// and wss://
//! (rustls): the server's certificate must chain to the system's trust store or to the
//! commune's own CA (`--ca-file` at enrolment, kept as `STATE/ca.pem`, or `ca_file` in
//! node.toml). Plain http:// carries schedules and audio that anyone on a 3G path could
//! forge, so it is refused unless the controller is on this machine (loopback never
//! leaves it) or the operator says `insecure_http`, which is logged at every start.
//! An `mqtts://` broker is checked against the same roots, and may be shown the node's
//! own certificate (`broker_cert_file`, `broker_key_file`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::{AgentError, Result};

/// Where the commune CA given at enrolment is kept, in the state directory.
pub const STATE_CA: &str = "ca.pem";

/// The certificates of a PEM file (at least one).
pub fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path).map_err(|e| AgentError::file(path, e))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| AgentError::Damaged {
            path: path.to_path_buf(),
            reason: format!("not a PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(AgentError::Damaged {
            path: path.to_path_buf(),
            reason: "no certificate in it".into(),
        });
    }
    Ok(certs)
}

/// The TLS client settings of the link and the content fetcher: the system's roots plus
/// the CA files that exist among `extra`.
pub fn client_config(extra: &[PathBuf]) -> Result<Arc<rustls::ClientConfig>> {
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots(extra)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// [`client_config`] for an `mqtts://` broker, with the node's client certificate (a PEM
/// chain and its PEM key) when it has one.
pub fn broker_config(
    extra: &[PathBuf],
    client: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>> {
    let Some((cert, key)) = client else {
        return client_config(extra);
    };
    let chain = read_ca(cert)?;
    let bytes = std::fs::read(key).map_err(|e| AgentError::file(key, e))?;
    let private = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| AgentError::Damaged {
        path: key.to_path_buf(),
        reason: format!("not a PEM private key: {e}"),
    })?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots(extra)?)
        .with_client_auth_cert(chain, private)
        .map_err(|e| AgentError::Config(format!("broker client certificate: {e}")))?;
    Ok(Arc::new(config))
}

fn roots(extra: &[PathBuf]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    for path in extra.iter().filter(|p| p.exists()) {
        for cert in read_ca(path)? {
            roots.add(cert).map_err(|e| AgentError::Damaged {
                path: path.clone(),
                reason: format!("unusable CA certificate: {e}"),
            })?;
        }
    }
    if roots.is_empty() {
        tracing::warn!(
            "no trusted certificates (install ca-certificates or give a CA file): https will fail"
        );
    } else {
        tracing::debug!(system = added, total = roots.len(), "TLS trust roots");
    }
    Ok(roots)
}

/// An HTTP client that trusts exactly what the link trusts.
pub fn http_client(
    tls: &Arc<rustls::ClientConfig>,
    builder: reqwest::ClientBuilder,
) -> Result<reqwest::Client> {
    builder
        .tls_backend_preconfigured((**tls).clone())
        .build()
        .map_err(|e| AgentError::Config(format!("HTTP client: {}", super::error::chain(&e))))
}

/// Refuses a plain-http controller or mirror unless it is on this machine or `insecure`
/// says so (then warns: every start leaves a line in the log).
pub fn check_url(what: &str, url: &str, insecure: bool) -> Result<()> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| AgentError::Config(format!("{what} {url}: not a URL ({e})")))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" if insecure => {
            tracing::warn!(
                "{what} {url} is plain http: schedules and audio can be forged by anyone on the path (insecure_http is set)"
            );
            Ok(())
        }
        "http" => Err(AgentError::Config(format!(
            "{what} {url} is plain http, which anyone on the path could forge: use https (or --insecure-http to accept the risk)"
        ))),
        other => Err(AgentError::Config(format!(
            "{what} {url}: the scheme is {other}, not https"
        ))),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine_or_when_allowed() {
        for ok in [
            "https://loa.example.vn",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:80",
        ] {
            check_url("server", ok, false).unwrap();
        }
        let err = check_url("server", "http://10.0.0.5:8080", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("plain http"), "{err}");
        check_url("server", "http://10.0.0.5:8080", true).unwrap();
        assert!(check_url("server", "ftp://x", true).is_err());
        assert!(check_url("server", "not a url", true).is_err());
    }

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "hello").unwrap();
        assert!(read_ca(&path).is_err());
        assert!(client_config(&[path]).is_err());
        // A missing extra file is no error (the state CA is optional).
        client_config(&[dir.path().join("none.pem")]).unwrap();
    }
}
