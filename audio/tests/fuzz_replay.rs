//! Replays the fuzz seed corpus with deterministic mutations through the decode paths in
//! process — from a file, as the CMS checks uploads (with the MP4 fallback), and from
//! memory: whatever the bytes, decoding returns (audio or an error) and never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use audio::decode::{check_bytes, check_file};
use protocol::fuzzing::{Rng, mutate, seeds};

#[test]
fn mutated_corpus_never_panics() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let seeds = seeds(&corpus, 8);
    // Decoder panics are contained by the library and become errors; count them so a
    // regression in a codec shows up here rather than as a silent refusal.
    static CONTAINED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    std::panic::set_hook(Box::new(|info| {
        CONTAINED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        eprintln!("contained decoder panic: {info}");
    }));
    let mut rng = Rng(0x9e37_79b9);
    let mut outcomes = [0usize; 2];
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("upload.bin");
    for (seed, bytes) in &seeds {
        assert!(
            check_bytes(bytes.clone()).is_ok(),
            "seed {} must decode",
            seed
        );
        for _ in 0..300 {
            let mutated = mutate(bytes, &mut Rng(rng.next_u32()));
            std::fs::write(&scratch, &mutated).unwrap();
            let from_file = std::panic::catch_unwind(|| check_file(&scratch));
            let from_file =
                from_file.unwrap_or_else(|_| panic!("decoder panicked on a mutation of {}", seed));
            outcomes[usize::from(from_file.is_ok())] += 1;
            let in_memory = std::panic::catch_unwind(|| check_bytes(mutated));
            assert!(
                in_memory.is_ok(),
                "decoder panicked in memory on a mutation of {}",
                seed
            );
        }
    }
    let contained = CONTAINED.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "mutations: {} refused ({contained} by a contained decoder panic), {} decoded",
        outcomes[0], outcomes[1]
    );
    assert!(outcomes[0] > 0 && outcomes[1] > 0);
}
