#![no_main]
//! A valid DB file with arbitrary byte changes, opened read-only.
libfuzzer_sys::fuzz_target!(|mutations: Vec<(u32, u8)>| meshlog::fuzzing::open(&mutations));
