//! Guides for moving to this crate, each a side-by-side of the code before
//! and after (the "after" code compiles as a doctest).

#[doc = include_str!("../docs/guides/from-tower-sessions.md")]
pub mod from_tower_sessions {}

#[doc = include_str!("../docs/guides/from-actix-session.md")]
pub mod from_actix_session {}

#[doc = include_str!("../docs/guides/from-aiohttp.md")]
pub mod from_aiohttp {}
