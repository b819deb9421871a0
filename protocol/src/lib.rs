//! Wire types shared by the controller and the speaker nodes, and the schedule resolver
//! (rules -> concrete plays, conflicts, priorities).
//!
//! Pure by design: serde, chrono and cron only — no I/O, no async runtime, no HTTP, no
//! database — so the CMS preview and the node run the very same code.
//!
//! Empty for now: the types arrive with the fleet link (see DESIGN.md, "Data flow").
