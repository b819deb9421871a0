//! One item rendered for an output: decode -> channel map -> resample -> gain -> limit,
//! a block at a time.

use crate::decode::{DecodeReport, Decoder};
use crate::dsp::{ChannelMapper, Gain, StreamResampler};
use crate::{AudioFormat, Error};

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

/// One item turned into blocks of output-format frames, a block at a time: what the
/// node's playout pulls from, so it can cut an item off between any two blocks.
pub struct ItemRenderer {
    decoder: Decoder,
    mapper: ChannelMapper,
    resampler: Option<StreamResampler>,
    gain: Gain,
    block: Vec<f32>,
    ended: bool,
}

impl ItemRenderer {
    pub fn new(decoder: Decoder, out: AudioFormat, loudness: Loudness) -> Result<Self, Error> {
        let info = decoder.info().clone();
        let mapper = ChannelMapper::new(usize::from(info.channels), usize::from(out.channels));
        let resampler = match info.sample_rate == out.sample_rate {
            true => None,
            false => Some(StreamResampler::new(
                info.sample_rate,
                out.sample_rate,
                usize::from(out.channels),
            )?),
        };
        let gain = Gain::new(
            out.sample_rate,
            usize::from(out.channels),
            loudness.gain_db,
            loudness.volume,
        );
        Ok(ItemRenderer {
            decoder,
            mapper,
            resampler,
            gain,
            block: Vec::new(),
            ended: false,
        })
    }

    /// The next block (possibly empty while a resampler fills), `None` after the end.
    pub fn next_block(&mut self) -> Result<Option<&[f32]>, Error> {
        if self.ended {
            return Ok(None);
        }
        self.block.clear();
        match self.decoder.next_chunk()? {
            Some(chunk) => {
                let mapped = self.mapper.process(chunk);
                match self.resampler.as_mut() {
                    Some(r) => self.block.extend_from_slice(r.push(mapped)?),
                    None => self.block.extend_from_slice(mapped),
                }
            }
            None => {
                self.ended = true;
                if let Some(r) = self.resampler.as_mut() {
                    self.block.extend_from_slice(r.finish()?);
                }
            }
        }
        self.gain.process(&mut self.block);
        // A hard limit, as the card's converter would apply: a positive gain must clip
        // here rather than wrap around in an integer conversion.
        self.block.iter_mut().for_each(|s| *s = s.clamp(-1.0, 1.0));
        Ok(Some(&self.block))
    }

    pub fn report(&self) -> DecodeReport {
        self.decoder.report()
    }
}
