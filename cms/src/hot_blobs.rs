//! Hot blobs, kept in memory. A week's items are few and never change (a blob is its
//! hash), and a fleet fetches each new one all at once: a thousand nodes asking for the
//! same 5 MB within seconds. Served from one shared copy (`Bytes`: each response is a
//! reference, no copy), the storm costs no file reads and no trips to the blocking pool,
//! which the API's database queries need meanwhile. The first request for a blob reads
//! it; the others wait for that one read. Least recently used blobs leave beyond the cap;
//! large ones (recordings of hours) are never kept and stream from disk.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::OnceCell;

/// Blobs larger than this stream from disk.
pub const MAX_HOT_BYTES: u64 = 32 << 20;
/// All hot blobs together stay under this.
pub const HOT_CAP_BYTES: u64 = 256 << 20;

pub struct HotBlobs {
    inner: Mutex<Inner>,
    cap: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    /// Sizes of the entries, summed.
    bytes: u64,
    /// A counter standing for time, for least-recently-used.
    tick: u64,
}

struct Entry {
    cell: Arc<OnceCell<Bytes>>,
    size: u64,
    used: u64,
}

impl std::fmt::Debug for HotBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("HotBlobs")
            .field("blobs", &inner.map.len())
            .field("bytes", &inner.bytes)
            .finish()
    }
}

impl HotBlobs {
    pub fn new(cap: u64) -> Self {
        HotBlobs {
            inner: Mutex::default(),
            cap,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The blob `sha256` (at `path`, `size` bytes) from memory, read once if it is not
    /// there yet; `None` if it is too large to keep or cannot be read (the caller streams
    /// it from disk, or says it is missing).
    pub async fn get(&self, sha256: &str, path: &Path, size: u64) -> Option<Bytes> {
        if size > MAX_HOT_BYTES.min(self.cap) {
            return None;
        }
        let cell = {
            let mut inner = self.lock();
            inner.tick += 1;
            let tick = inner.tick;
            if let Some(e) = inner.map.get_mut(sha256) {
                e.used = tick;
                e.cell.clone()
            } else {
                // Room first: the least recently used go.
                while inner.bytes + size > self.cap {
                    let Some(oldest) = inner
                        .map
                        .iter()
                        .min_by_key(|(_, e)| e.used)
                        .map(|(k, _)| k.clone())
                    else {
                        break;
                    };
                    if let Some(e) = inner.map.remove(&oldest) {
                        inner.bytes -= e.size;
                    }
                }
                let cell = Arc::new(OnceCell::new());
                inner.map.insert(
                    sha256.to_string(),
                    Entry {
                        cell: cell.clone(),
                        size,
                        used: tick,
                    },
                );
                inner.bytes += size;
                cell
            }
        };
        let read = cell
            .get_or_try_init(|| async {
                let bytes = tokio::fs::read(path).await?;
                if bytes.len() as u64 != size {
                    return Err(std::io::Error::other("the blob changed size"));
                }
                Ok::<_, std::io::Error>(Bytes::from(bytes))
            })
            .await;
        match read {
            Ok(bytes) => Some(bytes.clone()),
            Err(_) => {
                let mut inner = self.lock();
                if inner
                    .map
                    .get(sha256)
                    .is_some_and(|e| Arc::ptr_eq(&e.cell, &cell))
                    && let Some(e) = inner.map.remove(sha256)
                {
                    inner.bytes -= e.size;
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_are_read_once_and_the_least_recently_used_leave() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, len: usize| {
            let p = dir.path().join(name);
            std::fs::write(&p, vec![name.as_bytes()[0]; len]).unwrap();
            p
        };
        let (a, b, c) = (write("a", 400), write("b", 400), write("c", 400));
        let hot = HotBlobs::new(1_000);
        assert_eq!(hot.get("a", &a, 400).await.unwrap()[0], b'a');
        // Read once: the file may go, the copy in memory serves.
        std::fs::remove_file(&a).unwrap();
        assert_eq!(hot.get("a", &a, 400).await.unwrap().len(), 400);
        assert!(hot.get("b", &b, 400).await.is_some());
        // "a" was used before "b": "a" leaves to make room for "c".
        assert!(hot.get("c", &c, 400).await.is_some());
        assert!(
            hot.get("a", &a, 400).await.is_none(),
            "gone from memory and disk"
        );
        assert!(hot.get("b", &b, 400).await.is_some());
        // Too large to keep, or unreadable: the caller streams or says it is missing.
        assert!(hot.get("b", &b, 2_000).await.is_none());
        assert!(hot.lock().bytes <= 1_000);
    }
}
