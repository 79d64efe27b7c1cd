//! The Redis and Memcached stores against real servers on loopback.
//!
//! Start the servers first (the tests fail, loudly, when they are absent):
//!
//! ```text
//! scripts/services.sh install
//! scripts/services.sh start target/services
//! . target/services/env
//! cargo test --all-features --test server_stores -- --nocapture
//! scripts/services.sh stop target/services
//! ```
//!
//! Tests that count commands or read server-wide counters hold a lock per
//! server, so tests of this file do not disturb each other's counts. The
//! outage tests start and kill servers of their own (the `redis-server` and
//! `memcached` binaries must be on `PATH`).

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::cast_possible_truncation,
    reason = "test code: a failed expectation is a failed test; measurements are printed"
)]

mod common;
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "redis")]
mod redis;
