#![no_main]
//! Random histories among five peers (writes, rotations, merges, forked
//! feeds, partial syncs) converge to one digest.
libfuzzer_sys::fuzz_target!(|data: &[u8]| meshlog::fuzzing::converge(data));
