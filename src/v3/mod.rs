//! Fuzz helpers of format v3, until `src/fuzzing.rs` takes them in.

#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz;
