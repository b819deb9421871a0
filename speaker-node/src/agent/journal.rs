//! The durable play log: every play is appended (fsynced) before anything else happens to
//! it, and forgotten only after the controller acknowledged storing it. Ids are random
//! and stored with the entry, so a re-sent entry is recognised by the controller and
//! counted once.
//!
//! Two append-only files: `log.jsonl` (entries) and `acked` (ids). Pending = entries not
//! acked. A torn last line from a power cut is skipped. Once everything is acked and the
//! log has grown, both files are emptied (log first: an `acked` line without its entry is
//! harmless).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use protocol::link::PlayLogEntry;

use super::error::{AgentError, Result};

/// Compact once the log file is larger than this and nothing is pending.
const COMPACT_BYTES: u64 = 1 << 20;

pub struct PlayJournal {
    log_path: PathBuf,
    acked_path: PathBuf,
    log: File,
    acked: File,
    pending: Vec<PlayLogEntry>,
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| AgentError::file(path, e))
}

fn lines(path: &Path) -> Vec<String> {
    match File::open(path) {
        Ok(f) => BufReader::new(f).lines().map_while(Result::ok).collect(),
        Err(_) => Vec::new(),
    }
}

/// A fresh play log id: 128 random bits, hex.
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl PlayJournal {
    pub fn open(dir: &Path) -> Result<Self> {
        let log_path = dir.join("log.jsonl");
        let acked_path = dir.join("acked");
        let acked: HashSet<String> = lines(&acked_path).into_iter().collect();
        let pending = lines(&log_path)
            .iter()
            .filter_map(|l| serde_json::from_str::<PlayLogEntry>(l).ok())
            .filter(|e| !acked.contains(&e.id))
            .collect();
        Ok(PlayJournal {
            log: open_append(&log_path)?,
            acked: open_append(&acked_path)?,
            log_path,
            acked_path,
            pending,
        })
    }

    /// Appends an entry durably.
    pub fn append(&mut self, entry: PlayLogEntry) -> Result<()> {
        // Serialising a plain struct of strings and numbers cannot fail.
        let mut line = serde_json::to_string(&entry).unwrap_or_default();
        line.push('\n');
        self.log
            .write_all(line.as_bytes())
            .and_then(|()| self.log.sync_data())
            .map_err(|e| AgentError::file(&self.log_path, e))?;
        self.pending.push(entry);
        Ok(())
    }

    /// Entries not yet acknowledged, oldest first.
    pub fn pending(&self) -> &[PlayLogEntry] {
        &self.pending
    }

    /// The controller stored these.
    pub fn ack(&mut self, ids: &[String]) -> Result<()> {
        let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let known: Vec<String> = self
            .pending
            .iter()
            .filter(|e| ids.contains(e.id.as_str()))
            .map(|e| e.id.clone())
            .collect();
        if known.is_empty() {
            return Ok(());
        }
        let text: String = known.iter().map(|id| format!("{id}\n")).collect();
        self.acked
            .write_all(text.as_bytes())
            .and_then(|()| self.acked.sync_data())
            .map_err(|e| AgentError::file(&self.acked_path, e))?;
        self.pending.retain(|e| !ids.contains(e.id.as_str()));
        self.compact_if_done()
    }

    fn compact_if_done(&mut self) -> Result<()> {
        let big = self.log.metadata().map(|m| m.len()).unwrap_or(0) > COMPACT_BYTES;
        if !self.pending.is_empty() || !big {
            return Ok(());
        }
        for (file, path) in [
            (&mut self.log, &self.log_path),
            (&mut self.acked, &self.acked_path),
        ] {
            file.set_len(0)
                .and_then(|()| file.sync_all())
                .map_err(|e| AgentError::file(path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::link::PlayOutcome;

    fn entry(id: &str) -> PlayLogEntry {
        PlayLogEntry {
            id: id.into(),
            schedule_id: Some(1),
            content_id: Some(2),
            scheduled_at: None,
            started_at: None,
            ended_at: None,
            outcome: PlayOutcome::Completed,
            reason: None,
        }
    }

    #[test]
    fn pending_survives_reopen_and_acks_stick() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = PlayJournal::open(dir.path()).unwrap();
        j.append(entry("a")).unwrap();
        j.append(entry("b")).unwrap();
        j.ack(&["a".into()]).unwrap();
        drop(j);
        // A torn line, as a power cut mid-append leaves.
        let mut f = open_append(&dir.path().join("log.jsonl")).unwrap();
        f.write_all(b"{\"id\":\"c\",\"outc").unwrap();
        let j = PlayJournal::open(dir.path()).unwrap();
        let ids: Vec<&str> = j.pending().iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["b"]);
    }
}
