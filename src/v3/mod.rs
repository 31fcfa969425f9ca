//! Format v3, built beside format v2 and switched in whole when complete
//! (issue #10; `SPEC-v3.md` is its draft contract).
//!
//! v2 keeps one shared linear chain, so two members who write from the same
//! head fork the mesh for good. v3 gives each member its own feed and turns
//! rotations into a graph of epochs whose forks resolve by rules every peer
//! computes alike. Here: the pure rules (`graph`, `feeds`), the bytes
//! (`event`), the verification pipeline (`verify`), sync (`frontier`), the
//! file (`store`) and the engine (`mesh`). meshlog's public API and CLI
//! still run v2 until the switch; only the fuzz entry points reach v3 from
//! outside.

// Reached from tests and the fuzz targets until the public API switches.
#![cfg_attr(not(test), allow(dead_code))]

pub(crate) mod batch;
mod bitset;
pub(crate) mod error;
pub(crate) mod event;
pub(crate) mod feeds;
pub(crate) mod frontier;
#[cfg(feature = "fuzzing")]
pub(crate) mod fuzz;
pub(crate) mod graph;
pub(crate) mod mesh;
pub(crate) mod store;
pub(crate) mod verify;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod simulation;
#[cfg(test)]
mod traps;
#[cfg(test)]
mod vectors;
