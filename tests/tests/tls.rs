//! The node link over TLS, end to end: a commune CA of the test's own (rcgen), the
//! controller serving https with a certificate it signed, a node enrolled with that CA,
//! linked over wss and fetching its audio over https — and a node that does not trust the
//! server's certificate refusing it, at enrolment and at run time.

// Test helpers: a failed set-up step should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use loa_tests::{Controller, Node, bin, now_ns, tone_wav, wait_for};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A CA and a server certificate for localhost and 127.0.0.1, as PEM files in `dir`:
/// `(ca.pem, cert.pem, key.pem)`.
fn commune_ca(
    dir: &Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let paths = (
        dir.join(format!("{name}-ca.pem")),
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, server.pem()).unwrap();
    std::fs::write(&paths.2, server_key.serialize_pem()).unwrap();
    paths
}

/// An API client that trusts `ca` only.
fn client(ca: &Path) -> reqwest::Client {
    let cert = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([cert])
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_enrols_links_and_fetches_over_tls_and_refuses_a_certificate_it_does_not_trust() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = commune_ca(dir.path(), "xa");
    let args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let ctl = Controller::start_client(dir.path(), &args, client(&ca)).await;
    assert!(ctl.url.starts_with("https://"), "{}", ctl.url);
    let village = ctl.api.village("Thôn Bắc").await;

    // Without the commune CA the server's certificate is refused: no token is stored.
    let created = ctl
        .api
        .post(
            "/api/v1/nodes",
            serde_json::json!({ "name": "loa-nghi-ngo", "village_id": village }),
        )
        .await;
    let code = created["enrollment_code"].as_str().unwrap();
    let doubtful = dir.path().join("loa-nghi-ngo");
    let out = Command::new(bin("speaker-node"))
        .args(["enroll", "--server", &ctl.url, "--code", code, "--state"])
        .arg(&doubtful)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(!doubtful.join("token").exists());

    // With it: enrolled over https, the CA kept (owner-only) for `run`.
    let ca_arg = ["--ca-file", ca.to_str().unwrap()];
    let mut node = Node::enroll_args(&ctl, &ctl.url, dir.path(), "loa-tls", village, &ca_arg).await;
    let kept = node.state.join("ca.pem");
    assert_eq!(std::fs::read(&kept).unwrap(), std::fs::read(&ca).unwrap());
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Linked over wss, audio over https: an approved item scheduled soon is fetched
    // (checked against its hash) and played.
    let (content, sha) = ctl.api.approved_audio("Bản tin", tone_wav(1.0)).await;
    ctl.api
        .play_once(
            "Sắp phát",
            content,
            &[node.id],
            now_ns() + 8_000_000_000,
            "normal",
        )
        .await;
    node.start_output("null", &[]);
    node.wait_ready(&ctl.api).await;
    wait_for("the audio over https", Duration::from_secs(30), || async {
        node.state.join("cache").join(&sha).exists().then_some(())
    })
    .await;
    let logs = wait_for("the play log", Duration::from_secs(30), || async {
        let logs = ctl.api.playlogs(node.id).await;
        (!logs.is_empty()).then_some(logs)
    })
    .await;
    assert_eq!(logs[0]["outcome"], "completed", "{logs:?}");
    node.proc().stop();

    // The same node made to trust another CA instead: the controller's certificate no
    // longer chains to anything it trusts, so it never links.
    let (other_ca, _, _) = commune_ca(dir.path(), "khac");
    std::fs::copy(&other_ca, &kept).unwrap();
    let before = ctl.api.node(node.id).await["last_seen"].clone();
    node.start_output("null", &[]);
    wait_for(
        "the refusal in the node's log",
        Duration::from_secs(20),
        || async {
            let log = node.proc.as_ref().map(|p| p.log_text()).unwrap_or_default();
            log.to_lowercase().contains("certificate").then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let node_now = ctl.api.node(node.id).await;
    assert_eq!(node_now["last_seen"], before, "{node_now}");
    node.proc().stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_off_this_machine_needs_the_insecure_flag() {
    // 127.0.0.1 is this machine; a documentation address (TEST-NET-1) stands for a
    // controller elsewhere. Refused before any connection is tried.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("speaker-node"))
        .args([
            "enroll",
            "--server",
            "http://192.0.2.1:8080",
            "--code",
            "AAAA-BBBB-CCCC-DDDD",
            "--state",
        ])
        .arg(dir.path().join("n"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("plain http"), "{stderr}");
    assert!(stderr.contains("--insecure-http"), "{stderr}");
    assert!(!dir.path().join("n").exists(), "nothing is written");
}
