use super::{AudioFormat, Sink};
use crate::Error;

/// Discards everything, as fast as it comes: for decode benchmarks and simulated nodes.
pub struct NullSink {
    format: AudioFormat,
}

impl NullSink {
    pub fn new(format: AudioFormat) -> Self {
        NullSink { format }
    }
}

pub(super) fn open(_: Option<&str>, format: AudioFormat) -> Result<Box<dyn Sink>, Error> {
    Ok(Box::new(NullSink::new(format)))
}

impl Sink for NullSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, samples: &[f32]) -> Result<(), Error> {
        std::hint::black_box(samples);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }
}
