//! Helpers shared by the speaker-node integration tests: run the real binary, decode a
//! reference with ffmpeg, and compare signals after aligning them by cross-correlation.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

pub mod pulse;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_speaker-node"))
}

pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../audio-samples")
}

pub fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("speaker-node runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// ffmpeg's decode of `file` as interleaved f32, optionally converted.
pub fn ffmpeg_decode(file: &Path, rate: Option<u32>, channels: Option<u16>) -> Vec<f32> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error"]);
    // Opus: libopus, the reference decoder (as ours); ffmpeg's own Opus decoder differs
    // from it by ~29 dB SNR on the samples.
    let opus = file.extension().is_some_and(|e| e == "webm" || e == "opus")
        || file.to_string_lossy().contains("opus");
    if opus {
        cmd.args(["-c:a", "libopus"]);
    }
    cmd.arg("-i").arg(file);
    if let Some(rate) = rate {
        cmd.args(["-ar", &rate.to_string()]);
    }
    if let Some(ch) = channels {
        cmd.args(["-ac", &ch.to_string()]);
    }
    let out = cmd
        .args(["-f", "f32le", "-"])
        .output()
        .expect("ffmpeg is installed (./loa deps)");
    assert!(
        out.status.success(),
        "ffmpeg failed on {}: {}",
        file.display(),
        stderr(&out)
    );
    f32_le(&out.stdout)
}

pub fn f32_le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

pub fn read_wav(path: &Path) -> (hound::WavSpec, Vec<f32>) {
    let mut reader = hound::WavReader::open(path).expect("wav opens");
    let spec = reader.spec();
    let samples = reader.samples::<f32>().map(|s| s.unwrap()).collect();
    (spec, samples)
}

/// `speaker-node decode FILE --output wav:DIR/decoded.wav`, which must succeed; returns
/// the run (for its stderr) and the WAV read back.
pub fn decode_to_wav(file: &Path, dir: &Path) -> (Output, hound::WavSpec, Vec<f32>) {
    let wav = dir.join("decoded.wav");
    let out = run(&[
        "decode",
        file.to_str().unwrap(),
        "--output",
        &format!("wav:{}", wav.display()),
    ]);
    assert!(out.status.success(), "{}: {}", file.display(), stderr(&out));
    let (spec, samples) = read_wav(&wav);
    (out, spec, samples)
}

/// First channel of interleaved samples.
pub fn channel(samples: &[f32], channels: usize, which: usize) -> Vec<f32> {
    samples
        .iter()
        .skip(which)
        .step_by(channels)
        .copied()
        .collect()
}

/// The lag (in frames) that best aligns `b` to `a`: `a[i] ~ b[i + lag]`, searched within
/// `max_lag`, by FFT cross-correlation of the first channel.
pub fn best_lag(a: &[f32], b: &[f32], max_lag: usize) -> isize {
    let n = (a.len() + b.len()).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let fwd = planner.plan_fft_forward(n);
    let inv = planner.plan_fft_inverse(n);
    let spectrum = |x: &[f32]| {
        let mut buf: Vec<f64> = x.iter().map(|v| f64::from(*v)).collect();
        buf.resize(n, 0.0);
        let mut out = fwd.make_output_vec();
        fwd.process(&mut buf, &mut out).unwrap();
        out
    };
    let (fa, fb) = (spectrum(a), spectrum(b));
    let mut prod: Vec<Complex<f64>> = fa.iter().zip(&fb).map(|(x, y)| x.conj() * y).collect();
    let mut corr = inv.make_output_vec();
    inv.process(&mut prod, &mut corr).unwrap();
    let mut best = (0isize, f64::MIN);
    for lag in 0..=max_lag.min(n / 2 - 1) {
        for (l, idx) in [(lag as isize, lag), (-(lag as isize), (n - lag) % n)] {
            if corr[idx] > best.1 {
                best = (l, corr[idx]);
            }
        }
    }
    best.0
}

/// Aligned comparison of two interleaved signals with the same layout.
pub struct Comparison {
    pub lag: isize,
    /// Reference energy over error energy, dB, on the overlap.
    pub snr_db: f64,
    /// Least-squares gain of `test` relative to `reference`.
    pub gain: f64,
    pub overlap_frames: usize,
}

pub fn compare(reference: &[f32], test: &[f32], channels: usize, max_lag: usize) -> Comparison {
    let lag = best_lag(
        &channel(reference, channels, 0),
        &channel(test, channels, 0),
        max_lag,
    );
    let (r0, t0) = if lag >= 0 {
        (0, lag as usize)
    } else {
        ((-lag) as usize, 0)
    };
    let frames = (reference.len() / channels - r0).min(test.len() / channels - t0);
    let r = &reference[r0 * channels..(r0 + frames) * channels];
    let t = &test[t0 * channels..(t0 + frames) * channels];
    let (mut rr, mut rt) = (0f64, 0f64);
    for (x, y) in r.iter().zip(t) {
        rr += f64::from(*x) * f64::from(*x);
        rt += f64::from(*x) * f64::from(*y);
    }
    let gain = if rr > 0.0 { rt / rr } else { 0.0 };
    let err: f64 = r
        .iter()
        .zip(t)
        .map(|(x, y)| (f64::from(*x) * gain - f64::from(*y)).powi(2))
        .sum();
    let snr_db = 10.0 * ((rr * gain * gain) / err.max(1e-30)).log10();
    Comparison {
        lag,
        snr_db,
        gain,
        overlap_frames: frames,
    }
}
