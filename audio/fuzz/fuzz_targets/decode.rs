#![no_main]
//! Any bytes through the path the CMS takes for an upload: written to a file, then opened
//! (probe, the MP4 fallback for a cut-off file, the edit-list trim), every packet decoded.
//! Must return (audio or an error), never panic, hang or grow memory without bound.

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One scratch file per fuzzing process, rewritten for every input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("loa-fuzz-{}.bin", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    if std::fs::write(scratch(), data).is_ok() {
        let _ = audio::decode::check_file(scratch());
    }
});
