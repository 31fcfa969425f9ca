#![no_main]
//! Format v3: arbitrary bytes into the record decoder and the verifier.
libfuzzer_sys::fuzz_target!(|data: &[u8]| meshlog::fuzzing::v3_decode(data));
