//! The `controller` command line: the first admin, and clear one-line errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn controller(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_controller"))
        .args(args)
        .env("LOA_LOG", "warn")
        .output()
        .unwrap()
}

fn stderr_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
    err
}

#[test]
fn user_add_makes_the_first_admin_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let add = |user: &str, pass: &str, role: &str| {
        controller(&[
            "user",
            "add",
            "--data",
            data,
            "--username",
            user,
            "--password",
            pass,
            "--role",
            role,
        ])
    };

    let out = add("quantri", "mật khẩu dài", "admin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let user: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (user["username"].as_str(), user["role"].as_str()),
        (Some("quantri"), Some("admin"))
    );
    assert!(std::path::Path::new(data).join("loa.db").exists());

    let out = add("quantri", "mật khẩu dài", "admin");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("already taken"));
    let out = add("ngan", "short", "editor");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("at least 8"));
    let out = add("a b", "mật khẩu dài", "editor");
    assert_eq!(out.status.code(), Some(1));
    stderr_line(&out);
    // clap refuses an unknown role before anything is opened.
    let out = add("x", "mật khẩu dài", "king");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_on_a_busy_address_is_one_clear_line() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = controller(&[
        "serve",
        "--data",
        dir.path().join("d").to_str().unwrap(),
        "--listen",
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_line(&out);
    assert!(
        err.contains("cannot listen on") && err.contains(&addr),
        "{err}"
    );
}

#[test]
fn an_unusable_data_directory_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = controller(&[
        "user",
        "add",
        "--data",
        file.to_str().unwrap(),
        "--username",
        "a",
        "--password",
        "mật khẩu dài",
        "--role",
        "admin",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("not-a-dir"));
}

/// The first log lines of `controller serve` (killed once it serves).
fn serve_log(extra: &[&str]) -> Vec<String> {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = vec!["serve", "--data", data.to_str().unwrap()];
    args.extend(["--listen", "127.0.0.1:0"]);
    args.extend(extra);
    let mut child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .args(&args)
        .env("LOA_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.contains("serving");
        lines.push(line);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    lines
}

#[test]
fn logs_are_plain_text_off_a_terminal_or_json_when_asked() {
    let text = serve_log(&[]);
    assert!(text.iter().any(|l| l.contains("serving")), "{text:?}");
    assert!(
        text.iter().all(|l| !l.contains('\u{1b}')),
        "no colour codes in a log file: {text:?}"
    );
    let json = serve_log(&["--log-json"]);
    for line in &json {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
    assert!(json.iter().any(|l| l.contains("serving")), "{json:?}");
}
