//! What the `upload` fuzz target (`controller/fuzz`) and its deterministic replay in
//! `cargo test` run: any bytes as the body of `POST /api/v1/content`, through the path the
//! CMS takes — the multipart form streamed apart (the file into a pending blob, hashed and
//! size-limited on the way), the text fields checked, then the audio decoded in full and
//! measured. It must end in the upload or an error, never a panic, a hang or a file left
//! behind.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::blobs::BlobStore;

/// The boundary the fuzzed bodies use (`--loa`); the seeds are written with it.
pub const BOUNDARY: &str = "loa";

/// The largest upload taken here (the real limit is far larger; small keeps runs fast).
const LIMIT: u64 = 1 << 20;

struct Scratch {
    runtime: tokio::runtime::Runtime,
    blobs: BlobStore,
    dir: std::path::PathBuf,
}

/// One runtime and blob store per fuzzing process, in a directory of its own.
fn scratch() -> Option<&'static Scratch> {
    static SCRATCH: OnceLock<Option<Scratch>> = OnceLock::new();
    SCRATCH
        .get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("loa-fuzz-upload-{}", std::process::id()));
            std::fs::create_dir_all(&dir).ok()?;
            Some(Scratch {
                runtime: tokio::runtime::Builder::new_current_thread().build().ok()?,
                blobs: BlobStore::open(dir.clone()).ok()?,
                dir,
            })
        })
        .as_ref()
}

/// `data` as an upload body. Its first byte picks the size of the pieces the body comes
/// in (a network splits a body anywhere, boundaries included). True if it would be
/// accepted (form, fields and audio all good).
pub fn upload(data: &[u8]) -> bool {
    let Some(s) = scratch() else {
        return false;
    };
    let (piece, body) = match data.split_first() {
        Some((&first, rest)) => (usize::from(first).max(1) * 7, rest),
        None => (1, data),
    };
    let pieces: Vec<std::io::Result<Bytes>> = body
        .chunks(piece)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let stream: crate::http::BodyStream = Box::pin(futures_util::stream::iter(pieces));
    let form = s.runtime.block_on(crate::http::upload::read_form(
        &s.blobs,
        LIMIT,
        stream,
        BOUNDARY.to_owned(),
    ));
    let Ok((meta, blob)) = form else {
        return false;
    };
    assert!(
        blob.size > 0 && blob.size <= LIMIT,
        "blob of {} bytes",
        blob.size
    );
    meta.checked().is_ok() && crate::media::analyse(blob.file.path(), blob.size).is_ok()
}

/// Files the scratch directory holds now (pending blobs must not outlive their upload).
pub fn leftover_files() -> usize {
    scratch().map_or(0, |s| walk(&s.dir))
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path()),
                _ => 1,
            })
            .sum()
    })
}
