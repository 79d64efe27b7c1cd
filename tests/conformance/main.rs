//! The conformance suite: every case runs against every framework x store,
//! over real HTTP on loopback. One named test per combination, so a
//! failure names it: `axum_memory::invalidate`. The actix and warp rows
//! need their features (all on in CI: `--all-features`).

#![allow(
    unreachable_pub,
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    reason = "test code: a failed expectation is a failed test"
)]

#[path = "../../examples/shared/mod.rs"]
mod shared;

mod cases;
mod harness;

/// Stamps one `#[tokio::test]` per case for one framework x store; the case
/// bodies are plain async fns in `cases.rs`.
macro_rules! conformance {
    ($module:ident, $framework:ty, $store:expr) => {
        mod $module {
            use crate::cases;
            use crate::harness::Fixture;

            conformance!(@cases $framework, $store;
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

conformance!(
    axum_plain,
    crate::harness::Axum,
    crate::harness::StoreKind::Plain
);
conformance!(
    axum_fernet,
    crate::harness::Axum,
    crate::harness::StoreKind::Fernet
);
conformance!(
    axum_nacl,
    crate::harness::Axum,
    crate::harness::StoreKind::NaCl
);
conformance!(
    axum_memory,
    crate::harness::Axum,
    crate::harness::StoreKind::Memory
);
#[cfg(feature = "actix")]
conformance!(
    actix_plain,
    crate::harness::Actix,
    crate::harness::StoreKind::Plain
);
#[cfg(feature = "actix")]
conformance!(
    actix_fernet,
    crate::harness::Actix,
    crate::harness::StoreKind::Fernet
);
#[cfg(feature = "actix")]
conformance!(
    actix_nacl,
    crate::harness::Actix,
    crate::harness::StoreKind::NaCl
);
#[cfg(feature = "actix")]
conformance!(
    actix_memory,
    crate::harness::Actix,
    crate::harness::StoreKind::Memory
);
#[cfg(feature = "warp")]
conformance!(
    warp_plain,
    crate::harness::Warp,
    crate::harness::StoreKind::Plain
);
#[cfg(feature = "warp")]
conformance!(
    warp_fernet,
    crate::harness::Warp,
    crate::harness::StoreKind::Fernet
);
#[cfg(feature = "warp")]
conformance!(
    warp_nacl,
    crate::harness::Warp,
    crate::harness::StoreKind::NaCl
);
#[cfg(feature = "warp")]
conformance!(
    warp_memory,
    crate::harness::Warp,
    crate::harness::StoreKind::Memory
);
