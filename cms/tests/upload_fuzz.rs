//! Replays the `upload` fuzz target's seeds (`controller/fuzz/corpus/upload`: real upload
//! bodies of every audio format, and the bad forms staff's browsers and scripts send) with
//! deterministic byte and token mutations, through the path the CMS takes for
//! `POST /api/v1/content`: the multipart form streamed apart, the fields checked, the audio
//! decoded and measured. Whatever the bytes: an upload or an error, never a panic, and no
//! pending file left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use protocol::fuzzing::{Rng, mutate, mutate_text, seeds};

#[test]
fn mutated_upload_bodies_never_panic_or_leave_files() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../controller/fuzz/corpus/upload");
    let mut rng = Rng(0x5eed_10a1);
    let mut accepted = 0;
    for (name, bytes) in seeds(&corpus, 10) {
        // The good seeds go through whole: the replay reaches the decoder.
        assert_eq!(
            cms::fuzzing::upload(&bytes),
            name.starts_with("ok-"),
            "seed {name}"
        );
        for i in 0..120 {
            let mutated = if i % 4 == 3 {
                // Token mutations keep the form's shape (boundaries, names) more often.
                mutate_text(&String::from_utf8_lossy(&bytes), &mut Rng(rng.next_u32())).into_bytes()
            } else {
                mutate(&bytes, &mut Rng(rng.next_u32()))
            };
            let run = std::panic::catch_unwind(|| cms::fuzzing::upload(&mutated));
            accepted += usize::from(
                run.unwrap_or_else(|_| panic!("upload path panicked on a mutation of {}", name)),
            );
        }
        assert_eq!(
            cms::fuzzing::leftover_files(),
            0,
            "a pending upload outlived its request (seeds of {})",
            name
        );
    }
    println!("mutated uploads accepted: {accepted}");
    assert!(accepted > 0, "no mutation got through to a whole upload");
}
