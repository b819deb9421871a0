//! Links the `speaker-node` binary as a fixed-address (non-PIE) executable.
//!
//! A node board runs one long-lived process; address randomisation of the executable buys
//! little there, and a position-independent executable pays for it at every start: the
//! loader applies ~0.9 MB of relocations (`.rela.dyn`) to ~1.2 MB of `.data.rel.ro`,
//! touching (and so keeping resident) every page of it whatever the command. Linked at a
//! fixed address, those are resolved at link time and the pages stay on disk until used.
//! Measured in BENCHMARKS.md ("Real-time playback").
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.contains("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
