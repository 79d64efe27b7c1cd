//! Code shared by the example servers and the conformance tests.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod routes;

#[cfg(feature = "axum")]
pub mod axum_app;
