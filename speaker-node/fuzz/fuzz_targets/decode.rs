#![no_main]
//! Any bytes through the whole decode path: probe, codec set-up, every packet.
//! Must return (audio or an error), never panic, hang or grow memory without bound.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = speaker_node::decode::check_bytes(data.to_vec());
});
