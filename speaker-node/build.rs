//! Link settings of the `speaker-node` binary that keep a playing node's memory small.
//! Measured in BENCHMARKS.md ("Real-time playback").
//!
//! 1. A fixed-address (non-PIE) executable. A node board runs one long-lived process;
//!    address randomisation of the executable buys little there, and a position-independent
//!    executable pays for it at every start: the loader applies ~0.9 MB of relocations
//!    (`.rela.dyn`) to ~1.2 MB of `.data.rel.ro`, touching (and so keeping resident) every
//!    page of it whatever the command.
//! 2. In release builds linked by LLD (Rust's default linker on x86-64 Linux since 1.90),
//!    the functions that playing a file runs are laid out first and together
//!    (`play.order`, written by `benches/play-order.sh` from a callgrind trace). The kernel
//!    maps code in 64 KB chunks around each fault; with the playback code spread among
//!    the agent's (tokio, reqwest, the resolver), playing one file kept 4 MB of the 5.4 MB
//!    `.text` resident, with it together about 1.4 MB. Only the layout changes: a symbol
//!    missing from the file (renamed by a compiler or dependency update) is laid out as
//!    before, and `benches/run.sh playback` says how many still match.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=play.order");
    println!("cargo:rerun-if-env-changed=LOA_NO_LINK_ORDER");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.contains("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    if target == "x86_64-unknown-linux-gnu"
        && std::env::var("PROFILE").as_deref() == Ok("release")
        && std::env::var_os("LOA_NO_LINK_ORDER").is_none()
        && links_with_default_lld()
    {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={dir}/play.order");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// True when rustc links with its bundled LLD: version 1.90 or later, and no linker chosen
/// by the user (a GNU ld or gold would refuse `--symbol-ordering-file`).
fn links_with_default_lld() -> bool {
    let overridden = std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || std::env::var("CARGO_ENCODED_RUSTFLAGS").is_ok_and(|flags| flags.contains("link"));
    if overridden {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major > 1 || (major == 1 && minor >= 90)
}
