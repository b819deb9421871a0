//! Bad files never panic: one stderr line naming the file and the reason, exit code 1, and
//! nothing written. Damaged and cut-off files play what they can, with a warning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn one_line_error(args: &[&str], file: &Path, reason: &str) {
    let out = run(args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("speaker-node: "), "{err}");
    assert!(
        err.contains(&file.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains(reason), "expected {reason:?} in: {err}");
    assert!(out.stdout.is_empty());
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn unreadable_and_non_audio_files_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let png_header = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0";
    let cases: Vec<(PathBuf, &str)> = vec![
        (write(dir.path(), "empty.mp3", b""), "file is empty"),
        (
            write(
                dir.path(),
                "notes.mp3",
                "Thông báo: họp thôn lúc 19 giờ.\n".as_bytes(),
            ),
            "not a recognised audio file",
        ),
        (
            write(dir.path(), "cover.m4a", png_header),
            "not a recognised audio file",
        ),
        (
            write(dir.path(), "zeros.wav", &[0u8; 4096]),
            "not a recognised audio file",
        ),
        (
            write(
                dir.path(),
                "header-only.wav",
                &std::fs::read(samples_dir().join("chime.wav")).unwrap()[..44],
            ),
            "no decodable audio",
        ),
        (
            samples_dir().join("unsupported/tone-ac3.mka"),
            "unsupported codec: ac3",
        ),
        (dir.path().join("missing.mp3"), "No such file"),
        (dir.path().to_path_buf(), "is a directory"),
    ];
    for (file, reason) in &cases {
        let f = file.to_str().unwrap();
        one_line_error(&["probe", f], file, reason);
        one_line_error(&["decode", f, "--output", "null"], file, reason);
        let wav = dir.path().join("never.wav");
        one_line_error(
            &["play", f, "--output", &format!("wav:{}", wav.display())],
            file,
            reason,
        );
        assert!(!wav.exists(), "nothing written for {f}");
    }
}

#[test]
fn a_bad_file_in_a_play_list_stops_it_before_any_sound() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.mp3", b"not audio at all");
    let wav = dir.path().join("out.wav");
    let good = samples_dir().join("chime.mp3");
    let args = [
        "play",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        "--output",
        &format!("wav:{}", wav.display()),
    ];
    one_line_error(&args, &bad, "not a recognised audio file");
    assert!(!wav.exists());
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")
    }));
}

/// Decodes a damaged file to WAV; returns (stderr, frames decoded, frames in the intact file).
fn decode_damaged(damaged: &Path, original: &Path, dir: &Path) -> (String, usize, usize) {
    let (out, spec, samples) = decode_to_wav(damaged, dir);
    let frames = samples.len() / usize::from(spec.channels);
    let full = ffmpeg_decode(original, None, None).len() / usize::from(spec.channels);
    (stderr(&out), frames, full)
}

#[test]
fn a_cut_off_file_plays_what_it_holds_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["news.mp3", "news.flac", "news.ogg", "news.m4a", "news.wav"] {
        let original = samples_dir().join(name);
        let bytes = std::fs::read(&original).unwrap();
        let cut = write(
            dir.path(),
            &format!("cut-{name}"),
            &bytes[..bytes.len() * 4 / 10],
        );
        let (err, frames, full) = decode_damaged(&cut, &original, dir.path());
        assert!(err.contains("cut short"), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        let share = frames as f64 / full as f64;
        assert!(
            (0.2..0.5).contains(&share),
            "{name}: decoded {share:.2} of the file"
        );
    }
}

#[test]
fn corrupt_frames_in_the_middle_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["news.mp3", "news.flac", "news.ogg", "news.m4a"] {
        let original = samples_dir().join(name);
        let mut bytes = std::fs::read(&original).unwrap();
        let mid = bytes.len() / 2;
        let mut x = 0x2545_f491_u32;
        for b in &mut bytes[mid..mid + 3000] {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let damaged = write(dir.path(), &format!("damaged-{name}"), &bytes);
        let (err, frames, full) = decode_damaged(&damaged, &original, dir.path());
        // Most demuxers report the damaged frames; MP3's resynchronises silently, and the
        // loss shows only against the length the header states.
        let counted = err.contains("corrupt frames") || err.contains("frames (");
        assert!(counted, "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            frames as f64 > full as f64 * 0.6,
            "{name}: only {frames} of {full} frames"
        );
    }
}

#[test]
fn bad_arguments_are_refused() {
    let chime = samples_dir().join("chime.mp3");
    let chime = chime.to_str().unwrap();
    for args in [
        vec!["play", chime, "--volume", "101"],
        vec!["play", chime, "--gain-db", "loud"],
        vec!["play", chime, "--output", "speaker"],
        vec!["play", chime, "--output", "wav:"],
        vec!["play"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("error"), "{args:?}: {}", stderr(&out));
    }
    let out = run(&["decode", chime, "--output", "device"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("use `play`"));
}

#[test]
fn an_unknown_device_is_named_in_the_error() {
    let chime = samples_dir().join("chime.mp3");
    let out = run(&[
        "play",
        chime.to_str().unwrap(),
        "--output",
        "device:no-such-card",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no-such-card"), "{err}");
}
