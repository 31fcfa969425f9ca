#![no_main]
//! Arbitrary bytes into the event, record and batch decoders and the verifier.
libfuzzer_sys::fuzz_target!(|data: &[u8]| meshlog::fuzzing::decode(data));
