#![no_main]
//! Hostile bytes against the network wire (SPEC.md §17.3, §17.5): single
//! messages through the strict decoder, and streams of Noise messages (some
//! encrypted under an authenticated session's keys, some raw) read back
//! under both limits. Nothing panics, nothing over a limit is read, and
//! whatever is read re-encodes to itself. See `meshlog::fuzzing::net_wire`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| meshlog::fuzzing::net_wire(data));
