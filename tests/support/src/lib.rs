//! Shared set-up for syncline's integration tests: the real local stack (scripts/stack.sh),
//! unique names, private topologies, and the `syncline` processes a test runs.
//!
//! A library crate of its own (a dev-dependency), so each test binary links what it uses and
//! nothing here needs `allow(dead_code)`. The broker and registry must be running (`make test`
//! starts them).

pub mod broker;
pub mod process;
pub mod scenario;
pub mod topology;

pub use broker::*;
pub use process::*;
pub use scenario::*;
pub use topology::*;
