//! The agent's timing core in milliseconds: the scheduler's turn, the playout state
//! machine, the owner task and the link session, each on a test clock (and the playout
//! on a test sink that moves that clock as it takes frames), without sockets or timers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod link;
mod owner;
mod playout;
mod scheduler;
mod support;
