//! Replays the link and schedule fuzz seed corpora (`protocol/fuzz/corpus`) with a few
//! thousand deterministic mutations each through what the fuzz targets run: whatever a
//! peer sends, decoding and resolving return and never panic.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use protocol::fuzzing::{Rng, link_frame, mutate, mutate_text, schedule, seeds};

fn replay(kind: &str, per_seed: usize, run: fn(&[u8])) {
    let mut rng = Rng(0x51ed_270b);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(kind);
    for (_, seed) in seeds(&dir, 5) {
        run(&seed);
        let text = String::from_utf8_lossy(&seed).into_owned();
        for i in 0..per_seed {
            let mutated = if i % 2 == 0 {
                mutate(&seed, &mut Rng(rng.next_u32()))
            } else {
                mutate_text(&text, &mut Rng(rng.next_u32())).into_bytes()
            };
            run(&mutated);
        }
    }
}

#[test]
fn mutated_link_frames_never_panic() {
    replay("link", 400, link_frame);
}

#[test]
fn mutated_schedules_and_cron_strings_never_panic() {
    replay("schedule", 300, schedule);
}
