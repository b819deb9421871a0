//! Opus (RFC 6716) in Ogg (RFC 7845) and WebM/Matroska, through Debian's libopus: symphonia
//! 0.6 demuxes both but decodes no Opus, so this decoder is registered beside its own.
//! Phone voice notes are Ogg or WebM Opus; so is what a browser's MediaRecorder makes.

use std::sync::{Mutex, PoisonError};

use symphonia::core::audio::{
    AsGenericAudioBufferRef, AudioBuffer, AudioMut, AudioSpec, GenericAudioBufferRef,
};
use symphonia::core::codecs::CodecInfo;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{
    AudioCodecParameters, AudioDecoder, AudioDecoderOptions, FinalizeResult,
};
use symphonia::core::codecs::registry::{RegisterableAudioDecoder, SupportedAudioCodec};
use symphonia::core::errors::{Result, decode_error, unsupported_error};
use symphonia::core::packet::PacketRef;

/// Opus always decodes at 48 kHz (the rate in the Ogg header is the source's, for show).
const RATE: u32 = 48_000;
/// The longest Opus packet: 120 ms.
const MAX_FRAMES: usize = 5_760;

pub struct OpusDecoder {
    params: AudioCodecParameters,
    /// libopus's state is not `Sync`; symphonia's decoders must be (one caller at a time).
    inner: Mutex<opus::Decoder>,
    channels: usize,
    interleaved: Vec<f32>,
    buf: AudioBuffer<f32>,
}

impl OpusDecoder {
    fn try_new(params: &AudioCodecParameters, _opts: &AudioDecoderOptions) -> Result<Self> {
        if params.codec != CODEC_ID_OPUS {
            return unsupported_error("opus: not an opus stream");
        }
        let Some(layout) = params.channels.clone() else {
            return unsupported_error("opus: the channel count is missing");
        };
        let channels = layout.count();
        let mode = match channels {
            1 => opus::Channels::Mono,
            2 => opus::Channels::Stereo,
            _ => return unsupported_error("opus: more than two channels"),
        };
        let inner = match opus::Decoder::new(RATE, mode) {
            Ok(d) => d,
            Err(_) => return unsupported_error("opus: libopus refused the stream"),
        };
        let mut params = params.clone();
        params.sample_rate = Some(RATE);
        Ok(OpusDecoder {
            params,
            inner: Mutex::new(inner),
            channels,
            interleaved: vec![0.0; MAX_FRAMES * channels],
            buf: AudioBuffer::new(AudioSpec::new(RATE, layout), MAX_FRAMES),
        })
    }

    fn decode_inner(&mut self, packet: &PacketRef<'_>) -> Result<()> {
        let data = packet.data;
        if data.is_empty() {
            return decode_error("opus: empty packet");
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let frames = match inner.decode_float(data, &mut self.interleaved, false) {
            Ok(n) => n.min(MAX_FRAMES),
            Err(_) => return decode_error("opus: malformed packet"),
        };
        self.buf.clear();
        self.buf.render_uninit(Some(frames));
        for ch in 0..self.channels {
            let Some(plane) = self.buf.plane_mut(ch) else {
                return decode_error("opus: missing audio plane");
            };
            for (i, s) in plane.iter_mut().enumerate().take(frames) {
                *s = self.interleaved[i * self.channels + ch];
            }
        }
        // The container's gapless trim (the pre-skip is the track's delay, dropped by the
        // caller: symphonia's Ogg reader does not mark it on packets).
        self.buf.trim(
            packet.trim_start.get() as usize,
            packet.trim_end.get() as usize,
        );
        Ok(())
    }
}

impl AudioDecoder for OpusDecoder {
    fn reset(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        let _ = inner.reset_state();
    }

    fn codec_info(&self) -> &CodecInfo {
        &Self::supported_codecs()[0].info
    }

    fn codec_params(&self) -> &AudioCodecParameters {
        &self.params
    }

    fn decode_ref(&mut self, packet: &PacketRef<'_>) -> Result<GenericAudioBufferRef<'_>> {
        match self.decode_inner(packet) {
            Ok(()) => Ok(self.buf.as_generic_audio_buffer_ref()),
            Err(e) => {
                self.buf.clear();
                Err(e)
            }
        }
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> GenericAudioBufferRef<'_> {
        self.buf.as_generic_audio_buffer_ref()
    }
}

impl RegisterableAudioDecoder for OpusDecoder {
    fn try_registry_new(
        params: &AudioCodecParameters,
        opts: &AudioDecoderOptions,
    ) -> Result<Box<dyn AudioDecoder>>
    where
        Self: Sized,
    {
        Ok(Box::new(OpusDecoder::try_new(params, opts)?))
    }

    fn supported_codecs() -> &'static [SupportedAudioCodec] {
        &[SupportedAudioCodec {
            id: CODEC_ID_OPUS,
            info: CodecInfo {
                short_name: "opus",
                long_name: "Opus (libopus)",
                profiles: &[],
            },
        }]
    }
}
