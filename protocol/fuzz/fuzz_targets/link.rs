#![no_main]
//! Any frame a peer can send on the node link, either way: decoded (a message or an
//! error), never a panic; what decodes encodes again and decodes to the same message.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocol::fuzzing::link_frame(data);
});
