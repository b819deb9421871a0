//! The durable play log: every play is appended (fsynced) before anything else happens to
//! it, and forgotten only after the controller acknowledged storing it. Ids are random
//! and stored with the entry, so a re-sent entry is recognised by the controller and
//! counted once.
//!
//! Two append-only files: `log.jsonl` (entries) and `acked` (ids). Pending = entries not
//! acked. A play that starts is first written as a `{"begun": entry}` line; if the node
//! dies before its end is written (a power cut, a crash), the next start turns it into an
//! `interrupted` entry, so an airing is never lost from the reports. A torn last line from
//! a power cut is cut off at the next open. Once everything is acked and the log has
//! grown, both files are emptied (log first: an `acked` line without its entry is
//! harmless).
//!
//! A full disk loses nothing while the node runs: an entry that cannot be written is kept
//! pending in memory and sent all the same (the torn bytes of the failed write are cut
//! off, so the lines after it stay whole).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use protocol::link::{PlayLogEntry, PlayOutcome};
use serde::{Deserialize, Serialize};

use super::error::{AgentError, Result};

/// Compact once the log file is larger than this and nothing is pending.
const COMPACT_BYTES: u64 = 1 << 20;

/// Why an entry begun and never ended is `interrupted`.
pub const CUT_SHORT: &str = "cut short: the node stopped (a power cut or a crash)";

/// One line of `log.jsonl`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    /// A play started: the entry as it stands if the node dies now.
    Begun {
        begun: PlayLogEntry,
    },
    Done(PlayLogEntry),
}

pub struct PlayJournal {
    log_path: PathBuf,
    acked_path: PathBuf,
    log: File,
    acked: File,
    pending: Vec<PlayLogEntry>,
    /// Plays begun and not yet ended, by id.
    open: HashSet<String>,
}

/// Opens `path` for appending, first cutting off a torn last line (one without its
/// newline), so the next line starts whole.
fn open_append(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| AgentError::file(path, e))?;
    let whole = whole_length(path);
    if f.metadata().map(|m| m.len()).unwrap_or(0) != whole {
        f.set_len(whole).map_err(|e| AgentError::file(path, e))?;
    }
    Ok(f)
}

/// The length of `path` up to and including its last newline.
fn whole_length(path: &Path) -> u64 {
    std::fs::read(path)
        .ok()
        .and_then(|b| b.iter().rposition(|&c| c == b'\n'))
        .map_or(0, |i| i as u64 + 1)
}

fn lines(path: &Path) -> Vec<String> {
    match File::open(path) {
        Ok(f) => BufReader::new(f).lines().map_while(Result::ok).collect(),
        Err(_) => Vec::new(),
    }
}

/// Appends `line` and syncs it; on failure (a full disk) cuts the file back to where it
/// was, so no torn bytes stay in front of the next line.
fn append_line(file: &mut File, path: &Path, line: &str) -> Result<()> {
    let before = file.metadata().map(|m| m.len()).ok();
    let written = file
        .write_all(line.as_bytes())
        .and_then(|()| file.sync_data());
    if let Err(e) = written {
        if let Some(len) = before {
            let _ = file.set_len(len);
        }
        return Err(AgentError::file(path, e));
    }
    Ok(())
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
        // The last line of an id wins: its end over its beginning.
        let mut order = Vec::new();
        let mut last: HashMap<String, PlayLogEntry> = HashMap::new();
        for line in lines(&log_path) {
            let entry = match serde_json::from_str::<Line>(&line) {
                Ok(Line::Done(e)) => e,
                Ok(Line::Begun { begun }) => PlayLogEntry {
                    outcome: PlayOutcome::Interrupted,
                    ended_at: None,
                    reason: Some(CUT_SHORT.into()),
                    ..begun
                },
                Err(_) => continue,
            };
            if acked.contains(&entry.id) {
                continue;
            }
            if !last.contains_key(&entry.id) {
                order.push(entry.id.clone());
            }
            last.insert(entry.id.clone(), entry);
        }
        let pending = order.iter().filter_map(|id| last.remove(id)).collect();
        Ok(PlayJournal {
            log: open_append(&log_path)?,
            acked: open_append(&acked_path)?,
            log_path,
            acked_path,
            pending,
            open: HashSet::new(),
        })
    }

    /// Notes a play that started, durably: if the node dies before [`Self::append`] of
    /// the same id, the next start logs it as interrupted.
    pub fn begin(&mut self, entry: PlayLogEntry) -> Result<()> {
        self.open.insert(entry.id.clone());
        let line = serde_json::to_string(&Line::Begun { begun: entry }).unwrap_or_default();
        append_line(&mut self.log, &self.log_path, &(line + "\n"))
    }

    /// Appends an entry durably. It is pending even if the write fails (a full disk): it
    /// is sent all the same, and only a restart before it is acknowledged loses it.
    pub fn append(&mut self, entry: PlayLogEntry) -> Result<()> {
        // Serialising a plain struct of strings and numbers cannot fail.
        let line = serde_json::to_string(&entry).unwrap_or_default() + "\n";
        self.open.remove(&entry.id);
        self.pending.push(entry);
        append_line(&mut self.log, &self.log_path, &line)
    }

    /// Entries not yet acknowledged, oldest first.
    pub fn pending(&self) -> &[PlayLogEntry] {
        &self.pending
    }

    /// The controller stored these. They leave the pending list even if the `acked` line
    /// cannot be written (a full disk): after a restart they are sent again and the
    /// controller counts them once.
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
        self.pending.retain(|e| !ids.contains(e.id.as_str()));
        let text: String = known.iter().map(|id| format!("{id}\n")).collect();
        append_line(&mut self.acked, &self.acked_path, &text)?;
        self.compact_if_done()
    }

    fn compact_if_done(&mut self) -> Result<()> {
        let big = self.log.metadata().map(|m| m.len()).unwrap_or(0) > COMPACT_BYTES;
        if !self.pending.is_empty() || !self.open.is_empty() || !big {
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

    #[test]
    fn a_torn_line_is_cut_off_and_the_next_entry_stays_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = PlayJournal::open(dir.path()).unwrap();
        j.append(entry("a")).unwrap();
        drop(j);
        let mut f = open_append(&dir.path().join("log.jsonl")).unwrap();
        f.write_all(b"{\"id\":\"c\",\"outc").unwrap();
        drop(f);
        let mut j = PlayJournal::open(dir.path()).unwrap();
        j.append(entry("d")).unwrap();
        drop(j);
        let j = PlayJournal::open(dir.path()).unwrap();
        let ids: Vec<&str> = j.pending().iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "d"]);
    }

    #[test]
    fn a_play_begun_and_never_ended_is_logged_interrupted_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = PlayJournal::open(dir.path()).unwrap();
        j.begin(entry("a")).unwrap();
        j.append(entry("a")).unwrap();
        j.begin(entry("b")).unwrap();
        // The power goes while b plays.
        drop(j);
        let mut j = PlayJournal::open(dir.path()).unwrap();
        let got: Vec<(&str, PlayOutcome, Option<&str>)> = j
            .pending()
            .iter()
            .map(|e| (e.id.as_str(), e.outcome, e.reason.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", PlayOutcome::Completed, None),
                ("b", PlayOutcome::Interrupted, Some(CUT_SHORT))
            ]
        );
        // Once stored by the controller, neither comes back.
        j.ack(&["a".into(), "b".into()]).unwrap();
        drop(j);
        assert!(PlayJournal::open(dir.path()).unwrap().pending().is_empty());
    }

    #[test]
    fn an_entry_the_disk_cannot_take_is_still_sent() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = PlayJournal::open(dir.path()).unwrap();
        // As a full disk does: the file cannot be written.
        j.log = File::open(dir.path().join("log.jsonl")).unwrap();
        assert!(j.append(entry("a")).is_err());
        let ids: Vec<&str> = j.pending().iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a"]);
        j.acked = File::open(dir.path().join("acked")).unwrap();
        assert!(j.ack(&["a".into()]).is_err());
        assert!(j.pending().is_empty(), "acknowledged: not sent again");
    }
}
