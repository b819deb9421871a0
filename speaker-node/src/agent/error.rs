//! What can go wrong in the agent, as one typed enum: start-up failures are printed as one
//! stderr line by the binary; failures while running are logged and reported in the
//! heartbeat's `last_error`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file or directory of the state directory could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A state file is there but does not parse (a disk fault; it is never half-written).
    #[error("{}: damaged ({reason})", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "{}: not enrolled; run `speaker-node enroll --server URL --code CODE --state {}` first",
        .0.display(),
        .0.display()
    )]
    NotEnrolled(PathBuf),
    #[error(transparent)]
    Output(#[from] crate::Error),
    /// The controller (or the network on the way) refused or failed a request.
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("cannot start: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("a blocking task failed: {0}")]
    Task(String),
}

impl AgentError {
    pub fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AgentError::File {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = AgentError> = std::result::Result<T, E>;

/// An error with its causes, `a: b: c` (reqwest's own text hides why a request failed).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
