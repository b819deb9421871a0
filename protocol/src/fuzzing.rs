//! What the fuzz targets (`protocol/fuzz`) and their replay in `cargo test` run: every
//! input a peer controls, through the code that reads it. Each function returns whatever
//! the bytes are; the property is that it returns at all (no panic, no hang). Also the
//! deterministic mutator the replays share (the decoder's in `audio` too).

use chrono::{DateTime, Utc};

use crate::desired::DesiredState;
use crate::link::{self, ControllerMsg, NodeMsg};
use crate::live::LivePacket;
use crate::schedule::{Rule, ScheduleSpec, resolve};

/// A seed corpus: every file of `dir` (name, bytes), in name order; at least `at_least` of
/// them, or the replay stops here (a corpus gone missing must not pass as fuzzed).
pub fn seeds(dir: &std::path::Path, at_least: usize) -> Vec<(String, Vec<u8>)> {
    let read = |e: std::io::Result<std::fs::DirEntry>| {
        let e = e.ok()?;
        Some((
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).ok()?,
        ))
    };
    let mut seeds: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(read).collect())
        .unwrap_or_default();
    seeds.sort();
    assert!(
        seeds.len() >= at_least,
        "seed corpus missing at {} ({} files)",
        dir.display(),
        seeds.len()
    );
    seeds
}

/// A link frame either way, as text and as a live audio packet. What decodes must encode
/// and decode again to the same message.
pub fn link_frame(data: &[u8]) {
    let _ = LivePacket::decode(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = NodeMsg::decode(text) {
        assert_eq!(NodeMsg::decode(&link::encode(&m)).ok(), Some(m));
    }
    if let Ok(m) = ControllerMsg::decode(text) {
        let again = ControllerMsg::decode(&link::encode(&m));
        assert!(again.is_ok(), "{m:?} did not survive a round trip");
    }
}

/// A schedule (or a whole desired state, or a bare rule or cron string): parsed,
/// validated, and resolved over a day and a half when valid.
pub fn schedule(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let from = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default();
    let to = from + chrono::Duration::hours(36);
    let tz: crate::Tz = chrono_tz::Asia::Ho_Chi_Minh;
    let mut specs: Vec<ScheduleSpec> = Vec::new();
    if let Ok(state) = serde_json::from_str::<DesiredState>(text) {
        let zone = state.zone().unwrap_or(tz);
        specs.extend(state.schedules.iter().cloned());
        let valid: Vec<ScheduleSpec> = specs
            .iter()
            .filter(|s| s.rule.validate().is_ok())
            .cloned()
            .collect();
        let _ = resolve(&valid, zone, from, to);
        return;
    }
    if let Ok(spec) = serde_json::from_str::<ScheduleSpec>(text) {
        specs.push(spec);
    }
    if let Ok(rule) = serde_json::from_str::<Rule>(text) {
        let _ = rule.validate();
    }
    // The text as a cron expression.
    if let Ok(rule) = serde_json::from_value::<Rule>(serde_json::json!({ "cron": text })) {
        let _ = rule.validate();
    }
    let valid: Vec<ScheduleSpec> = specs
        .into_iter()
        .filter(|s| s.rule.validate().is_ok())
        .collect();
    let _ = resolve(&valid, tz, from, to);
}

/// xorshift32: deterministic, so a failure reproduces from its seed.
pub struct Rng(pub u32);

impl Rng {
    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.next_u32() as usize % n.max(1)
    }
}

/// One mutation of `seed`, libFuzzer's kinds in small: flipped bits, a cut, random bytes,
/// an extreme integer written over a header, a duplicated run. `seed` must not be empty.
pub fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    if data.is_empty() {
        return data;
    }
    match rng.below(5) {
        0 => {
            for _ in 0..1 + rng.below(16) {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
        }
        1 => data.truncate(rng.below(data.len())),
        2 => {
            let i = rng.below(data.len());
            let n = rng.below(64).min(data.len() - i);
            data[i..i + n]
                .iter_mut()
                .for_each(|b| *b = rng.next_u32() as u8);
        }
        3 => {
            // Interesting integers in headers: sizes and counts at their extremes.
            let i = rng.below(data.len().saturating_sub(4));
            let v: [u8; 4] =
                [[0xff; 4], [0; 4], [0x7f, 0xff, 0xff, 0xff], [0x80, 0, 0, 0]][rng.below(4)];
            let end = (i + 4).min(data.len());
            data[i..end].copy_from_slice(&v[..end - i]);
        }
        _ => {
            let i = rng.below(data.len());
            let j = rng.below(data.len());
            let (a, b) = (i.min(j), i.max(j));
            let chunk = data[a..b].to_vec();
            data.splice(a..a, chunk);
        }
    }
    data
}

/// Text-aware mutations for JSON and cron seeds: a token swapped for another seen in the
/// seeds' kind of input (numbers at their limits, wrong types, odd strings).
pub fn mutate_text(seed: &str, rng: &mut Rng) -> String {
    const TOKENS: [&str; 16] = [
        "-1",
        "0",
        "18446744073709551616",
        "9223372036854775807",
        "-9223372036854775808",
        "1e308",
        "null",
        "true",
        "\"\"",
        "[]",
        "{}",
        "\"\\u0000\"",
        "\"25:61\"",
        "\"9999-12-31T23:59:59Z\"",
        "\"*/0 * * * *\"",
        "\"L W # ?\"",
    ];
    let bytes = seed.as_bytes();
    let mut cut = rng.below(bytes.len().max(1));
    while cut > 0 && !seed.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut end = cut + rng.below(12);
    while end < seed.len() && !seed.is_char_boundary(end) {
        end += 1;
    }
    let end = end.min(seed.len());
    format!(
        "{}{}{}",
        &seed[..cut],
        TOKENS[rng.below(TOKENS.len())],
        &seed[end..]
    )
}
