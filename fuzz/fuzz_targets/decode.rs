#![no_main]
//! Hostile bytes through the strict decoders and the verifier.
libfuzzer_sys::fuzz_target!(|data: &[u8]| meshlog::fuzzing::decode(data));
