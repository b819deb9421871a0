//! The real sound-card path: `speaker-node play` through cpal and ALSA into a PulseAudio
//! null sink, recorded from its monitor. The recording must be the sample, at the level
//! asked for, with no underruns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pulse::PulseServer;
use common::*;

/// One real-time capture at a time: three sound servers, players and recorders at once
/// on a 2-core machine starve each other and drop audio, which is not what we test here.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn play_and_capture(sample: &str, extra: &[&str]) -> (Vec<f32>, Vec<f32>, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pulse = PulseServer::start();
    let file = samples_dir().join(sample);
    let recorder = pulse.record();
    let out = pulse
        .command(env!("CARGO_BIN_EXE_speaker-node"))
        .args(["play", file.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let captured = recorder.stop();
    let err = stderr(&out);
    assert!(out.status.success(), "play failed: {err}");
    // At the card's rate; mono becomes dual-mono at unity, as the node plays it (ffmpeg's
    // own -ac 2 would lower it by 3 dB).
    let mut reference = ffmpeg_decode(&file, Some(48_000), None);
    if reference.len() == ffmpeg_decode(&file, Some(48_000), Some(2)).len() / 2 {
        reference = reference.iter().flat_map(|s| [*s, *s]).collect();
    }
    (reference, captured, err)
}

/// A PulseAudio monitor records nothing while its sink plays silence and then misses the
/// first block the sink renders (paplay loses its start the same way). How much depends
/// on the recorder's buffer: 3,840 frames with 20 ms, 12,796 with the 100 ms we use so a
/// loaded machine never drops captured audio. Only the ALSA-plugin path starts the sink
/// with our first samples; the native tests see the item from its first sample. The
/// capture may lack up to this much of the start; everything after must be there.
const MONITOR_START_LOSS_FRAMES: usize = 24_000;

/// Plays `sample` and checks what the null sink's monitor recorded. The recorder (parec)
/// is the test's instrument: on a loaded machine it has been seen to drop a stretch of a
/// capture (SNR 18.7 dB once in a full run, with no underrun on the playing side). Such a
/// capture is taken once more; a second bad one fails, and an underrun always fails.
fn play_and_hear(sample: &str, extra: &[&str], expected_gain: f64) {
    for attempt in 0..2 {
        let (reference, captured, err) = play_and_capture(sample, extra);
        assert!(!err.contains("underrun"), "{err}");
        let cmp = compare(&reference, &captured, 2, 96_000);
        if cmp.snr_db > 40.0 || attempt == 1 {
            assert_heard(&reference, &captured, expected_gain);
            return;
        }
        eprintln!(
            "the capture lost audio (SNR {:.1} dB); capturing once more",
            cmp.snr_db
        );
    }
}

fn assert_heard(reference: &[f32], captured: &[f32], expected_gain: f64) {
    let cmp = compare(reference, captured, 2, 96_000);
    println!(
        "lag {} frames, gain {:.4}, SNR {:.1} dB over {} frames",
        cmp.lag, cmp.gain, cmp.snr_db, cmp.overlap_frames
    );
    let missed_start = usize::try_from(-cmp.lag).unwrap_or(0);
    assert!(
        missed_start <= MONITOR_START_LOSS_FRAMES,
        "capture lacks {missed_start} frames of the start"
    );
    let expected = reference.len() / 2 - missed_start;
    assert!(
        cmp.overlap_frames + 10 >= expected,
        "heard {} of {expected} frames",
        cmp.overlap_frames
    );
    assert!(
        (cmp.gain / expected_gain - 1.0).abs() < 0.02,
        "gain {} expected {expected_gain}",
        cmp.gain
    );
    assert!(cmp.snr_db > 40.0, "SNR {:.1} dB", cmp.snr_db);
}

#[test]
fn plays_a_stereo_item_through_the_sound_card_at_the_volume_asked() {
    play_and_hear("news.ogg", &["--output", "device", "--volume", "50"], 0.25);
}

#[test]
fn plays_through_alsa_when_asked() {
    // cpal -> ALSA -> the pulse ALSA plugin: the path of a board with no sound server.
    play_and_hear(
        "news.mp3",
        &["--output", "device:alsa:default", "--volume", "80"],
        0.64,
    );
}

#[test]
fn plays_a_mono_mp3_with_item_gain() {
    play_and_hear(
        "announcement.mp3",
        &["--output", "device", "--gain-db", "-6"],
        10f64.powf(-6.0 / 20.0),
    );
}
