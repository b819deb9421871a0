//! Plays items on a sink: decode -> channel map -> resample -> gain -> limit -> sink.

use crate::Error;
use crate::decode::{DecodeReport, Decoder};
use crate::dsp::{ChannelMapper, Gain, StreamResampler};
use crate::output::{AudioFormat, Sink};

/// How loud to play an item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loudness {
    /// The output volume, 0-100 (see [`crate::dsp::volume_to_amplitude`]).
    pub volume: u8,
    /// The item's own gain in dB, e.g. from loudness normalisation.
    pub gain_db: f32,
}

impl Default for Loudness {
    fn default() -> Self {
        Loudness {
            volume: 100,
            gain_db: 0.0,
        }
    }
}

/// Plays a decoder's item to the end on `sink`, adapted to the sink's format. Returns how
/// the decode went.
pub fn play(
    mut decoder: Decoder,
    sink: &mut dyn Sink,
    loudness: Loudness,
) -> Result<DecodeReport, Error> {
    let out = sink.format();
    let info = decoder.info().clone();
    let mut mapper = ChannelMapper::new(usize::from(info.channels), usize::from(out.channels));
    let mut resampler = match info.sample_rate == out.sample_rate {
        true => None,
        false => Some(StreamResampler::new(
            info.sample_rate,
            out.sample_rate,
            usize::from(out.channels),
        )?),
    };
    let mut gain = Gain::new(
        out.sample_rate,
        usize::from(out.channels),
        loudness.gain_db,
        loudness.volume,
    );
    let mut block = Vec::new();
    let mut emit = |samples: &[f32], sink: &mut dyn Sink| -> Result<(), Error> {
        block.clear();
        block.extend_from_slice(samples);
        gain.process(&mut block);
        // A hard limit, as the card's converter would apply: a positive gain must clip
        // here rather than wrap around in an integer conversion.
        block.iter_mut().for_each(|s| *s = s.clamp(-1.0, 1.0));
        sink.write(&block)
    };
    while let Some(chunk) = decoder.next_chunk()? {
        let mapped = mapper.process(chunk);
        match resampler.as_mut() {
            Some(r) => emit(r.push(mapped)?, sink)?,
            None => emit(mapped, sink)?,
        }
    }
    if let Some(r) = resampler.as_mut() {
        emit(r.finish()?, sink)?;
    }
    let report = decoder.report();
    if report.frames == 0 {
        return Err(Error::NoAudio);
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
        return Err(Error::NoAudio);
    }
    sink.finish()?;
    Ok(report)
}
