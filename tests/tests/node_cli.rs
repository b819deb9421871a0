//! `speaker-node enroll` and `run` refuse bad input with one line on stderr and a
//! non-zero exit, and leave nothing behind.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use loa_tests::{Controller, bin};

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin("speaker-node"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_and_start_up_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_s = state.display().to_string();

    let (ok, err) = run(&["run", "--state", &state_s, "--output", "null"]);
    assert!(
        !ok && err.lines().count() == 1 && err.contains("not enrolled"),
        "{err}"
    );

    let bad = dir.path().join("node.toml");
    std::fs::write(&bad, "volume = \"loud\"\n").unwrap();
    let (ok, err) = run(&["run", "--config", &bad.display().to_string()]);
    assert!(
        !ok && err.lines().count() == 1 && err.contains("node.toml"),
        "{err}"
    );

    // A usage error: clap's own form (the reason first, then a pointer to --help).
    let (ok, err) = run(&["run", "--state", &state_s, "--output", "speaker"]);
    assert!(
        !ok && err.lines().next().is_some_and(|l| l.contains("speaker")),
        "{err}"
    );

    // Nobody listens on port 9 of loopback.
    let (ok, err) = run(&[
        "enroll",
        "--server",
        "http://127.0.0.1:9",
        "--code",
        "AAAA-BBBB-CCCC-DDDD",
        "--state",
        &state_s,
    ]);
    assert!(!ok && err.lines().count() == 1, "{err}");

    let ctl = Controller::start(dir.path()).await;
    for code in ["AAAA-BBBB-CCCC-DDDD", "short", ""] {
        let (ok, err) = run(&[
            "enroll", "--server", &ctl.url, "--code", code, "--state", &state_s,
        ]);
        assert!(
            !ok && err.lines().count() == 1 && err.contains("403"),
            "{code:?}: {err}"
        );
    }
    assert!(!state.join("token").exists());
    let (ok, err) = run(&[
        "enroll", "--server", "ftp://x", "--code", "A", "--state", &state_s,
    ]);
    assert!(!ok && err.contains("http"), "{err}");
}
