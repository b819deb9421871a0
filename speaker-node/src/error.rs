use std::path::PathBuf;

/// Everything the node's audio side reports to its caller: the audio engine's errors
/// (decode, resample) and the outputs' own. Messages are written for a technician.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Audio(#[from] audio::Error),
    #[error("bad output {spec:?}: {reason}")]
    BadOutputSpec { spec: String, reason: String },
    #[error("audio output: {0}")]
    Output(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
