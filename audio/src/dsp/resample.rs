use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use crate::Error;

/// Input frames per resampler call: about 21 ms at 48 kHz, a fair trade between FFT
/// efficiency and the memory a node holds.
const CHUNK_FRAMES: usize = 1024;

/// Fixed-ratio sample-rate conversion of an interleaved stream, fed in blocks of any size.
///
/// Uses rubato's synchronous FFT resampler (band-limited, no audible aliasing) and hides
/// its block size and delay: the output starts with the first input sample, and after
/// [`finish`](Self::finish) holds exactly `ceil(frames_in * out_rate / in_rate)` frames.
pub struct StreamResampler {
    inner: Fft<f32>,
    channels: usize,
    ratio: f64,
    /// Interleaved input not yet resampled; its first `pending_start` samples are used up.
    pending: Vec<f32>,
    pending_start: usize,
    /// One call's output, before the delay is dropped.
    scratch: Vec<f32>,
    out: Vec<f32>,
    delay_left: usize,
    frames_in: u64,
    frames_out: u64,
}

impl StreamResampler {
    pub fn new(in_rate: u32, out_rate: u32, channels: usize) -> Result<Self, Error> {
        let inner = Fft::<f32>::new(
            in_rate as usize,
            out_rate as usize,
            CHUNK_FRAMES,
            channels,
            FixedSync::Input,
        )
        .map_err(|e| Error::Resample(e.to_string()))?;
        let scratch = vec![0.0; inner.output_frames_max() * channels];
        Ok(StreamResampler {
            delay_left: inner.output_delay(),
            inner,
            channels,
            ratio: f64::from(out_rate) / f64::from(in_rate),
            pending: Vec::with_capacity(CHUNK_FRAMES * channels * 2),
            pending_start: 0,
            scratch,
            out: Vec::new(),
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// Resamples what it can of `input`; the rest waits for the next call.
    pub fn push(&mut self, input: &[f32]) -> Result<&[f32], Error> {
        self.out.clear();
        self.frames_in += (input.len() / self.channels) as u64;
        self.pending.extend_from_slice(input);
        let chunk = CHUNK_FRAMES * self.channels;
        while self.pending.len() - self.pending_start >= chunk {
            self.run_chunk(None)?;
            self.pending_start += chunk;
        }
        self.pending.drain(..self.pending_start);
        self.pending_start = 0;
        Ok(&self.out)
    }

    /// Flushes the tail: the last partial block and the resampler's delay line.
    pub fn finish(&mut self) -> Result<&[f32], Error> {
        self.out.clear();
        let expected = (self.frames_in as f64 * self.ratio).ceil() as u64;
        let mut partial = self.pending.len() / self.channels;
        self.pending.resize(CHUNK_FRAMES * self.channels, 0.0);
        while self.frames_out < expected {
            self.run_chunk(Some(partial))?;
            partial = 0;
        }
        let extra = (self.frames_out - expected) as usize * self.channels;
        self.out.truncate(self.out.len() - extra);
        self.frames_out = expected;
        self.pending.clear();
        Ok(&self.out)
    }

    fn run_chunk(&mut self, partial_len: Option<usize>) -> Result<(), Error> {
        let err = |e: &dyn std::fmt::Display| Error::Resample(e.to_string());
        let chunk =
            &self.pending[self.pending_start..self.pending_start + CHUNK_FRAMES * self.channels];
        let input =
            InterleavedSlice::new(chunk, self.channels, CHUNK_FRAMES).map_err(|e| err(&e))?;
        let out_frames = self.scratch.len() / self.channels;
        let mut output = InterleavedSlice::new_mut(&mut self.scratch, self.channels, out_frames)
            .map_err(|e| err(&e))?;
        let indexing = Indexing {
            partial_len,
            ..Indexing::default()
        };
        let (_, produced) = self
            .inner
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| err(&e))?;
        let skip = self.delay_left.min(produced);
        self.delay_left -= skip;
        self.out
            .extend_from_slice(&self.scratch[skip * self.channels..produced * self.channels]);
        self.frames_out += (produced - skip) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, frames: usize) -> Vec<f32> {
        (0..frames)
            .map(|i| (i as f32 * freq * std::f32::consts::TAU / rate as f32).sin() * 0.5)
            .collect()
    }

    fn resample_all(input: &[f32], in_rate: u32, out_rate: u32, block: usize) -> Vec<f32> {
        let mut r = StreamResampler::new(in_rate, out_rate, 1).unwrap();
        let mut out = Vec::new();
        for b in input.chunks(block) {
            out.extend_from_slice(r.push(b).unwrap());
        }
        out.extend_from_slice(r.finish().unwrap());
        out
    }

    #[test]
    fn exact_length_whatever_the_block_size() {
        let input = sine(44_100, 1000.0, 44_100 + 17);
        for block in [1, 100, 1024, 5000, 100_000] {
            let out = resample_all(&input, 44_100, 48_000, block);
            assert_eq!(
                out.len(),
                ((44_117.0f64) * 48_000.0 / 44_100.0).ceil() as usize
            );
        }
    }

    #[test]
    fn no_delay_and_clean_tone() {
        // A 1 kHz tone at 22.05 kHz resampled to 48 kHz must equal a 1 kHz tone at 48 kHz,
        // aligned to the sample (the delay is removed), apart from the edges.
        let out = resample_all(&sine(22_050, 1000.0, 22_050), 22_050, 48_000, 777);
        let reference = sine(48_000, 1000.0, out.len());
        let mid = 4_000..out.len() - 4_000;
        let err: f32 = mid.clone().map(|i| (out[i] - reference[i]).powi(2)).sum();
        let sig: f32 = mid.map(|i| reference[i].powi(2)).sum();
        let snr_db = 10.0 * (sig / err).log10();
        assert!(snr_db > 60.0, "snr {snr_db:.1} dB");
    }

    #[test]
    fn short_input_still_flushes() {
        let out = resample_all(&[0.25; 10], 8_000, 48_000, 10);
        assert_eq!(out.len(), 60);
    }
}
