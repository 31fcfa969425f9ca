#![no_main]
//! Format v3: random histories among four peers (writes, rotations, merges,
//! forked feeds, partial syncs) converge to one digest in any order.
libfuzzer_sys::fuzz_target!(|data: &[u8]| meshlog::fuzzing::v3_converge(data));
