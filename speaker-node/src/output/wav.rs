use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavSpec, WavWriter};

use super::{AudioFormat, Sink};
use crate::Error;

/// Writes exactly the samples it is given to a 32-bit float WAV file, as fast as they come.
///
/// The file appears under its name only when complete: it is written as `PATH.partial`
/// and renamed by [`Sink::finish`]; a sink dropped before that removes the partial file.
pub struct WavSink {
    format: AudioFormat,
    path: PathBuf,
    partial: PathBuf,
    writer: Option<WavWriter<BufWriter<File>>>,
}

pub(super) fn open(path: Option<&str>, format: AudioFormat) -> Result<Box<dyn Sink>, Error> {
    let path = path.unwrap_or_default();
    Ok(Box::new(WavSink::create(Path::new(path), format)?))
}

impl WavSink {
    pub fn create(path: &Path, format: AudioFormat) -> Result<Self, Error> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let spec = WavSpec {
            channels: format.channels,
            sample_rate: format.sample_rate,
            bits_per_sample: 32,
            sample_format: SampleFormat::Float,
        };
        let writer = WavWriter::create(&partial, spec).map_err(|e| write_error(&partial, e))?;
        Ok(WavSink {
            format,
            path: path.to_path_buf(),
            partial,
            writer: Some(writer),
        })
    }
}

/// A hound error as ours, naming the file (also the clocked card's).
pub(super) fn write_error(path: &Path, e: hound::Error) -> Error {
    let source = match e {
        hound::Error::IoError(io) => io,
        other => std::io::Error::other(other.to_string()),
    };
    Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

impl Sink for WavSink {
    fn format(&self) -> AudioFormat {
        self.format
    }

    fn write(&mut self, samples: &[f32]) -> Result<(), Error> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::Output("wav file already finished".into()));
        };
        for &s in samples {
            writer
                .write_sample(s)
                .map_err(|e| write_error(&self.partial, e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        writer
            .finalize()
            .map_err(|e| write_error(&self.partial, e))?;
        std::fs::rename(&self.partial, &self.path).map_err(|source| Error::Write {
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}
