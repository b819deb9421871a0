//! Every sample in every format decodes, through the real binary, to what ffmpeg decodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::*;

fn audio_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [samples_dir(), samples_dir().join("formats")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ["mp3", "mp2", "m4a", "ogg", "webm", "flac", "wav", "aiff"].contains(&ext) {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 25, "samples missing: {files:?}");
    files
}

fn is_lossless(codec: &str) -> bool {
    codec == "flac" || codec.starts_with("pcm_") || codec.starts_with("adpcm")
}

#[test]
fn every_sample_matches_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for file in audio_files() {
        let probe = run(&["probe", file.to_str().unwrap()]);
        assert!(
            probe.status.success(),
            "{}: {}",
            file.display(),
            stderr(&probe)
        );
        let info: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
        let codec = info["codec"].as_str().unwrap().to_string();
        let channels = info["channels"].as_u64().unwrap() as usize;

        let (out, spec, ours) = decode_to_wav(&file, dir.path());
        assert!(
            stderr(&out).is_empty(),
            "clean file warned: {}",
            stderr(&out)
        );
        assert_eq!(
            u64::from(spec.sample_rate),
            info["sample_rate"].as_u64().unwrap()
        );
        assert_eq!(usize::from(spec.channels), channels);

        let reference = ffmpeg_decode(&file, None, None);
        let cmp = compare(&reference, &ours, channels, 4096);
        let min_snr = if is_lossless(&codec) { 60.0 } else { 40.0 };
        let length_diff = (reference.len() as i64 - ours.len() as i64).abs() / channels as i64;
        report.push(format!(
            "{:<28} {:<14} lag {:>5} len diff {:>5} snr {:>6.1} dB",
            file.file_name().unwrap().to_string_lossy(),
            codec,
            cmp.lag,
            length_diff,
            cmp.snr_db
        ));
        assert!(
            cmp.snr_db >= min_snr,
            "{}: SNR {:.1} dB < {min_snr}\n{}",
            file.display(),
            cmp.snr_db,
            report.join("\n")
        );
        assert!(
            (cmp.gain - 1.0).abs() < 0.01,
            "{}: level differs: gain {}",
            file.display(),
            cmp.gain
        );
        // Same length give or take padding ffmpeg keeps (AAC) or a codec frame.
        assert!(
            length_diff <= 2112,
            "{}: {length_diff} frames longer/shorter than ffmpeg",
            file.display()
        );
    }
    println!("{}", report.join("\n"));
}

#[test]
fn probe_reports_duration_and_layout() {
    let file = samples_dir().join("announcement.mp3");
    let out = run(&["probe", file.to_str().unwrap()]);
    assert!(out.status.success());
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["format"], "mp3");
    assert_eq!(info["codec"], "mp3");
    assert_eq!(info["sample_rate"], 22050);
    assert_eq!(info["channels"], 1);
    let ms = info["duration_ms"].as_u64().unwrap();
    let wav_ms = {
        let out = run(&[
            "probe",
            samples_dir().join("announcement.wav").to_str().unwrap(),
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["duration_ms"].as_u64().unwrap()
    };
    assert!(ms.abs_diff(wav_ms) <= 30, "mp3 {ms} ms vs wav {wav_ms} ms");
}

#[test]
fn probe_ignores_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let disguised = dir.path().join("thong-bao.wav");
    std::fs::copy(samples_dir().join("chime.ogg"), &disguised).unwrap();
    let out = run(&["probe", disguised.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["codec"], "vorbis");
}

/// Gapless: every compressed copy decodes to exactly as many frames as the WAV it was
/// made from (encoder delay and padding trimmed: LAME header, Ogg granules, MP4 edit
/// list), give or take the MP4 movie timescale's one millisecond.
#[test]
fn compressed_copies_are_as_long_as_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let frames = |file: &std::path::Path| {
        let (_, spec, samples) = decode_to_wav(file, dir.path());
        (samples.len() / usize::from(spec.channels), spec.sample_rate)
    };
    for name in ["announcement", "chime", "news"] {
        let (source, rate) = frames(&samples_dir().join(format!("{name}.wav")));
        for ext in ["mp3", "m4a", "ogg", "flac"] {
            let (decoded, _) = frames(&samples_dir().join(format!("{name}.{ext}")));
            let tolerance = if ext == "m4a" {
                rate as usize / 1000
            } else {
                0
            };
            assert!(
                decoded.abs_diff(source) <= tolerance,
                "{name}.{ext}: {decoded} frames, source {source}"
            );
        }
    }
}
