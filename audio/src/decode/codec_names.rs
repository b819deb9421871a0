//! Names for codecs symphonia can identify but this build cannot decode, so that the
//! message says "unsupported codec: opus" rather than a number.

use symphonia::core::codecs::audio::AudioCodecId;
use symphonia::core::codecs::audio::well_known::*;

pub(super) fn name(id: AudioCodecId) -> String {
    let known: &[(AudioCodecId, &str)] = &[
        (CODEC_ID_OPUS, "opus"),
        (CODEC_ID_SPEEX, "speex"),
        (CODEC_ID_MUSEPACK, "musepack"),
        (CODEC_ID_AC3, "ac3"),
        (CODEC_ID_EAC3, "eac3"),
        (CODEC_ID_AC4, "ac4"),
        (CODEC_ID_DCA, "dts"),
        (CODEC_ID_ATRAC1, "atrac1"),
        (CODEC_ID_ATRAC3, "atrac3"),
        (CODEC_ID_ATRAC3PLUS, "atrac3plus"),
        (CODEC_ID_ATRAC9, "atrac9"),
        (CODEC_ID_WMA, "wma"),
        (CODEC_ID_COOK, "cook"),
        (CODEC_ID_SBC, "sbc"),
        (CODEC_ID_APTX, "aptx"),
        (CODEC_ID_LDAC, "ldac"),
        (CODEC_ID_WAVPACK, "wavpack"),
        (CODEC_ID_MONKEYS_AUDIO, "ape"),
        (CODEC_ID_TTA, "tta"),
    ];
    known
        .iter()
        .find(|(known_id, _)| *known_id == id)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| format!("codec id {id}"))
}
