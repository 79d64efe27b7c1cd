//! The Redis and Memcached stores against real servers on loopback: one
//! Redis, a Redis Cluster, Redis Sentinel, one memcached and a memcached
//! ring.
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
//! `memcached` binaries must be on `PATH`): single servers directly, and
//! clusters, Sentinel sets and rings through `scripts/services.sh
//! start-cluster|start-sentinel|start-ring` in a temporary directory,
//! stopped when the test ends (also when it fails).

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::cast_possible_truncation,
    reason = "test code: a failed expectation is a failed test; measurements are printed"
)]
// The helpers serve every store; with some store features off, some go
// unused (with all features on, every one is used).
#![cfg_attr(
    not(all(
        feature = "redis-cluster",
        feature = "redis-sentinel",
        feature = "memcached"
    )),
    allow(dead_code)
)]

#[cfg(feature = "redis-cluster")]
mod cluster;
mod common;
#[cfg(feature = "memcached")]
mod memcached;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "memcached")]
mod ring;
#[cfg(feature = "redis-sentinel")]
mod sentinel;
mod services;
#[cfg(feature = "redis")]
mod users;
