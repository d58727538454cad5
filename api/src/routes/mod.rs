//! One module per resource, each exposing its own `router()`.

pub mod babies;
pub mod health;
pub mod me;
pub mod sync;
