#![no_main]
//! Any bytes as the body of an upload (`POST /api/v1/content`, boundary `loa`): the
//! multipart form streamed apart, the fields checked, the audio decoded and measured
//! (`cms::fuzzing::upload`). Must end in an upload or an error, never a panic or a hang.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cms::fuzzing::upload(data);
});
