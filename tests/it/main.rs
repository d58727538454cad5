//! Integration tests: real HTTP against a real server over a real database.
//! Every test runs twice, on SQLite and on PostgreSQL, each time on a fresh
//! database of its own that is dropped afterwards.

mod helpers;

mod abuse;
mod auth;
mod babies;
mod cli;
mod deploy;
mod events;
mod export;
mod faults;
mod health;
mod import;
mod invites;
mod kinds;
mod loadgen;
mod messages;
mod ops;
mod pull;
mod push;
mod schema;
mod stored;
mod summary;
mod timers;
mod web;
