//! Per-sample processing between the decoder and the output, all on interleaved `f32`.

mod channels;
mod gain;
mod resample;

pub use channels::ChannelMapper;
pub use gain::{Gain, volume_to_amplitude};
pub use resample::StreamResampler;
