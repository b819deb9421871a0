/// Everything the audio engine reports to its caller. Messages are written for a
/// technician: they name the problem in plain words and never carry a backtrace.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read file: {0}")]
    Io(#[source] std::io::Error),
    #[error("file is empty")]
    Empty,
    #[error("not a recognised audio file")]
    UnknownFormat,
    #[error("no audio track in the file")]
    NoAudioTrack,
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    #[error("corrupt audio: {0}")]
    Corrupt(String),
    #[error("no decodable audio in the file")]
    NoAudio,
    #[error("audio parameters changed mid-stream ({0})")]
    FormatChanged(String),
    #[error("resampler: {0}")]
    Resample(String),
}
