//! `controller`: serves the CMS and runs the fleet hub (node links, content serving, live
//! ingest, health). Not built yet: this binary only says so.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("controller: not built yet — the CMS and fleet hub come in later releases");
    ExitCode::from(2)
}
