//! Writes a seed corpus for the fuzz targets from a valid sample chain:
//! `cargo run --example fuzz_corpus --features fuzzing [OUT_DIR]`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("fuzz/corpus"), PathBuf::from);
    let sample = meshlog::fuzzing::sample();
    let decode = out.join("decode");
    std::fs::create_dir_all(&decode)?;
    for (seq, record) in sample.records.iter().enumerate() {
        std::fs::write(decode.join(format!("record-{seq}")), record)?;
        // The event bytes alone, after the 64-byte signature.
        std::fs::write(decode.join(format!("event-{seq}")), &record[64..])?;
    }
    let open = out.join("open");
    std::fs::create_dir_all(&open)?;
    // No mutation, and a few single-byte ones spread over the file.
    std::fs::write(open.join("none"), [])?;
    for (i, offset) in [0u32, 4096, 8192, 65536].into_iter().enumerate() {
        let mut input = offset.to_le_bytes().to_vec();
        input.push(0x01);
        std::fs::write(open.join(format!("flip-{i}")), input)?;
    }
    let reducer = out.join("reducer");
    std::fs::create_dir_all(&reducer)?;
    // Byte strings that `arbitrary` turns into op sequences starting with a
    // founding and an enable, so the fuzzer starts from a live group.
    for (i, seed) in [
        &[0u8, 0, 1, 0, 1][..],
        &[0, 1, 1, 0, 1, 2, 0, 3, 3, 1, 3, 0, 7],
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(reducer.join(format!("seed-{i}")), seed)?;
    }
    // Format v3: records of a live mesh, and op strings that enable peers,
    // write, rotate, fork and sync.
    let decode_v3 = out.join("decode_v3");
    std::fs::create_dir_all(&decode_v3)?;
    for (i, record) in meshlog::fuzzing::v3_sample_records().iter().enumerate() {
        std::fs::write(decode_v3.join(format!("record-{i}")), record)?;
    }
    let converge = out.join("converge");
    std::fs::create_dir_all(&converge)?;
    for (i, seed) in [
        &[1u8, 1, 1, 1, 2, 1, 1, 3, 1, 0, 1, 2, 1, 2, 0][..],
        &[
            1, 1, 1, 2, 1, 1, 2, 1, 2, 1, 4, 0, 1, 3, 0, 0, 4, 2, 1, 3, 1, 5, 2, 0, 3,
        ],
    ]
    .iter()
    .enumerate()
    {
        std::fs::write(converge.join(format!("seed-{i}")), seed)?;
    }
    println!("corpus written to {}", out.display());
    Ok(())
}
