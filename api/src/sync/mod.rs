//! The sync domain: push (the mutation pipeline), pull (cursor, paging), and
//! the validation both share.

pub mod cursor;
#[cfg(test)]
mod fuzz;
pub mod plan;
pub mod pull;
pub mod push;
pub mod validate;
