#![no_main]
//! Any schedule a desired state can carry (rule, cron string, program, dates): parsed,
//! validated and, when valid, resolved over three days — never a panic or a hang.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    protocol::fuzzing::schedule(data);
});
