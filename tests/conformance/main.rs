//! The conformance suite: every case runs against every framework x store,
//! over real HTTP on loopback. One named test per combination, so a
//! failure names it: `actix::redis::invalidate`,
//! `axum::redis_cluster::concurrent_writers_keep_every_key`. Redis (single,
//! Cluster, Sentinel) and memcached (single, ring of three) are the real
//! servers started by `scripts/test.sh`; without them those tests fail
//! with a message saying so.

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::print_stderr,
    reason = "test code: a failed expectation is a failed test; measurements are printed"
)]

#[path = "../../examples/shared/mod.rs"]
mod shared;

mod cases;
mod harness;

/// Stamps one `#[tokio::test]` per case for one framework x store; the case
/// bodies are plain async fns in `cases.rs`.
macro_rules! conformance {
    ($module:ident, $framework:ty, $store:ident, server) => {
        conformance!($module, $framework, $store, {
            concurrent_writers_keep_every_key,
            strict_increments_lose_nothing,
            logout_racing_requests_stays_logged_out,
            logout_others_ends_the_other_devices,
            logout_everywhere_ends_all,
        });
    };
    ($module:ident, $framework:ty, $store:ident, cookie) => {
        conformance!($module, $framework, $store, {
            logout_others_ends_the_other_devices,
        });
    };
    ($module:ident, $framework:ty, $store:ident, { $($extra:ident),* $(,)? }) => {
        mod $module {
            use crate::cases;
            use crate::harness::{Fixture, StoreKind};

            conformance!(@cases $framework, StoreKind::$store;
                fresh_request_sends_no_cookie,
                set_then_get,
                mutation_across_requests,
                read_only_request_sends_no_cookie,
                invalidate,
                new_session_on_login,
                set_new_identity_rules,
                max_age_on_cookie_and_store,
                expiry,
                bad_cookies_give_fresh_sessions,
                other_key_gives_fresh_session,
                unicode_and_nested_values,
                oversized_session,
                cookie_options,
                idle_timeout_expires_unused_sessions,
                absolute_lifetime_ends_active_sessions,
                own_max_age_is_enforced_and_kept,
                future_created_gives_a_fresh_session,
                rolling_refresh_is_throttled,
                vary_cookie_on_session_responses,
                mutated_cookies_get_fresh_sessions,
                $($extra,)*
            );
        }
    };
    (@cases $framework:ty, $store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                cases::$case(Fixture::<$framework>::new($store)).await;
            }
        )*
    };
}

/// One module per framework, one per store inside it: the test
/// `warp::redis::invalidate` runs the `invalidate` case on warp with Redis.
macro_rules! matrix {
    ($($framework:ident => $driver:ty),* $(,)?) => {
        $(
            mod $framework {
                conformance!(plain, $driver, Plain, cookie);
                conformance!(fernet, $driver, Fernet, cookie);
                conformance!(nacl, $driver, NaCl, cookie);
                conformance!(memory, $driver, Memory, server);
                conformance!(redis, $driver, Redis, server);
                conformance!(memcached, $driver, Memcached, server);
                conformance!(redis_cluster, $driver, RedisCluster, server);
                conformance!(redis_sentinel, $driver, RedisSentinel, server);
                conformance!(memcached_ring, $driver, MemcachedRing, server);
            }
        )*
    };
}

matrix! {
    axum => crate::harness::Axum,
    actix => crate::harness::Actix,
    warp => crate::harness::Warp,
}
