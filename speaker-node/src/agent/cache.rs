//! The blob cache: audio by SHA-256 under `STATE/cache/`. A download goes to
//! `cache/partial/SHA` (resumed with a Range request after a cut), is hashed in full, and
//! only then renamed to `cache/SHA`: a file under its hash is always whole and right.
//! Use refreshes a file's modification time; eviction removes the least recently used
//! beyond the quota, never what the next days' plays need.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::error::AgentError;

pub struct BlobCache {
    dir: PathBuf,
    partial: PathBuf,
}

/// Why a fetch failed.
#[derive(Debug)]
pub struct FetchError {
    pub message: String,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn err(message: impl Into<String>) -> FetchError {
    FetchError {
        message: message.into(),
    }
}

pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl BlobCache {
    pub fn open(dir: PathBuf) -> Result<Self, AgentError> {
        let partial = dir.join("partial");
        std::fs::create_dir_all(&partial).map_err(|e| AgentError::file(&partial, e))?;
        Ok(BlobCache { dir, partial })
    }

    /// The blob's file when cached (and marks it used).
    pub fn get(&self, sha256: &str) -> Option<PathBuf> {
        if !is_sha256(sha256) {
            return None;
        }
        let path = self.dir.join(sha256);
        let f = std::fs::File::options().append(true).open(&path).ok()?;
        let _ = f.set_modified(SystemTime::now());
        Some(path)
    }

    /// Where the blob is, or will be once fetched (marks it used when there); `None` for
    /// a malformed hash. The playout checks for the file when the item's turn comes, so a
    /// download finishing after a play was queued still makes it.
    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256(sha256).then(|| {
            let _ = self.get(sha256);
            self.dir.join(sha256)
        })
    }

    pub fn has(&self, sha256: &str) -> bool {
        is_sha256(sha256) && self.dir.join(sha256).is_file()
    }

    /// Downloads a blob from `base` (`{base}/content/{sha256}`), resuming a partial file.
    pub async fn fetch(
        &self,
        http: &reqwest::Client,
        base: &str,
        token: Option<&str>,
        sha256: &str,
    ) -> Result<(), FetchError> {
        if !is_sha256(sha256) {
            return Err(err(format!("{sha256:?} is not a SHA-256")));
        }
        let partial = self.partial.join(sha256);
        let have = tokio::fs::metadata(&partial)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let url = format!("{}/content/{sha256}", base.trim_end_matches('/'));
        let mut req = http.get(&url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if have > 0 {
            tracing::info!(%sha256, bytes = have, "resuming download");
            req = req.header("Range", format!("bytes={have}-"));
        }
        let res = req
            .send()
            .await
            .map_err(|e| err(format!("{url}: {}", super::chain(&e))))?;
        let status = res.status().as_u16();
        let append = match status {
            206 => true,
            200 => false,
            // Our partial file is already whole (or longer than the blob): check it.
            416 => true,
            _ => return Err(err(format!("{url}: HTTP {status}"))),
        };
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&partial)
            .await
            .map_err(|e| err(format!("{}: {e}", partial.display())))?;
        if status != 416 {
            let mut body = res.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk =
                    chunk.map_err(|e| err(format!("{url}: download cut: {}", super::chain(&e))))?;
                file.write_all(&chunk)
                    .await
                    .map_err(|e| err(format!("{}: {e}", partial.display())))?;
            }
        }
        file.sync_all()
            .await
            .map_err(|e| err(format!("{}: {e}", partial.display())))?;
        drop(file);
        let check = partial.clone();
        let got = tokio::task::spawn_blocking(move || sha256_file(&check))
            .await
            .map_err(|e| err(e.to_string()))?
            .map_err(|e| err(format!("{}: {e}", partial.display())))?;
        if got != sha256 {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(err(format!(
                "{url}: content does not match its hash (got {got})"
            )));
        }
        let dest = self.dir.join(sha256);
        tokio::fs::rename(&partial, &dest)
            .await
            .map_err(|e| err(format!("{}: {e}", dest.display())))?;
        crate::sync_dir(&dest);
        Ok(())
    }

    /// Cached blobs: (sha256, size, last used).
    fn entries(&self) -> Vec<(String, u64, SystemTime)> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let meta = e.metadata().ok()?;
                (is_sha256(&name) && meta.is_file()).then(|| {
                    let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    (name, meta.len(), used)
                })
            })
            .collect()
    }

    pub fn used_bytes(&self) -> u64 {
        self.entries().iter().map(|e| e.1).sum()
    }

    /// Removes least-recently-used blobs until the cache fits `quota`, keeping `keep`.
    /// Returns the blobs removed.
    pub fn evict(&self, quota: u64, keep: &HashSet<String>) -> Vec<String> {
        let mut entries = self.entries();
        let mut used: u64 = entries.iter().map(|e| e.1).sum();
        entries.sort_by_key(|e| e.2);
        let mut removed = Vec::new();
        for (sha, size, _) in entries {
            if used <= quota {
                break;
            }
            if keep.contains(&sha) {
                continue;
            }
            if std::fs::remove_file(self.dir.join(&sha)).is_ok() {
                used -= size;
                removed.push(sha);
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_keeps_what_is_needed_and_removes_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path().to_path_buf()).unwrap();
        let shas: Vec<String> = (0..3).map(|i| format!("{i}").repeat(64)).collect();
        for (i, sha) in shas.iter().enumerate() {
            let p = dir.path().join(sha);
            std::fs::write(&p, vec![0u8; 100]).unwrap();
            let f = std::fs::File::options().append(true).open(&p).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(i as u64 * 10))
                .unwrap();
        }
        let keep: HashSet<String> = [shas[0].clone()].into();
        let removed = cache.evict(150, &keep);
        assert_eq!(removed, [shas[1].clone(), shas[2].clone()]);
        assert!(cache.has(&shas[0]));
        assert!(!cache.has("../etc/passwd"));
    }
}
