#![no_main]
//! A mutated file, or mutated records in a fresh file: refused or valid.
libfuzzer_sys::fuzz_target!(|data: &[u8]| meshlog::fuzzing::open(data));
