//! Plays items on a sink: the audio crate's [`ItemRenderer`] -> sink.

use audio::decode::{DecodeReport, Decoder};
pub use audio::render::{ItemRenderer, Loudness};

use crate::Error;
use crate::output::{AudioFormat, Sink};

/// Plays a decoder's item to the end on `sink`, adapted to the sink's format. Returns how
/// the decode went.
pub fn play(
    decoder: Decoder,
    sink: &mut dyn Sink,
    loudness: Loudness,
) -> Result<DecodeReport, Error> {
    let mut item = ItemRenderer::new(decoder, sink.format(), loudness)?;
    while let Some(block) = item.next_block()? {
        sink.write(block)?;
    }
    let report = item.report();
    if report.frames == 0 {
        return Err(audio::Error::NoAudio.into());
    }
    Ok(report)
}

/// Decodes a file to `sink` as fast as possible at the file's own rate and channel count,
/// with no processing: what `speaker-node decode` and the decode benchmark run.
pub fn decode_to(mut decoder: Decoder, sink: &mut dyn Sink) -> Result<DecodeReport, Error> {
    let info = decoder.info();
    let expected = AudioFormat {
        sample_rate: info.sample_rate,
        channels: info.channels,
    };
    if sink.format() != expected {
        return Err(Error::Output(format!(
            "sink format {:?} is not the file's {:?}",
            sink.format(),
            expected
        )));
    }
    while let Some(chunk) = decoder.next_chunk()? {
        sink.write(chunk)?;
    }
    let report = decoder.report();
    if report.frames == 0 {
        return Err(audio::Error::NoAudio.into());
    }
    sink.finish()?;
    Ok(report)
}
