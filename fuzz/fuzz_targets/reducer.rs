#![no_main]
//! Random histories of valid events, applied in random causal orders and
//! rebuilt in bulk, give one state (`meshlog::fuzzing::reducer`).
libfuzzer_sys::fuzz_target!(|data: &[u8]| meshlog::fuzzing::reducer(data));
