#![no_main]
//! Any bytes as what a live source sends first on the controller's port (`PUT`/`SOURCE
//! /live/{village}`): recognised or not, its head read within the limit, parsed, its
//! credentials checked, a chunked body de-chunked (`controller::live::handshake`). Never a
//! panic.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(controller::live::handshake(data));
});
