//! The upload check: every file is decoded in full by the node's own decoder before it is
//! accepted, and its integrated loudness (EBU R128) measured on the way.

use std::path::Path;

use audio::decode::Decoder;
use ebur128::{EbuR128, Mode};

use crate::error::{CmsError, Result, Text};

/// Normalisation gain stays within this: a recording 30 dB too quiet is better re-recorded
/// than amplified into noise (the node's limiter catches peaks of what is allowed).
pub const MAX_GAIN_DB: f64 = 20.0;

#[derive(Debug, Clone, PartialEq)]
pub struct MediaInfo {
    pub format: String,
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_ms: u64,
    pub size: u64,
    /// Integrated loudness, LUFS; `None` for digital silence.
    pub loudness_lufs: Option<f64>,
}

impl MediaInfo {
    /// Gain that brings the item to `target` LUFS, clamped to ±[`MAX_GAIN_DB`].
    pub fn gain_to(&self, target: f64) -> f64 {
        self.loudness_lufs
            .map_or(0.0, |l| ((target - l) * 100.0).round() / 100.0)
            .clamp(-MAX_GAIN_DB, MAX_GAIN_DB)
    }
}

/// Decodes the whole file (blocking; run it on the blocking pool).
pub fn analyse(path: &Path, size: u64) -> Result<MediaInfo> {
    let mut decoder = Decoder::open(path).map_err(reject)?;
    let info = decoder.info().clone();
    let mut meter =
        EbuR128::new(u32::from(info.channels), info.sample_rate, Mode::I).map_err(|e| {
            CmsError::UnsupportedMedia(Text::new(
                format!("Không đo được độ lớn âm thanh: {e}"),
                format!("Cannot measure loudness: {e}"),
            ))
        })?;
    while let Some(chunk) = decoder.next_chunk().map_err(reject)? {
        // Chunks are whole frames; the meter only fails on a partial one.
        let _ = meter.add_frames_f32(chunk);
    }
    let report = decoder.report();
    if report.frames == 0 {
        return Err(reject(audio::Error::NoAudio));
    }
    if report.truncated || report.skipped_packets > 0 {
        return Err(CmsError::invalid(
            format!(
                "Tệp âm thanh bị hỏng hoặc thiếu ({} đoạn lỗi, thiếu {} ms). Hãy xuất lại tệp.",
                report.skipped_packets,
                report.lost_ms + report.missing_ms
            ),
            format!(
                "The audio file is damaged or cut short ({} damaged stretches, {} ms missing). Please export it again.",
                report.skipped_packets,
                report.lost_ms + report.missing_ms
            ),
        ));
    }
    let loudness = meter.loudness_global().ok().filter(|l| l.is_finite());
    Ok(MediaInfo {
        format: info.format,
        codec: info.codec,
        sample_rate: info.sample_rate,
        channels: info.channels,
        duration_ms: report.frames * 1000 / u64::from(info.sample_rate.max(1)),
        size,
        loudness_lufs: loudness.map(|l| (l * 100.0).round() / 100.0),
    })
}

fn reject(err: audio::Error) -> CmsError {
    use audio::Error as E;
    match err {
        E::UnsupportedCodec(codec) => CmsError::UnsupportedMedia(Text::new(
            format!(
                "Định dạng âm thanh không được hỗ trợ: {codec}. Hãy dùng MP3, M4A (AAC), OGG Vorbis, FLAC hoặc WAV."
            ),
            format!(
                "Unsupported audio codec: {codec}. Use MP3, M4A (AAC), Ogg Vorbis, FLAC or WAV."
            ),
        )),
        E::Empty => CmsError::invalid("Tệp rỗng.", "The file is empty."),
        E::UnknownFormat | E::NoAudioTrack | E::NoAudio => CmsError::invalid(
            "Đây không phải tệp âm thanh (hoặc không có âm thanh đọc được).",
            "This is not an audio file (or it holds no decodable audio).",
        ),
        E::Corrupt(detail) | E::FormatChanged(detail) => CmsError::invalid(
            format!("Tệp âm thanh bị hỏng: {detail}"),
            format!("The audio file is corrupt: {detail}"),
        ),
        other => CmsError::Storage(other.to_string()),
    }
}
