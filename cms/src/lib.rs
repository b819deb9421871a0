//! The commune content management system: content library, approval, villages,
//! schedules, users and reports, stored in SQLite, served as a REST API and web UI (warp
//! filters that the controller mounts).
//!
//! Empty for now. Uploads will be checked with the speaker node's own decoder
//! (`speaker_node::decode`, built without the sound card feature): one decoder in the
//! whole system.
