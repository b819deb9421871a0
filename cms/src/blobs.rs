//! Audio blobs on disk, addressed by SHA-256: `blobs/ab/abcdef...`. Uploads stream into a
//! temporary file in `blobs/tmp` while the hash is computed; only a checked file is renamed
//! into place. A temporary file removes itself when dropped, so a failed upload leaves
//! nothing behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::error::{CmsError, Result};
use crate::hot_blobs::{HOT_CAP_BYTES, HotBlobs};

/// Blob bodies sent at once; more wait (their heads sent) for one to finish. Enough to
/// fill any pipe (32 x the socket buffer), few enough that the API's requests are not
/// queued behind a fleet's downloads on the runtime's threads.
pub const BLOB_STREAMS: usize = 32;

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    /// The blobs fleets are fetching, in memory.
    hot: Arc<HotBlobs>,
    /// Blob bodies sent at once.
    streams: Arc<tokio::sync::Semaphore>,
}

/// An upload in progress: bytes so far, their hash, and the size limit.
pub struct BlobWriter {
    file: NamedTempFile,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

/// A complete upload, not yet accepted.
pub struct PendingBlob {
    pub file: NamedTempFile,
    pub sha256: String,
    pub size: u64,
}

impl BlobStore {
    pub fn open(root: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(root.join("tmp"))?;
        // Leftovers of a crash mid-upload.
        for entry in std::fs::read_dir(root.join("tmp"))?.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
        Ok(Self {
            root,
            hot: Arc::new(HotBlobs::new(HOT_CAP_BYTES)),
            streams: Arc::new(tokio::sync::Semaphore::new(BLOB_STREAMS)),
        })
    }

    pub fn writer(&self, limit: u64) -> Result<BlobWriter> {
        Ok(BlobWriter {
            file: NamedTempFile::new_in(self.root.join("tmp"))?,
            hasher: Sha256::new(),
            size: 0,
            limit,
        })
    }

    /// Takes in a file already on disk (TTS output, seeded samples) the way an upload comes
    /// in: copied in chunks into a temporary blob, hashed on the way. Blocking.
    pub fn ingest(&self, path: &Path, limit: u64) -> Result<PendingBlob> {
        let mut source = std::fs::File::open(path)?;
        let mut writer = self.writer(limit)?;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = std::io::Read::read(&mut source, &mut chunk)?;
            if n == 0 {
                return writer.finish();
            }
            writer.write(&chunk[..n])?;
        }
    }

    /// Blobs served from memory.
    pub fn hot(&self) -> &HotBlobs {
        &self.hot
    }

    /// The permits for blob bodies in flight.
    pub fn streams(&self) -> Arc<tokio::sync::Semaphore> {
        self.streams.clone()
    }

    /// Where a blob lives; `None` unless `sha256` is 64 lowercase hex digits.
    pub fn path(&self, sha256: &str) -> Option<PathBuf> {
        let valid = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| self.root.join(&sha256[..2]).join(sha256))
    }

    /// Moves a checked upload into place (fsync first, so a crash never leaves a torn
    /// blob under a valid name). An identical blob already stored wins.
    pub fn commit(&self, blob: PendingBlob) -> Result<PathBuf> {
        let path = self
            .path(&blob.sha256)
            .ok_or_else(|| CmsError::Storage("bad blob hash".into()))?;
        if path.exists() {
            return Ok(path);
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        blob.file.as_file().sync_all()?;
        blob.file
            .persist(&path)
            .map_err(|e| CmsError::Storage(e.to_string()))?;
        Ok(path)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

impl BlobWriter {
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(CmsError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk)?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<PendingBlob> {
        self.file.flush()?;
        let sha256 = hex(&self.hasher.finalize());
        Ok(PendingBlob {
            file: self.file,
            sha256,
            size: self.size,
        })
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}
