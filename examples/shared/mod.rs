//! Code shared by the example servers and the conformance tests.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod cli;
pub mod routes;

#[cfg(feature = "actix")]
pub mod actix_app;
#[cfg(feature = "axum")]
pub mod axum_app;
#[cfg(feature = "warp")]
pub mod warp_app;
