//! Framework adapters. Each moves the cookie string in, hands the handler a
//! [`Session`](crate::Session), and moves the `Set-Cookie` string out; every
//! rule lives in the core.

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;

#[cfg(feature = "warp")]
#[cfg_attr(docsrs, doc(cfg(feature = "warp")))]
pub mod warp;

#[cfg(any(feature = "axum", feature = "actix"))]
mod typed;
