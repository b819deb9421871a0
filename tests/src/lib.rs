//! Whole-system tests: real controller and speaker-node processes on loopback.
//!
//! Empty until the controller exists; the speaker node's own integration tests live in
//! `speaker-node/tests/`.
