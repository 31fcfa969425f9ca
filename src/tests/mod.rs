//! Crate-level tests of the rules: every trap of the convergence design in
//! every arrival order, an independent reference model, proptests, a seeded
//! many-peer simulation and SPEC.md's vectors.

mod properties;
mod reference;
pub(crate) mod simulation;
pub(crate) mod traps;
pub(crate) mod vectors;
